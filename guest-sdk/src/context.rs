//! The run context a job receives, and how its result goes back to the host.

use crate::__private::{RunContext, WitJobError};
use crate::JobError;
use crate::bindings::wasmcron::plugin::types::{
    ParentRun as WitParentRun, RunCause as WitRunCause, Timestamp as WitTimestamp,
};
use serde::de::DeserializeOwned;
use std::time::{Duration, SystemTime};

/// A point in time as the host sent it (UTC, since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before it).
    pub seconds: i64,
    /// Nanoseconds past `seconds`, below 1e9.
    pub nanoseconds: u32,
}

impl Timestamp {
    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let nanos = Duration::from_nanos(u64::from(self.nanoseconds));
        if self.seconds >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(self.seconds.unsigned_abs()) + nanos
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(self.seconds.unsigned_abs()) + nanos
        }
    }
}

impl From<WitTimestamp> for Timestamp {
    fn from(t: WitTimestamp) -> Self {
        Self {
            seconds: t.seconds,
            nanoseconds: t.nanoseconds,
        }
    }
}

/// Why a run happened ([`Context::cause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The job's trigger fired (a fire's first attempt).
    Schedule,
    /// A retry of a failed attempt ([`Context::attempt`] is 2 or more),
    /// whatever made the first attempt.
    Retry,
    /// Someone ran the job now, through the API or the CLI.
    Manual,
    /// A fire of a past range, run by a backfill.
    Backfill,
    /// Another job's run ended and chains to this job (`on_success`,
    /// `on_failure`); [`Context::parent`] says which run.
    Chain,
    /// A replay of an earlier run, with its arguments, `scheduled_at` and
    /// attempt.
    Replay,
    /// The scheduler started (`run_on_start`), or a new leader took over in
    /// a cluster.
    Start,
}

impl Cause {
    /// The cause's name as the host's API writes it: `schedule`, `retry`,
    /// `manual`, `backfill`, `chain`, `replay` or `start`.
    ///
    /// ```
    /// assert_eq!(wasmcron_guest::Cause::Chain.as_str(), "chain");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Retry => "retry",
            Self::Manual => "manual",
            Self::Backfill => "backfill",
            Self::Chain => "chain",
            Self::Replay => "replay",
            Self::Start => "start",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<WitRunCause> for Cause {
    fn from(c: WitRunCause) -> Self {
        match c {
            WitRunCause::Schedule => Self::Schedule,
            WitRunCause::Retry => Self::Retry,
            WitRunCause::Manual => Self::Manual,
            WitRunCause::Backfill => Self::Backfill,
            WitRunCause::Chain => Self::Chain,
            WitRunCause::Replay => Self::Replay,
            WitRunCause::Start => Self::Start,
        }
    }
}

/// The run whose end started a chained run ([`Context::parent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParentRun {
    /// The parent's job id.
    pub job_id: String,
    /// The parent run's id.
    pub run_id: String,
    /// How it ended: `succeeded` (this job is in its `on_success`), or
    /// `failed`, `trapped`, `out-of-fuel`, `timed-out` or `memory-limit`
    /// (in its `on_failure`).
    pub outcome: String,
    /// Its output, when it succeeded (as recorded: cut past 64 KiB).
    pub output: Option<String>,
    /// Its error or trap message, when it failed.
    pub message: Option<String>,
}

impl ParentRun {
    /// Whether the parent run succeeded (this run comes from its
    /// `on_success`).
    pub fn succeeded(&self) -> bool {
        self.outcome == "succeeded"
    }
}

impl From<WitParentRun> for ParentRun {
    fn from(p: WitParentRun) -> Self {
        Self {
            job_id: p.job_id,
            run_id: p.run_id,
            outcome: p.outcome,
            output: p.output,
            message: p.message,
        }
    }
}

/// What the host tells a job about the run it is doing.
#[derive(Debug, Clone)]
pub struct Context {
    raw: RunContext,
}

