//! What people write for a trigger, and its validation into a [`Trigger`].

use super::cron::{CronError, CronSchedule};
use super::{Jitter, Kind, Trigger};
use crate::duration::{self, DurationError};
use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A trigger as written in a config file or API body, tagged by `type`:
///
/// ```json
/// {"type": "cron", "expr": "0 9 * * mon", "tz": "Asia/Shanghai"}
/// {"type": "interval", "every": "30s"}
/// {"type": "date", "at": "2026-12-01T09:00:00+08:00"}
/// {"type": "any", "triggers": [{"type": "cron", "expr": "0 9 * * *"}, {"type": "interval", "every": "6h"}]}
/// ```
///
/// Times are RFC 3339 with an offset, except `date.at`, which may also be a
/// local time (`2026-12-01T09:00:00`) read in `tz`.
//
// The optional texts are `Box<str>` rather than `String` (16 bytes each,
// not 24): a host keeps every job's trigger spec in memory, and a cron
// spec fits jemalloc's 96-byte class instead of its 128-byte one. (Not a
// doc comment: those become the OpenAPI document's descriptions.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TriggerSpec {
    /// A cron expression (5 fields, or 6 with seconds first).
    Cron {
        /// E.g. `0 9 * * mon-fri`.
        expr: String,
        /// IANA zone the expression's wall times are in; default UTC.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        tz: Option<Box<str>>,
        /// No fire before this time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        start: Option<Box<str>>,
        /// No fire after this time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        end: Option<Box<str>>,
        /// Delay each fire by a stable pseudo-random amount below this, e.g. `30s`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        jitter: Option<Box<str>>,
    },
    /// Every fixed duration, anchored at `start`.
    Interval {
        /// E.g. `30s`, `5m`, `1h30m`, `1d`.
        every: String,
        /// The first fire; later fires are `start + k * every`. Default: one
        /// interval after the job is added.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        start: Option<Box<str>>,
        /// No fire after this time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        end: Option<Box<str>>,
        /// Delay each fire by a stable pseudo-random amount below this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        jitter: Option<Box<str>>,
    },
    /// Once.
    Date {
        /// RFC 3339 with offset, or a local time read in `tz`.
        at: String,
        /// Zone for a local `at`; default UTC.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        tz: Option<Box<str>>,
    },
    /// The earliest of several triggers.
    Any {
        /// At least one.
        #[schema(no_recursion)]
        triggers: Vec<TriggerSpec>,
    },
    /// Times at which all of several triggers agree.
    All {
        /// At least one.
        #[schema(no_recursion)]
        triggers: Vec<TriggerSpec>,
    },
}

/// Why a trigger was refused. Each message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// A bad cron expression.
    #[error("expr: {0}")]
    Cron(#[from] CronError),
    /// An unknown zone name.
    #[error("tz: unknown time zone '{0}'; use an IANA name such as 'Europe/Berlin' or 'UTC'")]
    UnknownTimeZone(String),
    /// A time that does not parse.
    #[error(
        "{field}: '{value}' is not a time; write RFC 3339 with an offset, e.g. '2026-12-01T09:00:00+08:00'"
    )]
    BadTime {
        /// The field.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// A local time the zone skips.
    #[error(
        "at: {value} does not exist in {tz} (the clocks skip it for daylight saving); pick another time"
    )]
    NonexistentLocalTime {
        /// The value as written.
        value: String,
        /// The zone.
        tz: String,
    },
    /// A bad duration.
    #[error("{field}: {source}")]
    Duration {
        /// The field.
        field: &'static str,
        /// The parse error.
        source: DurationError,
    },
    /// A zero interval.
    #[error("every: the interval must be greater than 0")]
    ZeroInterval,
    /// Jitter at least as long as the interval would reorder fires.
    #[error("jitter: {jitter} must be shorter than the interval ({every})")]
    JitterTooLarge {
        /// The jitter as written.
        jitter: String,
        /// The interval as written.
        every: String,
    },
    /// Jitter at least as long as the time between a cron schedule's
    /// closest fires would let one fire overtake the next.
    #[error(
        "jitter: {jitter} must be shorter than the time between the schedule's closest fires ({gap})"
    )]
    JitterTooLargeForSchedule {
        /// The jitter as written.
        jitter: String,
        /// The shortest time between two fires.
        gap: String,
    },
    /// `end` before `start`.
    #[error("end: {end} is before start {start}")]
    EndBeforeStart {
        /// The start.
        start: String,
        /// The end.
        end: String,
    },
    /// `any`/`all` with nothing inside.
    #[error("triggers: `{0}` needs at least one trigger")]
    EmptyCombination(&'static str),
}

