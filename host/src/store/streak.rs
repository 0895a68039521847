//! Failed runs in a row, counted from a job's run history (issue 13:
//! `pause_after_failures` and a listener's `after_failures`).
//!
//! Counted from the store, not from one host's memory: on a shared
//! PostgreSQL store any host may have run the job's newest runs. The rule
//! (the same for every backend, which all read it through
//! [`super::JobStore::run_summaries`]):
//!
//! - runs are read newest first (by scheduled time, then run id);
//! - a fire counts once: of the rows of one fire (its scheduled time and
//!   origin) only the newest attempt is looked at, so a fire whose retry
//!   is still pending or running does not count yet, and one whose last
//!   attempt failed counts one failure however many attempts it took;
//! - a finished run that failed (failed, trapped, out of fuel, timed out,
//!   memory limit) counts; one that succeeded ends the streak;
//! - `interrupted` runs neither count nor end it: the host stopped them
//!   (a shutdown, a crash, a host cut off), which says nothing of the job;
//! - missed and skipped rows are fires that did not run: not runs, passed
//!   over;
//! - a run that ended at or before the job's last resume
//!   ([`super::JobRecord::failures_from`]) ends the streak (at: a run
//!   ending in the resume's millisecond is taken as before it, as a run
//!   that ended just before the resume often has the same time to the
//!   millisecond, and a manual test clock always does).

use super::{JobStore, RunStatus, RunSummary, StoreError};
use crate::store::RunOrigin;
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// The most runs read to count one streak (a job whose history holds
/// thousands of missed rows between failures counts what is within it).
pub const STREAK_SCAN_LIMIT: usize = 10_000;

/// Runs read per page.
const PAGE: usize = 256;

/// A job's failed runs in a row, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureStreak {
    /// How many (capped at what was asked for).
    pub count: u32,
    /// The newest counted failed run's id.
    pub last_failed: Option<String>,
}

/// Counts a streak over runs fed newest first; see the module docs.
#[derive(Debug)]
struct StreakCounter {
    failures_from: Option<DateTime<Utc>>,
    at_most: u32,
    seen: HashSet<(DateTime<Utc>, RunOrigin)>,
    streak: FailureStreak,
    done: bool,
}

impl StreakCounter {
    fn new(
        failures_from: Option<DateTime<Utc>>,
        at_most: u32,
        before_fire: Option<(DateTime<Utc>, RunOrigin)>,
    ) -> Self {
        Self {
            failures_from,
            at_most,
            seen: before_fire.into_iter().collect(),
            streak: FailureStreak::default(),
            done: at_most == 0,
        }
    }

    /// Takes the next (older) run; returns whether the count is settled.
    fn push(&mut self, run: &RunSummary) -> bool {
        if self.done {
            return true;
        }
        if matches!(run.status, RunStatus::Missed | RunStatus::Skipped) {
            return false;
        }
        if !self.seen.insert((run.scheduled_at, run.origin)) {
            // An earlier attempt of a fire already looked at.
            return false;
        }
        match run.status {
            RunStatus::Pending | RunStatus::Running => return false,
            _ => {}
        }
        if let (Some(from), Some(ended)) = (self.failures_from, run.ended_at)
            && ended <= from
        {
            self.done = true;
            return true;
        }
        match (&run.status, &run.outcome) {
            (RunStatus::Interrupted, _) => {}
            (RunStatus::Finished, Some(outcome)) if outcome.is_success() => self.done = true,
            (RunStatus::Finished, Some(_)) => {
                self.streak.count += 1;
                if self.streak.last_failed.is_none() {
                    self.streak.last_failed = Some(run.run_id.clone());
                }
                self.done = self.streak.count >= self.at_most;
            }
            _ => {}
        }
        self.done
    }
}

/// Counts the failed runs in a row at the head of `runs` (newest first),
/// up to `at_most`, passing over runs that ended at or before `failures_from`
/// as the end of the streak. See the module docs for the rule.
pub fn count_streak<'a>(
    runs: impl IntoIterator<Item = &'a RunSummary>,
    failures_from: Option<DateTime<Utc>>,
    at_most: u32,
) -> FailureStreak {
    let mut counter = StreakCounter::new(failures_from, at_most, None);
    for run in runs {
        if counter.push(run) {
            break;
        }
    }
    counter.streak
}

