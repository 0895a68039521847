//! Interval, date, combinations, bounds, jitter and spec validation.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn spec(json: &str) -> TriggerSpec {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn build(json: &str) -> Trigger {
    spec(json)
        .build(t("2026-01-01T00:00:00Z"), 7)
        .unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn fires(trigger: &Trigger, after: &str, n: usize) -> Vec<String> {
    let mut at = t(after);
    let mut out = Vec::new();
    for _ in 0..n {
        match trigger.next_after(at) {
            Some(next) => {
                out.push(next.to_rfc3339());
                at = next;
            }
            None => break,
        }
    }
    out
}

#[test]
fn interval_is_anchored_and_never_drifts() {
    let tr = build(r#"{"type":"interval","every":"1h30m","start":"2026-01-01T09:00:00Z"}"#);
    // From well after the anchor, the k-th fire is anchor + k * interval.
    assert_eq!(
        fires(&tr, "2026-01-03T10:17:42.5Z", 3),
        [
            "2026-01-03T10:30:00+00:00",
            "2026-01-03T12:00:00+00:00",
            "2026-01-03T13:30:00+00:00"
        ]
    );
    // Before the anchor, the anchor itself is the first fire.
    assert_eq!(
        fires(&tr, "2026-01-01T00:00:00Z", 1),
        ["2026-01-01T09:00:00+00:00"]
    );
}

#[test]
fn interval_without_start_fires_one_interval_after_it_was_added() {
    let tr = build(r#"{"type":"interval","every":"30s"}"#);
    assert_eq!(
        fires(&tr, "2026-01-01T00:00:00Z", 2),
        ["2026-01-01T00:00:30+00:00", "2026-01-01T00:01:00+00:00"]
    );
}

#[test]
fn interval_end_stops_it() {
    let tr = build(
        r#"{"type":"interval","every":"1d","start":"2026-01-01T00:00:00Z","end":"2026-01-03T00:00:00Z"}"#,
    );
    assert_eq!(fires(&tr, "2025-12-31T00:00:00Z", 10).len(), 3);
}

#[test]
fn date_fires_once() {
    let tr = build(r#"{"type":"date","at":"2026-12-01T09:00:00+08:00"}"#);
    assert_eq!(
        fires(&tr, "2026-01-01T00:00:00Z", 5),
        ["2026-12-01T01:00:00+00:00"]
    );
    assert_eq!(tr.next_after(t("2026-12-01T01:00:00Z")), None);
}

#[test]
fn date_accepts_local_time_in_a_zone() {
    let tr = build(r#"{"type":"date","at":"2026-07-01T09:00:00","tz":"Europe/Berlin"}"#);
    assert_eq!(
        fires(&tr, "2026-01-01T00:00:00Z", 1),
        ["2026-07-01T07:00:00+00:00"]
    );
    // A repeated local time means its first occurrence.
    let tr = build(r#"{"type":"date","at":"2026-10-25T02:30:00","tz":"Europe/Berlin"}"#);
    assert_eq!(
        fires(&tr, "2026-01-01T00:00:00Z", 1),
        ["2026-10-25T00:30:00+00:00"]
    );
}

#[test]
fn cron_bounds_include_start_and_end() {
    let tr = build(
        r#"{"type":"cron","expr":"0 9 * * *","start":"2026-02-01T09:00:00Z","end":"2026-02-03T09:00:00Z"}"#,
    );
    assert_eq!(
        fires(&tr, "2026-01-01T00:00:00Z", 10),
        [
            "2026-02-01T09:00:00+00:00",
            "2026-02-02T09:00:00+00:00",
            "2026-02-03T09:00:00+00:00"
        ]
    );
}

#[test]
fn any_takes_the_earliest_and_all_the_agreements() {
    let any = build(
        r#"{"type":"any","triggers":[
            {"type":"cron","expr":"0 9 * * *"},
            {"type":"date","at":"2026-01-01T12:00:00Z"}]}"#,
    );
    assert_eq!(
        fires(&any, "2026-01-01T08:00:00Z", 3),
        [
            "2026-01-01T09:00:00+00:00",
            "2026-01-01T12:00:00+00:00",
            "2026-01-02T09:00:00+00:00"
        ]
    );
    // Every 15 minutes AND at minute 30 → every hour at :30.
    let all = build(
        r#"{"type":"all","triggers":[
            {"type":"interval","every":"15m","start":"2026-01-01T00:00:00Z"},
            {"type":"cron","expr":"30 * * * *"}]}"#,
    );
    assert_eq!(
        fires(&all, "2026-01-01T00:00:00Z", 2),
        ["2026-01-01T00:30:00+00:00", "2026-01-01T01:30:00+00:00"]
    );
    // Triggers that never agree end the schedule instead of hanging.
    let never = build(
        r#"{"type":"all","triggers":[
            {"type":"cron","expr":"0 * * * *"},
            {"type":"cron","expr":"30 * * * *"}]}"#,
    );
    assert_eq!(never.next_after(t("2026-01-01T00:00:00Z")), None);
}

