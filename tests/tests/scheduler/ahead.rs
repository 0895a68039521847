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

/// Places ahead of the workers for this many more runs of quick jobs
/// (`quick_ahead_limit` in host/src/scheduler/mod.rs: 28 × workers).
const QUICK_PLACES: usize = 28 * WORKERS;

async fn runs_of_jobs_whose_last_run_was_quick_are_recorded_running_further_ahead(db: TestStore) {
    const EACH: usize = 20;
    // More of each kind than the base places (4 × workers), fewer quick
    // ones than the quick places.
    const { assert!(EACH > 4 * WORKERS && EACH < QUICK_PLACES) };
    let clock = Arc::new(ManualClock::new(t0()));
    let (s, mut rx) = Scheduler::start_with_events(parts(db.open().await, clock.clone()))
        .await
        .unwrap();
    let add = |id, plugin, every, more| add(&s, id, plugin, every, more);
    quick_jobs(&s, &clock, &mut rx, EACH, "1h").await;
    // Every worker held from just before the next burst, in which the
    // quick jobs come due beside as many new jobs (never run: not quick).
    for i in 0..EACH {
        add(format!("n-{i}"), "hello", "1h", "").await;
    }
    hold_every_worker(&s, &clock, &mut rx, 60_000).await;
    clock.advance(Duration::minutes(1));
    let burst = t0() + Duration::hours(2);
    let mut submitted = 0;
    while submitted < 2 * EACH {
        if let Event::RunSubmitted(e) = wait_for(&mut rx, |e| e.name() == "run-submitted").await
            && e.scheduled_at == burst
        {
            submitted += 1;
        }
    }
    let status = |id: String| {
        let s = s.clone();
        async move {
            let runs = s.runs(&id, 10).await.unwrap();
            runs.into_iter()
                .find(|r| r.scheduled_at == burst)
                .map(|r| r.status)
        }
    };
    let mut new_pending = 0;
    for i in 0..EACH {
        assert_eq!(
            status(format!("q-{i}")).await,
            Some(RunStatus::Running),
            "q-{i}: a quick job's run is recorded running with its fire"
        );
        match status(format!("n-{i}")).await {
            Some(RunStatus::Pending) => new_pending += 1,
            Some(RunStatus::Running) => {}
            other => panic!("n-{i}: {other:?}"),
        }
    }
    // The new jobs had only what the quick ones left of the base places.
    assert!(
        new_pending >= EACH - 4 * WORKERS,
        "{new_pending} of the new jobs' runs pending"
    );
    s.shutdown(std::time::Duration::from_millis(50)).await;
}
backends!(runs_of_jobs_whose_last_run_was_quick_are_recorded_running_further_ahead: sqlite, memory);

