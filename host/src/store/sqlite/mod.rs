//! The embedded default store: one SQLite file.
//!
//! WAL mode with `synchronous = NORMAL`: a committed transaction survives
//! the process being killed at any point (what `kill -9` tests), though not
//! necessarily a power cut in the same instant.
//!
//! All writes go through one writer thread that *groups* whatever is queued
//! into a single transaction (each command in its own savepoint, so one
//! failing command does not undo the others) and answers each caller once
//! the transaction is committed. A caller never waits longer than one
//! commit, and under load one fsync-free commit carries hundreds of
//! writes. Reads use their own connection, which WAL lets run beside the
//! writer.

mod kv;

use super::{
    BrokenJob, JobRecord, JobStore, KvStore, RunRecord, RunStatus, Snapshot, StoreError, Write,
};
use crate::runtime::Outcome;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;

pub use kv::SqliteKv;

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("0001_init.sql"),
    include_str!("0002_run_args.sql"),
    // 0003 is kv usage (another branch); keep this after it when merging.
    include_str!("0004_incarnation.sql"),
];

/// Most commands grouped into one transaction.
const MAX_GROUP: usize = 1024;

type Reply = oneshot::Sender<Result<(), StoreError>>;

enum Cmd {
    Insert(Box<JobRecord>, bool, Reply),
    Update(Box<JobRecord>, Reply),
    Delete(String, Reply),
    Batch(Vec<Prepared>, Reply),
}

/// A write with its JSON already encoded, by the caller's task: the writer
/// is one thread, and encoding thousands of run rows a second there would
/// make it the bottleneck.
enum Prepared {
    Run {
        run: Box<RunRecord>,
        outcome: Option<String>,
        logs: String,
    },
    Other(Write),
}

/// A run's outcome and logs as the JSON the `runs` table stores.
fn encode(run: &RunRecord) -> Result<(Option<String>, String), StoreError> {
    let outcome = run
        .outcome
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(backend)?;
    Ok((outcome, serde_json::to_string(&run.logs).map_err(backend)?))
}

impl Prepared {
    fn new(w: Write) -> Result<Self, StoreError> {
        Ok(match w {
            Write::Run(run) => {
                let (outcome, logs) = encode(&run)?;
                Self::Run {
                    run: Box::new(run),
                    outcome,
                    logs,
                }
            }
            other => Self::Other(other),
        })
    }
}

