//! The run context a job receives, and how its result goes back to the host.

use crate::__private::{RunContext, WitJobError};
use crate::JobError;
use crate::bindings::wasmcron::plugin::types::Timestamp as WitTimestamp;
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
