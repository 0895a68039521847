//! The executor: one task per run, bounded by the worker semaphore; the
//! run's guest call goes through the lanes (`lane.rs`).

use super::Inner;
use super::lane::Ended;
use super::queue::Due;
use crate::event::{Event, RunEvent};
use crate::job::Job;
use crate::plugin::Plugin;
use crate::runtime::{Outcome, RunRequest};
use crate::store::{RunRecord, RunStatus, StoreError, Write};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// The run event for `run` at `now`.
pub(super) fn run_event(
    run: &RunRecord,
    now: DateTime<Utc>,
    outcome: Option<String>,
    message: Option<String>,
) -> RunEvent {
    RunEvent {
        job_id: run.job_id.clone(),
        run_id: run.run_id.clone(),
        scheduled_at: run.scheduled_at,
        attempt: run.attempt,
        at: now,
        started_at: run.started_at,
        outcome,
        message,
        failures_in_a_row: None,
        recovered_after: None,
    }
}

/// `run` is no longer in flight (a queued catch-up run may start).
pub(super) fn release(inner: &Inner, run: &RunRecord) {
    let mut state = inner.lock();
    state.run_ended(run);
    if state.start_queued(run) {
        inner.wake.notify_one();
    }
}

/// Counts a run as handled by a task of this host until dropped (see
/// [`Inner::runs_here`]).
struct Local(Arc<Inner>);

