//! Your own axum service with wasmcron inside: the APScheduler-in-FastAPI
//! shape, with every task a sandboxed WebAssembly run.
//!
//! ```text
//! POST   /schedule {"task_name": "backup", "interval": 60}   schedule `hello` every 60 s
//! GET    /schedule                                           the tasks
//! DELETE /schedule/backup                                    unschedule
//! /wasmcron/...                                              wasmcron's own API (jobs, runs, events)
//! ```
//!
//! Run it from the repository root after `cargo xtask run` has put the
//! example plugins into `wasmcron-plugins/`:
//!
//! ```sh
//! cargo run -p wasmcron --example embed
//! curl -X POST localhost:3000/schedule -H 'content-type: application/json' \
//!      -d '{"task_name": "backup", "interval": 5}'
//! curl localhost:3000/wasmcron/jobs/backup/runs
//! ```
//!
//! `EMBED_LISTEN` (default `127.0.0.1:3000`), `EMBED_DB` (default
//! `embed.db`) and `EMBED_PLUGINS` (default `wasmcron-plugins`) change
//! where it listens and what it reads.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::time::Duration;
use wasmcron::embed::{Builder, Error, Wasmcron, every, job_spec};

/// The plugin every task runs: `plugins/hello`, which logs a greeting to
/// its `name` argument and returns it.
pub const PLUGIN: &str = "hello";

/// The service: its own routes, with wasmcron's API under `/wasmcron`.
pub fn app(wasmcron: Wasmcron) -> Router {
    Router::new()
        .route("/schedule", get(list).post(schedule))
        .route("/schedule/{task_name}", delete(unschedule))
        .with_state(wasmcron.clone())
        // Jobs, runs, logs and events, at /wasmcron/jobs/... etc. (the
        // dashboard's scripts expect the API at the root, so it is not
        // usable under a prefix).
        .nest("/wasmcron", wasmcron.router())
}

/// `POST /schedule`'s body once checked: the seed's `TaskRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRequest {
    /// 1-64 of `A-Z a-z 0-9 - _`; also the job's id.
    pub task_name: String,
    /// Seconds between runs, 1 to 86,400.
    pub interval: u64,
}

impl TaskRequest {
    /// Checks a body field by field, so that every refusal names its
    /// field (a typed `Json<TaskRequest>` would answer serde's message,
    /// which does not say which field had the wrong type).
    ///
    /// # Errors
    /// The first bad field and why.
    pub fn parse(body: &Value) -> Result<Self, Invalid> {
        let Some(fields) = body.as_object() else {
            return Err(Invalid::new("body", "must be a JSON object"));
        };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !matches!(k.as_str(), "task_name" | "interval"))
        {
            return Err(Invalid::new(
                unknown,
                "unknown field; the fields are task_name and interval",
            ));
        }
        let task_name = match fields.get("task_name") {
            Some(Value::String(name)) => name.clone(),
            Some(other) => {
                return Err(Invalid::new(
                    "task_name",
                    format!("must be a string, got {other}"),
                ));
            }
            None => return Err(Invalid::new("task_name", "field required")),
        };
        let well_formed = (1..=64).contains(&task_name.len())
            && task_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if !well_formed {
            return Err(Invalid::new(
                "task_name",
                "must be 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let interval = match fields.get("interval") {
            // `as_u64` is None for negative numbers, fractions and strings.
            Some(v) => v
                .as_u64()
                .filter(|s| (1..=86_400).contains(s))
                .ok_or_else(|| {
                    Invalid::new(
                        "interval",
                        format!("must be a whole number of seconds from 1 to 86400, got {v}"),
                    )
                })?,
            None => return Err(Invalid::new("interval", "field required")),
        };
        Ok(Self {
            task_name,
            interval,
        })
    }
}

/// A refused request: answered `422` in FastAPI's shape,
/// `{"detail": [{"loc": ["body", FIELD], "msg": ...}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field, or `body` for the body as a whole.
    pub field: String,
    /// What is wrong.
    pub msg: String,
}

impl Invalid {
    fn new(field: &str, msg: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            msg: msg.into(),
        }
    }
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        let body = json!({ "detail": [{ "loc": ["body", self.field], "msg": self.msg }] });
        (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
    }
}

