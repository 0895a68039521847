//! Guests' kv data in the job store's database.
//!
//! [`KvStore`] is synchronous: a guest's host import calls it on whatever
//! thread runs the guest, which is a tokio worker (of the scheduler's
//! runtime or of the slow lane's). The database work runs on the store's
//! own runtime (`StoreRuntime`); the caller's thread only waits
//! for the answer on a channel, with a deadline. Nothing the answer
//! depends on needs the caller's runtime, so this cannot deadlock however
//! many of its workers are waiting (as it could if the query ran on the
//! caller's runtime while every worker of it waited).
//!
//! Reads use the read pool. Writes go through the writer task, in its
//! grouped transactions, as SQLite's do. The quota check reads the job's
//! running total (`kv_usage`, kept by a trigger in the same transaction),
//! so a set costs the same with 10 keys or 100,000; sizes are bytes
//! (`octet_length` of the key's UTF-8 bytes, stored as `bytea`, and of
//! the value).

use super::StoreRuntime;
use super::conn::{ANSWER_TIMEOUT, classify, pool_error};
use super::writes::Cmd;
use crate::store::memory::DEFAULT_JOB_QUOTA;
use crate::store::{KvError, KvStore, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use tokio::sync::mpsc;

/// Kv data in the `kv` table.
#[derive(Debug)]
pub struct PostgresKv {
    runtime: Arc<StoreRuntime>,
    pool: deadpool_postgres::Pool,
    writer: mpsc::UnboundedSender<Cmd>,
    quota: u64,
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

impl PostgresKv {
    pub(super) fn new(
        runtime: Arc<StoreRuntime>,
        pool: deadpool_postgres::Pool,
        writer: mpsc::UnboundedSender<Cmd>,
    ) -> Self {
        Self {
            runtime,
            pool,
            writer,
            quota: DEFAULT_JOB_QUOTA,
        }
    }

    /// Bytes `job` holds (keys plus values), as the quota counts them.
    ///
    /// # Errors
    /// [`KvError::Unavailable`] when the database fails or does not answer
    /// within 10 s.
    pub fn used(&self, job: &str) -> Result<u64, KvError> {
        let pool = self.pool.clone();
        let job = job.to_owned();
        let used: Option<i64> = self
            .wait(async move {
                let client = pool.get().await.map_err(pool_error)?;
                client
                    .query_opt(
                        "SELECT bytes FROM kv_usage WHERE job_id = $1::text",
                        &[&job],
                    )
                    .await
                    .map_err(classify)?
                    .map(|r| r.try_get(0))
                    .transpose()
                    .map_err(classify)
            })
            .map_err(unavailable)?;
        Ok(used.map_or(0, |u| u64::try_from(u).unwrap_or(0)))
    }

    /// Runs `fut` on the store's runtime and waits for it on this thread.
    fn wait<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.runtime.handle().spawn(async move {
            let result = tokio::time::timeout(ANSWER_TIMEOUT, fut)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unwritable(format!(
                        "no answer from the database within {}s",
                        ANSWER_TIMEOUT.as_secs()
                    )))
                });
            let _ = tx.send(result);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the store's runtime has stopped".into()))?
    }

    /// Sends `make(reply)` to the writer and waits for its answer.
    fn write(
        &self,
        make: impl FnOnce(std_mpsc::SyncSender<Result<(), KvError>>) -> Cmd,
    ) -> Result<(), KvError> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        let stopped = || KvError::Unavailable("the store's writer has stopped".into());
        self.writer.send(make(reply)).map_err(|_| stopped())?;
        // The writer answers every command within its own deadlines (a
        // group's ANSWER_TIMEOUT, twice for a replayed one); this bound
        // only guards against a writer that died mid-group.
        answer
            .recv_timeout(ANSWER_TIMEOUT * 4)
            .map_err(|_| stopped())?
    }
}

impl KvStore for PostgresKv {
    fn get(&self, job: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let pool = self.pool.clone();
        let (job, key) = (job.to_owned(), key.as_bytes().to_vec());
        self.wait(async move {
            let client = pool.get().await.map_err(pool_error)?;
            let stmt = client
                .prepare_cached("SELECT value FROM kv WHERE job_id = $1::text AND key = $2::bytea")
                .await
                .map_err(classify)?;
            client
                .query_opt(&stmt, &[&job, &key])
                .await
                .map_err(classify)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(classify)
        })
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
