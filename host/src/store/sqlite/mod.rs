//! The embedded default store: one SQLite file.
//!
//! WAL mode with `synchronous = NORMAL`: a committed transaction survives
//! the process being killed at any point (what `kill -9` tests), though not
//! necessarily a power cut in the same instant.
//!
//! All writes, the guests' kv writes included, go through one writer
//! thread that groups whatever is queued into one transaction and keeps
//! the WAL file bounded (`writer.rs`). Reads use their own connections,
//! which WAL lets run beside the writer; each API read is one statement
//! that stops as soon as its page is full, so no reader holds a snapshot
//! (and with it the WAL) for long.

mod audit;
mod kv;
mod runs;
mod writer;

use super::{
    BrokenJob, HealthCell, JobRecord, JobStore, KvStore, LogPage, RunCounts, RunFilter, RunList,
    RunRecord, RunSummary, RunsFrom, Snapshot, StoreError, Write, Written,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;
use writer::{Cmd, Prepared};

pub use kv::SqliteKv;

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("0001_init.sql"),
    include_str!("0002_run_args.sql"),
    include_str!("0003_kv_usage_and_run_log_count.sql"),
    include_str!("0004_incarnation.sql"),
    include_str!("0005_store_probe.sql"),
    include_str!("0006_fire_key.sql"),
    include_str!("0007_pause_note.sql"),
    include_str!("0008_parent_run.sql"),
    include_str!("0009_calendars.sql"),
    include_str!("0010_audit.sql"),
];

/// How long a connection waits for a lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the background checkpointer copies WAL frames into the
/// database (PASSIVE: it never blocks the writer or readers). Often, so the
/// writer's own checkpoint, which follows a pass, has little left to sync
/// (`writer::Passes`); a pass with nothing to copy is a read of the WAL
/// index.
const BACKGROUND_CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// A job store in a SQLite file.
#[derive(Debug)]
pub struct SqliteJobStore {
    tx: mpsc::Sender<Cmd>,
    reader: Arc<Mutex<Connection>>,
    kv: Arc<SqliteKv>,
    path: PathBuf,
    stop_checkpointer: Arc<AtomicBool>,
    health: HealthCell,
}

impl Drop for SqliteJobStore {
    fn drop(&mut self) {
        self.stop_checkpointer.store(true, Ordering::Relaxed);
    }
}

/// Copies WAL frames into the database from its own connection, so the
/// writer's own checkpoints (which it needs to start the WAL over) find
/// little left to copy. SQLite's automatic checkpoint would run inside
/// whichever commit crosses the threshold, stalling every run waiting on
/// that grouped commit; it is off. While the store cannot be written it
/// rests: the writer's probe checkpoints then, and says when it works.
fn checkpointer(conn: Connection, stop: &AtomicBool, health: &HealthCell, passes: &writer::Passes) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(BACKGROUND_CHECKPOINT_EVERY);
        if !health.get().is_writable() {
            continue;
        }
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => passes.ended(),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
        }
    }
}

