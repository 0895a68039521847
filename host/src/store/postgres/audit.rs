//! The audit log's SQL for PostgreSQL: one table for every host of the
//! database, so the cluster has one log.

use super::conn::classify;
use crate::store::audit::detail_from_text;
use crate::store::{AuditEntry, AuditQuery, AuditRecord, StoreError};
use chrono::{DateTime, Utc};

/// Appends `records` in one statement (arrays unnested in their order, so
/// ids ascend as the changes were made): a `PUT /jobs` of 10,000 jobs
/// writes 10,000 rows, and a round trip per row took that request past
/// the API's 30 s timeout on a loaded machine.
pub(super) async fn insert(
    client: deadpool_postgres::Object,
    records: Vec<AuditRecord>,
) -> Result<(), StoreError> {
    let mut at = Vec::with_capacity(records.len());
    let mut actor = Vec::with_capacity(records.len());
    let mut from = Vec::with_capacity(records.len());
    let mut action = Vec::with_capacity(records.len());
    let mut target = Vec::with_capacity(records.len());
    let mut job = Vec::with_capacity(records.len());
    let mut detail = Vec::with_capacity(records.len());
    for r in records {
        at.push(r.at);
        actor.push(r.actor);
        from.push(r.client);
        action.push(r.action);
        target.push(r.target);
        job.push(r.job);
        detail.push(r.detail.to_string());
    }
    client
        .execute(
            "INSERT INTO audit (at, actor, client, action, target, job, detail)
             SELECT at, actor, client, action, target, job, detail
             FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[])
                  WITH ORDINALITY AS r(at, actor, client, action, target, job, detail, n)
             ORDER BY n",
            &[&at, &actor, &from, &action, &target, &job, &detail],
        )
        .await
        .map_err(classify)?;
    Ok(())
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
