//! `cron explain` checked against the matcher: for random expressions, the
//! days `next_after` fires on over a year are exactly the days the
//! structured description ([`Days`] and months) includes, and exactly the
//! days its *words* name, read back by a small reader of the English below
//! that knows nothing of the describer.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

/// What the words say about days, read back from the text.
#[derive(Debug)]
enum Said {
    Every,
    Dom(u64),
    Dow(u64),
    And(u64, u64),
    Or(u64, u64),
}

impl Said {
    fn includes(&self, date: NaiveDate) -> bool {
        let dom = |set: u64| set & (1 << date.day()) != 0;
        let dow = |set: u64| set & (1 << date.weekday().num_days_from_sunday()) != 0;
        match *self {
            Self::Every => true,
            Self::Dom(d) => dom(d),
            Self::Dow(w) => dow(w),
            Self::And(d, w) => dom(d) && dow(w),
            Self::Or(d, w) => dom(d) || dow(w),
        }
    }
}

const WEEKDAY_WORDS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTH_WORDS: [&str; 12] = [
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

/// "A, B and C" → ["A", "B", "C"].
fn split_list<'a>(text: &'a str, conj: &str) -> Vec<&'a str> {
    let mut parts: Vec<&str> = text.split(", ").collect();
    if let Some(last) = parts.pop() {
        match last.split_once(&format!(" {conj} ")) {
            Some((a, b)) => {
                parts.push(a);
                parts.push(b);
            }
            None => parts.push(last),
        }
    }
    parts
}

fn number(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

fn bits(vals: impl Iterator<Item = u32>) -> u64 {
    vals.fold(0, |b, v| b | (1 << v))
}

fn read_dom(text: &str) -> Result<u64, String> {
    match text {
        "odd days of the month" => return Ok(bits((1..=31).step_by(2))),
        "even days of the month" => return Ok(bits((2..=31).step_by(2))),
        _ => {}
    }
    if let Some(rest) = text.strip_prefix("every ") {
        let (step, first) = rest
            .split_once(" days of the month from day ")
            .ok_or(format!("unread step: {text:?}"))?;
        let step = number(step)?;
        return Ok(bits((number(first)?..=31).step_by(step as usize)));
    }
    let list = text
        .strip_suffix(" of the month")
        .and_then(|t| t.strip_prefix("days ").or_else(|| t.strip_prefix("day ")))
        .ok_or(format!("unread days of the month: {text:?}"))?;
    let mut set = 0;
    for item in split_list(list, "and") {
        let (a, b) = item.split_once('-').unwrap_or((item, item));
        for d in number(a)?..=number(b)? {
            set |= 1 << d;
        }
    }
    Ok(set)
}

/// Names in `words` (cyclic: "Friday through Sunday" wraps).
fn read_names(text: &str, conj: &str, words: &[&str], first: u32) -> Result<u64, String> {
    let index = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .map(|i| i as u32)
            .ok_or(format!("unknown name {name:?} in {text:?}"))
    };
    let n = words.len() as u32;
    let mut set = 0;
    for item in split_list(text, conj) {
        let (a, b) = item.split_once(" through ").unwrap_or((item, item));
        let (mut i, end) = (index(a)?, index(b)?);
        loop {
            set |= 1 << (i + first);
            if i == end {
                break;
            }
            i = (i + 1) % n;
        }
    }
    Ok(set)
}

/// Reads the day and month words of a description.
fn read(words: &str) -> Result<(Said, u64), String> {
    let (rest, months) = match words.split_once(" in ") {
        Some((rest, months)) => (
            rest.trim_end_matches(','),
            read_names(months, "and", &MONTH_WORDS, 1)?,
        ),
        None => (words, 0x1FFE),
    };
    let Some((_, days)) = rest.split_once(" on ") else {
        return Ok((Said::Every, months));
    };
    let said = if days.starts_with("every day (") {
        Said::Every
    } else if let Some((dom, dow)) = days.split_once(" OR on ") {
        Said::Or(read_dom(dom)?, read_names(dow, "and", &WEEKDAY_WORDS, 0)?)
    } else if let Some((dom, dow)) = days.split_once(" that fall on ") {
        Said::And(read_dom(dom)?, read_names(dow, "or", &WEEKDAY_WORDS, 0)?)
    } else if days.contains(" of the month") {
        Said::Dom(read_dom(days)?)
    } else {
        Said::Dow(read_names(days, "and", &WEEKDAY_WORDS, 0)?)
    };
    Ok((said, months))
}

