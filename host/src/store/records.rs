//! What the job store keeps: job rows and run rows.

use crate::job::JobSpec;
use crate::runtime::{LogRecord, Outcome};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stored job: its spec as written plus scheduling state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The spec as written.
    pub spec: JobSpec,
    /// When the job was first added (anchors intervals without a start).
    pub created_at: DateTime<Utc>,
    /// When it is next due; `None` when its schedule is over.
    pub next_run_time: Option<DateTime<Utc>>,
    /// Paused jobs are kept but not fired.
    pub paused: bool,
    /// Which life of this id the job is: assigned when the job is created,
    /// kept across modifications, new after a delete and re-create. Runs
    /// carry it, so a run of a deleted job never shows up in the history of
    /// a new job with the same id. (Empty only in hand-made records.)
    #[serde(default)]
    pub incarnation: String,
    /// Why the job was paused, when the host paused it by itself
    /// (`pause_after_failures`); `None` when it is not paused or a person
    /// paused it. Cleared by a resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// When its failures in a row were last reset by a resume: runs that
    /// ended at or before it do not count toward `pause_after_failures` (nor a
    /// listener's `after_failures`). `None`: never resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_from: Option<DateTime<Utc>>,
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Recorded, waiting for a worker (or for its retry delay).
    Pending,
    /// A guest is running it.
    Running,
    /// It ran; `outcome` says how it ended.
    Finished,
    /// It was not run: too late (misfire grace), coalesced, or its plugin
    /// was missing; `note` says which.
    Missed,
    /// It was not run: the job already had `max_instances` runs going.
    Skipped,
    /// The host stopped while it was pending or running.
    Interrupted,
}

impl RunStatus {
    /// The kebab-case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Missed => "missed",
            Self::Skipped => "skipped",
            Self::Interrupted => "interrupted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "finished" => Self::Finished,
            "missed" => Self::Missed,
            "skipped" => Self::Skipped,
            "interrupted" => Self::Interrupted,
            _ => return None,
        })
    }
}

/// What made a run's first attempt: its job's schedule, a person (run
/// now, replay), a backfill, a chain or the scheduler's start. Stored in
/// the runs table's `origin` column; a retry keeps its first attempt's
/// origin (but a replay's retry is `manual`), and [`RunRecord::cause`]
/// tells retries apart.
///
/// Only scheduled fires are unique: a store keeps at most one row per
/// (job, `scheduled_at`, attempt) among `fire` rows (the fire key, issue
/// 11). Every other origin is outside that rule: a replay shares its
/// original's `scheduled_at` and attempt, a backfill re-runs fire times
/// that may have run already.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RunOrigin {
    /// A fire of the job's trigger, or a retry of one.
    #[default]
    Fire,
    /// `POST /jobs/{id}/run`, or a retry of one or of a replay.
    Manual,
    /// `POST /runs/{run_id}/replay`.
    Replay,
    /// A fire of a past range run by `POST /jobs/{id}/backfill`.
    Backfill,
    /// Started by another job's run ending (`on_success`, `on_failure`).
    Chain,
    /// `run_on_start`: fired once when the scheduler starts (in a
    /// cluster, when a new leader takes over).
    Start,
}

impl RunOrigin {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fire => "fire",
            Self::Manual => "manual",
            Self::Replay => "replay",
            Self::Backfill => "backfill",
            Self::Chain => "chain",
            Self::Start => "start",
        }
    }

    /// Parses a stored name; anything else is `Manual`, which no
    /// uniqueness rule constrains (a row a newer version wrote).
    pub fn parse(s: &str) -> Self {
        match s {
            "fire" => Self::Fire,
            "replay" => Self::Replay,
            "backfill" => Self::Backfill,
            "chain" => Self::Chain,
            "start" => Self::Start,
            _ => Self::Manual,
        }
    }

    /// The origin of a retry of a run of this origin: the same, but a
    /// replay's retries are `manual` (so [`RunRecord::cause`] says
    /// `retry` for them, and `replay` only for the replay itself).
    pub fn of_retry(self) -> Self {
        if self == Self::Replay {
            Self::Manual
        } else {
            self
        }
    }
}

/// Why a run happened (issue 13): `schedule`, `retry`, `manual`,
/// `backfill`, `chain`, `replay` or `start`. Derived from a run's
/// [`RunOrigin`] and attempt (see [`RunRecord::cause`]); shown on every run
/// in the API and passed to the guest.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RunCause {
    /// The job's trigger fired.
    #[default]
    Schedule,
    /// A retry of a failed attempt (attempt 2 or later).
    Retry,
    /// Run now, through the API or the CLI.
    Manual,
    /// A replay of an earlier run.
    Replay,
    /// A backfill of a past range.
    Backfill,
    /// Another job's run ended and chains to this job.
    Chain,
    /// The scheduler started (`run_on_start`).
    Start,
}

