//! The host imports of world `job`: `log` and `kv`.
//!
//! Every size the guest controls is capped here, before anything is stored:
//! keys, values, messages and fields. Refusals reach the guest as a
//! `kv-error`; they never trap.

use super::bindings::wasmcron::plugin::{kv, log, types};
use super::capture::LogLevel;
use super::state::RunState;
use crate::store::KvError;

/// Longest kv key, in bytes.
pub const MAX_KV_KEY: usize = 256;
/// Largest kv value, in bytes.
pub const MAX_KV_VALUE: usize = 1 << 20;

impl types::Host for RunState {}

impl log::Host for RunState {
    fn log(&mut self, level: log::Level, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.capture.log(level, &message, fields);
    }
}

fn check_key(key: &str) -> Result<(), kv::KvError> {
    if key.is_empty() {
        return Err(kv::KvError::InvalidKey("the key is empty".into()));
    }
    if key.len() > MAX_KV_KEY {
        return Err(kv::KvError::InvalidKey(format!(
            "the key is {} bytes; the limit is {MAX_KV_KEY}",
            key.len()
        )));
    }
    Ok(())
}

fn to_guest(err: KvError) -> kv::KvError {
    match err {
        KvError::Unavailable(m) => kv::KvError::Unavailable(m),
        KvError::QuotaExceeded { .. } => kv::KvError::TooLarge(err.to_string()),
    }
}

impl kv::Host for RunState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, kv::KvError> {
        check_key(&key)?;
        self.kv.get(&self.job_id, &key).map_err(to_guest)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), kv::KvError> {
        check_key(&key)?;
        if value.len() > MAX_KV_VALUE {
            return Err(kv::KvError::TooLarge(format!(
                "the value is {} bytes; the limit is {MAX_KV_VALUE}",
                value.len()
            )));
        }
        self.kv.set(&self.job_id, &key, &value).map_err(to_guest)
    }

    fn delete(&mut self, key: String) -> Result<(), kv::KvError> {
        check_key(&key)?;
        self.kv.delete(&self.job_id, &key).map_err(to_guest)
    }
}