impl Context {
    /// The job's id.
    pub fn job_id(&self) -> &str {
        &self.raw.job_id
    }

    /// This run's id, unique across the host's history.
    pub fn run_id(&self) -> &str {
        &self.raw.run_id
    }

    /// When the schedule said this fire was due.
    pub fn scheduled_at(&self) -> Timestamp {
        self.raw.scheduled_at.into()
    }

    /// When the host started this run.
    pub fn fired_at(&self) -> Timestamp {
        self.raw.fired_at.into()
    }

    /// 1 for a fire's first attempt, 2 for its first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.raw.attempt
    }

    /// Why this run happened.
    ///
    /// ```no_run
    /// use wasmcron_guest::{Cause, Context, JobError, job, log};
    ///
    /// #[job]
    /// fn report(ctx: Context) -> Result<String, JobError> {
    ///     if ctx.cause() == Cause::Backfill {
    ///         log::info!("redoing the report of a past fire");
    ///     }
    ///     Ok(format!("run because of {}", ctx.cause()))
    /// }
    /// # fn main() {}
    /// ```
    pub fn cause(&self) -> Cause {
        self.raw.cause.into()
    }

    /// For a chained run (its cause is [`Cause::Chain`], or a retry of
    /// one), the run whose end started it: the parent's job and run ids,
    /// how it ended, and its output (on success) or error message (on
    /// failure). `None` for every other run, and when the parent is no
    /// longer in the host's history.
    ///
    /// ```no_run
    /// use wasmcron_guest::{Context, JobError, job};
    ///
    /// // Chained with `on_success = ["publish"]` after a job that outputs
    /// // the path it wrote.
    /// #[job]
    /// fn publish(ctx: Context) -> Result<String, JobError> {
    ///     let Some(parent) = ctx.parent() else {
    ///         return Err(JobError::permanent("publish runs only when chained"));
    ///     };
    ///     if !parent.succeeded() {
    ///         let why = parent.message.unwrap_or_default();
    ///         return Ok(format!("nothing to publish: run {} failed: {why}", parent.run_id));
    ///     }
    ///     let path = parent.output.unwrap_or_default();
    ///     Ok(format!("published {path} from run {}", parent.run_id))
    /// }
    /// # fn main() {}
    /// ```
    pub fn parent(&self) -> Option<ParentRun> {
        self.raw.parent.clone().map(ParentRun::from)
    }

    /// The job's arguments as raw JSON text (`{}` when none were given).
    pub fn args_json(&self) -> &str {
        &self.raw.args
    }

    /// The job's arguments, deserialized.
    ///
    /// # Errors
    /// A *permanent* [`JobError`] naming the problem when the arguments do not
    /// match `T`: retrying with the same arguments cannot help.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_str(&self.raw.args)
            .map_err(|e| JobError::permanent(format!("invalid job arguments: {e}")))
    }
}

/// What a job function may return on success; it becomes the run's output.
pub trait IntoOutput {
    /// The output text recorded in the run history.
    fn into_output(self) -> String;
}

impl IntoOutput for String {
    fn into_output(self) -> String {
        self
    }
}

impl IntoOutput for &str {
    fn into_output(self) -> String {
        self.to_owned()
    }
}

impl IntoOutput for () {
    fn into_output(self) -> String {
        String::new()
    }
}

impl IntoOutput for serde_json::Value {
    fn into_output(self) -> String {
        self.to_string()
    }
}

/// Calls the user's job function; used by `#[job]`.
#[doc(hidden)]
pub fn dispatch<T, E>(
    raw: RunContext,
    f: impl FnOnce(Context) -> Result<T, E>,
) -> Result<String, WitJobError>
where
    T: IntoOutput,
    E: Into<JobError>,
{
    f(Context { raw })
        .map(IntoOutput::into_output)
        .map_err(|e| e.into().into())
}