/// An error as a [`StoreError`]. SQLite's failures of the storage itself
/// (disk full, read-only file, I/O error, a lock another process holds past
/// the busy timeout, a damaged file) become [`StoreError::Unwritable`]:
/// they are not the data's fault, and the writer turns them into the
/// store's health (see [`super::StoreHealth`]) so the scheduler holds its
/// fires. Generic over the error so every `map_err(backend)` classifies
/// without each call site knowing which errors can be SQLite's.
fn backend<E: std::fmt::Display + 'static>(e: E) -> StoreError {
    use rusqlite::ErrorCode as C;
    let any: &dyn std::any::Any = &e;
    match any.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                C::DiskFull
                    | C::ReadOnly
                    | C::SystemIoFailure
                    | C::CannotOpen
                    | C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::FileLockingProtocolFailed
                    | C::DatabaseCorrupt
                    | C::NotADatabase
            ) =>
        {
            StoreError::Unwritable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Opens a connection with the settings every connection needs.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Backend(format!("opening {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA recursive_triggers = ON;
         PRAGMA journal_size_limit = {};",
        writer::WAL_LIMIT
    ))
    .map_err(backend)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Backend(format!(
            "the database is at schema version {version}, newer than this wasmcron knows \
             ({known}); upgrade wasmcron or use another --db"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("migration {}: {e}", i + 1)))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

/// The `-wal` file beside the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

impl SqliteJobStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        }
        let mut writer = connect(path)?;
        migrate(&mut writer)?;
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(backend)?;
        let reader = connect(path)?;
        let (tx, rx) = mpsc::channel();
        let kv = SqliteKv::new(connect(path)?, tx.clone());
        let wal = wal_path(path);
        let health = HealthCell::default();
        let writer_health = health.clone();
        let passes = Arc::new(writer::Passes::new());
        let writer_passes = passes.clone();
        std::thread::Builder::new()
            .name("wasmcron-sqlite-writer".into())
            .spawn(move || writer::writer_loop(writer, &rx, wal, &writer_health, writer_passes))
            .map_err(backend)?;
        let stop_checkpointer = Arc::new(AtomicBool::new(false));
        let checkpoint_conn = connect(path)?;
        let stop = stop_checkpointer.clone();
        let checkpoint_health = health.clone();
        std::thread::Builder::new()
            .name("wasmcron-sqlite-checkpoint".into())
            .spawn(move || checkpointer(checkpoint_conn, &stop, &checkpoint_health, &passes))
            .map_err(backend)?;
        Ok(Self {
            tx,
            reader: Arc::new(Mutex::new(reader)),
            kv: Arc::new(kv),
            path: path.to_path_buf(),
            stop_checkpointer,
            health,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The guests' kv data, as its concrete type.
    pub fn sqlite_kv(&self) -> &Arc<SqliteKv> {
        &self.kv
    }

    async fn send(&self, make: impl FnOnce(writer::Reply) -> Cmd) -> Result<Written, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .map_err(|_| StoreError::Backend("the store's writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the store's writer thread has stopped".into()))?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(backend)?
    }
}

