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
