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

// Found by the `trigger_json` fuzz target (fuzz/corpus/trigger_json/
// crash-cron-jitter-overflow.json): a jitter of 50 billion days made
// `next_after` compute `after - jitter` off chrono's calendar, which panics.
#[test]
fn fuzz_a_jitter_off_the_calendar_is_refused_not_a_panic() {
    let json = r#"{"type": "cron", "expr":" * * * * * *", "tz": "Australia/Lord_Howe", "jitter": "000000000000000000000000000000000000000000050000000002d"}"#;
    let err = spec(json)
        .build(t("2026-01-01T00:00:00Z"), 7)
        .expect_err(json);
    assert_eq!(err.field(), "jitter", "{err}");
    assert!(err.to_string().contains("closest fires (1s)"), "{err}");
}

// Found by reading the code beside that crash, and confirmed with the
// `trigger_json` target (fuzz/corpus/trigger_json/crash-interval-anchor-
// overflow.json): an interval without a start is anchored at `now + every`,
// which panicked past chrono's calendar.
#[test]
fn fuzz_an_interval_off_the_calendar_is_refused_not_a_panic() {
    let json = r#"{"type":"interval","every":"100000000d"}"#;
    let err = spec(json)
        .build(t("2026-01-01T00:00:00Z"), 7)
        .expect_err(json);
    assert_eq!(err.field(), "every", "{err}");
    assert!(err.to_string().contains("too large"), "{err}");
    // With a start the anchor is given: the first fire is the start, and
    // the next would be past the calendar, so there is none.
    let tr = build(r#"{"type":"interval","every":"100000000d","start":"2026-01-01T00:00:00Z"}"#);
    assert_eq!(
        fires(&tr, "2025-01-01T00:00:00Z", 3),
        ["2026-01-01T00:00:00+00:00"]
    );
}

#[test]
fn cron_jitter_must_be_shorter_than_the_closest_fires() {
    let now = t("2026-01-01T00:00:00Z");
    for (expr, longest_ok, gap) in [
        ("*/5 * * * *", "4m59s", "5m"),
        ("0 9,17 * * *", "7h59m", "8h"),
        ("0 9 * * mon", "6d23h", "7d"),
        ("0 0 1 1 *", "364d", "365d"),
        ("*/20 * * * * *", "19s", "20s"),
    ] {
        let ok = format!(r#"{{"type":"cron","expr":"{expr}","jitter":"{longest_ok}"}}"#);
        assert!(spec(&ok).build(now, 0).is_ok(), "{ok}");
        let too_long = format!(r#"{{"type":"cron","expr":"{expr}","jitter":"{gap}"}}"#);
        let err = spec(&too_long).build(now, 0).expect_err(&too_long);
        assert_eq!(err.field(), "jitter");
        assert!(err.to_string().contains(&format!("({gap})")), "{err}");
    }
}

#[test]
fn jittered_fires_stay_in_order_across_daylight_saving() {
    // A fixed-time job's 02:30 moves to 03:00 on Berlin's spring-forward
    // day, 30 minutes before its 03:30: closer than its usual hour, and
    // than its 50-minute jitter. Fires still come in order, each once.
    let tr = build(r#"{"type":"cron","expr":"30 2,3 * * *","tz":"Europe/Berlin","jitter":"50m"}"#);
    // Eight nominal fires from the 28th to the 31st (02:30 and 03:30 each
    // day, the 29th's first at 03:00 CEST): eight fires, none lost to a
    // neighbour overtaking it, so the eighth is still on the 31st.
    let fa = fires(&tr, "2026-03-27T23:00:00Z", 8);
    assert_eq!(fa.len(), 8);
    for w in fa.windows(2) {
        assert!(t(&w[0]) < t(&w[1]), "{fa:?}");
    }
    assert!(
        t(&fa[7]) < t("2026-03-31T03:30:00+02:00") + Duration::minutes(50),
        "{fa:?}"
    );
}

// Found while fuzzing `trigger_json` (written after reading `all`'s loop,
// and a timeout for that target: fuzz/corpus/trigger_json/slow-nested-
// all.json): an `all` inside an `all` multiplied their 10,000 rounds, so
// one next_after took minutes. Now one search evaluates at most
// MAX_EVALUATIONS triggers, however they nest.
#[test]
fn fuzz_nested_all_is_bounded_not_slow() {
    let inner = r#"{"type":"all","triggers":[{"type":"interval","every":"86400001ms","start":"2026-01-01T00:00:00Z"},{"type":"interval","every":"86400000ms","start":"2026-01-01T00:00:00.5Z"}]}"#;
    let json = format!(
        r#"{{"type":"all","triggers":[{{"type":"any","triggers":[{inner},{{"type":"interval","every":"1000001ms","start":"2026-01-01T00:00:00Z"}}]}},{{"type":"interval","every":"1000000ms","start":"2026-01-01T00:00:00.3Z"}}]}}"#
    );
    let tr = build(&json);
    let started = std::time::Instant::now();
    assert_eq!(tr.next_after(t("2026-01-01T00:00:00Z")), None);
    // Generous for a debug build on a busy machine; it was minutes.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A single `all` still gets its 10,000 rounds: these two agree every
    // 7 days, 7 rounds apart, well within them.
    let weekly = build(
        r#"{"type":"all","triggers":[{"type":"cron","expr":"0 0 * * *"},{"type":"interval","every":"7d","start":"2026-01-04T00:00:00Z"}]}"#,
    );
    assert_eq!(
        fires(&weekly, "2026-01-01T00:00:00Z", 2),
        ["2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"]
    );
}