#[async_trait::async_trait]
impl JobStore for SqliteJobStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.read(|conn| {
            let mut snap = Snapshot::default();
            let mut stmt = conn
                .prepare(
                    "SELECT id, spec, created_at, next_run_time, paused, incarnation, \
                     paused_reason, failures_from FROM jobs ORDER BY id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, bool>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                    ))
                })
                .map_err(backend)?;
            for row in rows {
                let (id, spec, created, next, paused, incarnation, reason, from) =
                    row.map_err(backend)?;
                match serde_json::from_str(&spec) {
                    Ok(spec) => snap.jobs.push(JobRecord {
                        spec,
                        created_at: runs::from_ms(created),
                        next_run_time: next.map(runs::from_ms),
                        paused,
                        incarnation,
                        paused_reason: reason,
                        failures_from: from.map(runs::from_ms),
                    }),
                    Err(e) => snap.broken.push(BrokenJob {
                        id,
                        error: format!("stored spec does not parse: {e}"),
                    }),
                }
            }
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {} FROM runs WHERE status IN ('pending', 'running')",
                    runs::RUN_COLUMNS
                ))
                .map_err(backend)?;
            snap.unfinished = stmt
                .query_map([], runs::run_from_row)
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            Ok(snap)
        })
        .await
    }

    async fn insert_job(&self, job: JobRecord, replace: bool) -> Result<(), StoreError> {
        let job = Box::new(job);
        self.send(|r| Cmd::Insert(job, replace, r)).await.map(drop)
    }

    async fn calendars(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT name, spec FROM calendars ORDER BY name")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn put_calendar(&self, name: &str, spec: Option<&str>) -> Result<(), StoreError> {
        let (name, spec) = (name.to_owned(), spec.map(str::to_owned));
        self.send(|r| Cmd::Calendar(name, spec, r)).await.map(drop)
    }

    async fn record_audit(
        &self,
        records: Vec<crate::store::AuditRecord>,
    ) -> Result<(), StoreError> {
        self.send(|r| Cmd::Audit(records, r)).await.map(drop)
    }

    async fn audit(
        &self,
        query: &crate::store::AuditQuery,
    ) -> Result<Vec<crate::store::AuditEntry>, StoreError> {
        let query = query.clone();
        self.read(move |conn| audit::page(conn, &query)).await
    }

    async fn prune_audit(&self, cutoff: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        self.send(|r| Cmd::PruneAudit(writer::ms(cutoff), r))
            .await
            .map(drop)
    }

    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let job = Box::new(job.clone());
        self.send(|r| Cmd::Update(job, r)).await.map(drop)
    }

    async fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.send(|r| Cmd::Delete(id, r)).await.map(drop)
    }

    async fn write(&self, batch: Vec<Write>) -> Result<Written, StoreError> {
        if batch.is_empty() {
            return Ok(Written::default());
        }
        let prepared = batch
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.send(|r| Cmd::Batch(prepared, r)).await
    }

    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT spec, created_at, next_run_time, paused, incarnation, \
                     paused_reason, failures_from FROM jobs WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row(params![id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                            r.get::<_, bool>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, Option<i64>>(6)?,
                        ))
                    })
                    .optional()
                })
                .map_err(backend)?;
            let Some((spec, created, next, paused, incarnation, reason, from)) = row else {
                return Ok(None);
            };
            let spec = serde_json::from_str(&spec)
                .map_err(|e| StoreError::Backend(format!("job '{id}': stored spec: {e}")))?;
            Ok(Some(JobRecord {
                spec,
                created_at: runs::from_ms(created),
                next_run_time: next.map(runs::from_ms),
                paused,
                incarnation,
                paused_reason: reason,
                failures_from: from.map(runs::from_ms),
            }))
        })
        .await
    }

    async fn runs(
        &self,
        job_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let job_id = job_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM runs WHERE job_id = ?1
                       AND incarnation = (SELECT incarnation FROM jobs WHERE id = ?1)
                     ORDER BY scheduled_at DESC, run_id DESC LIMIT ?2 OFFSET ?3",
                    runs::RUN_COLUMNS
                ))
                .map_err(backend)?;
            let (limit, offset) = (
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX),
            );
            stmt.query_map(params![job_id, limit, offset], runs::run_from_row)
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let run_id = run_id.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {} FROM runs WHERE run_id = ?1", runs::RUN_COLUMNS),
                params![run_id],
                runs::run_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn run_summaries(
        &self,
        job_id: &str,
        limit: usize,
        from: RunsFrom,
    ) -> Result<RunList, StoreError> {
        let job_id = job_id.to_owned();
        self.read(move |conn| runs::summaries(conn, &job_id, limit, &from))
            .await
    }

    async fn all_runs(
        &self,
        filter: RunFilter,
        limit: usize,
        from: RunsFrom,
    ) -> Result<RunList, StoreError> {
        self.read(move |conn| runs::all_summaries(conn, filter, limit, &from))
            .await
    }

    async fn run_counts(
        &self,
        from: chrono::DateTime<chrono::Utc>,
    ) -> Result<RunCounts, StoreError> {
        self.read(move |conn| runs::counts(conn, from)).await
    }

    async fn run_summary(&self, run_id: &str) -> Result<Option<RunSummary>, StoreError> {
        let run_id = run_id.to_owned();
        self.read(move |conn| runs::summary(conn, &run_id)).await
    }

    async fn run_logs(
        &self,
        run_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<LogPage>, StoreError> {
        let run_id = run_id.to_owned();
        self.read(move |conn| runs::logs(conn, &run_id, offset, limit))
            .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.send(Cmd::Close).await.map(drop)
    }

    fn kv(&self) -> Arc<dyn KvStore> {
        self.kv.clone()
    }

    fn health(&self) -> HealthCell {
        self.health.clone()
    }
}

#[cfg(test)]
mod tests;
