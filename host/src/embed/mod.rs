//! wasmcron inside your own program: a [`Builder`] that starts the host
//! `wasmcron run` would start (same store, plugins, scheduler and API
//! code), and the [`Wasmcron`] handle it gives you.
//!
//! ```text
//! Builder (store, plugins, workers, limits, policy) ──start──▶ Wasmcron (a Clone handle)
//!   add / put / replace / patch / remove / pause / resume / run_now / job / runs
//!   subscribe ──▶ Event stream       router ──▶ axum::Router to nest under your prefix
//!   begin_stop (no more fires, event streams end) ──▶ stop (runs get the grace, store closed)
//! ```
//!
//! It is the shape of an APScheduler inside a FastAPI app: start it where
//! your service starts, call the handle from your own handlers, stop it
//! when your service stops. The crate's front page has the whole example;
//! `host/examples/embed.rs` is a service to copy.
//!
//! # Plugins: a folder, or bytes
//! A [`Builder::plugins_dir`] is watched as `wasmcron run` watches
//! `--plugins`: files (and their sidecars) come and go while the host
//! runs, and each is compiled **in a child process** bounded in memory and
//! time, which is this same executable re-run with a hidden argument. A
//! program that uses a folder must therefore call [`compiler_child`] first
//! thing in `main`. Plugins given as bytes ([`Builder::plugin`]) are your
//! program's own and compile in this process; they need no such call.
//!
//! # What the router does not do
//! [`Wasmcron::router`] is the API's routes and nothing around them:
//! without [`Builder::api_token`] every route is open to whoever reaches
//! your server, and the limits `wasmcron run` puts on its own listener
//! (connections, header and request timeouts) are your server's to set.
//! The dashboard's scripts call the API at the server's root, so under a
//! prefix only the JSON routes work.

mod error;
mod handle;

pub use error::{Error, StartError};
pub use handle::Wasmcron;

use crate::app::{Host, HostOptions};
use crate::job::{JobSpec, Overlap, ThinVec};
use crate::plugin::CompileLimits;
use crate::runtime::Limits;
use crate::runtime::policy::GrantPolicy;
use crate::trigger::TriggerSpec;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where jobs, runs and the guests' kv data are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// In memory: gone when the process ends (tests, demos).
    Memory,
    /// A SQLite file, created if missing; one host per file (a second
    /// host on it is refused at start).
    Sqlite(PathBuf),
    /// A PostgreSQL database, `postgres://USER[:PASSWORD]@HOST:PORT/DB`,
    /// shared with other hosts (they elect one leader to fire).
    Postgres(String),
}

/// Settings of an embedded host; [`Builder::start`] starts it.
///
/// Every setting has the default `wasmcron run` has: an in-memory store,
/// no plugins, 16 workers per core (at most 200), the default per-run
/// limits (100 G fuel, 30 s, 128 MiB), 30 s of shutdown grace, the
/// compile cache in `~/.cache/wasmcron/compiled`, no grant policy (jobs may
/// be granted anything) and no API token.
#[derive(Debug, Clone)]
pub struct Builder {
    store: StoreKind,
    plugins_dir: Option<PathBuf>,
    plugin_bytes: Vec<(String, Vec<u8>)>,
    workers: usize,
    default_limits: Limits,
    shutdown_grace: Duration,
    cache_dir: Option<PathBuf>,
    compile: CompileLimits,
    rescan: Duration,
    lease: Duration,
    host_name: Option<String>,
    policy: GrantPolicy,
    api_token: Option<String>,
    audit_keep_for: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// A builder with every default (see [`Builder`]).
    pub fn new() -> Self {
        Self {
            store: StoreKind::Memory,
            plugins_dir: None,
            plugin_bytes: Vec::new(),
            workers: crate::scheduler::default_workers(),
            default_limits: Limits::default(),
            shutdown_grace: Duration::from_secs(30),
            cache_dir: crate::plugin::default_cache_dir(),
            compile: CompileLimits::default(),
            rescan: Duration::from_secs(2),
            lease: Duration::from_secs(15),
            host_name: None,
            policy: GrantPolicy::default(),
            api_token: None,
            audit_keep_for: Duration::from_secs(90 * 24 * 3600),
        }
    }

