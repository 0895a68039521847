//! `wasmcron run`: everything wired together.
//!
//! Store, runtime, plugins, scheduler; the config file's jobs upserted;
//! then wait for the shutdown signal and stop gracefully.

use crate::job::JobSpec;
use crate::plugin::PluginRegistry;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerParts, SystemClock};
use crate::store::sqlite::SqliteJobStore;
use crate::store::{JobStore, MemoryJobStore};
use anyhow::Context as _;
use serde::Deserialize;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Settings of `wasmcron run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The folder of `.wasm` plugins.
    pub plugins: PathBuf,
    /// `memory`, `sqlite://PATH`, or a path.
    pub db: String,
    /// A TOML file of jobs to upsert at start.
    pub config: Option<PathBuf>,
    /// Runs at once.
    pub workers: usize,
    /// How long running jobs get to finish at shutdown.
    pub shutdown_grace: Duration,
}

/// The jobs file: `version = 1` and `[[jobs]]` tables, each a job spec.
///
/// ```toml
/// version = 1
///
/// [[jobs]]
/// id = "greet"
/// plugin = "hello"
/// args = { name = "world" }
/// trigger = { type = "interval", every = "10s" }
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The file format's version; only 1 exists.
    #[serde(default = "one")]
    pub version: u32,
    /// Jobs to upsert at start.
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
}

fn one() -> u32 {
    1
}

/// Reads and checks a jobs file.
///
/// # Errors
/// Unreadable file, bad TOML (with line and column), unknown version.
pub fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: ConfigFile =
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    anyhow::ensure!(
        config.version == 1,
        "{}: version {} is not supported (this wasmcron reads version 1)",
        path.display(),
        config.version
    );
    Ok(config)
}

/// Opens the store named by `db`.
///
/// # Errors
/// When the database cannot be opened.
pub fn open_store(db: &str) -> anyhow::Result<Arc<dyn JobStore>> {
    if db == "memory" {
        return Ok(Arc::new(MemoryJobStore::default()));
    }
    let path = db.strip_prefix("sqlite://").unwrap_or(db);
    anyhow::ensure!(
        !path.contains("://"),
        "--db {db}: unsupported; use `memory`, `sqlite://PATH` or a file path"
    );
    let store = SqliteJobStore::open(Path::new(path))
        .with_context(|| format!("opening the job store {path}"))?;
    Ok(Arc::new(store))
}

/// Runs the host until `shutdown` resolves, then stops gracefully.
///
/// # Errors
/// Start-up failures: store, runtime, plugin folder, config file.
pub async fn run(options: RunOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = options.config.as_deref().map(read_config).transpose()?;
    let store = open_store(&options.db)?;
    let runtime = Runtime::new(RuntimeConfig::default(), store.kv())
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("starting the WebAssembly runtime")?;
    let plugins = Arc::new(PluginRegistry::default());
    if options.plugins.is_dir() {
        plugins
            .load_dir(&runtime, &options.plugins)
            .with_context(|| format!("reading the plugins folder {}", options.plugins.display()))?;
    } else {
        tracing::warn!(dir = %options.plugins.display(), "plugins folder does not exist; no plugins loaded");
    }
    let scheduler = Scheduler::start(SchedulerParts {
        store,
        runtime: Arc::new(runtime),
        plugins,
        clock: Arc::new(SystemClock),
        config: SchedulerConfig {
            workers: options.workers,
            ..SchedulerConfig::default()
        },
    })
    .await
    .context("starting the scheduler")?;
    if let Some(config) = config {
        for (i, spec) in config.jobs.into_iter().enumerate() {
            let id = spec.id.clone();
            let info = scheduler
                .upsert_job(spec)
                .await
                .with_context(|| format!("config jobs[{i}] (id '{id}')"))?;
            for w in &info.warnings {
                tracing::warn!(job = %id, "{w}");
            }
            if !info.plugin_loaded {
                tracing::warn!(job = %id, plugin = %info.spec.plugin, "the job's plugin is not loaded; its fires are recorded as missed until it is");
            }
        }
    }
    let jobs = scheduler.jobs();
    tracing::info!(
        jobs = jobs.len(),
        plugins = scheduler.plugins().loaded().len(),
        db = %options.db,
        "wasmcron running"
    );
    shutdown.await;
    tracing::info!(grace = ?options.shutdown_grace, "shutting down");
    scheduler.shutdown(options.shutdown_grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
