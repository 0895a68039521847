//! wasmcron: run scheduled jobs as sandboxed WebAssembly components.
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
pub mod event;
pub mod job;
pub mod plugin;
pub mod runtime;
pub mod scheduler;
pub mod store;
pub mod trigger;
