//! The audit log's SQL for SQLite: rows appended by the writer thread,
//! pages read on the reader connection.

use super::backend;
use super::runs::from_ms;
use super::writer::ms;
use crate::store::audit::detail_from_text;
use crate::store::{AuditEntry, AuditQuery, AuditRecord, StoreError};
use rusqlite::{Connection, params};

/// Appends `records` (inside the writer's transaction).
pub(super) fn insert(conn: &Connection, records: &[AuditRecord]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO audit (at, actor, client, action, target, job, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(backend)?;
    for r in records {
        stmt.execute(params![
            ms(r.at),
            r.actor,
            r.client,
            r.action,
            r.target,
            r.job,
            r.detail.to_string()
        ])
        .map_err(backend)?;
    }
    Ok(())
}

/// Removes rows made before `cutoff` (ms).
pub(super) fn prune(conn: &Connection, cutoff: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM audit WHERE at < ?1", params![cutoff])
        .map_err(backend)?;
    Ok(())
}

/// A page, newest first.
pub(super) fn page(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, at, actor, client, action, target, job, detail FROM audit
              WHERE (?1 IS NULL OR job = ?1) AND (?2 IS NULL OR id < ?2)
              ORDER BY id DESC LIMIT ?3",
        )
        .map_err(backend)?;
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![q.job, q.before, limit], |row| {
            let detail: String = row.get(7)?;
            Ok(AuditEntry {
                id: row.get(0)?,
                at: from_ms(row.get(1)?),
                actor: row.get(2)?,
                client: row.get(3)?,
                action: row.get(4)?,
                target: row.get(5)?,
                job: row.get(6)?,
                detail: detail_from_text(&detail),
            })
        })
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}
