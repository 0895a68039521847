//! Cron schedules with classic Vixie/cronie semantics, in any IANA zone.
//!
//! Why our own matcher rather than a crate's: the semantics users rely on
//! are cronie's, and each crate we examined departs from them somewhere.
//! The `cron` crate numbers Sunday 1, refuses 5-field lines and ANDs the day
//! fields; `croner` ORs them but only treats a bare `*` (not `*/2`) as
//! unrestricted, accepts Quartz extensions (`L`, `W`, `#`, a year field), and
//! has no notion of cronie's daylight-saving rules. Bitsets per field make
//! matching exact and the search fast: a day is checked once, not per
//! minute, and whole months are skipped.
//!
//! # Daylight-saving days (cronie's rule)
//! A job is *wildcard* if its minute or hour field begins with `*`, else
//! *fixed-time*.
//! - Spring forward (a gap): the fires a fixed-time job had in the missing
//!   wall times move to the first minute after the gap, each keeping its
//!   seconds (so a 5-field job fires once, at the first instant after the
//!   gap; `0,30 30 2 * * *` fires at 03:00:00 and 03:00:30 in Berlin);
//!   wildcard jobs have no runs for wall times that do not exist.
//! - Fall back (an overlap): a fixed-time job fires once, at the first
//!   occurrence of its wall time; wildcard jobs fire at every real instant
//!   that matches (`0 * * * *` fires at both 01:00s).

mod chars;
mod days;
mod describe;
mod parse;
mod shared;

pub use days::{Days, Description};
pub use parse::{Field, Fields};

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// The longest daylight-saving shift any zone has used (Antarctica/Troll's
/// is 2 h); overlaps are searched this far back.
const MAX_DST_SHIFT: Duration = Duration::hours(3);
/// Where a spring-forward gap's fires land: the first minute after it (a
/// wall time's seconds are added to the gap's end, 0-59 s).
const GAP_FIRES: Duration = Duration::seconds(60);
/// How many years ahead a search may look. Any expression that can fire at
/// all fires within 28 years (the calendar repeats, leap days included,
/// outside century years), so hitting this means a bug, not a slow schedule.
const SEARCH_YEARS: i32 = 400;

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Nothing was given.
    #[error(
        "empty cron expression; write 5 fields (minute hour day-of-month month day-of-week), e.g. `0 9 * * mon`"
    )]
    Empty,
    /// Not 5 or 6 fields.
    #[error(
        "expected 5 or 6 fields, got {0} (minute hour day-of-month month day-of-week, optionally led by seconds)"
    )]
    FieldCount(usize),
    /// A 7th (year) field.
    #[error(
        "expected 5 or 6 fields, got 7: a year field is not supported (classic cron has none); remove it"
    )]
    YearField,
    /// A number outside its field's range.
    #[error("{field}: {value} is out of range {min}-{max}")]
    OutOfRange {
        /// The field.
        field: Field,
        /// The value as written.
        value: String,
        /// The smallest allowed value.
        min: u32,
        /// The largest allowed value.
        max: u32,
    },
    /// A month or weekday name that is not one.
    #[error("{field}: unknown {field} name '{name}'")]
    UnknownName {
        /// The field.
        field: Field,
        /// The name as written.
        name: String,
    },
    /// Badly formed syntax in a field.
    #[error("{field}: '{token}': {problem}")]
    Malformed {
        /// The field.
        field: Field,
        /// The offending item.
        token: String,
        /// What is wrong and how to write it.
        problem: String,
    },
    /// Syntax of another cron dialect.
    #[error("{what} is not supported: {hint}")]
    Unsupported {
        /// What was found.
        what: String,
        /// What to write instead.
        hint: String,
    },
    /// A character that is not cron syntax, such as a Unicode space pasted
    /// from a web page (only the ASCII space and tab separate fields).
    #[error("character {position} is {character}: {hint}")]
    BadCharacter {
        /// Its position in the expression as given, counting characters
        /// (not bytes) from 1.
        position: usize,
        /// Its code point and, when it is a common accident, its Unicode
        /// name: `U+00A0 NO-BREAK SPACE`.
        character: String,
        /// What to write instead.
        hint: String,
    },
    /// An unknown `@` macro.
    #[error(
        "unknown macro '{0}' (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)"
    )]
    UnknownMacro(String),
    /// A valid expression that matches no date at all.
    #[error("'{expr}' can never fire: {reason}")]
    NeverFires {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
}