impl TriggerError {
    /// The name of the offending field (for API error bodies).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Cron(_) => "expr",
            Self::UnknownTimeZone(_) => "tz",
            Self::BadTime { field, .. } | Self::Duration { field, .. } => field,
            Self::NonexistentLocalTime { .. } => "at",
            Self::ZeroInterval => "every",
            Self::JitterTooLarge { .. } | Self::JitterTooLargeForSchedule { .. } => "jitter",
            Self::EndBeforeStart { .. } => "end",
            Self::EmptyCombination(_) => "triggers",
        }
    }
}

/// Parses an IANA zone name, `UTC` by default.
///
/// # Errors
/// [`TriggerError::UnknownTimeZone`].
pub fn parse_tz(tz: Option<&str>) -> Result<Tz, TriggerError> {
    match tz {
        None => Ok(Tz::UTC),
        Some(name) => name
            .parse()
            .map_err(|_| TriggerError::UnknownTimeZone(name.to_owned())),
    }
}

/// Times are kept to the millisecond, as the job store keeps them: a
/// trigger computing in microseconds would find a fire stored as
/// `…00.123` still due at `…00.123456` after a restart (a false miss).
fn parse_time(field: &'static str, value: &str) -> Result<DateTime<Utc>, TriggerError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(3))
        .map_err(|_| TriggerError::BadTime {
            field,
            value: value.to_owned(),
        })
}

