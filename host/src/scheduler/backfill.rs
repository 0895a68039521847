//! Backfill (issue 13): run every fire a job's schedule had in a past
//! range, as runs of origin `backfill`, behind live fires.
//!
//! The range's fire times are computed at once (the trigger's own, jitter
//! included), refused beyond [`MAX_BACKFILL_FIRES`]; a task of the
//! scheduler then records and starts them in order, one at a time under
//! `buffer-all` (the default), as instances allow under `allow-all`, and
//! records those that find a run going `skipped` under `skip`. Before each
//! it waits until at least a quarter of the workers are free, so a backfill
//! never takes the workers live fires need. A fire is recorded only when it
//! starts: a backfill cut short by a shutdown leaves the rest unrecorded
//! (the log says from where), and asking again for the rest is safe.

use super::manual::{Submit, submit};
use super::{Inner, Scheduler, SchedulerError, execute};
use crate::event::Event;
use crate::job::Overlap;
use crate::store::{RunOrigin, RunRecord, RunStatus, Write};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// The most fires one backfill may run; a longer range is refused with its
/// count.
pub const MAX_BACKFILL_FIRES: usize = 10_000;

/// Fires counted at most, to say how many a refused range holds.
const MAX_COUNTED: usize = 1_000_000;

/// How often a backfill looks again while it waits (for free workers, a
/// free instance, or its run's end).
const POLL: Duration = Duration::from_millis(50);

/// A backfill, as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillRange {
    /// The range's first instant (inclusive).
    pub from: DateTime<Utc>,
    /// Its last instant (inclusive); not after now.
    pub to: DateTime<Utc>,
    /// How the backfill's runs overlap: `buffer-all` (one after another,
    /// the default), `allow-all` (up to `max_instances` at once) or `skip`
    /// (a fire that finds a run of the job going is recorded skipped).
    pub overlap: Overlap,
}

/// A backfill that was started.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BackfillStarted {
    /// The job.
    pub job_id: String,
    /// How many fires it runs.
    pub fires: usize,
    /// The first fire time, `null` when the range holds none.
    pub first: Option<DateTime<Utc>>,
    /// The last fire time, `null` when the range holds none.
    pub last: Option<DateTime<Utc>>,
    /// The overlap policy its runs follow.
    pub overlap: Overlap,
}

impl Scheduler {
    /// Starts a backfill of job `id` over `range`: every fire its schedule
    /// had in it runs, in order, recorded with cause `backfill`.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`]; [`SchedulerError::BadRequest`]
    /// naming `from`, `to` or `overlap` for a range that is reversed or
    /// reaches into the future, one holding more than
    /// [`MAX_BACKFILL_FIRES`] fires (the message says how many), or a
    /// policy other than `buffer-all`, `allow-all` and `skip`.
    pub async fn backfill(
        &self,
        id: &str,
        range: BackfillRange,
    ) -> Result<BackfillStarted, SchedulerError> {
        let inner = &self.inner;
        inner.check_running()?;
        self.adopt_stored(id).await?;
        let bad = |field: &'static str, problem: String| SchedulerError::BadRequest {
            field: field.to_owned(),
            problem,
        };
        if !matches!(
            range.overlap,
            Overlap::BufferAll | Overlap::AllowAll | Overlap::Skip
        ) {
            return Err(bad(
                "overlap",
                format!(
                    "overlap: a backfill's runs may be \"buffer-all\" (one after another, the \
                     default), \"allow-all\" (up to max_instances at once) or \"skip\", not \
                     \"{}\"",
                    range.overlap.as_str()
                ),
            ));
        }
        if range.from > range.to {
            return Err(bad(
                "from",
                format!(
                    "from: {} is after to ({}); give the earlier instant as from",
                    range.from, range.to
                ),
            ));
        }
        let now = inner.clock.now();
        if range.to > now {
            return Err(bad(
                "to",
                format!(
                    "to: {} is in the future (now is {now}); a backfill runs past fires only, \
                     the schedule runs the rest",
                    range.to
                ),
            ));
        }
        let (trigger, incarnation) = {
            let state = inner.lock();
            let entry = state
                .jobs
                .get(id)
                .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))?;
            // Its fires would all be missed: say so now instead.
            inner.plugin_loaded(id, &entry.job.spec.plugin)?;
            (entry.job.trigger.clone(), entry.incarnation.to_string())
        };
        // Fires exactly at `from` count: start a millisecond before it.
        let mut fires = Vec::new();
        let mut counted = 0;
        let mut next = trigger.next_after(range.from - chrono::Duration::milliseconds(1));
        while let Some(t) = next.filter(|t| *t <= range.to) {
            counted += 1;
            if counted > MAX_COUNTED {
                break;
            }
            if fires.len() < MAX_BACKFILL_FIRES {
                fires.push(t);
            }
            next = trigger.next_after(t);
        }
        if counted > MAX_BACKFILL_FIRES {
            let many = if counted > MAX_COUNTED {
                format!("more than {MAX_COUNTED}")
            } else {
                counted.to_string()
            };
            return Err(bad(
                "to",
                format!(
                    "to: the range holds {many} fires, more than the {MAX_BACKFILL_FIRES} one \
                     backfill may run; split it into smaller ranges"
                ),
            ));
        }
        let started = BackfillStarted {
            job_id: id.to_owned(),
            fires: fires.len(),
            first: fires.first().copied(),
            last: fires.last().copied(),
            overlap: range.overlap,
        };
        if !fires.is_empty() {
            tracing::info!(job = id, fires = fires.len(), from = %range.from, to = %range.to, overlap = range.overlap.as_str(), "backfill started");
            let task = inner.clone();
            let id = id.to_owned();
            let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            let label = format!("{}..{}", rfc(range.from), rfc(range.to));
            // On the scheduler's runtime: the API asks from a runtime of
            // its own, which stops first at shutdown (a task there was
            // dropped before it could say where the backfill stopped).
            inner.tasks.spawn_on(
                async move {
                    run(&task, (&id, &incarnation), fires, range.overlap, &label).await;
                },
                &inner.handle,
            );
        }
        Ok(started)
    }
}

