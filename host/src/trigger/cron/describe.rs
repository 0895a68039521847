//! Cron fields in words, for `wasmcron cron explain` and job warnings.

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

fn full(set: u64, lo: u32, hi: u32) -> bool {
    (lo..=hi).all(|v| set & (1u64 << v) != 0)
}

/// Consecutive runs: [1,2,3,5] → [(1,3),(5,5)].
fn runs(vals: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &v in vals {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == v => *end = v,
            _ => out.push((v, v)),
        }
    }
    out
}

/// The constant step of a run of values, if they form one of at least 3.
fn step_of(vals: &[u32]) -> Option<u32> {
    if vals.len() < 3 {
        return None;
    }
    let step = vals[1] - vals[0];
    (step > 1 && vals.windows(2).all(|w| w[1] - w[0] == step)).then_some(step)
}

/// "1, 3 and 5-9", with `name` turning values into words.
fn list(vals: &[u32], name: impl Fn(u32) -> String, through: &str) -> String {
    let parts: Vec<String> = runs(vals)
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                name(a)
            } else if b == a + 1 {
                format!("{} and {}", name(a), name(b))
            } else {
                format!("{}{through}{}", name(a), name(b))
            }
        })
        .collect();
    match parts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn weekday_list(set: u64) -> String {
    list(
        &values(set, 0, 6),
        |d| WEEKDAYS[d as usize].to_owned(),
        " through ",
    )
}

fn dom_list(set: u64) -> String {
    let vals = values(set, 1, 31);
    if let Some(step) = step_of(&vals) {
        let parity = match (step, vals.first()) {
            (2, Some(1)) => Some("odd"),
            (2, Some(2)) => Some("even"),
            _ => None,
        };
        if let Some(p) = parity {
            return format!("{p} days of the month");
        }
        return format!("every {step} days of the month from day {}", vals[0]);
    }
    let words = list(&vals, |d| d.to_string(), "-");
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
                format!("{at} past hour {}", list(hs, |h| format!("{h:02}"), "-"))
            }
        }
        (ss, ms, _) => {
            let mut out = if f.has_seconds && full(f.seconds, 0, 59) {
                "every second".to_owned()
            } else if f.has_seconds && !(ss.len() == 1 && ss[0] == 0) {
                match step_of(ss) {
                    Some(step) if ss[0] == 0 => format!("every {step} seconds"),
                    _ => format!("at second {}", list(ss, |s| s.to_string(), "-")),
                }
            } else {
                String::new()
            };
            let minutes = if full(f.minutes, 0, 59) {
                "every minute".to_owned()
            } else {
                match step_of(ms) {
                    Some(step) if ms[0] == 0 => format!("every {step} minutes"),
                    _ => format!("at minute {}", list(ms, |m| m.to_string(), "-")),
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
                    list(&hours, |h| format!("{h:02}"), "-")
                );
            }
            out
        }
    }
}

fn day_part(f: &Fields) -> Option<String> {
    let dom_all = full(f.days_of_month, 1, 31);
    let dow_all = full(f.days_of_week, 0, 6);
    match (dom_all, dow_all) {
        (true, true) => None,
        (true, false) => Some(format!("on {}", weekday_list(f.days_of_week))),
        (false, true) => Some(format!("on {}", dom_list(f.days_of_month))),
        (false, false) if f.dom_star || f.dow_star => Some(format!(
            "on {} that are also {}",
            dom_list(f.days_of_month),
            weekday_list(f.days_of_week)
        )),
        (false, false) => Some(format!(
            "on {} OR on {}",
            dom_list(f.days_of_month),
            weekday_list(f.days_of_week)
        )),
    }
}

/// The whole schedule in words.
pub(super) fn explain(f: &Fields) -> String {
    let mut out = time_part(f);
    if let Some(days) = day_part(f) {
        out = format!("{out} {days}");
    }
    if !full(f.months, 1, 12) {
        out = format!(
            "{out} in {}",
            list(
                &values(f.months, 1, 12),
                |m| month_name(m).to_owned(),
                " through "
            )
        );
    }
    out
}

/// The warning for expressions whose day fields are ORed.
pub(super) fn or_warning(f: &Fields) -> Option<String> {
    if f.dom_star || f.dow_star {
        return None;
    }
    Some(format!(
        "fires on {} OR on {}: classic cron matches either day field when both are \
         restricted (APScheduler, Quartz and the `cron` crate require both); to run only \
         when both match, schedule on one field and check the other in the job",
        dom_list(f.days_of_month),
        weekday_list(f.days_of_week)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn say(expr: &str) -> String {
        explain(&parse(expr).unwrap())
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
                "at 00:00 on odd days of the month that are also Monday",
            ),
            ("*/10 * * * * *", "every 10 seconds"),
            ("0 0 9 * * sat,sun", "at 09:00 on Sunday and Saturday"),
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
