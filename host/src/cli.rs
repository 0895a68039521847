//! The `wasmcron` command line. `main.rs` only parses and calls [`run`].

use crate::runtime::{Limits, RunRequest, Runtime, RuntimeConfig};
use crate::store::MemoryKv;
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Run scheduled jobs as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasmcron", version, about)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    command: Command,
}

// `Run` carries every option of the host and the other commands a few
// each; the value is parsed once per process, so its size costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scheduler: load the plugins, start the jobs, record the runs.
    Run {
        /// The folder of `.wasm` plugins (each `NAME.wasm` is plugin NAME).
        #[arg(long, default_value = "wasmcron-plugins")]
        plugins: PathBuf,
        /// The job store: `sqlite://PATH` (default `sqlite://wasmcron.db`), a
        /// path, `memory`, or `postgres://USER@HOST:PORT/DB` (several hosts
        /// may share one PostgreSQL database; one leads at a time).
        #[arg(long, env = "WASMCRON_DB", default_value = "sqlite://wasmcron.db")]
        db: String,
        /// On PostgreSQL: the leader lease's time to live, e.g. `15s`. The
        /// leader renews it every third of this; when a leader dies another
        /// host leads after it.
        #[arg(long, default_value = "15s", value_parser = parse_lease)]
        lease: std::time::Duration,
        /// This host's name, shown in `/cluster` and recorded on the runs
        /// it runs (default: the machine's name and the API port).
        #[arg(long, env = "WASMCRON_HOST_NAME")]
        host_name: Option<String>,
        /// A TOML file of jobs to add (or update) at start.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Runs at once (default: 16 per core, at most 200).
        #[arg(long)]
        workers: Option<usize>,
        /// How long running jobs get to finish at shutdown, e.g. `30s`.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        shutdown_grace: std::time::Duration,
        /// Where compiled plugins are cached (default
        /// `$XDG_CACHE_HOME/wasmcron/compiled` or `~/.cache/wasmcron/compiled`).
        #[arg(long, env = "WASMCRON_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Compile every plugin at every start; write no cache.
        #[arg(long, conflicts_with = "cache_dir")]
        no_cache: bool,
        /// Rescan the plugins folder at least this often, e.g. `2s` (file
        /// events trigger a scan sooner where the platform has them).
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        rescan: std::time::Duration,
        /// Memory (address space) one plugin compile may use, e.g. `2GiB`,
        /// `512MiB`. A plugin that needs more is refused.
        #[arg(long, default_value = "2GiB", value_parser = crate::plugin::compile::parse_bytes)]
        compile_memory: u64,
        /// CPU time one plugin compile may use, e.g. `60s` (and twice that
        /// in wall-clock time). A plugin that needs more is refused.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        compile_timeout: std::time::Duration,
        /// Plugins compiled at once (default: one per core, at least 2).
        #[arg(long)]
        compile_jobs: Option<usize>,
        /// Where the HTTP API listens (`127.0.0.1:0` picks a free port).
        /// Anything but loopback needs --token.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Run without the HTTP API.
        #[arg(long, conflicts_with_all = ["listen", "token", "tokens"])]
        no_api: bool,
        /// Bearer token required for state-changing API routes: one token
        /// with the `admin` role, named `token` in the audit log.
        #[arg(long, env = "WASMCRON_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A TOML file of named tokens with roles (`read`, `operate`,
        /// `admin`) and the SHA-256 of each secret; `wasmcron token new`
        /// prints an entry. May be given with --token.
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Require a token for reads as well (all but /healthz, /auth and
        /// /openapi.json); any role may read.
        #[arg(long)]
        auth_reads: bool,
        /// How long the audit log keeps its rows, e.g. `90d` (the
        /// default) or `365d`; older ones are pruned every hour.
        #[arg(long, default_value = "90d", value_parser = parse_keep_for)]
        audit_keep_for: std::time::Duration,
        /// API connections served at once; more are answered 503 and
        /// closed.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
        api_max_connections: u32,
        /// A request's headers must arrive within this long of its
        /// connection opening or going idle, e.g. `10s` (slow or idle
        /// clients are disconnected).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        api_header_timeout: std::time::Duration,
        /// A request's body must arrive within this long of its headers,
        /// e.g. `30s`; else 408. A request received in full runs to its
        /// end, however long it takes.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        api_request_timeout: std::time::Duration,
        /// The operator's grant policy.
        #[command(flatten)]
        policy: crate::cli_policy::PolicyArgs,
    },
    /// Work with plugin files.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Check cron expressions before trusting them.
    #[command(subcommand)]
    Cron(CronCommand),
    /// Jobs of a running host (through its HTTP API).
    #[command(subcommand)]
    Jobs(crate::cli_client::JobsCommand),
    /// Run history of a running host.
    #[command(subcommand)]
    Runs(crate::cli_client::RunsCommand),
    /// The plugins a running host has loaded or refused.
    #[command(subcommand)]
    Plugins(crate::cli_client::PluginsCommand),
    /// Named calendars of a running host: days its jobs skip.
    #[command(subcommand)]
    Calendars(crate::cli_client::CalendarsCommand),
    /// A running host's audit log: who changed what, newest first.
    Audit(crate::cli_client::AuditArgs),
    /// API tokens for `--tokens`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Ask a running host about the hosts sharing its store.
    #[command(subcommand)]
    Cluster(crate::cli_client::ClusterCommand),
    /// Make a plugin project for one job (or, with --listener, an error
    /// listener): sources with a commented example (typed args, logs, kv),
    /// the WIT it targets, the guest SDK (Rust) or helper module (Python,
    /// JavaScript; with an args.schema.json) and a README. Then `wasmcron
    /// plugin build DIR`.
    New {
        /// The plugin's name (lowercase letters, digits, `-`, `_`).
        name: String,
        /// Its language: rust, python (componentize-py) or js
        /// (componentize-js).
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::scaffold::Lang,
        /// Where to write it (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// An error listener instead of a job.
        #[arg(long)]
        listener: bool,
    },
    /// Print a shell completion script, e.g. `source <(wasmcron completions
    /// bash)` in ~/.bashrc, `wasmcron completions zsh >
    /// ~/.zfunc/_wasmcron`, `wasmcron completions fish >
    /// ~/.config/fish/completions/wasmcron.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal: the plugin compiler process `wasmcron run` starts (reads
    /// a component on stdin, writes it compiled to stdout, within limits).
    #[command(name = "__compile", hide = true)]
    Compile {
        /// Address-space limit, bytes.
        #[arg(long)]
        memory: u64,
        /// CPU-time limit, seconds.
        #[arg(long)]
        cpu_seconds: u64,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a token: prints its secret once (give it to its user; the host
    /// never stores it) and the entry to add to the --tokens file.
    New {
        /// The token's name, as the audit log shows it, e.g. `ci-bot`.
        name: String,
        /// What it may do: `read`, `operate` (plus pause, resume, run now,
        /// backfill, replay, stop) or `admin` (everything).
        #[arg(long, value_parser = crate::api::Role::parse)]
        role: crate::api::Role,
    },
}

#[derive(Debug, Subcommand)]
enum CronCommand {
    /// Print the next fire times of an expression.
    Next {
        /// The expression, quoted: `'0 9 * * mon-fri'`.
        expr: String,
        /// IANA time zone of the wall times, e.g. `Europe/Berlin`.
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Start after this RFC 3339 time instead of now.
        #[arg(long)]
        after: Option<String>,
        /// How many fire times to print.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        count: u32,
        /// Print a JSON array of RFC 3339 times.
        #[arg(long)]
        json: bool,
        /// Leave out fires on this date `YYYY-MM-DD` or range
        /// `YYYY-MM-DD..YYYY-MM-DD`, read in `--tz` (repeat for more); they
        /// are listed as skipped. (A host's named calendars: `GET
        /// /cron/next?exclude=NAME`.)
        #[arg(long)]
        exclude: Vec<String>,
    },
    /// Say what an expression means, in words.
    Explain {
        /// The expression, quoted.
        expr: String,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Build the plugin project in DIR (made by `wasmcron new`) with its
    /// language's toolchain, check the component as `plugin check` does,
    /// and print where it is. Rust: cargo (Cargo.toml); Python:
    /// componentize-py (pyproject.toml with [tool.wasmcron]); JavaScript:
    /// componentize-js (package.json with "wasmcron"). Python and
    /// JavaScript write DIR/NAME.wasm, with DIR/args.schema.json embedded.
    Build {
        /// The project's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        bounds: CompileBounds,
    },
    /// Load and validate a plugin: prints its world, imports and exports,
    /// or why it cannot be used. Exits non-zero when it cannot.
    Check {
        /// The `.wasm` component.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        bounds: CompileBounds,
    },
    /// Run a plugin once, with default limits unless given, and print the
    /// outcome. Exits non-zero unless the run succeeded.
    Run {
        /// The `.wasm` component.
        file: PathBuf,
        /// The job's arguments, JSON.
        #[arg(long, default_value = "{}")]
        args: String,
        /// Job id the run pretends to belong to (names its kv namespace).
        #[arg(long, default_value = "cli")]
        job_id: String,
        /// Fuel budget (instructions).
        #[arg(long)]
        fuel: Option<u64>,
        /// Wall-clock timeout, e.g. `30s`.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Memory limit in MiB.
        #[arg(long)]
        memory_mib: Option<u64>,
        /// Capabilities, as in a job spec:
        /// `{"dirs":[{"host":"/tmp/x","guest":"/data","mode":"rw"}],"env":["TZ"],"http":["https://example.com"]}`.
        #[arg(long)]
        capabilities: Option<String>,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        bounds: CompileBounds,
    },
}

/// The compile bounds of `plugin check` and `plugin run`, which compile in
/// a child process as the host does: the file may be anyone's.
#[derive(Debug, clap::Args)]
struct CompileBounds {
    /// Memory (address space) the compile may use, e.g. `2GiB`.
    #[arg(long, default_value = "2GiB", value_parser = crate::plugin::compile::parse_bytes)]
    compile_memory: u64,
    /// CPU time the compile may use, e.g. `60s` (and twice that in
    /// wall-clock time).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    compile_timeout: std::time::Duration,
    /// A compile cache to read and fill (e.g. the host's,
    /// `~/.cache/wasmcron/compiled`): a file compiled before loads in
    /// milliseconds. Without it every call compiles afresh (a Python or
    /// JavaScript component takes a while).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

impl CompileBounds {
    /// Loads `file` under these bounds, through the cache if one is given.
    async fn load(
        &self,
        runtime: &Runtime,
        file: &std::path::Path,
    ) -> anyhow::Result<crate::plugin::Plugin> {
        let compiler = self.compiler()?;
        let loaded = match &self.cache_dir {
            Some(dir) => {
                let cache = crate::plugin::CompileCache::open(dir, runtime.engine())
                    .with_context(|| format!("--cache-dir {}", dir.display()))?;
                compiler.load_file_cached(runtime, file, &cache).await
            }
            None => compiler.load_file(runtime, file).await,
        };
        Ok(loaded?)
    }

    fn compiler(&self) -> anyhow::Result<crate::plugin::compile::Compiler> {
        let limits = crate::plugin::compile::CompileLimits {
            memory: self.compile_memory,
            time: self.compile_timeout,
            parallel: 1,
        };
        limits.validate().map_err(anyhow::Error::msg)?;
        Ok(crate::plugin::compile::Compiler::new(limits))
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(s).map_err(|e| e.to_string())
}

/// An audit retention: at least an hour (a shorter one would prune
/// changes before anyone could read them).
fn parse_keep_for(s: &str) -> Result<std::time::Duration, String> {
    let keep = parse_duration(s)?;
    if keep < std::time::Duration::from_secs(3600) {
        return Err(format!(
            "{s}: the audit log must keep its rows at least 1h; 90d is the default"
        ));
    }
    Ok(keep)
}

/// A lease TTL: at least a second (renewals go every third of it) and at
/// most an hour (a dead leader is replaced only after it).
fn parse_lease(s: &str) -> Result<std::time::Duration, String> {
    let ttl = parse_duration(s)?;
    if ttl < std::time::Duration::from_secs(1) || ttl > std::time::Duration::from_secs(3600) {
        return Err(format!(
            "{s}: the lease must be between 1s and 1h (a leader renews it every third of it, \
             and a dead leader is replaced after it); 15s is the default"
        ));
    }
    Ok(ttl)
}

/// Runs the parsed command line.
///
/// # Errors
/// Any failure, with context, for `main` to print.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            plugins,
            db,
            lease,
            host_name,
            config,
            workers,
            shutdown_grace,
            cache_dir,
            no_cache,
            rescan,
            compile_memory,
            compile_timeout,
            compile_jobs,
            listen,
            no_api,
            token,
            tokens,
            auth_reads,
            audit_keep_for,
            api_max_connections,
            api_header_timeout,
            api_request_timeout,
            policy,
        } => {
            let options = crate::app::RunOptions {
                policy: policy.into_policy().map_err(anyhow::Error::msg)?,
                plugins,
                db,
                lease,
                host_name,
                config,
                workers: workers
                    .unwrap_or_else(crate::scheduler::default_workers)
                    .max(1),
                shutdown_grace,
                cache_dir: if no_cache {
                    None
                } else {
                    cache_dir.or_else(crate::plugin::default_cache_dir)
                },
                rescan,
                compile: crate::plugin::CompileLimits {
                    memory: compile_memory,
                    time: compile_timeout,
                    parallel: compile_jobs.unwrap_or_else(crate::plugin::compile::default_parallel),
                },
                listen: (!no_api).then_some(listen),
                token,
                tokens,
                auth_reads,
                audit_keep_for,
                api_limits: crate::api::ServeLimits {
                    header_read_timeout: api_header_timeout,
                    request_timeout: api_request_timeout,
                    max_connections: api_max_connections as usize,
                    ..crate::api::ServeLimits::default()
                },
            };
            crate::app::run(options, crate::app::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cron(CronCommand::Next {
            expr,
            tz,
            after,
            count,
            json,
            exclude,
        }) => crate::cli_cron::next(&expr, &tz, after.as_deref(), count, json, &exclude),
        Command::Cron(CronCommand::Explain { expr }) => crate::cli_cron::explain(&expr),
        Command::Compile {
            memory,
            cpu_seconds,
        } => Ok(crate::plugin::compile::child_main(memory, cpu_seconds)),
        Command::Token(TokenCommand::New { name, role }) => token_new(&name, role),
        Command::Audit(args) => crate::cli_client::audit(args).await,
        Command::Completions { shell } => {
            // Generated from the same clap definition that parses the
            // command line, so it cannot drift from it.
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "wasmcron", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs(cmd) => crate::cli_client::jobs(cmd).await,
        Command::Runs(cmd) => crate::cli_client::runs(cmd).await,
        Command::Plugins(cmd) => crate::cli_client::plugins(cmd).await,
        Command::Cluster(cmd) => crate::cli_client::cluster(cmd).await,
        Command::Calendars(cmd) => crate::cli_client::calendars(cmd).await,
        Command::Plugin(PluginCommand::Check { file, json, bounds }) => {
            plugin_check(&file, json, &bounds).await
        }
        Command::New {
            name,
            lang,
            dir,
            listener,
        } => crate::scaffold::new_project(&crate::scaffold::NewProject {
            name,
            lang,
            dir,
            listener,
        }),
        Command::Plugin(PluginCommand::Build { dir, bounds }) => {
            let wasm = tokio::task::spawn_blocking(move || crate::scaffold::build(&dir))
                .await
                .context("the build task")??;
            let code = plugin_check(&wasm, false, &bounds).await?;
            if code == ExitCode::SUCCESS {
                println!("built: {}", wasm.display());
            }
            Ok(code)
        }
        Command::Plugin(PluginCommand::Run {
            file,
            args,
            job_id,
            fuel,
            timeout,
            memory_mib,
            capabilities,
            json,
            bounds,
        }) => {
            let defaults = Limits::default();
            let limits = Limits {
                fuel: fuel.unwrap_or(defaults.fuel),
                timeout: timeout.unwrap_or(defaults.timeout),
                memory_bytes: memory_mib
                    .map_or(defaults.memory_bytes, |m| m.saturating_mul(1 << 20)),
            };
            limits.validate().map_err(anyhow::Error::msg)?;
            let args: serde_json::Value = serde_json::from_str(&args)
                .with_context(|| format!("--args is not valid JSON: {args}"))?;
            let grants = match capabilities {
                Some(text) => {
                    let caps: crate::job::Capabilities = serde_json::from_str(&text)
                        .with_context(|| format!("--capabilities: {text}"))?;
                    caps.validate()
                        .map_err(|e| anyhow::anyhow!("--capabilities {}: {}", e.field, e.problem))?
                }
                None => crate::runtime::grants::Grants::default(),
            };
            plugin_run(&file, job_id, args, limits, grants, json, &bounds).await
        }
    }
}

/// `wasmcron token new`: the secret on stdout's first line (for scripts),
/// then the tokens-file entry.
fn token_new(name: &str, role: crate::api::Role) -> anyhow::Result<ExitCode> {
    crate::api::check_name(name).map_err(anyhow::Error::msg)?;
    let secret = crate::api::new_secret().map_err(anyhow::Error::msg)?;
    println!("{secret}");
    println!();
    println!(
        "# The secret above is shown only now; give it to the token's user.\n\
         # Add these lines to the --tokens file and restart the host:"
    );
    print!("{}", crate::api::toml_entry(name, role, &secret));
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeConfig::default(), Arc::new(MemoryKv::default()))
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("starting the WebAssembly runtime")
}

async fn plugin_check(
    file: &std::path::Path,
    json: bool,
    bounds: &CompileBounds,
) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    match bounds.load(&runtime, file).await {
        Ok(plugin) => {
            if json {
                let doc = serde_json::json!({
                    "ok": true,
                    "name": plugin.name(),
                    "world": plugin.world_name(),
                    "hash": plugin.hash().as_str(),
                    "size": plugin.size(),
                    "imports": plugin.imports(),
                    "exports": plugin.exports(),
                    "args_schema": plugin.args_schema().map(|s| s.document()),
                });
                println!("{doc:#}");
            } else {
                println!("{}: ok", file.display());
                println!("  name:    {}", plugin.name());
                println!("  world:   {}", plugin.world_name());
                println!("  hash:    sha256:{}", plugin.hash());
                println!("  size:    {} bytes", plugin.size());
                println!("  exports: {}", plugin.exports().join(", "));
                println!("  imports:");
                for import in plugin.imports() {
                    println!("    {import}");
                }
                match plugin.args_schema() {
                    Some(schema) => {
                        println!("  args schema (jobs' args are checked against it):");
                        let text = serde_json::to_string_pretty(schema.document())?;
                        for line in text.lines() {
                            println!("    {line}");
                        }
                    }
                    None => println!("  args schema: none declared (any args are accepted)"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if json {
                let doc = serde_json::json!({ "ok": false, "error": format!("{err:#}") });
                println!("{doc:#}");
            } else {
                eprintln!("{}: {err:#}", file.display());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn plugin_run(
    file: &std::path::Path,
    job_id: String,
    args: serde_json::Value,
    limits: Limits,
    grants: crate::runtime::grants::Grants,
    json: bool,
    bounds: &CompileBounds,
) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    let plugin = bounds
        .load(&runtime, file)
        .await
        .with_context(|| format!("loading {}", file.display()))?;
    // A listener has no run to make: say so before anything runs, rather
    // than report the refused call as a trap.
    if plugin.world() != crate::plugin::World::Job {
        anyhow::bail!(
            "{} is a listener ({}): `plugin run` runs jobs; check it with `wasmcron plugin \
             check`, and try it by naming it in a job's `listeners` on a running host",
            file.display(),
            plugin.world_name()
        );
    }
    // The host refuses such a job when it is added; say so here too,
    // before anything runs.
    if let Err((_, message)) = plugin.check_args(&args) {
        anyhow::bail!("--args: {message}");
    }
    let request = RunRequest {
        job_id,
        run_id: "cli-run".into(),
        scheduled_at: chrono::Utc::now(),
        attempt: 1,
        args: args.to_string(),
        // `plugin run` is a run now, by hand.
        cause: crate::runtime::WitRunCause::Manual,
        parent: None,
        limits,
        grants: Arc::new(grants),
    };
    let report = runtime.run(&plugin, &request).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for record in &report.logs {
            // Fields as key=value after the message, as the run's log
            // shows them (`--json` has them as pairs).
            let fields: String = record
                .fields
                .iter()
                .map(|(k, v)| format!(" {k}={v}"))
                .collect();
            println!(
                "[{:?} {:?}] {}{fields}",
                record.source, record.level, record.message
            );
        }
        println!("outcome:  {}", report.outcome.kind());
        match &report.outcome {
            crate::runtime::Outcome::Succeeded { output } => println!("output:   {output}"),
            crate::runtime::Outcome::Failed { message, retryable } => {
                println!("error:    {message} (retryable: {retryable})");
            }
            crate::runtime::Outcome::Trapped { message } => println!("trap:     {message}"),
            _ => {}
        }
        println!("fuel:     {}", report.fuel_consumed);
        println!("duration: {:?}", report.duration);
    }
    Ok(if report.outcome.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
