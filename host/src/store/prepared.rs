//! Writes with their JSON encoded by the caller's task, for the backends
//! whose one writer (SQLite's thread, PostgreSQL's task) would otherwise
//! spend its time encoding thousands of run rows a second.

use super::{RunRecord, StoreError, Write};

/// A [`Write`] ready for a backend's writer.
#[expect(
    clippy::large_enum_variant,
    reason = "Other is a rare write (next fire, pause, prune) passed through as it came; boxing it buys nothing"
)]
pub(crate) enum Prepared {
    /// A run row with its outcome and logs as JSON.
    Run {
        run: Box<RunRecord>,
        outcome: Option<String>,
        logs: String,
    },
    /// A run's end ([`Write::End`]) with its outcome and logs as JSON.
    End {
        run: Box<RunRecord>,
        outcome: Option<String>,
        logs: String,
        retry: Option<Box<RunRecord>>,
    },
    /// Anything else, as it came.
    Other(Write),
}

impl Prepared {
    /// Encodes a write's JSON.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the run's outcome or logs cannot be
    /// encoded.
    pub(crate) fn new(w: Write) -> Result<Self, StoreError> {
        Ok(match w {
            Write::Run(run) => {
                let (outcome, logs) = encode(&run)?;
                Self::Run {
                    run: Box::new(run),
                    outcome,
                    logs,
                }
            }
            Write::End { run, retry } => {
                let (outcome, logs) = encode(&run)?;
                Self::End {
                    run: Box::new(run),
                    outcome,
                    logs,
                    retry,
                }
            }
            other => Self::Other(other),
        })
    }
}

/// A run's outcome and logs as the JSON the `runs` tables store.
///
/// # Errors
/// [`StoreError::Backend`] when either cannot be encoded.
pub(crate) fn encode(run: &RunRecord) -> Result<(Option<String>, String), StoreError> {
    let json = |e: serde_json::Error| StoreError::Backend(format!("encoding a run: {e}"));
    let outcome = run
        .outcome
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(json)?;
    Ok((outcome, serde_json::to_string(&run.logs).map_err(json)?))
}
