//! The key-value data a guest keeps between runs, as the runtime sees it:
//! a trait the runtime's `kv` host import calls, implemented by the job
//! stores (`crate::store`), so the runtime does not depend on the store.

/// Why a kv operation failed on the host side.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The backing store failed; the guest sees `unavailable` and may retry.
    #[error("kv store unavailable: {0}")]
    Unavailable(String),
    /// The job's total kv data would exceed its quota.
    #[error("job kv quota of {quota} bytes exceeded")]
    QuotaExceeded {
        /// The quota, in bytes.
        quota: u64,
    },
}

/// The per-job key-value data guests keep between runs.
///
/// Keys and values are checked against the host's size limits before a
/// backend sees them (see `runtime::host`), so backends need not check.
/// The quota counts the keys' and values' sizes in bytes (UTF-8 bytes for
/// keys, NULs and 4-byte characters included) and every backend keeps a
/// running total per job, so a `set` costs the same however many keys the
/// job holds. Calls are synchronous: they are short and a backend
/// serializes them.
pub trait KvStore: Send + Sync + 'static {
    /// The value under `key` in `job`'s namespace.
    ///
    /// # Errors
    /// [`KvError::Unavailable`] when the backend fails.
    fn get(&self, job: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;

    /// Stores `value` under `key` in `job`'s namespace.
    ///
    /// # Errors
    /// [`KvError::Unavailable`] when the backend fails,
    /// [`KvError::QuotaExceeded`] when the job's data would grow too large.
    fn set(&self, job: &str, key: &str, value: &[u8]) -> Result<(), KvError>;

    /// Removes `key` from `job`'s namespace; a missing key is not an error.
    ///
    /// # Errors
    /// [`KvError::Unavailable`] when the backend fails.
    fn delete(&self, job: &str, key: &str) -> Result<(), KvError>;
}
