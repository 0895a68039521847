//! The timer task: wake at the earliest due instant, turn what is due
//! into runs (or records of why not), commit, hand to the executor.

use super::decide::{Plan, plan_fire};
use super::execute;
use super::queue::Due;
use super::{Inner, State};
use crate::event::Event;
use crate::store::{Leadership, RunRecord, RunStatus, StoreError, Write};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

pub(super) async fn timer_loop(inner: Arc<Inner>) {
    let mut health = inner.store.health().subscribe();
    let mut leadership = inner.store.leadership().subscribe();
    // A sole host was recovered at start; a host on a shared store takes
    // over (reads the jobs and the runs left) each time it becomes leader.
    let mut leading = *leadership.borrow() == Leadership::Sole;
    let (commits, decided) = mpsc::unbounded_channel();
    let committer = inner.clone();
    inner
        .tasks
        .spawn(async move { commit_loop(&committer, decided).await });
    loop {
        if inner.stop_firing.is_cancelled() {
            return;
        }
        // A run must not start without its record: while the store cannot
        // be written, nothing is taken off the queue. The store says when
        // writes work again; what came due meanwhile is then handled like
        // fires missed while the host was down.
        if !health.borrow_and_update().is_writable() {
            tokio::select! {
                changed = health.changed() => {
                    if changed.is_err() {
                        // The store dropped its health (it cannot, while
                        // the scheduler holds it); look again in a second.
                        inner.clock.sleep_until(inner.clock.now() + chrono::Duration::seconds(1)).await;
                    }
                }
                () = inner.stop_firing.cancelled() => return,
            }
            continue;
        }
        // Only the leader fires (issue 11). A follower waits; its queue is
        // read again from the store when it takes over.
        let now_leading = leadership.borrow_and_update().clone();
        if !now_leading.is_leader() {
            leading = false;
            tokio::select! {
                _ = leadership.changed() => {}
                () = inner.stop_firing.cancelled() => return,
            }
            continue;
        }
        if !leading {
            if let Err(err) = super::recover::take_over(&inner).await {
                tracing::warn!(error = %err, "could not take over as leader; trying again in a second");
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    () = inner.stop_firing.cancelled() => return,
                }
                continue;
            }
            leading = true;
            if inner.start_ready.load(std::sync::atomic::Ordering::Acquire) {
                super::manual::run_on_start(&inner, true);
            } else {
                use std::sync::atomic::Ordering;
                inner.leader_starts_due.store(true, Ordering::Release);
                // `started_up` may have come between the two: whoever
                // takes the flag back runs them.
                if inner.start_ready.load(Ordering::Acquire)
                    && inner.leader_starts_due.swap(false, Ordering::AcqRel)
                {
                    super::manual::run_on_start(&inner, true);
                }
            }
        }
        // Registered before looking at the queue, so a change made while
        // this wake-up runs is not lost.
        let woken = inner.wake.notified();
        let now = inner.clock.now();
        let (due, next_at) = take_due(&inner, now);
        if !due.is_empty() {
            // Decide now, in order; commit and start in the committer, so
            // fires that come due while this batch's commit is in flight
            // are taken at once rather than after it. A burst is cut in
            // chunks, the first about a worker round, so the workers run
            // the first fires while the rest are being committed.
            let first = inner.config.workers.clamp(8, CHUNK);
            // Counted before the first is sent, so the ends of the first
            // chunk's runs see the rest of the burst coming (ends.rs).
            inner
                .ends
                .decided(1 + due.len().saturating_sub(first).div_ceil(CHUNK));
            let mut due = due.into_iter().peekable();
            let mut size = first;
            while due.peek().is_some() {
                let chunk: Vec<_> = due.by_ref().take(size).collect();
                size = CHUNK;
                if commits.send(plan_batch(&inner, chunk, now)).is_err() {
                    return; // the committer has stopped: the scheduler is gone
                }
                // The send woke the committer into this thread's next-task
                // slot, which the other worker threads cannot take: without
                // a yield it waited until the whole burst was planned (the
                // store's writer idle for the first 20 ms of a 10,000-job
                // burst on SQLite; docs/BENCHMARKS.md, seventh round).
                tokio::task::yield_now().await;
            }
            continue;
        }
        let cap = now + chrono::Duration::from_std(inner.config.max_sleep).unwrap_or_default();
        let until = next_at.map_or(cap, |at| at.min(cap));
        tokio::select! {
            () = inner.clock.sleep_until(until) => {}
            () = woken => {}
            () = inner.stop_firing.cancelled() => return,
        }
    }
}

/// Items due now, and when the next one is due.
type Taken = (Vec<(DateTime<Utc>, Due)>, Option<DateTime<Utc>>);