/// How often the checkpointer folds the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A job store in a SQLite file.
#[derive(Debug)]
pub struct SqliteJobStore {
    tx: mpsc::Sender<Cmd>,
    reader: Arc<Mutex<Connection>>,
    kv: Arc<SqliteKv>,
    path: PathBuf,
    stop_checkpointer: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for SqliteJobStore {
    fn drop(&mut self) {
        self.stop_checkpointer
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Checkpoints the WAL from its own connection. SQLite's automatic
/// checkpoint runs inside whichever commit crosses the threshold, stalling
/// that writer (and every run waiting on the grouped commit); a passive
/// checkpoint beside the writer never blocks it.
fn checkpointer(conn: Connection, stop: &std::sync::atomic::AtomicBool) {
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Opens a connection with the settings every connection needs.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Backend(format!("opening {}: {e}", path.display())))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;",
    )
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
        let kv = SqliteKv::new(connect(path)?);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("wasmcron-sqlite-writer".into())
            .spawn(move || writer_loop(writer, &rx))
            .map_err(backend)?;
        let stop_checkpointer = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkpoint_conn = connect(path)?;
        let stop = stop_checkpointer.clone();
        std::thread::Builder::new()
            .name("wasmcron-sqlite-checkpoint".into())
            .spawn(move || checkpointer(checkpoint_conn, &stop))
            .map_err(backend)?;
        Ok(Self {
            tx,
            reader: Arc::new(Mutex::new(reader)),
            kv: Arc::new(kv),
            path: path.to_path_buf(),
            stop_checkpointer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn send(&self, make: impl FnOnce(Reply) -> Cmd) -> Result<(), StoreError> {
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

fn writer_loop(mut conn: Connection, rx: &mpsc::Receiver<Cmd>) {
    while let Ok(first) = rx.recv() {
        let mut cmds = vec![first];
        while cmds.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => cmds.push(c),
                Err(_) => break,
            }
        }
        let results = apply_group(&mut conn, &cmds);
        for (cmd, result) in cmds.into_iter().zip(results) {
            let reply = match cmd {
                Cmd::Insert(_, _, r) | Cmd::Update(_, r) | Cmd::Delete(_, r) | Cmd::Batch(_, r) => {
                    r
                }
            };
            // The caller may have given up (shutdown); nothing to tell.
            let _ = reply.send(result);
        }
    }
}

/// Applies every command in one transaction. Optimistically without
/// savepoints (thousands a second cost real CPU on the one writer thread);
/// if any command fails, the transaction is rolled back and the group
/// replayed with a savepoint per command, so only the failing ones fail.
fn apply_group(conn: &mut Connection, cmds: &[Cmd]) -> Vec<Result<(), StoreError>> {
    let fail_all = |e: StoreError| cmds.iter().map(|_| Err(e.clone())).collect();
    let fast = (|| -> Result<(), StoreError> {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        for cmd in cmds {
            apply(&tx, cmd)?;
        }
        tx.commit().map_err(backend)
    })();
    if fast.is_ok() {
        return cmds.iter().map(|_| Ok(())).collect();
    }
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(backend(e)),
    };
    let mut results = Vec::with_capacity(cmds.len());
    for cmd in cmds {
        let result = match tx.savepoint() {
            Ok(sp) => match apply(&sp, cmd) {
                Ok(()) => sp.commit().map_err(backend),
                Err(e) => Err(e), // dropping the savepoint rolls it back
            },
            Err(e) => Err(backend(e)),
        };
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(backend(e)),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

fn apply(conn: &Connection, cmd: &Cmd) -> Result<(), StoreError> {
    match cmd {
        Cmd::Insert(job, replace, _) => {
            let spec = serde_json::to_string(&job.spec).map_err(backend)?;
            let sql = if *replace {
                "INSERT OR REPLACE INTO jobs (id, spec, created_at, next_run_time, paused, incarnation) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            } else {
                "INSERT INTO jobs (id, spec, created_at, next_run_time, paused, incarnation) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            };
            conn.execute(
                sql,
                params![
                    job.spec.id,
                    spec,
                    ms(job.created_at),
                    job.next_run_time.map(ms),
                    job.paused,
                    job.incarnation
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Duplicate(job.spec.id.clone())
                }
                e => backend(e),
            })?;
        }
        Cmd::Update(job, _) => {
            let spec = serde_json::to_string(&job.spec).map_err(backend)?;
            let n = conn
                .execute(
                    "UPDATE jobs SET spec = ?2, created_at = ?3, next_run_time = ?4, paused = ?5, incarnation = ?6 WHERE id = ?1",
                    params![job.spec.id, spec, ms(job.created_at), job.next_run_time.map(ms), job.paused, job.incarnation],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(job.spec.id.clone()));
            }
        }
        Cmd::Delete(id, _) => {
            let n = conn
                .execute("DELETE FROM jobs WHERE id = ?1", params![id])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(id.clone()));
            }
            conn.execute("DELETE FROM runs WHERE job_id = ?1", params![id])
                .map_err(backend)?;
            conn.execute("DELETE FROM kv WHERE job_id = ?1", params![id])
                .map_err(backend)?;
        }
        Cmd::Batch(writes, _) => {
            for w in writes {
                match w {
                    Prepared::Run { run, outcome, logs } => insert_run(conn, run, outcome, logs)?,
                    Prepared::Other(w) => apply_write(conn, w)?,
                }
            }
        }
    }
    Ok(())
}

fn insert_run(
    conn: &Connection,
    r: &RunRecord,
    outcome: &Option<String>,
    logs: &str,
) -> Result<(), StoreError> {
    // Only for the job's live incarnation: a run of a deleted job that
    // finishes later must not reappear under a new job with its id.
    let mut stmt = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO runs (run_id, job_id, attempt, scheduled_at, due_at, status,
               started_at, ended_at, outcome_kind, outcome, fuel, logs, plugin_hash, note, args,
               incarnation)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16
             WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?2 AND incarnation = ?16)",
        )
        .map_err(backend)?;
    let written = stmt
        .execute(params![
            r.run_id,
            r.job_id,
            r.attempt,
            ms(r.scheduled_at),
            ms(r.due_at),
            r.status.as_str(),
            r.started_at.map(ms),
            r.ended_at.map(ms),
            r.outcome.as_ref().map(|o| o.kind().as_str()),
            outcome,
            i64::try_from(r.fuel).unwrap_or(i64::MAX),
            logs,
            r.plugin_hash,
            r.note,
            r.args,
            r.incarnation,
        ])
        .map_err(backend)?;
    if written == 0 {
        super::memory::dropped_run(r);
    }
    Ok(())
}

