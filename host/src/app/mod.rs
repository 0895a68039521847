//! `wasmcron run`: everything wired together.
//!
//! Store, runtime, plugins, scheduler; the config file's jobs upserted;
//! then wait for the shutdown signal and stop gracefully. The start and
//! the stop are `app/host.rs`'s, shared with the embedding builder
//! ([`crate::embed`]); what is `run`'s own is the command line's part: the
//! tokens, the listener and the API's own runtime.

mod config;
mod error;
mod folder;
mod host;
mod lock;
mod policy;
mod shared;
mod uploads;

pub use config::{ConfigFile, open_store, read_config};
pub use error::{BoxError, StartError};
pub(crate) use host::{Host, HostOptions};

use crate::api::{ApiState, Tokens};
use crate::plugin::CompileLimits;
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
    let api_address = listener.as_ref().and_then(|l| l.local_addr().ok());
    let host_name = options.host_name.clone().unwrap_or_else(|| {
        let machine = crate::scheduler::default_host_name();
        match api_address {
            Some(addr) => format!("{machine}:{}", addr.port()),
            None => format!("{machine}:{}", std::process::id()),
        }
    });
    // What the hosts of a shared database must agree on: the single
    // --token as before, or with a tokens file every name, role and hash.
    let agreement = match (&options.tokens, &token) {
        (Some(_), Some(tokens)) => Some(tokens.fingerprint()),
        _ => options.token.clone(),
    };
    let host = Host::start(HostOptions {
        db: options.db.clone(),
        lease: options.lease,
        host_name,
        api_address,
        agreement: options.listen.map(|_| agreement),
        plugins_dir: Some(options.plugins.clone()),
        plugin_bytes: Vec::new(),
        jobs_file,
        workers: options.workers,
        default_limits: crate::runtime::Limits::default(),
        cache_dir: options.cache_dir.clone(),
        rescan: options.rescan,
        compile: options.compile,
        audit_keep_for: options.audit_keep_for,
        policy: options.policy.clone(),
        metrics: listener.is_some(),
    })
    .await?;
    let api = match listener {
        Some(listener) => Some(start_api(
            listener,
            host.api_state(token.map(Arc::new), options.auth_reads),
            options.api_limits,
        )?),
        None => None,
    };
    tracing::info!(
        jobs = host.scheduler.job_count(),
        plugins = host.scheduler.plugins().loaded().len(),
        compiling = host.scheduler.plugins().compiling_count(),
        db = %options.db,
        "wasmcron running"
    );
    shutdown.await;
    tracing::info!(grace = ?options.shutdown_grace, "shutting down");
    // Leadership moves at once: no more fires from here, then the lease
    // goes, while this host keeps heartbeating until its runs end (so
    // the next leader's sweep leaves them alone) and records their ends.
    host.stop_firing().await;
    if let Some(api) = api {
        let joined = tokio::task::spawn_blocking(move || api.join());
        if tokio::time::timeout(Duration::from_secs(10), joined)
            .await
            .is_err()
        {
            tracing::warn!("the HTTP API did not stop within 10 s; leaving it");
        }
    }
    host.finish(options.shutdown_grace).await;
    tracing::info!("stopped");
    Ok(())
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