impl Local {
    fn new(inner: &Arc<Inner>) -> Self {
        inner
            .runs_here
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(inner.clone())
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.0
            .runs_here
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Spawns a run's task on the scheduler's runtime, counted in
/// [`Inner::runs_here`] until it ends.
fn spawn_run(inner: &Arc<Inner>, run: impl Future<Output = ()> + Send + 'static) {
    use futures_util::FutureExt;
    let local = Local::new(inner);
    // Boxed: tokio moves a task's future by value (into its cell, and its
    // stage when it ends), which showed as memcpy in the profile of a
    // burst. `map`, not an `async` block awaiting `run`: such a block
    // holds `run` twice (as what it captured and as what it awaits), and
    // so did every run task, at twice its size (15.7 KB; a burst of
    // 10,000 touched 157 MB of fresh pages; docs/BENCHMARKS.md, eighth
    // round). The counter is dropped with the future, run or not.
    inner
        .tasks
        .spawn_on(Box::pin(run.map(move |()| drop(local))), &inner.handle);
}

/// Starts `run` (already recorded as pending) once its start is
/// recorded (starter.rs: the starts of waiting runs are written together);
/// `quick`: its job's last run was quick ([`super::QUICK_RUN`]).
pub(super) fn spawn(inner: Arc<Inner>, run: RunRecord, quick: bool) {
    inner.starts.push(run, quick);
}

/// Runs `run`, already recorded as running by the timer with `permit`
/// (the common case when a worker was free at fire time: one commit less
/// between the fire and the guest), or by a claim on a shared store.
/// Announces its start ([`Event::RunStarted`]) here, once its job and
/// plugin are in hand: announced before, a job deleted in between left a
/// start that never ran nor ended.
pub(super) fn spawn_started(inner: Arc<Inner>, run: RunRecord, permit: OwnedSemaphorePermit) {
    let found = find(&inner, &run);
    if let Found::Ready(..) = found {
        inner.events.publish(Event::RunStarted(run_event(
            &run,
            inner.clock.now(),
            None,
            None,
        )));
    }
    spawn_run(&inner.clone(), async move {
        let id = inner.shared.then(|| run.run_id.clone());
        match found {
            Found::Ready(job, plugin) => run_guest(inner.clone(), run, permit, job, plugin).await,
            Found::PluginGone(job) => {
                drop(permit);
                record_missed(&inner, &run, &job).await;
            }
            Found::JobGone => {}
        }
        if let Some(id) = id {
            inner.lock().mine.remove(&id);
        }
    });
}

/// Runs `run`, recorded running on this host ahead of a free worker, by
/// its fire's write or with a batch of starts (`ahead` is its share of
/// [`Inner::recorded_ahead`]): it starts as soon as a worker frees.
pub(super) fn spawn_ahead(inner: Arc<Inner>, run: RunRecord, ahead: OwnedSemaphorePermit) {
    spawn_run(&inner.clone(), async move {
        if let Some((permit, job, plugin)) = wait_for_worker(&inner, &run, ahead).await {
            run_guest(inner, run, permit, job, plugin).await;
        }
    });
}

/// Waits for a worker for `run`, already recorded running ahead of one,
/// gives back its place ahead once it has one, and announces the start. At shutdown it gets
/// none: the run never started, so its row goes back to pending (it runs
/// after the next start, as a fire that was never recorded running would).
async fn wait_for_worker(
    inner: &Arc<Inner>,
    run: &RunRecord,
    ahead: OwnedSemaphorePermit,
) -> Option<(OwnedSemaphorePermit, Arc<Job>, Arc<Plugin>)> {
    let permit = tokio::select! {
        p = inner.workers.clone().acquire_owned() => p.ok(),
        () = inner.stop_firing.cancelled() => None,
    };
    match permit {
        Some(permit) if !inner.stop_firing.is_cancelled() => {
            // Its job and plugin in hand before its start is announced
            // (see `spawn_started`).
            let found = find(inner, run);
            if let Found::Ready(..) = found {
                inner.events.publish(Event::RunStarted(run_event(
                    run,
                    inner.clock.now(),
                    None,
                    None,
                )));
            }
            // Its place ahead is given back once its start is announced,
            // so the ends it lets go (ends.rs) come after.
            drop(ahead);
            inner.ends.maybe_quiet(inner);
            match found {
                Found::Ready(job, plugin) => Some((permit, job, plugin)),
                Found::PluginGone(job) => {
                    drop(permit);
                    record_missed(inner, run, &job).await;
                    None
                }
                Found::JobGone => None,
            }
        }
        _ => {
            drop(ahead);
            inner.ends.maybe_quiet(inner);
            let mut pending = run.clone();
            pending.status = RunStatus::Pending;
            pending.started_at = None;
            pending.plugin_hash = None;
            pending.host = None;
            if let Err(err) = inner.store.write(vec![Write::Run(pending)]).await {
                // It stays `running`: the next start records it
                // interrupted, as it does a run cut off by a crash.
                tracing::warn!(job = %run.job_id, run = %run.run_id, error = %err, "could not give a run that never started back to pending at shutdown");
            }
            None
        }
    }
}

/// What [`find`] found of a run's job and plugin.
enum Found {
    /// Both: the run may go.
    Ready(Arc<Job>, Arc<Plugin>),
    /// Its job, but its plugin is not loaded: record it missed
    /// ([`record_missed`]).
    PluginGone(Arc<Job>),
    /// Its job was deleted (with the run's row): nothing to record.
    JobGone,
}

/// The run's job and plugin as they are now, without waiting.
fn find(inner: &Inner, run: &RunRecord) -> Found {
    let Some(job) = inner.lock().entry_for(run).map(|e| e.job.clone()) else {
        return Found::JobGone;
    };
    match inner.plugins.get(&job.spec.plugin) {
        Some(plugin) => Found::Ready(job, plugin),
        None => Found::PluginGone(job),
    }
}

/// The run's job and plugin; records the run as missed (and releases it)
/// when the plugin is gone, and drops it when the job is.
pub(super) async fn lookup(inner: &Arc<Inner>, run: &RunRecord) -> Option<(Arc<Job>, Arc<Plugin>)> {
    match find(inner, run) {
        Found::Ready(job, plugin) => Some((job, plugin)),
        Found::PluginGone(job) => {
            record_missed(inner, run, &job).await;
            None
        }
        Found::JobGone => None,
    }
}

/// Records `run` missed because `job`'s plugin is not loaded, and
/// releases it.
async fn record_missed(inner: &Arc<Inner>, run: &RunRecord, job: &Job) {
    let now = inner.clock.now();
    let mut run = run.clone();
    run.status = RunStatus::Missed;
    run.note = Some(format!("plugin '{}' is not loaded", job.spec.plugin));
    run.ended_at = Some(now);
    let event = run_event(&run, now, None, run.note.clone());
    let _ = inner.store.write(vec![Write::Run(run.clone())]).await;
    release(inner, &run);
    inner.events.publish(Event::RunMissed(event));
}

async fn run_guest(
    inner: Arc<Inner>,
    mut run: RunRecord,
    permit: OwnedSemaphorePermit,
    job: Arc<Job>,
    plugin: Arc<Plugin>,
) {
    // The finished row says when the guest really began, after the start
    // was committed (what lateness figures should measure).
    run.started_at = Some(inner.clock.now());
    // A replay or retry brings its own args; otherwise the job's. Either
    // way they are recorded with the result (moved back below, not cloned
    // twice), so a replay can run with the same.
    let args = run.args.take().unwrap_or_else(|| job.args.clone());
    let parent = match &run.parent_run_id {
        Some(parent) => super::chain::parent_of(&inner, &run, parent).await,
        None => None,
    };
    let request = Arc::new(RunRequest {
        job_id: run.job_id.clone(),
        run_id: run.run_id.clone(),
        scheduled_at: run.scheduled_at,
        attempt: run.attempt,
        args,
        cause: run.cause().into(),
        parent,
        limits: job.limits,
        grants: job
            .grants
            .clone()
            .unwrap_or_else(|| inner.plugins.default_grants(plugin.name())),
    });
    // An owned future, so the lanes can move it to the slow lane mid-run.
    // The capture is kept in the run's entry below, so its logs can be
    // read while it goes (`GET /runs/{run_id}/logs`).
    let capture = inner.runtime.new_capture();
    // Boxed here: held by value, it stayed part of this function's state
    // (2.5 KB of every run task's) even after the lanes took it.
    let guest = {
        let (runtime, request, capture) = (inner.runtime.clone(), request.clone(), capture.clone());
        Box::pin(async move { runtime.run_capturing(&plugin, &request, capture).await })
    };
    // Every run gets a stop token of its own, registered until it ends: a
    // later fire (`overlap = "cancel-other"`) or a request may stop it.
    let stop = super::contact::guest_stop(&inner).child_token();
    let start_slow = {
        let mut state = inner.lock();
        state.cancellable.insert(
            run.run_id.clone(),
            super::state::Cancellable {
                job_id: run.job_id.clone(),
                incarnation: run.incarnation.clone(),
                token: stop.clone(),
                note: None,
                backfill: run.origin == crate::store::RunOrigin::Backfill,
                capture,
            },
        );
        state.entry_for(&run).is_some_and(|e| e.slow_start)
    };
    let ran = inner
        .lanes
        .run((&run.job_id, &run.run_id), permit, &stop, start_slow, guest)
        .await;
    let ended = ran.ended;
    let (cancelled, capture) = {
        let mut state = inner.lock();
        if let Some(entry) = state.entry_for(&run) {
            entry.slow_start = ran.runaway;
        }
        match state.cancellable.remove(&run.run_id) {
            Some(c) => (c.note, Some(c.capture)),
            None => (None, None),
        }
    };
    // A stopped guest leaves no report: what it logged until then is
    // kept from the capture (secrets redacted).
    let logs_so_far = || {
        capture
            .as_ref()
            .map(|c| c.snapshot(0, usize::MAX).0)
            .unwrap_or_default()
    };
    if inner.shared {
        // Its worker is free: a run claimed ahead may start now, not
        // after this one's result is written.
        inner.claim_wake.notify_one();
    }
    // The guest's future (and its share of the request) is gone unless a
    // stopped slow-lane task has not dropped it yet; then the args are
    // copied.
    run.args = Some(match Arc::try_unwrap(request) {
        Ok(request) => request.args,
        Err(shared) => shared.args.clone(),
    });
    let ended_at = inner.clock.now();
    run.ended_at = Some(ended_at);
    // Its worker is free; its end is recorded once the runs waiting to
    // start have started (ends.rs).
    super::ends::after_starts(&inner, &run).await;
    let (kind, guest_retryable, message) = match ended {
        Ended::Finished(report) => {
            let kind = report.outcome.kind().as_str().to_owned();
            let (retryable, message) = match &report.outcome {
                Outcome::Succeeded { .. } => (false, None),
                Outcome::Failed { message, retryable } => (*retryable, Some(message.clone())),
                Outcome::Trapped { message } => (true, Some(message.clone())),
                other => (true, Some(other.kind().to_string())),
            };
            run.status = RunStatus::Finished;
            run.fuel = report.fuel_consumed;
            run.logs = report.logs;
            run.outcome = Some(report.outcome);
            (kind, retryable, message)
        }
        Ended::Failed(why) => {
            // A bug on the host's side, not the guest's: recorded as a
            // trap so the run is not left "running" forever.
            let message = format!("the host failed while running the guest: {why}");
            tracing::error!(job = %run.job_id, run = %run.run_id, "{message}");
            let outcome = Outcome::Trapped {
                message: message.clone(),
            };
            let kind = outcome.kind().as_str().to_owned();
            run.status = RunStatus::Finished;
            run.outcome = Some(outcome);
            (kind, true, Some(message))
        }
        Ended::Stopped if cancelled.is_some() && !inner.stop_runs.is_cancelled() => {
            // A later fire took its place (`overlap = "cancel-other"`), or
            // a person stopped it: not retried, whatever the retry policy
            // says.
            run.status = RunStatus::Interrupted;
            run.note = cancelled;
            run.logs = logs_so_far();
            let message = run.note.clone();
            Box::pin(finish(&inner, &job, run, End::Cancelled, message, ended_at)).await;
            return;
        }
        Ended::Stopped => {
            run.status = RunStatus::Interrupted;
            run.logs = logs_so_far();
            let note = if inner.stop_runs.is_cancelled() {
                "the host shut down while the run was in flight"
            } else {
                super::contact::NOTE
            }
            .to_owned();
            run.note = Some(note.clone());
            ("interrupted".to_owned(), true, Some(note))
        }
    };
    // Boxed, like the guest's future: a run task's state is the largest
    // of its steps' (docs/BENCHMARKS.md, eighth round).
    Box::pin(finish(
        &inner,
        &job,
        run,
        End::Ran {
            kind: &kind,
            guest_retryable,
        },
        message,
        ended_at,
    ))
    .await;
}

/// How a run ended, for [`finish`].
pub(super) enum End<'a> {
    /// This host ran it (or found it cut short at its start) and records
    /// its end: only while the stored row still says it is running here.
    Ran {
        /// Its outcome kind (`succeeded`, `failed`, `interrupted`, …).
        kind: &'a str,
        /// Whether the guest allows a retry.
        guest_retryable: bool,
    },
    /// Its end is already recorded (the leader's sweep wrote it
    /// `interrupted`): only its retry is left to record.
    Recorded,
    /// This host stopped it for a later fire (`overlap = "cancel-other"`):
    /// recorded `interrupted` like [`End::Ran`], and never retried.
    Cancelled,
}

/// Records how a run ended, schedules a retry if the policy says so, and
/// tells the listeners.
pub(super) async fn finish(
    inner: &Arc<Inner>,
    job: &crate::job::Job,
    run: RunRecord,
    end: End<'_>,
    message: Option<String>,
    now: DateTime<Utc>,
) {
    let (kind, guest_retryable, recorded, may_retry) = match end {
        End::Ran {
            kind,
            guest_retryable,
        } => (kind, guest_retryable, false, true),
        End::Recorded => ("interrupted", true, true, true),
        End::Cancelled => ("interrupted", false, false, false),
    };
    let succeeded = kind == "succeeded";
    let mut writes = Vec::with_capacity(2);
    let mut events = vec![if succeeded {
        Event::RunSucceeded(run_event(&run, now, Some(kind.to_owned()), None))
    } else {
        Event::RunFailed(run_event(&run, now, Some(kind.to_owned()), message.clone()))
    }];
    let retry = (may_retry
        && !succeeded
        && job.retry.should_retry(run.attempt, kind, guest_retryable))
    .then(|| {
        let delay = chrono::Duration::from_std(job.retry.delay_after(run.attempt))
            .unwrap_or(chrono::Duration::MAX);
        // A retry runs with the args of the attempt it retries.
        // ...and a chained run's retries keep its parent.
        RunRecord {
            args: run.args.clone(),
            origin: run.origin.of_retry(),
            parent_run_id: run.parent_run_id.clone(),
            ..RunRecord::pending(&run.job_id, run.scheduled_at, now + delay, run.attempt + 1)
                .of(&run.incarnation)
        }
    });
    let retried = retry.is_some();
    let prune = {
        let mut state = inner.lock();
        if !retried {
            state.run_ended(&run);
        }
        match state.entry_for(&run) {
            Some(entry) => {
                entry.quick = run
                    .started_at
                    .zip(run.ended_at)
                    .is_some_and(|(s, e)| e - s < super::QUICK_RUN);
                entry.finished_since_prune += 1;
                let due = entry.finished_since_prune >= inner.config.prune_every;
                if due {
                    entry.finished_since_prune = 0;
                }
                due.then_some((entry.job.spec.keep_runs, entry.job.keep_for))
            }
            None => None,
        }
    };
    if recorded {
        writes.extend(retry.iter().map(|r| Write::Run(r.clone())));
    } else {
        writes.push(Write::End {
            run: run.clone(),
            retry: retry.clone().map(Box::new),
        });
    }
    if let Some((keep, keep_for)) = prune {
        writes.push(Write::Prune {
            job_id: run.job_id.clone(),
            keep,
            older_than: keep_for
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| now - d),
        });
    }
    if let Some(r) = &retry {
        events.push(Event::RunRetried(run_event(
            r,
            now,
            Some(kind.to_owned()),
            Some(format!("attempt {} at {}", r.attempt, r.due_at)),
        )));
    }
    let refused = record_result(inner, &run, retry.as_ref(), writes, recorded).await;
    let retry = if refused {
        // Someone recorded this run's end first: the leader's sweep, which
        // took this host for stopped (it was cut off from the database)
        // and scheduled the retry itself. Nothing of this end is kept.
        if inner.lock().entry_for(&run).is_none() {
            // Its job was deleted meanwhile (PostgreSQL cannot tell the
            // two apart in one statement).
            crate::store::memory::dropped_run(&run);
        } else {
            tracing::warn!(job = %run.job_id, run = %run.run_id, outcome = kind, "run result not recorded: another host already recorded this run's end (this host was cut off from the database long enough to be taken for stopped)");
        }
        events.retain(|e| !matches!(e, Event::RunRetried(_)));
        if retried {
            // The slot kept for the retry is not needed.
            inner.lock().run_ended(&run);
        }
        None
    } else {
        retry
    };
    let duration_ms = run
        .started_at
        .zip(run.ended_at)
        .map_or(0, |(s, e)| (e - s).num_milliseconds());
    tracing::info!(
        job = %run.job_id,
        run = %run.run_id,
        attempt = run.attempt,
        outcome = kind,
        duration_ms,
        fuel = run.fuel,
        message = message.as_deref().unwrap_or(""),
        "run finished"
    );
    if let Some(r) = retry {
        if inner.shared {
            // A pending row any host claims once it is due.
            drop(r);
        } else {
            inner.lock().queue.push(r.due_at, Due::Run(Box::new(r)));
            inner.wake.notify_one();
        }
    }
    if inner.shared {
        inner.claim_wake.notify_one();
    }
    super::autopause::publish_end(inner, job, &run, kind, !retried && !refused, events).await;
    if !retried && !refused {
        super::chain::start_children(inner, job, &run, kind);
    }
    if (!retried || refused) && inner.lock().start_queued(&run) {
        inner.wake.notify_one();
    }
}

