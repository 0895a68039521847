//! What a job's fire becomes: one run, several catch-up runs, a fire
//! waiting under its overlap policy, or rows saying why not (misfire
//! grace, coalescing, `max_instances`). Pure
//! decisions on the scheduler's job entry; the timer (fire.rs) records
//! them.

use super::{JobEntry, execute};
use crate::event::Event;
use crate::job::Overlap;
use crate::store::{RunRecord, RunStatus};
use chrono::{DateTime, Utc};

/// Fires computed per job per wake-up when catching up after downtime
/// without coalescing; beyond it the rest are counted as missed in one row.
const MAX_CATCH_UP: usize = 1000;
/// Steps taken to find the latest missed fire before jumping ahead.
const MAX_SCAN: usize = 100_000;

/// What one job's fire decided: its rows (runs and records of fires that
/// did not run, all of origin `fire`), the runs among them to start, and
/// the events to publish once it is recorded.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) rows: Vec<RunRecord>,
    pub(super) starts: Vec<RunRecord>,
    pub(super) events: Vec<Event>,
    /// Under `overlap = "cancel-other"`: the run id and time of the fire
    /// buffered to replace the job's oldest run going, which is stopped
    /// once the fire is recorded.
    pub(super) cancel_for: Option<(String, DateTime<Utc>)>,
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
/// skipped as overlapping each other. A fire that finds the job's
/// `max_instances` runs going follows its overlap policy: it waits behind
/// them while the buffer has room (`buffer-one`, `buffer-all`,
/// `cancel-other`, which also asks for the oldest run to be stopped), else
/// one row says it was skipped.
pub(super) fn plan_fire(
    entry: &mut JobEntry,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    shared: bool,
    plan: &mut Plan,
) -> Option<DateTime<Utc>> {
    let job = entry.job.clone();
    let id = job.id.as_str();
    // Its text once per decision, on the stack (the table keeps it as a
    // UUID: incarnation.rs).
    let mut inc_text = [0; super::incarnation::UUID_TEXT];
    let inc_kept = entry.incarnation.clone();
    let inc = inc_kept.as_str(&mut inc_text);
    let not_run = |t, status, note, plan: &mut Plan| {
        record_not_run(id, inc, t, status, note, now, plan);
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
        let mut run = RunRecord::pending(id, t, t, 1).of(inc);
        if shared {
            // Any host claims it, within the job's max_instances across
            // hosts; one that finds them all going is recorded skipped by
            // the claim, unless it is a catch-up run, which waits for a
            // free instance (the note tells the claim so).
            if catching_up {
                run.note = Some(
                    "catch-up run: one of several fires due at once, run one after another"
                        .to_owned(),
                );
            }
            plan.events.push(Event::RunSubmitted(execute::run_event(
                &run, now, None, None,
            )));
            plan.rows.push(run);
        } else if entry.in_flight < job.spec.max_instances {
            entry.in_flight += 1;
            plan.events.push(Event::RunSubmitted(execute::run_event(
                &run, now, None, None,
            )));
            plan.starts.push(run);
        } else if catching_up {
            plan.events.push(Event::RunSubmitted(execute::run_event(
                &run, now, None, None,
            )));
            plan.rows.push(run.clone());
            entry.queued.push_back(run);
        } else if entry.queued.len() < (job.buffer as usize).max(usize::from(entry.backfilling > 0))
        {
            // The overlap policy keeps it waiting for a free instance (and
            // a live fire always waits for a backfill run to end rather
            // than be skipped for it or stop it: backfills come second).
            run.note = Some(if entry.queued.len() < job.buffer as usize {
                crate::job::buffered_note(job.spec.overlap, entry.in_flight, job.spec.max_instances)
            } else {
                format!(
                    "buffered: {} run(s) already in flight (max_instances {}), backfill runs \
                     among them; waits for one to end (live fires come before backfills)",
                    entry.in_flight, job.spec.max_instances
                )
            });
            plan.events.push(Event::RunSubmitted(execute::run_event(
                &run, now, None, None,
            )));
            if job.spec.overlap == Overlap::CancelOther {
                plan.cancel_for = Some((run.run_id.clone(), t));
            }
            plan.rows.push(run.clone());
            entry.queued.push_back(run);
        } else {
            let note = if job.buffer == 0 {
                format!(
                    "{} run(s) already in flight (max_instances {})",
                    entry.in_flight, job.spec.max_instances
                )
            } else {
                crate::job::buffer_full_note(
                    job.spec.overlap,
                    entry.queued.len(),
                    entry.in_flight,
                    job.spec.max_instances,
                )
            };
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
    plan.rows.push(run);
}