/// A parsed, checked cron schedule in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    expr: String,
    fields: Fields,
    tz: Tz,
}

impl CronSchedule {
    /// Parses `expr` for zone `tz`, refusing expressions that can never fire.
    ///
    /// # Errors
    /// A [`CronError`] naming the field and the problem.
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, CronError> {
        let fields = parse::parse(expr)?;
        if let Some(reason) = never_fires(&fields) {
            return Err(CronError::NeverFires {
                expr: chars::trim(expr).to_owned(),
                reason,
            });
        }
        Ok(Self {
            expr: chars::trim(expr).to_owned(),
            fields,
            tz,
        })
    }

    /// The expression as given (trimmed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone its wall times are in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The parsed fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The schedule in words, e.g. "at 09:00 on Monday".
    pub fn explain(&self) -> String {
        describe::describe(&self.fields).words
    }

    /// The schedule described: which days (from the matcher's own OR/AND
    /// decision), which months, and the words [`Self::explain`] prints.
    pub fn describe(&self) -> Description {
        describe::describe(&self.fields)
    }

    /// A warning for people, when the expression does something users of
    /// other schedulers do not expect: both day fields restricted means
    /// either may match (classic cron), not both.
    pub fn warning(&self) -> Option<String> {
        describe::or_warning(&self.fields)
    }

    /// Whether a wall-clock time matches every field.
    pub fn matches_wall(&self, t: NaiveDateTime) -> bool {
        let f = &self.fields;
        bit(f.seconds, t.second())
            && bit(f.minutes, t.minute())
            && bit(f.hours, t.hour())
            && bit(f.months, t.month())
            && day_matches(f, t.date())
    }