/// How often a run's result is tried again while the store cannot be
/// written.
const RESULT_RETRY_EVERY: Duration = Duration::from_secs(1);

/// Writes a finished run's result, trying again while the store cannot be
/// written (disk full): the guest's work is done and its result must not
/// be lost to an outage. The run keeps its worker meanwhile, which is what
/// holds back new starts. Given up only at shutdown, when the row stays
/// `running` and the next start records it interrupted. A later attempt
/// writes the run and its retry without the batch's prune (which the next
/// finished run does), so the first attempt need not copy the batch.
async fn record_result(
    inner: &Arc<Inner>,
    run: &RunRecord,
    retry: Option<&RunRecord>,
    writes: Vec<Write>,
    recorded: bool,
) -> bool {
    let mut first = Some(writes);
    loop {
        let writes = first.take().unwrap_or_else(|| {
            if recorded {
                retry.iter().map(|r| Write::Run((*r).clone())).collect()
            } else {
                vec![Write::End {
                    run: run.clone(),
                    retry: retry.cloned().map(Box::new),
                }]
            }
        });
        match inner.store.write(writes).await {
            Ok(written) => return written.refused.contains(&run.run_id),
            Err(StoreError::Unwritable(reason)) if !inner.stop_firing.is_cancelled() => {
                tracing::warn!(job = %run.job_id, run = %run.run_id, reason, "could not record run result; trying again when the store can be written");
                let mut health = inner.store.health().subscribe();
                tokio::select! {
                    _ = health.wait_for(crate::store::StoreHealth::is_writable) => {}
                    () = tokio::time::sleep(RESULT_RETRY_EVERY) => {}
                    () = inner.stop_firing.cancelled() => {}
                }
            }
            Err(err) => {
                tracing::error!(job = %run.job_id, run = %run.run_id, error = %err, "could not record run result");
                return false;
            }
        }
    }
}
