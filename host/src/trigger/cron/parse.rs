//! Cron expression → field bitsets, with errors that name the field.
//!
//! Classic Vixie/cronie syntax: 5 fields (minute hour day-of-month month
//! day-of-week) or 6 with a leading seconds field; `*`, lists, ranges,
//! steps on `*` and on ranges, month and weekday names in any case, weekday
//! 0 and 7 both Sunday, and the `@` macros. Extensions from other dialects
//! (`L`, `W`, `#`, `?`, a year field) are refused by name rather than half
//! supported, so an expression never means something other than what cron
//! would make of it.

use super::{CronError, chars};

/// One field's position, for messages and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Seconds, 0-59 (only in 6-field expressions).
    Second,
    /// Minutes, 0-59.
    Minute,
    /// Hours, 0-23.
    Hour,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or `jan`-`dec`.
    Month,
    /// Day of the week, 0-7 (0 and 7 are Sunday) or `sun`-`sat`.
    DayOfWeek,
}

impl Field {
    /// The field's name as messages use it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::DayOfMonth => "day-of-month",
            Self::Month => "month",
            Self::DayOfWeek => "day-of-week",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            Self::Second | Self::Minute => (0, 59),
            Self::Hour => (0, 23),
            Self::DayOfMonth => (1, 31),
            Self::Month => (1, 12),
            Self::DayOfWeek => (0, 7),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Month => &[
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ],
            Self::DayOfWeek => &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
            _ => &[],
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed expression: one bitset per field (bit n set = value n allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// Bits 0-59.
    pub seconds: u64,
    /// Bits 0-59.
    pub minutes: u64,
    /// Bits 0-23.
    pub hours: u64,
    /// Bits 1-31.
    pub days_of_month: u64,
    /// Bits 1-12.
    pub months: u64,
    /// Bits 0-6 (Sunday is 0; a 7 in the input sets bit 0).
    pub days_of_week: u64,
    /// The day-of-month field begins with `*` (Vixie's DOM_STAR).
    pub dom_star: bool,
    /// The day-of-week field begins with `*` (Vixie's DOW_STAR).
    pub dow_star: bool,
    /// The minute or hour field begins with `*`: cronie's "wildcard" job,
    /// which matters on daylight-saving days.
    pub wildcard_time: bool,
    /// The expression had a seconds field.
    pub has_seconds: bool,
}

/// Expands an `@` macro into its 5-field form.
fn expand_macro(expr: &str) -> Result<Option<&'static str>, CronError> {
    if !expr.starts_with('@') {
        return Ok(None);
    }
    let expanded = match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        "@reboot" => {
            return Err(CronError::Unsupported {
                what: "@reboot".into(),
                hint: "a scheduler has no boot to run at; use a date trigger or run the job now"
                    .into(),
            });
        }
        _ => return Err(CronError::UnknownMacro(expr.to_owned())),
    };
    Ok(Some(expanded))
}

/// Parses a whole expression.
///
/// # Errors
/// A [`CronError`] naming the field and the problem.
pub fn parse(expr: &str) -> Result<Fields, CronError> {
    chars::check(expr)?;
    let trimmed = chars::trim(expr);
    if trimmed.is_empty() {
        return Err(CronError::Empty);
    }
    let source = expand_macro(trimmed)?.unwrap_or(trimmed);
    let parts: Vec<&str> = source
        .split(chars::is_separator)
        .filter(|p| !p.is_empty())
        .collect();
    let (seconds, rest) = match parts.len() {
        5 => (None, &parts[..]),
        6 => (Some(parts[0]), &parts[1..]),
        7 => return Err(CronError::YearField),
        n => return Err(CronError::FieldCount(n)),
    };
    let seconds_bits = match seconds {
        Some(s) => parse_field(Field::Second, s)?,
        None => 1, // second 0
    };
    let mut dow = parse_field(Field::DayOfWeek, rest[4])?;
    if dow & (1 << 7) != 0 {
        dow = (dow & !(1 << 7)) | 1;
    }
    Ok(Fields {
        seconds: seconds_bits,
        minutes: parse_field(Field::Minute, rest[0])?,
        hours: parse_field(Field::Hour, rest[1])?,
        days_of_month: parse_field(Field::DayOfMonth, rest[2])?,
        months: parse_field(Field::Month, rest[3])?,
        days_of_week: dow,
        dom_star: rest[2].starts_with('*'),
        dow_star: rest[4].starts_with('*'),
        wildcard_time: rest[0].starts_with('*') || rest[1].starts_with('*'),
        has_seconds: seconds.is_some(),
    })
}

/// Parses one field: a comma-separated list of `*`, `*/step`, `n`, `a-b`
/// and `a-b/step` items.
fn parse_field(field: Field, text: &str) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for item in text.split(',') {
        bits |= parse_item(field, item)?;
    }
    Ok(bits)
}

