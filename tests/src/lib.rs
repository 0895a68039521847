//! Shared helpers for the integration tests: the built plugins' paths and
//! a runtime set up as the host sets it up.

use std::sync::Arc;
use wasmcron::plugin::Plugin;
use wasmcron::runtime::{Limits, RunRequest, Runtime, RuntimeConfig, WitRunCause};
use wasmcron::store::MemoryKv;

pub mod browser;
pub mod cluster;
pub mod host;
pub mod pg;
pub mod slow;
pub mod stores;

/// Paths of the plugins built from `plugins/` by this crate's build script.
pub mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

/// A compile cache for the test plugins, private to the user:
/// `TARGET/tmp/wasmcron-compile-cache`, shared by every checkout that
/// builds into the same target dir (CI's fresh clones among them), so a
/// component compiled once (a Python one takes minutes in a debug build)
/// is not compiled again for a new clone. Entries are keyed by the
/// component's hash and checked against the engine when read, so sharing
/// is safe. Falls back to the build script's `OUT_DIR` when that is not
/// laid out as `TARGET/PROFILE/build/PKG/out`.
pub fn test_cache_dir() -> std::path::PathBuf {
    let out = std::path::Path::new(env!("OUT_DIR"));
    let laid_out = out
        .ancestors()
        .nth(2)
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "build");
    match out.ancestors().nth(4) {
        Some(target) if laid_out => target.join("tmp").join("wasmcron-compile-cache"),
        _ => out.join("compile-cache"),
    }
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
    let cache = wasmcron::plugin::CompileCache::open(&test_cache_dir(), runtime.engine()).ok();
    match Plugin::load_file_cached(runtime, std::path::Path::new(path), cache.as_ref()) {
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
        cause: WitRunCause::Manual,
        parent: None,
        limits,
        grants: Arc::default(),
    }
}

/// A scheduler on a controllable clock, with every test plugin loaded.
pub mod sched {
    use super::plugins;
    use chrono::{DateTime, Utc};
    use std::sync::Arc;
    use std::time::Duration;
    use wasmcron::event::Event;
    use wasmcron::job::JobSpec;
    use wasmcron::plugin::{CompileCache, Plugin, PluginRegistry};
    use wasmcron::runtime::{Runtime, RuntimeConfig};
    use wasmcron::scheduler::{ManualClock, Scheduler, SchedulerConfig, SchedulerParts};
    use wasmcron::store::JobStore;

    /// 2026-01-01T00:00:00Z, where test clocks start.
    pub fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
    }

    /// Parts for a scheduler over `store` on `clock`, all plugins loaded.
    ///
    /// # Panics
    /// When the runtime or a plugin cannot be set up.
    pub fn parts(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) -> SchedulerParts {
        // Host logs in test output (shown for failing tests).
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("wasmcron=info")
            .try_init();
        let runtime = Runtime::new(RuntimeConfig::default(), store.kv()).expect("runtime");
        let registry = PluginRegistry::default();
        // Every scheduler test loads every plugin; compiling them once per
        // test binary run instead of once per test saves minutes.
        let cache = CompileCache::open(&super::test_cache_dir(), runtime.engine()).ok();
        for (name, path) in plugins::ALL {
            if let Ok(p) =
                Plugin::load_file_cached(&runtime, std::path::Path::new(path), cache.as_ref())
            {
                assert_eq!(p.name(), *name);
                registry.insert(p);
            }
        }
        SchedulerParts {
            store,
            runtime: Arc::new(runtime),
            plugins: Arc::new(registry),
            clock,
            config: SchedulerConfig {
                workers: 4,
                ..SchedulerConfig::default()
            },
        }
    }

    /// Starts a scheduler.
    ///
    /// # Panics
    /// When it does not start.
    pub async fn start(store: Arc<dyn JobStore>, clock: Arc<ManualClock>) -> Scheduler {
        Scheduler::start(parts(store, clock)).await.expect("start")
    }

    /// A job spec from JSON.
    ///
    /// # Panics
    /// On bad JSON.
    pub fn spec(json: &str) -> JobSpec {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    /// Waits (up to 60 s of real time, as a safety net only) for the first
    /// event matching `pred`.
    ///
    /// # Panics
    /// When none comes.
    pub async fn wait_for(
        rx: &mut wasmcron::event::EventReceiver,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match rx.recv().await {
                    Ok(e) if pred(&e) => return (*e).clone(),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("event bus closed: {e}"),
                }
            }
        })
        .await;
        found.expect("the expected event did not come")
    }
}
