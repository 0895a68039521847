//! What the scheduler tells about a job: its spec, next fire and state.

use crate::job::JobSpec;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A job as the scheduler sees it now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobInfo {
    /// The spec as written.
    pub spec: JobSpec,
    /// Its trigger in words with its zone, e.g. `at 00:05 every day
    /// (Asia/Shanghai)` or `every 10s` ([`crate::trigger::TriggerSpec::words`]).
    pub schedule: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it is next due.
    pub next_run_time: Option<DateTime<Utc>>,
    /// Whether it is paused.
    pub paused: bool,
    /// Why it is paused: when the host paused it by itself, e.g.
    /// `auto-paused after 3 failed runs in a row (last: run …)`
    /// (`pause_after_failures`, and `auto_paused` is true); else the note
    /// a person gave with the pause (`POST /jobs/{id}/pause
    /// {"note": …}`). Absent when it is not paused or was paused without
    /// a note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// Paused by the host after failures in a row (`pause_after_failures`),
    /// not by a person.
    #[serde(default)]
    pub auto_paused: bool,
    /// Runs pending or running now (catch-up runs queued behind them
    /// included).
    pub in_flight: u32,
    /// Whether its plugin is loaded. A job whose plugin is missing is kept
    /// and held at its next fire; it resumes when the plugin is loaded
    /// again, with its `misfire_grace` and `coalesce` applied to the fires
    /// it missed meanwhile.
    pub plugin_loaded: bool,
    /// `scheduled`, `paused`, `waiting-for-plugin` or `finished` (no fire
    /// left in its trigger).
    pub state: JobState,
    /// Warnings for people.
    pub warnings: Vec<String>,
    /// Which life of this id the job is: new when the job is created, kept
    /// when it is modified. Its runs carry the same value; a run of a
    /// deleted job never shows up under a new job with the same id.
    pub incarnation: String,
}

/// Where a job stands, for listings and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// It will fire at `next_run_time`.
    Scheduled,
    /// Paused (by a person, or by the host after `pause_after_failures`
    /// failed runs in a row); it does not fire.
    Paused,
    /// Its plugin is not loaded; it resumes when the plugin is.
    WaitingForPlugin,
    /// Its trigger has no fire left.
    Finished,
}

impl JobState {
    /// The state's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Paused => "paused",
            Self::WaitingForPlugin => "waiting-for-plugin",
            Self::Finished => "finished",
        }
    }
}

/// How many jobs are in each [`JobState`], and their runs in flight: what
/// `/healthz` and `/metrics` report, counted without copying any job
/// (unlike [`super::Scheduler::jobs`], which copies every spec: at a
/// million jobs, about half a gigabyte for each call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobTally {
    /// Every job.
    pub jobs: usize,
    /// Jobs that will fire.
    pub scheduled: usize,
    /// Paused jobs.
    pub paused: usize,
    /// Jobs waiting for their plugin.
    pub waiting_for_plugin: usize,
    /// Jobs whose trigger has no fire left.
    pub finished: usize,
    /// Runs pending or running, summed over the jobs (as
    /// [`JobInfo::in_flight`]).
    pub in_flight: u64,
}

impl JobTally {
    /// The count of jobs in `state`.
    pub fn in_state(&self, state: JobState) -> usize {
        match state {
            JobState::Scheduled => self.scheduled,
            JobState::Paused => self.paused,
            JobState::WaitingForPlugin => self.waiting_for_plugin,
            JobState::Finished => self.finished,
        }
    }
}

impl JobInfo {
    /// Fills in [`Self::schedule`] from the spec's trigger (made outside
    /// the scheduler's lock; see `Inner::info`).
    pub(super) fn described(mut self) -> Self {
        self.schedule = self.spec.trigger.words();
        self
    }
}
