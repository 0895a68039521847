//! Known answers, daylight-saving days, and properties checked against a
//! brute-force matcher.

use super::*;
use proptest::prelude::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

fn zone(name: &str) -> Tz {
    name.parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The next `n` fire times after `after`, as RFC 3339 in the schedule's zone.
fn next_n(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
    let tz = zone(tz);
    let s = CronSchedule::parse(expr, tz).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let mut t = utc(after);
    let mut out = Vec::new();
    for _ in 0..n {
        t = s
            .next_after(t)
            .unwrap_or_else(|| panic!("{expr}: no next after {t}"));
        out.push(t.with_timezone(&tz).to_rfc3339());
    }
    out
}

#[test]
fn day_fields_or_when_both_restricted() {
    // 2026-03-13 is a Friday; the next Fridays are 20 and 27, then April 3
    // and the 10th, then Monday April 13.
    assert_eq!(
        next_n("0 0 13 * 5", "UTC", "2026-03-12T00:00:00Z", 6),
        [
            "2026-03-13T00:00:00+00:00",
            "2026-03-20T00:00:00+00:00",
            "2026-03-27T00:00:00+00:00",
            "2026-04-03T00:00:00+00:00",
            "2026-04-10T00:00:00+00:00",
            "2026-04-13T00:00:00+00:00",
        ]
    );
}

#[test]
fn star_led_day_field_ands_even_when_stepped() {
    // Odd days that are Mondays: 2026-06-01, 06-15, 06-29, 07-13, 07-27.
    assert_eq!(
        next_n("0 0 */2 * 1", "UTC", "2026-05-31T00:00:00Z", 5),
        [
            "2026-06-01T00:00:00+00:00",
            "2026-06-15T00:00:00+00:00",
            "2026-06-29T00:00:00+00:00",
            "2026-07-13T00:00:00+00:00",
            "2026-07-27T00:00:00+00:00",
        ]
    );
}

#[test]
fn leap_day_only_schedules_wait_for_leap_years() {
    assert_eq!(
        next_n("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", 2),
        ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]
    );
    // Feb 29 OR Mondays: the Mondays come first.
    assert_eq!(
        next_n("0 0 29 2 1", "UTC", "2026-02-01T00:00:00Z", 1),
        ["2026-02-02T00:00:00+00:00"]
    );
}

#[test]
fn never_firing_expressions_are_refused() {
    for expr in [
        "0 0 30 2 *",
        "0 0 31 4 *",
        "0 0 31 2,4,6,9,11 *",
        "0 0 30,31 2 *",
    ] {
        match CronSchedule::parse(expr, Tz::UTC) {
            Err(CronError::NeverFires { reason, .. }) => {
                assert!(reason.contains("never occurs"), "{expr}: {reason}");
            }
            other => panic!("{expr}: expected NeverFires, got {other:?}"),
        }
    }
    // These look odd but do fire.
    for expr in ["0 0 31 * *", "0 0 29 2 *", "0 0 30 2 5"] {
        assert!(CronSchedule::parse(expr, Tz::UTC).is_ok(), "{expr}");
    }
}

#[test]
fn seconds_field_and_time_zones() {
    assert_eq!(
        next_n("*/20 * * * * *", "UTC", "2026-01-01T00:00:05Z", 3),
        [
            "2026-01-01T00:00:20+00:00",
            "2026-01-01T00:00:40+00:00",
            "2026-01-01T00:01:00+00:00",
        ]
    );
    assert_eq!(
        next_n("0 9 * * mon", "Asia/Shanghai", "2026-11-25T00:00:00Z", 2),
        ["2026-11-30T09:00:00+08:00", "2026-12-07T09:00:00+08:00"]
    );
}

#[test]
fn strictly_after_not_at() {
    assert_eq!(
        next_n("0 9 * * *", "UTC", "2026-01-01T09:00:00Z", 1),
        ["2026-01-02T09:00:00+00:00"]
    );
    // A sub-second past a fire is still past it.
    assert_eq!(
        next_n("0 9 * * *", "UTC", "2026-01-01T08:59:59.999Z", 1),
        ["2026-01-01T09:00:00+00:00"]
    );
}

// Europe/Berlin 2026: spring forward 2026-03-29 02:00 CET → 03:00 CEST,
// fall back 2026-10-25 03:00 CEST → 02:00 CET.

