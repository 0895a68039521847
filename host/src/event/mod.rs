//! What listeners see: job and run events, on one broadcast bus.
//!
//! The bus never blocks the scheduler: it is a bounded broadcast channel,
//! and a listener that falls behind loses the oldest events (and is told
//! how many) rather than slowing anyone down.
//!
//! Events travel as `Arc<Event>`: every subscriber (the listeners, the
//! metrics, the event stream's clients, an embedding program) receives the
//! same allocation, where a plain `Event` was cloned, strings and all, for
//! each subscriber of each of a run's four or so events (issue 12: a burst
//! spent its CPU in small allocations like these).

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// A subscription to the bus: each event once, shared (see the module
/// doc). `recv` gives `Err(Lagged(n))` when `n` events were dropped for a
/// subscriber that fell behind.
pub type EventReceiver = broadcast::Receiver<Arc<Event>>;

/// Events kept for a slow subscriber before the oldest are dropped.
const BUS_CAPACITY: usize = 4096;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A job was added.
    JobAdded(JobEvent),
    /// A job was removed.
    JobRemoved(JobEvent),
    /// A job was replaced or rescheduled.
    JobModified(JobEvent),
    /// A job was paused.
    JobPaused(JobEvent),
    /// A job was resumed.
    JobResumed(JobEvent),
    /// A fire was recorded and queued for a worker.
    RunSubmitted(RunEvent),
    /// A guest started running.
    RunStarted(RunEvent),
    /// A run succeeded.
    RunSucceeded(RunEvent),
    /// A run ended in any failure: failed, trapped, out of fuel, timed
    /// out, memory limit, or interrupted.
    RunFailed(RunEvent),
    /// A fire was not run: too late, coalesced, or its plugin missing.
    RunMissed(RunEvent),
    /// A fire was not run: the job had `max_instances` runs going.
    RunSkipped(RunEvent),
    /// A failed run will be tried again.
    RunRetried(RunEvent),
    /// A plugin was loaded (new or replacing an older version).
    PluginLoaded(PluginEvent),
    /// A plugin file was refused (a loaded older version stays).
    PluginRefused(PluginEvent),
    /// A plugin's file was removed; its jobs wait for it.
    PluginRemoved(PluginEvent),
}

/// A plugin-level event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginEvent {
    /// The plugin's name.
    pub plugin: String,
    /// The content hash of the version now loaded, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Why a file was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// A job-level event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    /// The job.
    pub job_id: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// On `job-paused`, when the host paused the job by itself
    /// (`pause_after_failures`): why, e.g. `auto-paused after 3 failed runs
    /// in a row (last: run …)`. Absent for a manual pause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// On an auto-pause: the failed run that made the job pause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// A run-level event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEvent {
    /// The job.
    pub job_id: String,
    /// The run.
    pub run_id: String,
    /// When the fire was due.
    pub scheduled_at: DateTime<Utc>,
    /// The attempt.
    pub attempt: u32,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// When its guest started, once it has (duration = `at` − this for
    /// finished runs; lateness = this − `scheduled_at` for started ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// The outcome kind, for finished runs (`interrupted` when the host
    /// stopped the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The error, trap or reason, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// On `run-failed`: how many failed runs in a row this one makes (a
    /// fire's retries counted once; see `pause_after_failures`). Counted
    /// from the store only when the job needs it (`pause_after_failures`
    /// or a listener's `after_failures`); absent otherwise, and for
    /// interrupted runs, which do not count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures_in_a_row: Option<u32>,
    /// On `run-succeeded`: how many failed runs in a row this success
    /// ended (it is a recovery), when a listener hears `recovered`;
    /// absent otherwise and when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_after: Option<u32>,
}

impl Event {
    /// The job the event is about; `None` for plugin events.
    pub fn job_id(&self) -> Option<&str> {
        match self {
            Self::JobAdded(e)
            | Self::JobRemoved(e)
            | Self::JobModified(e)
            | Self::JobPaused(e)
            | Self::JobResumed(e) => Some(&e.job_id),
            Self::RunSubmitted(e)
            | Self::RunStarted(e)
            | Self::RunSucceeded(e)
            | Self::RunFailed(e)
            | Self::RunMissed(e)
            | Self::RunSkipped(e)
            | Self::RunRetried(e) => Some(&e.job_id),
            Self::PluginLoaded(_) | Self::PluginRefused(_) | Self::PluginRemoved(_) => None,
        }
    }

    /// The event's name, as serialized (`run-failed`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::JobAdded(_) => "job-added",
            Self::JobRemoved(_) => "job-removed",
            Self::JobModified(_) => "job-modified",
            Self::JobPaused(_) => "job-paused",
            Self::JobResumed(_) => "job-resumed",
            Self::RunSubmitted(_) => "run-submitted",
            Self::RunStarted(_) => "run-started",
            Self::RunSucceeded(_) => "run-succeeded",
            Self::RunFailed(_) => "run-failed",
            Self::RunMissed(_) => "run-missed",
            Self::RunSkipped(_) => "run-skipped",
            Self::RunRetried(_) => "run-retried",
            Self::PluginLoaded(_) => "plugin-loaded",
            Self::PluginRefused(_) => "plugin-refused",
            Self::PluginRemoved(_) => "plugin-removed",
        }
    }
}

/// The broadcast bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUS_CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Publishes an event; never blocks, and having no subscriber is fine.
    pub fn publish(&self, event: Event) {
        // No subscriber: nothing to share, and no allocation for it.
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(event));
        }
    }

    /// A new subscription, receiving events published from now on.
    pub fn subscribe(&self) -> EventReceiver {
        self.tx.subscribe()
    }
}
