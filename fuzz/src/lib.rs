//! Checks shared by the fuzz targets: instants to start from, and what
//! must hold of any trigger or job that validation accepted.
//!
//! Every target's rule is the same: input from outside may be refused, with
//! an error, but never makes the host panic, hang or loop without bound.

use chrono::{DateTime, TimeZone, Utc};
use wasmcron::job::{Job, JobSpec};
use wasmcron::runtime::Limits;
use wasmcron::trigger::Trigger;

/// How many fires a walk follows from each start: enough to cross a
/// daylight-saving change or an `all` agreement twice, few enough that an
/// input costs milliseconds.
pub const STEPS: usize = 4;

/// A UTC instant, for the fixed points below.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// "Now" for validation: the instant intervals without a start anchor on.
pub fn now() -> DateTime<Utc> {
    utc(2026, 3, 29, 0, 30, 0)
}

/// Instants the walks start from: ordinary days and the edges of
/// daylight-saving changes in the zones the cron target uses (Berlin's
/// spring gap and autumn overlap, New York's, Lord Howe's half-hour
/// shifts), the epoch, a leap day, and the far end of what RFC 3339 can
/// write (year 9999), where the search runs past the years a timestamp
/// string can name.
pub fn starts() -> [DateTime<Utc>; 10] {
    [
        DateTime::UNIX_EPOCH,
        now(),
        // Europe/Berlin: 02:00 → 03:00 at 01:00 UTC; 03:00 → 02:00 at 01:00 UTC.
        utc(2026, 3, 29, 0, 59, 59),
        utc(2026, 10, 25, 0, 30, 0),
        // America/New_York: 2026-03-08 and 2026-11-01, at 07:00 and 06:00 UTC.
        utc(2026, 3, 8, 6, 59, 0),
        utc(2026, 11, 1, 5, 30, 0),
        // Australia/Lord_Howe: 30-minute shifts, 2026-04-05 and 2026-10-04.
        utc(2026, 4, 4, 14, 45, 0),
        utc(2026, 10, 3, 15, 15, 0),
        utc(2028, 2, 29, 23, 59, 59),
        utc(9999, 12, 31, 23, 59, 59),
    ]
}

/// Follows `trigger` for up to `steps` fires from `from`, checking that
/// each fire is strictly after the instant asked about (a fire at or
/// before it would run twice, or make the scheduler spin).
///
/// # Panics
/// When a fire is not strictly later: the bug the fuzzer reports.
pub fn walk(trigger: &Trigger, from: DateTime<Utc>, steps: usize) {
    let mut at = from;
    for _ in 0..steps {
        let Some(next) = trigger.next_after(at) else {
            return;
        };
        assert!(next > at, "next_after({at}) = {next}, not after it");
        at = next;
    }
}

/// Walks a validated trigger from each start.
pub fn walk_all(trigger: &Trigger) {
    let _ = trigger.warnings();
    for from in starts() {
        walk(trigger, from, STEPS);
    }
}

/// Validates a job spec as the API and the jobs file do; an accepted one
/// has its trigger walked and must survive the store's round trip (the
/// spec is stored as JSON and validated again when the host restarts: a
/// job that cannot be read back would vanish, or stop the host, then).
///
/// # Panics
/// When an accepted spec fails to round-trip or revalidate.
pub fn check_job(spec: &JobSpec) -> Option<Job> {
    let job = match spec.validate(now(), &Limits::default()) {
        Ok(job) => job,
        Err(e) => {
            // Error messages and field paths are built from the input too.
            let _ = (e.to_string(), e.field());
            return None;
        }
    };
    walk_all(&job.trigger);
    check_durations(&job);
    let stored = serde_json::to_string(&job.spec).unwrap_or_else(|e| {
        panic!("an accepted spec does not serialize: {e}");
    });
    let back: JobSpec = serde_json::from_str(&stored).unwrap_or_else(|e| {
        panic!("an accepted spec does not read back from {stored}: {e}");
    });
    // serde_json's default float parsing is off by one unit in the last
    // place for some 17-digit numbers (its `float_roundtrip` feature makes
    // it exact), so the args are compared with that allowance and the rest
    // exactly.
    assert!(
        same_json(&back.args, &spec.args),
        "the args changed on their way through JSON: {} → {}",
        spec.args,
        back.args
    );
    let same_args = JobSpec {
        args: spec.args.clone(),
        ..back.clone()
    };
    assert_eq!(&same_args, spec, "the spec changed on its way through JSON");
    if let Err(e) = back.validate(now(), &Limits::default()) {
        panic!("an accepted spec is refused after the round trip: {e}");
    }
    Some(job)
}

/// JSON values equal but for floats one unit in the last place apart.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x != y => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.to_bits().abs_diff(y.to_bits()) <= 1,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// The instants the scheduler computes from a job's durations must exist
/// for any "now" a host will see: a retry is stored as due at `now + delay`
/// and run history is pruned before `now - keep_for`, in chrono, whose
/// `+` and `-` panic past its calendar (year 262,143).
///
/// # Panics
/// When an accepted duration cannot be added to (or taken from) 2100-01-01.
pub fn check_durations(job: &Job) {
    let now = utc(2100, 1, 1, 0, 0, 0);
    let fits = |d: std::time::Duration, later: bool| {
        chrono::Duration::from_std(d).ok().and_then(|d| {
            if later {
                now.checked_add_signed(d)
            } else {
                now.checked_sub_signed(d)
            }
        })
    };
    for attempt in 1..=job.retry.max_attempts {
        let delay = job.retry.delay_after(attempt);
        assert!(
            fits(delay, true).is_some(),
            "retry delay {delay:?} after attempt {attempt} runs off the calendar"
        );
    }
    if let Some(keep_for) = job.keep_for {
        assert!(
            fits(keep_for, false).is_some(),
            "keep_for {keep_for:?} runs off the calendar"
        );
    }
}
