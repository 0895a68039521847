//! `wasmcron run`: everything wired together.
//!
//! Store, runtime, plugins, scheduler; the config file's jobs upserted;
//! then wait for the shutdown signal and stop gracefully.

mod config;
mod folder;
mod lock;
mod policy;
mod uploads;

pub use config::{ConfigFile, open_store, read_config};
use folder::{FolderSync, report_job};

use crate::api::{ApiState, Metrics, Tokens};
use crate::audit::{Action, Actor, Change};
use crate::plugin::{
    CompileCache, CompileLimits, Compiler, PluginFolder, PluginRegistry, WatchOptions,
};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::scheduler::{Scheduler, SchedulerConfig, SchedulerParts, SystemClock, max_live_runs};
use anyhow::Context as _;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings of `wasmcron run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The folder of `.wasm` plugins.
    pub plugins: PathBuf,
    /// `memory`, `sqlite://PATH`, a path, or `postgres://…`.
    pub db: String,
    /// On PostgreSQL, the leader lease's TTL.
    pub lease: Duration,
    /// This host's name (`None`: the machine's name and the API port).
    pub host_name: Option<String>,
    /// A TOML file of jobs to upsert at start.
    pub config: Option<PathBuf>,
    /// Runs at once.
    pub workers: usize,
    /// How long running jobs get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Where compiled plugins are cached; `None` for no cache.
    pub cache_dir: Option<PathBuf>,
    /// Rescan the plugins folder at least this often.
    pub rescan: Duration,
    /// Bounds on compiling a plugin (memory, time, how many at once).
    pub compile: CompileLimits,
    /// Where the HTTP API listens; `None` for no API.
    pub listen: Option<std::net::SocketAddr>,
    /// The single admin token (`--token`).
    pub token: Option<String>,
    /// A file of named tokens with roles (`--tokens`).
    pub tokens: Option<PathBuf>,
    /// How long audit rows are kept (`--audit-keep-for`).
    pub audit_keep_for: Duration,
    /// Require the token for reads too.
    pub auth_reads: bool,
    /// What one API client may hold: connections, header and request
    /// timeouts, header size.
    pub api_limits: crate::api::ServeLimits,
    /// The operator's grant policy (`--allow-*`).
    pub policy: crate::runtime::policy::GrantPolicy,
}

/// Refuses to expose the API beyond this machine without a token, and
/// checks the tokens are worth having: the single `--token` (an admin
/// named `token`) and those of the `--tokens` file, together.
///
/// # Errors
/// A message saying why and what to do.
pub fn check_api_security(
    listen: std::net::SocketAddr,
    token: Option<&str>,
    tokens_file: Option<&std::path::Path>,
    auth_reads: bool,
) -> anyhow::Result<Option<Tokens>> {
    let mut tokens = match tokens_file {
        Some(path) => Some(Tokens::read(path)?),
        None => None,
    };
    if let Some(secret) = token {
        match &mut tokens {
            Some(tokens) => tokens.add_single(secret).map_err(anyhow::Error::msg)?,
            None => tokens = Some(Tokens::single(secret).map_err(anyhow::Error::msg)?),
        }
    }
    if tokens.is_none() && !listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {listen} is reachable from other machines, and without a token anyone \
             there could add jobs; set --token (or WASMCRON_TOKEN) to a secret of 16+ \
             characters or give --tokens FILE, or listen on 127.0.0.1"
        );
    }
    if auth_reads && tokens.is_none() {
        anyhow::bail!("--auth-reads needs --token (or WASMCRON_TOKEN) or --tokens");
    }
    Ok(tokens)
}