impl RunCause {
    /// The cause of a run of `origin` at `attempt`, with its `note` (runs
    /// recorded before replays had an origin of their own are `manual`
    /// with a note `replay of run …`).
    pub fn of(origin: RunOrigin, attempt: u32, note: Option<&str>) -> Self {
        match origin {
            RunOrigin::Replay => Self::Replay,
            _ if attempt > 1 => Self::Retry,
            RunOrigin::Fire => Self::Schedule,
            RunOrigin::Manual if note.is_some_and(|n| n.starts_with("replay of run ")) => {
                Self::Replay
            }
            RunOrigin::Manual => Self::Manual,
            RunOrigin::Backfill => Self::Backfill,
            RunOrigin::Chain => Self::Chain,
            RunOrigin::Start => Self::Start,
        }
    }

    /// The cause's name (`schedule`, `retry`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Retry => "retry",
            Self::Manual => "manual",
            Self::Replay => "replay",
            Self::Backfill => "backfill",
            Self::Chain => "chain",
            Self::Start => "start",
        }
    }
}

impl From<RunCause> for crate::runtime::WitRunCause {
    fn from(cause: RunCause) -> Self {
        match cause {
            RunCause::Schedule => Self::Schedule,
            RunCause::Retry => Self::Retry,
            RunCause::Manual => Self::Manual,
            RunCause::Replay => Self::Replay,
            RunCause::Backfill => Self::Backfill,
            RunCause::Chain => Self::Chain,
            RunCause::Start => Self::Start,
        }
    }
}

/// One run: one attempt at one fire of a job (or a record of a fire that
/// did not run, and why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// Unique, time-ordered id.
    pub run_id: String,
    /// The job.
    pub job_id: String,
    /// 1 for the first attempt at a fire.
    pub attempt: u32,
    /// When the fire was due by the schedule.
    pub scheduled_at: DateTime<Utc>,
    /// When this attempt may start (later than `scheduled_at` for retries).
    pub due_at: DateTime<Utc>,
    /// Where it is.
    pub status: RunStatus,
    /// When the guest started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// How the guest's run ended, for finished runs.
    pub outcome: Option<Outcome>,
    /// Fuel consumed.
    pub fuel: u64,
    /// Captured output (bounded by the runtime).
    pub logs: Vec<LogRecord>,
    /// Content hash of the plugin that ran it.
    pub plugin_hash: Option<String>,
    /// Why it was missed, skipped or interrupted, or other remarks.
    pub note: Option<String>,
    /// The args it ran with (JSON text), recorded with its result; a
    /// replay sets them up front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// The incarnation of the job it belongs to (see
    /// [`JobRecord::incarnation`]); a store records a run only while that
    /// incarnation is the job's live one.
    #[serde(default)]
    pub incarnation: String,
    /// What made its first attempt (see [`RunOrigin`]; [`Self::cause`]
    /// says why this attempt happened).
    #[serde(default)]
    pub origin: RunOrigin,
    /// The name of the host that ran it (`--host-name`); `None` until it
    /// starts, and for fires that did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// For a chained run (origin `chain`) and its retries, the id of the
    /// run whose end started it; `None` for every other run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
}

impl RunRecord {
    /// A new pending run.
    pub fn pending(
        job_id: &str,
        scheduled_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
        attempt: u32,
    ) -> Self {
        Self {
            run_id: new_run_id(),
            job_id: job_id.to_owned(),
            attempt,
            scheduled_at,
            due_at,
            status: RunStatus::Pending,
            started_at: None,
            ended_at: None,
            outcome: None,
            fuel: 0,
            logs: Vec::new(),
            plugin_hash: None,
            note: None,
            args: None,
            incarnation: String::new(),
            origin: RunOrigin::Fire,
            host: None,
            parent_run_id: None,
        }
    }

    /// Why this attempt happened (from its origin and attempt).
    pub fn cause(&self) -> RunCause {
        RunCause::of(self.origin, self.attempt, self.note.as_deref())
    }

    /// The same run, as belonging to job incarnation `incarnation`.
    #[must_use]
    pub fn of(mut self, incarnation: &str) -> Self {
        incarnation.clone_into(&mut self.incarnation);
        self
    }

