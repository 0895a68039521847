//! Overlap policies (issue 13): what a fire does when its job's
//! `max_instances` runs are still going (Temporal's skip, buffer-one,
//! buffer-all, cancel-other, allow-all), with the `slow` plugin on a
//! manual clock.

use chrono::Duration;
use std::sync::Arc;
use wasmcron::event::{Event, RunEvent};
use wasmcron::scheduler::{ManualClock, Scheduler};
use wasmcron::store::{RunRecord, RunStatus};
use wasmcron_tests::backends;
use wasmcron_tests::sched::{spec, start, t0, wait_for};
use wasmcron_tests::stores::TestStore;

fn run_of(e: &Event) -> Option<&RunEvent> {
    match e {
        Event::RunSubmitted(r)
        | Event::RunStarted(r)
        | Event::RunSucceeded(r)
        | Event::RunFailed(r)
        | Event::RunMissed(r)
        | Event::RunSkipped(r)
        | Event::RunRetried(r) => Some(r),
        _ => None,
    }
}

/// The event `name` of job `job`'s fire at t0 + `secs`.
fn fire(name: &'static str, job: &'static str, secs: i64) -> impl Fn(&Event) -> bool {
    move |e| {
        e.name() == name
            && e.job_id() == Some(job)
            && run_of(e).is_some_and(|r| r.scheduled_at == t0() + Duration::seconds(secs))
    }
}

/// The job's runs, oldest fire first.
async fn history(s: &Scheduler, job: &str) -> Vec<RunRecord> {
    let mut runs = s.runs(job, 50).await.expect("runs");
    runs.sort_by_key(|r| (r.scheduled_at, r.attempt));
    runs
}

fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    t0() + Duration::seconds(secs)
}

async fn buffer_one_keeps_one_fire_waiting_and_skips_the_next(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(
            r#"{"id":"b1","plugin":"slow","args":{"millis":2500},"overlap":"buffer-one",
                "trigger":{"type":"interval","every":"1s"}}"#,
        ),
        false,
    )
    .await
    .expect("add");
    clock.advance(Duration::seconds(1));
    wait_for(&mut rx, fire("run-started", "b1", 1)).await;
    // The fire at +2 finds the run going: it waits rather than skips.
    clock.advance(Duration::seconds(1));
    wait_for(&mut rx, fire("run-submitted", "b1", 2)).await;
    // One already waits: the fire at +3 is skipped, and says why.
    clock.advance(Duration::seconds(1));
    let skipped = wait_for(&mut rx, fire("run-skipped", "b1", 3)).await;
    let message = run_of(&skipped)
        .and_then(|r| r.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("1 fire(s) already waiting (overlap buffer-one)"),
        "{message}"
    );
    // The waiting fire runs once the first has ended, not before.
    wait_for(&mut rx, fire("run-succeeded", "b1", 1)).await;
    wait_for(&mut rx, fire("run-started", "b1", 2)).await;
    wait_for(&mut rx, fire("run-succeeded", "b1", 2)).await;
    let runs = history(&s, "b1").await;
    let got: Vec<_> = runs.iter().map(|r| (r.scheduled_at, r.status)).collect();
    assert_eq!(
        got,
        [
            (at(1), RunStatus::Finished),
            (at(2), RunStatus::Finished),
            (at(3), RunStatus::Skipped),
        ]
    );
    let buffered = &runs[1];
    assert!(
        buffered
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("buffered:") && n.contains("buffer-one")),
        "{:?}",
        buffered.note
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(buffer_one_keeps_one_fire_waiting_and_skips_the_next: memory, sqlite, postgres);