fn take_due(inner: &Inner, now: DateTime<Utc>) -> Taken {
    let mut state = inner.lock();
    let mut due = Vec::new();
    while let Some((at, item)) = state.queue.pop_due(now) {
        let live = match &item {
            Due::Fire { job_id, generation } => state
                .jobs
                .get(job_id)
                .is_some_and(|e| e.generation == *generation && !e.paused),
            // Only for the incarnation it belongs to (a retry of a
            // deleted job must not run under a new job with its id).
            Due::Run(run) => state.entry_for(run).is_some(),
        };
        if live {
            due.push((at, item));
        }
        if due.len() >= 4096 {
            break;
        }
    }
    (due, state.queue.peek_at())
}

/// A job's fire taken off the queue by a wake-up: enough to put it back
/// if the batch cannot be recorded.
struct Fired {
    job_id: Arc<str>,
    /// The fire taken.
    at: DateTime<Utc>,
    /// The next fire the plan set.
    next: Option<DateTime<Utc>>,
    /// The job's generation the plan saw.
    generation: u64,
}

/// A fire buffered under `overlap = "cancel-other"`: its run id, its
/// job's id and incarnation, and its time.
type Cancel = (String, Arc<str>, String, DateTime<Utc>);

/// A decided batch: what to write, and the runs to start once it is
/// committed (with a worker permit when one was free).
struct Batch {
    writes: Vec<Write>,
    /// Published once committed, but not those of runs the store refused.
    events: Vec<Event>,
    started: Vec<(RunRecord, Start)>,
    /// In the order they were taken.
    fired: Vec<Fired>,
    /// Runs taken off the queue as runs (retries, catch-up runs), by id:
    /// they go back on it as they were.
    from_queue: Vec<String>,
    /// Fires buffered under `overlap = "cancel-other"`: (run id, job id,
    /// incarnation, fire time); once recorded, each stops its job's
    /// oldest run going.
    cancels: Vec<Cancel>,
}

impl Batch {
    /// Fires and queued runs in it.
    fn len(&self) -> usize {
        self.fired.len() + self.from_queue.len()
    }

    /// Appends a batch decided after this one.
    fn absorb(&mut self, later: Batch) {
        self.writes.extend(later.writes);
        self.events.extend(later.events);
        self.started.extend(later.started);
        self.fired.extend(later.fired);
        self.from_queue.extend(later.from_queue);
        self.cancels.extend(later.cancels);
    }
}

/// Commits the timer's batches in the order they were decided, each
/// together with the batches decided while the one before it was being
/// committed (one write for all of them, up to about [`CHUNK`] fires). In order, because a job's next
/// fire time must never be overwritten in the store by an older one: with
/// a task per batch, a later batch could commit first, and a crash then
/// left a fire both recorded (say, skipped) and due again at the restart.
async fn commit_loop(inner: &Arc<Inner>, mut decided: mpsc::UnboundedReceiver<Batch>) {
    // A batch that would have made the one before it larger than a chunk
    // (the first, small chunk of a burst goes alone, so the workers start
    // after a small write).
    let mut carried: Option<Batch> = None;
    loop {
        let mut batch = match carried.take() {
            Some(batch) => batch,
            None => match decided.recv().await {
                Some(batch) => batch,
                None => return,
            },
        };
        let mut batches = 1;
        while let Ok(later) = decided.try_recv() {
            if batch.len() + later.len() > CHUNK {
                carried = Some(later);
                break;
            }
            batch.absorb(later);
            batches += 1;
        }
        commit_and_start(inner, batch).await;
        inner.ends.committed(inner, batches);
    }
}

/// Fires and queued runs committed in one write at most (about; a batch
/// is not split): a burst of thousands is committed in writes of this
/// size while the workers run the ones before, instead of in one write
/// that every run of the burst waits for. Measured with
/// `cargo bench -p wasmcron-tests --bench burst` (docs/BENCHMARKS.md).
const CHUNK: usize = 256;

