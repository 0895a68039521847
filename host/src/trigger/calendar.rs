//! Calendars and exclusion dates (issue 13): days on which a job's fires
//! simply do not happen.
//!
//! A [`CalendarSpec`] is what people write: dates, inclusive date ranges,
//! and cron-style day rules (the day-of-month, month and day-of-week
//! fields of a cron line, e.g. `* * sat,sun` for weekends). It is checked
//! once into a [`Calendar`]. A job names calendars in `exclude` (and may
//! give dates there inline); the trigger then skips every fire whose date,
//! read in the job's time zone, a calendar excludes ([`Exclusions`]).
//! Quartz's `HolidayCalendar`/`CronCalendar` and Temporal's schedule
//! `skip` calendars do the same.

use super::cron::{CronError, CronSchedule};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The most dates and ranges, and the most day rules, one calendar holds.
pub const MAX_ENTRIES: usize = 10_000;

/// A calendar as written, in a jobs file (`[calendars.holidays]`) or
/// `PUT /calendars/{name}`.
///
/// ```toml
/// [calendars.holidays]
/// dates = ["2026-12-25", "2026-12-31..2027-01-01"]
/// days = ["* * sat,sun"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// Excluded dates, `YYYY-MM-DD`, or inclusive ranges
    /// `YYYY-MM-DD..YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<String>,
    /// Excluded days by rule: the three day fields of a cron line
    /// (day-of-month, month, day-of-week), e.g. `* * sat,sun` (weekends),
    /// `25 12 *` (every 25 December), `1-7 * mon` (cron's rule: the first
    /// seven days of each month, or any Monday). Cron's rule applies: with both day fields restricted, a day
    /// matching either is excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// A note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Why a calendar (or a job's inline exclusion) was refused. Each case
/// names the field and says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// A date or range that does not parse.
    #[error(
        "dates[{index}]: '{value}' is not a date; write YYYY-MM-DD (e.g. 2026-12-25) or an \
         inclusive range YYYY-MM-DD..YYYY-MM-DD"
    )]
    BadDate {
        /// Its place in the list.
        index: usize,
        /// As written.
        value: String,
    },
    /// A range whose end is before its start.
    #[error("dates[{index}]: '{value}' ends before it starts; write the earlier date first")]
    Reversed {
        /// Its place in the list.
        index: usize,
        /// As written.
        value: String,
    },
    /// A day rule that is not three cron day fields.
    #[error(
        "days[{index}]: '{value}': {problem}; write day-of-month, month and day-of-week as in \
         cron, e.g. '* * sat,sun' for weekends or '25 12 *' for 25 December"
    )]
    BadRule {
        /// Its place in the list.
        index: usize,
        /// As written.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// An entry listed twice.
    #[error("{field}[{index}]: '{value}' is listed twice; remove one")]
    Twice {
        /// `dates` or `days`.
        field: &'static str,
        /// Its second place in the list.
        index: usize,
        /// As written.
        value: String,
    },
    /// Too many entries.
    #[error("{field}: {count} entries; a calendar holds at most {MAX_ENTRIES}")]
    TooMany {
        /// `dates` or `days`.
        field: &'static str,
        /// How many were given.
        count: usize,
    },
}

impl CalendarError {
    /// The place in its list of the entry it is about, if one.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::BadDate { index, .. }
            | Self::Reversed { index, .. }
            | Self::BadRule { index, .. }
            | Self::Twice { index, .. } => Some(*index),
            Self::TooMany { .. } => None,
        }
    }

    /// The message without its field, e.g. `'x' is not a date; write …`.
    pub fn problem(&self) -> String {
        let text = self.to_string();
        let field = format!("{}: ", self.field());
        text.strip_prefix(&field)
            .map_or_else(|| text.clone(), str::to_owned)
    }

    /// The field it is about, e.g. `dates[2]` or `days[0]`.
    pub fn field(&self) -> String {
        match self {
            Self::BadDate { index, .. } | Self::Reversed { index, .. } => format!("dates[{index}]"),
            Self::BadRule { index, .. } => format!("days[{index}]"),
            Self::Twice { field, index, .. } => format!("{field}[{index}]"),
            Self::TooMany { field, .. } => (*field).to_owned(),
        }
    }
}

/// The named calendars a host knows, by name.
pub type Calendars = std::collections::BTreeMap<String, Arc<Calendar>>;

