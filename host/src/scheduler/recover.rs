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
//! On a store shared by several hosts (issue 11) only the leader picks up
//! unfinished runs, when it takes over ([`take_over`]): it reads the jobs
//! again (the previous leader moved their schedules) and the runs the
//! previous leader left. At start a host only records its own runs (by
//! its host name) that its last stop cut off.

use super::execute;
use super::queue::Due;
use super::{Inner, SchedulerError};
use crate::store::{Leadership, RunRecord, RunStatus};
use std::collections::HashSet;
use std::sync::Arc;

pub(super) async fn recover(inner: &Arc<Inner>) -> Result<(), SchedulerError> {
    let snapshot = inner.store.load().await?;
    for broken in &snapshot.broken {
        tracing::error!(job = %broken.id, error = %broken.error, "stored job cannot be read; keeping it untouched");
    }
    for record in snapshot.jobs {
        match record
            .spec
            .validate(record.created_at, &inner.config.default_limits)
        {
            Ok(job) => {
                inner.install(
                    job,
                    record.next_run_time,
                    record.paused,
                    &record.incarnation,
                    false,
                );
            }
            Err(err) => {
                tracing::error!(job = %record.spec.id, error = %err, "stored job is no longer valid; keeping it untouched");
                inner.lock().broken.push(crate::store::BrokenJob {
                    id: record.spec.id.clone(),
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
/// stored jobs as they are (installing each, dropping those gone), and
/// the runs left unfinished that no live task of its own handles: pending
/// ones (they start) and running ones of the host that led before, of no
/// host, or of this host's name from an earlier start (interrupted, then
/// retried per policy). Running runs of other hosts (manual runs they
/// execute) are theirs.
pub(super) async fn take_over(
    inner: &Arc<Inner>,
    previous: Option<String>,
) -> Result<(), SchedulerError> {
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
    if inner.shared {
        // Pending runs are claimed by every host, and the runs of hosts
        // that stopped are found by the sweep (claim.rs).
        tracing::info!(
            jobs = stored.len(),
            "took over as leader: jobs read from the store"
        );
        return Ok(());
    }
    let mine: HashSet<String> = {
        let state = inner.lock();
        let mut ids: HashSet<String> = inner.local().clone();
        ids.extend(state.queue.run_ids().map(str::to_owned));
        for entry in state.jobs.values() {
            ids.extend(entry.queued.iter().map(|r| r.run_id.clone()));
        }
        ids
    };
    let me = inner.config.host_name.as_str();
    let mut unfinished = snapshot.unfinished;
    unfinished.retain(|r| {
        !mine.contains(&r.run_id)
            && match r.status {
                RunStatus::Pending => true,
                _ => match r.host.as_deref() {
                    None => true,
                    Some(h) => h == me || previous.as_deref() == Some(h),
                },
            }
    });
    tracing::info!(
        jobs = stored.len(),
        runs = unfinished.len(),
        "took over as leader: jobs read from the store, unfinished runs picked up"
    );
    recover_runs(inner, unfinished).await;
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
                execute::finish(inner, &job, run, "interrupted", true, Some(note), now).await;
            }
        }
    }
    inner.wake.notify_one();
}
