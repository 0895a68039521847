//! Failures in a row (issue 13): pausing a job after
//! `pause_after_failures` failed runs in a row, and counting what a
//! listener's `after_failures` and `recovered` need.
//!
//! The count is read from the store's run history
//! ([`crate::store::JobStore::failures_in_a_row`]), never kept in one
//! host's memory: on a shared PostgreSQL store any host may have run the
//! job's newest runs. It is read only for jobs that need it, once per
//! ended run: a failed run of a job with `pause_after_failures` or a
//! listener with `after_failures`, a succeeded run of a job with a
//! listener that hears `recovered`.
//!
//! An auto-pause is the pause `POST /jobs/{id}/pause` makes plus its
//! reason, written as one compare-and-set
//! ([`crate::store::Write::AutoPause`]) that only takes a job not paused
//! yet: of two hosts ending the failures at once, one pauses the job and
//! sends `job-paused`, the other does nothing. The reason is shown in
//! `GET /jobs/{id}` as `paused_reason` and carried by the event. A resume
//! (through the API, the CLI, or a jobs file whose `paused` changed to
//! false) clears it and resets the count.

use super::{Inner, JobEntry, Scheduler};
use crate::event::Event;
use crate::job::{Job, ListenFor};
use crate::store::{JobRecord, RunRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most failures a recovery's `recovered_after` counts.
const RECOVERED_COUNT_CAP: u32 = 1000;

/// Why jobs were paused by the host itself, by job id, with the
/// incarnation paused (a job deleted and made again under the id does not
/// inherit it). Shown only while the entry is paused, so a stale note
/// says nothing.
#[derive(Debug, Default)]
pub(super) struct PauseNotes(Mutex<HashMap<String, (Arc<str>, String)>>);

impl PauseNotes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<str>, String)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets (or with `None` clears) the note of `job_id`.
    pub(super) fn set(&self, job_id: &str, incarnation: &str, reason: Option<String>) {
        let mut notes = self.lock();
        match reason {
            Some(r) => {
                notes.insert(job_id.to_owned(), (Arc::from(incarnation), r));
            }
            None => {
                notes.remove(job_id);
            }
        }
    }

    /// Takes the note a stored job carries (at start, or when another host
    /// changed it).
    pub(super) fn take_from(&self, record: &JobRecord) {
        let reason = record.paused_reason.clone().filter(|_| record.paused);
        self.set(&record.spec.id, &record.incarnation, reason);
    }

    /// The note shown for `entry`, while it is paused.
    pub(super) fn reason(&self, entry: &JobEntry) -> Option<String> {
        if !entry.paused {
            return None;
        }
        self.lock()
            .get(entry.job.id.as_str())
            .filter(|(inc, _)| entry.incarnation == **inc)
            .map(|(_, r)| r.clone())
    }

    /// Whether `entry`'s note is the host's own (an auto-pause), not a
    /// person's: auto-pause notes start with [`AUTO_PREFIX`].
    pub(super) fn is_auto(&self, entry: &JobEntry) -> bool {
        self.reason(entry)
            .is_some_and(|r| r.starts_with(AUTO_PREFIX))
    }
}

/// How every auto-pause note starts (and a person's note never does: the
/// API refuses one that would).
pub const AUTO_PREFIX: &str = "auto-paused after ";

/// Publishes a run's end `events` (as `finish` made them), first counting
/// the failures in a row the job's settings need and putting them on the
/// events; then pauses the job if this was its `pause_after_failures`th
/// failed run in a row. `fire_over`: the run ended its fire (no retry
/// follows) and its end was recorded by this host.
pub(super) async fn publish_end(
    inner: &Arc<Inner>,
    job: &Job,
    run: &RunRecord,
    kind: &str,
    fire_over: bool,
    mut events: Vec<Event>,
) {
    let succeeded = kind == "succeeded";
    // Interrupted runs neither count nor reset (the host stopped them).
    let failed = !succeeded && kind != "interrupted";
    let pause_at = job.spec.pause_after_failures;
    let after = job
        .listeners
        .iter()
        .filter(|l| l.hears(ListenFor::Failed))
        .filter_map(|l| l.after_failures)
        .max();
    let wants_recovered = job.listeners.iter().any(|l| l.hears(ListenFor::Recovered));
    let at_most = match (failed, succeeded) {
        (true, _) if pause_at.is_some() || after.is_some() => {
            pause_at.unwrap_or(0).max(after.unwrap_or(0))
        }
        // How many failures a success ended, for `recovered_after`.
        (_, true) if wants_recovered => RECOVERED_COUNT_CAP,
        _ => 0,
    };
    let mut pause = None;
    if at_most > 0 {
        let fire = Some((run.scheduled_at, run.origin));
        match inner
            .store
            .failures_in_a_row(&run.job_id, at_most, fire)
            .await
        {
            Ok(before) => {
                let streak = before.count.saturating_add(1);
                for e in &mut events {
                    match e {
                        Event::RunFailed(e) if e.run_id == run.run_id => {
                            e.failures_in_a_row = Some(streak);
                        }
                        Event::RunSucceeded(e) if e.run_id == run.run_id && before.count > 0 => {
                            e.recovered_after = Some(before.count);
                        }
                        _ => {}
                    }
                }
                if failed && fire_over && pause_at.is_some_and(|n| streak >= n) {
                    pause = Some(streak);
                }
            }
            Err(err) => {
                tracing::warn!(job = %run.job_id, run = %run.run_id, error = %err, "could not count the job's failed runs in a row; its pause_after_failures and listener filters skip this run");
            }
        }
    }
    for e in events {
        inner.events.publish(e);
    }
    if let Some(streak) = pause {
        auto_pause(inner, run, streak).await;
    }
}

async fn auto_pause(inner: &Arc<Inner>, run: &RunRecord, streak: u32) {
    let live = inner
        .lock()
        .entry_for(run)
        .map(|e| (e.paused, e.incarnation.clone()));
    let Some((paused, _)) = live else {
        return;
    };
    if paused {
        // Paused meanwhile (by a person, or by another host's count).
        return;
    }
    let reason = format!(
        "{AUTO_PREFIX}{streak} failed runs in a row (last: run {})",
        run.run_id
    );
    let scheduler = Scheduler {
        inner: inner.clone(),
    };
    match scheduler
        .set_paused_with(
            &run.job_id,
            true,
            Some((reason.clone(), run.run_id.clone())),
            None,
        )
        .await
    {
        Ok(Some(_)) => {
            tracing::warn!(job = %run.job_id, run = %run.run_id, failures = streak, "{reason}")
        }
        Ok(None) => {
            tracing::debug!(job = %run.job_id, run = %run.run_id, "already paused in the store; not paused again");
        }
        Err(err) => {
            tracing::error!(job = %run.job_id, error = %err, "could not auto-pause the job after {streak} failed runs in a row");
        }
    }
}
