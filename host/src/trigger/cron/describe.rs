//! Cron fields in words, for `wasmcron cron explain` and job warnings.
//!
//! The day words are written from [`Days`], which is derived from the same
//! sets and the same OR/AND decision as the matcher; lists never pair two
//! values with "and" inside a longer list, and a step is only called a
//! step ("every 15 minutes", "odd days") when it runs to the field's end.

use super::days::{Days, Description, days_ored, full};
use super::parse::Fields;

const MONTHS: [&str; 13] = [
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

pub(super) fn month_name(m: u32) -> &'static str {
    MONTHS.get(m as usize).copied().unwrap_or("?")
}

fn values(set: u64, lo: u32, hi: u32) -> Vec<u32> {
    (lo..=hi).filter(|&v| set & (1u64 << v) != 0).collect()
}

/// Consecutive runs: [1,2,3,5] → [(1,3),(5,5)]. Runs are over positions in
/// `vals`, which callers order (weekdays Monday first).
fn runs(vals: &[u32], next: impl Fn(u32) -> u32) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &v in vals {
        match out.last_mut() {
            Some((_, end)) if next(*end) == v => *end = v,
            _ => out.push((v, v)),
        }
    }
    out
}

/// The step of three or more values that go on by a constant step > 1 to
/// the end of the field (`max`): only then do "every N minutes" or "odd
/// days" say exactly which values they are (`0-30/10` is not "every 10
/// minutes").
fn covering_step(vals: &[u32], max: u32) -> Option<u32> {
    let (&first, &last) = (vals.first()?, vals.last()?);
    if vals.len() < 3 {
        return None;
    }
    let step = vals[1] - first;
    (step > 1 && vals.windows(2).all(|w| w[1] - w[0] == step) && last + step > max).then_some(step)
}

/// "A, B and C" (or "A, B or C").
fn join(items: &[String], conj: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conj} {last}", init.join(", ")),
    }
}

/// Items for a list of values: runs of three or more as `a{through}b`,
/// shorter runs as separate values (so "Sunday and Monday, Wednesday" can
/// never be read two ways).
fn items(
    vals: &[u32],
    next: impl Fn(u32) -> u32,
    name: impl Fn(u32) -> String,
    through: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for (a, b) in runs(vals, &next) {
        if a == b {
            out.push(name(a));
        } else if next(a) == b {
            out.push(name(a));
            out.push(name(b));
        } else {
            out.push(format!("{}{through}{}", name(a), name(b)));
        }
    }
    out
}

fn numbers(vals: &[u32], name: impl Fn(u32) -> String) -> String {
    join(&items(vals, |v| v + 1, name, "-"), "and")
}

/// Weekdays Monday first ("Friday through Sunday", "Saturday and Sunday"),
/// joined with `conj`.
pub(super) fn weekday_list(set: u64, conj: &str) -> String {
    let vals: Vec<u32> = [1, 2, 3, 4, 5, 6, 0]
        .into_iter()
        .filter(|&d| set & (1u64 << d) != 0)
        .collect();
    join(
        &items(
            &vals,
            |d| (d + 1) % 7,
            |d| WEEKDAYS[d as usize].to_owned(),
            " through ",
        ),
        conj,
    )
}

fn month_list(set: u64) -> String {
    join(
        &items(
            &values(set, 1, 12),
            |m| m + 1,
            |m| month_name(m).to_owned(),
            " through ",
        ),
        "and",
    )
}

pub(super) fn dom_list(set: u64) -> String {
    let vals = values(set, 1, 31);
    if let Some(step) = covering_step(&vals, 31) {
        return match (step, vals[0]) {
            (2, 1) => "odd days of the month".to_owned(),
            (2, 2) => "even days of the month".to_owned(),
            (_, first) => format!("every {step} days of the month from day {first}"),
        };
    }
    let words = numbers(&vals, |d| d.to_string());
    if vals.len() == 1 {
        format!("day {words} of the month")
    } else {
        format!("days {words} of the month")
    }
}

