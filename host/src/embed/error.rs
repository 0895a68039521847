//! Why an embedding call failed.

use crate::scheduler::SchedulerError;

pub use crate::app::StartError;

/// Why a [`super::Builder`] or [`super::Wasmcron`] call failed.
///
/// The cases a caller branches on are their own variants (a missing job, a
/// duplicate id, a spec to correct, a stopped host); everything else the
/// scheduler or its store said is [`Error::Scheduler`], with its cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host did not start; see [`StartError`] for the cases.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A builder option out of its range, e.g. `workers(0)`; names the
    /// option.
    #[error("{option}: {problem}")]
    Option {
        /// The builder method, e.g. `workers`.
        option: &'static str,
        /// What is wrong and what to give instead.
        problem: String,
    },
    /// No job with this id.
    #[error("job '{0}' not found")]
    JobNotFound(String),
    /// [`super::Wasmcron::add`] with an id that is taken.
    #[error("a job with id '{0}' already exists; use put or replace to change it")]
    Duplicate(String),
    /// A spec (or a patch) that cannot be a job: the field is its dotted
    /// path, e.g. `trigger.every`, as the HTTP API's 422 names it; the
    /// message says what to write instead.
    #[error("{message}")]
    Invalid {
        /// The field, e.g. `plugin` or `trigger.every` (empty for the
        /// whole spec).
        field: String,
        /// What is wrong, starting with the field.
        message: String,
    },
    /// Called after [`super::Wasmcron::stop`].
    #[error("wasmcron has stopped")]
    Stopped,
    /// Anything else the scheduler refused or its store failed at (a run
    /// of a job whose plugin is not loaded, `max_instances` reached, a
    /// database error).
    #[error(transparent)]
    Scheduler(SchedulerError),
}

impl Error {
    /// A spec refused at `field`.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<SchedulerError> for Error {
    fn from(e: SchedulerError) -> Self {
        match e {
            SchedulerError::JobNotFound(id) => Self::JobNotFound(id),
            SchedulerError::Duplicate(id) => Self::Duplicate(id),
            SchedulerError::Invalid(e) => Self::invalid(e.field(), e.to_string()),
            SchedulerError::NotRunning => Self::Stopped,
            e => Self::Scheduler(e),
        }
    }
}