    /// A record of a fire that did not run.
    pub fn not_run(
        job_id: &str,
        scheduled_at: DateTime<Utc>,
        status: RunStatus,
        note: String,
    ) -> Self {
        Self {
            status,
            note: Some(note),
            ..Self::pending(job_id, scheduled_at, scheduled_at, 1)
        }
    }
}

/// A run without its logs: what run lists carry (`GET /jobs/{id}/runs`),
/// so a page of them stays small whatever the guests logged. The logs are
/// read on their own, a page at a time ([`LogPage`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// Unique, time-ordered id.
    pub run_id: String,
    /// The job.
    pub job_id: String,
    /// 1 for the first attempt at a fire.
    pub attempt: u32,
    /// When the fire was due by the schedule.
    pub scheduled_at: DateTime<Utc>,
    /// When this attempt may start (later than `scheduled_at` for retries).
    pub due_at: DateTime<Utc>,
    /// Where it is.
    pub status: RunStatus,
    /// When the guest started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// How the guest's run ended, for finished runs (its output and
    /// message are capped by the runtime at 64 KiB each).
    pub outcome: Option<Outcome>,
    /// Fuel consumed.
    pub fuel: u64,
    /// Content hash of the plugin that ran it.
    pub plugin_hash: Option<String>,
    /// Why it was missed, skipped or interrupted, or other remarks.
    pub note: Option<String>,
    /// The args it ran with (JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// How many log records the run captured (read them with
    /// `GET /runs/{run_id}/logs`).
    pub log_count: u64,
    /// What made its first attempt (see [`RunOrigin`]).
    #[serde(default)]
    pub origin: RunOrigin,
    /// Why it happened: `schedule`, `retry`, `manual`, `replay`,
    /// `backfill`, `chain` or `start` (from `origin` and `attempt`).
    #[serde(default)]
    pub cause: RunCause,
    /// The name of the host that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// For a chained run and its retries, the id of the run whose end
    /// started it (`GET /runs/{parent_run_id}` has its output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
}

impl RunSummary {
    /// Roughly how many bytes this summary takes as JSON: the variable
    /// parts plus a fixed allowance for the rest. Pages of runs are cut by
    /// this so a response stays bounded even when every run carries large
    /// args or outputs.
    pub fn approx_json_len(&self) -> usize {
        let outcome = match &self.outcome {
            Some(Outcome::Succeeded { output }) => output.len(),
            Some(Outcome::Failed { message, .. } | Outcome::Trapped { message }) => message.len(),
            _ => 0,
        };
        400 + outcome
            + self.args.as_ref().map_or(0, String::len)
            + self.note.as_ref().map_or(0, String::len)
            + self.job_id.len()
    }
}

impl RunSummary {
    /// The summary with `cause` set from its origin, attempt and note.
    #[must_use]
    pub fn with_cause(mut self) -> Self {
        self.cause = RunCause::of(self.origin, self.attempt, self.note.as_deref());
        self
    }
}

impl From<&RunRecord> for RunSummary {
    fn from(r: &RunRecord) -> Self {
        Self {
            run_id: r.run_id.clone(),
            job_id: r.job_id.clone(),
            attempt: r.attempt,
            scheduled_at: r.scheduled_at,
            due_at: r.due_at,
            status: r.status,
            started_at: r.started_at,
            ended_at: r.ended_at,
            outcome: r.outcome.clone(),
            fuel: r.fuel,
            plugin_hash: r.plugin_hash.clone(),
            note: r.note.clone(),
            args: r.args.clone(),
            log_count: r.logs.len() as u64,
            origin: r.origin,
            cause: r.cause(),
            host: r.host.clone(),
            parent_run_id: r.parent_run_id.clone(),
        }
    }
}

/// Where a page of runs starts: [`crate::store::JobStore::run_summaries`]
/// and [`crate::store::JobStore::all_runs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunsFrom {
    /// After skipping this many runs of the listing (offset paging; pages
    /// shift by one whenever a run is recorded ahead of them).
    Offset(usize),
    /// The runs that come after this run (by `run_id`) in the listing's
    /// order: cursor paging, stable however many runs arrive meanwhile. A
    /// job's runs are ordered by (`scheduled_at`, `run_id`), so a cursor
    /// there must name a stored run of the job (none match otherwise); the
    /// listing of every job is ordered by `run_id` alone, so any id works,
    /// stored or pruned.
    Before(String),
}

impl RunsFrom {
    /// The offset to skip: the offset itself, or 0 under a cursor.
    pub fn offset(&self) -> usize {
        match self {
            Self::Offset(n) => *n,
            Self::Before(_) => 0,
        }
    }