/// Every fire over leap year 2028 (UTC, one fire a matching day) against
/// the description and its words, both ways: a fired day is described, and
/// a described day fired.
fn check(expr: &str) -> Result<(), String> {
    let s = CronSchedule::parse(expr, Tz::UTC).map_err(|e| format!("{expr}: {e}"))?;
    let description = s.describe();
    let (said, said_months) =
        read(&description.words).map_err(|e| format!("{expr}: {:?}: {e}", description.words))?;
    let start = NaiveDate::from_ymd_opt(2028, 1, 1).ok_or("date")?;
    let end = NaiveDate::from_ymd_opt(2029, 1, 1).ok_or("date")?;
    let mut fired = BTreeSet::new();
    let mut t = start.and_hms_opt(0, 0, 0).ok_or("time")?.and_utc() - Duration::seconds(1);
    while let Some(n) = s.next_after(t) {
        if n.date_naive() >= end {
            break;
        }
        fired.insert(n.date_naive());
        t = n;
    }
    let in_months = |set: u64, d: NaiveDate| set & (1 << d.month()) != 0;
    for date in start.iter_days().take_while(|d| *d < end) {
        let did = fired.contains(&date);
        let structured = description.days.includes(date) && in_months(description.months, date);
        let worded = said.includes(date) && in_months(said_months, date);
        if did != structured || did != worded {
            return Err(format!(
                "{expr}: on {date} ({}) fired: {did}, {:?} says {structured}, \"{}\" says {worded}",
                date.weekday(),
                description.days,
                description.words
            ));
        }
    }
    Ok(())
}

#[test]
fn the_issues_expressions_are_described_as_they_fire() {
    for expr in [
        "0 12 1-31 * 1",
        "0 12 1 * 0-6",
        "0 12 1-15 * */6",
        "0 12 * * 1-7/2",
        "0 12 13 * 5",
        "0 0 */2 * 1",
        "0 12 * * sat-sun",
        "0 12 * * thu-sun",
        "0 12 1-10/2 * *",
        "0 12 5-20/5 * *",
        "0 12 */10 * *",
        "0 12 13 3 5",
        "0 12 1,*/2 * 1",
        "0 12 * jan,mar-may,dec 0",
    ] {
        check(expr).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A day-of-month, month or weekday field: stars, steps, values, ranges,
/// stepped ranges and lists of them, with names where the field has them.
fn field(lo: u32, hi: u32, names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let value = move |v: u32, named: bool| {
        let i = (v - lo) as usize;
        if named && !names.is_empty() {
            names[i % names.len()].to_owned()
        } else {
            v.to_string()
        }
    };
    let item = (0u32..6, lo..=hi, lo..=hi, 1u32..8, any::<bool>()).prop_map(
        move |(kind, a, b, step, named)| {
            let (a, b) = (a.min(b), a.max(b));
            match kind {
                0 => "*".to_owned(),
                1 => format!("*/{step}"),
                2 => value(a, named),
                3 => format!("{}-{}", value(a, named), value(b, named)),
                4 => format!("{}-{}/{step}", value(a, named), value(b, named)),
                _ => format!("{lo}-{hi}"),
            }
        },
    );
    prop::collection::vec(item, 1..4).prop_map(|items| items.join(","))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// For random day and month fields, `explain` names exactly the days
    /// `next_after` fires on over a year.
    #[test]
    fn explain_names_the_days_next_fires_on(
        dom in field(1, 31, &[]),
        month in field(1, 12, &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]),
        dow in field(0, 7, &["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        minute in 0u32..60,
        hour in 0u32..24,
    ) {
        let expr = format!("{minute} {hour} {dom} {month} {dow}");
        // Expressions that can never fire are refused, not described.
        if CronSchedule::parse(&expr, Tz::UTC).is_ok() {
            check(&expr).map_err(TestCaseError::fail)?;
        }
    }
}