#[test]
fn jitter_is_bounded_stable_and_loses_nothing() {
    let json = r#"{"type":"cron","expr":"0 * * * *","jitter":"10m"}"#;
    let a = build(json);
    let b = build(json);
    let fa = fires(&a, "2026-01-01T00:00:00Z", 48);
    assert_eq!(
        fa,
        fires(&b, "2026-01-01T00:00:00Z", 48),
        "same seed, same times"
    );
    assert_eq!(fa.len(), 48);
    for (hour, fire) in fa.iter().enumerate() {
        let fire = t(fire);
        // The 00:00 fire is jittered past `after`, so it is the first.
        let nominal = t("2026-01-01T00:00:00Z") + Duration::hours(hour as i64);
        assert!(
            fire >= nominal && fire < nominal + Duration::minutes(10),
            "{fire}"
        );
    }
    let other_seed = spec(json).build(t("2026-01-01T00:00:00Z"), 8).unwrap();
    assert_ne!(fa, fires(&other_seed, "2026-01-01T00:00:00Z", 48));
}

#[test]
fn cron_warnings_surface_through_combinations() {
    let tr = build(
        r#"{"type":"any","triggers":[{"type":"cron","expr":"0 0 13 * 5"},{"type":"interval","every":"1h"}]}"#,
    );
    let w = tr.warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].contains("day 13 of the month OR on Friday"),
        "{}",
        w[0]
    );
}

#[test]
fn spec_errors_name_the_field() {
    let now = t("2026-01-01T00:00:00Z");
    let cases = [
        (
            r#"{"type":"cron","expr":"60 * * * *"}"#,
            "expr",
            "minute: 60 is out of range 0-59",
        ),
        (
            r#"{"type":"cron","expr":"0 0 30 2 *"}"#,
            "expr",
            "can never fire",
        ),
        (
            r#"{"type":"cron","expr":"0 9 * * *","tz":"Mars/Olympus"}"#,
            "tz",
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            r#"{"type":"interval","every":"0s"}"#,
            "every",
            "greater than 0",
        ),
        (
            r#"{"type":"interval","every":"30"}"#,
            "every",
            "has no unit",
        ),
        (
            r#"{"type":"interval","every":"1m","jitter":"2m"}"#,
            "jitter",
            "shorter than the interval",
        ),
        (
            r#"{"type":"interval","every":"1m","start":"tomorrow"}"#,
            "start",
            "is not a time",
        ),
        (
            r#"{"type":"cron","expr":"* * * * *","start":"2026-02-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}"#,
            "end",
            "is before start",
        ),
        (
            r#"{"type":"date","at":"2026-03-29T02:30:00","tz":"Europe/Berlin"}"#,
            "at",
            "does not exist in Europe/Berlin",
        ),
        (
            r#"{"type":"any","triggers":[]}"#,
            "triggers",
            "needs at least one",
        ),
    ];
    for (json, field, message) in cases {
        let err = spec(json).build(now, 0).expect_err(json);
        assert_eq!(err.field(), field, "{json}");
        assert!(err.to_string().contains(message), "{json}: {err}");
    }
}

#[test]
fn spec_json_refuses_unknown_fields_and_types() {
    assert!(
        serde_json::from_str::<TriggerSpec>(r#"{"type":"cron","expr":"* * * * *","tzz":"UTC"}"#)
            .is_err()
    );
    assert!(serde_json::from_str::<TriggerSpec>(r#"{"type":"weekly"}"#).is_err());
    let round = spec(r#"{"type":"interval","every":"30s"}"#);
    let json = serde_json::to_string(&round).unwrap();
    assert_eq!(json, r#"{"type":"interval","every":"30s"}"#);
}