fn apply_write(conn: &Connection, w: &Write) -> Result<(), StoreError> {
    match w {
        Write::Run(r) => {
            let (outcome, logs) = encode(r)?;
            insert_run(conn, r, &outcome, &logs)?;
        }
        Write::NextRun { job_id, next } => {
            conn.prepare_cached("UPDATE jobs SET next_run_time = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![job_id, next.map(ms)]))
                .map_err(backend)?;
        }
        Write::Paused { job_id, paused } => {
            conn.prepare_cached("UPDATE jobs SET paused = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![job_id, paused]))
                .map_err(backend)?;
        }
        Write::Prune {
            job_id,
            keep,
            older_than,
        } => {
            conn.prepare_cached(
                "DELETE FROM runs WHERE job_id = ?1 AND status NOT IN ('pending', 'running')
                   AND (scheduled_at < ?3
                        OR run_id NOT IN (SELECT run_id FROM runs WHERE job_id = ?1
                                          ORDER BY scheduled_at DESC, run_id DESC LIMIT ?2))",
            )
            .and_then(|mut s| s.execute(params![job_id, keep, older_than.map_or(i64::MIN, ms)]))
            .map_err(backend)?;
        }
    }
    Ok(())
}

const RUN_COLUMNS: &str = "run_id, job_id, attempt, scheduled_at, due_at, status, started_at, \
                           ended_at, outcome, fuel, logs, plugin_hash, note, args, incarnation";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(5)?;
    let outcome: Option<String> = row.get(8)?;
    let logs: String = row.get(10)?;
    let fuel: i64 = row.get(9)?;
    Ok(RunRecord {
        run_id: row.get(0)?,
        job_id: row.get(1)?,
        attempt: row.get(2)?,
        scheduled_at: from_ms(row.get(3)?),
        due_at: from_ms(row.get(4)?),
        // An unknown status can only come from a newer version; treat the
        // run as interrupted rather than lose the row.
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Interrupted),
        started_at: row.get::<_, Option<i64>>(6)?.map(from_ms),
        ended_at: row.get::<_, Option<i64>>(7)?.map(from_ms),
        outcome: outcome.and_then(|o| serde_json::from_str::<Outcome>(&o).ok()),
        fuel: u64::try_from(fuel).unwrap_or(0),
        logs: serde_json::from_str(&logs).unwrap_or_default(),
        plugin_hash: row.get(11)?,
        note: row.get(12)?,
        args: row.get(13)?,
        incarnation: row.get(14)?,
    })
}

#[async_trait::async_trait]
impl JobStore for SqliteJobStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.read(|conn| {
            let mut snap = Snapshot::default();
            let mut stmt = conn
                .prepare(
                    "SELECT id, spec, created_at, next_run_time, paused, incarnation \
                     FROM jobs ORDER BY id",
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
                    ))
                })
                .map_err(backend)?;
            for row in rows {
                let (id, spec, created, next, paused, incarnation) = row.map_err(backend)?;
                match serde_json::from_str(&spec) {
                    Ok(spec) => snap.jobs.push(JobRecord {
                        spec,
                        created_at: from_ms(created),
                        next_run_time: next.map(from_ms),
                        paused,
                        incarnation,
                    }),
                    Err(e) => snap.broken.push(BrokenJob {
                        id,
                        error: format!("stored spec does not parse: {e}"),
                    }),
                }
            }
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('pending', 'running')"
                ))
                .map_err(backend)?;
            snap.unfinished = stmt
                .query_map([], run_from_row)
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            Ok(snap)
        })
        .await
    }

    async fn insert_job(&self, job: &JobRecord, replace: bool) -> Result<(), StoreError> {
        let job = Box::new(job.clone());
        self.send(|r| Cmd::Insert(job, replace, r)).await
    }

    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let job = Box::new(job.clone());
        self.send(|r| Cmd::Update(job, r)).await
    }

    async fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.send(|r| Cmd::Delete(id, r)).await
    }

    async fn write(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let prepared = batch
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.send(|r| Cmd::Batch(prepared, r)).await
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
                    "SELECT {RUN_COLUMNS} FROM runs WHERE job_id = ?1
                       AND incarnation = (SELECT incarnation FROM jobs WHERE id = ?1)
                     ORDER BY scheduled_at DESC, run_id DESC LIMIT ?2 OFFSET ?3"
                ))
                .map_err(backend)?;
            let (limit, offset) = (
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX),
            );
            stmt.query_map(params![job_id, limit, offset], run_from_row)
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
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
                params![run_id],
                run_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    fn kv(&self) -> Arc<dyn KvStore> {
        self.kv.clone()
    }
}

#[cfg(test)]
mod tests;