fn time_part(f: &Fields) -> String {
    let secs = values(f.seconds, 0, 59);
    let mins = values(f.minutes, 0, 59);
    let hours = values(f.hours, 0, 23);
    let sec_suffix = |s: u32| {
        if f.has_seconds && s != 0 {
            format!(":{s:02}")
        } else {
            String::new()
        }
    };
    match (secs.as_slice(), mins.as_slice(), hours.as_slice()) {
        ([s], [m], [h]) => format!("at {h:02}:{m:02}{}", sec_suffix(*s)),
        ([s], [m], hs) => {
            let at = if *s == 0 || !f.has_seconds {
                format!("at minute {m}")
            } else {
                format!("at {m:02}:{s:02}")
            };
            if full(f.hours, 0, 23) {
                format!("{at} of every hour")
            } else {
                format!("{at} past hour {}", numbers(hs, |h| format!("{h:02}")))
            }
        }
        (ss, ms, _) => {
            let mut out = if f.has_seconds && full(f.seconds, 0, 59) {
                "every second".to_owned()
            } else if f.has_seconds && !(ss.len() == 1 && ss[0] == 0) {
                match covering_step(ss, 59) {
                    Some(step) if ss[0] == 0 => format!("every {step} seconds"),
                    _ => format!("at second {}", numbers(ss, |s| s.to_string())),
                }
            } else {
                String::new()
            };
            let minutes = if full(f.minutes, 0, 59) {
                "every minute".to_owned()
            } else {
                match covering_step(ms, 59) {
                    Some(step) if ms[0] == 0 => format!("every {step} minutes"),
                    _ => format!("at minute {}", numbers(ms, |m| m.to_string())),
                }
            };
            if out.is_empty() {
                out = minutes;
            } else if !(f.has_seconds && full(f.minutes, 0, 59)) {
                out = format!("{out}, {minutes}");
            }
            if !full(f.hours, 0, 23) {
                out = format!(
                    "{out}, during hour {}",
                    numbers(&hours, |h| format!("{h:02}"))
                );
            }
            out
        }
    }
}

/// The days in words, from the same rule [`Days::of`] computes.
fn day_part(f: &Fields, days: Days) -> Option<String> {
    match days {
        Days::Every { ored: false } => None,
        // Say why every day: the fields are ORed, and one allows all.
        Days::Every { ored: true } => Some(format!(
            "on every day ({} OR {})",
            dom_list(f.days_of_month),
            weekday_list(f.days_of_week, "and")
        )),
        Days::OfWeek(dow) => Some(format!("on {}", weekday_list(dow, "and"))),
        Days::OfMonth(dom) => Some(format!("on {}", dom_list(dom))),
        // One day is one weekday: "or", never "and".
        Days::Both { dom, dow } => Some(format!(
            "on {} that fall on {}",
            dom_list(dom),
            weekday_list(dow, "or")
        )),
        Days::Either { dom, dow } => Some(format!(
            "on {} OR on {}",
            dom_list(dom),
            weekday_list(dow, "and")
        )),
    }
}

/// The whole schedule, structured and in words.
pub(super) fn describe(f: &Fields) -> Description {
    let days = Days::of(f);
    let mut words = time_part(f);
    if let Some(day_words) = day_part(f, days) {
        words = format!("{words} {day_words}");
    }
    if !full(f.months, 1, 12) {
        // After an OR, a comma keeps the months from reading as part of
        // its second half: they restrict both.
        let sep = if matches!(days, Days::Either { .. }) {
            ", in"
        } else {
            " in"
        };
        words = format!("{words}{sep} {}", month_list(f.months));
    }
    Description {
        days,
        months: f.months,
        words,
    }
}

