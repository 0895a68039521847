//! The scheduler: jobs in, fires out, runs recorded.
//!
//! ```text
//! add_job ──▶ JobStore (committed) ──▶ state + DueQueue ──▶ timer task
//! timer: pop due ──▶ misfire / coalesce / max_instances ──▶ one grouped write ──▶ executor
//! executor: worker permit ──▶ "running" committed ──▶ runtime::run ──▶ outcome + retry committed ──▶ events
//! ```
//!
//! One timer task sleeps until the earliest due instant (at most
//! `max_sleep`, so clock jumps are noticed) and is woken early by any
//! change. All the fires due at one wake-up are recorded in one store
//! write, then handed to the executor, which bounds concurrency with a
//! semaphore of `workers` permits.

mod autopause;
mod backfill;
mod calendars;
mod chain;
mod change;
mod claim;
mod clock;
mod contact;
mod decide;
mod ends;
mod error;
mod execute;
mod fire;
mod incarnation;
mod info;
mod lane;
mod listeners;
mod manual;
mod pause;
mod plugin_events;
mod queue;
mod recover;
mod reload;
mod starter;
mod state;
mod stop;

pub use autopause::AUTO_PREFIX;
pub use backfill::{BackfillRange, BackfillStarted, MAX_BACKFILL_FIRES};
pub use calendars::CalendarInfo;
pub use change::{SpecCheck, UpsertError, Upserted};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::SchedulerError;
pub use info::{JobInfo, JobState, JobTally};
pub use lane::max_live_runs;
pub use manual::RunNow;
pub(crate) use state::{JobEntry, State};
pub use stop::{STOPPED_NOTE, Stopping, stop_word};

use crate::event::{Event, EventBus, JobEvent};
use crate::job::Job;
use crate::plugin::PluginRegistry;
use crate::runtime::{Limits, Runtime};
use crate::store::{BrokenJob, JobStore, RunRecord};
use chrono::{DateTime, Utc};
use queue::Due;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Runs executing at once.
    pub workers: usize,
    /// Limits for jobs that do not set their own.
    pub default_limits: Limits,
    /// Longest the timer sleeps without looking at the clock again.
    pub max_sleep: Duration,
    /// Prune a job's history every this many finished runs.
    pub prune_every: u32,
    /// This host's name, recorded on the runs it starts (`--host-name`;
    /// by default the machine's host name).
    pub host_name: String,
    /// Hold `run_on_start` until [`Scheduler::started_up`] is called (the
    /// binary applies its jobs file first, so a start runs the file's jobs
    /// as the file now says); false: they run as the scheduler starts.
    pub defer_start_runs: bool,
    /// Longest a finished run waits to record its end while other runs of
    /// a burst wait to start (scheduler/ends.rs; 500 ms by default). Never
    /// past its job's next fire; zero: ends are recorded at once.
    pub max_end_wait: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            default_limits: Limits::default(),
            max_sleep: Duration::from_secs(5),
            prune_every: 16,
            host_name: default_host_name(),
            defer_start_runs: false,
            max_end_wait: Duration::from_millis(500),
        }
    }
}

/// The machine's host name (from `/proc/sys/kernel/hostname`, then
/// `$HOSTNAME`), or `localhost`.
pub fn default_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Sixteen runs per core, at most 200. A run spends most of its life
/// waiting (for its start to be committed, or on I/O and sleeps inside
/// the guest) while a trivial guest computes for tens of microseconds, so
/// a bound near the core count leaves cores idle and fires queued
/// (measured: p50 lateness 81 ms with 4 workers for 1,000 simultaneous
/// fires). Guests yield at every epoch tick, so many share the cores
/// fairly; the bound stays below the pooling allocator's 256 slots.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(32, |n| (n.get() * 16).min(200))
}

