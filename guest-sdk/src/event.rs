//! What an error listener receives.

use crate::__private::WitJobEvent;
use crate::Timestamp;

/// What happened, as a listener hears it. The WIT's `event-kind`:
/// `RunSucceeded`, `RunFailed`, `RunMissed`, `RunSkipped`, `RunRetried`,
/// and since 0.2.0 `RunRecovered` (a success after failures in a row) and
/// `JobPaused` (the host paused the job after `pause_after_failures`
/// failures in a row). [`Event::kind_name`] gives its name as text.
pub use crate::bindings::wasmcron::plugin::types::EventKind;

/// A job event delivered to a `#[listener]` function.
#[derive(Debug, Clone)]
pub struct Event {
    raw: WitJobEvent,
}

impl Event {
    /// What happened.
    ///
    /// ```no_run
    /// use wasmcron_guest::{Event, EventKind, JobError, listener, log};
    ///
    /// #[listener]
    /// fn pager(event: Event) -> Result<(), JobError> {
    ///     match event.kind() {
    ///         EventKind::JobPaused => log::error!(
    ///             "job {} paused: {}",
    ///             event.job_id(),
    ///             event.message().unwrap_or("")
    ///         ),
    ///         EventKind::RunRecovered => log::info!("job {} recovered", event.job_id()),
    ///         _ => log::warn!("job {}: {}", event.job_id(), event.outcome()),
    ///     }
    ///     Ok(())
    /// }
    /// # fn main() {}
    /// ```
    pub fn kind(&self) -> EventKind {
        self.raw.kind
    }

    /// The kind's name as the WIT writes it: `run-succeeded`,
    /// `run-failed`, `run-missed`, `run-skipped`, `run-retried`,
    /// `run-recovered` or `job-paused`.
    pub fn kind_name(&self) -> &'static str {
        match self.raw.kind {
            EventKind::RunSucceeded => "run-succeeded",
            EventKind::RunFailed => "run-failed",
            EventKind::RunMissed => "run-missed",
            EventKind::RunSkipped => "run-skipped",
            EventKind::RunRetried => "run-retried",
            EventKind::RunRecovered => "run-recovered",
            EventKind::JobPaused => "job-paused",
        }
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

    /// How the run ended (`succeeded`, `failed`, `trapped`, `timed-out`,
    /// ...), `missed`, `recovered` (for [`EventKind::RunRecovered`]) or
    /// `paused` (for [`EventKind::JobPaused`]).
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