/// What wasmcron refused, in the same `detail` shape.
fn refused(e: &Error) -> Response {
    let status = match e {
        Error::Duplicate(_) => StatusCode::CONFLICT,
        Error::JobNotFound(_) => StatusCode::NOT_FOUND,
        Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({ "detail": e.to_string() }))).into_response()
}

/// `POST /schedule`: runs `hello` every `interval` seconds as job
/// `task_name`, greeting the task by name. A name already scheduled is
/// refused with `409` (delete it first), as the seed's `add_job` does.
async fn schedule(
    State(wasmcron): State<Wasmcron>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    // Not JSON at all is the body's fault too: our 422, not axum's text.
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return Invalid::new("body", rejection.body_text()).into_response(),
    };
    let task = match TaskRequest::parse(&body) {
        Ok(task) => task,
        Err(invalid) => return invalid.into_response(),
    };
    let mut spec = job_spec(
        &task.task_name,
        PLUGIN,
        every(Duration::from_secs(task.interval)),
    );
    spec.args = json!({ "name": task.task_name });
    match wasmcron.add(spec).await {
        Ok(job) => (
            StatusCode::CREATED,
            Json(json!({
                "status": "success",
                "job_id": job.spec.id,
                "next_run_time": job.next_run_time,
            })),
        )
            .into_response(),
        Err(e) => refused(&e),
    }
}

/// `GET /schedule`: every task (the jobs of [`PLUGIN`]), by name.
async fn list(State(wasmcron): State<Wasmcron>) -> Json<Value> {
    let tasks: Vec<Value> = wasmcron
        .jobs()
        .into_iter()
        .filter(|job| job.spec.plugin == PLUGIN)
        .map(|job| {
            json!({
                "task_name": job.spec.id,
                "schedule": job.schedule,
                "next_run_time": job.next_run_time,
                "paused": job.paused,
            })
        })
        .collect();
    Json(json!({ "tasks": tasks }))
}

/// `DELETE /schedule/{task_name}`: unschedules a task (`204`), `404` when
/// there is none.
async fn unschedule(State(wasmcron): State<Wasmcron>, Path(task_name): Path<String>) -> Response {
    // Only the service's own tasks: other jobs (added through
    // /wasmcron/jobs) are not this route's to delete.
    match wasmcron.job(&task_name) {
        Ok(job) if job.spec.plugin == PLUGIN => {}
        Ok(_) | Err(Error::JobNotFound(_)) => {
            return refused(&Error::JobNotFound(task_name));
        }
        Err(e) => return refused(&e),
    }
    match wasmcron.remove(&task_name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(&e),
    }
}

fn main() -> std::process::ExitCode {
    // Folder plugins are compiled by this executable re-run with a
    // hidden argument (bounded in memory and time); answer that first.
    if let Some(code) = wasmcron::embed::compiler_child() {
        return code;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let serve = async {
        let env =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        // The startup hook: the store opened, plugins loaded, jobs of an
        // earlier run recovered, firing from here.
        let wasmcron = Builder::new()
            .sqlite(env("EMBED_DB", "embed.db"))
            .plugins_dir(env("EMBED_PLUGINS", "wasmcron-plugins"))
            .start()
            .await?;
        let listener = tokio::net::TcpListener::bind(env("EMBED_LISTEN", "127.0.0.1:3000")).await?;
        eprintln!("listening on http://{}", listener.local_addr()?);
        let stopping = wasmcron.clone();
        axum::serve(listener, app(wasmcron.clone()))
            .with_graceful_shutdown(async move {
                let _ = tokio::signal::ctrl_c().await;
                // No more fires, and /wasmcron/events streams end, so the
                // server's drain is not held by a client following them.
                stopping.begin_stop();
            })
            .await?;
        // The shutdown hook: running tasks get 30 s, the store is closed.
        wasmcron.stop().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain: "starting the WebAssembly runtime: why".
            let mut message = e.to_string();
            let mut cause = e.source();
            while let Some(c) = cause {
                message = format!("{message}: {c}");
                cause = c.source();
            }
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
