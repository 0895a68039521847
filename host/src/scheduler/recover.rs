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

use super::execute;
use super::queue::Due;
use super::{Inner, SchedulerError};
use crate::store::{RunRecord, RunStatus};
use std::sync::Arc;

pub(super) async fn recover(inner: &Arc<Inner>) -> Result<(), SchedulerError> {
    let snapshot = inner.store.load().await?;
    let now = inner.clock.now();
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

    // Runs cut off first (their retries hold their slots), then pending
    // ones: retries, then first attempts in fire order, each taking a
    // `max_instances` slot while there is one and queueing behind the
    // others when there is not (catch-up runs recorded before a restart
    // still run one after another).
    let mut unfinished = snapshot.unfinished;
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
    Ok(())
}
