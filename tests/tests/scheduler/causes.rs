//! Why a run happened (issue 13, items 6 and 8): every run records its
//! cause, and `run_on_start` runs a job once when the scheduler starts.

use chrono::Duration;
use std::sync::Arc;
use wasmcron::event::Event;
use wasmcron::scheduler::{ManualClock, Scheduler};
use wasmcron::store::{JobStore, RunCause, RunOrigin, RunStatus, RunSummary};
use wasmcron_tests::backends;
use wasmcron_tests::sched::{parts, spec, start, t0, wait_for};
use wasmcron_tests::stores::TestStore;

fn is(name: &'static str, job: &'static str) -> impl Fn(&Event) -> bool {
    move |e| e.name() == name && e.job_id() == Some(job)
}

/// The job's run summaries as the API lists them, oldest first.
async fn summaries(store: &Arc<dyn JobStore>, job: &str) -> Vec<RunSummary> {
    let mut runs = store
        .run_summaries(job, 100, 0)
        .await
        .expect("summaries")
        .runs;
    runs.reverse();
    runs
}

async fn every_run_records_why_it_happened_and_run_on_start_runs_at_each_start(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let store: Arc<dyn JobStore> = db.open().await;
    {
        let s = start(store.clone(), clock.clone()).await;
        let mut rx = s.subscribe();
        // Added while the scheduler runs: no start run now, only at the
        // next start.
        s.add_job(
            spec(
                r#"{"id":"boot","plugin":"hello","run_on_start":true,
                    "trigger":{"type":"interval","every":"1h"}}"#,
            ),
            false,
        )
        .await
        .expect("add");
        s.add_job(
            spec(
                r#"{"id":"sleepy","plugin":"hello","run_on_start":true,"paused":true,
                    "trigger":{"type":"interval","every":"1h"}}"#,
            ),
            false,
        )
        .await
        .expect("add");
        // flaky fails its first attempt and succeeds its second.
        s.add_job(
            spec(
                r#"{"id":"f","plugin":"flaky","trigger":{"type":"interval","every":"1h"},
                    "retry":{"max_attempts":3,"delay":"5s"}}"#,
            ),
            false,
        )
        .await
        .expect("add");
        clock.advance(Duration::hours(1));
        // The two fires run at once: their events come in either order.
        let (mut boot, mut retried) = (false, false);
        while !(boot && retried) {
            let e = wait_for(&mut rx, |e| {
                is("run-succeeded", "boot")(e) || is("run-retried", "f")(e)
            })
            .await;
            boot |= e.name() == "run-succeeded";
            retried |= e.name() == "run-retried";
        }
        clock.advance(Duration::seconds(5));
        wait_for(&mut rx, is("run-succeeded", "f")).await;
        let manual = s.run_now("boot").await.expect("run now");
        wait_for(&mut rx, |e| {
            e.name() == "run-succeeded" && e.job_id() == Some("boot") && {
                let Event::RunSucceeded(r) = e else {
                    return false;
                };
                r.run_id == manual.run_id
            }
        })
        .await;
        let replay = s.replay(&manual.run_id).await.expect("replay");
        wait_for(&mut rx, |e| match e {
            Event::RunSucceeded(r) => r.run_id == replay.run_id,
            _ => false,
        })
        .await;
        s.shutdown(std::time::Duration::from_secs(5)).await;
    }
    let causes = |runs: &[RunSummary]| -> Vec<(RunOrigin, RunCause, u32)> {
        runs.iter()
            .map(|r| (r.origin, r.cause, r.attempt))
            .collect()
    };
    assert_eq!(
        causes(&summaries(&store, "boot").await),
        [
            (RunOrigin::Fire, RunCause::Schedule, 1),
            (RunOrigin::Manual, RunCause::Manual, 1),
            (RunOrigin::Replay, RunCause::Replay, 1),
        ]
    );
    assert_eq!(
        causes(&summaries(&store, "f").await),
        [
            (RunOrigin::Fire, RunCause::Schedule, 1),
            (RunOrigin::Fire, RunCause::Retry, 2),
        ]
    );
    // The next start runs `boot` once, recorded as such; the paused job
    // does not run.
    let (s, mut rx) = Scheduler::start_with_events(parts(store.clone(), clock.clone()))
        .await
        .expect("start");
    let started = wait_for(&mut rx, is("run-succeeded", "boot")).await;
    let Event::RunSucceeded(started) = started else {
        unreachable!()
    };
    let run = s
        .run(&started.run_id)
        .await
        .expect("run")
        .expect("recorded");
    assert_eq!(run.origin, RunOrigin::Start);
    assert_eq!(run.cause(), RunCause::Start);
    assert_eq!(run.status, RunStatus::Finished);
    assert!(
        run.note
            .as_deref()
            .is_some_and(|n| n.contains("run_on_start")),
        "{:?}",
        run.note
    );
    assert!(summaries(&store, "sleepy").await.is_empty());
    // Its schedule is untouched: the next fire is still on the hour.
    assert_eq!(
        s.job("boot").expect("job").next_run_time,
        Some(t0() + Duration::hours(2))
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(every_run_records_why_it_happened_and_run_on_start_runs_at_each_start: sqlite, postgres);

async fn a_backfill_runs_each_past_fire_in_order_behind_live_ones(db: TestStore) {
    use wasmcron::job::Overlap;
    use wasmcron::scheduler::{BackfillRange, SchedulerError};
    let clock = Arc::new(ManualClock::new(t0()));
    let store: Arc<dyn JobStore> = db.open().await;
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(r#"{"id":"bf","plugin":"hello","trigger":{"type":"cron","expr":"0 * * * *"}}"#),
        false,
    )
    .await
    .expect("add");
    let hours = |h: i64| t0() + Duration::hours(h);
    let range = |from, to, overlap| BackfillRange { from, to, overlap };
    // Bad ranges, each naming the field.
    for (r, field, says) in [
        (
            range(hours(-1), hours(-3), Overlap::BufferAll),
            "from",
            "is after to",
        ),
        (
            range(hours(-3), hours(2), Overlap::BufferAll),
            "to",
            "in the future",
        ),
        (
            range(hours(-3), hours(-1), Overlap::BufferOne),
            "overlap",
            "buffer-all",
        ),
        (
            range(hours(-20_000), hours(-1), Overlap::BufferAll),
            "to",
            "holds 20000 fires",
        ),
    ] {
        match s.backfill("bf", r).await {
            Err(SchedulerError::BadRequest { field: f, problem }) => {
                assert_eq!(f, field, "{problem}");
                assert!(problem.contains(says), "{problem}");
            }
            other => panic!("{r:?}: {other:?}"),
        }
    }
    assert!(matches!(
        s.backfill("nope", range(hours(-3), hours(-1), Overlap::BufferAll))
            .await,
        Err(SchedulerError::JobNotFound(_))
    ));
    // Five past hours, both ends included, one after another.
    let started = s
        .backfill("bf", range(hours(-5), hours(-1), Overlap::BufferAll))
        .await
        .expect("backfill");
    assert_eq!(started.fires, 5);
    assert_eq!(
        (started.first, started.last),
        (Some(hours(-5)), Some(hours(-1)))
    );
    for h in -5..=-1 {
        // Each is recorded and starts only once the one before has ended
        // (`wait_for` passes over earlier events: out of order, it times
        // out).
        wait_for(&mut rx, |e| match e {
            Event::RunSubmitted(r) => r.job_id == "bf" && r.scheduled_at == hours(h),
            _ => false,
        })
        .await;
        wait_for(&mut rx, |e| match e {
            Event::RunSucceeded(r) => r.job_id == "bf" && r.scheduled_at == hours(h),
            _ => false,
        })
        .await;
    }
    let runs = summaries(&store, "bf").await;
    let got: Vec<_> = runs
        .iter()
        .map(|r| (r.scheduled_at, r.cause, r.status))
        .collect();
    let want: Vec<_> = (-5..=-1)
        .map(|h| (hours(h), RunCause::Backfill, RunStatus::Finished))
        .collect();
    assert_eq!(got, want);
    assert!(
        runs[4]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("fire 5 of 5")),
        "{:?}",
        runs[4].note
    );
    // The live schedule is untouched, and a backfill of the same range
    // again is allowed (its fires are not the schedule's).
    assert_eq!(s.job("bf").expect("job").next_run_time, Some(hours(1)));
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(a_backfill_runs_each_past_fire_in_order_behind_live_ones: memory, sqlite, postgres);
