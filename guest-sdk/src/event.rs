//! What an error listener receives.

use crate::__private::WitJobEvent;
use crate::Timestamp;

pub use crate::bindings::wasmcron::plugin::types::EventKind;

/// A job event delivered to a `#[listener]` function.
#[derive(Debug, Clone)]
pub struct Event {
    raw: WitJobEvent,
}

impl Event {
    /// What happened.
    pub fn kind(&self) -> EventKind {
        self.raw.kind
    }

    /// The job it happened to.
    pub fn job_id(&self) -> &str {
        &self.raw.job_id
    }

    /// The run, when there is one.
    pub fn run_id(&self) -> Option<&str> {
        self.raw.run_id.as_deref()
    }

    /// When the fire was due.
    pub fn scheduled_at(&self) -> Timestamp {
        self.raw.scheduled_at.into()
    }

    /// The attempt.
    pub fn attempt(&self) -> u32 {
        self.raw.attempt
    }

    /// How the run ended (`failed`, `trapped`, `timed-out`, ...), or
    /// `missed`.
    pub fn outcome(&self) -> &str {
        &self.raw.outcome
    }

    /// The error, trap or reason, when there is one.
    pub fn message(&self) -> Option<&str> {
        self.raw.message.as_deref()
    }
}

/// Calls the user's listener function; used by `#[listener]`.
#[doc(hidden)]
pub fn dispatch_event<E: std::fmt::Display>(
    raw: WitJobEvent,
    f: impl FnOnce(Event) -> Result<(), E>,
) -> Result<(), String> {
    f(Event { raw }).map_err(|e| e.to_string())
}