    /// Keeps everything in memory (the default).
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.store = StoreKind::Memory;
        self
    }

    /// Keeps jobs and runs in the SQLite file at `path` (created with its
    /// folder if missing), so they survive a restart.
    #[must_use]
    pub fn sqlite(mut self, path: impl Into<PathBuf>) -> Self {
        self.store = StoreKind::Sqlite(path.into());
        self
    }

    /// Keeps jobs and runs in PostgreSQL at `url`
    /// (`postgres://USER[:PASSWORD]@HOST:PORT/DB`), connected to and
    /// migrated at start.
    #[must_use]
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.store = StoreKind::Postgres(url.into());
        self
    }

    /// The store, as a value.
    #[must_use]
    pub fn store(mut self, store: StoreKind) -> Self {
        self.store = store;
        self
    }

    /// Watches `dir` for `NAME.wasm` plugins and `NAME.toml` sidecars
    /// (created if missing). Needs [`compiler_child`] in `main`.
    #[must_use]
    pub fn plugins_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugins_dir = Some(dir.into());
        self
    }

    /// Adds plugin `name` from its component bytes (e.g.
    /// `include_bytes!("hello.wasm")`), compiled at start in this process
    /// (through the compile cache). A folder file of the same name, when
    /// there is a folder, replaces it once loaded.
    #[must_use]
    pub fn plugin(mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.plugin_bytes.push((name.into(), bytes.into()));
        self
    }

    /// Runs at once (at least 1; default 16 per core, at most 200).
    #[must_use]
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Limits of jobs whose spec sets none (fuel, wall-clock timeout,
    /// memory in bytes).
    #[must_use]
    pub fn default_limits(mut self, limits: Limits) -> Self {
        self.default_limits = limits;
        self
    }

    /// How long running jobs get to finish at [`Wasmcron::stop`] before
    /// they are stopped and recorded as interrupted (default 30 s).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Where compiled plugins are cached, so a restart does not compile
    /// again; `None` compiles every time.
    #[must_use]
    pub fn compile_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Bounds on compiling a folder plugin (memory, CPU time, how many at
    /// once).
    #[must_use]
    pub fn compile_limits(mut self, limits: CompileLimits) -> Self {
        self.compile = limits;
        self
    }

    /// Rescans the plugins folder at least this often (default 2 s; file
    /// events trigger a scan sooner).
    #[must_use]
    pub fn rescan(mut self, every: Duration) -> Self {
        self.rescan = every;
        self
    }

    /// This host's name, recorded on its runs and shown by `/cluster`
    /// (default: the machine's name and the process id).
    #[must_use]
    pub fn host_name(mut self, name: impl Into<String>) -> Self {
        self.host_name = Some(name.into());
        self
    }

    /// On PostgreSQL, the leader lease's time to live (1 s to 1 h,
    /// default 15 s).
    #[must_use]
    pub fn lease(mut self, ttl: Duration) -> Self {
        self.lease = ttl;
        self
    }

    /// What jobs may be granted (directories, environment, HTTP hosts),
    /// as `wasmcron run --allow-*` sets it; a stored job outside it is
    /// paused at start with a note. Default: no bounds.
    #[must_use]
    pub fn grant_policy(mut self, policy: GrantPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Requires this bearer token (16+ bytes) on the state-changing routes
    /// of [`Wasmcron::router`], as `wasmcron run --token` does; reads stay
    /// open. Without it every route is open.
    #[must_use]
    pub fn api_token(mut self, secret: impl Into<String>) -> Self {
        self.api_token = Some(secret.into());
        self
    }

    /// How long audit rows are kept (at least 1 h; default 90 days).
    #[must_use]
    pub fn audit_keep_for(mut self, keep: Duration) -> Self {
        self.audit_keep_for = keep;
        self
    }

    /// Opens the store, loads the plugins, recovers what a previous
    /// process left (runs cut off, fires missed) and starts firing. Call
    /// it inside a tokio multi-threaded runtime. On PostgreSQL the connect
    /// and migration block the calling worker thread (up to the 5 s
    /// connect timeout), as they do at `wasmcron run`'s start.
    ///
    /// # Errors
    /// [`Error::Option`] for a setting out of range (naming the method);
    /// [`Error::Start`] when the store cannot be opened (a SQLite file
    /// another host holds, an unreachable PostgreSQL), a plugin given as
    /// bytes is refused, the plugins folder cannot be created or read, or
    /// the stored jobs cannot be read.
    pub async fn start(self) -> Result<Wasmcron, Error> {
        let bad = |option, problem: &str| Error::Option {
            option,
            problem: problem.to_owned(),
        };
        if self.workers == 0 {
            return Err(bad("workers", "must be at least 1"));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.lease) {
            return Err(bad("lease", "must be between 1 s and 1 h"));
        }
        if self.audit_keep_for < Duration::from_secs(3600) {
            return Err(bad("audit_keep_for", "must be at least 1 h"));
        }
        let tokens = match &self.api_token {
            Some(secret) => Some(std::sync::Arc::new(
                crate::api::Tokens::single(secret).map_err(|e| Error::Option {
                    option: "api_token",
                    problem: e,
                })?,
            )),
            None => None,
        };
        let db = match &self.store {
            StoreKind::Memory => "memory".to_owned(),
            StoreKind::Sqlite(path) => format!("sqlite://{}", path.display()),
            StoreKind::Postgres(url) => url.clone(),
        };
        let host = Host::start(HostOptions {
            db,
            lease: self.lease,
            host_name: self.host_name.unwrap_or_else(|| {
                format!(
                    "{}:{}",
                    crate::scheduler::default_host_name(),
                    std::process::id()
                )
            }),
            // The router is served by the embedding program, at an address
            // (and under a prefix) this host does not know; other hosts of
            // a shared store are told none.
            api_address: None,
            agreement: None,
            plugins_dir: self.plugins_dir,
            plugin_bytes: self.plugin_bytes,
            jobs_file: None,
            workers: self.workers,
            default_limits: self.default_limits,
            cache_dir: self.cache_dir,
            rescan: self.rescan,
            compile: self.compile,
            audit_keep_for: self.audit_keep_for,
            policy: self.policy,
            metrics: true,
        })
        .await?;
        Ok(Wasmcron::new(host, tokens, self.shutdown_grace))
    }
}

/// A job spec with only `id`, `plugin` and `trigger` set and every other
/// field at its default (as a JSON body with just those three would have
/// them): no args, no exclusions, the host's limits, no retries,
/// `coalesce`, one instance at a time, 100 runs of history. Set more
/// fields on the value it returns, e.g. `spec.args = json!({...})`.
pub fn job_spec(id: impl Into<String>, plugin: impl Into<String>, trigger: TriggerSpec) -> JobSpec {
    JobSpec {
        id: id.into(),
        plugin: plugin.into(),
        trigger: Box::new(trigger),
        exclude: ThinVec::new(),
        args: serde_json::Value::Object(serde_json::Map::new()),
        limits: None,
        retry: None,
        misfire_grace: None,
        coalesce: true,
        max_instances: 1,
        overlap: Overlap::default(),
        max_buffered: None,
        paused: false,
        run_on_start: false,
        on_success: ThinVec::new(),
        on_failure: ThinVec::new(),
        keep_runs: 100,
        keep_for: None,
        listeners: ThinVec::new(),
        pause_after_failures: None,
        capabilities: None,
    }
}

/// An interval trigger: every `every` (whole seconds; at least 1), the
/// first fire one interval after the job is added.
pub fn every(every: Duration) -> TriggerSpec {
    TriggerSpec::Interval {
        every: format!("{}s", every.as_secs()),
        start: None,
        end: None,
        jitter: None,
    }
}

/// The plugin compiler's process, for a program that watches a plugins
/// folder: call it first thing in `main` and return its exit code when it
/// gives one.
///
/// Folder plugins are compiled by this same executable, re-run with a
/// hidden first argument (`__compile`) and bounded in memory and CPU time
/// (so a file shaped to be expensive cannot take the service down). This
/// returns `None` in every other process, at once.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     if let Some(code) = wasmcron::embed::compiler_child() {
///         return code;
///     }
///     // ... build the tokio runtime, start the service ...
///     std::process::ExitCode::SUCCESS
/// }
/// ```
pub fn compiler_child() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some(crate::plugin::compile::SUBCOMMAND) {
        return None;
    }
    // The parent always passes both, as numbers (plugin/compile.rs); a
    // process started otherwise by hand gets the setup failure's code.
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (value("--memory"), value("--cpu-seconds")) {
        (Some(memory), Some(cpu_seconds)) => {
            Some(crate::plugin::compile::child_main(memory, cpu_seconds))
        }
        _ => {
            eprintln!("__compile needs --memory BYTES and --cpu-seconds SECONDS");
            Some(ExitCode::from(5))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{every, job_spec};
    use std::time::Duration;

    #[test]
    fn job_spec_has_the_defaults_a_json_body_with_three_fields_has() {
        let parsed: crate::job::JobSpec = serde_json::from_value(serde_json::json!({
            "id": "greet",
            "plugin": "hello",
            "trigger": {"type": "interval", "every": "10s"},
        }))
        .expect("a minimal spec parses");
        assert_eq!(
            job_spec("greet", "hello", every(Duration::from_secs(10))),
            parsed
        );
    }
}
