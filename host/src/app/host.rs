//! One host, started and stopped: the start path `wasmcron run` and the
//! embedding builder ([`crate::embed`]) both go through.
//!
//! ```text
//! Host::start: lock (SQLite) ─▶ store ─▶ runtime ─▶ plugins (folder scan, bytes)
//!              ─▶ scheduler ─▶ sidecars, jobs file, grant policy ─▶ watcher, pruner
//! Host::stop_firing: no more fires, lease given up, folder and API streams stopped
//! Host::finish: background tasks joined ─▶ runs get the grace ─▶ lease released ─▶ store closed
//! ```
//!
//! What differs between the two callers is only what they pass in: the
//! binary binds its listener and checks its tokens first (the listener's
//! port names the host), and serves the API on a runtime of its own; an
//! embedding program serves [`Host::api_state`]'s router itself.

use super::config::{self, JobsFile};
use super::error::StartError;
use super::folder::FolderSync;
use super::lock::HostLock;
use super::uploads::Uploads;
use crate::api::{ApiState, ClusterSettings, HostIdentity, Metrics, Tokens};
use crate::plugin::{
    CompileCache, CompileLimits, Compiler, Plugin, PluginError, PluginFolder, PluginRegistry,
    WatchOptions,
};
use crate::runtime::{Limits, Runtime, RuntimeConfig};
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerParts, SystemClock, max_live_runs};
use crate::store::JobStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a host is started with.
pub(crate) struct HostOptions {
    /// `memory`, `sqlite://PATH`, a path, or `postgres://…`.
    pub(crate) db: String,
    /// On PostgreSQL, the leader lease's TTL.
    pub(crate) lease: Duration,
    /// This host's name, resolved by the caller.
    pub(crate) host_name: String,
    /// The API's address as other hosts of a shared store reach it;
    /// `None` when this host serves no API of its own.
    pub(crate) api_address: Option<std::net::SocketAddr>,
    /// What the hosts of a shared store must agree on (see
    /// [`config::open_store_for`]): `None` when this host serves no API.
    pub(crate) agreement: Option<Option<String>>,
    /// The watched plugins folder (created if missing); `None`: none.
    pub(crate) plugins_dir: Option<PathBuf>,
    /// Plugins given as bytes, by name, compiled in this process.
    pub(crate) plugin_bytes: Vec<(String, Vec<u8>)>,
    /// The jobs file, read (parsed here once the store says whether it
    /// changed since it was applied).
    pub(crate) jobs_file: Option<JobsFile>,
    /// Runs at once.
    pub(crate) workers: usize,
    /// Limits of jobs that set none.
    pub(crate) default_limits: Limits,
    /// Where compiled plugins are cached; `None` for no cache.
    pub(crate) cache_dir: Option<PathBuf>,
    /// Rescan the plugins folder at least this often.
    pub(crate) rescan: Duration,
    /// Bounds on compiling a plugin of the folder.
    pub(crate) compile: CompileLimits,
    /// How long audit rows are kept.
    pub(crate) audit_keep_for: Duration,
    /// The operator's grant policy.
    pub(crate) policy: crate::runtime::policy::GrantPolicy,
    /// Count events for `/metrics` (from before recovery).
    pub(crate) metrics: bool,
}

