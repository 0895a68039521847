//! Guests' kv data in the job store's SQLite file.
//!
//! Reads use a connection of their own (WAL lets them run beside the
//! writer). Writes go through the store's writer thread, in its grouped
//! transactions. Before, they had a writing connection of their own, and
//! under write load other jobs' kv calls failed with "database is locked"
//! (issue 10): a deferred transaction that has read cannot be upgraded to a
//! write once another connection committed, and no busy timeout helps
//! then; with `BEGIN IMMEDIATE` instead it would still poll for a lock the
//! writer takes back-to-back, and give up after the timeout. Queued behind
//! the writer, a kv write waits for at most the group in progress, in turn,
//! and never fails because others are writing.
//!
//! The quota check reads the job's running total (`kv_usage`, kept by
//! triggers in the same transaction, see `0003_*.sql`), so a set costs the
//! same with 10 keys or 100,000. Sizes are bytes: `length(CAST(key AS
//! BLOB))`, since `length()` of TEXT counts characters and stops at a NUL.

use super::backend;
use super::writer::{Cmd, Done};
use crate::store::memory::DEFAULT_JOB_QUOTA;
use crate::store::{KvError, KvStore, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::{Mutex, mpsc};

/// Kv data in the `kv` table.
#[derive(Debug)]
pub struct SqliteKv {
    reads: Mutex<Connection>,
    writer: mpsc::Sender<Cmd>,
    quota: u64,
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

impl SqliteKv {
    pub(super) fn new(reads: Connection, writer: mpsc::Sender<Cmd>) -> Self {
        Self {
            reads: Mutex::new(reads),
            writer,
            quota: DEFAULT_JOB_QUOTA,
        }
    }

    /// Bytes `job` holds (keys plus values), as the quota counts them.
    ///
    /// # Errors
    /// [`KvError::Unavailable`] when the database fails.
    pub fn used(&self, job: &str) -> Result<u64, KvError> {
        let used: Option<i64> = self
            .lock()
            .prepare_cached("SELECT bytes FROM kv_usage WHERE job_id = ?1")
            .and_then(|mut s| s.query_row(params![job], |r| r.get(0)).optional())
            .map_err(unavailable)?;
        Ok(used.map_or(0, |u| u64::try_from(u).unwrap_or(0)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `make(reply)` to the writer and waits for its answer.
    fn write(
        &self,
        make: impl FnOnce(mpsc::SyncSender<Result<(), KvError>>) -> Cmd,
    ) -> Result<(), KvError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let stopped = || KvError::Unavailable("the store's writer thread has stopped".into());
        self.writer.send(make(reply)).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

impl KvStore for SqliteKv {
    fn get(&self, job: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.lock()
            .prepare_cached("SELECT value FROM kv WHERE job_id = ?1 AND key = ?2")
            .and_then(|mut s| s.query_row(params![job, key], |r| r.get(0)).optional())
            .map_err(unavailable)
    }

    fn set(&self, job: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        let quota = self.quota;
        self.write(|reply| Cmd::KvSet {
            job: job.to_owned(),
            key: key.to_owned(),
            value: value.to_vec(),
            quota,
            reply,
        })
    }

    fn delete(&self, job: &str, key: &str) -> Result<(), KvError> {
        self.write(|reply| Cmd::KvDelete {
            job: job.to_owned(),
            key: key.to_owned(),
            reply,
        })
    }
}

/// In the writer's transaction: stores `value` under `key` unless the job
/// would then hold more than `quota` bytes.
pub(super) fn set(
    conn: &Connection,
    job: &str,
    key: &str,
    value: &[u8],
    quota: u64,
) -> Result<Done, StoreError> {
    let used: i64 = conn
        .prepare_cached("SELECT bytes FROM kv_usage WHERE job_id = ?1")
        .and_then(|mut s| s.query_row(params![job], |r| r.get(0)).optional())
        .map_err(backend)?
        .unwrap_or(0);
    // The entry being replaced, if any: the same key, so only its value's
    // size differs.
    let old: i64 = conn
        .prepare_cached(
            "SELECT length(CAST(key AS BLOB)) + length(CAST(value AS BLOB)) FROM kv
             WHERE job_id = ?1 AND key = ?2",
        )
        .and_then(|mut s| s.query_row(params![job, key], |r| r.get(0)).optional())
        .map_err(backend)?
        .unwrap_or(0);
    let after = u64::try_from(used - old).unwrap_or(0) + (key.len() + value.len()) as u64;
    if after > quota {
        return Ok(Done::OverQuota);
    }
    // An upsert, not INSERT OR REPLACE: the update trigger keeps kv_usage.
    conn.prepare_cached(
        "INSERT INTO kv (job_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![job, key, value]))
    .map_err(backend)?;
    Ok(Done::Applied)
}

/// In the writer's transaction: removes `key` (the delete trigger keeps
/// kv_usage).
pub(super) fn delete(conn: &Connection, job: &str, key: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM kv WHERE job_id = ?1 AND key = ?2")
        .and_then(|mut s| s.execute(params![job, key]))
        .map(|_| ())
        .map_err(backend)
}

/// In the writer's transaction: removes all of a deleted job's kv data.
pub(super) fn delete_job(conn: &Connection, job: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM kv WHERE job_id = ?1", params![job])
        .map_err(backend)?;
    conn.execute("DELETE FROM kv_usage WHERE job_id = ?1", params![job])
        .map_err(backend)?;
    Ok(())
}
