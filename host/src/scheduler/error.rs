//! Why a scheduler call failed.

use crate::job::JobError;
use crate::store::StoreError;

/// Why a scheduler call failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// No job with this id (APScheduler's JobLookupError).
    #[error("job '{0}' not found")]
    JobNotFound(String),
    /// A job with this id exists and replacing was not asked for.
    #[error("a job with id '{0}' already exists; set replace_existing to replace it")]
    Duplicate(String),
    /// The spec is invalid.
    #[error(transparent)]
    Invalid(#[from] JobError),
    /// The job already has `max_instances` runs going.
    #[error("job '{job}' already has {max} run(s) in flight (max_instances)")]
    MaxInstances {
        /// The job.
        job: String,
        /// Its limit.
        max: u32,
    },
    /// No run with this id.
    #[error("run '{0}' not found")]
    RunNotFound(String),
    /// A manual run or replay asked for a job whose plugin is not loaded
    /// (still compiling, refused, or not in the folder): refused at once
    /// rather than recorded as missed.
    #[error(
        "job '{job}' cannot run now: its plugin '{plugin}' is not loaded ({why}); \
         GET /plugins/{plugin} says when it is"
    )]
    PluginNotLoaded {
        /// The job.
        job: String,
        /// Its plugin.
        plugin: String,
        /// `still compiling`, or `not in the plugins folder or refused`.
        why: &'static str,
    },
    /// A run cannot be replayed; says why.
    #[error("{0}")]
    CannotReplay(String),
    /// A run cannot be stopped (it is not running); says why.
    #[error("{0}")]
    CannotStop(String),
    /// A request that cannot be done as asked (e.g. a backfill range in the
    /// future); names the field and what to write instead.
    #[error("{problem}")]
    BadRequest {
        /// The field, e.g. `to`.
        field: String,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// No calendar with this name.
    #[error(
        "calendar '{0}' not found; define it with PUT /calendars/{0} or [calendars.{0}] in the jobs file"
    )]
    CalendarNotFound(String),
    /// A calendar some jobs name in `exclude` cannot be removed.
    #[error(
        "calendar '{name}' is named in the exclude of job(s) {}; remove it from their exclude \
         (or delete them) first",
        .jobs.join(", ")
    )]
    CalendarInUse {
        /// The calendar.
        name: String,
        /// The jobs naming it.
        jobs: Vec<String>,
    },
    /// Called after shutdown.
    #[error("the scheduler is not running")]
    NotRunning,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for SchedulerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(id) => Self::Duplicate(id),
            StoreError::NotFound(id) => Self::JobNotFound(id),
            e => Self::Store(e),
        }
    }
}
