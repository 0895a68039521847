//! Taking a job's state from the store when the stored state moved
//! without this scheduler: a fire of it was refused as stale (issue 11's
//! compare-and-set), or another host changed it.

use super::Inner;
use crate::event::Event;
use crate::store::JobRecord;

/// Installs `record` (the job as stored now; `None`: it is gone) in place
/// of the scheduler's entry for `job_id`. With `generation`, only if the
/// entry is still at that generation: a local change made since has
/// written its own state, which stands.
pub(super) fn apply(
    inner: &Inner,
    job_id: &str,
    record: Option<JobRecord>,
    generation: Option<u64>,
) {
    let job = match &record {
        Some(r) => match r.spec.validate(r.created_at, &inner.config.default_limits) {
            Ok(job) => Some(job),
            Err(err) => {
                tracing::error!(job = %job_id, error = %err, "stored job is no longer valid; keeping the scheduler's copy");
                return;
            }
        },
        None => None,
    };
    let mut state = inner.lock();
    let current = state.jobs.get(job_id).map(|e| e.generation);
    if generation.is_some() && current != generation {
        return;
    }
    match (record, job) {
        (Some(record), Some(job)) => {
            Inner::install_locked(
                &mut state,
                job,
                record.next_run_time,
                record.paused,
                &record.incarnation,
                false,
            );
            drop(state);
            inner.wake.notify_one();
        }
        _ => {
            if state.jobs.remove(job_id).is_some() {
                drop(state);
                tracing::info!(job = %job_id, "the job was deleted elsewhere");
                inner
                    .events
                    .publish(Event::JobRemoved(inner.job_event(job_id)));
            }
        }
    }
}