pub(crate) struct Inner {
    state: Mutex<State>,
    wake: Notify,
    store: Arc<dyn JobStore>,
    runtime: Arc<Runtime>,
    plugins: Arc<PluginRegistry>,
    clock: Arc<dyn Clock>,
    events: EventBus,
    workers: Arc<Semaphore>,
    /// On a store of its own: runs recorded `running` on this host before
    /// a worker is free ([`Inner::ahead_limit`] permits; execute.rs), so
    /// a burst's starts are recorded in a few large writes ahead of the
    /// workers instead of one write per run on the path to each guest.
    recorded_ahead: Arc<Semaphore>,
    /// More places ahead, for runs of jobs whose last run was quick
    /// ([`QUICK_RUN`]): [`quick_ahead_limit`] permits. A burst of quick
    /// runs is then recorded running with its fires (no start write per
    /// run), while a run of a slow or new job that finds the base places
    /// taken is recorded pending: it is not shown `running` for the many
    /// rounds of the workers it may wait.
    recorded_ahead_quick: Arc<Semaphore>,
    /// Runs recorded pending, waiting for their start to be written
    /// (starter.rs).
    starts: starter::Starts,
    /// Holds finished runs' ends while runs wait to start (ends.rs).
    ends: ends::Gate,
    /// Where long and CPU-heavy runs go (lane.rs).
    lanes: lane::Lanes,
    config: SchedulerConfig,
    /// Cancelled at shutdown: no new fires, no new runs start.
    stop_firing: CancellationToken,
    /// Cancelled when the shutdown grace is over: running guests stop.
    stop_runs: CancellationToken,
    tasks: TaskTracker,
    /// The runtime the scheduler was started on. Runs are spawned there
    /// even when asked for from elsewhere (the API serves on a runtime of
    /// its own, so a flood of requests cannot delay fires).
    handle: tokio::runtime::Handle,
    running: AtomicBool,
    /// Runs a task of this host is handling now (waiting for a worker or
    /// running), for `/cluster`.
    runs_here: std::sync::atomic::AtomicUsize,
    /// `run_on_start` may run: set at the start, or by
    /// [`Scheduler::started_up`] when [`SchedulerConfig::defer_start_runs`].
    start_ready: AtomicBool,
    /// This host took over as leader before `start_ready`: its start runs
    /// are due when it is set.
    leader_starts_due: AtomicBool,
    /// Several hosts share the store: fires are recorded pending and every
    /// host claims them (claim.rs).
    shared: bool,
    /// Wakes the claim loop (a worker came free).
    claim_wake: Notify,
    /// What guests started now stop on: a child of `stop_runs`, replaced
    /// when the contact watchdog stops this host's runs (contact.rs).
    contact_stop: std::sync::Mutex<CancellationToken>,
    /// Why jobs were auto-paused (autopause.rs).
    pause_notes: autopause::PauseNotes,
    /// The named calendars, resolved into the triggers of the jobs that
    /// exclude them (calendars.rs); replaced whole on a change.
    calendars: std::sync::RwLock<Arc<crate::trigger::calendar::Calendars>>,
}

impl Inner {
    /// How many runs a host may claim ahead of a free worker (claim.rs),
    /// or on a store of its own record running ahead of one (execute.rs):
    /// four times its workers, so a burst of short runs needs a claim per
    /// few rounds of its workers rather than per run (1,000 aligned fires
    /// on one host: p50 lateness 142 ms with one times, 70 ms with four;
    /// `tests/benches/cluster.sh`), while no host holds back more than a
    /// few rounds of runs another host could take.
    fn ahead_limit(&self) -> usize {
        ahead_limit(self.config.workers)
    }

    /// A place ahead of the workers for a run, if one is free: a base
    /// place, else for a run of a `quick` job one of the quick places.
    fn place_ahead(&self, quick: bool) -> Option<OwnedSemaphorePermit> {
        let quick_place = || {
            quick
                .then(|| self.recorded_ahead_quick.clone().try_acquire_owned().ok())
                .flatten()
        };
        self.recorded_ahead
            .clone()
            .try_acquire_owned()
            .ok()
            .or_else(quick_place)
    }

    /// Whether any run is recorded running ahead of a worker and waiting
    /// for one, on either kind of place.
    fn runs_ahead(&self) -> bool {
        self.recorded_ahead.available_permits() < self.ahead_limit()
            || self.recorded_ahead_quick.available_permits()
                < quick_ahead_limit(self.config.workers)
    }
}

