//! Previews: the fire times a schedule will have, before any of them come.
//!
//! What `wasmcron cron next|explain` print, `GET /cron/next|explain`
//! answer, and `GET /jobs/{id}` lists as `next_fires`, computed in one
//! place so the three cannot disagree with each other or with the
//! scheduler (which asks the same [`Trigger::next_after`]).

use super::Trigger;
use super::calendar::Exclusions;
use super::cron::{CronError, CronSchedule};
use super::spec::{TriggerError, parse_tz};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// How many fire times `GET /jobs/{id}` shows.
pub const JOB_PREVIEW: usize = 5;

/// Why a preview was refused. Each case names the input it is about
/// ([`PreviewError::field`]) and says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    /// A cron expression that does not parse or can never fire.
    #[error("expr: {0}")]
    Expr(#[source] CronError),
    /// An unknown time zone name.
    #[error("tz: unknown time zone '{0}'; use an IANA name such as 'Europe/Berlin' or 'UTC'")]
    Tz(String),
    /// A start instant that is not RFC 3339.
    #[error(
        "after: '{0}' is not an RFC 3339 time; write e.g. 2026-12-01T09:00:00+08:00 or \
         2026-12-01T01:00:00Z (in a URL, percent-encode a `+` offset as %2B)"
    )]
    After(String),
}

impl PreviewError {
    /// The input it is about: `expr`, `tz` or `after`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Expr(_) => "expr",
            Self::Tz(_) => "tz",
            Self::After(_) => "after",
        }
    }
}

/// A cron expression parsed for a preview, with what people are told
/// about it.
#[derive(Debug, Clone)]
pub struct CronPreview {
    /// The schedule.
    pub schedule: CronSchedule,
    /// The expression in words, e.g. "at 09:00 on Monday".
    pub explain: String,
    /// Warnings for people (e.g. cron's rule that a restricted
    /// day-of-month and day-of-week are ORed); empty when there is nothing
    /// surprising.
    pub warnings: Vec<String>,
}

impl CronPreview {
    /// Parses `expr` with its wall times in `tz` (an IANA name; `None`:
    /// UTC).
    ///
    /// # Errors
    /// [`PreviewError::Tz`] for an unknown zone, [`PreviewError::Expr`]
    /// for an expression that does not parse or can never fire.
    pub fn parse(expr: &str, tz: Option<&str>) -> Result<Self, PreviewError> {
        let tz = parse_tz(tz).map_err(|e| match e {
            TriggerError::UnknownTimeZone(name) => PreviewError::Tz(name),
            other => PreviewError::Tz(other.to_string()),
        })?;
        let schedule = CronSchedule::parse(expr, tz).map_err(PreviewError::Expr)?;
        Ok(Self {
            explain: schedule.explain(),
            warnings: schedule.warning().into_iter().collect(),
            schedule,
        })
    }

    /// The zone the wall times are in.
    pub fn tz(&self) -> Tz {
        self.schedule.tz()
    }

    /// The first `count` fire times strictly after `after`, in order
    /// (fewer if the schedule ends, which a checked expression does not).
    pub fn next(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        successive(|t| self.schedule.next_after(t), Some(after), count, false)
    }
}

/// Parses an RFC 3339 instant (any offset) for `after`.
///
/// # Errors
/// [`PreviewError::After`], holding the text as given.
pub fn parse_after(text: &str) -> Result<DateTime<Utc>, PreviewError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| PreviewError::After(text.to_owned()))
}

/// A job's next `count` fires: `first` (the fire the scheduler has
/// planned, `None` when the trigger has none left) and the ones
/// [`Trigger::next_after`] gives after it, jitter and exclusions
/// included: the instants the scheduler will fire, in order. The fires its
/// calendars skip are in [`excluded_fires`].
pub fn job_fires(
    trigger: &Trigger,
    first: Option<DateTime<Utc>>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    successive(|t| trigger.next_after(t), first, count, true)
}

/// A fire a preview lists: when, and the calendar that excludes it, if one
/// does (then it does not happen).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PreviewFire {
    /// The instant (RFC 3339, UTC).
    pub at: DateTime<Utc>,
    /// The calendar that excludes it (`exclude` for a date the job gives
    /// inline); absent for a fire that happens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_by: Option<String>,
}

