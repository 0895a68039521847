//! The job's persistent key-value store: the only state runs share.
//!
//! Each job has its own namespace; keys are non-empty UTF-8 strings of at
//! most 256 bytes and values are bytes, at most 1 MiB each (the host enforces
//! both and returns [`KvError`] instead of trapping).

use crate::JobError;
use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::wasmcron::plugin::kv as raw;

/// The bytes stored under `key`, if any.
///
/// # Errors
/// [`KvError`] when the key is invalid or the store is unavailable.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    Ok(raw::get(key)?)
}

/// Store `value` under `key`.
///
/// # Errors
/// [`KvError`] when the key is invalid, the value too large or the store
/// unavailable.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    Ok(raw::set(key, value)?)
}

/// Remove `key` (removing a missing key is fine).
///
/// # Errors
/// [`KvError`] when the key is invalid or the store is unavailable.
pub fn delete(key: &str) -> Result<(), KvError> {
    Ok(raw::delete(key)?)
}

/// The JSON value stored under `key`, deserialized.
///
/// # Errors
/// A [`JobError`]: retryable if the store is unavailable, permanent if the
/// key is invalid or the stored bytes are not a `T`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, JobError> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| JobError::permanent(format!("kv key '{key}' holds invalid JSON: {e}"))),
    }
}

/// Store `value` as JSON under `key`.
///
/// # Errors
/// A [`JobError`] as for [`set`], or permanent if `value` cannot be encoded.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), JobError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| JobError::permanent(format!("cannot encode kv value '{key}': {e}")))?;
    set(key, &bytes)?;
    Ok(())
}

/// Why the host refused a kv call.
///
/// Converts with `?` into a [`JobError`]: retryable when the store was
/// unavailable, permanent otherwise (the same call would fail again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The key is empty or longer than 256 bytes.
    InvalidKey(String),
    /// The value, or the job's total, is larger than the host allows.
    TooLarge(String),
    /// The store could not be reached; retrying later may work.
    Unavailable(String),
}

impl From<raw::KvError> for KvError {
    fn from(err: raw::KvError) -> Self {
        match err {
            raw::KvError::InvalidKey(m) => Self::InvalidKey(m),
            raw::KvError::TooLarge(m) => Self::TooLarge(m),
            raw::KvError::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidKey(m) => write!(f, "invalid kv key: {m}"),
            Self::TooLarge(m) => write!(f, "kv value too large: {m}"),
            Self::Unavailable(m) => write!(f, "kv store unavailable: {m}"),
        }
    }
}

// Not std::error::Error on purpose: JobError's blanket `From<E: Error>` would
// otherwise make every KvError retryable.
impl From<KvError> for JobError {
    fn from(err: KvError) -> Self {
        match err {
            KvError::Unavailable(_) => JobError::retryable(err.to_string()),
            _ => JobError::permanent(err.to_string()),
        }
    }
}