fn parse_opt_time(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, TriggerError> {
    value.map(|v| parse_time(field, v)).transpose()
}

fn parse_duration(field: &'static str, value: &str) -> Result<chrono::Duration, TriggerError> {
    let d = duration::parse(value).map_err(|source| TriggerError::Duration { field, source })?;
    chrono::Duration::from_std(d).map_err(|_| TriggerError::Duration {
        field,
        source: DurationError::Overflow(value.to_owned()),
    })
}

/// Optional start and end.
type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn bounds(start: Option<&str>, end: Option<&str>) -> Result<Bounds, TriggerError> {
    let s = parse_opt_time("start", start)?;
    let e = parse_opt_time("end", end)?;
    if let (Some(s), Some(e)) = (s, e)
        && e < s
    {
        return Err(TriggerError::EndBeforeStart {
            start: s.to_rfc3339(),
            end: e.to_rfc3339(),
        });
    }
    Ok((s, e))
}

fn jitter(value: Option<&str>, seed: u64) -> Result<Option<Jitter>, TriggerError> {
    value
        .map(|v| parse_duration("jitter", v).map(|max| Jitter { max, seed }))
        .transpose()
        .map(|j| j.filter(|j| j.max > chrono::Duration::zero()))
}

impl TriggerSpec {
    /// The schedule in words with its zone, for people (the dashboard,
    /// `GET /jobs`): `at 00:05 every day (Asia/Shanghai)`, `every 10s`,
    /// `once at 2026-12-01T09:00:00+08:00`, `any of: …`. A cron line that
    /// no longer parses (it was validated when the job was added) is
    /// shown as written.
    pub fn words(&self) -> String {
        fn zone(tz: Option<&str>) -> &str {
            tz.unwrap_or("UTC")
        }
        fn jitter(j: Option<&str>) -> String {
            j.map(|j| format!(", up to {j} late (jitter)"))
                .unwrap_or_default()
        }
        fn window(start: Option<&str>, end: Option<&str>) -> String {
            let mut out = String::new();
            if let Some(s) = start {
                out.push_str(&format!(", from {s}"));
            }
            if let Some(e) = end {
                out.push_str(&format!(", until {e}"));
            }
            out
        }
        match self {
            Self::Cron {
                expr,
                tz,
                start,
                end,
                jitter: j,
            } => {
                let words = zone(tz.as_deref())
                    .parse::<Tz>()
                    .ok()
                    .and_then(|z| CronSchedule::parse(expr, z).ok())
                    .map_or_else(|| format!("cron `{}`", expr.trim()), |c| c.explain());
                format!(
                    "{words} ({}){}{}",
                    zone(tz.as_deref()),
                    window(start.as_deref(), end.as_deref()),
                    jitter(j.as_deref())
                )
            }
            Self::Interval {
                every,
                start,
                end,
                jitter: j,
            } => format!(
                "every {every}{}{}",
                window(start.as_deref(), end.as_deref()),
                jitter(j.as_deref())
            ),
            Self::Date { at, tz } => match tz {
                Some(tz) => format!("once at {at} ({tz})"),
                None => format!("once at {at}"),
            },
            Self::Any { triggers } => format!(
                "whichever comes first of: {}",
                triggers
                    .iter()
                    .map(Self::words)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Self::All { triggers } => format!(
                "when all agree: {}",
                triggers
                    .iter()
                    .map(Self::words)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }

    /// The zone a job's dates are read in (its `exclude`): the `tz` of a
    /// cron or date trigger, the first found inside `any`/`all`; UTC when
    /// none is given or the name is unknown (which validation refuses).
    pub fn zone(&self) -> Tz {
        fn find(spec: &TriggerSpec) -> Option<&str> {
            match spec {
                TriggerSpec::Cron { tz, .. } | TriggerSpec::Date { tz, .. } => tz.as_deref(),
                TriggerSpec::Interval { .. } => None,
                TriggerSpec::Any { triggers } | TriggerSpec::All { triggers } => {
                    triggers.iter().find_map(find)
                }
            }
        }
        find(self)
            .and_then(|name| name.parse().ok())
            .unwrap_or(Tz::UTC)
    }

    /// Validates the spec into a [`Trigger`]. `now` anchors intervals
    /// without a `start`; `seed` (derive it from the job id) makes jitter
    /// stable per job.
    ///
    /// # Errors
    /// A [`TriggerError`] naming the field and the problem.
    pub fn build(&self, now: DateTime<Utc>, seed: u64) -> Result<Trigger, TriggerError> {
        match self {
            Self::Cron {
                expr,
                tz,
                start,
                end,
                jitter: j,
            } => {
                let tz = parse_tz(tz.as_deref())?;
                let schedule = CronSchedule::shared(expr, tz)?;
                let (start, end) = bounds(start.as_deref(), end.as_deref())?;
                let jitter = jitter(j.as_deref(), seed)?;
                if let Some(jt) = jitter {
                    let gap = schedule.min_gap();
                    if jt.max >= gap {
                        return Err(TriggerError::JitterTooLargeForSchedule {
                            jitter: j.as_deref().unwrap_or_default().to_owned(),
                            gap: duration::format(gap.to_std().unwrap_or_default()),
                        });
                    }
                }
                Ok(Trigger::bounded(Kind::Cron(schedule), start, end, jitter))
            }
            Self::Interval {
                every,
                start,
                end,
                jitter: j,
            } => {
                let step = parse_duration("every", every)?;
                if step <= chrono::Duration::zero() {
                    return Err(TriggerError::ZeroInterval);
                }
                let (anchor, end) = bounds(start.as_deref(), end.as_deref())?;
                let jitter = jitter(j.as_deref(), seed)?;
                if let Some(jt) = jitter
                    && jt.max >= step
                {
                    return Err(TriggerError::JitterTooLarge {
                        jitter: j.as_deref().unwrap_or_default().to_owned(),
                        every: every.clone(),
                    });
                }
                // Without a start, the first fire is one interval from now;
                // an interval that reaches past chrono's calendar (some
                // 262,000 years) has no first fire to compute.
                let anchor = match anchor {
                    Some(a) => a,
                    None => now
                        .trunc_subsecs(3)
                        .checked_add_signed(step)
                        .ok_or_else(|| TriggerError::Duration {
                            field: "every",
                            source: DurationError::Overflow(every.clone()),
                        })?,
                };
                Ok(Trigger::bounded(
                    Kind::Interval {
                        anchor,
                        every: step,
                    },
                    None,
                    end,
                    jitter,
                ))
            }
            Self::Date { at, tz } => {
                let at = parse_date(at, tz.as_deref())?;
                Ok(Trigger::plain(Kind::Date(at)))
            }
            Self::Any { triggers } | Self::All { triggers } => {
                let is_any = matches!(self, Self::Any { .. });
                if triggers.is_empty() {
                    return Err(TriggerError::EmptyCombination(if is_any {
                        "any"
                    } else {
                        "all"
                    }));
                }
                let built = triggers
                    .iter()
                    .map(|t| t.build(now, seed))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Trigger::plain(if is_any {
                    Kind::Any(built)
                } else {
                    Kind::All(built)
                }))
            }
        }
    }
}

/// An RFC 3339 time, or a local time in `tz` (the earlier instant when the
/// zone repeats it; an error when the zone skips it).
fn parse_date(at: &str, tz: Option<&str>) -> Result<DateTime<Utc>, TriggerError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(at.trim()) {
        return Ok(t.with_timezone(&Utc).trunc_subsecs(3));
    }
    let zone = parse_tz(tz)?;
    let naive = NaiveDateTime::parse_from_str(at.trim(), "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(at.trim(), "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(at.trim(), "%Y-%m-%dT%H:%M"))
        .map_err(|_| TriggerError::BadTime {
            field: "at",
            value: at.to_owned(),
        })?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| TriggerError::NonexistentLocalTime {
            value: at.to_owned(),
            tz: zone.name().to_owned(),
        })
}
