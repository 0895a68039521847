//! Regressions from issue 10 ("scheduler behaviour that is wrong"), each
//! replayed from a public report against another scheduler, on the
//! controllable clock.

use super::is;
use chrono::Duration;
use std::sync::Arc;
use wasmcron::event::Event;
use wasmcron::scheduler::{ManualClock, Scheduler};
use wasmcron::store::{RunRecord, RunStatus};
use wasmcron_tests::backends;
use wasmcron_tests::sched::{parts, spec, start, t0, wait_for};
use wasmcron_tests::stores::TestStore;

fn with_status(runs: &[RunRecord], status: RunStatus) -> Vec<&RunRecord> {
    runs.iter().filter(|r| r.status == status).collect()
}

/// APScheduler's "coalesce=False only runs one missed job" and Quartz's
/// misfire-instruction reports: with `max_instances = 1`, catch-up fires
/// were each skipped as overlapping the first.
async fn catch_up_fires_without_coalescing_each_run_one_after_another(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    {
        let s = start(db.open().await, clock.clone()).await;
        s.add_job(
            spec(
                r#"{"id":"each","plugin":"slow","args":{"millis":30},"coalesce":false,
                    "trigger":{"type":"interval","every":"1s"}}"#,
            ),
            false,
        )
        .await
        .unwrap();
        s.shutdown(std::time::Duration::from_secs(5)).await;
    }
    // Down for seven seconds: fires at 1 s … 7 s were missed.
    clock.advance(Duration::seconds(7));
    let (s, mut rx) = Scheduler::start_with_events(parts(db.open().await, clock.clone()))
        .await
        .unwrap();
    // Every event of the start-up, in order: a run starts only after the
    // one before it ended.
    let mut running = 0;
    let mut succeeded = Vec::new();
    while succeeded.len() < 7 {
        match wait_for(&mut rx, |e| e.job_id() == Some("each")).await {
            Event::RunStarted(_) => {
                running += 1;
                assert_eq!(running, 1, "catch-up runs overlapped");
            }
            Event::RunSucceeded(e) => {
                running -= 1;
                succeeded.push((e.scheduled_at - t0()).num_seconds());
            }
            Event::RunSkipped(e) | Event::RunMissed(e) => panic!("a fire was not run: {e:?}"),
            _ => {}
        }
    }
    assert_eq!(succeeded, [1, 2, 3, 4, 5, 6, 7]);
    let runs = s.runs("each", 100).await.unwrap();
    assert_eq!(with_status(&runs, RunStatus::Finished).len(), 7, "{runs:?}");
    assert_eq!(runs.len(), 7, "no skipped or missed rows: {runs:?}");
    assert_eq!(
        s.job("each").unwrap().next_run_time,
        Some(t0() + Duration::seconds(8))
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(catch_up_fires_without_coalescing_each_run_one_after_another: sqlite, postgres);

/// A queue of catch-up runs cut by a restart is still run one after
/// another: the pending rows it left are admitted up to `max_instances`
/// and the rest queue again.
async fn catch_up_runs_left_pending_by_a_restart_still_run_one_at_a_time(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    {
        let s = start(db.open().await, clock.clone()).await;
        s.add_job(
            spec(
                r#"{"id":"each","plugin":"slow","args":{"millis":400},"coalesce":false,
                    "trigger":{"type":"interval","every":"1s"}}"#,
            ),
            false,
        )
        .await
        .unwrap();
        s.shutdown(std::time::Duration::from_secs(5)).await;
    }
    clock.advance(Duration::seconds(5));
    {
        // Started and stopped while the first catch-up run goes: it is
        // interrupted, the other four stay pending.
        let (s, mut rx) = Scheduler::start_with_events(parts(db.open().await, clock.clone()))
            .await
            .unwrap();
        wait_for(&mut rx, is("run-started", "each")).await;
        s.shutdown(std::time::Duration::from_millis(50)).await;
        let runs = s.runs("each", 100).await.unwrap();
        assert_eq!(with_status(&runs, RunStatus::Pending).len(), 4, "{runs:?}");
    }
    let (s, mut rx) = Scheduler::start_with_events(parts(db.open().await, clock.clone()))
        .await
        .unwrap();
    let mut running = 0;
    let mut done = 0;
    while done < 4 {
        match wait_for(&mut rx, |e| e.job_id() == Some("each")).await {
            Event::RunStarted(_) => {
                running += 1;
                assert_eq!(running, 1, "recovered catch-up runs overlapped");
            }
            Event::RunSucceeded(_) => {
                running -= 1;
                done += 1;
            }
            Event::RunSkipped(e) => panic!("a fire was skipped: {e:?}"),
            _ => {}
        }
    }
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(catch_up_runs_left_pending_by_a_restart_still_run_one_at_a_time: sqlite, postgres);

/// One fire, one story: with `coalesce` and a `misfire_grace` the latest
/// missed fire is past, one row says all were missed and none ran (it used
/// to say they were coalesced into a run, and the next row that the same
/// run was missed).
async fn coalesced_fires_past_their_grace_are_one_missed_row(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = db.open().await;
    {
        let s = start(store.clone(), clock.clone()).await;
        for (id, grace) in [("late", "20s"), ("in-time", "40s")] {
            s.add_job(
                spec(&format!(
                    r#"{{"id":"{id}","plugin":"hello","misfire_grace":"{grace}",
                        "trigger":{{"type":"interval","every":"1m"}}}}"#
                )),
                false,
            )
            .await
            .unwrap();
        }
        s.shutdown(std::time::Duration::from_secs(5)).await;
    }
    // Ten fires missed; the latest (10 min) is 30 s late.
    clock.advance(Duration::seconds(630));
    let (s, mut rx) = Scheduler::start_with_events(parts(store, clock.clone()))
        .await
        .unwrap();
    let Event::RunMissed(missed) = wait_for(&mut rx, is("run-missed", "late")).await else {
        unreachable!()
    };
    wait_for(&mut rx, is("run-succeeded", "in-time")).await;
    s.shutdown(std::time::Duration::from_secs(5)).await;

    let late = s.runs("late", 100).await.unwrap();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].status, RunStatus::Missed);
    assert_eq!(late[0].scheduled_at, t0() + Duration::minutes(10));
    assert_eq!(missed.run_id, late[0].run_id);
    let note = late[0].note.as_deref().unwrap_or_default();
    assert!(
        note.contains("10 fire(s)") && note.contains("none ran") && note.contains("30s late"),
        "{note}"
    );
    assert!(!note.contains("coalesced"), "{note}");

    // Within its grace: one row for the nine it stands for, one run.
    let in_time = s.runs("in-time", 100).await.unwrap();
    assert_eq!(in_time.len(), 2, "{in_time:?}");
    assert_eq!(in_time[0].status, RunStatus::Finished);
    assert_eq!(in_time[0].scheduled_at, t0() + Duration::minutes(10));
    assert_eq!(in_time[1].status, RunStatus::Missed);
    assert!(
        in_time[1]
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("9 fire(s)")
    );
}
backends!(coalesced_fires_past_their_grace_are_one_missed_row: memory, sqlite, postgres);