fn plan_batch(inner: &Arc<Inner>, due: Vec<(DateTime<Utc>, Due)>, now: DateTime<Utc>) -> Batch {
    let mut writes = Vec::new();
    let mut events = Vec::new();
    let mut started = Vec::new();
    let mut fired = Vec::new();
    let mut from_queue = Vec::new();
    let mut cancels = Vec::new();
    {
        let mut state = inner.lock();
        for (at, item) in due {
            match item {
                Due::Fire { job_id, .. } => {
                    let Some(entry) = state.jobs.get_mut(&job_id) else {
                        continue;
                    };
                    if inner.plugins.get(&entry.job.spec.plugin).is_none() {
                        // Hold, keeping `next_run` (in the store too) at
                        // this fire: when the plugin is back the job goes
                        // back on the queue here and its misfire settings
                        // decide what happens to the fires missed since.
                        entry.held = true;
                        tracing::warn!(
                            job = %job_id,
                            plugin = %entry.job.spec.plugin,
                            due = %at,
                            "plugin is not loaded; the job waits for it"
                        );
                        continue;
                    }
                    let mut plan = Plan::default();
                    let next = plan_fire(entry, at, now, inner.shared, &mut plan);
                    entry.next_run = next;
                    let generation = entry.generation;
                    let incarnation = entry.incarnation.to_string();
                    if let Some((run_id, t)) = plan.cancel_for.take() {
                        cancels.push((run_id, job_id.clone(), incarnation.clone(), t));
                    }
                    // Where a worker is free now, the run is recorded as
                    // running in this same write and started straight
                    // after: one commit between fire and guest.
                    let mut rows = plan.rows;
                    for mut run in plan.starts {
                        let start = take_worker(inner, &state, &mut run, now);
                        rows.push(run.clone());
                        started.push((run, start));
                    }
                    writes.push(Write::Fire {
                        job_id: job_id.to_string(),
                        incarnation,
                        from: at,
                        next,
                        runs: rows,
                    });
                    events.extend(plan.events);
                    fired.push(Fired {
                        job_id: job_id.clone(),
                        at,
                        next,
                        generation,
                    });
                    if let Some(n) = next {
                        state.queue.push(n, Due::Fire { job_id, generation });
                    }
                }
                Due::Run(mut run) => {
                    from_queue.push(run.run_id.clone());
                    let start = take_worker(inner, &state, &mut run, now);
                    writes.push(Write::Run((*run).clone()));
                    started.push((*run, start));
                }
            }
        }
    }
    Batch {
        writes,
        events,
        started,
        fired,
        from_queue,
        cancels,
    }
}

/// How a fire's run starts once its write is committed.
pub(super) enum Start {
    /// A worker was free: the run is recorded running and starts at once.
    Worker(OwnedSemaphorePermit),
    /// No worker was free, but the run is recorded running ahead of one
    /// (one of [`Inner::recorded_ahead`], or of
    /// [`Inner::recorded_ahead_quick`] when its job's last run was quick):
    /// it starts when a worker frees,
    /// with no write of its own between.
    Ahead(OwnedSemaphorePermit),
    /// Recorded pending: the executor records its start later (`true`
    /// when its job's last run was quick, for the starter's places).
    Later(bool),
}

/// How `run` will start: with a worker if one is free, else recorded
/// running ahead of one if the ahead bound allows (only on a store of its
/// own: on a shared one, claims do this), else later. Unless later, the
/// run is marked running on this host (when its job and plugin are there
/// and the scheduler is not stopping).
fn take_worker(inner: &Inner, state: &State, run: &mut RunRecord, now: DateTime<Utc>) -> Start {
    let Some(entry) = state
        .jobs
        .get(run.job_id.as_str())
        .filter(|e| e.incarnation == *run.incarnation)
    else {
        return Start::Later(false);
    };
    let Some(plugin) = inner.plugins.get(&entry.job.spec.plugin) else {
        return Start::Later(entry.quick);
    };
    if inner.stop_firing.is_cancelled() {
        return Start::Later(entry.quick);
    }
    let start = if let Ok(permit) = inner.workers.clone().try_acquire_owned() {
        Start::Worker(permit)
    } else if let Some(ahead) = (!inner.shared)
        .then(|| inner.place_ahead(entry.quick))
        .flatten()
    {
        Start::Ahead(ahead)
    } else {
        return Start::Later(entry.quick);
    };
    run.status = RunStatus::Running;
    run.started_at = Some(now);
    run.plugin_hash = Some(plugin.hash().as_str().to_owned());
    run.host = Some(inner.config.host_name.clone());
    start
}