/// The starter (host/src/scheduler/starter.rs) takes the quick places too:
/// runs of quick jobs recorded pending (here asked for with run-now, which
/// always records pending first) are recorded running ahead of a worker
/// while every base place is taken, instead of waiting for one.
async fn the_starter_gives_quick_jobs_pending_runs_the_quick_places(db: TestStore) {
    /// The base places ahead (`ahead_limit` in host/src/scheduler/mod.rs).
    const BASE: usize = 4 * WORKERS;
    const ASKED: usize = 6;
    let clock = Arc::new(ManualClock::new(t0()));
    let (s, mut rx) = Scheduler::start_with_events(parts(db.open().await, clock.clone()))
        .await
        .unwrap();
    let add = |id, plugin, every, more| add(&s, id, plugin, every, more);
    // Not due again during the test.
    quick_jobs(&s, &clock, &mut rx, ASKED, "1d").await;
    // Every base place taken by a new job's run (not quick), all due at
    // one instant an hour on ...
    for i in 0..BASE {
        add(format!("n-{i}"), "hello", "1h", "").await;
    }
    // ... when every worker is held (these runs outlast the test).
    hold_every_worker(&s, &clock, &mut rx, 600_000).await;
    clock.advance(Duration::minutes(1));
    let mut submitted = 0;
    while submitted < BASE {
        if let Event::RunSubmitted(e) = wait_for(&mut rx, |e| e.name() == "run-submitted").await
            && e.job_id.starts_with("n-")
        {
            submitted += 1;
        }
    }
    for i in 0..BASE {
        let runs = s.runs(&format!("n-{i}"), 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].status, RunStatus::Running, "n-{i} ahead: {runs:?}");
    }
    // Runs asked for of the quick jobs: recorded pending, then running by
    // the starter on quick places, with no worker or base place freed.
    let mut asked = Vec::new();
    for i in 0..ASKED {
        let run = s.run_now(&format!("q-{i}")).await.unwrap();
        assert_eq!(run.status, RunStatus::Pending, "{run:?}");
        asked.push(run);
    }
    for round in 0.. {
        // A safety net only; the hold's end below fails it first.
        assert!(round < 3000, "the asked-for runs never ran");
        let mut running = 0;
        for run in &asked {
            let runs = s.runs(&run.job_id, 10).await.unwrap();
            let now = runs.iter().find(|r| r.run_id == run.run_id).unwrap();
            if now.status == RunStatus::Running {
                running += 1;
            }
        }
        if running == ASKED {
            break;
        }
        // A hold's end (its 30 s timeout) would free a worker and a base
        // place: the asked-for runs must not have needed one.
        while let Ok(e) = rx.try_recv() {
            assert!(
                !(e.job_id().is_some_and(|j| j.starts_with("hold-"))
                    && matches!(*e, Event::RunSucceeded(_) | Event::RunFailed(_))),
                "a worker freed before the quick jobs' runs were recorded running \
                 ({running} of {ASKED} were): they waited for a base place"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.shutdown(std::time::Duration::from_millis(50)).await;
}
backends!(the_starter_gives_quick_jobs_pending_runs_the_quick_places: sqlite, memory);

/// Adds job `id`, on an interval `every` (`1h`, `1d`, `59m`); `more`:
/// further fields, each with its leading comma.
async fn add(s: &Scheduler, id: String, plugin: &str, every: &str, more: &str) {
    let json = format!(
        r#"{{"id":"{id}","plugin":"{plugin}"{more},
            "trigger":{{"type":"interval","every":"{every}"}}}}"#
    );
    s.add_job(spec(&json), false).await.unwrap();
}

/// Adds `n` hello jobs `q-0`, `q-1`… every `every` (`1h` or `1d`), moves
/// the clock to their first fire and waits until each has run once: under
/// the test's clock a run takes no time, so each job is then quick.
async fn quick_jobs(
    s: &Scheduler,
    clock: &ManualClock,
    rx: &mut wasmcron::event::EventReceiver,
    n: usize,
    every: &str,
) {
    for i in 0..n {
        add(s, format!("q-{i}"), "hello", every, "").await;
    }
    clock.advance(match every {
        "1h" => Duration::hours(1),
        "1d" => Duration::days(1),
        other => panic!("quick_jobs: every {other}"),
    });
    let mut done = std::collections::BTreeSet::new();
    while done.len() < n {
        if let Event::RunSucceeded(e) = wait_for(rx, |e| e.name() == "run-succeeded").await {
            done.insert(e.job_id);
        }
    }
}

/// Holds every worker: adds `hold-0`… (`slow` runs of `millis`, every
/// 59 minutes), moves the clock 59 minutes to their fire and waits until
/// each has started.
async fn hold_every_worker(
    s: &Scheduler,
    clock: &ManualClock,
    rx: &mut wasmcron::event::EventReceiver,
    millis: u64,
) {
    for i in 0..WORKERS {
        let args = format!(r#","args":{{"millis":{millis}}}"#);
        add(s, format!("hold-{i}"), "slow", "59m", &args).await;
    }
    clock.advance(Duration::minutes(59));
    for _ in 0..WORKERS {
        wait_for(rx, |e| {
            e.name() == "run-started" && e.job_id().is_some_and(|j| j.starts_with("hold-"))
        })
        .await;
    }
}
