//! Guests' kv data in the job store's SQLite file.

use crate::store::memory::DEFAULT_JOB_QUOTA;
use crate::store::{KvError, KvStore};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Mutex;

/// Kv data in the `kv` table, on a connection of its own: kv calls are
/// short and synchronous (a host import), and should not queue behind the
/// scheduler's grouped writes.
#[derive(Debug)]
pub struct SqliteKv {
    conn: Mutex<Connection>,
    quota: u64,
}

fn unavailable(e: rusqlite::Error) -> KvError {
    KvError::Unavailable(e.to_string())
}

impl SqliteKv {
    pub(super) fn new(conn: Connection) -> Self {
        Self {
            conn: Mutex::new(conn),
            quota: DEFAULT_JOB_QUOTA,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(unavailable)?;
        let used: i64 = tx
            .query_row(
                "SELECT COALESCE(SUM(length(key) + length(value)), 0) FROM kv
                 WHERE job_id = ?1 AND key != ?2",
                params![job, key],
                |r| r.get(0),
            )
            .map_err(unavailable)?;
        if u64::try_from(used).unwrap_or(0) + (key.len() + value.len()) as u64 > self.quota {
            return Err(KvError::QuotaExceeded { quota: self.quota });
        }
        tx.execute(
            "INSERT OR REPLACE INTO kv (job_id, key, value) VALUES (?1, ?2, ?3)",
            params![job, key, value],
        )
        .map_err(unavailable)?;
        tx.commit().map_err(unavailable)
    }

    fn delete(&self, job: &str, key: &str) -> Result<(), KvError> {
        self.lock()
            .execute(
                "DELETE FROM kv WHERE job_id = ?1 AND key = ?2",
                params![job, key],
            )
            .map(|_| ())
            .map_err(unavailable)
    }
}
