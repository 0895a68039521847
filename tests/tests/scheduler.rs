//! The scheduler on a controllable clock, running real plugins.

#![expect(
    clippy::unwrap_used,
    reason = "test bodies are plain fns that backends! turns into one test per store; an unwrap there fails its test"
)]

use chrono::Duration;
use std::sync::Arc;
use wasmcron::event::Event;
use wasmcron::plugin::Plugin;
use wasmcron::runtime::Outcome;
use wasmcron::scheduler::{JobState, ManualClock, SchedulerError};
use wasmcron::store::{
    HealthCell, JobRecord, JobStore, KvStore, LogPage, MemoryJobStore, RunList, RunRecord,
    RunStatus, RunSummary, StoreError, Write,
};
use wasmcron_tests::backends;
use wasmcron_tests::plugins;
use wasmcron_tests::sched::{spec, start, t0, wait_for};
use wasmcron_tests::stores::TestStore;

fn is(name: &'static str, job: &'static str) -> impl Fn(&Event) -> bool {
    move |e| e.name() == name && e.job_id() == Some(job)
}

async fn interval_job_fires_at_exact_times(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    let info = s
        .add_job(
            spec(r#"{"id":"greet","plugin":"hello","trigger":{"type":"interval","every":"10s"}}"#),
            false,
        )
        .await
        .unwrap();
    assert_eq!(info.next_run_time, Some(t0() + Duration::seconds(10)));
    for k in 1..=3 {
        clock.advance(Duration::seconds(10));
        let Event::RunSucceeded(e) = wait_for(&mut rx, is("run-succeeded", "greet")).await else {
            unreachable!()
        };
        assert_eq!(e.scheduled_at, t0() + Duration::seconds(10 * k));
    }
    let runs = s.runs("greet", 10).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.status == RunStatus::Finished));
    assert_eq!(
        runs[0].outcome,
        Some(Outcome::Succeeded {
            output: "Hello, world!".into()
        })
    );
    assert_eq!(
        s.job("greet").unwrap().next_run_time,
        Some(t0() + Duration::seconds(40))
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(interval_job_fires_at_exact_times: memory, sqlite, postgres);

async fn cron_job_fires_on_the_minute_in_its_zone(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    // 00:00 UTC is 09:00 in Tokyo; fire at 09:02 Tokyo time.
    s.add_job(
        spec(r#"{"id":"tokyo","plugin":"hello","trigger":{"type":"cron","expr":"2 9 * * *","tz":"Asia/Tokyo"}}"#),
        false,
    )
    .await
    .unwrap();
    clock.advance(Duration::minutes(1));
    clock.advance(Duration::minutes(1));
    let Event::RunSucceeded(e) = wait_for(&mut rx, is("run-succeeded", "tokyo")).await else {
        unreachable!()
    };
    assert_eq!(e.scheduled_at, t0() + Duration::minutes(2));
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(cron_job_fires_on_the_minute_in_its_zone: memory, sqlite, postgres);

async fn flaky_is_retried_with_backoff_and_succeeds(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(
            r#"{"id":"flaky","plugin":"flaky","trigger":{"type":"interval","every":"1h"},
                "retry":{"max_attempts":3,"backoff":"exponential","delay":"5s","max_delay":"1m"}}"#,
        ),
        false,
    )
    .await
    .unwrap();
    clock.advance(Duration::hours(1));
    let Event::RunRetried(r) = wait_for(&mut rx, is("run-retried", "flaky")).await else {
        unreachable!()
    };
    assert_eq!(r.attempt, 2);
    assert_eq!(r.scheduled_at, t0() + Duration::hours(1));
    // The retry waits for its backoff: nothing until 5 s have passed.
    clock.advance(Duration::seconds(5));
    let Event::RunSucceeded(ok) = wait_for(&mut rx, is("run-succeeded", "flaky")).await else {
        unreachable!()
    };
    assert_eq!(ok.attempt, 2);
    let runs = s.runs("flaky", 10).await.unwrap();
    let attempts: Vec<(u32, Option<&str>)> = runs
        .iter()
        .map(|r| (r.attempt, r.outcome.as_ref().map(|o| o.kind().as_str())))
        .collect();
    assert_eq!(attempts, [(2, Some("succeeded")), (1, Some("failed"))]);
    assert_eq!(
        runs[0].due_at,
        t0() + Duration::hours(1) + Duration::seconds(5)
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(flaky_is_retried_with_backoff_and_succeeds: memory, sqlite, postgres);

async fn permanent_failures_and_unlisted_kinds_are_not_retried(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    // hello with bad args fails permanently; panic traps, and trapped is
    // left out of retry_on here.
    s.add_job(
        spec(r#"{"id":"bad-args","plugin":"hello","args":{"nope":1},"trigger":{"type":"interval","every":"1m"},"retry":{"max_attempts":5}}"#),
        false,
    )
    .await
    .unwrap();
    s.add_job(
        spec(r#"{"id":"boom","plugin":"panic","trigger":{"type":"interval","every":"1m"},"retry":{"max_attempts":5,"retry_on":["failed"]}}"#),
        false,
    )
    .await
    .unwrap();
    clock.advance(Duration::minutes(1));
    // Either may fail first.
    let first = wait_for(&mut rx, |e| e.name() == "run-failed").await;
    let other = if first.job_id() == Some("boom") {
        "bad-args"
    } else {
        "boom"
    };
    wait_for(&mut rx, move |e| {
        e.name() == "run-failed" && e.job_id() == Some(other)
    })
    .await;
    s.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(s.runs("bad-args", 10).await.unwrap().len(), 1);
    assert_eq!(s.runs("boom", 10).await.unwrap().len(), 1);
}
backends!(permanent_failures_and_unlisted_kinds_are_not_retried: memory, sqlite, postgres);

async fn max_instances_skips_fires_while_slow_runs(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(r#"{"id":"slow","plugin":"slow","args":{"millis":1500},"trigger":{"type":"interval","every":"1s"}}"#),
        false,
    )
    .await
    .unwrap();
    clock.advance(Duration::seconds(1));
    wait_for(&mut rx, is("run-started", "slow")).await;
    clock.advance(Duration::seconds(1));
    let Event::RunSkipped(e) = wait_for(&mut rx, is("run-skipped", "slow")).await else {
        unreachable!()
    };
    assert_eq!(e.scheduled_at, t0() + Duration::seconds(2));
    assert!(e.message.unwrap_or_default().contains("max_instances 1"));
    wait_for(&mut rx, is("run-succeeded", "slow")).await;
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(max_instances_skips_fires_while_slow_runs: memory, sqlite, postgres);

async fn downtime_is_coalesced_into_one_run_with_the_misses_recorded(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    {
        let store: Arc<dyn JobStore> = db.open().await;
        let s = start(store, clock.clone()).await;
        s.add_job(
            spec(r#"{"id":"tick","plugin":"hello","trigger":{"type":"interval","every":"1m"}}"#),
            false,
        )
        .await
        .unwrap();
        s.add_job(
            spec(r#"{"id":"each","plugin":"hello","coalesce":false,"misfire_grace":"150s","max_instances":10,
                     "trigger":{"type":"interval","every":"1m"}}"#),
            false,
        )
        .await
        .unwrap();
        s.shutdown(std::time::Duration::from_secs(5)).await;
    }
    // Down for ten minutes and a half.
    clock.advance(Duration::seconds(630));
    let store: Arc<dyn JobStore> = db.open().await;
    let s = start(store, clock.clone()).await;
    // Recovery fires at once, before a subscriber could listen: watch the
    // store instead.
    let finished = |runs: &[wasmcron::store::RunRecord]| {
        runs.iter()
            .filter(|r| r.status == RunStatus::Finished)
            .count()
    };
    for _ in 0..3000 {
        let tick = s.runs("tick", 100).await.unwrap();
        let each = s.runs("each", 100).await.unwrap();
        if finished(&tick) >= 1 && finished(&each) >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.shutdown(std::time::Duration::from_secs(5)).await;

    let tick = s.runs("tick", 100).await.unwrap();
    let finished: Vec<_> = tick
        .iter()
        .filter(|r| r.status == RunStatus::Finished)
        .collect();
    assert_eq!(finished.len(), 1, "coalesced into one run");
    assert_eq!(finished[0].scheduled_at, t0() + Duration::minutes(10));
    let missed: Vec<_> = tick
        .iter()
        .filter(|r| r.status == RunStatus::Missed)
        .collect();
    assert_eq!(missed.len(), 1);
    let note = missed[0].note.clone().unwrap_or_default();
    assert!(
        note.contains("9 fire(s)") && note.contains("coalesced"),
        "{note}"
    );
    assert_eq!(
        s.job("tick").unwrap().next_run_time,
        Some(t0() + Duration::minutes(11))
    );

    // Without coalescing: fires within the 150 s grace run (8, 9, 10 min),
    // the seven before are recorded as missed, each saying why.
    let each = s.runs("each", 100).await.unwrap();
    let mut ran: Vec<i64> = each
        .iter()
        .filter(|r| r.status == RunStatus::Finished)
        .map(|r| (r.scheduled_at - t0()).num_minutes())
        .collect();
    ran.sort_unstable();
    assert_eq!(ran, [8, 9, 10]);
    let missed: Vec<_> = each
        .iter()
        .filter(|r| r.status == RunStatus::Missed)
        .collect();
    assert_eq!(missed.len(), 7);
    assert!(missed.iter().all(|r| {
        r.note
            .as_deref()
            .unwrap_or_default()
            .contains("past its misfire_grace of 2m30s")
    }));
}
backends!(downtime_is_coalesced_into_one_run_with_the_misses_recorded: sqlite, postgres);

async fn a_job_whose_plugin_is_missing_waits_for_it_and_resumes_when_it_is_loaded(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    let info = s
        .add_job(
            spec(
                r#"{"id":"ghost","plugin":"not-here","trigger":{"type":"interval","every":"1m"}}"#,
            ),
            false,
        )
        .await
        .unwrap();
    assert!(!info.plugin_loaded);
    assert_eq!(info.state, JobState::WaitingForPlugin);
    // Its fires come and go without runs or rows: the job is held.
    for _ in 0..5 {
        clock.advance(Duration::minutes(1));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(s.runs("ghost", 10).await.unwrap().is_empty());
    let held = s.job("ghost").unwrap();
    assert_eq!(held.state, JobState::WaitingForPlugin);
    assert_eq!(held.next_run_time, Some(t0() + Duration::minutes(1)));

    // The plugin arrives: the job runs once for the fires it missed
    // (coalesce is on) and one row says how many were missed.
    let bytes = std::fs::read(plugins::HELLO).unwrap();
    let plugin = Plugin::load_bytes(s.runtime(), "not-here".into(), &bytes).unwrap();
    s.plugins().insert(plugin);
    s.plugin_loaded("not-here");
    let Event::RunSucceeded(done) = wait_for(&mut rx, is("run-succeeded", "ghost")).await else {
        unreachable!()
    };
    assert_eq!(done.scheduled_at, t0() + Duration::minutes(5));
    let runs = s.runs("ghost", 10).await.unwrap();
    let missed: Vec<_> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Missed)
        .collect();
    assert_eq!(missed.len(), 1, "{runs:?}");
    let note = missed[0].note.as_deref().unwrap_or_default();
    assert!(note.contains("plugin missing"), "{note}");
    let info = s.job("ghost").unwrap();
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.next_run_time, Some(t0() + Duration::minutes(6)));
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(a_job_whose_plugin_is_missing_waits_for_it_and_resumes_when_it_is_loaded: memory, sqlite, postgres);

async fn paused_jobs_do_not_fire_and_resume_from_now(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(r#"{"id":"p","plugin":"hello","trigger":{"type":"interval","every":"1m"}}"#),
        false,
    )
    .await
    .unwrap();
    let info = s.pause_job("p").await.unwrap();
    assert!(info.paused);
    assert_eq!(info.next_run_time, None);
    clock.advance(Duration::minutes(5));
    let info = s.resume_job("p").await.unwrap();
    assert_eq!(info.next_run_time, Some(t0() + Duration::minutes(6)));
    clock.advance(Duration::minutes(1));
    let Event::RunSucceeded(e) = wait_for(&mut rx, is("run-succeeded", "p")).await else {
        unreachable!()
    };
    assert_eq!(e.scheduled_at, t0() + Duration::minutes(6));
    assert_eq!(s.runs("p", 10).await.unwrap().len(), 1);
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(paused_jobs_do_not_fire_and_resume_from_now: memory, sqlite, postgres);

async fn state_errors_are_typed(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let job = r#"{"id":"a","plugin":"hello","trigger":{"type":"interval","every":"1m"}}"#;
    s.add_job(spec(job), false).await.unwrap();
    assert!(matches!(
        s.add_job(spec(job), false).await,
        Err(SchedulerError::Duplicate(id)) if id == "a"
    ));
    s.add_job(spec(job), true).await.unwrap();
    assert!(matches!(
        s.remove_job("nope").await,
        Err(SchedulerError::JobNotFound(_))
    ));
    assert!(matches!(
        s.pause_job("nope").await,
        Err(SchedulerError::JobNotFound(_))
    ));
    assert!(matches!(
        s.run_now("nope").await,
        Err(SchedulerError::JobNotFound(_))
    ));
    match s
        .add_job(
            spec(r#"{"id":"b","plugin":"hello","trigger":{"type":"cron","expr":"0 0 30 2 *"}}"#),
            false,
        )
        .await
    {
        Err(SchedulerError::Invalid(e)) => assert_eq!(e.field(), "trigger.expr"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    s.shutdown(std::time::Duration::from_secs(5)).await;
    assert!(matches!(
        s.add_job(spec(job), true).await,
        Err(SchedulerError::NotRunning)
    ));
}
backends!(state_errors_are_typed: memory, sqlite, postgres);

async fn run_now_runs_outside_the_schedule(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(db.open().await, clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(r#"{"id":"c","plugin":"counter","trigger":{"type":"cron","expr":"0 0 1 1 *"}}"#),
        false,
    )
    .await
    .unwrap();
    let run = s.run_now("c").await.unwrap();
    wait_for(&mut rx, is("run-succeeded", "c")).await;
    let stored = s.run(&run.run_id).await.unwrap().unwrap();
    assert_eq!(
        stored.outcome,
        Some(Outcome::Succeeded {
            output: r#"{"count":1,"in_memory":1}"#.into()
        })
    );
    assert!(stored.plugin_hash.is_some());
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(run_now_runs_outside_the_schedule: memory, sqlite, postgres);

async fn ten_thousand_jobs_survive_a_restart_intact(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let before = {
        let store: Arc<dyn JobStore> = db.open().await;
        let s = start(store, clock.clone()).await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..10_000 {
            let s = s.clone();
            tasks.spawn(async move {
                let json = format!(
                    r#"{{"id":"job-{i}","plugin":"hello","args":{{"name":"n{i}"}},
                        "trigger":{{"type":"cron","expr":"{} {} * * *","tz":"Europe/Berlin"}}}}"#,
                    i % 60,
                    i % 24
                );
                s.add_job(spec(&json), false).await.map(|_| ())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        let jobs = s.jobs();
        s.shutdown(std::time::Duration::from_secs(5)).await;
        jobs
    };
    assert_eq!(before.len(), 10_000);
    let store: Arc<dyn JobStore> = db.open().await;
    let s = start(store, clock.clone()).await;
    let after = s.jobs();
    assert_eq!(after.len(), 10_000);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.spec, b.spec);
        assert_eq!(a.next_run_time, b.next_run_time);
        assert_eq!(a.created_at, b.created_at);
    }
    assert!(s.broken_jobs().is_empty());
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(ten_thousand_jobs_survive_a_restart_intact: sqlite, postgres);

#[path = "scheduler/regressions.rs"]
mod regressions;

#[path = "scheduler/ahead.rs"]
mod ahead;

#[path = "scheduler/ends.rs"]
mod ends;

#[path = "scheduler/overlap.rs"]
mod overlap;

#[path = "scheduler/causes.rs"]
mod causes;

#[path = "scheduler/calendars.rs"]
mod calendars;

#[path = "scheduler/lineage.rs"]
mod lineage;

/// A memory store whose storage can be made to fail, as a full disk does:
/// every write fails with [`StoreError::Unwritable`] and the health says
/// so, until the test frees it (as SQLite's probe would find).
struct FillableStore {
    inner: MemoryJobStore,
    full: std::sync::atomic::AtomicBool,
    health: HealthCell,
}

impl FillableStore {
    /// Full: the next write fails and reports it (as SQLite's writer
    /// does). Not full: writable at once (as its probe would find).
    fn set_full(&self, full: bool) {
        self.full.store(full, std::sync::atomic::Ordering::SeqCst);
        if !full {
            self.health.writable();
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            self.health.unwritable("database or disk is full (test)");
            return Err(StoreError::Unwritable(
                "database or disk is full (test)".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl JobStore for FillableStore {
    async fn load(&self) -> Result<wasmcron::store::Snapshot, StoreError> {
        self.inner.load().await
    }
    async fn insert_job(&self, job: JobRecord, replace: bool) -> Result<(), StoreError> {
        self.check()?;
        self.inner.insert_job(job, replace).await
    }
    async fn update_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.update_job(job).await
    }
    async fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.delete_job(id).await
    }
    async fn write(&self, batch: Vec<Write>) -> Result<wasmcron::store::Written, StoreError> {
        self.check()?;
        self.inner.write(batch).await
    }
    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.inner.job(id).await
    }
    async fn runs(
        &self,
        job: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.runs(job, limit, offset).await
    }
    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.inner.run(run_id).await
    }
    async fn run_summaries(
        &self,
        job: &str,
        limit: usize,
        from: wasmcron::store::RunsFrom,
    ) -> Result<RunList, StoreError> {
        self.inner.run_summaries(job, limit, from).await
    }
    async fn all_runs(
        &self,
        filter: wasmcron::store::RunFilter,
        limit: usize,
        from: wasmcron::store::RunsFrom,
    ) -> Result<RunList, StoreError> {
        self.inner.all_runs(filter, limit, from).await
    }
    async fn run_counts(
        &self,
        from: chrono::DateTime<chrono::Utc>,
    ) -> Result<wasmcron::store::RunCounts, StoreError> {
        self.inner.run_counts(from).await
    }
    async fn run_summary(&self, run_id: &str) -> Result<Option<RunSummary>, StoreError> {
        self.inner.run_summary(run_id).await
    }
    async fn run_logs(
        &self,
        run_id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<LogPage>, StoreError> {
        self.inner.run_logs(run_id, offset, limit).await
    }
    fn kv(&self) -> Arc<dyn KvStore> {
        self.inner.kv()
    }
    fn health(&self) -> HealthCell {
        self.health.clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fires_are_held_while_the_store_cannot_be_written_and_taken_when_it_can() {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = Arc::new(FillableStore {
        inner: MemoryJobStore::default(),
        full: false.into(),
        health: HealthCell::default(),
    });
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(r#"{"id":"tick","plugin":"hello","trigger":{"type":"interval","every":"10s"}}"#),
        false,
    )
    .await
    .unwrap();
    clock.advance(Duration::seconds(10));
    wait_for(&mut rx, is("run-succeeded", "tick")).await;

    // The disk fills. The fire at +20 s is taken, cannot be recorded, and
    // is put back; nothing runs however long the outage lasts.
    store.set_full(true);
    clock.advance(Duration::seconds(10));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    clock.advance(Duration::seconds(25));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        s.job("tick").unwrap().next_run_time,
        Some(t0() + Duration::seconds(20)),
        "the held fire is the job's next"
    );
    while let Ok(e) = rx.try_recv() {
        assert!(
            !e.name().starts_with("run-"),
            "a run event while the store could not be written: {e:?}"
        );
    }
    // A change through the API is refused with the storage's reason.
    let err = s
        .add_job(
            spec(r#"{"id":"new","plugin":"hello","trigger":{"type":"interval","every":"1h"}}"#),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SchedulerError::Store(StoreError::Unwritable(_))),
        "{err:?}"
    );

    // Space returns: the fires held (20, 30 and 40 s, at 45 s) are taken
    // as after downtime: one run for the latest, one row for the others.
    store.set_full(false);
    let Event::RunSucceeded(e) = wait_for(&mut rx, is("run-succeeded", "tick")).await else {
        unreachable!()
    };
    assert_eq!(e.scheduled_at, t0() + Duration::seconds(40));
    let runs = s.runs("tick", 10).await.unwrap();
    let missed: Vec<_> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Missed)
        .collect();
    assert_eq!(missed.len(), 1, "{runs:?}");
    assert_eq!(missed[0].scheduled_at, t0() + Duration::seconds(20));
    assert!(
        missed[0]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("2 fire(s)"),
        "{missed:?}"
    );
    assert_eq!(
        s.job("tick").unwrap().next_run_time,
        Some(t0() + Duration::seconds(50))
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
