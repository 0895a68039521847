//! Taking a job's state from the store when the stored state moved
//! without this scheduler: a fire of it was refused as stale (issue 11's
//! compare-and-set), or another host changed it.

use super::Inner;
use crate::event::Event;
use crate::store::JobRecord;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often a host sharing its store looks for other hosts' job changes.
const SYNC_EVERY: Duration = Duration::from_millis(500);

/// Installs `record` (the job as stored now; `None`: it is gone) in place
/// of the scheduler's entry for `job_id`, if the entry is still as the
/// caller saw it before reading the store (`generation`; `None`: there was
/// none): a local change made since has written its own state, which
/// stands.
pub(super) fn apply(
    inner: &Inner,
    job_id: &str,
    record: Option<JobRecord>,
    generation: Option<u64>,
) {
    let job = match &record {
        Some(r) => match r.spec.validate_with(
            r.created_at,
            &inner.config.default_limits,
            &inner.calendars(),
        ) {
            Ok(job) => Some(job),
            Err(err) => {
                tracing::error!(job = %job_id, error = %err, "stored job is no longer valid; keeping the scheduler's copy");
                return;
            }
        },
        None => None,
    };
    let mut state = inner.lock();
    if state.jobs.get(job_id).map(|e| e.generation) != generation {
        return;
    }
    match (record, job) {
        (Some(record), Some(job)) => {
            inner.pause_notes.take_from(&record);
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

/// Keeps this scheduler's jobs in step with the store's while other hosts
/// change them (issue 11): every [`SYNC_EVERY`] it reads the store's jobs
/// revision, and when it moved, every job, installing those whose
/// definition, paused state or incarnation differ from the scheduler's and
/// dropping those gone. Next fire times are not compared: the leader's own
/// are the newest, and a host that becomes leader reads them all anyway.
pub(super) async fn sync_loop(inner: Arc<Inner>) {
    let mut seen: Option<i64> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(SYNC_EVERY) => {}
            () = inner.stop_firing.cancelled() => return,
        }
        let rev = match inner.store.jobs_revision().await {
            Ok(Some(rev)) => rev,
            Ok(None) => return,
            Err(err) => {
                tracing::debug!(error = %err, "could not read the jobs revision");
                continue;
            }
        };
        if seen == Some(rev) {
            continue;
        }
        // Generations before the read: an entry changed locally since is
        // newer than what the read returns.
        let before: HashMap<String, u64> = inner
            .lock()
            .jobs
            .iter()
            .map(|(id, e)| (id.to_string(), e.generation))
            .collect();
        let snapshot = match inner.store.load().await {
            Ok(s) => s,
            Err(err) => {
                tracing::debug!(error = %err, "could not read the jobs");
                continue;
            }
        };
        seen = Some(rev);
        // Another host's calendar change moves the next fires of the jobs
        // naming any calendar (rebuilt against the calendars now).
        match inner.load_calendars().await {
            Ok(true) => {
                let names: Vec<String> = inner.calendars().keys().cloned().collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                if let Err(err) = inner.rebind(&names).await {
                    tracing::debug!(error = %err, "could not move fires after a calendar change");
                }
            }
            Ok(false) => {}
            Err(err) => tracing::debug!(error = %err, "could not read the calendars"),
        }
        let mut stored = std::collections::HashSet::new();
        for record in snapshot.jobs {
            stored.insert(record.spec.id.clone());
            let same = inner
                .lock()
                .jobs
                .get(record.spec.id.as_str())
                .is_some_and(|e| {
                    e.job.spec == record.spec
                        && e.paused == record.paused
                        && e.incarnation == *record.incarnation
                });
            if same {
                continue;
            }
            let id = record.spec.id.clone();
            let generation = before.get(&id).copied();
            apply(&inner, &id, Some(record), generation);
        }
        for (id, generation) in &before {
            if !stored.contains(id) {
                apply(&inner, id, None, Some(*generation));
            }
        }
    }
}
