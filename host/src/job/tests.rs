//! JobSpec validation.

use super::*;

fn spec(json: &str) -> JobSpec {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[test]
fn args_survive_the_stores_json_round_trip_exactly() {
    // Found by the job_json fuzzer: without serde_json's
    // float_roundtrip, 98646744073709551615 (read as a float) came
    // back one unit off, and a restart took the jobs file's unchanged
    // job for a changed one.
    let s = spec(
        r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},
            "args":{"n":0e308,"nested":{"a":[null,true,-0.0,98646744073709551615]}}}"#,
    );
    let stored = serde_json::to_string(&s).unwrap_or_else(|e| panic!("{e}"));
    let back: JobSpec = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, s, "{stored}");
}

#[test]
fn defaults_do_not_drop_runs() {
    let s = spec(r#"{"id":"a","plugin":"hello","trigger":{"type":"interval","every":"1m"}}"#);
    assert!(s.coalesce);
    assert_eq!(s.misfire_grace, None);
    assert_eq!(s.max_instances, 1);
    let job = s.validate(Utc::now(), &Limits::default()).unwrap();
    assert_eq!(job.misfire_grace, None);
    assert_eq!(job.args, "{}");
    assert_eq!(job.retry.max_attempts, 1);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            r#"{"id":"a b","plugin":"p","trigger":{"type":"interval","every":"1m"}}"#,
            "id",
        ),
        (
            r#"{"id":"a","plugin":"../x","trigger":{"type":"interval","every":"1m"}}"#,
            "plugin",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"cron","expr":"61 * * * *"}}"#,
            "trigger.expr",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"args":[1]}"#,
            "args",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"limits":{"fuel":0}}"#,
            "limits.fuel",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"misfire_grace":"soon"}"#,
            "misfire_grace",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"max_instances":0}"#,
            "max_instances",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"retry":{"max_attempts":0}}"#,
            "retry.max_attempts",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"pause_after_failures":0}"#,
            "pause_after_failures",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"overlap":"buffer-all","max_buffered":0}"#,
            "max_buffered",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"overlap":"buffer-one","max_buffered":5}"#,
            "max_buffered",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"max_buffered":5}"#,
            "max_buffered",
        ),
        (
            r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"},"overlap":"allow-all"}"#,
            "max_instances",
        ),
    ];
    for (json, field) in cases {
        let err = spec(json)
            .validate(Utc::now(), &Limits::default())
            .expect_err(json);
        assert_eq!(err.field(), field, "{json}: {err}");
    }
}