/// Runs a backfill's fires in order until done, the job is deleted, or
/// the scheduler stops.
async fn run(
    inner: &Arc<Inner>,
    (id, incarnation): (&str, &str),
    fires: Vec<DateTime<Utc>>,
    overlap: Overlap,
    label: &str,
) {
    let n = fires.len();
    for (i, at) in fires.into_iter().enumerate() {
        let note = format!("backfill {label}: fire {} of {n}", i + 1);
        loop {
            // Live fires first: wait for free workers.
            while inner.workers.available_permits() <= inner.config.workers / 4 {
                if !pause(inner).await {
                    return stopped(id, i, n, at);
                }
            }
            if inner.stop_firing.is_cancelled() {
                return stopped(id, i, n, at);
            }
            match submit(
                inner,
                Submit {
                    note: Some(note.clone()),
                    incarnation: Some(incarnation),
                    ..Submit::new(id, at, RunOrigin::Backfill)
                },
            )
            .await
            {
                Ok(run) => {
                    if overlap == Overlap::BufferAll && !ended(inner, &run).await {
                        // This fire is recorded (and ends as the shutdown
                        // says); the next is not.
                        stopped(id, i + 1, n, at + chrono::Duration::milliseconds(1));
                        return;
                    }
                    break;
                }
                Err(e @ SchedulerError::MaxInstances { .. }) if overlap == Overlap::Skip => {
                    not_run(
                        inner,
                        (id, incarnation),
                        at,
                        RunStatus::Skipped,
                        format!("{note}: {e}"),
                    )
                    .await;
                    break;
                }
                Err(SchedulerError::MaxInstances { .. }) => {
                    // Waits for a free instance.
                    if !pause(inner).await {
                        return stopped(id, i, n, at);
                    }
                }
                Err(e @ SchedulerError::PluginNotLoaded { .. }) => {
                    not_run(
                        inner,
                        (id, incarnation),
                        at,
                        RunStatus::Missed,
                        format!("{note}: {e}"),
                    )
                    .await;
                    break;
                }
                Err(SchedulerError::JobNotFound(_)) => {
                    tracing::warn!(
                        job = id,
                        done = i,
                        fires = n,
                        "backfill stopped: the job was deleted (or deleted and added again: another job)"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(job = id, error = %e, "backfill: could not record a fire; trying again in a second");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = inner.stop_firing.cancelled() => return stopped(id, i, n, at),
                    }
                }
            }
        }
    }
    tracing::info!(job = id, fires = n, "backfill done");
}

/// Sleeps a little; false when the scheduler is stopping.
async fn pause(inner: &Inner) -> bool {
    tokio::select! {
        () = tokio::time::sleep(POLL) => true,
        () = inner.stop_firing.cancelled() => false,
    }
}

/// Waits until `run` (and the retries it leaves) has ended; false when the
/// scheduler stops first.
async fn ended(inner: &Inner, run: &RunRecord) -> bool {
    loop {
        match inner.store.run_summary(&run.run_id).await {
            Ok(Some(r)) if !matches!(r.status, RunStatus::Pending | RunStatus::Running) => {
                return true;
            }
            // Deleted with its job.
            Ok(None) => return true,
            _ => {}
        }
        if !pause(inner).await {
            return false;
        }
    }
}

fn stopped(id: &str, done: usize, n: usize, at: DateTime<Utc>) {
    tracing::warn!(
        job = id,
        done,
        fires = n,
        from = %at,
        "backfill stopped by the shutdown; its fires from `from` on were not recorded: \
         backfill from there again to run them"
    );
}

/// Records a backfill fire that did not run, and why.
async fn not_run(
    inner: &Inner,
    (id, incarnation): (&str, &str),
    at: DateTime<Utc>,
    status: RunStatus,
    note: String,
) {
    let now = inner.clock.now();
    let run = RunRecord {
        origin: RunOrigin::Backfill,
        ..RunRecord::not_run(id, at, status, note.clone()).of(incarnation)
    };
    let event = execute::run_event(&run, now, None, Some(note));
    if inner.store.write(vec![Write::Run(run)]).await.is_ok() {
        inner.events.publish(if status == RunStatus::Skipped {
            Event::RunSkipped(event)
        } else {
            Event::RunMissed(event)
        });
    }
}