/// A run of a deleted job that finishes after a new job took its id is not
/// recorded under the new job, and does not free the new job's slot.
async fn a_deleted_jobs_run_does_not_leak_into_a_new_job_with_its_id(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    let job = r#"{"id":"dup","plugin":"slow","args":{"millis":800},"trigger":{"type":"interval","every":"1h"}}"#;
    let first = s.add_job(spec(job), false).await.unwrap();
    let old = s.run_now("dup").await.unwrap();
    assert_eq!(old.incarnation, first.incarnation);
    wait_for(&mut rx, is("run-started", "dup")).await;
    s.remove_job("dup").await.unwrap();
    assert!(s.run(&old.run_id).await.unwrap().is_none());
    let second = s.add_job(spec(job), false).await.unwrap();
    assert_ne!(second.incarnation, first.incarnation);
    // The new job runs while the old run is still going: the old one does
    // not hold the new job's max_instances slot.
    let new = s.run_now("dup").await.unwrap();
    // Both end, in either order: on a loaded machine the old run (in the
    // slow lane after a second) may well end after the new one.
    let mut pending = vec![old.run_id.clone(), new.run_id.clone()];
    while !pending.is_empty() {
        let ids = pending.clone();
        let Event::RunSucceeded(done) = wait_for(
            &mut rx,
            move |e| matches!(e, Event::RunSucceeded(r) if ids.contains(&r.run_id)),
        )
        .await
        else {
            unreachable!()
        };
        pending.retain(|id| *id != done.run_id);
    }
    let runs = s.runs("dup", 10).await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, [new.run_id.as_str()]);
    assert!(s.run(&old.run_id).await.unwrap().is_none());
    assert_eq!(s.job("dup").unwrap().in_flight, 0);
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(a_deleted_jobs_run_does_not_leak_into_a_new_job_with_its_id: memory, sqlite, postgres);

/// Editing a job without touching its trigger keeps its schedule and
/// `created_at`; a paused job stays paused; a new trigger starts from now.
async fn a_change_keeps_the_schedule_unless_the_trigger_changes(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    let job = |name: &str, every: &str| {
        spec(&format!(
            r#"{{"id":"h","plugin":"hello","args":{{"name":"{name}"}},"trigger":{{"type":"interval","every":"{every}"}}}}"#
        ))
    };
    let added = s.add_job(job("a", "1h"), false).await.unwrap();
    assert_eq!(added.next_run_time, Some(t0() + Duration::hours(1)));
    // A deploy every 20 minutes changing only the args: the job still
    // runs on the hour.
    for (k, name) in ["b", "c"].iter().enumerate() {
        clock.advance(Duration::minutes(20));
        let info = s.modify_job(job(name, "1h")).await.unwrap();
        assert_eq!(info.next_run_time, added.next_run_time, "deploy {k}");
        assert_eq!(info.created_at, added.created_at);
        assert_eq!(info.incarnation, added.incarnation);
    }
    clock.advance(Duration::minutes(20));
    let Event::RunSucceeded(e) = wait_for(&mut rx, is("run-succeeded", "h")).await else {
        unreachable!()
    };
    assert_eq!(e.scheduled_at, t0() + Duration::hours(1));
    // Replacing with the same trigger through add_job keeps it too.
    let info = s.add_job(job("d", "1h"), true).await.unwrap();
    assert_eq!(info.next_run_time, Some(t0() + Duration::hours(2)));
    // Paused, then changed: still paused, no fire.
    s.pause_job("h").await.unwrap();
    let info = s.modify_job(job("e", "1h")).await.unwrap();
    assert!(info.paused);
    assert_eq!(info.next_run_time, None);
    let info = s.modify_job(job("e", "30m")).await.unwrap();
    assert!(info.paused);
    // Resumed: a new trigger starts from now.
    let info = s.resume_job("h").await.unwrap();
    let now = t0() + Duration::hours(1);
    assert_eq!(info.next_run_time, Some(now + Duration::minutes(30)));
    let info = s.modify_job(job("e", "10m")).await.unwrap();
    assert_eq!(info.next_run_time, Some(now + Duration::minutes(10)));
    assert_eq!(info.created_at, now);
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(a_change_keeps_the_schedule_unless_the_trigger_changes: memory, sqlite, postgres);