#[test]
fn overlap_policies_parse_by_temporals_names_and_set_the_buffer() {
    let base = r#""id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"}"#;
    for (extra, buffer) in [
        ("", 0),
        (r#","overlap":"skip""#, 0),
        (r#","overlap":"buffer-one""#, 1),
        (r#","overlap":"buffer-all""#, 100),
        (r#","overlap":"buffer-all","max_buffered":7"#, 7),
        (r#","overlap":"cancel-other""#, 1),
        (r#","overlap":"allow-all","max_instances":3"#, 0),
    ] {
        let json = format!("{{{base}{extra}}}");
        let job = spec(&json)
            .validate(Utc::now(), &Limits::default())
            .unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(job.buffer, buffer, "{json}");
        // The default is left unwritten; the rest round-trip.
        let back = serde_json::to_string(&job.spec).unwrap();
        assert_eq!(
            back.contains("overlap"),
            extra.contains("overlap") && !extra.contains("skip"),
            "{back}"
        );
    }
    let json = format!(r#"{{{base},"overlap":"queue"}}"#);
    let err = serde_json::from_str::<JobSpec>(&json).expect_err("unknown policy");
    assert!(
        err.to_string().contains("'queue' is not an overlap policy"),
        "{err}"
    );
}

#[test]
fn spec_round_trips_through_json() {
    let s = spec(
        r#"{"id":"a","plugin":"p","trigger":{"type":"cron","expr":"0 9 * * *","tz":"Europe/Berlin"},"args":{"x":1},"retry":{"max_attempts":3}}"#,
    );
    let back: JobSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn instants_are_milliseconds_so_a_restart_computes_the_same_fires() {
    let micros = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.123456Z")
        .unwrap()
        .with_timezone(&Utc);
    let millis = DateTime::from_timestamp_millis(micros.timestamp_millis()).unwrap();
    let before = micros - chrono::Duration::hours(1);
    for json in [
        r#"{"id":"a","plugin":"p","trigger":{"type":"date","at":"2026-01-01T00:00:00.123456Z"}}"#,
        r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1h","start":"2026-01-01T00:00:00.123456Z"}}"#,
        r#"{"id":"a","plugin":"p","trigger":{"type":"cron","expr":"* * * * * *","start":"2026-01-01T00:00:00.123456Z"}}"#,
    ] {
        let job = spec(json).validate(before, &Limits::default()).unwrap();
        let first = job.trigger.next_after(before).unwrap();
        assert_eq!(first.timestamp_subsec_nanos() % 1_000_000, 0, "{json}");
        // The fire as the store keeps it is not due again a fraction
        // of a millisecond later.
        let again = job.trigger.next_after(first);
        assert!(
            again.is_none_or(|n| n - first >= chrono::Duration::seconds(1)),
            "{json}: {again:?}"
        );
    }
    // An interval without a start is anchored at created_at, in ms.
    let s = spec(r#"{"id":"a","plugin":"p","trigger":{"type":"interval","every":"1h"}}"#);
    let job = s.validate(micros, &Limits::default()).unwrap();
    assert_eq!(job.created_at, millis);
    assert_eq!(
        job.trigger.next_after(micros),
        Some(millis + chrono::Duration::hours(1))
    );
}

// Durations the scheduler adds to now (a retry's due time) or takes
// from it (history pruning) were unbounded: `100000000d` panicked in
// chrono there. The `job_json` fuzz target checks that every accepted
// job's durations fit (fuzz/src/lib.rs, check_durations; the inputs are
// in fuzz/corpus/job_json as too-long-*.json).
#[test]
fn fuzz_durations_the_scheduler_does_arithmetic_on_are_bounded() {
    let base = r#""id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"}"#;
    for (extra, field) in [
        (
            r#""retry":{"max_attempts":2,"delay":"999999999d"}"#,
            "retry.delay",
        ),
        (
            r#""retry":{"max_attempts":2,"backoff":"exponential","max_delay":"36501d"}"#,
            "retry.max_delay",
        ),
        (r#""keep_for":"999999999d""#, "keep_for"),
    ] {
        let json = format!("{{{base},{extra}}}");
        let err = spec(&json)
            .validate(Utc::now(), &Limits::default())
            .expect_err(&json);
        assert_eq!(err.field(), field, "{json}: {err}");
        assert!(err.to_string().contains("36500d"), "{json}: {err}");
    }
    // The longest allowed is accepted, and its arithmetic fits.
    let json =
        format!(r#"{{{base},"retry":{{"max_attempts":2,"delay":"36500d"}},"keep_for":"36500d"}}"#);
    let job = spec(&json)
        .validate(Utc::now(), &Limits::default())
        .unwrap_or_else(|e| panic!("{json}: {e}"));
    let delay = chrono::Duration::from_std(job.retry.delay_after(1)).unwrap();
    assert!(Utc::now().checked_add_signed(delay).is_some());
}

#[test]
fn seeds_are_stable_and_distinct() {
    let a = JobId::new("a").unwrap();
    assert_eq!(a.seed(), JobId::new("a").unwrap().seed());
    assert_ne!(a.seed(), JobId::new("b").unwrap().seed());
}

/// A host keeps every job in memory (a million on one host, issue 12), and
/// jemalloc rounds each allocation up to its size class: a `Job` of up to
/// 432 bytes plus its `Arc`'s two counts fills the 448-byte class, a few
/// bytes more takes the 512 one (64 more per job); a `TriggerSpec` of up
/// to 96 the 96-byte class (it took 128 while its optional texts were
/// `String`s). A field added to either should be
/// boxed, or these bounds raised knowingly (docs/BENCHMARKS.md, "Memory
/// per job").
#[test]
fn a_job_and_its_trigger_spec_stay_in_their_allocation_classes() {
    use std::mem::size_of;
    assert!(size_of::<Job>() <= 432, "Job is {} bytes", size_of::<Job>());
    assert!(
        size_of::<crate::trigger::TriggerSpec>() <= 96,
        "TriggerSpec is {} bytes",
        size_of::<crate::trigger::TriggerSpec>()
    );
}

#[test]
fn a_zero_misfire_grace_or_keep_for_is_refused_for_new_specs_only() {
    let base = r#""id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"}"#;
    for (extra, field) in [
        (r#""misfire_grace":"0s""#, "misfire_grace"),
        (r#""misfire_grace":"0ms""#, "misfire_grace"),
        (r#""keep_for":"0d""#, "keep_for"),
    ] {
        let s = spec(&format!("{{{base},{extra}}}"));
        // Still valid: a job stored with it loads and keeps firing.
        let job = s
            .validate(Utc::now(), &Limits::default())
            .unwrap_or_else(|e| panic!("{extra}: {e}"));
        let err = job.check_new().expect_err(extra);
        assert_eq!(err.field(), field);
        let text = err.to_string();
        assert!(
            text.starts_with(field) && text.contains("leave it out"),
            "{text}"
        );
    }
    let s = spec(&format!(
        r#"{{{base},"misfire_grace":"1ms","keep_for":"1s"}}"#
    ));
    let job = s.validate(Utc::now(), &Limits::default()).unwrap();
    assert_eq!(job.check_new(), Ok(()));
}

#[test]
fn a_wrongly_shaped_table_is_named_by_what_to_write_not_by_a_rust_type() {
    let base = r#""id":"a","plugin":"p","trigger":{"type":"interval","every":"1m"}"#;
    for (extra, says) in [
        (r#""listeners":["alert"]"#, "{ plugin = \"alert\" }"),
        (r#""limits":"small""#, "limits: a table"),
        (r#""retry":3"#, "max_attempts = 3"),
        (r#""capabilities":"net""#, "`dirs`, `env`"),
        (r#""capabilities":{"dirs":["/srv"]}"#, "a directory grant"),
    ] {
        let json = format!("{{{base},{extra}}}");
        let err = serde_json::from_str::<JobSpec>(&json)
            .expect_err(extra)
            .to_string();
        assert!(err.contains(says), "{extra}: {err}");
        assert!(
            !err.contains("Spec") && !err.contains("struct"),
            "{extra}: {err}"
        );
    }
    let err = serde_json::from_str::<JobSpec>(r#""nightly""#)
        .expect_err("a string")
        .to_string();
    assert!(err.contains("a job spec"), "{err}");
}
