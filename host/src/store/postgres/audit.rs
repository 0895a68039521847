//! The audit log's SQL for PostgreSQL: one table for every host of the
//! database, so the cluster has one log.

use super::conn::classify;
use crate::store::audit::detail_from_text;
use crate::store::{AuditEntry, AuditQuery, AuditRecord, StoreError};
use chrono::{DateTime, Utc};

/// Appends `records` in one transaction.
pub(super) async fn insert(
    mut client: deadpool_postgres::Object,
    records: Vec<AuditRecord>,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(classify)?;
    let stmt = tx
        .prepare(
            "INSERT INTO audit (at, actor, client, action, target, job, detail)
             VALUES ($1::timestamptz, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text)",
        )
        .await
        .map_err(classify)?;
    for r in &records {
        let detail = r.detail.to_string();
        tx.execute(
            &stmt,
            &[
                &r.at, &r.actor, &r.client, &r.action, &r.target, &r.job, &detail,
            ],
        )
        .await
        .map_err(classify)?;
    }
    tx.commit().await.map_err(classify)
}

/// Removes rows made before `cutoff`.
pub(super) async fn prune(
    client: &tokio_postgres::Client,
    cutoff: DateTime<Utc>,
) -> Result<(), StoreError> {
    client
        .execute("DELETE FROM audit WHERE at < $1::timestamptz", &[&cutoff])
        .await
        .map_err(classify)?;
    Ok(())
}

/// A page, newest first.
pub(super) async fn page(
    client: &tokio_postgres::Client,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT id, at, actor, client, action, target, job, detail FROM audit
              WHERE ($1::text IS NULL OR job = $1::text) AND ($2::bigint IS NULL OR id < $2::bigint)
              ORDER BY id DESC LIMIT $3::bigint",
            &[&q.job, &q.before, &limit],
        )
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|row| {
            let detail: String = row.try_get(7).map_err(classify)?;
            Ok(AuditEntry {
                id: row.try_get(0).map_err(classify)?,
                at: row.try_get(1).map_err(classify)?,
                actor: row.try_get(2).map_err(classify)?,
                client: row.try_get(3).map_err(classify)?,
                action: row.try_get(4).map_err(classify)?,
                target: row.try_get(5).map_err(classify)?,
                job: row.try_get(6).map_err(classify)?,
                detail: detail_from_text(&detail),
            })
        })
        .collect()
}
