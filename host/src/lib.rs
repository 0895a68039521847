//! wasmcron: run scheduled jobs as sandboxed WebAssembly components.
//!
//! Each job's code is a `.wasm` component that runs in a fresh sandbox
//! with an instruction budget, a timeout and a memory limit, and no files,
//! network or environment unless the job is granted them. Run it as the
//! `wasmcron` binary, or inside your own service, as here: an axum app
//! with its own `POST /schedule` that schedules a plugin's job, with
//! wasmcron's HTTP API nested under `/wasmcron` ([`embed`] has the rest;
//! `host/examples/embed.rs` is the whole service, validation included).
//!
//! ```no_run
//! use axum::{Json, Router, extract::State, routing::post};
//! use std::time::Duration;
//! use wasmcron::embed::{Builder, Wasmcron, every, job_spec};
//!
//! #[derive(serde::Deserialize)]
//! struct Schedule {
//!     task_name: String,
//!     interval: u64, // seconds
//! }
//!
//! async fn schedule(
//!     State(wasmcron): State<Wasmcron>,
//!     Json(req): Json<Schedule>,
//! ) -> Result<String, String> {
//!     let mut spec = job_spec(&req.task_name, "hello", every(Duration::from_secs(req.interval)));
//!     spec.args = serde_json::json!({ "name": req.task_name });
//!     let job = wasmcron.put(spec).await.map_err(|e| e.to_string())?;
//!     Ok(format!("next run at {:?}", job.next_run_time))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Jobs and runs survive restarts in wasmcron.db; the plugin is
//!     // compiled once (cached) and every run gets a fresh sandbox.
//!     let wasmcron = Builder::new()
//!         .sqlite("wasmcron.db")
//!         .plugin("hello", std::fs::read("hello.wasm")?)
//!         .start()
//!         .await?;
//!     let app = Router::new()
//!         .route("/schedule", post(schedule))
//!         .with_state(wasmcron.clone())
//!         .nest("/wasmcron", wasmcron.router());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     let stopping = wasmcron.clone();
//!     axum::serve(listener, app)
//!         .with_graceful_shutdown(async move {
//!             let _ = tokio::signal::ctrl_c().await;
//!             stopping.begin_stop(); // no more fires; /wasmcron/events streams end
//!         })
//!         .await?;
//!     wasmcron.stop().await; // running jobs get their grace; the store is closed
//!     Ok(())
//! }
//! ```
//!
//! # How it flows
//!
//! ```text
//! plugins folder ──watch, debounce──▶ plugin file (+ NAME.toml sidecar)
//! plugin file ──load (compile cache)──▶ Plugin (component compiled once, InstancePre)
//!             ──job (sidecar, jobs file, HTTP API)──▶ JobSpec { plugin, trigger, limits, capabilities }
//!             ──trigger::next_after──▶ next due instant
//!             ──scheduler──▶ Fire { job, scheduled_at, attempt }
//!             ──runtime::run (fresh Store, limits on)──▶ RunReport { Outcome, .. }
//!             ──event──▶ JobStore and listeners
//! ```
//!
//! # Layout
//! - [`plugin`]: a `.wasm` file becomes a checked, compiled [`plugin::Plugin`]
//!   (through the [`plugin::CompileCache`]); the [`plugin::PluginRegistry`]
//!   holds the loaded ones by name; the [`plugin::PluginFolder`] keeps it in
//!   step with the folder and its sidecars.
//! - [`job`]: a [`job::JobSpec`] as written becomes a validated [`job::Job`].
//! - [`trigger`]: pure schedule math (cron, interval, date, any/all).
//! - [`scheduler`]: the timer task, firing rules, executor, recovery,
//!   error listeners.
//! - [`runtime`]: the shared engine and one sandboxed run per call, with
//!   only what the job's [`runtime::grants::Grants`] allow.
//! - [`event`]: job and run events on a broadcast bus.
//! - [`store`]: the [`store::JobStore`] trait with memory and SQLite
//!   backends, and the guests' kv data.
//! - [`api`]: the HTTP API over a running [`scheduler::Scheduler`], with
//!   tokens by role.
//! - [`audit`]: who changed what: every state change is recorded through
//!   [`audit::record`] into the store's audit log.
//! - [`embed`]: the embedding surface: a [`embed::Builder`] and the
//!   [`embed::Wasmcron`] handle, over the same start path as `wasmcron run`.
//! - [`app`]: `wasmcron run` wired together; [`cli`]: the command line (the
//!   binary is a thin shell over it); [`cli_client`]: the API's client.

pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod cli_client;
mod cli_cron;
pub mod cli_policy;
pub mod duration;
pub mod embed;
pub mod event;
pub mod job;
pub mod plugin;
pub mod runtime;
pub mod scaffold;
pub mod scheduler;
pub mod store;
pub mod trigger;
