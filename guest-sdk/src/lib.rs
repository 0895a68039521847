//! Write a wasmcron job in Rust: one function and `#[job]`.
//!
//! A job plugin is a WebAssembly component built for `wasm32-wasip2` from a
//! `cdylib` crate. The host calls your function once per run, with the run's
//! [`Context`]; you return the output (any text) or a [`JobError`] that says
//! whether a retry may help.
//!
//! ```no_run
//! use serde::Deserialize;
//! use wasmcron_guest::{Context, JobError, job, kv, log};
//!
//! #[derive(Deserialize)]
//! struct Args {
//!     name: String,
//! }
//!
//! #[job]
//! fn greet(ctx: Context) -> Result<String, JobError> {
//!     // Bad arguments are a permanent error: the scheduler will not retry.
//!     let args: Args = ctx.args()?;
//!     let seen: u64 = kv::get_json("seen")?.unwrap_or(0);
//!     kv::set_json("seen", &(seen + 1))?;
//!     log::info!("greeting {} (attempt {})", args.name, ctx.attempt());
//!     Ok(format!("Hello, {}! I have greeted {} times.", args.name, seen + 1))
//! }
//! # fn main() {}
//! ```
//!
//! A job also learns why it runs ([`Context::cause`]: its schedule, a
//! retry, a person, a backfill, a chain, a replay or the scheduler's
//! start) and, when another job's run chained to it, that run
//! ([`Context::parent`]: its id, outcome, output or error).
//!
//! The SDK targets the WIT package `wasmcron:plugin@0.2.0`. Components
//! built against 0.1.0 (with an earlier SDK, or `wit-bindgen` and
//! `wit/v0.1`) keep loading and running unchanged.
//!
//! Build it with `cargo build --release --target wasm32-wasip2` from a crate
//! with `crate-type = ["cdylib"]`, then check it with
//! `wasmcron plugin check target/wasm32-wasip2/release/NAME.wasm`.
//!
//! # What a job can reach
//! By default nothing outside itself: no files, no network, no environment
//! variables. Clocks and random numbers work. A job's `capabilities` grant
//! more: directories (seen through `std::fs` at the guest path granted),
//! environment variables and secrets (`std::env::var`), and HTTP to listed
//! hosts (module `http`, behind the feature of the same name). State shared between runs goes
//! through [`kv`]; anything printed to stdout or stderr, and everything
//! logged with [`log`], is kept (bounded) in the run's history.

#![deny(missing_docs)]

// Lets the generated bindings name this crate by its public path.
extern crate self as wasmcron_guest;

pub mod args;
mod context;
mod error;
mod event;
#[cfg(feature = "http")]
pub mod http;
pub mod kv;
pub mod log;

pub use args::JobArgs;
pub use context::{Cause, Context, IntoOutput, ParentRun, Timestamp};
pub use error::JobError;
pub use event::{Event, EventKind};
pub use wasmcron_guest_macros::{JobArgs, job, listener};

/// The raw bindings of the `wasmcron:plugin@0.2.0` WIT package, world
/// `job`.
///
/// Most plugins never need them; they are public for the rare case the safe
/// wrappers do not cover.
#[allow(
    missing_docs,
    reason = "generated from wit/v0.2/wasmcron.wit, whose doc comments carry over where WIT has them"
)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "job",
        path: "../wit/v0.2",
        pub_export_macro: true,
        export_macro_name: "__export_job_raw",
        default_bindings_module: "::wasmcron_guest::bindings",
        runtime_path: "::wasmcron_guest::__private::wit_bindgen::rt",
    });
}

/// The raw bindings of world `listener` (its imports are shared with
/// [`bindings`]).
#[allow(missing_docs, reason = "generated from wit/v0.2/wasmcron.wit")]
pub mod bindings_listener {
    wit_bindgen::generate!({
        world: "listener",
        path: "../wit/v0.2",
        pub_export_macro: true,
        export_macro_name: "__export_listener_raw",
        default_bindings_module: "::wasmcron_guest::bindings_listener",
        runtime_path: "::wasmcron_guest::__private::wit_bindgen::rt",
        with: {
            "wasmcron:plugin/types@0.2.0": crate::bindings::wasmcron::plugin::types,
            "wasmcron:plugin/log@0.2.0": crate::bindings::wasmcron::plugin::log,
            "wasmcron:plugin/kv@0.2.0": crate::bindings::wasmcron::plugin::kv,
        },
    });
}

/// Used by the code `#[job]` expands to; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::args;
    pub use crate::bindings::exports::wasmcron::plugin::runner::Guest as Runner;
    pub use crate::bindings::wasmcron::plugin::types::JobEvent as WitJobEvent;
    pub use crate::bindings::wasmcron::plugin::types::{JobError as WitJobError, RunContext};
    pub use crate::bindings_listener::exports::wasmcron::plugin::handler::Guest as Handler;
    pub use crate::context::dispatch;
    pub use crate::event::dispatch_event;
    pub use wit_bindgen;
}

/// Exports the type `#[listener]` generated as the component's `handler`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_listener {
    ($ty:ident) => {
        $crate::bindings_listener::__export_listener_raw!($ty);
    };
}

/// Exports the type `#[job]` generated as the component's `runner`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_job {
    ($ty:ident) => {
        $crate::bindings::__export_job_raw!($ty);
    };
}
