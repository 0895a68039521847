//! Cron against a reference table, and `wasmcron cron next|explain` through
//! the binary.

use chrono::{DateTime, Utc};
use std::process::{Command, Output};
use wasmcron::trigger::cron::CronSchedule;

#[derive(serde::Deserialize)]
struct Table {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    expr: String,
    tz: String,
    after: String,
    next: Vec<String>,
}

/// Every row of tests/data/cron_known_answers.json (generated from Python's
/// croniter by the script beside it) must match exactly.
#[test]
fn matches_the_croniter_known_answer_table() {
    let table: Table =
        serde_json::from_str(include_str!("../data/cron_known_answers.json")).expect("table");
    assert!(table.cases.len() >= 100, "table too small");
    let mut mismatches = Vec::new();
    for case in &table.cases {
        let tz: chrono_tz::Tz = case.tz.parse().expect("zone");
        let schedule = CronSchedule::parse(&case.expr, tz).expect("parse");
        let mut at: DateTime<Utc> = DateTime::parse_from_rfc3339(&case.after)
            .expect("after")
            .with_timezone(&Utc);
        for expected in &case.next {
            let Some(next) = schedule.next_after(at) else {
                mismatches.push(format!("{} {} after {at}: none", case.expr, case.tz));
                break;
            };
            let got = next.with_timezone(&tz).to_rfc3339();
            if &got != expected {
                mismatches.push(format!(
                    "{} ({}) after {at}: got {got}, croniter {expected}",
                    case.expr, case.tz
                ));
                break;
            }
            at = next;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn wasmcron(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmcron"))
        .args(args)
        .output()
        .expect("run wasmcron")
}

#[test]
fn next_prints_json_times_in_the_zone() {
    let out = wasmcron(&[
        "cron",
        "next",
        "0 * * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-10-24T23:30:00Z",
        "--count",
        "4",
        "--json",
    ]);
    assert!(out.status.success());
    let times: Vec<String> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        times,
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T04:00:00+01:00"
        ]
    );
}

#[test]
fn next_prints_a_readable_list_and_the_or_warning() {
    let out = wasmcron(&[
        "cron",
        "next",
        "0 0 13 * 5",
        "--after",
        "2026-03-12T00:00:00Z",
        "--count",
        "2",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("at 00:00 on day 13 of the month OR on Friday"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Fri 2026-03-13 00:00:00 +00:00"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Fri 2026-03-20 00:00:00 +00:00"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: fires on day 13 of the month OR on Friday"),
        "{stderr}"
    );
}

#[test]
fn next_fails_with_the_reason_for_bad_input() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["cron", "next", "60 * * * *"],
            "minute: 60 is out of range 0-59",
        ),
        (
            &["cron", "next", "0 0 30 2 *"],
            "can never fire: day 30 never occurs in February",
        ),
        (&["cron", "next", "0 0 1 jab *"], "unknown month name 'jab'"),
        (
            &["cron", "next", "* * * *"],
            "expected 5 or 6 fields, got 4",
        ),
        (
            &["cron", "next", "* * * * *", "--tz", "Mars/Olympus"],
            "unknown time zone",
        ),
    ];
    for (args, reason) in cases {
        let out = wasmcron(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn explain_says_it_in_words() {
    let out = wasmcron(&["cron", "explain", "0 9 * * mon"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "at 09:00 on Monday"
    );
}

fn next_json(expr: &str, tz: &str, after: &str, count: &str) -> Vec<String> {
    let out = wasmcron(&[
        "cron", "next", expr, "--tz", tz, "--after", after, "--count", count, "--json",
    ]);
    assert!(
        out.status.success(),
        "{expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn next_keeps_the_seconds_of_fires_moved_out_of_a_spring_gap() {
    assert_eq!(
        next_json(
            "45 30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            "2"
        ),
        ["2026-03-29T03:00:45+02:00", "2026-03-30T02:30:45+02:00"]
    );
    assert_eq!(
        next_json(
            "0,30 30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            "3"
        ),
        [
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T03:00:30+02:00",
            "2026-03-30T02:30:00+02:00"
        ]
    );
    assert_eq!(
        next_json(
            "15 30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            "1"
        ),
        ["2026-03-08T03:00:15-04:00"]
    );
}

#[test]
fn weekday_ranges_ending_on_sunday_run_through_sunday() {
    // 2026-03-06 is a Friday.
    assert_eq!(
        next_json("0 12 * * sat-sun", "UTC", "2026-03-06T00:00:00Z", "3"),
        [
            "2026-03-07T12:00:00+00:00",
            "2026-03-08T12:00:00+00:00",
            "2026-03-14T12:00:00+00:00"
        ]
    );
    assert_eq!(
        next_json("0 12 * * thu-sun", "UTC", "2026-03-03T00:00:00Z", "5"),
        [
            "2026-03-05T12:00:00+00:00",
            "2026-03-06T12:00:00+00:00",
            "2026-03-07T12:00:00+00:00",
            "2026-03-08T12:00:00+00:00",
            "2026-03-12T12:00:00+00:00"
        ]
    );
}

#[test]
fn refusals_say_what_to_write_instead() {
    let cases = [
        (
            "0 22-5 * * *",
            "hour: '22-5': the range runs backwards (cron ranges do not wrap around); \
             write '22-23,0-5' for 22 round to 5",
        ),
        (
            "0 9 * * fri-mon",
            "write 'fri-sun,mon' for fri round to mon",
        ),
        ("50-10 * * * *", "write '50-59,0-10'"),
        ("0 0 25-3 * *", "write '25-31,1-3'"),
        ("0 0 1 nov-feb *", "write 'nov-dec,jan-feb'"),
        (
            "0\u{a0}9 * * *",
            "character 2 is U+00A0 NO-BREAK SPACE: only a plain space or tab separates \
             fields: replace it with a plain space",
        ),
        ("0 9 * *\u{2003}1", "character 8 is U+2003 EM SPACE"),
        (
            "0 9\u{3000}* * 1",
            "character 4 is U+3000 IDEOGRAPHIC SPACE",
        ),
        ("0 9 * * 1\u{2013}5", "character 10 is U+2013 EN DASH"),
    ];
    for (expr, reason) in cases {
        for command in ["next", "explain"] {
            let out = wasmcron(&["cron", command, expr]);
            assert_eq!(out.status.code(), Some(1), "{command} {expr:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(reason), "{command} {expr:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{command} {expr:?}");
        }
    }
}

#[test]
fn explain_says_what_the_matcher_decides() {
    let cases = [
        (
            "0 12 1-31 * 1",
            "at 12:00 on every day (days 1-31 of the month OR Monday)",
        ),
        (
            "0 12 1 * 0-6",
            "at 12:00 on every day (day 1 of the month OR Monday through Sunday)",
        ),
        (
            "0 12 1-15 * */6",
            "at 12:00 on days 1-15 of the month that fall on Saturday or Sunday",
        ),
        (
            "0 12 * * 1-7/2",
            "at 12:00 on Monday, Wednesday, Friday and Sunday",
        ),
        ("0 12 * * sat-sun", "at 12:00 on Saturday and Sunday"),
        (
            "0-30/10 9 * * *",
            "at minute 0, 10, 20 and 30, during hour 09",
        ),
    ];
    for (expr, words) in cases {
        let out = wasmcron(&["cron", "explain", expr]);
        assert!(out.status.success(), "{expr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), words, "{expr}");
    }
    // The ORed pair still warns that either field is enough.
    let out = wasmcron(&["cron", "explain", "0 12 1-31 * 1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("warning: fires on days 1-31 of the month OR on Monday"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