/// A started host.
pub(crate) struct Host {
    /// The running scheduler.
    pub(crate) scheduler: Scheduler,
    /// Counters for `/metrics`.
    pub(crate) metrics: Arc<Metrics>,
    /// Who this host is, for `/cluster`.
    pub(crate) cluster: ClusterSettings,
    /// Plugin uploads into the folder; `None` without a folder.
    pub(crate) uploads: Option<Arc<Uploads>>,
    /// Cancelled when the host stops firing: ends the API's event streams.
    pub(crate) stop_api: CancellationToken,
    /// Kept to close it after the scheduler stops (its last writes first).
    store: Arc<dyn JobStore>,
    stop_watching: CancellationToken,
    /// The folder's watcher and the task applying its changes.
    background: Vec<JoinHandle<()>>,
    /// Held until the host has stopped.
    lock: Option<HostLock>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Opens the store, loads the plugins, starts the scheduler, applies
    /// the sidecars and the jobs file, and starts watching the folder.
    ///
    /// # Errors
    /// See [`StartError`].
    pub(crate) async fn start(options: HostOptions) -> Result<Self, StartError> {
        options.compile.validate().map_err(StartError::Options)?;
        // Held until the host has stopped (released by `finish`).
        let lock = match super::sqlite_path(&options.db) {
            Some(path) => Some(super::lock::lock_sqlite(path).map_err(into_store)?),
            None => None,
        };
        let host = HostIdentity {
            id: crate::store::new_incarnation(),
            name: options.host_name.clone(),
        };
        let shared = crate::store::postgres::is_postgres_url(&options.db);
        let report = Arc::new(std::sync::Mutex::new(crate::store::HostReport::default()));
        let store = config::open_store_for(
            &options.db,
            shared.then(|| crate::store::postgres::LeaseSettings {
                ttl: options.lease,
                host_id: host.id.clone(),
                host_name: host.name.clone(),
                address: options
                    .api_address
                    .map(|a| format!("http://{a}"))
                    .unwrap_or_default(),
                report: report.clone(),
            }),
            options.agreement.as_ref().map(Option::as_deref),
        )
        .map_err(into_store)?;
        // Whatever fails from here closes the store again: an embedding
        // program goes on after a failed start, and must not keep a
        // SQLite file's connections or a lease's heartbeats.
        let started = async {
            let cluster = ClusterSettings {
                host: host.clone(),
                backend: if shared {
                    "postgres"
                } else if options.db == "memory" {
                    "memory"
                } else {
                    "sqlite"
                },
                lease_ttl: shared.then_some(options.lease),
            };
            let kv = store.kv();
            // A jobs file applied at an earlier start, whose jobs nobody changed
            // since, is not parsed again. Any other is parsed here, before the
            // scheduler starts: a bad file stops the start before any job fires.
            let config_marked = options
                .jobs_file
                .as_ref()
                .is_some_and(|f| !shared && FolderSync::marked(kv.as_ref(), &f.digest));
            let config = match &options.jobs_file {
                Some(file) if !config_marked => Some(file.parse().map_err(into_jobs_file)?),
                _ => None,
            };
            // The pool needs a slot for every sandbox that may be live at once:
            // both lanes' runs and the listener deliveries (scheduler/lane.rs).
            let mut runtime_config = RuntimeConfig::default();
            let live = u32::try_from(max_live_runs(options.workers)).unwrap_or(u32::MAX);
            runtime_config.engine.max_concurrent_runs =
                runtime_config.engine.max_concurrent_runs.max(live);
            runtime_config.policy = Arc::new(options.policy.clone());
            let runtime = Arc::new(
                Runtime::new(runtime_config, store.kv())
                    .map_err(|e| StartError::Runtime(format!("{e:#}").into()))?,
            );
            let cache = options.cache_dir.as_deref().and_then(|dir| {
                CompileCache::open(dir, runtime.engine())
                    .inspect_err(|e| tracing::warn!("{e}; compiling without a cache"))
                    .ok()
            });
            let plugins = Arc::new(PluginRegistry::default());
            // Plugins given as bytes come from the embedding program itself,
            // not from a folder anyone may write to: they compile here, in this
            // process, before the scheduler starts (so their jobs fire from the
            // first instant).
            let mut given = Vec::with_capacity(options.plugin_bytes.len());
            for (name, bytes) in options.plugin_bytes {
                let plugin = compile_given(&runtime, cache.clone(), name.clone(), bytes).await?;
                plugins.insert(plugin);
                given.push(name);
            }
            let mut folder = None;
            let mut uploads = None;
            let mut initial = Vec::new();
            if let Some(dir) = &options.plugins_dir {
                if !dir.is_dir() {
                    std::fs::create_dir_all(dir).map_err(|source| StartError::PluginsFolder {
                        action: "creating",
                        path: dir.clone(),
                        source,
                    })?;
                    tracing::info!(dir = %dir.display(), "created the plugins folder; drop NAME.wasm files into it");
                }
                let compiler = Arc::new(Compiler::new(options.compile));
                let mut watched = PluginFolder::new(
                    dir.clone(),
                    runtime.clone(),
                    plugins.clone(),
                    cache.clone(),
                    compiler.clone(),
                );
                uploads = Some(Arc::new(Uploads {
                    folder: dir.clone(),
                    compiler,
                    runtime: runtime.clone(),
                    store: store.clone(),
                }));
                // Start-up reads the folder once: bad files are refused and cache
                // hits (about a millisecond each) loaded before the scheduler
                // starts, so the jobs of every plugin compiled at an earlier
                // start fire from the first instant without being held. Files
                // that need compiling only queue here: nothing (the API, firing,
                // other plugins) waits for them.
                let (changes, _) = watched
                    .scan(true)
                    .map_err(|source| StartError::PluginsFolder {
                        action: "reading",
                        path: dir.clone(),
                        source,
                    })?;
                initial = changes;
                // Entries for plugin versions (or wasmtime builds) unused for a
                // week go.
                watched.prune_cache(Duration::from_secs(7 * 24 * 3600));
                folder = Some(watched);
            }
            let (scheduler, early_events) = Scheduler::start_with_events(SchedulerParts {
                store: store.clone(),
                runtime,
                plugins,
                clock: Arc::new(SystemClock),
                config: SchedulerConfig {
                    workers: options.workers,
                    default_limits: options.default_limits,
                    host_name: host.name.clone(),
                    // The jobs file is applied first (below).
                    defer_start_runs: true,
                    ..SchedulerConfig::default()
                },
            })
            .await
            .map_err(StartError::Scheduler)?;
            // Counting from a subscription made before recovery, so the runs
            // found cut off and the fires missed while the host was down count
            // too.
            let metrics = Arc::new(Metrics::default());
            if options.metrics {
                metrics.spawn_collector_from(early_events);
            }
            for name in &given {
                scheduler.plugin_loaded(name);
            }
            let sync = Arc::new(FolderSync {
                scheduler: scheduler.clone(),
                kv,
                // Without a folder no sidecar was ever read, so none vanished.
                folder: options.plugins_dir.clone().unwrap_or_default(),
            });
            if options.plugins_dir.is_some() {
                sync.apply(initial).await;
                sync.reconcile().await;
            }
            if let Some(file) = options.jobs_file {
                let unchanged = config_marked && sync.config_jobs_present();
                if unchanged {
                    tracing::info!(
                        "jobs file unchanged since it was applied, and its jobs too; not read again"
                    );
                } else {
                    let config = match config {
                        Some(config) => config,
                        None => file.parse().map_err(into_jobs_file)?,
                    };
                    config::apply_jobs_file(&scheduler, &sync, config)
                        .await
                        .map_err(into_jobs_file)?;
                }
                sync.config_applied(&file.digest);
            }
            super::policy::pause_outside(&scheduler).await;
            // `run_on_start` jobs run now, as the jobs file says they are.
            scheduler.started_up();

            let stop_watching = CancellationToken::new();
            let mut background = Vec::new();
            if let Some(folder) = folder {
                let (changes_tx, mut changes_rx) = tokio::sync::mpsc::unbounded_channel();
                background.push(folder.watch(
                    WatchOptions {
                        rescan: options.rescan,
                        ..WatchOptions::default()
                    },
                    changes_tx,
                    stop_watching.clone(),
                ));
                background.push(tokio::spawn(async move {
                    while let Some(changes) = changes_rx.recv().await {
                        sync.apply(changes).await;
                    }
                }));
            }
            if shared {
                super::shared::spawn_shared_tasks(
                    &scheduler,
                    &host,
                    &report,
                    options.plugins_dir,
                    &stop_watching,
                );
            }
            let _pruner = crate::audit::spawn_pruner(
                scheduler.store().clone(),
                options.audit_keep_for,
                stop_watching.clone(),
            );
            Ok(Self {
                scheduler,
                metrics,
                cluster,
                uploads,
                stop_api: CancellationToken::new(),
                store: store.clone(),
                stop_watching,
                background,
                lock: None,
            })
        }
        .await;
        match started {
            Ok(mut host) => {
                host.lock = lock;
                Ok(host)
            }
            Err(e) => {
                store.release_lease().await;
                if let Err(close) = store.close().await {
                    tracing::warn!(error = %close, "closing the job store after a failed start");
                }
                drop(lock);
                Err(e)
            }
        }
    }

