//! Runs recorded running ahead of a free worker (issue 12): a burst's
//! starts are written with its fires, and a run that never got a worker
//! before a clean stop goes back to pending and runs after the restart.

use chrono::Duration;
use std::sync::Arc;
use wasmcron::event::Event;
use wasmcron::scheduler::{ManualClock, Scheduler};
use wasmcron::store::RunStatus;
use wasmcron_tests::backends;
use wasmcron_tests::sched::{parts, spec, t0, wait_for};
use wasmcron_tests::stores::TestStore;

/// The test scheduler's workers (`wasmcron_tests::sched::parts`).
const WORKERS: usize = 4;
const QUICK: usize = 6;

async fn runs_waiting_for_a_worker_are_recorded_running_and_given_back_pending_at_a_clean_stop(
    db: TestStore,
) {
    let clock = Arc::new(ManualClock::new(t0()));
    let (s, mut rx) = Scheduler::start_with_events(parts(db.open().await, clock.clone()))
        .await
        .unwrap();
    // Every worker held by a slow run from t0 + 1 s ...
    for i in 0..WORKERS {
        s.add_job(
            spec(&format!(
                r#"{{"id":"hold-{i}","plugin":"slow","args":{{"millis":60000}},
                    "trigger":{{"type":"interval","every":"1h"}}}}"#
            )),
            false,
        )
        .await
        .unwrap();
    }
    clock.advance(Duration::hours(1));
    for _ in 0..WORKERS {
        wait_for(&mut rx, |e| {
            e.name() == "run-started" && e.job_id().is_some_and(|j| j.starts_with("hold-"))
        })
        .await;
    }
    // ... when quick jobs all come due at one instant.
    for i in 0..QUICK {
        s.add_job(
            spec(&format!(
                r#"{{"id":"quick-{i}","plugin":"hello",
                    "trigger":{{"type":"interval","every":"1s"}}}}"#
            )),
            false,
        )
        .await
        .unwrap();
    }
    clock.advance(Duration::seconds(1));
    for i in 0..QUICK {
        let id = format!("quick-{i}");
        wait_for(&mut rx, |e| {
            e.name() == "run-submitted" && e.job_id() == Some(id.as_str())
        })
        .await;
    }
    // Recorded running with their fires (no write of their own later),
    // though none has a worker yet.
    for i in 0..QUICK {
        let runs = s.runs(&format!("quick-{i}"), 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].status, RunStatus::Running, "{runs:?}");
    }
    // A clean stop: the slow runs are cut off, the quick ones never
    // started and go back to pending.
    s.shutdown(std::time::Duration::from_millis(50)).await;
    for i in 0..QUICK {
        let runs = s.runs(&format!("quick-{i}"), 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(
            (runs[0].status, runs[0].started_at, runs[0].host.as_deref()),
            (RunStatus::Pending, None, None),
            "a run that never started must go back to pending: {runs:?}"
        );
    }
    drop(s);
    // After the restart they run, first attempts, none interrupted.
    let (s, mut rx) = Scheduler::start_with_events(parts(db.open().await, clock.clone()))
        .await
        .unwrap();
    let mut succeeded = std::collections::BTreeSet::new();
    while succeeded.len() < QUICK {
        let event = wait_for(&mut rx, |e| {
            e.job_id().is_some_and(|j| j.starts_with("quick-")) && e.name() != "run-started"
        })
        .await;
        match event {
            Event::RunSucceeded(e) => {
                assert_eq!(e.attempt, 1, "{e:?}");
                succeeded.insert(e.job_id);
            }
            other => panic!("{other:?}"),
        }
    }
    for i in 0..QUICK {
        let runs = s.runs(&format!("quick-{i}"), 10).await.unwrap();
        assert!(
            runs.iter().all(|r| r.status != RunStatus::Interrupted),
            "{runs:?}"
        );
    }
    s.shutdown(std::time::Duration::from_millis(50)).await;
}
backends!(runs_waiting_for_a_worker_are_recorded_running_and_given_back_pending_at_a_clean_stop: sqlite, memory);
