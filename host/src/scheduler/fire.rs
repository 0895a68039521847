//! The timer task: wake at the earliest due instant, turn what is due
//! into runs (or records of why not), commit, hand to the executor.

use super::execute;
use super::queue::Due;
use super::{Inner, JobEntry};
use crate::event::Event;
use crate::store::{RunRecord, RunStatus, Write};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// Fires computed per job per wake-up when catching up after downtime
/// without coalescing; beyond it the rest are counted as missed in one row.
const MAX_CATCH_UP: usize = 1000;
/// Steps taken to find the latest missed fire before jumping ahead.
const MAX_SCAN: usize = 100_000;

pub(super) async fn timer_loop(inner: Arc<Inner>) {
    loop {
        if inner.stop_firing.is_cancelled() {
            return;
        }
        // Registered before looking at the queue, so a change made while
        // this wake-up runs is not lost.
        let woken = inner.wake.notified();
        let now = inner.clock.now();
        let (due, next_at) = take_due(&inner, now);
        if !due.is_empty() {
            // Decide now, in order; commit and start in a task of its own,
            // so fires that come due while this batch's commit is in flight
            // are taken at once rather than after it (the writer groups the
            // concurrent commits anyway).
            let batch = plan_batch(&inner, due, now);
            let committer = inner.clone();
            inner
                .tasks
                .spawn(async move { commit_and_start(&committer, batch, now).await });
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

/// What one wake-up decided, to be committed in one write.
#[derive(Default)]
struct Plan {
    writes: Vec<Write>,
    starts: Vec<RunRecord>,
    events: Vec<Event>,
}

/// A decided batch: what to write, and the runs to start once it is
/// committed (with a worker permit when one was free).
struct Batch {
    writes: Vec<Write>,
    events: Vec<Event>,
    started: Vec<(RunRecord, Option<OwnedSemaphorePermit>)>,
}

fn plan_batch(inner: &Arc<Inner>, due: Vec<(DateTime<Utc>, Due)>, now: DateTime<Utc>) -> Batch {
    let mut plan = Plan::default();
    let mut started = Vec::new();
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
                    let next = plan_fire(entry, at, now, &mut plan);
                    entry.next_run = next;
                    plan.writes.push(Write::NextRun {
                        job_id: job_id.to_string(),
                        next,
                    });
                    let generation = entry.generation;
                    if let Some(n) = next {
                        state.queue.push(n, Due::Fire { job_id, generation });
                    }
                }
                Due::Run(run) => plan.starts.push(*run),
            }
        }
        // Where a worker is free now, record the run as running in this
        // same write and start it straight after: one commit between fire
        // and guest. The rest are recorded pending and wait for a worker.
        for mut run in std::mem::take(&mut plan.starts) {
            let permit = state
                .entry_for(&run)
                .and_then(|e| inner.plugins.get(&e.job.spec.plugin))
                .filter(|_| !inner.stop_firing.is_cancelled())
                .and_then(|plugin| {
                    let permit = inner.workers.clone().try_acquire_owned().ok()?;
                    run.status = RunStatus::Running;
                    run.started_at = Some(now);
                    run.plugin_hash = Some(plugin.hash().as_str().to_owned());
                    Some(permit)
                });
            plan.writes.push(Write::Run(run.clone()));
            started.push((run, permit));
        }
    }
    Batch {
        writes: plan.writes,
        events: plan.events,
        started,
    }
}

async fn commit_and_start(inner: &Arc<Inner>, batch: Batch, now: DateTime<Utc>) {
    let Batch {
        writes,
        events,
        started,
    } = batch;
    if let Err(err) = inner.store.write(writes).await {
        // Without a durable record a run must not start. The fires are
        // lost to this outage; say so loudly.
        tracing::error!(error = %err, "could not record due fires; they will not run");
        for (run, _) in &started {
            execute::release(inner, run);
        }
        return;
    }
    for event in events {
        inner.events.publish(event);
    }
    for (run, permit) in started {
        match permit {
            Some(permit) => {
                inner
                    .events
                    .publish(Event::RunStarted(execute::run_event(&run, now, None, None)));
                execute::spawn_started(inner.clone(), run, permit);
            }
            None => execute::spawn(inner.clone(), run),
        }
    }
}

