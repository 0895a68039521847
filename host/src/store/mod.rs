//! Persistence: jobs, run history and the guests' kv data.
//!
//! [`JobStore`] is the trait the scheduler talks to; [`MemoryJobStore`],
//! [`sqlite::SqliteJobStore`] (one host, the default) and
//! [`postgres::PostgresJobStore`] implement it with the same semantics
//! (`tests/tests/store_backends.rs`). Every write the scheduler acts on is committed
//! before the call returns (a run is started only once its row is durable),
//! and backends may group concurrent writes into one transaction: that is
//! how SQLite reaches thousands of recorded runs per second without giving
//! up that promise. Each backend reports whether it can write now
//! ([`HealthCell`]); the scheduler holds its fires while it cannot.

pub mod audit;
mod health;
pub mod leader;
pub(crate) mod memory;
pub mod postgres;
mod prepared;
mod records;
pub(crate) use records::log_page;
pub mod sqlite;
mod streak;

pub use crate::runtime::kv::{KvError, KvStore};
pub use audit::{AuditEntry, AuditQuery, AuditRecord};
pub use health::{HealthCell, StoreHealth};
pub use leader::{HostReport, HostRow, LeaderCell, LeaderInfo, Leadership, PluginVersion};
pub use memory::{MemoryJobStore, MemoryKv};
pub use records::{
    JobRecord, LATENESS_SAMPLES, LogPage, RunCause, RunCounts, RunFilter, RunList, RunOrigin,
    RunRecord, RunStatus, RunSummary, RunsFrom, new_incarnation, new_run_id,
};
pub use streak::{FailureStreak, STREAK_SCAN_LIMIT, count_streak};

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Largest page of run summaries, in bytes of JSON (about): a list of runs
/// is cut here whatever `limit` asked, so one answer stays a few MiB.
pub const RUN_PAGE_BYTES: usize = 4 << 20;

/// Largest page of log records, in bytes of JSON.
pub const LOG_PAGE_BYTES: usize = 1 << 20;

/// Why a job store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A job with this id exists (and replacing was not asked for).
    #[error("a job with id '{0}' already exists; use replace_existing to replace it")]
    Duplicate(String),
    /// No job with this id.
    #[error("job '{0}' not found")]
    NotFound(String),
    /// The database failed.
    #[error("job store error: {0}")]
    Backend(String),
    /// The database cannot be written now because of its storage (disk
    /// full, read-only file system, I/O error); nothing was written. The
    /// store's [`HealthCell`] says so too, and says when it clears.
    #[error("the job store cannot be written: {0}")]
    Unwritable(String),
    /// A fire was refused because this host does not hold the leader
    /// lease (any more): another host fires now. Nothing of the batch
    /// was written.
    #[error("this host is not the leader: {0}")]
    Fenced(String),
}