/// Runs the host until `shutdown` resolves, then stops gracefully.
///
/// # Errors
/// Start-up failures: store, runtime, plugin folder, config file.
pub async fn run(options: RunOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    options.compile.validate().map_err(anyhow::Error::msg)?;
    // Read now (an unreadable file fails the start before anything runs);
    // parsed once the store says whether it changed since it was applied.
    let jobs_file = options
        .config
        .as_deref()
        .map(config::JobsFile::read)
        .transpose()?;
    let token = match options.listen {
        Some(addr) => check_api_security(
            addr,
            options.token.as_deref(),
            options.tokens.as_deref(),
            options.auth_reads,
        )?,
        None => None,
    };
    // Bind before anything else starts, so a taken port fails fast. A std
    // listener: it is handed to the API's own runtime.
    let listener = match options.listen {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("listening on {addr} (--listen)"))?;
            listener
                .set_nonblocking(true)
                .context("setting up the API listener")?;
            Some(listener)
        }
        None => None,
    };
    // Held until the host has stopped (dropped when `run` returns).
    let _lock = match sqlite_path(&options.db) {
        Some(path) => Some(lock::lock_sqlite(path)?),
        None => None,
    };
    let host = crate::api::HostIdentity {
        id: crate::store::new_incarnation(),
        name: options.host_name.clone().unwrap_or_else(|| {
            let machine = crate::scheduler::default_host_name();
            match listener.as_ref().and_then(|l| l.local_addr().ok()) {
                Some(addr) => format!("{machine}:{}", addr.port()),
                None => format!("{machine}:{}", std::process::id()),
            }
        }),
    };
    let shared = crate::store::postgres::is_postgres_url(&options.db);
    // What the hosts of a shared database must agree on: the single
    // --token as before, or with a tokens file every name, role and hash.
    let agreement = match (&options.tokens, &token) {
        (Some(_), Some(tokens)) => Some(tokens.fingerprint()),
        _ => options.token.clone(),
    };
    let report = Arc::new(std::sync::Mutex::new(crate::store::HostReport::default()));
    let store = config::open_store_for(
        &options.db,
        shared.then(|| crate::store::postgres::LeaseSettings {
            ttl: options.lease,
            host_id: host.id.clone(),
            host_name: host.name.clone(),
            address: listener
                .as_ref()
                .and_then(|l| l.local_addr().ok())
                .map(|a| format!("http://{a}"))
                .unwrap_or_default(),
            report: report.clone(),
        }),
        options.listen.map(|_| agreement.as_deref()),
    )?;
    let cluster = crate::api::ClusterSettings {
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
    // Kept to close it after the scheduler stops (its last writes first).
    let store_handle = store.clone();
    let kv = store.kv();
    // A jobs file applied at an earlier start, whose jobs nobody changed
    // since, is not parsed again. Any other is parsed here, before the
    // scheduler starts: a bad file stops the start before any job fires.
    let config_marked = jobs_file
        .as_ref()
        .is_some_and(|f| !shared && FolderSync::marked(kv.as_ref(), &f.digest));
    let config = match &jobs_file {
        Some(file) if !config_marked => Some(file.parse()?),
        _ => None,
    };
    // The pool needs a slot for every sandbox that may be live at once:
    // both lanes' runs and the listener deliveries (scheduler/lane.rs).
    let mut runtime_config = RuntimeConfig::default();
    let live = u32::try_from(max_live_runs(options.workers)).unwrap_or(u32::MAX);
    runtime_config.engine.max_concurrent_runs = runtime_config.engine.max_concurrent_runs.max(live);
    runtime_config.policy = Arc::new(options.policy.clone());
    let runtime = Arc::new(
        Runtime::new(runtime_config, store.kv())
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .context("starting the WebAssembly runtime")?,
    );
    let cache = options.cache_dir.as_deref().and_then(|dir| {
        CompileCache::open(dir, runtime.engine())
            .inspect_err(|e| tracing::warn!("{e}; compiling without a cache"))
            .ok()
    });
    let plugins = Arc::new(PluginRegistry::default());
    if !options.plugins.is_dir() {
        std::fs::create_dir_all(&options.plugins).with_context(|| {
            format!("creating the plugins folder {}", options.plugins.display())
        })?;
        tracing::info!(dir = %options.plugins.display(), "created the plugins folder; drop NAME.wasm files into it");
    }
    let compiler = Arc::new(Compiler::new(options.compile));
    let mut folder = PluginFolder::new(
        options.plugins.clone(),
        runtime.clone(),
        plugins.clone(),
        cache,
        compiler.clone(),
    );
    let uploads = Arc::new(uploads::Uploads {
        folder: options.plugins.clone(),
        compiler,
        runtime: runtime.clone(),
        store: store.clone(),
    });
    // Start-up reads the folder once: bad files are refused and cache hits
    // (about a millisecond each) loaded before the scheduler starts, so the
    // jobs of every plugin compiled at an earlier start fire from the first
    // instant without being held. Files that need compiling only queue
    // here: nothing (the API, firing, other plugins) waits for them.
    let (initial, _) = folder
        .scan(true)
        .with_context(|| format!("reading the plugins folder {}", options.plugins.display()))?;
    // Entries for plugin versions (or wasmtime builds) unused for a week go.
    folder.prune_cache(Duration::from_secs(7 * 24 * 3600));
    let (scheduler, early_events) = Scheduler::start_with_events(SchedulerParts {
        store,
        runtime,
        plugins,
        clock: Arc::new(SystemClock),
        config: SchedulerConfig {
            workers: options.workers,
            host_name: host.name.clone(),
            // The jobs file is applied first (below).
            defer_start_runs: true,
            ..SchedulerConfig::default()
        },
    })
    .await
    .context("starting the scheduler")?;
    // Counting from a subscription made before recovery, so the runs found
    // cut off and the fires missed while the host was down count too.
    let metrics = Arc::new(Metrics::default());
    if listener.is_some() {
        metrics.spawn_collector_from(early_events);
    }
    let sync = Arc::new(FolderSync {
        scheduler: scheduler.clone(),
        kv,
        folder: options.plugins.clone(),
    });
    sync.apply(initial).await;
    sync.reconcile().await;
    if let Some(file) = jobs_file {
        let unchanged = config_marked && sync.config_jobs_present();
        if unchanged {
            tracing::info!(
                "jobs file unchanged since it was applied, and its jobs too; not read again"
            );
        } else {
            let config = match config {
                Some(config) => config,
                None => file.parse()?,
            };
            apply_jobs_file(&scheduler, &sync, config).await?;
        }
        sync.config_applied(&file.digest);
    }
    policy::pause_outside(&scheduler).await;
    // `run_on_start` jobs run now, as the jobs file says they are.
    scheduler.started_up();

    let stop_watching = tokio_util::sync::CancellationToken::new();
    let (changes_tx, mut changes_rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = folder.watch(
        WatchOptions {
            rescan: options.rescan,
            ..WatchOptions::default()
        },
        changes_tx,
        stop_watching.clone(),
    );
    let applier = tokio::spawn(async move {
        while let Some(changes) = changes_rx.recv().await {
            sync.apply(changes).await;
        }
    });
    if shared {
        // Plugins pushed through any host's API.
        tokio::spawn(uploads::sync_loop(
            options.plugins.clone(),
            scheduler.store().clone(),
            stop_watching.clone(),
        ));
    }
    if shared {
        // This host's events, passed to the others' GET /events.
        let mut events = scheduler.subscribe();
        let store = scheduler.store().clone();
        let host = host.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => store.share_event(crate::api::tagged(&event, &host).to_string()),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    if shared {
        // What this host tells the others at each heartbeat (GET /cluster),
        // and, every 5 s, whether its plugins differ from theirs.
        let scheduler = scheduler.clone();
        let report = report.clone();
        let stop = stop_watching.clone();
        let me = host.id.clone();
        tokio::spawn(async move {
            let mut divergence = crate::store::leader::DivergenceWatch::default();
            for tick in 0u64.. {
                let now = crate::store::HostReport {
                    plugins: scheduler
                        .plugins()
                        .loaded()
                        .iter()
                        .map(|p| crate::store::PluginVersion {
                            name: p.name().to_owned(),
                            hash: p.hash().as_str().to_owned(),
                        })
                        .collect(),
                    in_flight: scheduler.runs_here() as u64,
                };
                if tick % 5 == 4 {
                    divergence
                        .look(scheduler.store().as_ref(), &me, &now.plugins)
                        .await;
                }
                *report
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = stop.cancelled() => return,
                }
            }
        });
    }
    let _pruner = crate::audit::spawn_pruner(
        scheduler.store().clone(),
        options.audit_keep_for,
        stop_watching.clone(),
    );
    let stop_api = tokio_util::sync::CancellationToken::new();
    let api = match listener {
        Some(listener) => Some(start_api(
            listener,
            ApiState {
                scheduler: scheduler.clone(),
                metrics,
                tokens: token.map(Arc::new),
                auth_reads: options.auth_reads,
                stop: stop_api.clone(),
                cluster,
                plugin_admin: Some(uploads),
            },
            options.api_limits,
        )?),
        None => None,
    };
    tracing::info!(
        jobs = scheduler.job_count(),
        plugins = scheduler.plugins().loaded().len(),
        compiling = scheduler.plugins().compiling_count(),
        db = %options.db,
        "wasmcron running"
    );
    shutdown.await;
    tracing::info!(grace = ?options.shutdown_grace, "shutting down");
    // Leadership moves at once: no more fires from here, then the lease
    // goes, while this host keeps heartbeating until its runs end (so
    // the next leader's sweep leaves them alone) and records their ends.
    scheduler.stop_firing();
    store_handle.resign_lease().await;
    stop_watching.cancel();
    stop_api.cancel();
    let _ = watcher.await;
    let _ = applier.await;
    if let Some(api) = api {
        let joined = tokio::task::spawn_blocking(move || api.join());
        if tokio::time::timeout(Duration::from_secs(10), joined)
            .await
            .is_err()
        {
            tracing::warn!("the HTTP API did not stop within 10 s; leaving it");
        }
    }
    scheduler.shutdown(options.shutdown_grace).await;
    // After the runs this host started have ended and been recorded: the
    // heartbeats stop and the host row goes.
    store_handle.release_lease().await;
    if let Err(e) = store_handle.close().await {
        tracing::warn!(error = %e, "closing the job store");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Upserts the jobs file's jobs and removes those it declared at an
/// earlier start and no longer does.
async fn apply_jobs_file(
    scheduler: &Scheduler,
    sync: &FolderSync,
    config: ConfigFile,
) -> anyhow::Result<()> {
    for (name, spec) in config.calendars {
        let same = scheduler
            .calendar_set()
            .get(&name)
            .is_some_and(|c| *c.spec() == spec);
        if !same {
            // The file is the truth for what it declares: a change made
            // through the API since is replaced, and the log says so.
            tracing::info!(calendar = %name, "calendar defined from the jobs file");
            let detail =
                serde_json::json!({ "spec": serde_json::to_value(&spec).unwrap_or_default() });
            scheduler
                .put_calendar(&name, spec)
                .await
                .map_err(|e| anyhow::Error::new(e).context(format!("config calendars.{name}")))?;
            let change = Change::named(Action::CalendarPut, &name).with_detail(detail);
            crate::audit::record(scheduler.store().as_ref(), &config_actor(), vec![change]).await;
        }
    }
    let ids: Vec<String> = config.jobs.iter().map(|j| j.id.clone()).collect();
    // One audit row per job the file adds or changes (none for the rest).
    let changes: Vec<Change> = config
        .jobs
        .iter()
        .filter(|spec| !scheduler.has_spec(spec))
        .filter_map(|spec| {
            let before = scheduler.job(&spec.id).ok().map(|j| j.spec);
            Change::job_written(before.as_ref(), spec)
        })
        .collect();
    let done = scheduler.upsert_jobs(config.jobs).await.map_err(|e| {
        anyhow::Error::new(e.error).context(format!("config jobs[{}] (id '{}')", e.index, e.id))
    })?;
    crate::audit::record(scheduler.store().as_ref(), &config_actor(), changes).await;
    for info in &done.notes {
        report_job(info, scheduler.plugins());
    }
    tracing::info!(
        unchanged = done.unchanged,
        written = done.written,
        "jobs file applied"
    );
    sync.config_declares(ids).await;
    Ok(())
}

/// Who changes made by the jobs file are recorded as.
fn config_actor() -> Actor {
    Actor::internal("config")
}

/// Serves the API on a runtime of its own (one worker thread and its own
/// blocking pool) until `stop`. Measured (docs/BENCHMARKS.md): sharing the
/// scheduler's runtime, a flood of API requests pushed fire lateness p99
/// from 2 ms to 32 ms; the scheduler's workers now never queue behind
/// request handlers.
fn start_api(
    listener: std::net::TcpListener,
    state: ApiState,
    limits: crate::api::ServeLimits,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let stop = state.stop.clone();
    let addr = listener.local_addr().context("the API's address")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("wasmcron-api")
        .enable_all()
        .build()
        .context("starting the API's runtime")?;
    let thread = std::thread::Builder::new()
        .name("wasmcron-api".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "the HTTP API cannot use its listener");
                        return;
                    }
                };
                tracing::info!(%addr, auth = state.tokens.is_some(), "HTTP API listening on http://{addr}");
                if let Err(e) =
                    crate::api::serve_with(listener, state, limits, async move { stop.cancelled().await }).await
                {
                    tracing::error!(error = %e, "the HTTP API stopped");
                }
            });
        })
        .context("starting the API's thread")?;
    Ok(thread)
}

/// Resolves on ctrl-c or SIGTERM.
///
/// The handlers are installed when this is *called*, not when the future is
/// first polled: `run` polls it only once start-up is done, and a signal
/// arriving before then (a supervisor stopping a host that is still
/// loading its plugins) would otherwise kill the process outright instead
/// of stopping it gracefully.
///
/// Must be called inside a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut int, mut term) = streams;
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = int => {}
                () = term => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The file path of a SQLite `--db` value (`sqlite://PATH` or a bare
/// path); `None` for `memory` and PostgreSQL URLs.
fn sqlite_path(db: &str) -> Option<&std::path::Path> {
    if db == "memory" || crate::store::postgres::is_postgres_url(db) {
        return None;
    }
    let path = db.strip_prefix("sqlite://").unwrap_or(db);
    (!path.contains("://")).then(|| std::path::Path::new(path))
}