/// Decides what to do with a job's fire due at `at`, and returns its next
/// fire time (after every fire that is already due).
///
/// Each fire gets one story: it runs, or one row says why not. With
/// `coalesce`, the fires due at once run as one run (at the latest) and one
/// row counts the rest, or, when even the latest is past `misfire_grace`,
/// one row says all were missed. Without it, each fire within its grace
/// runs: the fires due at once after downtime are catch-up runs, queued
/// and run one after another (up to `max_instances` at once), never
/// skipped as overlapping each other.
fn plan_fire(
    entry: &mut JobEntry,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    plan: &mut Plan,
) -> Option<DateTime<Utc>> {
    let job = entry.job.clone();
    let id = job.id.as_str();
    let inc = entry.incarnation.clone();
    let not_run = |t, status, note, plan: &mut Plan| {
        record_not_run(id, &inc, t, status, note, now, plan);
    };
    // Every fire due by now: usually just `at`; after downtime, more.
    let mut times = vec![at];
    let mut extra_missed: u64 = 0;
    let mut last = at;
    let mut next = job.trigger.next_after(at);
    let mut steps = 0;
    while let Some(n) = next.filter(|n| *n <= now) {
        steps += 1;
        if steps > MAX_SCAN {
            next = job.trigger.next_after(now);
            extra_missed += 1;
            break;
        }
        if job.spec.coalesce || times.len() >= MAX_CATCH_UP {
            extra_missed += 1;
        } else {
            times.push(n);
        }
        last = n;
        next = job.trigger.next_after(n);
    }
    // How late `t` is, when that is past the job's misfire grace.
    let too_late = |t: DateTime<Utc>| {
        let grace = job.misfire_grace?;
        let late = (now - t).to_std().unwrap_or_default();
        (late > grace).then(|| {
            (
                crate::duration::format(late),
                crate::duration::format(grace),
            )
        })
    };
    if job.spec.coalesce && last != at {
        let missed = extra_missed.max(1);
        if let Some((late, grace)) = too_late(last) {
            // Even the latest is too late: one row for them all.
            let note = format!(
                "{} fire(s) from {at} to {last} were missed while the host was behind or down \
                 or its plugin missing; none ran: the latest would have started {late} late, \
                 past its misfire_grace of {grace}",
                missed + 1
            );
            not_run(last, RunStatus::Missed, note, plan);
            return next;
        }
        // Run once, for the latest; record the rest as one missed row.
        let note = format!(
            "{missed} fire(s) from {at} to before {last} were missed while the host was \
             behind or down or its plugin missing; coalesced into the run at {last}"
        );
        not_run(at, RunStatus::Missed, note, plan);
        times = vec![last];
    } else if extra_missed > 0 {
        let note = format!(
            "{extra_missed} more fire(s) up to {last} were missed while the host was behind or \
             down (at most {MAX_CATCH_UP} are run per catch-up)"
        );
        not_run(last, RunStatus::Missed, note, plan);
    }
    let mut runnable = Vec::with_capacity(times.len());
    for t in times {
        match too_late(t) {
            Some((late, grace)) => {
                let note = format!("started {late} late, past its misfire_grace of {grace}");
                not_run(t, RunStatus::Missed, note, plan);
            }
            None => runnable.push(t),
        }
    }
    // Several fires due at once are catch-up runs: they queue behind each
    // other (and behind a run already going) rather than count as overlap.
    let catching_up = runnable.len() > 1;
    for t in runnable {
        let run = RunRecord::pending(id, t, t, 1).of(&inc);
        if entry.in_flight < job.spec.max_instances {
            entry.in_flight += 1;
            plan.events.push(Event::RunSubmitted(execute::run_event(
                &run, now, None, None,
            )));
            plan.starts.push(run);
        } else if catching_up {
            plan.events.push(Event::RunSubmitted(execute::run_event(
                &run, now, None, None,
            )));
            plan.writes.push(Write::Run(run.clone()));
            entry.queued.push_back(run);
        } else {
            let note = format!(
                "{} run(s) already in flight (max_instances {})",
                entry.in_flight, job.spec.max_instances
            );
            not_run(t, RunStatus::Skipped, note, plan);
        }
    }
    next
}

fn record_not_run(
    job_id: &str,
    incarnation: &str,
    at: DateTime<Utc>,
    status: RunStatus,
    note: String,
    now: DateTime<Utc>,
    plan: &mut Plan,
) {
    tracing::warn!(job = job_id, scheduled_at = %at, status = status.as_str(), "{note}");
    let run = RunRecord::not_run(job_id, at, status, note.clone()).of(incarnation);
    let event = execute::run_event(&run, now, None, Some(note));
    plan.events.push(if status == RunStatus::Skipped {
        Event::RunSkipped(event)
    } else {
        Event::RunMissed(event)
    });
    plan.writes.push(Write::Run(run));
}