async fn commit_and_start(inner: &Arc<Inner>, batch: Batch) {
    let Batch {
        writes,
        events,
        started,
        fired,
        from_queue,
        cancels,
    } = batch;
    let written = match inner.store.write(writes).await {
        Ok(written) => written,
        Err(StoreError::Fenced(reason)) => {
            // This host lost the lease (its lease task says so too, and the
            // timer stops): nothing was recorded; the new leader fires
            // these, from the store's schedule.
            tracing::info!(
                fires = fired.len(),
                reason,
                "due fires not recorded: this host no longer leads"
            );
            hold(inner, fired, started, &from_queue);
            return;
        }
        Err(StoreError::Unwritable(reason)) => {
            // Without a durable record a run must not start. The storage
            // failed (the store's health says so, and the timer waits on
            // it): put the fires back, to be taken again once it can be
            // written.
            tracing::warn!(
                fires = fired.len(),
                runs = started.len(),
                reason,
                "could not record due fires; they are held until the store can be written"
            );
            hold(inner, fired, started, &from_queue);
            return;
        }
        Err(err) => {
            // Not the storage: the data was refused, and taking the fires
            // again would fail the same way. They are lost; say so loudly.
            tracing::error!(error = %err, "could not record due fires; they will not run");
            for (run, _) in &started {
                execute::release(inner, run);
            }
            return;
        }
    };
    if !written.all() {
        refused(inner, &written, &fired).await;
    }
    for event in events {
        if event_run_id(&event).is_some_and(|id| written.refused.contains(id)) {
            continue;
        }
        inner.events.publish(event);
    }
    if !cancels.is_empty() {
        let mut state = inner.lock();
        for (run_id, job_id, incarnation, at) in cancels {
            if !written.refused.contains(&run_id) {
                state.cancel_oldest(&job_id, &incarnation, at);
            }
        }
    }
    for (run, start) in started {
        if written.refused.contains(&run.run_id) {
            drop(start);
            execute::release(inner, &run);
            continue;
        }
        match start {
            Start::Worker(permit) => execute::spawn_started(inner.clone(), run, permit),
            Start::Ahead(ahead) => execute::spawn_ahead(inner.clone(), run, ahead),
            Start::Later(quick) => execute::spawn(inner.clone(), run, quick),
        }
    }
}

/// The run an event is about, for the events of fires.
fn event_run_id(event: &Event) -> Option<&str> {
    match event {
        Event::RunSubmitted(e) | Event::RunMissed(e) | Event::RunSkipped(e) => Some(&e.run_id),
        _ => None,
    }
}

/// After a batch in which the store refused fires: a fire whose
/// compare-and-set failed means the stored schedule moved without this
/// scheduler (another host fired, or a change was committed meanwhile),
/// so the job is read back and its stored state installed, unless a
/// local change has replaced the entry since (that change wrote its own
/// state). Fire rows refused as already recorded are never started; the
/// caller releases their slots. Queued catch-up runs that were refused
/// leave the queue.
async fn refused(inner: &Arc<Inner>, written: &crate::store::Written, fired: &[Fired]) {
    {
        let mut state = inner.lock();
        for entry in state.jobs.values_mut() {
            entry
                .queued
                .retain(|r| !written.refused.contains(&r.run_id));
        }
    }
    let mut seen = HashSet::new();
    for job_id in &written.stale {
        if !seen.insert(job_id.as_str()) {
            continue;
        }
        let Some(generation) = fired
            .iter()
            .rev()
            .find(|f| *f.job_id == **job_id)
            .map(|f| f.generation)
        else {
            continue;
        };
        tracing::info!(
            job = %job_id,
            "the job's stored schedule moved meanwhile (another host, or a change); \
             its fire was not recorded here and the stored state is taken"
        );
        match inner.store.job(job_id).await {
            Ok(record) => super::reload::apply(inner, job_id, record, Some(generation)),
            Err(err) => {
                tracing::warn!(job = %job_id, error = %err, "could not read back a job whose fire was stale; it waits for the next change");
            }
        }
    }
}

/// Undoes a wake-up whose batch could not be recorded: each job fired goes
/// back to its fire (unless something changed it since), its catch-up runs
/// and its slots with it; runs taken from the queue go back on it.
fn hold(inner: &Inner, fired: Vec<Fired>, started: Vec<(RunRecord, Start)>, from_queue: &[String]) {
    let mut state = inner.lock();
    for (mut run, start) in started {
        drop(start);
        if from_queue.contains(&run.run_id) {
            // It keeps the slot it had while queued.
            run.status = RunStatus::Pending;
            run.started_at = None;
            run.plugin_hash = None;
            state.queue.push(run.due_at, Due::Run(Box::new(run)));
        } else {
            state.run_ended(&run);
        }
    }
    // Newest first, so a job fired twice in the batches held goes back to
    // its first fire: each fire's `next` is the fire after it.
    let mut restored: HashSet<Arc<str>> = HashSet::new();
    for f in fired.into_iter().rev() {
        let Some(entry) = state.jobs.get_mut(&f.job_id) else {
            continue;
        };
        // Edited, removed and re-added, or fired again since: the newer
        // decision stands.
        if entry.generation != f.generation || entry.next_run != f.next {
            continue;
        }
        entry.next_run = Some(f.at);
        restored.insert(f.job_id);
    }
    let State { jobs, queue, .. } = &mut *state;
    for job_id in restored {
        let Some(entry) = jobs.get_mut(&job_id) else {
            continue;
        };
        let Some(at) = entry.next_run else { continue };
        // A new generation drops the queue's entry for the later fire.
        entry.generation += 1;
        // The held wake-ups' catch-up runs (earlier ones are before `at`).
        entry.queued.retain(|r| r.scheduled_at < at);
        queue.push(
            at,
            Due::Fire {
                job_id,
                generation: entry.generation,
            },
        );
    }
}
