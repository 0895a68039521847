//! Pure schedule math: when is a job next due?
//!
//! A [`TriggerSpec`] is what people write (config file, API body); it is
//! validated once into a [`Trigger`], whose [`Trigger::next_after`] gives
//! the first fire time strictly after an instant, or `None` when the
//! schedule is over. No I/O, no clock reads, no tokio: the scheduler owns
//! time, and these functions are tested exhaustively on their own.

pub mod calendar;
pub mod cron;
pub mod preview;
pub mod spec;

pub use spec::{TriggerError, TriggerSpec};

use calendar::Exclusions;
use chrono::{DateTime, Duration, Utc};
use cron::CronSchedule;
use std::sync::Arc;

/// A validated schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    kind: Kind,
    /// Bounds and jitter, boxed: most triggers have none, and a host keeps
    /// one trigger per job (this halves a trigger's 96 bytes).
    extras: Option<Box<Extras>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Extras {
    /// No fire before this instant.
    start: Option<DateTime<Utc>>,
    /// No fire after this instant.
    end: Option<DateTime<Utc>>,
    /// A deterministic delay in `[0, jitter)` added to each nominal time.
    jitter: Option<Jitter>,
    /// Days on which fires do not happen (a job's `exclude`); only ever
    /// set on a job's top-level trigger.
    exclude: Option<Arc<Exclusions>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Shared by every trigger with the same expression and zone
    /// ([`CronSchedule::shared`]).
    Cron(Arc<CronSchedule>),
    /// Fires at `anchor + k * every`, k ≥ 0: the k-th fire never drifts,
    /// however long runs take.
    Interval {
        anchor: DateTime<Utc>,
        every: Duration,
    },
    Date(DateTime<Utc>),
    Any(Vec<Trigger>),
    All(Vec<Trigger>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Jitter {
    max: Duration,
    seed: u64,
}

/// `all` gives up after this many rounds without agreement (APScheduler's
/// AndTrigger does the same) rather than searching forever.
const ALL_MAX_ROUNDS: usize = 10_000;

/// A search for the next fire gives up after this many excluded days in a
/// row (ten years of them: a calendar that excludes every day a schedule
/// fires on leaves it no fire).
pub const MAX_EXCLUDED_DAYS: usize = 3_660;

/// One search evaluates at most this many triggers, however `any` and `all`
/// nest: each `all` round asks every trigger inside it, so without a
/// shared budget an `all` inside an `all` multiplied their rounds (a
/// 300-byte API body kept a search busy for minutes).
/// Enough for an `all` of ten triggers to use all its rounds.
const MAX_EVALUATIONS: usize = 10 * ALL_MAX_ROUNDS;

impl Trigger {
    /// A cron trigger with no bounds or jitter.
    pub fn cron(schedule: CronSchedule) -> Self {
        Self::plain(Kind::Cron(Arc::new(schedule)))
    }

    fn plain(kind: Kind) -> Self {
        Self { kind, extras: None }
    }

    /// A trigger of `kind` with these bounds and jitter.
    fn bounded(
        kind: Kind,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        jitter: Option<Jitter>,
    ) -> Self {
        let extras = (start.is_some() || end.is_some() || jitter.is_some()).then(|| {
            Box::new(Extras {
                start,
                end,
                jitter,
                exclude: None,
            })
        });
        Self { kind, extras }
    }

    /// This trigger, skipping every fire on a day `exclude` excludes
    /// (`None`: none).
    #[must_use]
    pub fn with_exclusions(mut self, exclude: Option<Arc<Exclusions>>) -> Self {
        match (&mut self.extras, exclude) {
            (Some(extras), exclude) => extras.exclude = exclude,
            (None, None) => {}
            (None, Some(exclude)) => {
                self.extras = Some(Box::new(Extras {
                    start: None,
                    end: None,
                    jitter: None,
                    exclude: Some(exclude),
                }));
            }
        }
        self
    }

    /// What it excludes, if anything.
    pub fn exclusions(&self) -> Option<&Exclusions> {
        self.extras.as_ref().and_then(|e| e.exclude.as_deref())
    }

    fn start(&self) -> Option<DateTime<Utc>> {
        self.extras.as_ref().and_then(|e| e.start)
    }

    fn end(&self) -> Option<DateTime<Utc>> {
        self.extras.as_ref().and_then(|e| e.end)
    }

    fn jitter(&self) -> Option<Jitter> {
        self.extras.as_ref().and_then(|e| e.jitter)
    }

    /// The first fire time strictly after `after`, or `None` when the
    /// schedule has no more fires. A fire on a day the trigger's
    /// exclusions exclude is no fire; a search that finds only excluded
    /// days for [`MAX_EXCLUDED_DAYS`] in a row gives up.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut budget = MAX_EVALUATIONS;
        let Some(exclude) = self.exclusions() else {
            return self.unexcluded_after(after, &mut budget);
        };
        let mut from = after;
        for _ in 0..MAX_EXCLUDED_DAYS {
            let next = self.unexcluded_after(from, &mut budget)?;
            if exclude.excluded_by(next).is_none() {
                return Some(next);
            }
            // Nothing else on that day can fire either: go on from the
            // next day's first instant (a fire at it counts).
            let day = exclude.next_day(next)?;
            from = day.checked_sub_signed(Duration::nanoseconds(1))?.max(next);
        }
        None
    }

    /// The first fire time strictly after `after`, exclusions not applied,
    /// with the calendar that excludes it, if one does: what previews list
    /// (an excluded fire is shown as skipped).
    pub fn preview_after(&self, after: DateTime<Utc>) -> Option<(DateTime<Utc>, Option<&str>)> {
        let mut budget = MAX_EVALUATIONS;
        let next = self.unexcluded_after(after, &mut budget)?;
        Some((next, self.exclusions().and_then(|e| e.excluded_by(next))))
    }

    /// [`Self::next_after`] without exclusions.
    fn unexcluded_after(&self, after: DateTime<Utc>, budget: &mut usize) -> Option<DateTime<Utc>> {
        let next = self.next_within(after, budget);
        // A search that ran out gives up, as an `all` out of rounds does:
        // what it found so far may not be the earliest fire.
        next.filter(|_| *budget > 0)
    }

    /// [`Self::next_after`], counting this trigger and those inside it
    /// against `budget`; `None` once it is spent.
    fn next_within(&self, after: DateTime<Utc>, budget: &mut usize) -> Option<DateTime<Utc>> {
        *budget = budget.checked_sub(1)?;
        // Fires at exactly `start` count: search from just before it.
        let after = match self.start() {
            Some(start) if after < start => start
                .checked_sub_signed(Duration::nanoseconds(1))
                .unwrap_or(start),
            _ => after,
        };
        let next = match self.jitter() {
            None => self.nominal_after(after, budget),
            Some(j) => self.jittered_after(after, j, budget),
        };
        let end = self.end();
        next.filter(|t| end.is_none_or(|end| *t <= end))
    }

    /// The earliest jittered fire strictly after `after`.
    ///
    /// A fire comes up to `max` after its nominal time, so nominal times
    /// from `max` before `after` may still be due after it. Validation
    /// keeps `max` below the time between two nominal fires, so fires keep
    /// their nominal order and the first one past `after` is the answer;
    /// the search still takes the earliest (a daylight-saving day can bring
    /// two cron fires closer than that), which costs nothing more: no
    /// nominal time at or past a fire already found can beat it. With
    /// `max` below the gap, this looks at two or three nominal times.
    fn jittered_after(
        &self,
        after: DateTime<Utc>,
        j: Jitter,
        budget: &mut usize,
    ) -> Option<DateTime<Utc>> {
        let from = after
            .checked_sub_signed(j.max)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut best: Option<DateTime<Utc>> = None;
        let mut nominal = self.nominal_after(from, budget);
        while let Some(n) = nominal {
            if best.is_some_and(|b| n >= b) {
                break;
            }
            // A fire past the end of chrono's calendar is no fire.
            if let Some(fire) = n.checked_add_signed(j.offset(n))
                && fire > after
                && best.is_none_or(|b| fire < b)
            {
                best = Some(fire);
            }
            nominal = self.nominal_after(n, budget);
        }
        best
    }

    fn nominal_after(&self, after: DateTime<Utc>, budget: &mut usize) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(c) => c.next_after(after),
            Kind::Interval { anchor, every } => {
                if after < *anchor {
                    return Some(*anchor);
                }
                let elapsed = (after - *anchor).num_milliseconds();
                let step = every.num_milliseconds().max(1);
                let k = elapsed / step + 1;
                anchor.checked_add_signed(Duration::milliseconds(k.checked_mul(step)?))
            }
            Kind::Date(at) => (*at > after).then_some(*at),
            Kind::Any(triggers) => triggers
                .iter()
                .filter_map(|t| t.next_within(after, budget))
                .min(),
            Kind::All(triggers) => {
                let mut from = after;
                for _ in 0..ALL_MAX_ROUNDS {
                    let times: Option<Vec<_>> = triggers
                        .iter()
                        .map(|t| t.next_within(from, budget))
                        .collect();
                    let times = times?;
                    let latest = *times.iter().max()?;
                    if times.iter().all(|t| *t == latest) {
                        return Some(latest);
                    }
                    // Every trigger's next time at or after the latest one.
                    from = latest - Duration::nanoseconds(1);
                }
                None
            }
        }
    }

    /// Warnings for people (for example: a cron expression whose day
    /// fields are ORed), from this trigger and any it combines.
    pub fn warnings(&self) -> Vec<String> {
        match &self.kind {
            Kind::Cron(c) => c.warning().into_iter().collect(),
            Kind::Any(ts) | Kind::All(ts) => ts.iter().flat_map(Trigger::warnings).collect(),
            Kind::Interval { .. } | Kind::Date(_) => Vec::new(),
        }
    }
}

impl Jitter {
    /// A stable pseudo-random offset for one nominal time (splitmix64 of
    /// the seed and the time): the same job fires at the same jittered
    /// times across restarts and hosts, so jitter never duplicates or
    /// loses a fire.
    fn offset(self, nominal: DateTime<Utc>) -> Duration {
        let max_ms = self.max.num_milliseconds().max(1) as u64;
        let mut z = self
            .seed
            .wrapping_add(nominal.timestamp_millis() as u64)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Duration::milliseconds((z % max_ms) as i64)
    }
}

#[cfg(test)]
mod tests;