#[test]
fn berlin_spring_gap_fixed_time_fires_once_after_the_gap() {
    assert_eq!(
        next_n("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
        [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ]
    );
    // Several skipped wall times of one job still fire once.
    assert_eq!(
        next_n(
            "0,15,30,45 2 * * *",
            "Europe/Berlin",
            "2026-03-29T00:50:00Z",
            2
        ),
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"]
    );
}

#[test]
fn spring_gap_fires_keep_their_seconds() {
    // Each fire of the missing wall times moves to the first minute after
    // the gap at its own second; one job's fires at equal seconds merge.
    let cases: [(&str, &str, &str, &[&str]); 6] = [
        (
            "45 30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &["2026-03-29T03:00:45+02:00", "2026-03-30T02:30:45+02:00"],
        ),
        (
            "0,30 30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &[
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:00:30+02:00",
                "2026-03-30T02:30:00+02:00",
            ],
        ),
        (
            "15 30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            &["2026-03-08T03:00:15-04:00", "2026-03-09T02:30:15-04:00"],
        ),
        (
            // Lord Howe's gap is half an hour: 02:00 → 02:30.
            "20,40 15 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-03T12:00:00Z",
            &[
                "2026-10-04T02:30:20+11:00",
                "2026-10-04T02:30:40+11:00",
                "2026-10-05T02:15:20+11:00",
            ],
        ),
        (
            // Troll's gap is two hours (01:00 +00 → 03:00 +02): fires of
            // both missing hours at one second are one fire.
            "5 30 1,2 * * *",
            "Antarctica/Troll",
            "2026-03-28T12:00:00Z",
            &[
                "2026-03-29T03:00:05+02:00",
                "2026-03-30T01:30:05+02:00",
                "2026-03-30T02:30:05+02:00",
            ],
        ),
        (
            "0,20,40 0,15,30,45 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            &[
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:00:20+02:00",
                "2026-03-29T03:00:40+02:00",
                "2026-03-30T02:00:00+02:00",
            ],
        ),
    ];
    for (expr, tz, after, expected) in cases {
        assert_eq!(
            next_n(expr, tz, after, expected.len()),
            expected,
            "{expr} {tz}"
        );
    }
    // A wildcard job with seconds still has no runs for missing times.
    assert_eq!(
        next_n(
            "10,50 * 2 * * *",
            "Europe/Berlin",
            "2026-03-29T00:59:00Z",
            1
        ),
        ["2026-03-30T02:00:10+02:00"]
    );
}

#[test]
fn asked_inside_the_first_minute_after_a_gap_the_later_seconds_still_come() {
    // 01:00:10Z is 03:00:10 CEST: the fire at 03:00:00 is past, the one at
    // 03:00:30 is not.
    assert_eq!(
        next_n(
            "0,30 30 2 * * *",
            "Europe/Berlin",
            "2026-03-29T01:00:10Z",
            2
        ),
        ["2026-03-29T03:00:30+02:00", "2026-03-30T02:30:00+02:00"]
    );
    assert_eq!(
        next_n("45 30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", 1),
        ["2026-03-29T03:00:45+02:00"]
    );
    // From the last gap fire on, the next day's.
    assert_eq!(
        next_n(
            "0,30 30 2 * * *",
            "Europe/Berlin",
            "2026-03-29T01:00:30Z",
            1
        ),
        ["2026-03-30T02:30:00+02:00"]
    );
    assert_eq!(
        next_n(
            "20,40 15 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-03T15:30:30Z",
            2
        ),
        ["2026-10-04T02:30:40+11:00", "2026-10-05T02:15:20+11:00"]
    );
}

