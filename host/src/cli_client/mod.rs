//! `wasmcron jobs|runs|plugins …`: a client for a running host's HTTP API,
//! with tables for people and `--json` for scripts.

mod apply;
mod audit;
mod authoring;
mod calendars;
mod client;
mod render;
mod transfer;

pub use authoring::{EditFormat, QuickJob};

pub use audit::{AuditArgs, audit};
pub use calendars::{CalendarsCommand, calendars};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use client::{Client, seg};
use render::{is_closed_pipe, out, print_json, table, text};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the host is and how to talk to it.
#[derive(Debug, Args)]
pub struct Remote {
    /// The host's API.
    #[arg(long, env = "WASMCRON_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Bearer token, when the host requires one.
    #[arg(long, env = "WASMCRON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `wasmcron jobs …`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs.
    List {
        /// Only jobs of this plugin.
        #[arg(long)]
        plugin: Option<String>,
        /// Only jobs in this state: scheduled, paused, waiting-for-plugin, finished.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one job.
    Show {
        /// The job's id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a job: from flags (`jobs add ID --plugin P --cron "0 9 * * *"`,
    /// or `--every 10m`, or `--at TIME`), or from a JSON or TOML file
    /// holding one job spec (`jobs add FILE`; `-` for stdin, JSON when it
    /// starts with `{`, else TOML).
    Add {
        /// With --plugin, the new job's id; without, the spec file.
        #[arg(value_name = "ID|FILE")]
        target: String,
        #[command(flatten)]
        quick: authoring::QuickJob,
        /// Replace a job with the same id.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Change a job in your editor (`$VISUAL`, `$EDITOR`, else `vi`): its
    /// spec as TOML (or JSON), and what you change is sent as a JSON merge
    /// patch (`PATCH /jobs/{id}`). Nothing is sent if you change nothing.
    Edit {
        /// The job's id.
        id: String,
        /// How to show the spec.
        #[arg(long, value_enum, default_value = "toml")]
        format: authoring::EditFormat,
        #[command(flatten)]
        remote: Remote,
    },
    /// Add or change many jobs: a jobs file's `[[jobs]]` (TOML, as for
    /// `wasmcron run --config`, or JSON `{"jobs": [...]}`), sent with
    /// `PUT /jobs` a few thousand at a time. A job equal to the stored one
    /// is left as it is; jobs not in the file are not touched.
    Apply {
        /// The jobs file.
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Write every job and calendar of the host as a jobs file
    /// (`GET /jobs/export`): TOML, or JSON with `--json` or a `.json`
    /// FILE. To stdout without FILE.
    Export {
        /// Where to write it (`-` or none: stdout).
        file: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Make the host's jobs what a jobs file says (`POST /jobs/import`):
    /// jobs are added or changed, and with `--prune` the ones the file does
    /// not list are removed. Prints what changes.
    Import {
        /// The jobs file (TOML for `.toml` files, else JSON; `-` for stdin,
        /// JSON when it starts with `{`, else TOML).
        file: PathBuf,
        /// Only say what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also remove the host's jobs the file does not list.
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a job and its history.
    Rm {
        /// The job's id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Pause a job.
    Pause {
        /// The job's id.
        id: String,
        /// Why, or until when (shown as the job's paused reason).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resume a job.
    Resume {
        /// The job's id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run a job now, outside its schedule (`POST /jobs/{id}/run`).
    Run {
        /// The job's id.
        id: String,
        /// This run's args instead of the job's: a JSON object, e.g.
        /// `--args '{"name": "Ada"}'`.
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
        /// The fire time the run records and its guest sees as
        /// `scheduled_at` (RFC 3339, e.g. `2026-12-01T09:00:00+08:00`); it
        /// still runs now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run every fire the job's schedule had in a past range (both ends
    /// inclusive), in order, behind live fires; each is recorded with
    /// cause `backfill`.
    Backfill {
        /// The job's id.
        id: String,
        /// The range's first instant, RFC 3339 (e.g. `2026-11-01T00:00:00Z`).
        #[arg(long, value_name = "TIME")]
        from: String,
        /// Its last instant, RFC 3339, not in the future.
        #[arg(long, value_name = "TIME")]
        to: String,
        /// `buffer-all` (one after another, the default), `allow-all` (up
        /// to max_instances at once) or `skip`.
        #[arg(long, value_name = "POLICY", default_value = "buffer-all")]
        overlap: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `wasmcron runs …`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// A job's runs, newest first, without their logs (`runs show` has
    /// them).
    List {
        /// The job's id.
        job: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only runs after this one (the `next: --before ID` a page ends
        /// with): pages stay put as runs arrive.
        #[arg(long, value_name = "RUN_ID")]
        before: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// One run, with its output and all its logs (fetched a page at a
    /// time; with `--json`, the API's answer: the first page of logs and
    /// `logs_next_offset`).
    Show {
        /// The run's id.
        run: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `wasmcron cluster …`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The hosts sharing the store, and which leads (`GET /cluster`).
    Status {
        #[command(flatten)]
        remote: Remote,
    },
}

/// `wasmcron plugins …`
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// The plugins folder: loaded and refused plugins.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Push a plugin file to the host (and every host sharing its store):
    /// checked as the folder checks files, then loaded.
    Push {
        /// The `.wasm` component.
        file: PathBuf,
        /// The plugin's name (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a plugin (on every host sharing the store); its jobs wait.
    Rm {
        /// The plugin's name.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// A command's result, with writing to a reader that went away (`| head
/// -1`) counted as success: the reader had what it wanted.
fn quiet_on_closed_pipe(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Err(e) if is_closed_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn job_rows(jobs: &[Value]) -> Vec<Vec<String>> {
    jobs.iter()
        .map(|j| {
            let trigger = &j["spec"]["trigger"];
            // The zone always shows with a wall time: `0 9 * * *` beside a
            // UTC next run says nothing of which 9 o'clock it is.
            let zone = trigger["tz"].as_str().unwrap_or("UTC");
            let schedule = match trigger["type"].as_str() {
                Some("cron") => format!("cron {} ({zone})", text(&trigger["expr"])),
                Some("interval") => format!("every {}", text(&trigger["every"])),
                Some("date") if trigger["tz"].is_string() => {
                    format!("at {} ({zone})", text(&trigger["at"]))
                }
                Some("date") => format!("at {}", text(&trigger["at"])),
                Some(other) => other.to_owned(),
                None => "-".into(),
            };
            vec![
                text(&j["spec"]["id"]),
                text(&j["spec"]["plugin"]),
                text(&j["state"]),
                schedule,
                text(&j["next_run_time"]),
            ]
        })
        .collect()
}

fn show_job(j: &Value) -> std::io::Result<()> {
    table(
        &["ID", "PLUGIN", "STATE", "SCHEDULE", "NEXT RUN"],
        &job_rows(std::slice::from_ref(j)),
    )?;
    use std::io::Write as _;
    if let Some(words) = j["schedule"].as_str() {
        writeln!(std::io::stdout(), "schedule: {words}")?;
    }
    if let Some(reason) = j["paused_reason"].as_str() {
        writeln!(std::io::stdout(), "paused: {reason}")?;
    }
    Ok(())
}

/// A job spec or jobs file as JSON: TOML for `.toml` files, JSON for
/// other files; on stdin (`-`), JSON when the text starts with `{`, else
/// TOML (a TOML document cannot start with `{`).
fn read_spec(file: &PathBuf) -> anyhow::Result<Value> {
    let (text, toml, name) = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading a job spec from stdin")?;
        let toml = !text.trim_start().starts_with('{');
        (text, toml, "stdin".to_owned())
    } else {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let toml = file.extension().is_some_and(|e| e == "toml");
        (text, toml, file.display().to_string())
    };
    if toml {
        let value: toml::Value =
            toml::from_str(&text).with_context(|| format!("in {name} (read as TOML)"))?;
        Ok(serde_json::to_value(value)?)
    } else {
        serde_json::from_str(&text).with_context(|| format!("in {name} (read as JSON)"))
    }
}

/// Every job matching `filters` (`name=value` query parts), in id order:
/// `GET /jobs` a page of 1,000 (its largest) at a time, by offset, until
/// the pages hold its `total`.
///
/// A job added or removed between two pages shifts the offsets: the list
/// then misses or repeats one job at the seam (repeats are dropped here),
/// as `ls` on a changing folder would.
///
/// # Errors
/// The host unreachable, or its error answer.
async fn all_jobs(client: &Client, filters: &[String]) -> anyhow::Result<Vec<Value>> {
    const PAGE: usize = 1000;
    let mut jobs: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut offset = 0;
    loop {
        let mut query = filters.to_vec();
        query.push(format!("limit={PAGE}"));
        query.push(format!("offset={offset}"));
        let page = client.get(&format!("/jobs?{}", query.join("&"))).await?;
        let got = page["jobs"].as_array().cloned().unwrap_or_default();
        let total = page["total"].as_u64().unwrap_or(0);
        let n = got.len();
        jobs.extend(
            got.into_iter()
                .filter(|j| seen.insert(j["spec"]["id"].as_str().unwrap_or_default().to_owned())),
        );
        offset += n;
        // A short page is the last one whatever `total` says (jobs removed
        // while paging).
        if n < PAGE || offset as u64 >= total {
            return Ok(jobs);
        }
    }
}

/// Runs a `jobs` command.
///
/// # Errors
/// The host unreachable, or its error answer.
pub async fn jobs(cmd: JobsCommand) -> anyhow::Result<ExitCode> {
    quiet_on_closed_pipe(jobs_to_stdout(cmd).await)
}

async fn jobs_to_stdout(cmd: JobsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        JobsCommand::List {
            plugin,
            state,
            remote,
        } => {
            let mut query = Vec::new();
            if let Some(p) = plugin {
                query.push(format!("plugin={}", seg(&p)));
            }
            if let Some(s) = state {
                query.push(format!("state={}", seg(&s)));
            }
            let jobs = all_jobs(&Client::new(&remote), &query).await?;
            if remote.json {
                print_json(&serde_json::json!({ "jobs": jobs, "total": jobs.len() }))?;
            } else {
                table(
                    &["ID", "PLUGIN", "STATE", "SCHEDULE", "NEXT RUN"],
                    &job_rows(&jobs),
                )?;
            }
        }
        JobsCommand::Show { id, remote } => {
            let job = Client::new(&remote)
                .get(&format!("/jobs/{}", seg(&id)))
                .await?;
            if remote.json {
                print_json(&job)?;
            } else {
                show_job(&job)?;
                if let Some(fires) = job["next_fires"].as_array().filter(|f| !f.is_empty()) {
                    // The fires its calendars skip, in time order among
                    // those that happen (both are RFC 3339 UTC, which
                    // sorts as text).
                    let mut lines: Vec<(String, String)> =
                        fires.iter().map(|f| (text(f), String::new())).collect();
                    for skipped in job["excluded_fires"]
                        .as_array()
                        .map_or(&[][..], Vec::as_slice)
                    {
                        lines.push((
                            text(&skipped["at"]),
                            format!("   skipped ({})", text(&skipped["excluded_by"])),
                        ));
                    }
                    lines.sort();
                    out!()?;
                    out!("next fires (UTC):")?;
                    for (at, note) in lines {
                        out!("  {at}{note}")?;
                    }
                }
                out!()?;
                out!("{}", serde_json::to_string_pretty(&job["spec"])?)?;
            }
        }
        JobsCommand::Add {
            target,
            quick,
            replace,
            remote,
        } => {
            let mut spec = if quick.given() {
                quick.spec(&target)?
            } else {
                read_spec(&authoring::spec_file(&target)?)?
            };
            if replace {
                spec["replace_existing"] = Value::Bool(true);
            }
            let job = Client::new(&remote).post("/jobs", &spec).await?;
            if remote.json {
                print_json(&job)?;
            } else {
                show_job(&job)?;
            }
        }
        JobsCommand::Edit { id, format, remote } => authoring::edit(&id, format, &remote).await?,
        JobsCommand::Apply { file, remote } => apply::apply(&file, &remote).await?,
        JobsCommand::Export { file, remote } => {
            transfer::export(file.as_deref(), remote.json, &remote).await?;
        }
        JobsCommand::Import {
            file,
            dry_run,
            prune,
            remote,
        } => transfer::import(&file, dry_run, prune, &remote).await?,
        JobsCommand::Rm { id, remote } => {
            Client::new(&remote)
                .call(
                    reqwest::Method::DELETE,
                    &format!("/jobs/{}", seg(&id)),
                    None,
                )
                .await?;
            if remote.json {
                print_json(&serde_json::json!({ "deleted": id }))?;
            } else {
                out!("deleted {id}")?;
            }
        }
        JobsCommand::Pause { id, note, remote } => {
            let body = note.map_or(Value::Null, |n| serde_json::json!({ "note": n }));
            let job = Client::new(&remote)
                .post(&format!("/jobs/{}/pause", seg(&id)), &body)
                .await?;
            if remote.json {
                print_json(&job)?;
            } else {
                show_job(&job)?;
            }
        }
        JobsCommand::Resume { id, remote } => {
            let job = Client::new(&remote)
                .post(&format!("/jobs/{}/resume", seg(&id)), &Value::Null)
                .await?;
            if remote.json {
                print_json(&job)?;
            } else {
                show_job(&job)?;
            }
        }
        JobsCommand::Backfill {
            id,
            from,
            to,
            overlap,
            remote,
        } => {
            let body = serde_json::json!({"from": from, "to": to, "overlap": overlap});
            let started = Client::new(&remote)
                .post(&format!("/jobs/{}/backfill", seg(&id)), &body)
                .await?;
            if remote.json {
                print_json(&started)?;
            } else {
                out!(
                    "backfill of {} started: {} fire(s), {} to {} (`wasmcron runs list {}`)",
                    id,
                    text(&started["fires"]),
                    text(&started["first"]),
                    text(&started["last"]),
                    id
                )?;
            }
        }
        JobsCommand::Run {
            id,
            args,
            at,
            remote,
        } => {
            let body = run_body(args.as_deref(), at.as_deref())?;
            let run = Client::new(&remote)
                .post(&format!("/jobs/{}/run", seg(&id)), &body)
                .await?;
            if remote.json {
                print_json(&run)?;
            } else {
                out!(
                    "run {} of {} queued (`wasmcron runs show {}`)",
                    text(&run["run_id"]),
                    id,
                    text(&run["run_id"])
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The body of `POST /jobs/{id}/run` for `--args` and `--at`, checked
/// before any request: `null` (the job as it is) when neither is given.
fn run_body(args: Option<&str>, at: Option<&str>) -> anyhow::Result<Value> {
    if args.is_none() && at.is_none() {
        return Ok(Value::Null);
    }
    let mut body = serde_json::Map::new();
    if let Some(text) = args {
        let value: Value = serde_json::from_str(text).with_context(|| {
            format!("--args is not valid JSON: write a JSON object such as '{{\"name\": \"Ada\"}}' (got {text})")
        })?;
        if !value.is_object() {
            anyhow::bail!(
                "--args must be a JSON object such as '{{\"name\": \"Ada\"}}', got {text}"
            );
        }
        body.insert("args".into(), value);
    }
    if let Some(at) = at {
        chrono::DateTime::parse_from_rfc3339(at.trim()).map_err(|_| {
            anyhow::anyhow!("--at '{at}' is not an RFC 3339 time, e.g. 2026-12-01T09:00:00+08:00")
        })?;
        body.insert("scheduled_at".into(), Value::String(at.trim().to_owned()));
    }
    Ok(Value::Object(body))
}

fn run_rows(runs: &[Value]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|r| {
            let outcome = r["outcome"]["kind"]
                .as_str()
                .map_or_else(|| text(&r["status"]), str::to_owned);
            let ms = match (r["started_at"].as_str(), r["ended_at"].as_str()) {
                (Some(s), Some(e)) => match (
                    chrono::DateTime::parse_from_rfc3339(s),
                    chrono::DateTime::parse_from_rfc3339(e),
                ) {
                    (Ok(s), Ok(e)) => format!("{} ms", (e - s).num_milliseconds()),
                    _ => "-".into(),
                },
                _ => "-".into(),
            };
            vec![
                text(&r["run_id"]),
                text(&r["scheduled_at"]),
                text(&r["attempt"]),
                r["cause"].as_str().unwrap_or("-").to_owned(),
                outcome,
                ms,
                r["host"].as_str().unwrap_or("-").to_owned(),
                text(&r["log_count"]),
                text(&r["note"]),
            ]
        })
        .collect()
}

const RUN_HEADERS: [&str; 9] = [
    "RUN",
    "SCHEDULED",
    "ATTEMPT",
    "CAUSE",
    "OUTCOME",
    "TOOK",
    "HOST",
    "LOGS",
    "NOTE",
];

fn print_logs(logs: &[Value]) -> std::io::Result<()> {
    for l in logs {
        out!(
            "  [{} {}] {}",
            text(&l["source"]),
            text(&l["level"]),
            text(&l["message"])
        )?;
    }
    Ok(())
}

/// Runs a `runs` command.
///
/// # Errors
/// The host unreachable, or its error answer.
pub async fn runs(cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    quiet_on_closed_pipe(runs_to_stdout(cmd).await)
}

async fn runs_to_stdout(cmd: RunsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RunsCommand::List {
            job,
            limit,
            before,
            remote,
        } => {
            let mut path = format!("/jobs/{}/runs?limit={}", seg(&job), limit.clamp(1, 1000));
            if let Some(before) = before {
                path.push_str(&format!("&before={}", seg(&before)));
            }
            let page = Client::new(&remote).get(&path).await?;
            if remote.json {
                print_json(&page)?;
            } else {
                let runs = page["runs"].as_array().cloned().unwrap_or_default();
                table(&RUN_HEADERS, &run_rows(&runs))?;
                if let Some(next) = page["next_before"].as_str() {
                    out!("next: --before {next}")?;
                }
            }
        }
        RunsCommand::Show { run, remote } => {
            let client = Client::new(&remote);
            let r = client.get(&format!("/runs/{}", seg(&run))).await?;
            if remote.json {
                print_json(&r)?;
                return Ok(ExitCode::SUCCESS);
            }
            table(&RUN_HEADERS, &run_rows(std::slice::from_ref(&r)))?;
            out!()?;
            out!("job:     {}", text(&r["job_id"]))?;
            out!("plugin:  sha256:{}", text(&r["plugin_hash"]))?;
            out!("fuel:    {}", text(&r["fuel"]))?;
            let outcome = &r["outcome"];
            if let Some(out) = outcome["output"].as_str() {
                out!("output:  {out}")?;
            }
            if let Some(msg) = outcome["message"].as_str() {
                out!("error:   {msg}")?;
            }
            let logs = r["logs"].as_array().cloned().unwrap_or_default();
            if !logs.is_empty() {
                out!("logs:")?;
                print_logs(&logs)?;
            }
            // The rest a page at a time, printed as they come.
            let mut next = r["logs_next_offset"].as_u64();
            while let Some(offset) = next {
                let page = client
                    .get(&format!("/runs/{}/logs?offset={offset}", seg(&run)))
                    .await?;
                let logs = page["logs"].as_array().map_or(&[][..], Vec::as_slice);
                print_logs(logs)?;
                next = page["next_offset"].as_u64().filter(|_| !logs.is_empty());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `plugins` command.
///
/// # Errors
/// The host unreachable, or its error answer.
pub async fn plugins(cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    quiet_on_closed_pipe(plugins_to_stdout(cmd).await)
}

async fn plugins_to_stdout(cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    let remote = match cmd {
        PluginsCommand::List { remote } => remote,
        PluginsCommand::Push { file, name, remote } => {
            let name = match name {
                Some(n) => n,
                None => file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_owned)
                    .with_context(|| {
                        format!(
                            "{}: no file name to name the plugin by; pass --name",
                            file.display()
                        )
                    })?,
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let pushed = Client::new(&remote)
                .put_bytes(
                    &format!("/plugins/{}", seg(&name)),
                    "application/wasm",
                    bytes,
                )
                .await?;
            if remote.json {
                print_json(&pushed)?;
            } else {
                let hash = pushed["hash"].as_str().unwrap_or("");
                out!(
                    "pushed {} ({} bytes, {}, {}){}",
                    text(&pushed["name"]),
                    text(&pushed["size"]),
                    &hash[..hash.len().min(12)],
                    text(&pushed["world"]),
                    if pushed["cluster"].as_bool() == Some(true) {
                        "; every host loads it"
                    } else {
                        ""
                    }
                )?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        PluginsCommand::Rm { name, remote } => {
            Client::new(&remote)
                .delete(&format!("/plugins/{}", seg(&name)))
                .await?;
            if !remote.json {
                out!("removed {name}")?;
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let list = Client::new(&remote).get("/plugins").await?;
    if remote.json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let hash = p["hash"]
                .as_str()
                .map_or_else(|| "-".to_owned(), |h| h[..h.len().min(12)].to_owned());
            let world = p["world"].as_str().map_or_else(
                || "-".to_owned(),
                // `job@0.2.0`: the world and the package version it targets.
                |w| w.trim_start_matches("wasmcron:plugin/").to_owned(),
            );
            // On a shared store: how many hosts have it, and whether
            // their versions differ (push it again to fix).
            let hosts = p["hosts"].as_array().map_or_else(
                || "-".to_owned(),
                |hs| {
                    if p["divergent"] == true {
                        format!("{} (DIVERGENT)", hs.len())
                    } else {
                        hs.len().to_string()
                    }
                },
            );
            vec![
                text(&p["name"]),
                text(&p["status"]),
                world,
                hash,
                text(&p["jobs"]),
                hosts,
                text(&p["refused_reason"]),
            ]
        })
        .collect();
    table(
        &[
            "NAME", "STATUS", "WORLD", "HASH", "JOBS", "HOSTS", "REFUSED",
        ],
        &rows,
    )?;
    let divergent = list
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["divergent"] == true));
    if divergent {
        out!()?;
        out!(
            "DIVERGENT: the hosts run different versions of the plugin (each runs its own); \
             push it again to give every host one version: wasmcron plugins push FILE. \
             (Right after a push this shows for a few seconds, until every host has reported \
             the new version.)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `cluster` command.
///
/// # Errors
/// The host unreachable, or its error answer.
pub async fn cluster(cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    quiet_on_closed_pipe(cluster_to_stdout(cmd).await)
}

async fn cluster_to_stdout(cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    let ClusterCommand::Status { remote } = cmd;
    let view = Client::new(&remote).get("/cluster").await?;
    if remote.json {
        print_json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    let leader = &view["leader"];
    match leader["name"].as_str() {
        Some(name) => out!(
            "leader: {name} (term {}, lease until {})",
            text(&leader["term"]),
            text(&leader["expires_at"])
        ),
        None if view["backend"].as_str() == Some("postgres") => {
            out!("leader: none right now (a host takes the lease within a second)")
        }
        None => out!(
            "leader: this host, alone on its {} store",
            text(&view["backend"])
        ),
    }?;
    out!("this host: {}", text(&view["host"]["name"]))?;
    let hosts = view["hosts"].as_array().cloned().unwrap_or_default();
    if hosts.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let plugins = h["plugins"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let hash = p["hash"].as_str().unwrap_or("");
                            format!("{}@{}", text(&p["name"]), &hash[..hash.len().min(12)])
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let is_leader = leader["host_id"].as_str().is_some() && h["id"] == leader["host_id"];
            vec![
                text(&h["name"]),
                if is_leader { "leader" } else { "" }.to_owned(),
                if h["alive"].as_bool() == Some(true) {
                    "alive"
                } else {
                    "stopped"
                }
                .to_owned(),
                text(&h["last_heartbeat"]),
                text(&h["runs_in_flight"]),
                text(&h["address"]),
                plugins,
            ]
        })
        .collect();
    table(
        &[
            "HOST",
            "ROLE",
            "STATE",
            "HEARTBEAT",
            "RUNS",
            "API",
            "PLUGINS",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}