/// [`Inner::ahead_limit`] for `workers`.
fn ahead_limit(workers: usize) -> usize {
    workers.max(1) * 4
}

/// A run whose guest took less than this is quick: the next run of its
/// job may take one of [`Inner::recorded_ahead_quick`]'s places.
pub(crate) const QUICK_RUN: chrono::TimeDelta = chrono::TimeDelta::milliseconds(10);

/// [`Inner::recorded_ahead_quick`]'s places for `workers`: with the base
/// places, 32 rounds of the workers. Quick runs wait at most about 32
/// rounds of [`QUICK_RUN`] (a third of a second) recorded running before
/// their guest begins. Measured (`tests/benches/burst.rs`, SQLite, 32
/// workers, three runs against two of the base places alone): p50
/// lateness of an aligned burst of 1,000 jobs 17-20 ms against 23-25, of
/// 10,000 142-151 against 190-209 (docs/BENCHMARKS.md, "Quick jobs
/// further ahead").
fn quick_ahead_limit(workers: usize) -> usize {
    workers.max(1) * 28
}

/// A running scheduler. Cheap to clone; every clone drives the same one.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_running(&self) -> Result<(), SchedulerError> {
        if self.running.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(SchedulerError::NotRunning)
        }
    }

    fn job_event(&self, job_id: &str) -> JobEvent {
        JobEvent {
            job_id: job_id.to_owned(),
            at: self.clock.now(),
            reason: None,
            run_id: None,
        }
    }

    /// A job's info, read under the scheduler's lock. Its `schedule` (the
    /// trigger in words) is left empty: [`JobInfo::described`] fills it in
    /// once the lock is released, so neither listings under the lock nor
    /// every job's memory pay for it (a million jobs would keep a million
    /// copies of a few hundred distinct phrases).
    fn info(&self, entry: &JobEntry) -> JobInfo {
        let plugin_loaded = self.plugins.get(&entry.job.spec.plugin).is_some();
        let state = job_state(entry, plugin_loaded);
        JobInfo {
            schedule: String::new(),
            spec: entry.job.spec.clone(),
            created_at: entry.job.created_at,
            next_run_time: entry.next_run,
            paused: entry.paused,
            auto_paused: entry.paused && self.pause_notes.is_auto(entry),
            paused_reason: self.pause_notes.reason(entry),
            in_flight: entry
                .in_flight
                .saturating_add(u32::try_from(entry.queued.len()).unwrap_or(u32::MAX)),
            plugin_loaded,
            state,
            warnings: entry.job.warnings.to_vec(),
            incarnation: entry.incarnation.to_string(),
        }
    }

    /// Puts a job in the state and queue, replacing any entry of that id.
    /// An entry of the same incarnation hands over its in-flight count and
    /// queued catch-up runs (those runs are still going), and, with
    /// `keep_schedule`, its current next fire (read here, under the lock,
    /// so a fire the timer took meanwhile is not taken twice). Returns the
    /// next fire installed.
    fn install(
        &self,
        job: Job,
        next_run: Option<DateTime<Utc>>,
        paused: bool,
        incarnation: &str,
        keep_schedule: bool,
    ) -> Option<DateTime<Utc>> {
        let installed = {
            let mut state = self.lock();
            Self::install_locked(
                &mut state,
                job,
                next_run,
                paused,
                incarnation,
                keep_schedule,
            )
        };
        self.wake.notify_one();
        installed
    }

    /// [`Self::install`] under a lock the caller holds (it does not wake
    /// the timer).
    fn install_locked(
        state: &mut State,
        job: Job,
        mut next_run: Option<DateTime<Utc>>,
        paused: bool,
        incarnation: &str,
        keep_schedule: bool,
    ) -> Option<DateTime<Utc>> {
        let id: Arc<str> = match state.jobs.get_key_value(job.id.as_str()) {
            Some((k, _)) => k.clone(),
            None => job.id.shared(),
        };
        let mut generation = 0;
        let mut in_flight = 0;
        let mut backfilling = 0;
        let mut queued = state::Queued::default();
        let mut quick = false;
        let mut slow_start = false;
        let incarnation = incarnation::Incarnation::new(incarnation);
        if let Some(old) = state.jobs.get_mut(&id) {
            generation = old.generation + 1;
            if old.incarnation == incarnation {
                in_flight = old.in_flight;
                backfilling = old.backfilling;
                queued = std::mem::take(&mut old.queued);
                quick = old.quick;
                slow_start = old.slow_start;
                if keep_schedule && !old.paused && !paused {
                    next_run = old.next_run;
                }
            }
        }
        if let (Some(at), false) = (next_run, paused) {
            state.queue.push(
                at,
                Due::Fire {
                    job_id: id.clone(),
                    generation,
                },
            );
        }
        state.jobs.insert(
            id,
            Box::new(JobEntry {
                job: Arc::new(job),
                incarnation,
                next_run,
                paused,
                held: false,
                generation,
                in_flight,
                backfilling,
                queued,
                finished_since_prune: 0,
                quick,
                slow_start,
            }),
        );
        next_run
    }
}

