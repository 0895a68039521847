//! Shared helpers for the integration tests: the built plugins' paths and
//! a runtime set up as the host sets it up.

use std::sync::Arc;
use wasmcron::plugin::Plugin;
use wasmcron::runtime::{Limits, RunRequest, Runtime, RuntimeConfig};
use wasmcron::store::MemoryKv;

/// Paths of the plugins built from `plugins/` by this crate's build script.
pub mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

/// A runtime with the default configuration and an in-memory kv store.
///
/// # Panics
/// When the engine cannot be built: every test needs one.
pub fn runtime() -> Runtime {
    runtime_with_kv(Arc::new(MemoryKv::default()))
}

/// A runtime with the default configuration and the given kv store.
///
/// # Panics
/// When the engine cannot be built.
pub fn runtime_with_kv(kv: Arc<MemoryKv>) -> Runtime {
    match Runtime::new(RuntimeConfig::default(), kv) {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build the runtime: {e:#}"),
    }
}

/// Loads a built plugin.
///
/// # Panics
/// When it does not load: the tests' plugins are known good.
pub fn load(runtime: &Runtime, path: &str) -> Plugin {
    match Plugin::load_file(runtime, std::path::Path::new(path)) {
        Ok(p) => p,
        Err(e) => panic!("cannot load {path}: {e}"),
    }
}

/// A run request for `job_id` with `args` and `limits`.
pub fn request(job_id: &str, args: &str, limits: Limits) -> RunRequest {
    RunRequest {
        job_id: job_id.into(),
        run_id: format!("{job_id}-run"),
        scheduled_at: chrono::Utc::now(),
        attempt: 1,
        args: args.into(),
        limits,
    }
}