/// The fires after `after`, in order, until `count` that happen (or the
/// schedule ends), with those `exclusions` exclude among them marked: at
/// most `count` excluded ones are listed; past that, excluded days are
/// passed over unlisted. `next` gives the next fire without exclusions.
pub fn with_exclusions(
    next: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
    exclusions: Option<&Exclusions>,
    after: DateTime<Utc>,
    count: usize,
) -> Vec<PreviewFire> {
    let mut fires = Vec::with_capacity(count.min(1000));
    let (mut happen, mut excluded) = (0, 0);
    let mut at = after;
    // Every step lists a fire or passes a day: bounded as the scheduler's
    // own search is.
    for _ in 0..(2 * count + super::MAX_EXCLUDED_DAYS) {
        if happen >= count {
            break;
        }
        let Some(t) = next(at) else { break };
        match exclusions.and_then(|e| e.excluded_by(t)) {
            None => {
                happen += 1;
                fires.push(PreviewFire {
                    at: t,
                    excluded_by: None,
                });
                at = t;
            }
            Some(name) => {
                excluded += 1;
                if excluded <= count {
                    fires.push(PreviewFire {
                        at: t,
                        excluded_by: Some(name.to_owned()),
                    });
                    at = t;
                } else {
                    let Some(day) = exclusions.and_then(|e| e.next_day(t)) else {
                        break;
                    };
                    at = (day - chrono::Duration::nanoseconds(1)).max(t);
                }
            }
        }
    }
    fires
}

/// The fires of `trigger` its exclusions skip, after `after` and up to
/// `until`, among the first `count` * 2 fires and exclusions: what `GET
/// /jobs/{id}` lists as `excluded_fires` beside its `count` `next_fires`.
pub fn excluded_fires(
    trigger: &Trigger,
    after: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    count: usize,
) -> Vec<PreviewFire> {
    let Some(exclusions) = trigger.exclusions() else {
        return Vec::new();
    };
    with_exclusions(
        |t| trigger.preview_after(t).map(|(t, _)| t),
        Some(exclusions),
        after,
        count.saturating_mul(2),
    )
    .into_iter()
    .filter(|f| f.excluded_by.is_some() && until.is_none_or(|u| f.at < u))
    .collect()
}

/// `count` instants: `start` itself when `included`, then each the next
/// after the one before.
fn successive(
    next: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
    start: Option<DateTime<Utc>>,
    count: usize,
    included: bool,
) -> Vec<DateTime<Utc>> {
    let mut times = Vec::with_capacity(count.min(1000));
    let mut at = match start {
        Some(s) if included => Some(s),
        Some(s) => next(s),
        None => None,
    };
    while let Some(t) = at {
        if times.len() >= count {
            break;
        }
        times.push(t);
        at = next(t);
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::TriggerSpec;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_after(s).expect("time")
    }

    #[test]
    fn cron_next_crosses_a_dst_change_in_its_zone() {
        let p = CronPreview::parse("30 2 * * *", Some("Europe/Berlin")).expect("parse");
        let times = p.next(utc("2026-03-28T00:00:00Z"), 3);
        // 02:30 does not exist on 29 March in Berlin: it fires at 03:00 CEST.
        assert_eq!(
            times,
            vec![
                utc("2026-03-28T02:30:00+01:00"),
                utc("2026-03-29T03:00:00+02:00"),
                utc("2026-03-30T02:30:00+02:00"),
            ]
        );
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn errors_name_their_input() {
        let e = CronPreview::parse("0 25 * * *", None).expect_err("bad hour");
        assert_eq!(e.field(), "expr");
        let e = CronPreview::parse("0 9 * * *", Some("Mars/Olympus")).expect_err("bad zone");
        assert_eq!(e.field(), "tz");
        assert!(e.to_string().contains("Mars/Olympus"));
        let e = parse_after("tomorrow").expect_err("bad time");
        assert_eq!(e.field(), "after");
        assert!(e.to_string().contains("tomorrow"));
    }

    #[test]
    fn or_day_expressions_warn() {
        let p = CronPreview::parse("0 9 1 * mon", None).expect("parse");
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    }

    #[test]
    fn job_fires_start_at_the_planned_fire_and_stop_when_the_trigger_ends() {
        let now = utc("2026-01-01T00:00:00Z");
        let spec: TriggerSpec = serde_json::from_value(serde_json::json!(
            {"type": "interval", "every": "10m", "end": "2026-01-01T00:35:00Z"}
        ))
        .expect("spec");
        let trigger = spec.build(now, 7).expect("build");
        let first = trigger.next_after(now);
        let fires = job_fires(&trigger, first, 5);
        assert_eq!(
            fires,
            vec![
                utc("2026-01-01T00:10:00Z"),
                utc("2026-01-01T00:20:00Z"),
                utc("2026-01-01T00:30:00Z"),
            ]
        );
        assert!(job_fires(&trigger, None, 5).is_empty());
        assert_eq!(job_fires(&trigger, first, 1).len(), 1);
    }
}
