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

mod change;
mod clock;
mod execute;
mod fire;
mod lane;
mod listeners;
mod queue;
mod recover;

pub use clock::{Clock, ManualClock, SystemClock};
pub use lane::max_live_runs;

use crate::event::{Event, EventBus, JobEvent, PluginEvent};
use crate::job::{Job, JobError, JobSpec};
use crate::plugin::PluginRegistry;
use crate::runtime::{Limits, Runtime};
use crate::store::{BrokenJob, JobStore, RunRecord, StoreError, Write};
use chrono::{DateTime, Utc};
use queue::{Due, DueQueue};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, broadcast};
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
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            default_limits: Limits::default(),
            max_sleep: Duration::from_secs(5),
            prune_every: 16,
        }
    }
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
    /// A run cannot be replayed; says why.
    #[error("{0}")]
    CannotReplay(String),
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

/// A job as the scheduler sees it now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobInfo {
    /// The spec as written.
    pub spec: JobSpec,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it is next due.
    pub next_run_time: Option<DateTime<Utc>>,
    /// Whether it is paused.
    pub paused: bool,
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
    /// Paused by a person; it does not fire.
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

#[derive(Debug)]
pub(crate) struct JobEntry {
    job: Arc<Job>,
    /// The job's life under this id (see [`JobInfo::incarnation`]).
    incarnation: Arc<str>,
    next_run: Option<DateTime<Utc>>,
    paused: bool,
    /// Taken off the queue at a fire because its plugin was missing;
    /// requeued at `next_run` when the plugin is loaded.
    held: bool,
    generation: u64,
    in_flight: u32,
    /// Catch-up runs (fires missed while down, with `coalesce = false`)
    /// recorded pending and waiting for a slot under `max_instances`: they
    /// run one after another instead of being skipped as overlapping.
    queued: VecDeque<RunRecord>,
    finished_since_prune: u32,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Keyed by a shared id: the queue's entries point at the same bytes.
    jobs: HashMap<Arc<str>, JobEntry>,
    queue: DueQueue,
    broken: Vec<BrokenJob>,
}

impl State {
    /// The job `run` belongs to: the same id *and* incarnation, so a run
    /// of a deleted job never acts on a new job that took its id.
    pub(crate) fn entry_for(&mut self, run: &RunRecord) -> Option<&mut JobEntry> {
        self.jobs
            .get_mut(run.job_id.as_str())
            .filter(|e| *e.incarnation == *run.incarnation)
    }

    /// `run` no longer holds one of its job's `max_instances` slots (it
    /// ended, or will not start).
    pub(crate) fn run_ended(&mut self, run: &RunRecord) {
        if let Some(entry) = self.entry_for(run) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
    }