/// Where a job stands: paused, waiting for its plugin, out of fires, or
/// scheduled (the first that holds).
fn job_state(entry: &JobEntry, plugin_loaded: bool) -> JobState {
    if entry.paused {
        JobState::Paused
    } else if !plugin_loaded {
        JobState::WaitingForPlugin
    } else if entry.next_run.is_none() {
        JobState::Finished
    } else {
        JobState::Scheduled
    }
}

/// What a scheduler needs to start.
#[derive(Clone)]
pub struct SchedulerParts {
    /// Where jobs and runs are kept.
    pub store: Arc<dyn JobStore>,
    /// The sandbox runs execute in.
    pub runtime: Arc<Runtime>,
    /// The loaded plugins.
    pub plugins: Arc<PluginRegistry>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub config: SchedulerConfig,
}

impl std::fmt::Debug for SchedulerParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerParts").finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Loads the store, recovers what a previous process left (runs that
    /// were in flight, fires missed while it was down), and starts firing.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn start(parts: SchedulerParts) -> Result<Self, SchedulerError> {
        Ok(Self::start_with_events(parts).await?.0)
    }

    /// As [`Self::start`], also returning a subscription to the event bus
    /// made before recovery: it sees every event, those of the start-up
    /// (runs found cut off, fires missed while the host was down) too,
    /// which a [`Self::subscribe`] after the start may have missed.
    /// Metrics count from it.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn start_with_events(
        parts: SchedulerParts,
    ) -> Result<(Self, crate::event::EventReceiver), SchedulerError> {
        let shared = parts.store.shared();
        let stop_runs = CancellationToken::new();
        let defer_start_runs = parts.config.defer_start_runs;
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            store: parts.store,
            runtime: parts.runtime,
            plugins: parts.plugins,
            clock: parts.clock,
            events: EventBus::default(),
            workers: Arc::new(Semaphore::new(parts.config.workers.max(1))),
            recorded_ahead: Arc::new(Semaphore::new(ahead_limit(parts.config.workers))),
            recorded_ahead_quick: Arc::new(Semaphore::new(quick_ahead_limit(parts.config.workers))),
            starts: starter::Starts::default(),
            ends: ends::Gate::default(),
            lanes: lane::Lanes::new(parts.config.workers),
            config: parts.config,
            stop_firing: CancellationToken::new(),
            contact_stop: std::sync::Mutex::new(stop_runs.child_token()),
            stop_runs,
            tasks: TaskTracker::new(),
            handle: tokio::runtime::Handle::current(),
            running: AtomicBool::new(true),
            runs_here: std::sync::atomic::AtomicUsize::new(0),
            start_ready: AtomicBool::new(!defer_start_runs),
            leader_starts_due: AtomicBool::new(false),
            shared,
            claim_wake: Notify::new(),
            pause_notes: autopause::PauseNotes::default(),
            calendars: std::sync::RwLock::default(),
        });
        // Subscribed before recovery, so failures it records reach listeners
        // (and the caller's subscription, its counts).
        let bus = inner.events.subscribe();
        let early = inner.events.subscribe();
        tokio::spawn(listeners::dispatch(inner.clone(), bus));
        recover::recover(&inner).await?;
        if inner.start_ready.load(Ordering::Acquire)
            && inner.store.leadership().get() == crate::store::Leadership::Sole
        {
            // A host on a store of its own fires from now: its
            // `run_on_start` jobs run (a leader's run when it takes over).
            manual::run_on_start(&inner, false);
        }
        let timer = inner.clone();
        inner
            .tasks
            .spawn(async move { fire::timer_loop(timer).await });
        let starts = inner.clone();
        inner
            .tasks
            .spawn(async move { starter::start_loop(starts).await });
        if inner.shared {
            let claims = inner.clone();
            inner
                .tasks
                .spawn(async move { claim::claim_loop(claims).await });
            let sweep = inner.clone();
            inner
                .tasks
                .spawn(async move { claim::sweep_loop(sweep).await });
            // Not a tracked task: it watches until the runs stop, after
            // the shutdown waits for the tracked ones.
            tokio::spawn(contact::watchdog(inner.clone()));
            if let Some(requests) = inner.store.cancel_requests() {
                tokio::spawn(claim::cancel_loop(inner.clone(), requests));
            }
        }
        if inner.store.jobs_revision().await?.is_some() {
            // Other hosts share the store: take their job changes.
            let sync = inner.clone();
            inner
                .tasks
                .spawn(async move { reload::sync_loop(sync).await });
        }
        Ok((Self { inner }, early))
    }

    /// Subscribes to the event bus.
    pub fn subscribe(&self) -> crate::event::EventReceiver {
        self.inner.events.subscribe()
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.inner.plugins
    }

    /// The runtime plugins must be loaded with (a component is tied to the
    /// engine that compiled it).
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.inner.runtime
    }

    /// The job store, for reads the scheduler has no part in (the API's
    /// run history and logs).
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.inner.store
    }

    /// Removes a job, its history and its kv data.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`] or a store error.
    pub async fn remove_job(&self, id: &str) -> Result<(), SchedulerError> {
        let inner = &self.inner;
        inner.check_running()?;
        inner.store.delete_job(id).await?;
        inner.lock().jobs.remove(id);
        inner.events.publish(Event::JobRemoved(inner.job_event(id)));
        Ok(())
    }

    /// Whether this host has the job of `spec`'s id with exactly `spec`
    /// (applying it again would change nothing).
    pub fn has_spec(&self, spec: &crate::job::JobSpec) -> bool {
        self.inner
            .lock()
            .jobs
            .get(spec.id.as_str())
            .is_some_and(|e| e.job.spec == *spec)
    }

    /// The spec of job `id` as written, if there is one: only the spec,
    /// without the rest [`Self::job`] copies and describes (for the audit
    /// log's before-and-after of a change, asked once per job applied).
    pub fn spec_of(&self, id: &str) -> Option<crate::job::JobSpec> {
        self.inner.lock().jobs.get(id).map(|e| e.job.spec.clone())
    }

    /// One job.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`].
    pub fn job(&self, id: &str) -> Result<JobInfo, SchedulerError> {
        let info = self.inner.lock().jobs.get(id).map(|e| self.inner.info(e));
        info.map(JobInfo::described)
            .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))
    }

    /// One job, with its validated trigger (for previews of its coming
    /// fires: [`crate::trigger::preview::job_fires`]), read together.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`].
    pub fn job_and_trigger(
        &self,
        id: &str,
    ) -> Result<(JobInfo, crate::trigger::Trigger), SchedulerError> {
        let found = {
            let state = self.inner.lock();
            state
                .jobs
                .get(id)
                .map(|e| (self.inner.info(e), e.job.trigger.clone()))
        };
        found
            .map(|(info, trigger)| (info.described(), trigger))
            .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))
    }

    /// The scheduler's clock now (what its fires are measured against).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// How many jobs there are (without copying them, as [`Self::jobs`]
    /// does).
    pub fn job_count(&self) -> usize {
        self.inner.lock().jobs.len()
    }

    /// Whether every one of `ids` is a job here.
    pub fn jobs_exist(&self, ids: &[String]) -> bool {
        let state = self.inner.lock();
        ids.iter().all(|id| state.jobs.contains_key(id.as_str()))
    }

    /// The jobs counted by state, without copying them (for health and
    /// metrics; [`Self::jobs`] copies every spec).
    pub fn job_tally(&self) -> JobTally {
        let state = self.inner.lock();
        let mut loaded: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
        let mut tally = JobTally {
            jobs: state.jobs.len(),
            ..JobTally::default()
        };
        for entry in state.jobs.values() {
            let plugin = entry.job.spec.plugin.as_str();
            let plugin_loaded = *loaded
                .entry(plugin)
                .or_insert_with(|| self.inner.plugins.get(plugin).is_some());
            match job_state(entry, plugin_loaded) {
                JobState::Paused => tally.paused += 1,
                JobState::WaitingForPlugin => tally.waiting_for_plugin += 1,
                JobState::Finished => tally.finished += 1,
                JobState::Scheduled => tally.scheduled += 1,
            }
            tally.in_flight += u64::from(entry.in_flight) + entry.queued.len() as u64;
        }
        tally
    }

    /// Every job, by id.
    pub fn jobs(&self) -> Vec<JobInfo> {
        let jobs: Vec<JobInfo> = {
            let state = self.inner.lock();
            state.jobs.values().map(|e| self.inner.info(e)).collect()
        };
        let mut jobs: Vec<JobInfo> = jobs.into_iter().map(JobInfo::described).collect();
        jobs.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        jobs
    }

    /// Jobs whose stored rows could not be read; kept, never deleted.
    pub fn broken_jobs(&self) -> Vec<BrokenJob> {
        self.inner.lock().broken.clone()
    }

    /// The newest `limit` runs of a job, newest first.
    ///
    /// # Errors
    /// A store error.
    pub async fn runs(&self, job_id: &str, limit: usize) -> Result<Vec<RunRecord>, SchedulerError> {
        self.runs_page(job_id, limit, 0).await
    }

    /// A page of a job's runs, newest first.
    ///
    /// # Errors
    /// A store error.
    pub async fn runs_page(
        &self,
        job_id: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<RunRecord>, SchedulerError> {
        Ok(self.inner.store.runs(job_id, limit, offset).await?)
    }

    /// One run.
    ///
    /// # Errors
    /// A store error.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, SchedulerError> {
        Ok(self.inner.store.run(run_id).await?)
    }

    /// Runs moved to the slow lane since start (long or CPU-heavy; see
    /// `lane.rs`), for metrics.
    pub fn runs_demoted(&self) -> u64 {
        self.inner.lanes.demoted()
    }

    /// Runs started in the slow lane since start, because their job's
    /// last run was a runaway (scheduler/lane.rs).
    pub fn runs_started_slow(&self) -> u64 {
        self.inner.lanes.started_slow()
    }

    /// Runs this host is handling now (waiting for a worker, claimed
    /// ahead of one, or running).
    pub fn runs_here(&self) -> usize {
        self.inner
            .runs_here
            .load(std::sync::atomic::Ordering::Relaxed)
            + self.inner.lock().ahead.len()
    }

    /// Entries in the due-queue (stale ones included), for metrics.
    pub fn queue_len(&self) -> usize {
        self.inner.lock().queue.len()
    }

    /// Stops firing and claiming (the first step of [`Self::shutdown`],
    /// which does it too): no fire is recorded and no run starts from now
    /// on; runs going on go on and their ends are recorded. On a shared
    /// store the app then gives up the leader lease, before waiting for
    /// those runs.
    pub fn stop_firing(&self) {
        self.inner.stop_firing.cancel();
    }

    /// Stops: no new fires and no new runs; running guests get `grace` to
    /// finish, then are stopped and recorded as interrupted. Runs still
    /// pending stay pending in the store and start after the next start.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        if !inner.running.swap(false, Ordering::AcqRel) {
            return;
        }
        inner.stop_firing.cancel();
        inner.tasks.close();
        if tokio::time::timeout(grace, inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace = ?grace,
                "runs still going after the shutdown grace; stopping them"
            );
            inner.stop_runs.cancel();
            inner.tasks.wait().await;
        }
        // Also ends the listener dispatcher.
        inner.stop_runs.cancel();
    }
}