/// A state change the scheduler records. A batch is committed atomically
/// (but for stale fires, see [`Write::Fire`]).
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert or replace a run row, only while the run's job incarnation
    /// is its job's live one: a run of a deleted job that finishes later
    /// is dropped (and logged), never recorded under a new job that took
    /// the id.
    Run(RunRecord),
    /// A run's end (`run`, in its final state), with the retry its job's
    /// policy asks for. The end is recorded only while the stored row is
    /// still `running` on the run's host (`run.host`; a row not there yet
    /// is inserted, as [`Write::Run`] does); otherwise nothing of it is
    /// written, the retry included, and the run id is reported in
    /// [`Written::refused`]: someone recorded its end first, the leader's
    /// sweep of a host that stopped heartbeating (which also scheduled the
    /// retry) or a restarted host's recovery. A retry whose run id or fire
    /// key is already taken is not inserted. So a host cut off from a
    /// shared database cannot add a second end, or a second retry, to a
    /// run another host already retried (issue 11).
    End {
        /// The run as it ended.
        run: RunRecord,
        /// Its next attempt, pending, if any.
        retry: Option<Box<RunRecord>>,
    },
    /// A fire of a job's schedule: moves the job's next fire time from
    /// `from` to `next` (a compare-and-set) and inserts the fire's rows, in
    /// one step. If the job's stored next fire time is not `from` (or the
    /// job's incarnation is gone), nothing of it is written and the batch
    /// reports the job in [`Written::stale`]: someone else (another host,
    /// a change made meanwhile) moved the schedule, and the store's value
    /// is the truth. A row whose fire key (job, `scheduled_at`, attempt)
    /// is already taken by another `fire` row is not inserted and is
    /// reported in [`Written::refused`]: that fire was recorded before,
    /// and must not run again. This is how one fire makes at most one run
    /// whatever races or crashes happen (issue 11).
    Fire {
        /// The job.
        job_id: String,
        /// The job's incarnation the fire belongs to.
        incarnation: String,
        /// The next fire time the job had, which this fire took.
        from: DateTime<Utc>,
        /// Its next fire time after this fire, `None` when its schedule is
        /// over.
        next: Option<DateTime<Utc>>,
        /// New rows, all of origin `fire`: runs to start (pending or
        /// already `running`) and records of fires that did not run.
        runs: Vec<RunRecord>,
    },
    /// Set a job's next fire time.
    NextRun {
        /// The job.
        job_id: String,
        /// Its next fire time, `None` when its schedule is over.
        next: Option<DateTime<Utc>>,
    },
    /// Set a job's paused flag.
    Paused {
        /// The job.
        job_id: String,
        /// Paused or not.
        paused: bool,
    },
    /// Set (or clear) why a job is paused, and when its failures in a row
    /// start counting again (issue 13: `pause_after_failures`). Written in
    /// the batch of [`Write::Paused`]: a manual pause clears the reason,
    /// an auto-pause sets it, a resume clears it and resets the count.
    PauseNote {
        /// The job.
        job_id: String,
        /// Why the host paused it; `None` clears the reason.
        reason: Option<String>,
        /// Count failures only from runs ended after this; `None`
        /// leaves the stored value as it is.
        failures_from: Option<DateTime<Utc>>,
    },
    /// Pause a job the host pauses by itself (issue 13:
    /// `pause_after_failures`): paused, no next fire, `reason` as its pause
    /// note, in one compare-and-set that only takes a job of `incarnation`
    /// that is not paused. When it finds the job paused already (another
    /// host counted the same failures, or a person paused it) or gone,
    /// nothing is written and `run_id` is reported in
    /// [`Written::refused`].
    AutoPause {
        /// The job.
        job_id: String,
        /// The incarnation the failed runs belong to.
        incarnation: String,
        /// Why, shown as `paused_reason`.
        reason: String,
        /// The failed run that made the pause.
        run_id: String,
    },
    /// Drop all but the `keep` finished runs of a job recorded last (by
    /// run id, so a backfill of past fires or a replay is not the first to
    /// go, as it was when the history was cut by `scheduled_at`), and any
    /// that ended before `older_than` (scheduled, for runs that never
    /// started).
    Prune {
        /// The job.
        job_id: String,
        /// How many to keep.
        keep: u32,
        /// Drop runs that ended before this (or, never started, were
        /// scheduled before it), whatever their number.
        older_than: Option<DateTime<Utc>>,
    },
}

/// What a batch's [`Write::Fire`]s did, when not everything was written.
/// Empty when every fire was recorded as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Jobs of fires whose compare-and-set failed, in batch order: none of
    /// those fires' rows were written.
    pub stale: Vec<String>,
    /// Run ids of fire rows that were not inserted (their fire was stale,
    /// or their fire key was already recorded), of [`Write::End`]s not
    /// recorded because the run's end already was, and of the run named by
    /// a [`Write::AutoPause`] that found its job paused already.
    pub refused: std::collections::HashSet<String>,
}

impl Written {
    /// Whether every fire was recorded as asked.
    pub fn all(&self) -> bool {
        self.stale.is_empty() && self.refused.is_empty()
    }

    /// Adds another batch's report to this one.
    pub fn merge(&mut self, other: Written) {
        self.stale.extend(other.stale);
        self.refused.extend(other.refused);
    }
}

/// A job row that could not be read back (for example a spec written by a
/// newer version). It is kept in the store and reported, never deleted.
#[derive(Debug, Clone)]
pub struct BrokenJob {
    /// The job's id.
    pub id: String,
    /// What is wrong.
    pub error: String,
}