    /// If `run`'s job has a free slot and catch-up runs queued, puts the
    /// next on the due-queue. True when it did (the caller wakes the
    /// timer). Called once the run before it is recorded and announced,
    /// so catch-up runs follow each other in the history and the events.
    pub(crate) fn start_queued(&mut self, run: &RunRecord) -> bool {
        let State { jobs, queue, .. } = self;
        let Some(entry) = jobs
            .get_mut(run.job_id.as_str())
            .filter(|e| *e.incarnation == *run.incarnation)
        else {
            return false;
        };
        if entry.in_flight >= entry.job.spec.max_instances {
            return false;
        }
        let Some(next) = entry.queued.pop_front() else {
            return false;
        };
        entry.in_flight += 1;
        queue.push(next.due_at, Due::Run(Box::new(next)));
        true
    }
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
        }
    }

    fn info(&self, entry: &JobEntry) -> JobInfo {
        let plugin_loaded = self.plugins.get(&entry.job.spec.plugin).is_some();
        let state = if entry.paused {
            JobState::Paused
        } else if !plugin_loaded {
            JobState::WaitingForPlugin
        } else if entry.next_run.is_none() {
            JobState::Finished
        } else {
            JobState::Scheduled
        };
        JobInfo {
            spec: entry.job.spec.clone(),
            created_at: entry.job.created_at,
            next_run_time: entry.next_run,
            paused: entry.paused,
            in_flight: entry
                .in_flight
                .saturating_add(u32::try_from(entry.queued.len()).unwrap_or(u32::MAX)),
            plugin_loaded,
            state,
            warnings: entry.job.warnings.clone(),
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
        mut next_run: Option<DateTime<Utc>>,
        paused: bool,
        incarnation: &str,
        keep_schedule: bool,
    ) -> Option<DateTime<Utc>> {
        let mut state = self.lock();
        let id: Arc<str> = match state.jobs.get_key_value(job.id.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(job.id.as_str()),
        };
        let mut generation = 0;
        let mut in_flight = 0;
        let mut queued = VecDeque::new();
        let mut incarnation: Arc<str> = Arc::from(incarnation);
        if let Some(old) = state.jobs.get_mut(&id) {
            generation = old.generation + 1;
            if *old.incarnation == *incarnation {
                incarnation = old.incarnation.clone();
                in_flight = old.in_flight;
                queued = std::mem::take(&mut old.queued);
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
            JobEntry {
                job: Arc::new(job),
                incarnation,
                next_run,
                paused,
                held: false,
                generation,
                in_flight,
                queued,
                finished_since_prune: 0,
            },
        );
        drop(state);
        self.wake.notify_one();
        next_run
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
    ) -> Result<(Self, broadcast::Receiver<Event>), SchedulerError> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            store: parts.store,
            runtime: parts.runtime,
            plugins: parts.plugins,
            clock: parts.clock,
            events: EventBus::default(),
            workers: Arc::new(Semaphore::new(parts.config.workers.max(1))),
            lanes: lane::Lanes::new(parts.config.workers),
            config: parts.config,
            stop_firing: CancellationToken::new(),
            stop_runs: CancellationToken::new(),
            tasks: TaskTracker::new(),
            handle: tokio::runtime::Handle::current(),
            running: AtomicBool::new(true),
        });
        // Subscribed before recovery, so failures it records reach listeners
        // (and the caller's subscription, its counts).
        let bus = inner.events.subscribe();
        let early = inner.events.subscribe();
        tokio::spawn(listeners::dispatch(inner.clone(), bus));
        recover::recover(&inner).await?;
        let timer = inner.clone();
        inner
            .tasks
            .spawn(async move { fire::timer_loop(timer).await });
        Ok((Self { inner }, early))
    }

    /// Subscribes to the event bus.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
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

    /// Pauses a job: it keeps its definition but does not fire.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`] or a store error.
    pub async fn pause_job(&self, id: &str) -> Result<JobInfo, SchedulerError> {
        self.set_paused(id, true).await
    }

    /// Resumes a paused job; its next fire is computed from now.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`] or a store error.
    pub async fn resume_job(&self, id: &str) -> Result<JobInfo, SchedulerError> {
        self.set_paused(id, false).await
    }

    async fn set_paused(&self, id: &str, paused: bool) -> Result<JobInfo, SchedulerError> {
        let inner = &self.inner;
        inner.check_running()?;
        let now = inner.clock.now();
        let (job, incarnation) = inner
            .lock()
            .jobs
            .get(id)
            .map(|e| (e.job.clone(), e.incarnation.clone()))
            .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))?;
        let next = if paused {
            None
        } else {
            job.trigger.next_after(now)
        };
        inner
            .store
            .write(vec![
                Write::Paused {
                    job_id: id.to_owned(),
                    paused,
                },
                Write::NextRun {
                    job_id: id.to_owned(),
                    next,
                },
            ])
            .await?;
        inner.install((*job).clone(), next, paused, &incarnation, false);
        let event = inner.job_event(id);
        inner.events.publish(if paused {
            Event::JobPaused(event)
        } else {
            Event::JobResumed(event)
        });
        self.job(id)
    }

    /// Tells the scheduler that plugin `name` is loaded (again): jobs held
    /// for it go back on the queue at the fire they were held at, so the
    /// fires they missed are treated like downtime (`misfire_grace`,
    /// `coalesce`).
    pub fn plugin_loaded(&self, name: &str) {
        let hash = self
            .inner
            .plugins
            .get(name)
            .map(|p| p.hash().as_str().to_owned());
        self.publish_plugin_event(name, hash, None, Event::PluginLoaded);
        let mut resumed = 0;
        {
            let mut state = self.inner.lock();
            let State { jobs, queue, .. } = &mut *state;
            for (id, entry) in jobs.iter_mut() {
                if !entry.held || entry.job.spec.plugin != name {
                    continue;
                }
                entry.held = false;
                if let (Some(at), false) = (entry.next_run, entry.paused) {
                    queue.push(
                        at,
                        Due::Fire {
                            job_id: id.clone(),
                            generation: entry.generation,
                        },
                    );
                    resumed += 1;
                }
            }
        }
        if resumed > 0 {
            tracing::info!(
                plugin = name,
                jobs = resumed,
                "plugin is back; its held jobs resume"
            );
            self.inner.wake.notify_one();
        }
    }

    /// Tells listeners that a file of plugin `name` was refused.
    pub fn plugin_refused(&self, name: &str, error: String) {
        let hash = self
            .inner
            .plugins
            .get(name)
            .map(|p| p.hash().as_str().to_owned());
        self.publish_plugin_event(name, hash, Some(error), Event::PluginRefused);
    }

    /// Tells listeners that plugin `name` is gone. Its jobs are held at
    /// their next fire (see [`Self::plugin_loaded`]).
    pub fn plugin_removed(&self, name: &str) {
        self.publish_plugin_event(name, None, None, Event::PluginRemoved);
    }

    fn publish_plugin_event(
        &self,
        plugin: &str,
        hash: Option<String>,
        error: Option<String>,
        kind: fn(PluginEvent) -> Event,
    ) {
        self.inner.events.publish(kind(PluginEvent {
            plugin: plugin.to_owned(),
            hash,
            error,
            at: self.inner.clock.now(),
        }));
    }

    /// Runs a job now, outside its schedule (its schedule is unchanged).
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`], [`SchedulerError::MaxInstances`],
    /// or a store error.
    pub async fn run_now(&self, id: &str) -> Result<RunRecord, SchedulerError> {
        let now = self.inner.clock.now();
        self.submit(id, now, 1, None, None).await
    }

    /// Runs a past run again: same job, same args, same `scheduled_at` and
    /// attempt number in its context, and only on the same plugin version.
    /// (Runs recorded before args were kept per run use the job's current
    /// args.)
    ///
    /// # Errors
    /// [`SchedulerError::RunNotFound`]; [`SchedulerError::CannotReplay`]
    /// when the job is gone, the run never started, or its plugin version
    /// is no longer loaded; as for [`Self::run_now`].
    pub async fn replay(&self, run_id: &str) -> Result<RunRecord, SchedulerError> {
        let original = self
            .inner
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| SchedulerError::RunNotFound(run_id.to_owned()))?;
        let job = self.job(&original.job_id).map_err(|_| {
            SchedulerError::CannotReplay(format!(
                "job '{}' of run {run_id} no longer exists",
                original.job_id
            ))
        })?;
        let Some(used) = original.plugin_hash.as_deref() else {
            return Err(SchedulerError::CannotReplay(format!(
                "run {run_id} never started ({}), so there is no plugin version to replay",
                original.status.as_str()
            )));
        };
        let loaded = self
            .inner
            .plugins
            .get(&job.spec.plugin)
            .map(|p| p.hash().as_str().to_owned());
        if loaded.as_deref() != Some(used) {
            return Err(SchedulerError::CannotReplay(format!(
                "run {run_id} used plugin '{}' version {}, which is no longer loaded (now: {})",
                job.spec.plugin,
                &used[..used.len().min(12)],
                loaded.as_deref().map_or("none", |h| &h[..h.len().min(12)])
            )));
        }
        let note = format!("replay of run {run_id}");
        self.submit(
            &original.job_id,
            original.scheduled_at,
            original.attempt,
            Some(note),
            original.args,
        )
        .await
    }

    async fn submit(
        &self,
        id: &str,
        scheduled_at: DateTime<Utc>,
        attempt: u32,
        note: Option<String>,
        args: Option<String>,
    ) -> Result<RunRecord, SchedulerError> {
        let inner = &self.inner;
        inner.check_running()?;
        let now = inner.clock.now();
        let run = {
            let mut state = inner.lock();
            let entry = state
                .jobs
                .get_mut(id)
                .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))?;
            let max = entry.job.spec.max_instances;
            if entry.in_flight >= max {
                return Err(SchedulerError::MaxInstances {
                    job: id.to_owned(),
                    max,
                });
            }
            entry.in_flight += 1;
            RunRecord {
                note,
                args,
                ..RunRecord::pending(id, scheduled_at, now, attempt).of(&entry.incarnation)
            }
        };
        if let Err(e) = inner.store.write(vec![Write::Run(run.clone())]).await {
            execute::release(inner, &run);
            return Err(e.into());
        }
        inner.events.publish(Event::RunSubmitted(execute::run_event(
            &run, now, None, None,
        )));
        execute::spawn(inner.clone(), run.clone());
        Ok(run)
    }

    /// One job.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`].
    pub fn job(&self, id: &str) -> Result<JobInfo, SchedulerError> {
        let state = self.inner.lock();
        state
            .jobs
            .get(id)
            .map(|e| self.inner.info(e))
            .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))
    }

    /// Every job, by id.
    pub fn jobs(&self) -> Vec<JobInfo> {
        let state = self.inner.lock();
        let mut jobs: Vec<JobInfo> = state.jobs.values().map(|e| self.inner.info(e)).collect();
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

    /// Entries in the due-queue (stale ones included), for metrics.
    pub fn queue_len(&self) -> usize {
        self.inner.lock().queue.len()
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
