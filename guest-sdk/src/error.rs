//! The error a job returns, and whether the scheduler may retry it.

use std::fmt;

/// Why a run failed.
///
/// `retryable` decides what the scheduler does next: a retryable error is
/// tried again under the job's retry policy; a permanent one never is.
/// Any `std::error::Error` converts with `?` into a *retryable* error (I/O and
/// remote failures are usually transient); say [`JobError::permanent`] for
/// failures a retry cannot fix, such as bad arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    message: String,
    retryable: bool,
}

impl JobError {
    /// A failure that may go away if the run is tried again.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure a retry cannot fix (bad arguments, missing data).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// The message recorded in the run history.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the scheduler may retry the run.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retryable {
            "retryable"
        } else {
            "permanent"
        };
        write!(f, "{} ({kind})", self.message)
    }
}

// JobError deliberately does not implement std::error::Error, so that this
// blanket conversion does not overlap with `From<T> for T` (anyhow's trick).
impl<E: std::error::Error> From<E> for JobError {
    fn from(err: E) -> Self {
        Self::retryable(err.to_string())
    }
}

impl From<JobError> for crate::__private::WitJobError {
    fn from(err: JobError) -> Self {
        Self {
            message: err.message,
            retryable: err.retryable,
        }
    }
}
