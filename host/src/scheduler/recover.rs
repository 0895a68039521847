//! Start-up: load the store and pick up what the last process left.
//!
//! - Jobs come back with their stored next fire time, even if it is long
//!   past: the first wake-up then applies `misfire_grace` and `coalesce` to
//!   what was missed while the host was down.
//! - Runs left *pending* never started; they start now, up to the job's
//!   `max_instances`, the rest queued behind them (catch-up runs).
//! - Runs left *running* were cut off: they are recorded as interrupted
//!   and retried if the job's policy retries `interrupted`.
//! - A job row that no longer reads is kept and listed, never deleted.
//!
//! On a store shared by several hosts (issue 11) a host that becomes the
//! leader reads the jobs again ([`take_over`]: the previous leader moved
//! their schedules); unfinished runs are claimed or swept by every host
//! (claim.rs). At start a host only records its own runs (by its host
//! name) that its last stop cut off.

use super::execute;
use super::queue::Due;
use super::{Inner, SchedulerError};
use crate::store::{Leadership, RunRecord, RunStatus};
use std::collections::HashSet;
use std::sync::Arc;

pub(super) async fn recover(inner: &Arc<Inner>) -> Result<(), SchedulerError> {
    // Calendars first: the jobs naming them resolve against them.
    inner.load_calendars().await?;
    let calendars = inner.calendars();
    let snapshot = inner.store.load().await?;
    for broken in &snapshot.broken {
        tracing::error!(job = %broken.id, error = %broken.error, "stored job cannot be read; keeping it untouched");
    }
    inner.lock().jobs.reserve(snapshot.jobs.len());
    // Each record is consumed as it is installed (its spec moves into the
    // job), so the snapshot's memory is given back as it goes rather than
    // doubled; the timer is woken once, at the end.
    for record in snapshot.jobs {
        let id = record.spec.id.clone();
        inner.pause_notes.take_from(&record);
        match record
            .spec
            .into_job_with(record.created_at, &inner.config.default_limits, &calendars)
        {
            Ok(job) => {
                let mut state = inner.lock();
                Inner::install_locked(
                    &mut state,
                    job,
                    record.next_run_time,
                    record.paused,
                    &record.incarnation,
                    false,
                );
            }
            Err(err) => {
                tracing::error!(job = %id, error = %err, "stored job is no longer valid; keeping it untouched");
                inner.lock().broken.push(crate::store::BrokenJob {
                    id,
                    error: err.to_string(),
                });
            }
        }
    }
    inner.lock().broken.extend(snapshot.broken);
    let mut unfinished = snapshot.unfinished;
    if inner.store.leadership().get() != Leadership::Sole {
        let me = Some(inner.config.host_name.as_str());
        unfinished.retain(|r| r.status == RunStatus::Running && r.host.as_deref() == me);
    }
    recover_runs(inner, unfinished).await;
    Ok(())
}

/// This host has just become the leader of a shared store: it takes the
/// stored jobs as they are (installing each, so their next fire times are
/// the previous leader's; dropping those gone). Pending runs need nothing:
/// every host claims them, and the leader's sweep records the runs of
/// hosts that stopped (claim.rs).
pub(super) async fn take_over(inner: &Arc<Inner>) -> Result<(), SchedulerError> {
    let snapshot = inner.store.load().await?;
    let mut stored = HashSet::new();
    for record in snapshot.jobs {
        stored.insert(record.spec.id.clone());
        let id = record.spec.id.clone();
        let generation = inner.lock().jobs.get(id.as_str()).map(|e| e.generation);
        super::reload::apply(inner, &id, Some(record), generation);
    }
    let gone: Vec<(String, u64)> = inner
        .lock()
        .jobs
        .iter()
        .filter(|(id, _)| !stored.contains(&***id))
        .map(|(id, e)| (id.to_string(), e.generation))
        .collect();
    for (id, generation) in gone {
        super::reload::apply(inner, &id, None, Some(generation));
    }
    tracing::info!(
        jobs = stored.len(),
        "took over as leader: jobs read from the store"
    );
    Ok(())
}

/// Starts or queues pending runs, and records running ones as cut off
/// (retried per the job's policy).
async fn recover_runs(inner: &Arc<Inner>, mut unfinished: Vec<RunRecord>) {
    let now = inner.clock.now();
    // Runs cut off first (their retries hold their slots), then pending
    // ones: retries, then first attempts in fire order, each taking a
    // `max_instances` slot while there is one and queueing behind the
    // others when there is not (catch-up runs recorded before a restart
    // still run one after another).
    unfinished.sort_by(|a, b| {
        let key = |r: &RunRecord| {
            (
                r.status == RunStatus::Pending,
                r.attempt == 1,
                r.scheduled_at,
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.run_id.cmp(&b.run_id))
    });
    for mut run in unfinished {
        let Some(job) = inner.lock().entry_for(&run).map(|e| e.job.clone()) else {
            continue;
        };
        match run.status {
            RunStatus::Pending => {
                let mut state = inner.lock();
                let Some(entry) = state.entry_for(&run) else {
                    continue;
                };
                if run.attempt == 1 && entry.in_flight >= job.spec.max_instances {
                    entry.queued.push_back(run);
                } else {
                    entry.in_flight += 1;
                    let at = run.due_at;
                    state.queue.push(at, Due::Run(Box::new(run)));
                }
            }
            _ => {
                run.status = RunStatus::Interrupted;
                run.ended_at = Some(now);
                let note = "the host stopped while the run was in flight".to_owned();
                run.note = Some(note.clone());
                tracing::warn!(job = %run.job_id, run = %run.run_id, "{note}");
                if let Some(entry) = inner.lock().entry_for(&run) {
                    entry.in_flight += 1;
                }
                let end = execute::End::Ran {
                    kind: "interrupted",
                    guest_retryable: true,
                };
                execute::finish(inner, &job, run, end, Some(note), now).await;
            }
        }
    }
    inner.wake.notify_one();
}
