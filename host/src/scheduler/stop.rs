//! Runs in flight on this host: their logs so far (`GET
//! /runs/{run_id}/logs` while a run goes), and stopping one by request (`POST /runs/{run_id}/stop`, the
//! dashboard's Stop button): the guest is stopped as a timeout stops it,
//! and the run is recorded `interrupted` with a note saying so, and not
//! retried (a person asked for it to end, as under `overlap =
//! "cancel-other"`).
//!
//! On one host the run's stop token is at hand ([`super::state::State`]'s
//! `cancellable`, which holds every run going). On a shared store the run
//! may go on another host: the request goes to every host through the
//! store ([`crate::store::JobStore::request_stop`]), and the host running
//! it stops it (`claim::cancel_loop`).

use super::{Scheduler, SchedulerError};
use crate::store::log_page;
use crate::store::{LogPage, RunStatus};

/// The note a run stopped by request is recorded with.
pub const STOPPED_NOTE: &str = "stopped by request (POST /runs/{run_id}/stop); not retried";

/// The word in a cancel notice that marks a stop by request rather than a
/// fire's time (`RUN_ID stop`).
pub(super) const STOP_WORD: &str = "stop";

/// The word in a cancel notice that marks a stop by request (for stores
/// that pass notices between hosts).
pub fn stop_word() -> &'static str {
    STOP_WORD
}

/// What [`Scheduler::stop_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    /// The run goes on this host and its guest is being stopped.
    Here,
    /// The run goes on another host sharing the store; the request was
    /// passed to it.
    Elsewhere,
}

impl Scheduler {
    /// The logs of the run `run_id` while it goes on this host: up to
    /// `limit` records from `offset`, secrets redacted; `None` when it
    /// does not go here (ended, pending, or on another host: its logs are
    /// in the store once it ends).
    pub fn live_logs(&self, run_id: &str, offset: usize, limit: usize) -> Option<LogPage> {
        let capture = self.inner.lock().cancellable.get(run_id)?.capture.clone();
        let (logs, total) = capture.snapshot(offset, limit);
        Some(log_page(logs, offset, total as u64))
    }

    /// Stops the run `run_id`, which must be running; it ends
    /// `interrupted` with [`STOPPED_NOTE`] within moments (its guest stops
    /// at its next instruction boundary, as on a timeout).
    ///
    /// # Errors
    /// [`SchedulerError::RunNotFound`]; [`SchedulerError::CannotStop`] when
    /// it is not running (pending, finished…) or is stopping already;
    /// [`SchedulerError::Store`] when the store cannot be read.
    pub async fn stop_run(&self, run_id: &str) -> Result<Stopping, SchedulerError> {
        if self.inner.lock().stop_by_request(run_id, STOPPED_NOTE) {
            return Ok(Stopping::Here);
        }
        let run = self
            .inner
            .store
            .run_summary(run_id)
            .await?
            .ok_or_else(|| SchedulerError::RunNotFound(run_id.to_owned()))?;
        if run.status != RunStatus::Running {
            return Err(SchedulerError::CannotStop(format!(
                "run {run_id} is {}, not running; only a running run can be stopped{}",
                run.status.as_str(),
                if run.status == RunStatus::Pending {
                    " (pause its job to hold pending runs)"
                } else {
                    ""
                }
            )));
        }
        if self.inner.shared && run.host.as_deref() != Some(self.inner.config.host_name.as_str()) {
            self.inner.store.request_stop(run_id).await?;
            return Ok(Stopping::Elsewhere);
        }
        // Recorded running here but not in the map: it is being stopped
        // already, or is just ending.
        Err(SchedulerError::CannotStop(format!(
            "run {run_id} is stopping or ending already"
        )))
    }
}
