//! Human durations: `30s`, `1h30m`, `250ms`, `2d`.
//!
//! Used for intervals, timeouts and grace periods in the CLI, config files
//! and the API. A bare number is refused: `30` could mean seconds or
//! milliseconds, and guessing wrong silently is worse than asking.

use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration; write e.g. `30s`, `5m` or `1h30m`")]
    Empty,
    /// A number without a unit.
    #[error("`{0}` has no unit; write e.g. `{0}s` (units: ms, s, m, h, d)")]
    MissingUnit(String),
    /// An unknown unit.
    #[error("unknown unit `{unit}` in `{input}` (units: ms, s, m, h, d)")]
    UnknownUnit {
        /// The unit found.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// Something that is not a number where one was expected.
    #[error("`{0}` is not a duration; write e.g. `30s`, `5m` or `1h30m`")]
    Malformed(String),
    /// Too large to represent.
    #[error("duration `{0}` is too large")]
    Overflow(String),
}

/// Parses a duration made of `<number><unit>` parts, e.g. `1h30m`.
///
/// # Errors
/// A [`DurationError`] naming the problem.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::Malformed(input.to_owned()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Overflow(input.to_owned()))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let millis_per: u64 = match unit.trim() {
            "" => return Err(DurationError::MissingUnit(input.to_owned())),
            "ms" => 1,
            "s" | "sec" | "secs" => 1_000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: other.to_owned(),
                    input: input.to_owned(),
                });
            }
        };
        total = number
            .checked_mul(millis_per)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| DurationError::Overflow(input.to_owned()))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way [`parse`] reads it (`1h30m`, `250ms`).
pub fn format(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        let cases = [
            ("30s", 30_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("2d", 172_800_000),
            ("1m30s", 90_000),
            (" 5m ", 300_000),
        ];
        for (input, ms) in cases {
            assert_eq!(parse(input), Ok(Duration::from_millis(ms)), "{input}");
        }
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("30"), Err(DurationError::MissingUnit("30".into())));
        assert!(matches!(
            parse("3w"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(parse("-5s"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("s"), Err(DurationError::Malformed(_))));
        assert!(matches!(
            parse("99999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn format_round_trips() {
        for ms in [1, 999, 1_000, 90_000, 5_400_000, 86_400_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
