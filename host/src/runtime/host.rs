//! The host imports of worlds `job` and `listener`: `log` and `kv`, in
//! both versions of the package (0.1.0 and 0.2.0, whose `log` and `kv`
//! are the same; each version's are linked under its own names).
//!
//! Every size the guest controls is capped here, before anything is stored:
//! keys, values, messages and fields. Refusals reach the guest as a
//! `kv-error`; they never trap.
//!
//! `log` is linked by hand rather than through the generated bindings: those
//! would lift the whole `fields` list into host memory before the call (a
//! guest passing millions of empty fields made the host hold ~126 MiB per
//! call). Here the list stays in guest memory as a [`WasmList`] and only the
//! fields that are kept are read and copied.

use super::bindings::v0_1::wasmcron::plugin::{kv, log, types};
use super::bindings::v0_2::wasmcron::plugin as v0_2;
use super::capture::{self, LogLevel, MAX_FIELDS};
use super::kv::KvError;
use super::state::RunState;
use wasmtime::StoreContextMut;
use wasmtime::component::{HasSelf, Linker, WasmList, WasmStr};

/// The WIT names of the log interface, as components import it: one per
/// version of the package.
const LOG_INTERFACES: [&str; 2] = ["wasmcron:plugin/log@0.1.0", "wasmcron:plugin/log@0.2.0"];

/// Longest kv key, in bytes.
pub const MAX_KV_KEY: usize = 256;
/// Largest kv value, in bytes.
pub const MAX_KV_VALUE: usize = 1 << 20;

impl types::Host for RunState {}
impl v0_2::types::Host for RunState {}

/// Links the imports of both versions' worlds: `types` and `kv` through the
/// generated bindings, `log` by hand.
///
/// # Errors
/// When the linker already defines one of them.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    types::add_to_linker::<_, HasSelf<RunState>>(linker, |s| s)?;
    kv::add_to_linker::<_, HasSelf<RunState>>(linker, |s| s)?;
    v0_2::types::add_to_linker::<_, HasSelf<RunState>>(linker, |s| s)?;
    v0_2::kv::add_to_linker::<_, HasSelf<RunState>>(linker, |s| s)?;
    add_log_to_linker(linker)
}

/// Links `wasmcron:plugin/log`'s `log` function, in each version.
///
/// The `level` argument is lifted as 0.1.0's enum in both: a component's
/// enum is type-checked by its case names, which 0.2.0 keeps.
///
/// # Errors
/// When the linker already defines it.
fn add_log_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    for interface in LOG_INTERFACES {
        linker.instance(interface)?.func_wrap(
            "log",
            |store: StoreContextMut<'_, RunState>,
             (level, message, fields): (log::Level, WasmStr, WasmList<(WasmStr, WasmStr)>)| {
                log(store, level, &message, &fields)
            },
        )?;
    }
    Ok(())
}

/// One `log` call. Lifting the strings charged the guest fuel for their
/// length already; reading them here borrows guest memory, and only the
/// message and the first [`MAX_FIELDS`] fields are read at all. Invalid
/// UTF-8 (which no well-formed guest sends) traps, as the generated
/// bindings would.
fn log(
    mut store: StoreContextMut<'_, RunState>,
    level: log::Level,
    message: &WasmStr,
    fields: &WasmList<(WasmStr, WasmStr)>,
) -> wasmtime::Result<()> {
    let level = match level {
        log::Level::Trace => LogLevel::Trace,
        log::Level::Debug => LogLevel::Debug,
        log::Level::Info => LogLevel::Info,
        log::Level::Warn => LogLevel::Warn,
        log::Level::Error => LogLevel::Error,
    };
    let capture = store.data().capture.clone();
    let read = fields.len().min(MAX_FIELDS);
    let more_fields = fields.len() - read;
    if capture.is_full() {
        // Nothing will be kept: count the text without copying it.
        let mut bytes = message.to_str(&store)?.len();
        for i in 0..read {
            if let Some(field) = fields.get(&mut store, i) {
                let (k, v) = field?;
                bytes += k.to_str(&store)?.len() + v.to_str(&store)?.len();
            }
        }
        capture.count_dropped(bytes);
        return Ok(());
    }
    let mut kept = Vec::with_capacity(read);
    for i in 0..read {
        if let Some(field) = fields.get(&mut store, i) {
            let (k, v) = field?;
            kept.push(capture::field(&k.to_str(&store)?, &v.to_str(&store)?));
        }
    }
    let message = message.to_str(&store)?;
    capture.log(level, &message, kept, more_fields);
    Ok(())
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

/// 0.2.0's `kv-error`: the same cases as 0.1.0's.
fn to_v0_2(err: kv::KvError) -> v0_2::kv::KvError {
    match err {
        kv::KvError::InvalidKey(m) => v0_2::kv::KvError::InvalidKey(m),
        kv::KvError::TooLarge(m) => v0_2::kv::KvError::TooLarge(m),
        kv::KvError::Unavailable(m) => v0_2::kv::KvError::Unavailable(m),
    }
}

/// 0.2.0's `kv` is 0.1.0's: the same checks, the same namespace.
impl v0_2::kv::Host for RunState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, v0_2::kv::KvError> {
        kv::Host::get(self, key).map_err(to_v0_2)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), v0_2::kv::KvError> {
        kv::Host::set(self, key, value).map_err(to_v0_2)
    }

    fn delete(&mut self, key: String) -> Result<(), v0_2::kv::KvError> {
        kv::Host::delete(self, key).map_err(to_v0_2)
    }
}