    /// What the API's handlers share, with `tokens` (none: every route is
    /// open) and `auth_reads`.
    pub(crate) fn api_state(&self, tokens: Option<Arc<Tokens>>, auth_reads: bool) -> ApiState {
        ApiState {
            scheduler: self.scheduler.clone(),
            metrics: self.metrics.clone(),
            tokens,
            auth_reads,
            stop: self.stop_api.clone(),
            cluster: self.cluster.clone(),
            plugin_admin: self
                .uploads
                .clone()
                .map(|u| u as Arc<dyn crate::api::PluginAdmin>),
        }
    }

    /// The first half of a stop: no more fires (on PostgreSQL the lease
    /// goes at once, while this host keeps heartbeating until its runs end,
    /// so the next leader's sweep leaves them alone), the folder is no
    /// longer watched, and the API's event streams end so an HTTP server
    /// can drain. Runs going on go on.
    pub(crate) async fn stop_firing(&self) {
        self.scheduler.stop_firing();
        self.store.resign_lease().await;
        self.stop_watching.cancel();
        self.stop_api.cancel();
    }

    /// The second half: the folder's tasks end, running jobs get `grace`
    /// to finish (then are stopped and recorded as interrupted), the lease
    /// is released and the store closed. Calls [`Self::stop_firing`]
    /// first when the caller has not.
    pub(crate) async fn finish(mut self, grace: Duration) {
        if !self.stop_watching.is_cancelled() {
            self.stop_firing().await;
        }
        for task in self.background.drain(..) {
            let _ = task.await;
        }
        self.scheduler.shutdown(grace).await;
        // After the runs this host started have ended and been recorded:
        // the heartbeats stop and the host row goes.
        self.store.release_lease().await;
        if let Err(e) = self.store.close().await {
            tracing::warn!(error = %e, "closing the job store");
        }
        // Last: another host (or a restart in this process) may now open
        // the SQLite file.
        drop(self.lock.take());
    }
}

/// A plugin given as bytes, compiled (through the cache when there is
/// one) on the blocking pool: a compile takes the CPU for a while.
async fn compile_given(
    runtime: &Arc<Runtime>,
    cache: Option<CompileCache>,
    name: String,
    bytes: Vec<u8>,
) -> Result<Plugin, StartError> {
    let runtime = runtime.clone();
    let task_name = name.clone();
    tokio::task::spawn_blocking(move || {
        Plugin::load_bytes_cached(&runtime, task_name, &bytes, cache.as_ref())
    })
    .await
    .map_err(|e| StartError::Plugin {
        name: name.clone(),
        source: PluginError::CompilerFailed {
            detail: format!("the compile task failed: {e}"),
        },
    })?
    .map_err(|source| StartError::Plugin { name, source })
}

fn into_store(e: anyhow::Error) -> StartError {
    StartError::Store(e.into())
}

fn into_jobs_file(e: anyhow::Error) -> StartError {
    StartError::JobsFile(e.into())
}
