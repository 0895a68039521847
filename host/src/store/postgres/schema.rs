//! Versioned migrations: `schema_migrations` records each one applied.
//!
//! Our own dozen lines rather than `refinery` or `sqlx migrate`: the
//! SQLite store already numbers its migrations the same way (there in
//! `PRAGMA user_version`), the files are embedded with `include_str!`, and
//! the one thing a library would add that we need, safety when several
//! hosts start at once against one database, is a transaction-scoped
//! advisory lock. Each migration runs in its own transaction with its row
//! in `schema_migrations`, so a crash mid-way leaves the previous version.

use super::conn::classify;
use crate::store::StoreError;
use tokio_postgres::Client;

/// Migrations, applied in order; version N is `MIGRATIONS[N - 1]`.
pub(super) const MIGRATIONS: &[(&str, &str)] = &[
    ("init", include_str!("0001_init.sql")),
    ("fire_key", include_str!("0002_fire_key.sql")),
    ("lease", include_str!("0003_lease.sql")),
    ("claims", include_str!("0004_claims.sql")),
    ("plugin_files", include_str!("0005_plugin_files.sql")),
    ("cluster_token", include_str!("0006_cluster_token.sql")),
    ("pause_note", include_str!("0007_pause_note.sql")),
    ("parent_run", include_str!("0008_parent_run.sql")),
    ("calendars", include_str!("0009_calendars.sql")),
    ("audit", include_str!("0010_audit.sql")),
];

/// Key of the advisory lock migrators hold (any constant works; this is
/// "wasmcron" in ASCII, truncated to 8 bytes).
const MIGRATION_LOCK: i64 = 0x7761_736d_6372_6f6e;

/// Brings the database to the newest schema this build knows.
///
/// # Errors
/// [`StoreError::Backend`] when the database is at a newer version than
/// this build knows, or a migration fails; [`StoreError::Unwritable`]
/// when the database cannot be reached.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    // Looked for first: `CREATE TABLE IF NOT EXISTS` on a table that is
    // there answers with a NOTICE the driver logs at info, at every start.
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(classify)?;
    if exists {
        return apply(client).await;
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .or_else(|e| {
            // Two hosts creating the table at once: one of them loses the
            // race on the catalog; the table is there either way.
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(classify(e))
            }
        })?;
    apply(client).await
}

/// Applies the migrations the database has not had yet, one transaction
/// each, under the migration lock.
async fn apply(client: &mut Client) -> Result<(), StoreError> {
    let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    loop {
        let tx = client.transaction().await.map_err(classify)?;
        // Held until this transaction ends: one migrator at a time.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(classify)?;
        let version: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(classify)?
            .try_get(0)
            .map_err(classify)?;
        if version > known {
            return Err(StoreError::Backend(format!(
                "the database is at schema version {version}, newer than this wasmcron knows \
                 ({known}); upgrade wasmcron or use another --db"
            )));
        }
        let Some((name, sql)) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        let next = version + 1;
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Backend(format!(
                "migration {next} ({name}): {}",
                super::conn::describe(&e)
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&next, name],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        tracing::info!(version = next, name, "PostgreSQL job store migrated");
    }
}