    /// The first fire time strictly after `after`, or `None` if there is
    /// none in the next 400 years (which a checked expression never hits).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // chrono's local-time conversions panic within hours of either end
        // of its calendar (±262,143 years), so the search keeps a year
        // away from both: no instant there is one a schedule is asked about.
        let (first_year, last_year) = (NaiveDate::MIN.year() + 1, NaiveDate::MAX.year() - 1);
        if !(first_year..last_year).contains(&after.year()) {
            return None;
        }
        let local = after.with_timezone(&self.tz).naive_local();
        let local = local.with_nanosecond(0).unwrap_or(local);
        // Near a fall-back, wall times *before* `after`'s may occur again
        // after it; start the search early enough to see them, and keep
        // looking until no later wall time could map to an earlier instant.
        let offset = self.offset_at(after);
        let overlap = self.offset_at(after + MAX_DST_SHIFT) < offset;
        // Within a minute after a spring-forward, a fixed-time job's wall
        // times inside the gap (earlier than `after`'s) may still have fires
        // ahead, at their own seconds: look back across the gap too.
        let gap = !self.fields.wildcard_time && self.offset_at(after - GAP_FIRES) < offset;
        let window = overlap || gap;
        let mut wall = if gap {
            local - MAX_DST_SHIFT - GAP_FIRES
        } else if overlap {
            local - MAX_DST_SHIFT
        } else {
            local
        };
        let limit = local.year().saturating_add(SEARCH_YEARS).min(last_year);
        let mut best: Option<DateTime<Utc>> = None;
        loop {
            wall = self.next_wall(wall, limit)?;
            self.instants(wall, |instant| {
                if instant > after && best.is_none_or(|b| instant < b) {
                    best = Some(instant);
                }
            });
            if let Some(b) = best {
                let b_local = b.with_timezone(&self.tz).naive_local();
                if !window || wall > b_local + MAX_DST_SHIFT {
                    return Some(b);
                }
            }
            wall += Duration::seconds(1);
        }
    }

    /// The shortest time between two consecutive fires, on days without
    /// a daylight-saving change (one can bring a fixed-time job's fire
    /// closer to the next by up to its shift). Jitter must stay below it,
    /// as it must stay below an interval, or fires would overtake each
    /// other.
    pub fn min_gap(&self) -> Duration {
        let f = &self.fields;
        let values = |set: u64, hi: u32| -> Vec<i64> {
            (0..=hi).filter(|&v| bit(set, v)).map(i64::from).collect()
        };
        let min_step = |v: &[i64]| v.windows(2).map(|w| w[1] - w[0]).min();
        let (secs, mins, hours) = (
            values(f.seconds, 59),
            values(f.minutes, 59),
            values(f.hours, 23),
        );
        // Every field allows at least one value (parsing refuses empty
        // ones), so first and last exist; 0 keeps this total regardless.
        let ends = |v: &[i64]| {
            (
                v.first().copied().unwrap_or(0),
                v.last().copied().unwrap_or(0),
            )
        };
        let ((s0, s1), (m0, m1), (h0, h1)) = (ends(&secs), ends(&mins), ends(&hours));
        // Consecutive fires are next to each other in one field, with the
        // finer fields wrapping from their last value to their first.
        let mut gap = i64::MAX;
        if let Some(d) = min_step(&secs) {
            gap = gap.min(d);
        }
        if let Some(d) = min_step(&mins) {
            gap = gap.min(60 * d + s0 - s1);
        }
        if let Some(d) = min_step(&hours) {
            gap = gap.min(3600 * d + (60 * m0 + s0) - (60 * m1 + s1));
        }
        let (first, last) = (3600 * h0 + 60 * m0 + s0, 3600 * h1 + 60 * m1 + s1);
        // From a day's last fire to the next fire day's first: the days
        // apart are only worth finding when they could be the closest.
        if 86_400 + first - last < gap {
            gap = gap.min(86_400 * self.min_days_apart() + first - last);
        }
        Duration::seconds(gap)
    }

    /// The fewest days between two consecutive days the schedule fires
    /// on. Every pattern of month, day and weekday recurs within one
    /// Gregorian cycle of 400 years (146,097 days); the scan stops at the
    /// first pair of neighbours, so a daily schedule looks at two days.
    fn min_days_apart(&self) -> i64 {
        const CYCLE: i64 = 146_097;
        let f = &self.fields;
        let mut date = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
        let mut previous: Option<i64> = None;
        let mut fewest = CYCLE;
        // One cycle and a year more, to see the pair across its end.
        for day in 0..CYCLE + 366 {
            if bit(f.months, date.month()) && day_matches(f, date) {
                if let Some(p) = previous {
                    fewest = fewest.min(day - p);
                    if fewest == 1 {
                        break;
                    }
                }
                previous = Some(day);
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
        fewest
    }

    fn offset_at(&self, t: DateTime<Utc>) -> i32 {
        self.tz
            .offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// Calls `f` with each instant at which wall time `wall` fires,
    /// applying cronie's daylight-saving rule.
    fn instants(&self, wall: NaiveDateTime, mut f: impl FnMut(DateTime<Utc>)) {
        use chrono::LocalResult;
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => f(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, second) => {
                f(first.with_timezone(&Utc));
                if self.fields.wildcard_time {
                    f(second.with_timezone(&Utc));
                }
            }
            LocalResult::None => {
                // cronie runs a fixed-time job's missed fires in the first
                // minute after the gap; with a seconds field each keeps its
                // second, so `0,30 30 2` still fires twice.
                if !self.fields.wildcard_time
                    && let Some(t) = self
                        .gap_end(wall)
                        .checked_add_signed(Duration::seconds(i64::from(wall.second())))
                {
                    f(t);
                }
            }
        }
    }

    /// The first real instant after the gap that swallowed `wall`: the
    /// earliest instant whose local time is later than `wall`.
    fn gap_end(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        let as_utc = wall.and_utc().timestamp();
        // No zone is more than 16 h from UTC, so the transition lies here.
        let (mut lo, mut hi) = (as_utc - 16 * 3600, as_utc + 16 * 3600);
        let later = |secs: i64| {
            DateTime::from_timestamp(secs, 0)
                .is_some_and(|u| u.with_timezone(&self.tz).naive_local() > wall)
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if later(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The first matching wall time at or after `start`, or `None` past
    /// `limit_year`.
    fn next_wall(&self, start: NaiveDateTime, limit_year: i32) -> Option<NaiveDateTime> {
        let f = &self.fields;
        let mut date = start.date();
        let mut from = (start.hour(), start.minute(), start.second());
        loop {
            if date.year() > limit_year {
                return None;
            }
            if !bit(f.months, date.month()) {
                date = next_allowed_month(f.months, date)?;
                from = (0, 0, 0);
                continue;
            }
            if day_matches(f, date)
                && let Some((h, m, s)) = first_time_from(f, from)
            {
                return date.and_hms_opt(h, m, s);
            }
            date = date.succ_opt()?;
            from = (0, 0, 0);
        }
    }
}

fn bit(set: u64, n: u32) -> bool {
    set & (1u64 << n) != 0
}

/// The smallest set bit at or above `from`.
fn next_bit(set: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let masked = set & (u64::MAX << from);
    (masked != 0).then(|| masked.trailing_zeros())
}

/// Vixie's day rule ([`days::days_ored`], which the describer uses too):
/// if either day field begins with `*`, both must match; otherwise either
/// may.
fn day_matches(f: &Fields, date: NaiveDate) -> bool {
    let dom = bit(f.days_of_month, date.day());
    let dow = bit(f.days_of_week, date.weekday().num_days_from_sunday());
    if days::days_ored(f) {
        dom || dow
    } else {
        dom && dow
    }
}

/// The first (hour, minute, second) matching the fields at or after `from`
/// on a matching day.
fn first_time_from(f: &Fields, from: (u32, u32, u32)) -> Option<(u32, u32, u32)> {
    let (h0, m0, s0) = from;
    let mut h = next_bit(f.hours, h0)?;
    loop {
        let mut m = next_bit(f.minutes, if h == h0 { m0 } else { 0 });
        while let Some(mm) = m {
            let s_from = if h == h0 && mm == m0 { s0 } else { 0 };
            if let Some(s) = next_bit(f.seconds, s_from) {
                return Some((h, mm, s));
            }
            m = next_bit(f.minutes, mm + 1);
        }
        h = next_bit(f.hours, h + 1)?;
    }
}

/// The first day of the next allowed month after `date`'s month.
fn next_allowed_month(months: u64, date: NaiveDate) -> Option<NaiveDate> {
    let (year, month) = match next_bit(months, date.month() + 1) {
        Some(m) if m <= 12 => (date.year(), m),
        _ => (date.year() + 1, next_bit(months, 1)?),
    };
    NaiveDate::from_ymd_opt(year, month, 1)
}

/// Why an expression matches no date, if it matches none. When both day
/// fields are restricted they are ORed and the weekday always matches some
/// day; otherwise the day of month must exist in an allowed month (February
/// counts 29: leap years come), and every (date, weekday) pair recurs.
fn never_fires(f: &Fields) -> Option<String> {
    if days::days_ored(f) {
        return None;
    }
    const MAX_DAYS: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let possible = (1..=12u32)
        .filter(|&m| bit(f.months, m))
        .any(|m| (1..=MAX_DAYS[m as usize]).any(|d| bit(f.days_of_month, d)));
    if possible {
        return None;
    }
    let days: Vec<String> = (1..=31u32)
        .filter(|&d| bit(f.days_of_month, d))
        .map(|d| d.to_string())
        .collect();
    let months: Vec<&str> = (1..=12u32)
        .filter(|&m| bit(f.months, m))
        .map(describe::month_name)
        .collect();
    Some(format!(
        "day {} never occurs in {}",
        days.join(","),
        months.join(", ")
    ))
}

#[cfg(test)]
mod explain_tests;
#[cfg(test)]
mod tests;
