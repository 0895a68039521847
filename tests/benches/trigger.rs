//! Cost of parsing cron expressions and computing next fire times.
//!
//! `cargo bench -p wasmcron-tests --bench trigger`
//!
//! Medians over many repetitions, for typical and worst-case expressions,
//! next to the same work done by `croner` 4.0.3 (5/6 fields, OR of the day
//! fields) in the same run as a baseline. croner's semantics differ in
//! places (DST, `*`-led stepped day fields), so the baseline is for speed
//! only.
//! `next` is measured from a spread of start instants (one per hour over a
//! year) so no single lucky start dominates.

use chrono::{DateTime, Duration, Utc};
use std::hint::black_box;
use std::time::Instant;
use wasmcron::trigger::cron::CronSchedule;

fn median_ns(mut v: Vec<u128>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("trigger bench: skipped (run with `cargo bench`)");
        return;
    }
    let cases: &[(&str, &str, &str)] = &[
        ("every minute", "* * * * *", "UTC"),
        ("weekdays 09:00", "0 9 * * mon-fri", "UTC"),
        ("every 15 min, Berlin", "*/15 * * * *", "Europe/Berlin"),
        ("13th OR Friday", "0 0 13 * 5", "UTC"),
        ("odd days AND Monday", "0 0 */2 * 1", "UTC"),
        ("Feb 29 OR Monday", "0 0 29 2 1", "UTC"),
        ("Feb 29 only (leap years)", "0 0 29 2 *", "UTC"),
        (
            "yearly, New Year's Eve",
            "59 23 31 12 *",
            "America/New_York",
        ),
        ("every second", "* * * * * *", "UTC"),
    ];
    let base: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let starts: Vec<DateTime<Utc>> = (0..24 * 365)
        .map(|h| base + Duration::hours(h) + Duration::seconds(h % 3600))
        .collect();
    println!(
        "{:<28} {:<18} {:>10} {:>10} {:>12} {:>12} {:>7}",
        "case", "expression", "parse ns", "croner", "next ns", "croner", "ratio"
    );
    for (label, expr, zone) in cases {
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::Tz::UTC);
        let mut parse = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let t = Instant::now();
            let s = CronSchedule::parse(black_box(expr), tz);
            parse.push(t.elapsed().as_nanos());
            black_box(s.is_ok());
        }
        let Ok(schedule) = CronSchedule::parse(expr, tz) else {
            println!("{label}: does not parse");
            continue;
        };
        let mut next = Vec::with_capacity(starts.len() * 3);
        for _ in 0..3 {
            for start in &starts {
                let t = Instant::now();
                let n = schedule.next_after(black_box(*start));
                next.push(t.elapsed().as_nanos());
                black_box(n);
            }
        }
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        let mut c_parse = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let t = Instant::now();
            let c = parser.parse(black_box(expr));
            c_parse.push(t.elapsed().as_nanos());
            black_box(c.is_ok());
        }
        let mut c_next = Vec::with_capacity(starts.len() * 3);
        if let Ok(cron) = parser.parse(expr) {
            for _ in 0..3 {
                for start in &starts {
                    let local = start.with_timezone(&tz);
                    let t = Instant::now();
                    let n = cron.find_next_occurrence(black_box(&local), false);
                    c_next.push(t.elapsed().as_nanos());
                    black_box(n.is_ok());
                }
            }
        }
        let ours = median_ns(next);
        let theirs = median_ns(c_next);
        println!(
            "{label:<28} {expr:<18} {:>10.0} {:>10.0} {:>12.0} {:>12.0} {:>6.2}x",
            median_ns(parse),
            median_ns(c_parse),
            ours,
            theirs,
            ours / theirs
        );
    }
}