async fn buffer_all_runs_waiting_fires_in_order_up_to_max_buffered(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(
            r#"{"id":"ba","plugin":"slow","args":{"millis":2500},"overlap":"buffer-all",
                "max_buffered":2,"trigger":{"type":"interval","every":"1s"}}"#,
        ),
        false,
    )
    .await
    .expect("add");
    clock.advance(Duration::seconds(1));
    wait_for(&mut rx, fire("run-started", "ba", 1)).await;
    for secs in 2..=3 {
        clock.advance(Duration::seconds(1));
        wait_for(&mut rx, fire("run-submitted", "ba", secs)).await;
    }
    clock.advance(Duration::seconds(1));
    let skipped = wait_for(&mut rx, fire("run-skipped", "ba", 4)).await;
    let message = run_of(&skipped)
        .and_then(|r| r.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("2 fire(s) already waiting (overlap buffer-all)"),
        "{message}"
    );
    for secs in 1..=3 {
        wait_for(&mut rx, fire("run-succeeded", "ba", secs)).await;
        if secs < 3 {
            wait_for(&mut rx, fire("run-started", "ba", secs + 1)).await;
        }
    }
    let runs = history(&s, "ba").await;
    let got: Vec<_> = runs.iter().map(|r| (r.scheduled_at, r.status)).collect();
    assert_eq!(
        got,
        [
            (at(1), RunStatus::Finished),
            (at(2), RunStatus::Finished),
            (at(3), RunStatus::Finished),
            (at(4), RunStatus::Skipped),
        ]
    );
    // Each waiting fire started only after the run before it had ended
    // (the events' order: `wait_for` passes over earlier events, so a
    // start before the end would have been missed and timed out).
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(buffer_all_runs_waiting_fires_in_order_up_to_max_buffered: memory, sqlite, postgres);

async fn cancel_other_stops_the_run_going_and_starts_the_fire(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    // A retry policy that retries interruptions: a cancelled run is still
    // not retried (the fire that replaced it is the next try).
    s.add_job(
        spec(
            r#"{"id":"co","plugin":"slow","args":{"millis":60000},"overlap":"cancel-other",
                "retry":{"max_attempts":3,"delay":"1s","retry_on":["interrupted"]},
                "trigger":{"type":"interval","every":"1h"}}"#,
        ),
        false,
    )
    .await
    .expect("add");
    clock.advance(Duration::hours(1));
    wait_for(&mut rx, fire("run-started", "co", 3600)).await;
    clock.advance(Duration::hours(1));
    let failed = wait_for(&mut rx, fire("run-failed", "co", 3600)).await;
    let message = run_of(&failed)
        .and_then(|r| r.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("cancelled by overlap cancel-other") && message.contains("T02:00:00"),
        "{message}"
    );
    wait_for(&mut rx, fire("run-started", "co", 7200)).await;
    let runs = history(&s, "co").await;
    let got: Vec<_> = runs
        .iter()
        .map(|r| (r.scheduled_at, r.attempt, r.status))
        .collect();
    assert_eq!(
        got,
        [
            (at(3600), 1, RunStatus::Interrupted),
            (at(7200), 1, RunStatus::Running),
        ],
        "no retry of the cancelled run"
    );
    assert!(
        runs[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("takes its place")),
        "{:?}",
        runs[0].note
    );
    s.shutdown(std::time::Duration::from_millis(100)).await;
}
backends!(cancel_other_stops_the_run_going_and_starts_the_fire: memory, sqlite, postgres);

async fn allow_all_overlaps_up_to_max_instances(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(
            r#"{"id":"aa","plugin":"slow","args":{"millis":3000},"overlap":"allow-all",
                "max_instances":2,"trigger":{"type":"interval","every":"1s"}}"#,
        ),
        false,
    )
    .await
    .expect("add");
    clock.advance(Duration::seconds(1));
    wait_for(&mut rx, fire("run-started", "aa", 1)).await;
    clock.advance(Duration::seconds(1));
    wait_for(&mut rx, fire("run-started", "aa", 2)).await;
    // Both go at once: the first (a 3 s guest) is still running.
    let going = history(&s, "aa").await;
    assert_eq!(
        going.iter().map(|r| r.status).collect::<Vec<_>>(),
        [RunStatus::Running, RunStatus::Running],
        "{going:#?}"
    );
    clock.advance(Duration::seconds(1));
    let skipped = wait_for(&mut rx, fire("run-skipped", "aa", 3)).await;
    let message = run_of(&skipped)
        .and_then(|r| r.message.clone())
        .unwrap_or_default();
    assert!(message.contains("max_instances 2"), "{message}");
    wait_for(&mut rx, fire("run-succeeded", "aa", 2)).await;
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(allow_all_overlaps_up_to_max_instances: memory, sqlite, postgres);