fn parse_item(field: Field, item: &str) -> Result<u64, CronError> {
    let (min, max) = field.bounds();
    if item.is_empty() {
        return Err(CronError::Malformed {
            field,
            token: item.to_owned(),
            problem: "an empty list item (two commas in a row, or a trailing comma)".into(),
        });
    }
    for (ch, what, hint) in [
        ('?', "'?'", "it is Quartz syntax; write '*'"),
        (
            '#',
            "'#' (nth weekday)",
            "classic cron has no nth-weekday; list the days instead",
        ),
    ] {
        if item.contains(ch) {
            return Err(CronError::Unsupported {
                what: format!("{what} in the {field} field"),
                hint: hint.into(),
            });
        }
    }
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => (r, Some(parse_step(field, item, s)?)),
        None => (item, None),
    };
    let (lo, hi) = if range == "*" {
        (min, if field == Field::DayOfWeek { 6 } else { max })
    } else if let Some((a, b)) = range.split_once('-') {
        let lo = parse_value(field, a)?;
        let mut hi = parse_value(field, b)?;
        // cronie reads `sun` at the top of a range as day 7, so `sat-sun`
        // and `thu-sun` run through Sunday as `6-7` and `4-7` do. (`sun-sun`
        // stays Sunday alone.)
        if field == Field::DayOfWeek && hi == 0 && lo > 0 && is_name(b) {
            hi = 7;
        }
        if lo > hi {
            // Refused (cron ranges never wrap), but the suggestion is the
            // wrapped list the user meant, not the reversed range.
            let names = is_name(a) || is_name(b);
            return Err(CronError::Malformed {
                field,
                token: item.to_owned(),
                problem: format!(
                    "the range runs backwards (cron ranges do not wrap around); \
                     write '{}' for {a} round to {b}",
                    wrapped(field, lo, hi, step, names)
                ),
            });
        }
        (lo, hi)
    } else {
        let v = parse_value(field, range)?;
        if step.is_some() {
            return Err(CronError::Malformed {
                field,
                token: item.to_owned(),
                problem: format!(
                    "a step needs a range or '*': write '{v}-{max}/{}' or '*/{}'",
                    step.unwrap_or(1),
                    step.unwrap_or(1)
                ),
            });
        }
        (v, v)
    };
    let step = step.unwrap_or(1);
    let mut bits = 0u64;
    let mut v = lo;
    while v <= hi {
        bits |= 1 << v;
        // A huge step must end the range, not overflow.
        let Some(next) = v.checked_add(step) else {
            break;
        };
        v = next;
    }
    Ok(bits)
}

/// Whether a value was written as a name rather than a number.
fn is_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit())
}

/// The list meaning "from `lo` round the end of the field to `hi`", for a
/// backwards range `lo-hi[/step]`: `22-5` in hours is `22-23,0-5`,
/// `fri-mon` is `fri-sun,mon`, and a step keeps its stride across the
/// wrap (`50-20/7` in minutes is `50-59/7,4-20/7`: 50, 57, 4, 11, 18). Weekdays wrap
/// from 7 (Sunday) to 1, since 0 is Sunday too.
fn wrapped(field: Field, lo: u32, hi: u32, step: Option<u32>, names: bool) -> String {
    let (min, max) = field.bounds();
    let cycle = if field == Field::DayOfWeek {
        7
    } else {
        u64::from(max - min + 1)
    };
    let s = u64::from(step.unwrap_or(1));
    let (lo, hi, max) = (u64::from(lo), u64::from(hi), u64::from(max));
    let mut parts = vec![range_text(field, lo, max, s, names)];
    // The stride goes on past the top: the first value after the wrap.
    let last = lo + (max - lo) / s * s;
    let next = last + s - cycle;
    if next <= hi {
        parts.push(range_text(field, next, hi, s, names));
    }
    parts.join(",")
}

/// `a`, `a-b` or `a-b/step` as cron text, with names where the user wrote
/// them.
fn range_text(field: Field, a: u64, b: u64, step: u64, names: bool) -> String {
    let value = |v: u64| {
        let names_of = field.names();
        let index = match field {
            Field::Month => v.checked_sub(1),
            // 7 is Sunday again.
            Field::DayOfWeek => Some(v % 7),
            _ => None,
        };
        match index.and_then(|i| names_of.get(usize::try_from(i).ok()?)) {
            Some(name) if names => (*name).to_owned(),
            _ => v.to_string(),
        }
    };
    if a == b || a + step > b {
        value(a)
    } else if step == 1 {
        format!("{}-{}", value(a), value(b))
    } else {
        format!("{}-{}/{step}", value(a), value(b))
    }
}

fn parse_step(field: Field, item: &str, s: &str) -> Result<u32, CronError> {
    let step: u32 = s.parse().map_err(|_| CronError::Malformed {
        field,
        token: item.to_owned(),
        problem: format!("the step '{s}' is not a whole number"),
    })?;
    if step == 0 {
        return Err(CronError::Malformed {
            field,
            token: item.to_owned(),
            problem: "a step of 0 never advances; use 1 or more".into(),
        });
    }
    Ok(step)
}

fn parse_value(field: Field, s: &str) -> Result<u32, CronError> {
    let (min, max) = field.bounds();
    if s.is_empty() {
        return Err(CronError::Malformed {
            field,
            token: s.to_owned(),
            problem: "a range is missing a number".into(),
        });
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        let v: u32 = s.parse().map_err(|_| CronError::OutOfRange {
            field,
            value: s.to_owned(),
            min,
            max,
        })?;
        if v < min || v > max {
            return Err(CronError::OutOfRange {
                field,
                value: s.to_owned(),
                min,
                max,
            });
        }
        return Ok(v);
    }
    let names = field.names();
    if names.is_empty() {
        if s.eq_ignore_ascii_case("l") || s.ends_with(['w', 'W']) {
            return Err(CronError::Unsupported {
                what: format!("'{s}' in the {field} field"),
                hint: "'L' and 'W' are Quartz/croner extensions that classic cron does not have"
                    .into(),
            });
        }
        return Err(CronError::Malformed {
            field,
            token: s.to_owned(),
            problem: "not a number".into(),
        });
    }
    let lower = s.to_ascii_lowercase();
    let offset = if field == Field::Month { 1 } else { 0 };
    names
        .iter()
        .position(|n| *n == lower)
        .map(|i| i as u32 + offset)
        .ok_or_else(|| CronError::UnknownName {
            field,
            name: s.to_owned(),
        })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
