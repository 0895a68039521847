//! Why a run happened (issue 13, items 6 and 8): every run records its
//! cause, and `run_on_start` runs a job once when the scheduler starts.

use chrono::Duration;
use std::sync::Arc;
use wasmcron::event::Event;
use wasmcron::scheduler::{ManualClock, Scheduler};
use wasmcron::store::{JobStore, RunCause, RunOrigin, RunStatus, RunSummary, RunsFrom};
use wasmcron_tests::backends;
use wasmcron_tests::sched::{parts, spec, start, t0, wait_for};
use wasmcron_tests::stores::TestStore;

fn is(name: &'static str, job: &'static str) -> impl Fn(&Event) -> bool {
    move |e| e.name() == name && e.job_id() == Some(job)
}

/// The job's run summaries as the API lists them, oldest first.
async fn summaries(store: &Arc<dyn JobStore>, job: &str) -> Vec<RunSummary> {
    let mut runs = store
        .run_summaries(job, 100, RunsFrom::Offset(0))
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
    // Each is recorded and starts only once the one before has ended. The
    // order is checked on the store, not on the order of events: a run's
    // end is recorded before its end event is published, and the backfill
    // (which watches the store) may submit the next fire in between.
    let mut submitted = Vec::new();
    let mut succeeded = Vec::new();
    while succeeded.len() < 5 {
        let e = wait_for(&mut rx, |e| match e {
            Event::RunSubmitted(r) | Event::RunSucceeded(r) => r.job_id == "bf",
            _ => false,
        })
        .await;
        match e {
            Event::RunSubmitted(r) => {
                let before = summaries(&store, "bf").await;
                assert!(
                    before
                        .iter()
                        .filter(|b| b.scheduled_at < r.scheduled_at)
                        .all(|b| b.status == RunStatus::Finished),
                    "{} submitted before the fires ahead of it ended: {before:?}",
                    r.scheduled_at
                );
                submitted.push(r.scheduled_at);
            }
            Event::RunSucceeded(r) => succeeded.push(r.scheduled_at),
            _ => {}
        }
    }
    let in_order: Vec<_> = (-5..=-1).map(hours).collect();
    assert_eq!(submitted, in_order);
    assert_eq!(succeeded, in_order);
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

async fn chains_start_the_next_job_once_per_fire_and_cycles_are_refused(db: TestStore) {
    use wasmcron::scheduler::SchedulerError;
    let clock = Arc::new(ManualClock::new(t0()));
    let store: Arc<dyn JobStore> = db.open().await;
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    let yearly = r#""trigger":{"type":"cron","expr":"0 0 1 1 *"}"#;
    for json in [
        // Two parents may chain to b at once: two instances.
        format!(r#"{{"id":"b","plugin":"hello","max_instances":2,{yearly}}}"#),
        format!(r#"{{"id":"c","plugin":"hello",{yearly}}}"#),
        r#"{"id":"a","plugin":"hello","on_success":["b"],"on_failure":["c"],
            "trigger":{"type":"interval","every":"1h"}}"#
            .to_owned(),
        // flaky fails its first attempt: retried, then succeeds. Only the
        // fire's last outcome chains: b, never c.
        r#"{"id":"f","plugin":"flaky","on_success":["b"],"on_failure":["c"],
            "retry":{"max_attempts":2,"delay":"1s"},
            "trigger":{"type":"interval","every":"1h"}}"#
            .to_owned(),
        r#"{"id":"p","plugin":"panic","on_failure":["c"],
            "trigger":{"type":"interval","every":"1h"}}"#
            .to_owned(),
    ] {
        s.add_job(spec(&json), false).await.expect("add");
    }
    // Refused: an unknown target, a cycle (with its path), a job chaining
    // to itself.
    let refused = |json: &str| spec(json);
    match s
        .add_job(
            refused(&format!(
                r#"{{"id":"x","plugin":"hello","on_success":["nope"],{yearly}}}"#
            )),
            false,
        )
        .await
    {
        Err(SchedulerError::Invalid(e)) => {
            assert_eq!(e.field(), "on_success[0]", "{e}");
            assert!(e.to_string().contains("no job 'nope'"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match s
        .modify_job(refused(&format!(
            r#"{{"id":"b","plugin":"hello","max_instances":2,"on_failure":["a"],{yearly}}}"#
        )))
        .await
    {
        Err(SchedulerError::Invalid(e)) => {
            assert_eq!(e.field(), "on_failure[0]", "{e}");
            assert!(e.to_string().contains("b → a → b"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // In one list, a later job may be a target; a cycle within the list
    // is refused.
    s.upsert_jobs(vec![
        refused(&format!(
            r#"{{"id":"l1","plugin":"hello","on_success":["l2"],{yearly}}}"#
        )),
        refused(&format!(r#"{{"id":"l2","plugin":"hello",{yearly}}}"#)),
    ])
    .await
    .expect("forward reference in a list");
    let err = s
        .upsert_jobs(vec![
            refused(&format!(
                r#"{{"id":"m1","plugin":"hello","on_success":["m2"],{yearly}}}"#
            )),
            refused(&format!(
                r#"{{"id":"m2","plugin":"hello","on_success":["m1"],{yearly}}}"#
            )),
        ])
        .await
        .expect_err("a cycle in a list");
    assert!(
        err.error.to_string().contains("m1 → m2 → m1"),
        "{err}: {}",
        err.error
    );

    clock.advance(Duration::hours(1));
    // a succeeded → b; f succeeded on its retry (once the clock passes its
    // delay) → b; p trapped → c. The events come in any order.
    let (mut b, mut c, mut retried) = (0, 0, false);
    while b < 2 || c < 1 || !retried {
        let e = wait_for(&mut rx, |e| {
            is("run-succeeded", "b")(e) || is("run-succeeded", "c")(e) || is("run-retried", "f")(e)
        })
        .await;
        match e.job_id() {
            Some("b") => b += 1,
            Some("c") => c += 1,
            _ => {
                retried = true;
                clock.advance(Duration::seconds(1));
            }
        }
    }
    let b_runs = summaries(&store, "b").await;
    assert_eq!(b_runs.len(), 2, "{b_runs:#?}");
    for r in &b_runs {
        assert_eq!(r.cause, RunCause::Chain);
        let note = r.note.as_deref().unwrap_or_default();
        assert!(note.starts_with("chained: on_success of run "), "{note}");
    }
    let parents: Vec<_> = b_runs
        .iter()
        .map(|r| {
            let note = r.note.clone().unwrap_or_default();
            note.split(" of job '")
                .nth(1)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(parents.iter().any(|p| p.starts_with("a'")), "{parents:?}");
    assert!(parents.iter().any(|p| p.starts_with("f'")), "{parents:?}");
    let c_runs = summaries(&store, "c").await;
    assert_eq!(c_runs.len(), 1, "only p's failure chains to c: {c_runs:#?}");
    assert!(
        c_runs[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("on_failure") && n.contains("'p' (trapped)")),
        "{:?}",
        c_runs[0].note
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(chains_start_the_next_job_once_per_fire_and_cycles_are_refused: memory, sqlite, postgres);

async fn live_fires_wait_for_backfill_runs_and_a_new_job_under_the_id_gets_none(db: TestStore) {
    use wasmcron::job::Overlap;
    use wasmcron::scheduler::BackfillRange;
    let clock = Arc::new(ManualClock::new(t0()));
    let store: Arc<dyn JobStore> = db.open().await;
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    let slow = r#"{"id":"lv","plugin":"slow","args":{"millis":1500},
                   "trigger":{"type":"cron","expr":"0 * * * *"}}"#;
    s.add_job(spec(slow), false).await.expect("add");
    let hours = |h: i64| t0() + Duration::hours(h);
    s.backfill(
        "lv",
        BackfillRange {
            from: hours(-2),
            to: hours(-1),
            overlap: Overlap::BufferAll,
        },
    )
    .await
    .expect("backfill");
    wait_for(&mut rx, |e| match e {
        Event::RunStarted(r) => r.job_id == "lv" && r.scheduled_at == hours(-2),
        _ => false,
    })
    .await;
    // The live fire finds the backfill run going: it waits (with
    // max_instances 1 and overlap skip it would otherwise be skipped),
    // and runs before the backfill's next fire.
    clock.advance(Duration::hours(1));
    let order: Vec<_> = {
        let mut order = vec![hours(-2)];
        while order.len() < 3 {
            let e = wait_for(
                &mut rx,
                |e| matches!(e, Event::RunStarted(r) | Event::RunSkipped(r) if r.job_id == "lv"),
            )
            .await;
            if let Event::RunSkipped(r) = &e {
                panic!("a fire was skipped for a backfill run: {r:?}");
            }
            if let Event::RunStarted(r) = e {
                order.push(r.scheduled_at);
            }
        }
        order
    };
    assert_eq!(order, [hours(-2), hours(1), hours(-1)]);
    wait_for(&mut rx, |e| match e {
        Event::RunSucceeded(r) => r.job_id == "lv" && r.scheduled_at == hours(-1),
        _ => false,
    })
    .await;
    let live = summaries(&store, "lv")
        .await
        .into_iter()
        .find(|r| r.scheduled_at == hours(1))
        .expect("the live fire's run");
    assert_eq!(live.cause, RunCause::Schedule);
    assert!(
        live.note
            .as_deref()
            .is_some_and(|n| n.contains("live fires come before backfills")),
        "{:?}",
        live.note
    );

    // A job deleted mid-backfill and added again under its id is another
    // job: the backfill stops, and the new job's history has none of it.
    s.backfill(
        "lv",
        BackfillRange {
            from: hours(-4),
            to: hours(-1),
            overlap: Overlap::BufferAll,
        },
    )
    .await
    .expect("backfill");
    wait_for(&mut rx, |e| match e {
        Event::RunStarted(r) => r.job_id == "lv" && r.scheduled_at == hours(-4),
        _ => false,
    })
    .await;
    s.remove_job("lv").await.expect("remove");
    s.add_job(
        spec(r#"{"id":"lv","plugin":"hello","trigger":{"type":"cron","expr":"0 0 1 1 *"}}"#),
        false,
    )
    .await
    .expect("add again");
    // Longer than the rest of the backfill would take.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let again = summaries(&store, "lv").await;
    assert!(again.is_empty(), "{again:#?}");
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(live_fires_wait_for_backfill_runs_and_a_new_job_under_the_id_gets_none: memory, sqlite, postgres);