/// [`JobStore::failures_in_a_row`]'s shared body.
pub(super) async fn failures_in_a_row<S: JobStore + ?Sized>(
    store: &S,
    job_id: &str,
    at_most: u32,
    before_fire: Option<(DateTime<Utc>, RunOrigin)>,
) -> Result<FailureStreak, StoreError> {
    let Some(job) = store.job(job_id).await? else {
        return Ok(FailureStreak::default());
    };
    let mut counter = StreakCounter::new(job.failures_from, at_most, before_fire);
    // Paged by cursor so that runs recorded meanwhile do not shift a page
    // (a run seen twice would count twice).
    let (mut seen, mut from) = (0, super::RunsFrom::Offset(0));
    while seen < STREAK_SCAN_LIMIT {
        let page = store
            .run_summaries(job_id, PAGE.min(STREAK_SCAN_LIMIT - seen), from)
            .await?;
        seen += page.runs.len();
        from = match page.runs.last() {
            Some(last) => super::RunsFrom::Before(last.run_id.clone()),
            None => break,
        };
        for run in &page.runs {
            if counter.push(run) {
                return Ok(counter.streak);
            }
        }
        if !page.more || page.runs.is_empty() {
            break;
        }
    }
    Ok(counter.streak)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Outcome;
    use chrono::TimeZone;

    fn run(n: i64, attempt: u32, status: RunStatus, ok: Option<bool>) -> RunSummary {
        let at = Utc.timestamp_opt(1_000_000 + n * 60, 0).single().unwrap();
        RunSummary {
            run_id: format!("r{n}-{attempt}"),
            job_id: "j".into(),
            attempt,
            scheduled_at: at,
            due_at: at,
            status,
            started_at: Some(at),
            ended_at: Some(at + chrono::Duration::seconds(i64::from(attempt))),
            outcome: ok.map(|ok| {
                if ok {
                    Outcome::Succeeded {
                        output: String::new(),
                    }
                } else {
                    Outcome::Failed {
                        message: "no".into(),
                        retryable: true,
                    }
                }
            }),
            fuel: 0,
            plugin_hash: None,
            note: None,
            args: None,
            log_count: 0,
            origin: RunOrigin::Fire,
            cause: crate::store::RunCause::of(RunOrigin::Fire, attempt, None),
            host: None,
            parent_run_id: None,
        }
    }

    use RunStatus::{Finished, Interrupted, Missed, Pending};

    #[test]
    fn counts_fires_not_attempts_and_stops_at_a_success() {
        // Newest first: fire 5 (two failed attempts), a missed fire 4,
        // fire 3 failed, fire 2 interrupted, fire 1 failed, fire 0 ok.
        let runs = [
            run(5, 2, Finished, Some(false)),
            run(5, 1, Finished, Some(false)),
            run(4, 1, Missed, None),
            run(3, 1, Finished, Some(false)),
            run(2, 1, Interrupted, None),
            run(1, 1, Finished, Some(false)),
            run(0, 1, Finished, Some(true)),
            run(-1, 1, Finished, Some(false)),
        ];
        let s = count_streak(&runs, None, 100);
        assert_eq!(s.count, 3);
        assert_eq!(s.last_failed.as_deref(), Some("r5-2"));
        assert_eq!(count_streak(&runs, None, 2).count, 2);
    }

    #[test]
    fn a_fire_whose_retry_is_pending_does_not_count_yet() {
        let runs = [
            run(2, 2, Pending, None),
            run(2, 1, Finished, Some(false)),
            run(1, 1, Finished, Some(false)),
        ];
        assert_eq!(count_streak(&runs, None, 10).count, 1);
    }

    #[test]
    fn a_resume_resets_the_count() {
        let runs = [
            run(3, 1, Finished, Some(false)),
            run(2, 1, Finished, Some(false)),
            run(1, 1, Finished, Some(false)),
        ];
        let from = runs[1].ended_at.unwrap() + chrono::Duration::milliseconds(1);
        assert_eq!(count_streak(&runs, Some(from), 10).count, 1);
        // A run that ended in the resume's very millisecond is before it.
        assert_eq!(count_streak(&runs, runs[1].ended_at, 10).count, 1);
        assert_eq!(count_streak(&runs, runs[0].ended_at, 10).count, 0);
    }
}