/// The warning for expressions whose day fields are ORed.
pub(super) fn or_warning(f: &Fields) -> Option<String> {
    if !days_ored(f) {
        return None;
    }
    Some(format!(
        "fires on {} OR on {}: classic cron matches either day field when both are \
         restricted (APScheduler, Quartz and the `cron` crate require both); to run only \
         when both match, schedule on one field and check the other in the job",
        dom_list(f.days_of_month),
        weekday_list(f.days_of_week, "and")
    ))
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn say(expr: &str) -> String {
        describe(&parse(expr).unwrap()).words
    }

    #[test]
    fn explains_common_expressions() {
        let cases = [
            ("0 9 * * mon", "at 09:00 on Monday"),
            ("30 18 * * 1-5", "at 18:30 on Monday through Friday"),
            ("*/15 * * * *", "every 15 minutes"),
            ("* * * * *", "every minute"),
            ("0 * * * *", "at minute 0 of every hour"),
            ("0 0 1 1 *", "at 00:00 on day 1 of the month in January"),
            ("0 0 13 * 5", "at 00:00 on day 13 of the month OR on Friday"),
            (
                "0 0 */2 * 1",
                "at 00:00 on odd days of the month that fall on Monday",
            ),
            ("*/10 * * * * *", "every 10 seconds"),
            ("0 0 9 * * sat,sun", "at 09:00 on Saturday and Sunday"),
            ("15 0 9-17 * * *", "at 00:15 past hour 09-17"),
            ("15 0 * * * *", "at 00:15 of every hour"),
            (
                "0 5,35 9-17 * * 1-5",
                "at minute 5 and 35, during hour 09-17 on Monday through Friday",
            ),
        ];
        for (expr, words) in cases {
            assert_eq!(say(expr), words, "{expr}");
        }
    }

    #[test]
    fn day_words_follow_the_matchers_or_and_decision() {
        let cases = [
            // Both restricted: ORed, and one of them allows every day.
            (
                "0 12 1-31 * 1",
                "at 12:00 on every day (days 1-31 of the month OR Monday)",
            ),
            (
                "0 12 1 * 0-6",
                "at 12:00 on every day (day 1 of the month OR Monday through Sunday)",
            ),
            (
                "0 12 1 * 1-7",
                "at 12:00 on every day (day 1 of the month OR Monday through Sunday)",
            ),
            // A `*`-led field, however stepped, makes it AND.
            (
                "0 12 1-15 * */6",
                "at 12:00 on days 1-15 of the month that fall on Saturday or Sunday",
            ),
            ("0 12 */1 * 1", "at 12:00 on Monday"),
            (
                "0 12 */2 * 1-5",
                "at 12:00 on odd days of the month that fall on Monday through Friday",
            ),
            ("0 12 */2 * 0-6", "at 12:00 on odd days of the month"),
            ("0 12 * * 0-6", "at 12:00"),
            (
                "0 12 1-5 * 1,3",
                "at 12:00 on days 1-5 of the month OR on Monday and Wednesday",
            ),
            (
                "0 12 13 3 5",
                "at 12:00 on day 13 of the month OR on Friday, in March",
            ),
        ];
        for (expr, words) in cases {
            assert_eq!(say(expr), words, "{expr}");
        }
    }

    #[test]
    fn lists_read_one_way() {
        let cases = [
            (
                "0 9 * * 1-7/2",
                "at 09:00 on Monday, Wednesday, Friday and Sunday",
            ),
            ("0 9 * * fri-sun", "at 09:00 on Friday through Sunday"),
            ("0 9 * * sat-sun", "at 09:00 on Saturday and Sunday"),
            (
                "0 9 * * 0-4",
                "at 09:00 on Monday through Thursday and Sunday",
            ),
            (
                "0 9 1,2,5,6 * *",
                "at 09:00 on days 1, 2, 5 and 6 of the month",
            ),
            (
                "0 9 1 1,2,4-6 *",
                "at 09:00 on day 1 of the month in January, February and April through June",
            ),
        ];
        for (expr, words) in cases {
            assert_eq!(say(expr), words, "{expr}");
        }
    }

    #[test]
    fn steps_are_named_only_when_they_run_to_the_end() {
        let cases = [
            ("0-30/10 * * * *", "at minute 0, 10, 20 and 30"),
            ("*/10 * * * *", "every 10 minutes"),
            (
                "0 9 1-10/2 * *",
                "at 09:00 on days 1, 3, 5, 7 and 9 of the month",
            ),
            ("0 9 */2 * *", "at 09:00 on odd days of the month"),
            ("0 9 2-31/2 * *", "at 09:00 on even days of the month"),
            (
                "0 9 5-20/5 * *",
                "at 09:00 on days 5, 10, 15 and 20 of the month",
            ),
            (
                "0 9 */10 * *",
                "at 09:00 on every 10 days of the month from day 1",
            ),
            ("0-20/10 * * * * *", "at second 0, 10 and 20"),
        ];
        for (expr, words) in cases {
            assert_eq!(say(expr), words, "{expr}");
        }
    }

    #[test]
    fn warns_only_when_both_day_fields_are_restricted() {
        let w = or_warning(&parse("0 0 13 * 5").unwrap()).unwrap();
        assert!(
            w.starts_with("fires on day 13 of the month OR on Friday"),
            "{w}"
        );
        assert!(or_warning(&parse("0 0 */2 * 1").unwrap()).is_none());
        assert!(or_warning(&parse("0 0 13 * *").unwrap()).is_none());
    }
}