#[test]
fn berlin_spring_gap_wildcard_jobs_skip_missing_times() {
    assert_eq!(
        next_n("30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 3),
        [
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T03:30:00+02:00",
            "2026-03-29T04:30:00+02:00",
        ]
    );
}

#[test]
fn berlin_fall_back_wildcard_fires_every_real_hour() {
    assert_eq!(
        next_n("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 4),
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T04:00:00+01:00",
        ]
    );
}

#[test]
fn berlin_fall_back_fixed_time_fires_once_at_the_first_occurrence() {
    assert_eq!(
        next_n("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
    // Asked from inside the overlap, after the first 02:30, it does not
    // fire again at the second.
    assert_eq!(
        next_n("30 2 * * *", "Europe/Berlin", "2026-10-25T00:45:00Z", 1),
        ["2026-10-26T02:30:00+01:00"]
    );
}

#[test]
fn berlin_fall_back_wildcard_searched_from_inside_the_overlap() {
    // 00:40 UTC is 02:40 CEST, before the change; the next */30 times in
    // real order: 02:00 CET (01:00Z), 02:30 CET, 03:00 CET.
    assert_eq!(
        next_n("*/30 * * * *", "Europe/Berlin", "2026-10-25T00:40:00Z", 3),
        [
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ]
    );
}

// America/New_York 2026: spring forward 2026-03-08 02:00 EST → 03:00 EDT,
// fall back 2026-11-01 02:00 EDT → 01:00 EST.

#[test]
fn new_york_dst_days() {
    assert_eq!(
        next_n("15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:15:00-04:00"]
    );
    assert_eq!(
        next_n("30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z", 2),
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    );
    assert_eq!(
        next_n(
            "*/30 1 * * *",
            "America/New_York",
            "2026-11-01T04:50:00Z",
            5
        ),
        [
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-02T01:00:00-05:00",
        ]
    );
}

// Australia/Lord_Howe 2026: a 30-minute shift. Fall back 2026-04-05 02:00
// (+11) → 01:30 (+10:30); spring forward 2026-10-04 02:00 (+10:30) → 02:30
// (+11).

#[test]
fn lord_howe_half_hour_shifts() {
    // Spring: 02:00-02:29 do not exist.
    assert_eq!(
        next_n(
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2026-10-03T12:00:00Z",
            2
        ),
        ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]
    );
    assert_eq!(
        next_n(
            "*/15 * * * *",
            "Australia/Lord_Howe",
            "2026-10-03T15:10:00Z",
            3
        ),
        [
            "2026-10-04T01:45:00+10:30",
            "2026-10-04T02:30:00+11:00",
            "2026-10-04T02:45:00+11:00",
        ]
    );
    // Autumn: 01:30-01:59 happen twice.
    assert_eq!(
        next_n(
            "45 1 * * *",
            "Australia/Lord_Howe",
            "2026-04-04T12:00:00Z",
            2
        ),
        ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"]
    );
    assert_eq!(
        next_n(
            "*/30 1 * * *",
            "Australia/Lord_Howe",
            "2026-04-04T14:10:00Z",
            4
        ),
        [
            "2026-04-05T01:30:00+11:00",
            "2026-04-05T01:30:00+10:30",
            "2026-04-06T01:00:00+10:30",
            "2026-04-06T01:30:00+10:30",
        ]
    );
}

/// Brute force: every second of a window, checked with `matches_wall` and
/// the DST rule spelled out directly.
fn brute_force(s: &CronSchedule, from: DateTime<Utc>, seconds: i64) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut fired_walls = std::collections::HashSet::new();
    // The generated expressions have no seconds field: minutes suffice.
    for i in 1..=seconds / 60 {
        let t = from + Duration::minutes(i);
        let wall = t.with_timezone(&s.tz()).naive_local();
        if s.matches_wall(wall) && (s.fields().wildcard_time || fired_walls.insert(wall)) {
            out.push(t);
        }
    }
    out
}

fn expr_strategy() -> impl Strategy<Value = String> {
    let field = |max: u32| {
        prop_oneof![
            Just("*".to_owned()),
            (0..=max).prop_map(|v| v.to_string()),
            (1..=max.max(1)).prop_map(|s| format!("*/{s}")),
            (0..=max, 0..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (0..=max, 0..=max).prop_map(|(a, b)| format!("{a},{b}")),
        ]
    };
    (field(59), field(23), field(30), field(11), field(7)).prop_map(|(m, h, dom, mon, dow)| {
        // Shift day-of-month and month fields into their 1-based ranges.
        let shift = |f: String| {
            f.split(',')
                .map(|item| {
                    if item.starts_with('*') {
                        item.to_owned()
                    } else if let Some((a, b)) = item.split_once('-') {
                        format!(
                            "{}-{}",
                            a.parse::<u32>().unwrap_or(0) + 1,
                            b.parse::<u32>().unwrap_or(0) + 1
                        )
                    } else {
                        (item.parse::<u32>().unwrap_or(0) + 1).to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        format!("{m} {h} {} {} {dow}", shift(dom), shift(mon))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over 3-day windows (crossing Berlin's 2026 DST days when the start
    /// lands near them), the fast search finds exactly what brute force finds.
    #[test]
    fn search_matches_brute_force(
        expr in expr_strategy(),
        start_min in 0i64..(3 * 24 * 60),
        zone_idx in 0usize..3,
        near in prop_oneof![Just("2026-03-28T00:00:00Z"), Just("2026-10-24T00:00:00Z"), Just("2026-06-10T00:00:00Z")],
    ) {
        let zones = ["UTC", "Europe/Berlin", "Australia/Lord_Howe"];
        let Ok(s) = CronSchedule::parse(&expr, zone(zones[zone_idx])) else { return Ok(()); };
        let from = utc(near) + Duration::minutes(start_min);
        let window = 2 * 24 * 3600;
        let expected = brute_force(&s, from, window);
        let mut got = Vec::new();
        let mut t = from;
        while let Some(n) = s.next_after(t) {
            if n > from + Duration::seconds(window) { break; }
            prop_assert!(n > t, "not increasing: {n} after {t}");
            got.push(n);
            t = n;
        }
        // Brute force cannot see cronie's gap rule (the fire at the gap's
        // end for fixed-time jobs); compare only where the wall time exists.
        let got_real: Vec<_> = got
            .iter()
            .copied()
            .filter(|t| s.matches_wall(t.with_timezone(&s.tz()).naive_local()))
            .collect();
        prop_assert_eq!(got_real, expected, "{} in {}", expr, zones[zone_idx]);
    }

    /// The parser never panics, whatever it is given.
    #[test]
    fn parser_never_panics(input in "\\PC{0,40}") {
        let _ = CronSchedule::parse(&input, Tz::UTC);
    }

    #[test]
    fn parser_never_panics_on_cron_like_input(input in "[0-9*/,\\- a-zA-Z@?#]{0,30}") {
        let _ = CronSchedule::parse(&input, Tz::UTC);
    }
}

#[test]
fn min_gap_is_the_closest_two_fires_come() {
    for (expr, gap) in [
        ("* * * * *", Duration::minutes(1)),
        ("*/5 * * * *", Duration::minutes(5)),
        ("0,50 * * * *", Duration::minutes(10)),
        ("0 9,17 * * *", Duration::hours(8)),
        ("0 1,23 * * *", Duration::hours(2)),
        ("0 9 * * *", Duration::days(1)),
        ("0 9 * * mon", Duration::days(7)),
        ("0 9 * * mon,tue", Duration::days(1)),
        ("0 0 1 1 *", Duration::days(365)),
        ("0 0 29 2 *", Duration::days(4 * 365 + 1)),
        ("0,30 30 2 * * *", Duration::seconds(30)),
        ("50 59 * * * *", Duration::hours(1)),
        ("0 0 28,1 * *", Duration::days(1)),
    ] {
        let s = CronSchedule::parse(expr, Tz::UTC).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(s.min_gap(), gap, "{expr}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// No two consecutive fires in UTC come closer than `min_gap`, and
    /// some pair comes that close within a few years (checked for the
    /// schedules that fire often enough to find it).
    #[test]
    fn min_gap_bounds_the_fires(
        minute in prop::sample::select(vec!["*", "*/7", "0", "5,55", "10-20/5"]),
        hour in prop::sample::select(vec!["*", "9", "0,23", "*/5"]),
        dom in prop::sample::select(vec!["*", "1", "31", "*/10"]),
        dow in prop::sample::select(vec!["*", "mon", "sat,sun"]),
    ) {
        let expr = format!("{minute} {hour} {dom} * {dow}");
        let s = CronSchedule::parse(&expr, Tz::UTC).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let gap = s.min_gap();
        let mut at = utc("2026-01-01T00:00:00Z");
        let mut closest: Option<Duration> = None;
        for _ in 0..3000 {
            let Some(next) = s.next_after(at) else { break };
            if at > utc("2026-01-01T00:00:00Z") {
                let d = next - at;
                prop_assert!(d >= gap, "{expr}: {at} to {next} is under {gap}");
                closest = Some(closest.map_or(d, |c| c.min(d)));
            }
            at = next;
        }
        if gap < Duration::days(1) {
            prop_assert_eq!(closest, Some(gap), "{}", expr);
        }
    }
}

// chrono's local-time conversions panic within hours of the ends of its
// calendar; a search asked about an instant there finds nothing instead.
// (Reached by jitter arithmetic before jitter was bounded: see
// trigger/tests.rs, fuzz_a_jitter_off_the_calendar_is_refused_not_a_panic.)
#[test]
fn no_fires_at_the_ends_of_the_calendar() {
    for tz in [
        "UTC",
        "Australia/Lord_Howe",
        "America/New_York",
        "Pacific/Kiritimati",
    ] {
        let s = CronSchedule::parse("* * * * * *", zone(tz)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.next_after(DateTime::<Utc>::MIN_UTC), None, "{tz}");
        assert_eq!(s.next_after(DateTime::<Utc>::MAX_UTC), None, "{tz}");
        // A year in, fires are found as anywhere else.
        let early = DateTime::<Utc>::MIN_UTC + Duration::days(800);
        assert!(s.next_after(early).is_some_and(|n| n > early), "{tz}");
    }
}