/// Everything the scheduler needs at start.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Jobs that read back.
    pub jobs: Vec<JobRecord>,
    /// Jobs that did not.
    pub broken: Vec<BrokenJob>,
    /// Runs that were pending or running when the host stopped.
    pub unfinished: Vec<RunRecord>,
}

/// Where jobs and runs live.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Reads every job and every unfinished run.
    async fn load(&self) -> Result<Snapshot, StoreError>;
    /// Adds a job; with `replace`, an existing one is replaced.
    ///
    /// The pause note ([`JobRecord::paused_reason`],
    /// [`JobRecord::failures_from`]): a new row has none, whatever `job`
    /// says. A replaced row takes `job`'s reason (`None` clears it) and
    /// keeps its stored `failures_from` unless `job` gives one (a resume
    /// through a changed spec resets the job's failures in a row).
    async fn insert_job(&self, job: JobRecord, replace: bool) -> Result<(), StoreError>;
    /// Replaces an existing job's spec and state.
    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError>;
    /// Removes a job with its runs and kv data.
    async fn delete_job(&self, id: &str) -> Result<(), StoreError>;
    /// The named calendars (issue 13): `(name, spec as JSON)`, by name.
    /// A store that keeps none has none.
    async fn calendars(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(Vec::new())
    }
    /// Stores calendar `name` with `spec` (JSON), replacing it, or removes
    /// it (`None`; removing a missing one is no error).
    ///
    /// # Errors
    /// By default [`StoreError::Backend`]: the store keeps no calendars.
    async fn put_calendar(&self, name: &str, spec: Option<&str>) -> Result<(), StoreError> {
        let _ = (name, spec);
        Err(StoreError::Backend("this store keeps no calendars".into()))
    }
    /// Appends changes to the audit log (issue 15), in order, in one
    /// transaction.
    ///
    /// # Errors
    /// As the database says; by default [`StoreError::Backend`]: the store
    /// keeps no audit log.
    async fn record_audit(&self, records: Vec<AuditRecord>) -> Result<(), StoreError> {
        let _ = records;
        Err(StoreError::Backend("this store keeps no audit log".into()))
    }
    /// Audit rows, newest first (by id), as `query` says.
    ///
    /// # Errors
    /// As the database says; by default none are kept.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let _ = query;
        Ok(Vec::new())
    }
    /// Removes audit rows made before `cutoff` (the retention,
    /// `--audit-keep-for`).
    ///
    /// # Errors
    /// As the database says.
    async fn prune_audit(&self, cutoff: DateTime<Utc>) -> Result<(), StoreError> {
        let _ = cutoff;
        Ok(())
    }
    /// Commits a batch of writes atomically, except that a stale
    /// [`Write::Fire`] (or a fire row already recorded) is left out and
    /// reported, the rest of the batch being written.
    async fn write(&self, batch: Vec<Write>) -> Result<Written, StoreError>;
    /// One job as stored now (to re-read a job whose fire was stale).
    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// A job's runs (of its live incarnation), newest first: `limit` of
    /// them after skipping `offset`.
    async fn runs(
        &self,
        job_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<RunRecord>, StoreError>;
    /// One run, with all its logs (for the host's own use; the API reads
    /// [`JobStore::run_summary`] and [`JobStore::run_logs`], which stay
    /// bounded whatever a run captured).
    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// A job's runs without their logs, newest first (by `scheduled_at`,
    /// then `run_id`): at most `limit` from `from` (an offset, or after a
    /// stored run of this job), and fewer when the page would pass
    /// [`RUN_PAGE_BYTES`] (always at least one run when any is left).
    /// Backends must not read the logs to answer this.
    async fn run_summaries(
        &self,
        job_id: &str,
        limit: usize,
        from: RunsFrom,
    ) -> Result<RunList, StoreError>;
    /// Runs of every job (deleted jobs' runs included), newest first by
    /// when they were recorded (`run_id`, a UUID v7), that pass `filter`:
    /// at most `limit` from `from` (an offset, or the runs recorded before
    /// a run id), cut like [`JobStore::run_summaries`] at
    /// [`RUN_PAGE_BYTES`].
    async fn all_runs(
        &self,
        filter: RunFilter,
        limit: usize,
        from: RunsFrom,
    ) -> Result<RunList, StoreError>;
    /// How many runs scheduled at or after `from` are in each status, and
    /// how the finished ones ended (one aggregate query; the dashboard's
    /// overview).
    async fn run_counts(&self, from: DateTime<Utc>) -> Result<RunCounts, StoreError>;
    /// One run without its logs.
    async fn run_summary(&self, run_id: &str) -> Result<Option<RunSummary>, StoreError>;
    /// Up to `limit` of a run's log records from `offset`, fewer when the
    /// page would pass [`LOG_PAGE_BYTES`] (always at least one record when
    /// any is left); `None` when there is no such run.
    async fn run_logs(
        &self,
        run_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<LogPage>, StoreError>;
    /// Called once the host has stopped writing (clean shutdown): folds
    /// everything into the main file, so a stopped host leaves no large
    /// side files behind (SQLite's WAL). The store still works afterwards.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// How many failed runs in a row the job `job_id` has ended with, up
    /// to `at_most`, read from its newest runs (whichever host ran them)
    /// as [`count_streak`] counts, from the job's
    /// [`JobRecord::failures_from`] on. Backends share this default; it
    /// reads pages of [`JobStore::run_summaries`] and at most
    /// [`STREAK_SCAN_LIMIT`] runs.
    ///
    /// `before_fire` (a scheduled time and origin) leaves that fire's runs
    /// out: the fire just ending, so the count is of the failures before
    /// it, whether or not its own end is recorded yet.
    async fn failures_in_a_row(
        &self,
        job_id: &str,
        at_most: u32,
        before_fire: Option<(DateTime<Utc>, RunOrigin)>,
    ) -> Result<FailureStreak, StoreError> {
        streak::failures_in_a_row(self, job_id, at_most, before_fire).await
    }
    /// The guests' kv data, in the same database.
    fn kv(&self) -> Arc<dyn KvStore>;
    /// Whether writes succeed now, kept up to date by the backend (see
    /// [`StoreHealth`]). Backends whose writes cannot fail for storage
    /// reasons (memory) keep the default: always writable.
    fn health(&self) -> HealthCell {
        HealthCell::default()
    }
    /// Whether this host may fire (see [`leader`]). Stores one host owns
    /// keep the default: it always may.
    fn leadership(&self) -> LeaderCell {
        LeaderCell::default()
    }
    /// A number that changes whenever any job is added, changed, paused,
    /// resumed or deleted (not when it fires), so hosts sharing the store
    /// see each other's changes by reading it; `None` for stores one host
    /// owns, where nobody else changes jobs.
    async fn jobs_revision(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
    /// Whether several hosts share this store (PostgreSQL with a lease):
    /// then the leader records fires as pending rows and every host claims
    /// them ([`JobStore::claim`]); otherwise the scheduler starts its runs
    /// itself.
    fn shared(&self) -> bool {
        false
    }
    /// Claims up to `limit` due pending runs of jobs whose plugin is in
    /// `plugins`, for the host named `host`, keeping each job's
    /// `max_instances` across hosts; they come back marked running on it.
    /// First attempts of fires that find their job's `max_instances` runs
    /// going come back too, recorded `skipped` (as one host records them);
    /// retries, manual and catch-up runs wait for a free instance. Empty
    /// on stores one host owns.
    async fn claim(
        &self,
        host: &str,
        plugins: &[String],
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let _ = (host, plugins, limit);
        Ok(Vec::new())
    }
    /// Ids of the runs recorded running on the host named `host` (to find
    /// runs a claim recorded whose answer the host never got). Empty on
    /// stores one host owns.
    async fn running_on(&self, host: &str) -> Result<Vec<String>, StoreError> {
        let _ = host;
        Ok(Vec::new())
    }
    /// Puts back to pending, for any host to claim, those of `run_ids` that
    /// are still recorded running on the host named `host` (runs claimed
    /// but never started: claimed ahead at a shutdown, or orphaned by a
    /// claim whose answer was lost); returns how many. A no-op on stores
    /// one host owns.
    async fn give_back(&self, host: &str, run_ids: &[String]) -> Result<u64, StoreError> {
        let _ = (host, run_ids);
        Ok(0)
    }
    /// Records as interrupted the running runs of hosts that stopped
    /// heartbeating (for the lease's TTL), returning them so their retries
    /// are scheduled. Empty on stores one host owns.
    async fn sweep_stopped_hosts(&self) -> Result<Vec<RunRecord>, StoreError> {
        Ok(Vec::new())
    }
    /// How many runs of the job `job_id` are in flight on any host, as
    /// one host counts its own against `max_instances`: waiting (pending:
    /// to be claimed, or for a retry's delay) or running. `None` on stores
    /// one host owns, whose scheduler counts them itself.
    async fn runs_in_flight(&self, job_id: &str) -> Result<Option<u64>, StoreError> {
        let _ = job_id;
        Ok(None)
    }
    /// The stored next fire time and incarnation of each of `ids` that
    /// exists (the leader moves next fire times in the store as it fires;
    /// a follower's own copy is the one it loaded). Empty on stores one
    /// host owns, where the scheduler's copy is the newest.
    async fn next_run_times(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String, Option<DateTime<Utc>>)>, StoreError> {
        let _ = ids;
        Ok(Vec::new())
    }
    /// The hosts sharing this store, by their heartbeats (the lease's
    /// TTL decides `alive`); empty on stores one host owns.
    async fn hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        Ok(Vec::new())
    }
    /// Passes one of this host's events (its JSON, at most 7,900 bytes)
    /// to the other hosts sharing the store, best effort (dropped when the
    /// relay is behind). A no-op on stores one host owns.
    fn share_event(&self, json: String) {
        let _ = json;
    }
    /// Every host's shared events (as [`JobStore::share_event`] sent them;
    /// this host's own come back too) from now on; `None` on stores one
    /// host owns.
    fn shared_events(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }
    /// Requests to stop a run for a fire under `overlap = "cancel-other"`,
    /// sent by any host's claim (`RUN_ID FIRE_MS`: the run, and the fire's
    /// time in Unix milliseconds) or to stop it by request (`RUN_ID stop`,
    /// [`JobStore::request_stop`]), from now on; `None` on stores one host
    /// owns (the fire's own host stops the run there).
    fn cancel_requests(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }
    /// Asks every host sharing the store to stop the run `run_id` if it
    /// goes there (`POST /runs/{run_id}/stop` for a run on another host);
    /// it arrives through [`JobStore::cancel_requests`] as `RUN_ID stop`.
    /// A store of one host has no one to ask: nothing is sent.
    async fn request_stop(&self, run_id: &str) -> Result<(), StoreError> {
        let _ = run_id;
        Ok(())
    }
    /// Keeps a pushed plugin (`PUT /plugins/{name}`) for every host to
    /// load: stores of one host answer `Ok(false)` (the caller writes it
    /// into the plugins folder instead).
    async fn put_plugin_file(
        &self,
        name: &str,
        hash: &str,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let _ = (name, hash, bytes);
        Ok(false)
    }
    /// Marks a pushed plugin deleted, so every host removes it; `Ok(None)`
    /// on stores of one host, `Ok(Some(false))` when no such plugin was
    /// pushed.
    async fn delete_plugin_file(&self, name: &str) -> Result<Option<bool>, StoreError> {
        let _ = name;
        Ok(None)
    }
    /// The pushed plugins: name, hash and whether deleted (empty on stores
    /// of one host).
    async fn plugin_files(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        Ok(Vec::new())
    }
    /// A pushed plugin's bytes, when it has that hash still.
    async fn plugin_file(&self, name: &str, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = (name, hash);
        Ok(None)
    }
    /// Woken when new run rows may be ready to claim (PostgreSQL's
    /// LISTEN/NOTIFY); `None` on stores one host owns.
    fn run_notices(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
    /// Gives the leader lease up if held, so another host leads at once,
    /// and never takes it again, while this host goes on heartbeating (a
    /// clean shutdown: called once this host has stopped firing, before
    /// it waits for its runs, which the other hosts must not take for a
    /// stopped host's). Returns once the lease is released and no fire of
    /// this host can be recorded any more. A no-op without a lease.
    async fn resign_lease(&self) {}
    /// Stops taking part in the leader lease (heartbeats included) and
    /// gives it up if still held (a clean shutdown; called once this
    /// host's runs have ended). A no-op without a lease.
    async fn release_lease(&self) {}
}