/// A checked calendar: the days it excludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// As written.
    spec: CalendarSpec,
    /// Inclusive date ranges, sorted by start.
    ranges: Vec<(NaiveDate, NaiveDate)>,
    /// Day rules, as cron schedules `0 0 RULE` read in UTC (only their day
    /// fields matter).
    rules: Vec<CronSchedule>,
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`; `None` when it is
/// neither, `Some(Err(()))` for a reversed range.
fn parse_range(s: &str) -> Option<Result<(NaiveDate, NaiveDate), ()>> {
    // Exactly YYYY-MM-DD: chrono also reads `2026-1-1`, which people
    // from other date formats may mean differently.
    let date = |d: &str| {
        let b = d.as_bytes();
        (b.len() == 10 && b[4] == b'-' && b[7] == b'-')
            .then(|| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .flatten()
    };
    match s.split_once("..") {
        None => date(s).map(|d| Ok((d, d))),
        Some((a, b)) => {
            let (a, b) = (date(a)?, date(b)?);
            Some(if a <= b { Ok((a, b)) } else { Err(()) })
        }
    }
}

/// Whether `s` is written as a date or a date range (rather than a
/// calendar's name): it starts with four digits and a dash.
pub fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

impl Calendar {
    /// Checks `spec`.
    ///
    /// # Errors
    /// A [`CalendarError`] naming the entry and the problem.
    pub fn new(spec: &CalendarSpec) -> Result<Self, CalendarError> {
        let mut calendar = Self::from_dates(&spec.dates)?;
        calendar.spec = spec.clone();
        if spec.days.len() > MAX_ENTRIES {
            return Err(CalendarError::TooMany {
                field: "days",
                count: spec.days.len(),
            });
        }
        for (index, rule) in spec.days.iter().enumerate() {
            let bad = |problem: String| CalendarError::BadRule {
                index,
                value: rule.clone(),
                problem,
            };
            if spec.days[..index].contains(rule) {
                return Err(CalendarError::Twice {
                    field: "days",
                    index,
                    value: rule.clone(),
                });
            }
            let fields = rule.split_whitespace().count();
            if fields != 3 {
                return Err(bad(format!("{fields} fields, not 3")));
            }
            let schedule =
                CronSchedule::parse(&format!("0 0 {rule}"), Tz::UTC).map_err(|e| match e {
                    // Its message would quote the expression made here.
                    CronError::NeverFires { reason, .. } => {
                        bad(format!("matches no day: {reason}"))
                    }
                    other => bad(other.to_string()),
                })?;
            calendar.rules.push(schedule);
        }
        Ok(calendar)
    }

    /// A calendar of dates and ranges only (a job's inline `exclude`
    /// entries); `index` in errors is the place in `dates`.
    ///
    /// # Errors
    /// [`CalendarError::BadDate`], [`CalendarError::Reversed`],
    /// [`CalendarError::TooMany`].
    pub fn from_dates(dates: &[String]) -> Result<Self, CalendarError> {
        if dates.len() > MAX_ENTRIES {
            return Err(CalendarError::TooMany {
                field: "dates",
                count: dates.len(),
            });
        }
        let mut ranges = Vec::with_capacity(dates.len());
        for (index, value) in dates.iter().enumerate() {
            if dates[..index].contains(value) {
                return Err(CalendarError::Twice {
                    field: "dates",
                    index,
                    value: value.clone(),
                });
            }
            match parse_range(value) {
                Some(Ok(range)) => ranges.push(range),
                Some(Err(())) => {
                    return Err(CalendarError::Reversed {
                        index,
                        value: value.clone(),
                    });
                }
                None => {
                    return Err(CalendarError::BadDate {
                        index,
                        value: value.clone(),
                    });
                }
            }
        }
        ranges.sort_unstable();
        Ok(Self {
            spec: CalendarSpec {
                dates: dates.to_vec(),
                ..CalendarSpec::default()
            },
            ranges,
            rules: Vec::new(),
        })
    }

    /// The calendar as written.
    pub fn spec(&self) -> &CalendarSpec {
        &self.spec
    }

    /// Whether it excludes `date`.
    pub fn excludes(&self, date: NaiveDate) -> bool {
        // Ranges are sorted by start: only those starting on or before
        // `date` can hold it.
        let upto = self.ranges.partition_point(|(from, _)| *from <= date);
        if self.ranges[..upto].iter().any(|(_, to)| date <= *to) {
            return true;
        }
        let midnight = date.and_time(NaiveTime::MIN);
        self.rules.iter().any(|r| r.matches_wall(midnight))
    }
}

/// What a job excludes: its calendars (by name) and its inline dates, read
/// in its time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusions {
    /// The zone dates are read in (the trigger's `tz`; UTC when it has
    /// none).
    pub zone: Tz,
    /// The calendars, each with the name a preview shows for the fires it
    /// skips (`exclude` for inline dates).
    pub calendars: Vec<(String, Arc<Calendar>)>,
}

impl Exclusions {
    /// The name of the first calendar that excludes the date `t` falls on
    /// in the zone, if any.
    pub fn excluded_by(&self, t: DateTime<Utc>) -> Option<&str> {
        let date = t.with_timezone(&self.zone).date_naive();
        self.calendars
            .iter()
            .find(|(_, c)| c.excludes(date))
            .map(|(name, _)| name.as_str())
    }

    /// The first instant of the day after the one `t` falls on, in the
    /// zone: where a search for the next fire that is not excluded goes
    /// on. A midnight the clocks skip (some zones change at 00:00) is
    /// replaced by the first hour of that day that exists.
    pub fn next_day(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let day = t.with_timezone(&self.zone).date_naive().succ_opt()?;
        (0..=3).find_map(|hour| {
            let wall = day.and_hms_opt(hour, 0, 0)?;
            self.zone
                .from_local_datetime(&wall)
                .earliest()
                .map(|l| l.with_timezone(&Utc))
        })
    }
}

/// Whether `name` may name a calendar: 1-64 characters of ASCII letters,
/// digits, `-`, `_` and `.`, starting with a letter (so it is never read
/// as a date in a job's `exclude`).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(dates: &[&str], days: &[&str]) -> Result<Calendar, CalendarError> {
        Calendar::new(&CalendarSpec {
            dates: dates.iter().map(|s| (*s).to_owned()).collect(),
            days: days.iter().map(|s| (*s).to_owned()).collect(),
            description: None,
        })
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn dates_ranges_and_rules_exclude_their_days() {
        let c = cal(
            &["2026-12-25", "2026-12-30..2027-01-02"],
            &["* * sat,sun", "29 2 *"],
        )
        .unwrap();
        assert!(c.excludes(d("2026-12-25")));
        assert!(!c.excludes(d("2026-12-24")));
        assert!(c.excludes(d("2026-12-30")));
        assert!(c.excludes(d("2027-01-02")));
        assert!(!c.excludes(d("2027-01-04")), "a Monday");
        assert!(c.excludes(d("2026-12-05")), "a Saturday");
        assert!(c.excludes(d("2026-12-06")), "a Sunday");
        assert!(c.excludes(d("2028-02-29")), "a leap day");
        assert!(!c.excludes(d("2028-02-28")));
    }

    #[test]
    fn bad_entries_name_their_place() {
        for bad in ["2026-1-1", " 2026-12-01", "2026-12-01 .. 2026-12-03"] {
            let e = cal(&[bad], &[]).unwrap_err();
            assert_eq!(e.field(), "dates[0]", "{bad}");
        }
        let e = cal(&["2026-12-01", "2026-12-02", "2026-12-01"], &[]).unwrap_err();
        assert_eq!(e.field(), "dates[2]");
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = cal(&[], &["30 2 *"]).unwrap_err();
        assert!(e.to_string().contains("matches no day"), "{e}");
        assert!(!e.to_string().contains("0 0 30"), "{e}");
        let e = cal(&["2026-12-25", "25.12.2026"], &[]).unwrap_err();
        assert_eq!(e.field(), "dates[1]");
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
        let e = cal(&["2027-01-02..2026-12-30"], &[]).unwrap_err();
        assert!(e.to_string().contains("ends before it starts"), "{e}");
        let e = cal(&[], &["0 * * sat"]).unwrap_err();
        assert_eq!(e.field(), "days[0]");
        assert!(e.to_string().contains("4 fields, not 3"), "{e}");
        let e = cal(&[], &["* * funday"]).unwrap_err();
        assert!(e.to_string().contains("funday"), "{e}");
    }

    #[test]
    fn dates_are_read_in_the_zone() {
        let ex = Exclusions {
            zone: "Asia/Shanghai".parse().unwrap(),
            calendars: vec![("x".into(), Arc::new(cal(&["2026-12-25"], &[]).unwrap()))],
        };
        // 16:30 UTC on the 24th is 00:30 on the 25th in Shanghai.
        let t = "2026-12-24T16:30:00Z".parse().unwrap();
        assert_eq!(ex.excluded_by(t), Some("x"));
        assert_eq!(
            ex.excluded_by("2026-12-24T15:59:00Z".parse().unwrap()),
            None
        );
        assert_eq!(
            ex.next_day(t).unwrap(),
            "2026-12-25T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_skipped_midnight_gives_the_first_hour_that_exists() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2022-09-11.
        let ex = Exclusions {
            zone: "America/Santiago".parse().unwrap(),
            calendars: Vec::new(),
        };
        let t = "2022-09-10T12:00:00Z".parse().unwrap();
        let next = ex.next_day(t).unwrap();
        assert_eq!(next.with_timezone(&ex.zone).date_naive(), d("2022-09-11"));
    }

    #[test]
    fn names_never_look_like_dates() {
        assert!(valid_name("holidays"));
        assert!(valid_name("de.holidays-2027"));
        assert!(!valid_name("2027-holidays"));
        assert!(!valid_name(""));
        assert!(looks_like_date("2026-12-25"));
        assert!(looks_like_date("2026-12-25..2026-12-31"));
        assert!(!looks_like_date("holidays"));
    }
}
