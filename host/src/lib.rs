//! wasmcron: run scheduled jobs as sandboxed WebAssembly components.
//!
//! ```text
//! plugin file ──load──▶ Plugin (component compiled once, InstancePre)
//!             ──job──▶ JobSpec { plugin, trigger, limits, capabilities }
//!             ──trigger::next_after──▶ next due instant
//!             ──scheduler──▶ Fire { job, scheduled_at, attempt }
//!             ──runtime::run (fresh Store, limits on)──▶ RunReport { Outcome, .. }
//!             ──event──▶ JobStore and listeners
//! ```
//!
//! # Layout
//! - [`plugin`]: a `.wasm` file becomes a checked, compiled [`plugin::Plugin`].
//! - [`runtime`]: the shared engine and one sandboxed run per call.
//! - [`store`]: persistence; today the guests' kv data.
//! - `cli`: the `wasmcron` command line (the binary is a thin shell over it).

pub mod app;
pub mod cli;
mod cli_cron;
pub mod duration;
pub mod event;
pub mod job;
pub mod plugin;
pub mod runtime;
pub mod scheduler;
pub mod store;
pub mod trigger;
