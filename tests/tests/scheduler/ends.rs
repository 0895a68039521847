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
