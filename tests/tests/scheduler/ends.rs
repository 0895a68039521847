//! A burst's ends wait for its starts (issue 12, `scheduler/ends.rs`): a
//! run that finishes while others of its burst wait for a worker records
//! its end once they have all started, so those starts get the CPU first.

use chrono::Duration;
use std::sync::Arc;
use wasmcron::event::Event;
use wasmcron::scheduler::{ManualClock, Scheduler};
use wasmcron::store::RunStatus;
use wasmcron_tests::backends;
use wasmcron_tests::sched::{parts, spec, t0, wait_for};
use wasmcron_tests::stores::TestStore;

/// More than the test scheduler's 4 workers and 16 places ahead of them,
/// so some runs of the burst also wait for their start to be written.
const JOBS: usize = 30;

async fn a_bursts_ends_are_recorded_after_all_its_starts(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let mut parts = parts(db.open().await, clock.clone());
    // The 500 ms default bounds the wait in real time; a debug build on a
    // busy machine may take longer than that for the burst's starts.
    parts.config.max_end_wait = std::time::Duration::from_secs(60);
    let (s, mut rx) = Scheduler::start_with_events(parts).await.unwrap();
    for i in 0..JOBS {
        s.add_job(
            spec(&format!(
                r#"{{"id":"b-{i}","plugin":"hello","trigger":{{"type":"interval","every":"1h"}}}}"#
            )),
            false,
        )
        .await
        .unwrap();
    }
    // All due at one instant.
    clock.advance(Duration::hours(1));
    let mut started = 0;
    let mut ended = 0;
    while ended < JOBS {
        match wait_for(&mut rx, |e| {
            matches!(
                e,
                Event::RunStarted(_) | Event::RunSucceeded(_) | Event::RunFailed(_)
            )
        })
        .await
        {
            Event::RunStarted(_) => {
                assert_eq!(ended, 0, "a start after {ended} ends were recorded");
                started += 1;
            }
            Event::RunSucceeded(_) => {
                assert_eq!(
                    started,
                    JOBS,
                    "an end recorded while {} runs of the burst had not started",
                    JOBS - started
                );
                ended += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    // And every end is on record.
    for i in 0..JOBS {
        let runs = s.runs(&format!("b-{i}"), 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].status, RunStatus::Finished, "{runs:?}");
    }
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(a_bursts_ends_are_recorded_after_all_its_starts: sqlite, memory);

/// Slow jobs, more than the 4 workers and the slow lane's 4 places can
/// hold, so runs wait to start for as long as the others run (10
/// minutes, [`add_slow_jobs`]).
const SLOW: usize = 12;

async fn an_end_does_not_wait_past_its_jobs_next_fire(db: TestStore) {
    // Only the job's next fire bounds the wait here.
    let (clock, s, mut rx) = start_with_long_end_wait(db).await;
    // Its next fire 2 s (of the test's clock) after this one; added
    // first, so its fire is the first of the instant and takes a worker.
    s.add_job(
        spec(&format!(
            r#"{{"id":"quick","plugin":"hello","trigger":{{"type":"interval","every":"2s","start":"{AT}"}}}}"#
        )),
        false,
    )
    .await
    .unwrap();
    add_slow_jobs(&s).await;
    clock.advance(Duration::hours(1));
    // The quick run's end is recorded while slow runs still wait to start
    // (they do for as long as the test goes: no worker frees), before
    // its job's next fire. Were it to wait for them, it would wait
    // `max_end_wait` (10 minutes) and `wait_for`'s 60 s safety net fails
    // the test.
    wait_for(
        &mut rx,
        |e| matches!(e, Event::RunSucceeded(r) if r.job_id == "quick"),
    )
    .await;
    s.shutdown(std::time::Duration::from_millis(50)).await;
}
backends!(an_end_does_not_wait_past_its_jobs_next_fire: memory);

/// A run whose job has runs queued behind it (a buffered fire waiting
/// for its `max_instances` slot) records its end at once, even while a
/// burst's runs wait to start: its waiting end would hold that slot.
async fn an_end_does_not_wait_when_its_job_has_runs_queued(db: TestStore) {
    // Only the queued run may cut the wait short here (the job's next
    // fire is an hour of the test's clock away).
    let (clock, s, mut rx) = start_with_long_end_wait(db).await;
    // Added first, so its fire is the first of the instant and takes a
    // worker; its run lasts long enough for its next fire to find it going.
    s.add_job(
        spec(&format!(
            r#"{{"id":"buffered","plugin":"slow","args":{{"millis":5000}},"overlap":"buffer-one",
                "trigger":{{"type":"interval","every":"1h","start":"{AT}"}}}}"#
        )),
        false,
    )
    .await
    .unwrap();
    add_slow_jobs(&s).await;
    clock.advance(Duration::hours(1));
    wait_for(&mut rx, |e| {
        e.name() == "run-started" && e.job_id() == Some("buffered")
    })
    .await;
    // Its next fire while the first run goes: buffered behind it.
    clock.advance(Duration::hours(1));
    let second = t0() + Duration::hours(2);
    wait_for(&mut rx, |e| {
        matches!(e, Event::RunSubmitted(r) if r.job_id == "buffered" && r.scheduled_at == second)
    })
    .await;
    // Slow runs wait to start for as long as the test goes (no worker
    // frees: their timeout is 10 minutes); the first run's end does not
    // wait for them. Were it to, it would wait `max_end_wait` (10
    // minutes) and `wait_for`'s 60 s safety net fails the test.
    wait_for(
        &mut rx,
        |e| matches!(e, Event::RunSucceeded(r) if r.job_id == "buffered"),
    )
    .await;
    s.shutdown(std::time::Duration::from_millis(50)).await;
}
backends!(an_end_does_not_wait_when_its_job_has_runs_queued: sqlite, memory);

/// The first fire of the jobs of the tests below: t0 + 1 h.
const AT: &str = "2026-01-01T01:00:00Z";

/// A scheduler whose ends wait up to 10 minutes for the starts
/// (`max_end_wait`), so only the bound a test is about ends a wait.
async fn start_with_long_end_wait(
    db: TestStore,
) -> (Arc<ManualClock>, Scheduler, wasmcron::event::EventReceiver) {
    let clock = Arc::new(ManualClock::new(t0()));
    let mut parts = parts(db.open().await, clock.clone());
    parts.config.max_end_wait = std::time::Duration::from_secs(600);
    let (s, rx) = Scheduler::start_with_events(parts).await.unwrap();
    (clock, s, rx)
}

/// Adds [`SLOW`] jobs `slow-0`… whose runs (10 minutes, as long as their
/// timeout) outlast the test, all first due at [`AT`].
async fn add_slow_jobs(s: &Scheduler) {
    for i in 0..SLOW {
        s.add_job(
            spec(&format!(
                r#"{{"id":"slow-{i}","plugin":"slow","args":{{"millis":600000}},
                    "limits":{{"timeout":"10m"}},
                    "trigger":{{"type":"interval","every":"1d","start":"{AT}"}}}}"#
            )),
            false,
        )
        .await
        .unwrap();
    }
}