    /// The cursor's run id, if this is one.
    pub fn before(&self) -> Option<&str> {
        match self {
            Self::Offset(_) => None,
            Self::Before(id) => Some(id),
        }
    }
}

/// Which runs [`crate::store::JobStore::all_runs`] lists: `None` fields
/// match any run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only finished runs that ended this way.
    pub outcome: Option<crate::runtime::OutcomeKind>,
}

impl RunFilter {
    /// Whether `run` passes.
    pub fn matches(&self, status: RunStatus, outcome: Option<crate::runtime::OutcomeKind>) -> bool {
        self.status.is_none_or(|s| s == status) && self.outcome.is_none_or(|o| Some(o) == outcome)
    }
}

/// How many runs scheduled in a window are in each status, and how the
/// finished ones ended ([`crate::store::JobStore::run_counts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Runs per status (`pending`, `running`, `finished`…); statuses with
    /// no run are absent.
    pub by_status: std::collections::BTreeMap<String, u64>,
    /// Finished runs per outcome kind (`succeeded`, `failed`, `trapped`,
    /// `timed-out`, `out-of-fuel`, `memory-limit`); kinds with no run are
    /// absent.
    pub by_outcome: std::collections::BTreeMap<String, u64>,
    /// Fire lateness (`started_at − scheduled_at`, in ms) of the newest
    /// [`LATENESS_SAMPLES`] first attempts of scheduled fires in the
    /// window that started, in no particular order. Retries, manual runs
    /// and replays are left out: they are late by design.
    pub lateness_ms: Vec<i64>,
}

/// Most lateness samples [`RunCounts`] carries, so its cost stays bounded
/// however many runs the store holds.
pub const LATENESS_SAMPLES: usize = 100_000;

impl RunCounts {
    /// The `q` quantile (0-1) of [`Self::lateness_ms`] by the nearest-rank
    /// method; `None` without samples.
    pub fn lateness_quantile(&self, q: f64) -> Option<i64> {
        let mut sorted = self.lateness_ms.clone();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        // Nearest rank: the smallest value with at least q of the samples
        // at or below it.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
        sorted.get(rank - 1).copied()
    }

    /// Counts one more run.
    pub fn add(&mut self, status: &str, outcome: Option<&str>, n: u64) {
        *self.by_status.entry(status.to_owned()).or_insert(0) += n;
        if let Some(kind) = outcome {
            *self.by_outcome.entry(kind.to_owned()).or_insert(0) += n;
        }
    }
}

/// A page of a job's run summaries, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunList {
    /// The runs of this page.
    pub runs: Vec<RunSummary>,
    /// Whether runs follow this page (it was cut by its size or count).
    pub more: bool,
}

/// A page of one run's log records, in the order they were captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogPage {
    /// The records of this page.
    pub logs: Vec<LogRecord>,
    /// The index of the first record of this page.
    pub offset: u64,
    /// How many records the run holds in all.
    pub total: u64,
    /// Where the next page starts; `null` when this page is the last.
    pub next_offset: Option<u64>,
}

/// Takes summaries from `rows` (already past the offset) until `limit` of
/// them or [`super::RUN_PAGE_BYTES`] (at least one), and says whether any follow.
/// Both stores page the same way through this.
pub(crate) fn page_of_summaries(rows: impl Iterator<Item = RunSummary>, limit: usize) -> RunList {
    let mut page = RunList::default();
    let mut bytes = 0;
    for run in rows {
        let size = run.approx_json_len();
        if page.runs.len() >= limit
            || (!page.runs.is_empty() && bytes + size > super::RUN_PAGE_BYTES)
        {
            page.more = true;
            break;
        }
        bytes += size;
        page.runs.push(run);
    }
    page
}

/// A [`LogPage`] of `logs` starting at `offset` out of `total` records.
pub(crate) fn log_page(logs: Vec<crate::runtime::LogRecord>, offset: usize, total: u64) -> LogPage {
    let offset = offset as u64;
    let end = offset + logs.len() as u64;
    LogPage {
        logs,
        offset,
        total,
        // An empty page ends the paging even if the count says more (a
        // row whose logs do not parse), so no client loops on it.
        next_offset: (end < total && end > offset).then_some(end),
    }
}

/// A time-ordered unique id (UUID v7), so run ids sort by creation.
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A fresh job incarnation id (UUID v7).
pub fn new_incarnation() -> String {
    uuid::Uuid::now_v7().to_string()
}
