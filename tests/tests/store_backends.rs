//! The job store's contract, against SQLite and PostgreSQL alike: the
//! store-level tests of `host/src/store/sqlite/tests.rs` that are about
//! behaviour (not SQLite's file), plus PostgreSQL's own (outages, the
//! URL's password in errors).

#![expect(
    clippy::unwrap_used,
    reason = "test bodies are plain fns that backends! turns into one test per store; an unwrap there fails its test"
)]

use chrono::{DateTime, Utc};
use std::sync::Arc;
use wasmcron::job::JobSpec;
use wasmcron::runtime::{LogLevel, LogRecord, LogSource, Outcome};
use wasmcron::store::postgres::PostgresJobStore;
use wasmcron::store::{
    AuditQuery, AuditRecord, JobRecord, JobStore, KvError, RUN_PAGE_BYTES, RunOrigin, RunRecord,
    RunStatus, RunSummary, RunsFrom, StoreError, Write,
};
use wasmcron_tests::backends;
use wasmcron_tests::stores::{Backend, TestStore};

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap()
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn spec(id: &str) -> JobSpec {
    serde_json::from_str(&format!(
        r#"{{"id":"{id}","plugin":"hello","trigger":{{"type":"interval","every":"1m"}}}}"#
    ))
    .unwrap()
}

fn record(id: &str) -> JobRecord {
    JobRecord {
        spec: spec(id),
        created_at: from_ms(1_700_000_000_000),
        next_run_time: Some(from_ms(1_700_000_060_000)),
        paused: false,
        incarnation: String::new(),
        paused_reason: None,
        failures_from: None,
    }
}

/// Bytes `job` holds by the store's running total (`kv_usage`).
fn used(db: &TestStore, job: &str) -> i64 {
    db.count(&format!(
        "SELECT bytes FROM kv_usage WHERE job_id = '{job}'"
    ))
}

/// Bytes `job` holds, summed from its rows (independently of the total).
fn summed(db: &TestStore, job: &str) -> i64 {
    let sql = match db.backend() {
        Backend::Postgres => format!(
            "SELECT SUM(octet_length(key) + octet_length(value)) FROM kv WHERE job_id = '{job}'"
        ),
        _ => format!(
            "SELECT SUM(length(CAST(key AS BLOB)) + length(value)) FROM kv WHERE job_id = '{job}'"
        ),
    };
    db.count(&sql)
}

async fn jobs_runs_and_kv_survive_reopening(db: TestStore) {
    {
        let store = db.open().await;
        store.insert_job(record("a"), false).await.unwrap();
        let mut run = RunRecord::pending("a", from_ms(1), from_ms(1), 1);
        run.status = RunStatus::Finished;
        run.outcome = Some(Outcome::Succeeded {
            output: "ok \0 with a NUL".into(),
        });
        run.note = Some("a note".into());
        let pending = RunRecord::pending("a", from_ms(2), from_ms(2), 1);
        store
            .write(vec![Write::Run(run), Write::Run(pending.clone())])
            .await
            .unwrap();
        store.kv().set("a", "k", b"v").unwrap();
    }
    let store = db.open().await;
    let snap = store.load().await.unwrap();
    assert_eq!(snap.jobs, vec![record("a")]);
    assert_eq!(snap.unfinished.len(), 1);
    assert_eq!(snap.unfinished[0].status, RunStatus::Pending);
    let runs = store.runs("a", 10, 0).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[1].outcome,
        Some(Outcome::Succeeded {
            output: "ok \0 with a NUL".into()
        })
    );
    assert_eq!(store.kv().get("a", "k").unwrap(), Some(b"v".to_vec()));
}
backends!(jobs_runs_and_kv_survive_reopening: sqlite, postgres);

async fn duplicate_and_missing_jobs_are_typed_errors(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    assert!(matches!(
        store.insert_job(record("a"), false).await,
        Err(StoreError::Duplicate(id)) if id == "a"
    ));
    store.insert_job(record("a"), true).await.unwrap();
    assert!(matches!(
        store.update_job(&record("b")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_job("b").await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_job("a").await.unwrap();
    assert!(store.load().await.unwrap().jobs.is_empty());
}
backends!(duplicate_and_missing_jobs_are_typed_errors: memory, sqlite, postgres);

async fn concurrent_writers_are_grouped_and_all_committed(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..500 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let run = RunRecord::pending("a", from_ms(i), from_ms(i), 1);
            store.write(vec![Write::Run(run)]).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.runs("a", 1000, 0).await.unwrap().len(), 500);
}
backends!(concurrent_writers_are_grouped_and_all_committed: sqlite, postgres);

async fn a_failing_command_does_not_undo_its_group(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let (a, b) = (record("a"), record("b"));
    let (dup, fresh) = tokio::join!(
        store.insert_job(a.clone(), false),
        store.insert_job(b.clone(), false)
    );
    assert!(matches!(dup, Err(StoreError::Duplicate(_))));
    fresh.unwrap();
    assert_eq!(store.load().await.unwrap().jobs.len(), 2);
}
backends!(a_failing_command_does_not_undo_its_group: sqlite, postgres);

async fn later_writes_to_a_run_in_one_group_win(db: TestStore) {
    // Many commands queued at once are one group; the same run written
    // pending then finished must end finished (the order is kept).
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let pending = RunRecord::pending("a", from_ms(i), from_ms(i), 1);
            let mut finished = pending.clone();
            finished.status = RunStatus::Finished;
            store
                .write(vec![Write::Run(pending), Write::Run(finished)])
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let runs = store.runs("a", 1000, 0).await.unwrap();
    assert_eq!(runs.len(), 200);
    assert!(runs.iter().all(|r| r.status == RunStatus::Finished));
}
backends!(later_writes_to_a_run_in_one_group_win: sqlite, postgres);

async fn prune_keeps_the_newest_finished_runs_and_all_unfinished(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let mut writes = Vec::new();
    for i in 0..10 {
        let mut r = RunRecord::pending("a", from_ms(i * 1000), from_ms(i * 1000), 1);
        r.status = if i == 0 {
            RunStatus::Pending
        } else {
            RunStatus::Finished
        };
        writes.push(Write::Run(r));
    }
    writes.push(Write::Prune {
        job_id: "a".into(),
        keep: 3,
        older_than: None,
    });
    store.write(writes).await.unwrap();
    let runs = store.runs("a", 100, 0).await.unwrap();
    let times: Vec<i64> = runs.iter().map(|r| ms(r.scheduled_at)).collect();
    assert_eq!(times, [9000, 8000, 7000, 0]);
    store
        .write(vec![Write::Prune {
            job_id: "a".into(),
            keep: 100,
            older_than: Some(from_ms(8000)),
        }])
        .await
        .unwrap();
    let runs = store.runs("a", 100, 0).await.unwrap();
    let times: Vec<i64> = runs.iter().map(|r| ms(r.scheduled_at)).collect();
    assert_eq!(times, [9000, 8000, 0]);

    // A backfill of past fires, recorded last and ended recently: the
    // runs recorded last are kept (by run id), not those scheduled last,
    // and `older_than` goes by when a run ended. (A millisecond apart, so
    // their ids sort after the first batch's whatever the id generator
    // does within one.)
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let mut writes = Vec::new();
    for i in 1..=3 {
        let mut r = RunRecord::pending("a", from_ms(i * 100), from_ms(i * 100), 1);
        r.status = RunStatus::Finished;
        r.ended_at = Some(from_ms(20_000 + i));
        writes.push(Write::Run(r));
    }
    store.write(writes).await.unwrap();
    store
        .write(vec![Write::Prune {
            job_id: "a".into(),
            keep: 3,
            older_than: Some(from_ms(10_000)),
        }])
        .await
        .unwrap();
    let runs = store.runs("a", 100, 0).await.unwrap();
    let times: Vec<i64> = runs.iter().map(|r| ms(r.scheduled_at)).collect();
    assert_eq!(times, [300, 200, 100, 0], "the backfill's runs are kept");
}
backends!(prune_keeps_the_newest_finished_runs_and_all_unfinished: memory, sqlite, postgres);

async fn a_jobs_history_prune_and_deletion_leave_other_jobs_runs_alone(db: TestStore) {
    // Runs of several jobs interleaved in time: each job's history lists
    // only its own, newest first; pruning or deleting one job leaves the
    // others' runs as they were (the memory store indexes runs by job).
    let store = db.open().await;
    for id in ["a", "b", "c"] {
        store.insert_job(record(id), false).await.unwrap();
    }
    let mut writes = Vec::new();
    for i in 0..30 {
        let job = ["a", "b", "c"][i % 3];
        let at = from_ms(i as i64 * 1000);
        let mut r = RunRecord::pending(job, at, at, 1);
        r.status = RunStatus::Finished;
        writes.push(Write::Run(r));
    }
    store.write(writes).await.unwrap();
    let times =
        |runs: Vec<RunRecord>| -> Vec<i64> { runs.iter().map(|r| ms(r.scheduled_at)).collect() };
    assert_eq!(
        times(store.runs("b", 3, 1).await.unwrap()),
        [25_000, 22_000, 19_000]
    );
    store
        .write(vec![Write::Prune {
            job_id: "a".into(),
            keep: 2,
            older_than: None,
        }])
        .await
        .unwrap();
    assert_eq!(
        times(store.runs("a", 100, 0).await.unwrap()),
        [27_000, 24_000]
    );
    assert_eq!(store.runs("b", 100, 0).await.unwrap().len(), 10);
    store.delete_job("b").await.unwrap();
    assert!(store.runs("b", 100, 0).await.unwrap().is_empty());
    assert_eq!(store.runs("c", 100, 0).await.unwrap().len(), 10);
    assert_eq!(
        store
            .run_summaries("c", 2, RunsFrom::Offset(0))
            .await
            .unwrap()
            .runs
            .len(),
        2
    );
    // A job re-created with a deleted one's id starts with no history.
    store.insert_job(record("b"), false).await.unwrap();
    assert!(store.runs("b", 100, 0).await.unwrap().is_empty());
}
backends!(a_jobs_history_prune_and_deletion_leave_other_jobs_runs_alone: memory, sqlite, postgres);

async fn a_start_written_over_a_pending_row_leaves_the_row_as_written(db: TestStore) {
    // SQLite writes a start as an update of the columns a start sets when
    // the stored pending row matches in every other column, and upserts
    // otherwise: either way the row must read back as the run written.
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let plain = RunRecord::pending("a", from_ms(1000), from_ms(1000), 1);
    let with_args = RunRecord::pending("a", from_ms(2000), from_ms(2000), 1);
    store
        .write(vec![
            Write::Run(plain.clone()),
            Write::Run(with_args.clone()),
        ])
        .await
        .unwrap();
    let start = |mut r: RunRecord| {
        r.status = RunStatus::Running;
        r.started_at = Some(from_ms(5000));
        r.plugin_hash = Some("h".into());
        r.host = Some("here".into());
        r
    };
    let plain = start(plain);
    // A start that also changes a column a start does not set.
    let mut with_args = start(with_args);
    with_args.args = Some(r#"{"n":1}"#.into());
    store
        .write(vec![
            Write::Run(plain.clone()),
            Write::Run(with_args.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(store.run(&plain.run_id).await.unwrap(), Some(plain));
    assert_eq!(store.run(&with_args.run_id).await.unwrap(), Some(with_args));
}
backends!(a_start_written_over_a_pending_row_leaves_the_row_as_written: memory, sqlite, postgres);

async fn an_unreadable_job_row_is_reported_not_dropped(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    db.execute("UPDATE jobs SET spec = '{\"from\":\"the future\"}' WHERE id = 'a'");
    let snap = store.load().await.unwrap();
    assert!(snap.jobs.is_empty());
    assert_eq!(snap.broken.len(), 1);
    assert_eq!(snap.broken[0].id, "a");
    assert_eq!(db.count("SELECT count(*) FROM jobs"), 1);
}
backends!(an_unreadable_job_row_is_reported_not_dropped: sqlite, postgres);

async fn runs_of_a_deleted_incarnation_are_not_recorded_or_listed(db: TestStore) {
    let store = db.open().await;
    let old = JobRecord {
        incarnation: "old".into(),
        ..record("a")
    };
    store.insert_job(old.clone(), false).await.unwrap();
    let running = RunRecord::pending("a", from_ms(1), from_ms(1), 1).of("old");
    store
        .write(vec![Write::Run(running.clone())])
        .await
        .unwrap();
    store.delete_job("a").await.unwrap();
    let new = JobRecord {
        incarnation: "new".into(),
        ..record("a")
    };
    store.insert_job(new.clone(), false).await.unwrap();
    let mut finished = running;
    finished.status = RunStatus::Finished;
    let fresh = RunRecord::pending("a", from_ms(2), from_ms(2), 1).of("new");
    store
        .write(vec![
            Write::Run(finished.clone()),
            Write::Run(fresh.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(store.run(&finished.run_id).await.unwrap(), None);
    let listed: Vec<String> = store
        .runs("a", 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(listed, [fresh.run_id]);
}
backends!(runs_of_a_deleted_incarnation_are_not_recorded_or_listed: memory, sqlite, postgres);

async fn kv_quota_counts_bytes_of_nul_led_and_four_byte_keys(db: TestStore) {
    let store = db.open().await;
    let kv = store.kv();
    let nul_key = format!("\0{}", "x".repeat(99));
    let emoji_key = "😀".repeat(25);
    kv.set("j", &nul_key, &[1; 100]).unwrap();
    kv.set("j", &emoji_key, &[2; 100]).unwrap();
    assert_eq!(used(&db, "j"), 400);
    assert_eq!(summed(&db, "j"), 400);
    assert_eq!(kv.get("j", &nul_key).unwrap(), Some(vec![1; 100]));
    assert_eq!(kv.get("j", &emoji_key).unwrap(), Some(vec![2; 100]));
    kv.set("j", &emoji_key, &[3; 10]).unwrap();
    assert_eq!(used(&db, "j"), 310);
    kv.delete("j", &nul_key).unwrap();
    assert_eq!(used(&db, "j"), 110);
    kv.delete("j", "missing").unwrap();
    assert_eq!(used(&db, "j"), 110);
    assert_eq!(summed(&db, "j"), 110);
}
backends!(kv_quota_counts_bytes_of_nul_led_and_four_byte_keys: sqlite, postgres);

async fn kv_quota_stops_a_job_at_16_mib_of_nul_led_keys(db: TestStore) {
    let store = db.open().await;
    let kv = store.kv();
    let value = vec![0u8; 60 * 1024];
    let mut stored = 0u64;
    let err = loop {
        let key = format!("\0\0\0{stored:08}");
        match kv.set("greedy", &key, &value) {
            Ok(()) => stored += (key.len() + value.len()) as u64,
            Err(e) => break e,
        }
        assert!(stored <= 17 << 20, "the quota was not enforced");
    };
    assert!(matches!(err, KvError::QuotaExceeded { quota } if quota == 16 << 20));
    assert!(stored <= 16 << 20 && stored > (16 << 20) - 70 * 1024);
    kv.set("other", "k", b"v").unwrap();
}
backends!(kv_quota_stops_a_job_at_16_mib_of_nul_led_keys: memory, sqlite, postgres);

async fn deleting_a_job_frees_its_kv_quota(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    store.kv().set("a", "k", &[0; 1000]).unwrap();
    assert_eq!(used(&db, "a"), 1001);
    store.delete_job("a").await.unwrap();
    assert_eq!(used(&db, "a"), 0);
    assert_eq!(store.kv().get("a", "k").unwrap(), None);
}
backends!(deleting_a_job_frees_its_kv_quota: sqlite, postgres);

fn log(i: usize, len: usize) -> LogRecord {
    LogRecord {
        source: LogSource::Log,
        level: LogLevel::Info,
        message: format!("{i:06}{}", "x".repeat(len)),
        fields: Vec::new(),
    }
}

async fn run_lists_leave_logs_out_and_logs_come_a_page_at_a_time(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let mut run = RunRecord::pending("a", from_ms(1), from_ms(1), 1);
    run.status = RunStatus::Finished;
    run.logs = (0..2048).map(|i| log(i, 1024)).collect();
    run.logs[7].message = "a NUL \0 in a log".into();
    store.write(vec![Write::Run(run.clone())]).await.unwrap();

    let list = store
        .run_summaries("a", 10, RunsFrom::Offset(0))
        .await
        .unwrap();
    assert_eq!(list.runs.len(), 1);
    assert!(!list.more);
    assert_eq!(list.runs[0].log_count, 2048);
    assert_eq!(list.runs[0], RunSummary::from(&run));

    let page = store.run_logs(&run.run_id, 0, 100).await.unwrap().unwrap();
    assert_eq!(page.logs, run.logs[..100]);
    assert_eq!(page.next_offset, Some(100));
    let page = store
        .run_logs(&run.run_id, 100, 5000)
        .await
        .unwrap()
        .unwrap();
    assert!(page.logs.len() < 1100, "{}", page.logs.len());
    assert_eq!(page.logs[..], run.logs[100..100 + page.logs.len()]);
    let mut offset = usize::try_from(page.next_offset.unwrap()).unwrap();
    let mut all = run.logs[..offset].to_vec();
    while let Some(p) = store.run_logs(&run.run_id, offset, 1000).await.unwrap() {
        all.extend(p.logs);
        match p.next_offset {
            Some(next) => offset = usize::try_from(next).unwrap(),
            None => break,
        }
    }
    assert_eq!(all, run.logs);
    assert!(store.run_logs("nope", 0, 10).await.unwrap().is_none());
    let past = store
        .run_logs(&run.run_id, 5000, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(past.logs.is_empty());
    assert_eq!(past.next_offset, None);
}
backends!(run_lists_leave_logs_out_and_logs_come_a_page_at_a_time: memory, sqlite, postgres);

async fn a_page_of_runs_is_cut_by_size(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let writes = (0..100)
        .map(|i| {
            let mut r = RunRecord::pending("a", from_ms(i), from_ms(i), 1);
            r.args = Some(format!(r#"{{"pad":"{}"}}"#, "p".repeat(100 * 1024)));
            Write::Run(r)
        })
        .collect();
    store.write(writes).await.unwrap();
    let first = store
        .run_summaries("a", 1000, RunsFrom::Offset(0))
        .await
        .unwrap();
    assert!(first.more);
    let bytes: usize = first.runs.iter().map(RunSummary::approx_json_len).sum();
    assert!(bytes <= RUN_PAGE_BYTES, "{bytes}");
    assert!(first.runs.len() > 10 && first.runs.len() < 100);
    let mut seen: Vec<i64> = first.runs.iter().map(|r| ms(r.scheduled_at)).collect();
    let mut more = first.more;
    while more {
        let page = store
            .run_summaries("a", 1000, RunsFrom::Offset(seen.len()))
            .await
            .unwrap();
        assert!(!page.runs.is_empty());
        seen.extend(page.runs.iter().map(|r| ms(r.scheduled_at)));
        more = page.more;
    }
    assert_eq!(seen, (0..100).rev().collect::<Vec<i64>>());
    let short = store
        .run_summaries("a", 3, RunsFrom::Offset(0))
        .await
        .unwrap();
    assert_eq!(short.runs.len(), 3);
    assert!(short.more);
}
backends!(a_page_of_runs_is_cut_by_size: memory, sqlite, postgres);

/// Cursor paging (`RunsFrom::Before`): runs recorded while a client pages
/// do not shift its pages (offset paging would show a run twice), runs on
/// the same `scheduled_at` are ordered by run id, and a cursor that is not
/// a stored run of the job gives an empty page rather than another job's.
async fn runs_page_by_cursor_and_stay_put_as_runs_arrive(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    store.insert_job(record("b"), false).await.unwrap();
    let mut writes: Vec<Write> = (0..30)
        .map(|i| {
            Write::Run(RunRecord::pending(
                "a",
                from_ms(i * 1000),
                from_ms(i * 1000),
                1,
            ))
        })
        .collect();
    // Five retries of one fire: the same scheduled_at, told apart by run id.
    writes.extend(
        (2..7).map(|n| Write::Run(RunRecord::pending("a", from_ms(10_000), from_ms(10_000), n))),
    );
    let other = RunRecord::pending("b", from_ms(5_000), from_ms(5_000), 1);
    let other_id = other.run_id.clone();
    writes.push(Write::Run(other));
    store.write(writes).await.unwrap();
    let all: Vec<String> = store
        .run_summaries("a", 1000, RunsFrom::Offset(0))
        .await
        .unwrap()
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(all.len(), 35);

    let mut seen: Vec<String> = Vec::new();
    let mut from = RunsFrom::Offset(0);
    let mut arriving = 0;
    loop {
        let page = store.run_summaries("a", 7, from).await.unwrap();
        seen.extend(page.runs.iter().map(|r| r.run_id.clone()));
        if !page.more {
            break;
        }
        from = RunsFrom::Before(page.runs.last().unwrap().run_id.clone());
        // Newer fires arrive between pages, ahead of everything seen.
        arriving += 1;
        let at = from_ms(100_000 + arriving * 1000);
        store
            .write(vec![Write::Run(RunRecord::pending("a", at, at, 1))])
            .await
            .unwrap();
    }
    assert!(arriving >= 4, "{arriving} pages");
    assert_eq!(
        seen, all,
        "cursor pages are the listing at the start, each run once"
    );

    // The same with the listing of every job (ordered by run id alone).
    let everything: Vec<String> = store
        .all_runs(Default::default(), 1000, RunsFrom::Offset(0))
        .await
        .unwrap()
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    let mut seen = Vec::new();
    let mut from = RunsFrom::Offset(0);
    loop {
        let page = store.all_runs(Default::default(), 9, from).await.unwrap();
        seen.extend(page.runs.iter().map(|r| r.run_id.clone()));
        if !page.more {
            break;
        }
        from = RunsFrom::Before(page.runs.last().unwrap().run_id.clone());
        let at = from_ms(200_000 + seen.len() as i64);
        store
            .write(vec![Write::Run(RunRecord::pending("b", at, at, 1))])
            .await
            .unwrap();
    }
    assert_eq!(seen, everything);
    // There any id is a cursor, stored or not: one just above the oldest
    // run's id (as if the cursor had been pruned) gives that run alone.
    let oldest = everything.last().unwrap().clone();
    let above = format!("{oldest}~");
    let tail = store
        .all_runs(Default::default(), 10, RunsFrom::Before(above))
        .await
        .unwrap();
    assert_eq!(
        tail.runs
            .iter()
            .map(|r| r.run_id.clone())
            .collect::<Vec<_>>(),
        vec![oldest]
    );
    assert!(!tail.more);

    // A job's cursor must be one of its stored runs.
    let foreign = store
        .run_summaries("a", 10, RunsFrom::Before(other_id))
        .await
        .unwrap();
    assert!(foreign.runs.is_empty() && !foreign.more);
    let unknown = store
        .run_summaries("a", 10, RunsFrom::Before("no-such-run".into()))
        .await
        .unwrap();
    assert!(unknown.runs.is_empty() && !unknown.more);
}
backends!(runs_page_by_cursor_and_stay_put_as_runs_arrive: memory, sqlite, postgres);

async fn close_leaves_the_store_usable(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    store.close().await.unwrap();
    store.kv().set("a", "k", b"v").unwrap();
    assert_eq!(store.kv().get("a", "k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(store.load().await.unwrap().jobs.len(), 1);
}
backends!(close_leaves_the_store_usable: memory, sqlite, postgres);

async fn sub_millisecond_times_read_back_as_whole_milliseconds(db: TestStore) {
    // SQLite keeps integer milliseconds; PostgreSQL must read back the
    // same, or a host would see false differences across a restart.
    let store = db.open().await;
    let t = DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap();
    let job = JobRecord {
        created_at: t,
        next_run_time: Some(t),
        ..record("a")
    };
    store.insert_job(job.clone(), false).await.unwrap();
    let snap = db.open().await.load().await.unwrap();
    let want = DateTime::from_timestamp(1_767_225_600, 123_000_000).unwrap();
    assert_eq!(snap.jobs[0].created_at, want);
    assert_eq!(snap.jobs[0].next_run_time, Some(want));
}
backends!(sub_millisecond_times_read_back_as_whole_milliseconds: sqlite, postgres);

/// A fire of job `a` from `from` to `next` with one row per `(at, id)`.
fn fire(from: i64, next: i64, rows: &[(i64, &str)]) -> Write {
    Write::Fire {
        job_id: "a".into(),
        incarnation: String::new(),
        from: from_ms(from),
        next: Some(from_ms(next)),
        runs: rows
            .iter()
            .map(|(at, id)| RunRecord {
                run_id: (*id).into(),
                ..RunRecord::pending("a", from_ms(*at), from_ms(*at), 1)
            })
            .collect(),
    }
}

const T1: i64 = 1_700_000_060_000;
const T2: i64 = 1_700_000_120_000;
const T3: i64 = 1_700_000_180_000;

async fn a_fire_is_a_compare_and_set_and_its_rows_are_recorded_once(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let written = store
        .write(vec![fire(T1, T2, &[(T1, "r1")])])
        .await
        .unwrap();
    assert!(written.all(), "{written:?}");
    let job = store.job("a").await.unwrap().unwrap();
    assert_eq!(job.next_run_time, Some(from_ms(T2)));

    // The same fire again (a second host, a retaken batch): the schedule
    // has moved on, so nothing of it is written.
    let written = store
        .write(vec![fire(T1, T2, &[(T1, "r1-again")])])
        .await
        .unwrap();
    assert_eq!(written.stale, vec!["a".to_owned()]);
    assert!(written.refused.contains("r1-again"), "{written:?}");
    assert!(store.run("r1-again").await.unwrap().is_none());

    // A fire whose compare-and-set holds but one of whose rows repeats a
    // fire already recorded: the schedule moves, the repeat is refused by
    // its fire key, the new row goes in.
    let written = store
        .write(vec![fire(T2, T3, &[(T1, "r1-dup"), (T2, "r2")])])
        .await
        .unwrap();
    assert!(written.stale.is_empty(), "{written:?}");
    assert_eq!(
        written.refused,
        std::iter::once("r1-dup".to_owned()).collect()
    );
    assert!(store.run("r2").await.unwrap().is_some());
    assert!(store.run("r1-dup").await.unwrap().is_none());
    let job = store.job("a").await.unwrap().unwrap();
    assert_eq!(job.next_run_time, Some(from_ms(T3)));
    let runs = store.runs("a", 10, 0).await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.origin == RunOrigin::Fire));

    // A deleted job's fire is stale too.
    store.delete_job("a").await.unwrap();
    let written = store
        .write(vec![fire(T3, T3 + 60_000, &[(T3, "r3")])])
        .await
        .unwrap();
    assert_eq!(written.stale, vec!["a".to_owned()]);
}
backends!(a_fire_is_a_compare_and_set_and_its_rows_are_recorded_once: memory, sqlite, postgres);

async fn manual_runs_may_share_a_fire_key_and_keep_their_origin_and_host(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let written = store
        .write(vec![fire(T1, T2, &[(T1, "fire")])])
        .await
        .unwrap();
    assert!(written.all());
    // A replay shares its original's scheduled_at and attempt.
    let replay = RunRecord {
        run_id: "replay".into(),
        origin: RunOrigin::Manual,
        host: Some("host-b".into()),
        ..RunRecord::pending("a", from_ms(T1), from_ms(T1), 1)
    };
    store.write(vec![Write::Run(replay)]).await.unwrap();
    let back = store.run("replay").await.unwrap().unwrap();
    assert_eq!(back.origin, RunOrigin::Manual);
    assert_eq!(back.host.as_deref(), Some("host-b"));
    let summary = store.run_summary("fire").await.unwrap().unwrap();
    assert_eq!(summary.origin, RunOrigin::Fire);
    // A fire row written as a run (a retry's row) may not take a fire key
    // that another run holds.
    let clash = RunRecord {
        run_id: "clash".into(),
        ..RunRecord::pending("a", from_ms(T1), from_ms(T1), 1)
    };
    let result = store.write(vec![Write::Run(clash)]).await;
    let kept = store.run("fire").await.unwrap();
    assert!(
        result.is_err() || store.run("clash").await.unwrap().is_none(),
        "a second fire row for one fire was recorded: {result:?}"
    );
    assert!(kept.is_some(), "the first fire row was replaced");
}
backends!(manual_runs_may_share_a_fire_key_and_keep_their_origin_and_host: memory, sqlite, postgres);

/// A fire of job `job` from `from` to `next` with one row per `(at, id)`.
fn fire_of(job: &str, from: i64, next: i64, rows: &[(i64, &str)]) -> Write {
    match fire(from, next, rows) {
        Write::Fire {
            incarnation,
            from,
            next,
            runs,
            ..
        } => Write::Fire {
            job_id: job.into(),
            incarnation,
            from,
            next,
            runs: runs
                .into_iter()
                .map(|mut r| {
                    r.job_id = job.into();
                    r
                })
                .collect(),
        },
        other => other,
    }
}

async fn a_batch_of_many_fires_keeps_each_fires_compare_and_set_and_fire_key(db: TestStore) {
    let store = db.open().await;
    for id in ["a", "b", "c", "d"] {
        store.insert_job(record(id), false).await.unwrap();
        let w = store
            .write(vec![fire_of(id, T1, T2, &[(T1, &format!("{id}1"))])])
            .await
            .unwrap();
        assert!(w.all(), "{w:?}");
    }
    // One batch (as the timer writes a burst): a's fire is stale (its
    // schedule is at T2, not T1); b's second row repeats a fire key; c
    // fires twice, T2 then T3, which must apply in order; d is plain.
    let written = store
        .write(vec![
            fire_of("a", T1, T3, &[(T1, "a-stale")]),
            fire_of("b", T2, T3, &[(T2, "b2"), (T1, "b1-dup")]),
            fire_of("c", T2, T3, &[(T2, "c2")]),
            fire_of("d", T2, T3, &[(T2, "d2")]),
            fire_of("c", T3, T3 + 60_000, &[(T3, "c3")]),
        ])
        .await
        .unwrap();
    assert_eq!(written.stale, vec!["a".to_owned()], "{written:?}");
    let refused: std::collections::HashSet<String> = ["a-stale", "b1-dup"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(written.refused, refused, "{written:?}");
    for (job, next) in [("a", T2), ("b", T3), ("c", T3 + 60_000), ("d", T3)] {
        let j = store.job(job).await.unwrap().unwrap();
        assert_eq!(j.next_run_time, Some(from_ms(next)), "job {job}");
    }
    for id in ["b2", "c2", "c3", "d2"] {
        assert!(store.run(id).await.unwrap().is_some(), "{id} not recorded");
    }
    for id in ["a-stale", "b1-dup"] {
        assert!(store.run(id).await.unwrap().is_none(), "{id} recorded");
    }
    assert!(store.run("b1").await.unwrap().is_some());
}
backends!(a_batch_of_many_fires_keeps_each_fires_compare_and_set_and_fire_key: memory, sqlite, postgres);

async fn many_ends_at_once_are_each_recorded_or_refused_on_their_own(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let run = |i: i64| RunRecord {
        run_id: format!("r{i:02}"),
        status: RunStatus::Running,
        started_at: Some(from_ms(T1 + i)),
        host: Some("host-a".into()),
        ..RunRecord::pending("a", from_ms(T1 + i), from_ms(T1 + i), 1)
    };
    store
        .write((0..40).map(|i| Write::Run(run(i))).collect())
        .await
        .unwrap();
    // The sweep got to every fourth first.
    store
        .write(
            (0..40)
                .step_by(4)
                .map(|i| {
                    let mut r = run(i);
                    r.status = RunStatus::Interrupted;
                    r.note = Some("swept".into());
                    Write::Run(r)
                })
                .collect(),
        )
        .await
        .unwrap();
    // Forty finished runs report at once (the writer groups them).
    let mut ends = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        ends.spawn(async move {
            let mut r = run(i);
            r.status = RunStatus::Finished;
            r.ended_at = Some(from_ms(T2));
            r.note = Some("done".into());
            let id = r.run_id.clone();
            let written = store
                .write(vec![Write::End {
                    run: r,
                    retry: None,
                }])
                .await
                .unwrap();
            (i, written.refused.contains(&id))
        });
    }
    for (i, refused) in ends.join_all().await {
        assert_eq!(refused, i % 4 == 0, "run {i}: refused {refused}");
        let back = store.run(&format!("r{i:02}")).await.unwrap().unwrap();
        let want = if i % 4 == 0 {
            (RunStatus::Interrupted, "swept")
        } else {
            (RunStatus::Finished, "done")
        };
        assert_eq!(
            (back.status, back.note.as_deref().unwrap_or("")),
            want,
            "run {i}"
        );
    }
}
backends!(many_ends_at_once_are_each_recorded_or_refused_on_their_own: memory, sqlite, postgres);

async fn a_runs_end_is_recorded_only_while_it_runs_on_its_host(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let running = |id: &str, at: i64, host: &str| RunRecord {
        run_id: id.into(),
        status: RunStatus::Running,
        started_at: Some(from_ms(at)),
        host: Some(host.into()),
        ..RunRecord::pending("a", from_ms(at), from_ms(at), 1)
    };
    let ended = |mut r: RunRecord, status: RunStatus, note: &str| {
        r.status = status;
        r.ended_at = r.started_at;
        r.note = Some(note.into());
        r
    };
    let retry = |id: &str, at: i64| RunRecord {
        run_id: id.into(),
        ..RunRecord::pending("a", from_ms(at), from_ms(at + 1_000), 2)
    };
    let written = store
        .write(vec![fire(T1, T2, &[(T1, "placeholder")])])
        .await
        .unwrap();
    assert!(written.all());
    // The fire's run, started on host-a.
    let run = RunRecord {
        run_id: "placeholder".into(),
        ..running("placeholder", T1, "host-a")
    };
    store.write(vec![Write::Run(run.clone())]).await.unwrap();

    // The leader's sweep took host-a for stopped: the run is interrupted
    // and its retry recorded.
    let swept = ended(run.clone(), RunStatus::Interrupted, "its host stopped");
    store
        .write(vec![
            Write::Run(swept),
            Write::Run(retry("retry-by-sweep", T1)),
        ])
        .await
        .unwrap();
    // host-a comes back and records the end it saw, with a retry of its
    // own: refused, both, and the batch's other writes still go in.
    let late = ended(run.clone(), RunStatus::Finished, "host-a's late result");
    let written = store
        .write(vec![
            Write::End {
                run: late,
                retry: Some(Box::new(retry("retry-by-host-a", T1))),
            },
            Write::Paused {
                job_id: "a".into(),
                paused: true,
            },
        ])
        .await
        .unwrap();
    assert!(written.refused.contains("placeholder"), "{written:?}");
    let back = store.run("placeholder").await.unwrap().unwrap();
    assert_eq!(back.status, RunStatus::Interrupted);
    assert_eq!(back.note.as_deref(), Some("its host stopped"));
    assert!(store.run("retry-by-host-a").await.unwrap().is_none());
    assert!(store.job("a").await.unwrap().unwrap().paused);

    // A run running on another host than the end says: refused too.
    let other = running("other", T2, "host-b");
    store.write(vec![Write::Run(other.clone())]).await.unwrap();
    let mut wrong = ended(other.clone(), RunStatus::Finished, "from host-c");
    wrong.host = Some("host-c".into());
    let written = store
        .write(vec![Write::End {
            run: wrong,
            retry: None,
        }])
        .await
        .unwrap();
    assert!(written.refused.contains("other"), "{written:?}");
    assert_eq!(
        store.run("other").await.unwrap().unwrap().status,
        RunStatus::Running
    );

    // Its own host's end goes in, with its retry; a retry whose fire key
    // is taken is left out without failing the batch.
    let own = ended(other, RunStatus::Interrupted, "stopped on host-b");
    let written = store
        .write(vec![Write::End {
            run: own,
            retry: Some(Box::new(retry("retry-of-other", T1))),
        }])
        .await
        .unwrap();
    assert!(written.all(), "{written:?}");
    let back = store.run("other").await.unwrap().unwrap();
    assert_eq!(back.status, RunStatus::Interrupted);
    assert_eq!(back.note.as_deref(), Some("stopped on host-b"));
    assert!(
        store.run("retry-of-other").await.unwrap().is_none(),
        "a retry took the fire key (a, T1, 2) that retry-by-sweep holds"
    );
    assert!(store.run("retry-by-sweep").await.unwrap().is_some());
    let fresh = running("fresh", T3, "host-b");
    store.write(vec![Write::Run(fresh.clone())]).await.unwrap();
    let written = store
        .write(vec![Write::End {
            run: ended(fresh, RunStatus::Interrupted, "stopped"),
            retry: Some(Box::new(retry("retry-of-fresh", T3))),
        }])
        .await
        .unwrap();
    assert!(written.all(), "{written:?}");
    let r = store.run("retry-of-fresh").await.unwrap().unwrap();
    assert_eq!((r.status, r.attempt), (RunStatus::Pending, 2));
}
backends!(a_runs_end_is_recorded_only_while_it_runs_on_its_host: memory, sqlite, postgres);

/// A fire's run recorded running in its fire's write, then ended (the
/// path every quick run of a burst takes): it stays one row in its job's
/// history, and its fire stays taken, so no second run of that fire is
/// recorded by another fire write or a plain run write.
async fn a_runs_end_written_in_place_keeps_its_fire_and_its_place(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let mut run = RunRecord {
        run_id: "r1".into(),
        status: RunStatus::Running,
        started_at: Some(from_ms(T1)),
        host: Some("host-a".into()),
        ..RunRecord::pending("a", from_ms(T1), from_ms(T1), 1)
    };
    let written = store
        .write(vec![Write::Fire {
            job_id: "a".into(),
            incarnation: String::new(),
            from: from_ms(T1),
            next: Some(from_ms(T2)),
            runs: vec![run.clone()],
        }])
        .await
        .unwrap();
    assert!(written.all(), "{written:?}");
    run.status = RunStatus::Finished;
    run.ended_at = Some(from_ms(T1 + 5));
    run.note = Some("done".into());
    let written = store
        .write(vec![Write::End {
            run: run.clone(),
            retry: None,
        }])
        .await
        .unwrap();
    assert!(written.all(), "{written:?}");
    let back = store.run("r1").await.unwrap().unwrap();
    assert_eq!(back.status, RunStatus::Finished);
    assert_eq!(back.note.as_deref(), Some("done"));
    let runs = store.runs("a", 10, 0).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");

    // The same fire by another run: refused in a fire write (beside a new
    // fire that goes in) and as a plain run write.
    let written = store
        .write(vec![fire(T2, T3, &[(T1, "r1-dup"), (T2, "r2")])])
        .await
        .unwrap();
    assert_eq!(
        written.refused,
        std::iter::once("r1-dup".to_owned()).collect()
    );
    let dup = RunRecord {
        run_id: "r1-dup2".into(),
        ..RunRecord::pending("a", from_ms(T1), from_ms(T1), 1)
    };
    assert!(store.write(vec![Write::Run(dup)]).await.is_err());
    assert!(store.run("r1-dup").await.unwrap().is_none());
    assert!(store.run("r1-dup2").await.unwrap().is_none());
    let runs = store.runs("a", 10, 0).await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
}
backends!(a_runs_end_written_in_place_keeps_its_fire_and_its_place: memory, sqlite, postgres);

// PostgreSQL's own.

#[tokio::test(flavor = "multi_thread")]
async fn postgres_two_hosts_firing_the_same_fires_at_once_record_each_once() {
    // Two stores on one database race to record the same fires (as two
    // leaders would in a split brain without the lease): the
    // compare-and-set lets exactly one of each through.
    let db = TestStore::new(Backend::Postgres);
    let url = db.pg().unwrap().url().to_owned();
    let a = Arc::new(PostgresJobStore::connect(&url).await.unwrap());
    let b = Arc::new(PostgresJobStore::connect(&url).await.unwrap());
    let jobs = 40;
    for j in 0..jobs {
        let mut job = record(&format!("j{j}"));
        job.next_run_time = Some(from_ms(T1));
        a.insert_job(job.clone(), false).await.unwrap();
    }
    let host = |store: Arc<PostgresJobStore>, tag: &'static str| {
        tokio::spawn(async move {
            let mut recorded = 0;
            for step in 0..10i64 {
                let from = T1 + step * 60_000;
                let batch = (0..jobs)
                    .map(|j| Write::Fire {
                        job_id: format!("j{j}"),
                        incarnation: String::new(),
                        from: from_ms(from),
                        next: Some(from_ms(from + 60_000)),
                        runs: vec![RunRecord {
                            run_id: format!("{tag}-{j}-{step}"),
                            ..RunRecord::pending(&format!("j{j}"), from_ms(from), from_ms(from), 1)
                        }],
                    })
                    .collect();
                let written = store.write(batch).await.unwrap();
                recorded += jobs - written.stale.len();
            }
            recorded
        })
    };
    let (ra, rb) = (host(a.clone(), "a"), host(b.clone(), "b"));
    let total = ra.await.unwrap() + rb.await.unwrap();
    let rows = db.count("SELECT count(*) FROM runs");
    let doubles = db.count(
        "SELECT count(*) FROM (SELECT 1 FROM runs GROUP BY job_id, scheduled_at, attempt
                                HAVING count(*) > 1) d",
    );
    assert_eq!(doubles, 0, "fires recorded twice");
    assert_eq!(rows, i64::try_from(total).unwrap(), "reported vs rows");
    // Each host tries every fire in order, and a fire is stale for one
    // only because the other recorded it: every fire once, none twice.
    assert_eq!(rows, i64::try_from(jobs * 10).unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_only_the_lease_holder_can_record_fires_and_release_hands_over() {
    use std::time::Duration;
    use wasmcron::store::postgres::LeaseSettings;
    let db = TestStore::new(Backend::Postgres);
    let url = db.pg().unwrap().url().to_owned();
    let settings = |name: &str| LeaseSettings {
        ttl: Duration::from_secs(3),
        host_id: wasmcron::store::new_run_id(),
        host_name: name.into(),
        address: String::new(),
        report: Arc::default(),
    };
    let mut a = PostgresJobStore::connect(&url).await.unwrap();
    a.start_lease(settings("a"));
    let a = Arc::new(a);
    let mut leads_a = a.leadership().subscribe();
    tokio::time::timeout(Duration::from_secs(5), leads_a.wait_for(|l| l.is_leader()))
        .await
        .expect("a leads within 5 s")
        .unwrap();
    let mut b = PostgresJobStore::connect(&url).await.unwrap();
    b.start_lease(settings("b"));
    let b = Arc::new(b);
    // b sees a as the leader and is not one.
    let mut follows_b = b.leadership().subscribe();
    let seen = tokio::time::timeout(
        Duration::from_secs(5),
        follows_b.wait_for(|l| l.leader().is_some_and(|i| i.name == "a")),
    )
    .await
    .expect("b sees a lead")
    .unwrap()
    .clone();
    assert!(!seen.is_leader());
    let term_a = a.leadership().get().term().unwrap();

    let mut job = record("a");
    job.next_run_time = Some(from_ms(T1));
    a.insert_job(job.clone(), false).await.unwrap();
    let err = b
        .write(vec![fire(T1, T2, &[(T1, "from-b")])])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    assert!(
        a.write(vec![fire(T1, T2, &[(T1, "from-a")])])
            .await
            .unwrap()
            .all()
    );

    // a shuts down cleanly: b takes over at once, with a higher term.
    let released = std::time::Instant::now();
    a.release_lease().await;
    tokio::time::timeout(
        Duration::from_secs(3),
        follows_b.wait_for(|l| l.is_leader()),
    )
    .await
    .expect("b leads within 3 s of the release")
    .unwrap();
    assert!(released.elapsed() < Duration::from_secs(3));
    let term_b = b.leadership().get().term().unwrap();
    assert!(term_b > term_a, "term {term_b} after {term_a}");
    let err = a
        .write(vec![fire(T2, T3, &[(T2, "late-a")])])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    assert!(
        b.write(vec![fire(T2, T3, &[(T2, "from-b2")])])
            .await
            .unwrap()
            .all()
    );
    assert_eq!(db.count("SELECT count(*) FROM runs"), 2);
    b.release_lease().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_database_from_a_newer_version_is_refused() {
    let db = TestStore::new(Backend::Postgres);
    drop(db.open().await);
    db.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')");
    let url = db.pg().unwrap().url();
    let err = PostgresJobStore::connect(url)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("schema version 99"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_unreachable_at_start_names_the_url_without_its_password() {
    // Port 1 on loopback: nothing listens there, so the refusal is at once.
    let err = PostgresJobStore::connect("postgres://someone:hunter2@127.0.0.1:1/nowhere")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unwritable(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("postgres://someone:***@127.0.0.1:1/nowhere"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_an_outage_makes_the_store_unwritable_and_it_recovers_by_itself() {
    let db = TestStore::new(Backend::Postgres);
    let pg = db.pg().unwrap();
    let store = db.open().await;
    let health = store.health();
    store.insert_job(record("a"), false).await.unwrap();
    assert!(health.get().is_writable());

    pg.set_reachable(false);
    // Detected while idle (the writer checks its connection every second).
    let mut rx = health.subscribe();
    tokio::time::timeout(std::time::Duration::from_secs(15), async {
        rx.wait_for(|h| !h.is_writable()).await.map(|_| ())
    })
    .await
    .expect("the outage was not noticed")
    .unwrap();
    // A batch during the outage fails whole, as unwritable.
    let runs: Vec<Write> = (0..2)
        .map(|i| Write::Run(RunRecord::pending("a", from_ms(i), from_ms(i), 1)))
        .collect();
    let err = store.write(runs.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unwritable(_)), "{err:?}");
    assert!(matches!(
        store.kv().set("a", "k", b"v"),
        Err(KvError::Unavailable(_))
    ));

    pg.set_reachable(true);
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        rx.wait_for(|h| h.is_writable()).await.map(|_| ())
    })
    .await
    .expect("the store did not recover")
    .unwrap();
    assert_eq!(db.count("SELECT count(*) FROM runs"), 0, "half-written");
    store.write(runs).await.unwrap();
    assert_eq!(store.runs("a", 10, 0).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_kv_calls_from_every_worker_at_once_do_not_deadlock() {
    // Guests call kv synchronously on the scheduler's workers; with all of
    // them blocked in kv calls at once, the answers must still come.
    let db = TestStore::new(Backend::Postgres);
    let store = db.open().await;
    let kv = store.kv();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let kv = Arc::clone(&kv);
        tasks.push(tokio::spawn(async move {
            for k in 0..20 {
                kv.set("j", &format!("{i}-{k}"), b"v").unwrap();
                assert_eq!(
                    kv.get("j", &format!("{i}-{k}")).unwrap(),
                    Some(b"v".to_vec())
                );
            }
        }));
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .expect("kv calls deadlocked");
    let expected: usize = (0..64)
        .flat_map(|i| (0..20).map(move |k| format!("{i}-{k}").len() + 1))
        .sum();
    assert_eq!(used(&db, "j"), i64::try_from(expected).unwrap());
}

/// A run of job `a` at fire `fire` (minutes after T1), attempt `attempt`,
/// ended as `ok` says (`None`: as `status` leaves it).
fn streak_run(fire: i64, attempt: u32, status: RunStatus, ok: Option<bool>) -> Write {
    let at = from_ms(T1 + fire * 60_000);
    Write::Run(RunRecord {
        run_id: format!("f{fire:02}-a{attempt}"),
        status,
        started_at: Some(at),
        ended_at: (status != RunStatus::Pending)
            .then(|| at + chrono::Duration::seconds(attempt.into())),
        outcome: ok.map(|ok| {
            if ok {
                Outcome::Succeeded {
                    output: String::new(),
                }
            } else {
                Outcome::Failed {
                    message: "no".into(),
                    retryable: true,
                }
            }
        }),
        ..RunRecord::pending("a", at, at, attempt)
    })
}

async fn failures_in_a_row_count_fires_from_the_stored_history(db: TestStore) {
    use RunStatus::{Finished, Interrupted, Missed, Pending};
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    assert_eq!(
        store.failures_in_a_row("a", 10, None).await.unwrap().count,
        0
    );
    assert_eq!(
        store
            .failures_in_a_row("nope", 10, None)
            .await
            .unwrap()
            .count,
        0
    );
    store
        .write(vec![
            streak_run(0, 1, Finished, Some(false)),
            streak_run(1, 1, Finished, Some(true)),
            // Fire 2 failed twice (a retry): one failure.
            streak_run(2, 1, Finished, Some(false)),
            streak_run(2, 2, Finished, Some(false)),
            streak_run(3, 1, Missed, None),
            streak_run(4, 1, Interrupted, None),
            streak_run(5, 1, Finished, Some(false)),
            // Fire 6's retry is pending: it does not count yet.
            streak_run(6, 1, Finished, Some(false)),
            streak_run(6, 2, Pending, None),
        ])
        .await
        .unwrap();
    let s = store.failures_in_a_row("a", 10, None).await.unwrap();
    assert_eq!(s.count, 2, "fires 5 and 2; {s:?}");
    assert_eq!(s.last_failed.as_deref(), Some("f05-a1"));
    assert_eq!(
        store.failures_in_a_row("a", 1, None).await.unwrap().count,
        1
    );
    // The fire ending now is left out, whatever its rows say.
    let fire5 = (from_ms(T1 + 5 * 60_000), RunOrigin::Fire);
    let s = store.failures_in_a_row("a", 10, Some(fire5)).await.unwrap();
    assert_eq!((s.count, s.last_failed.as_deref()), (1, Some("f02-a2")));

    // A resume resets the count: runs ended before it end the streak.
    store
        .write(vec![Write::PauseNote {
            job_id: "a".into(),
            reason: None,
            failures_from: Some(from_ms(T1 + 5 * 60_000 + 500)),
        }])
        .await
        .unwrap();
    assert_eq!(
        store.failures_in_a_row("a", 10, None).await.unwrap().count,
        1
    );
    store
        .write(vec![Write::PauseNote {
            job_id: "a".into(),
            reason: None,
            failures_from: Some(from_ms(T1 + 7 * 60_000)),
        }])
        .await
        .unwrap();
    assert_eq!(
        store.failures_in_a_row("a", 10, None).await.unwrap().count,
        0
    );
    store
        .write(vec![streak_run(8, 1, Finished, Some(false))])
        .await
        .unwrap();
    assert_eq!(
        store.failures_in_a_row("a", 10, None).await.unwrap().count,
        1
    );
}
backends!(failures_in_a_row_count_fires_from_the_stored_history: memory, sqlite, postgres);

async fn an_auto_pause_is_written_once_and_a_replace_keeps_the_reset(db: TestStore) {
    let store = db.open().await;
    store.insert_job(record("a"), false).await.unwrap();
    let pause = |incarnation: &str, run: &str| Write::AutoPause {
        job_id: "a".into(),
        incarnation: incarnation.into(),
        reason: "auto-paused after 3 failed runs in a row".into(),
        run_id: run.into(),
    };
    // Another incarnation's failures pause nothing.
    let w = store.write(vec![pause("other", "r0")]).await.unwrap();
    assert!(w.refused.contains("r0"));
    assert!(!store.job("a").await.unwrap().unwrap().paused);
    let w = store.write(vec![pause("", "r1")]).await.unwrap();
    assert!(w.all(), "{w:?}");
    let j = store.job("a").await.unwrap().unwrap();
    assert!(j.paused);
    assert_eq!(j.next_run_time, None);
    assert_eq!(
        j.paused_reason.as_deref(),
        Some("auto-paused after 3 failed runs in a row")
    );
    // A second host counting the same failures finds it paused.
    let w = store.write(vec![pause("", "r2")]).await.unwrap();
    assert!(w.refused.contains("r2"), "{w:?}");

    // A replace takes the reason given and keeps `failures_from` unless
    // given one.
    let from = from_ms(T1);
    store
        .write(vec![Write::PauseNote {
            job_id: "a".into(),
            reason: Some("kept".into()),
            failures_from: Some(from),
        }])
        .await
        .unwrap();
    let mut r = record("a");
    r.paused = true;
    r.paused_reason = Some("kept".into());
    store.insert_job(r.clone(), true).await.unwrap();
    let j = store.job("a").await.unwrap().unwrap();
    assert_eq!(
        (j.paused_reason.as_deref(), j.failures_from),
        (Some("kept"), Some(from))
    );
    r.paused = false;
    r.paused_reason = None;
    r.failures_from = Some(from_ms(T2));
    store.insert_job(r.clone(), true).await.unwrap();
    let j = store.job("a").await.unwrap().unwrap();
    assert_eq!(
        (j.paused_reason.as_deref(), j.failures_from),
        (None, Some(from_ms(T2)))
    );
    // A new row has no pause note, whatever the record says.
    let mut b = record("b");
    b.paused_reason = Some("x".into());
    b.failures_from = Some(from);
    store.insert_job(b.clone(), false).await.unwrap();
    let j = store.job("b").await.unwrap().unwrap();
    assert_eq!((j.paused_reason, j.failures_from), (None, None));
}
backends!(an_auto_pause_is_written_once_and_a_replace_keeps_the_reset: memory, sqlite, postgres);

// Issue 13: a chained run's parent is a column of its own, written with
// the pending row, kept by its start and its end, carried by its retry,
// and read back whole, as a summary and in a job's run list, after a
// reopen too.
async fn a_chained_runs_parent_run_id_round_trips(db: TestStore) {
    let (child, retry) = {
        let store = db.open().await;
        store.insert_job(record("a"), false).await.unwrap();
        let parent = RunRecord::pending("a", from_ms(1000), from_ms(1000), 1);
        let child = RunRecord {
            origin: RunOrigin::Chain,
            parent_run_id: Some(parent.run_id.clone()),
            ..RunRecord::pending("a", from_ms(2000), from_ms(2000), 1)
        };
        store
            .write(vec![Write::Run(parent.clone()), Write::Run(child.clone())])
            .await
            .unwrap();
        assert_eq!(
            store.run(&child.run_id).await.unwrap().as_ref(),
            Some(&child)
        );
        assert_eq!(
            store
                .run(&parent.run_id)
                .await
                .unwrap()
                .unwrap()
                .parent_run_id,
            None
        );
        // Its start (SQLite's update of a pending row's start columns).
        let mut running = child.clone();
        running.status = RunStatus::Running;
        running.started_at = Some(from_ms(3000));
        running.host = Some("here".into());
        store
            .write(vec![Write::Run(running.clone())])
            .await
            .unwrap();
        assert_eq!(
            store.run(&child.run_id).await.unwrap(),
            Some(running.clone())
        );
        // Its end, failed, with a retry that keeps the parent.
        let mut ended = running;
        ended.status = RunStatus::Finished;
        ended.ended_at = Some(from_ms(4000));
        ended.outcome = Some(Outcome::Failed {
            message: "no".into(),
            retryable: true,
        });
        let retry = RunRecord {
            origin: RunOrigin::Chain,
            parent_run_id: child.parent_run_id.clone(),
            ..RunRecord::pending("a", from_ms(2000), from_ms(5000), 2)
        };
        let written = store
            .write(vec![Write::End {
                run: ended.clone(),
                retry: Some(Box::new(retry.clone())),
            }])
            .await
            .unwrap();
        assert!(written.all(), "{written:?}");
        (ended, retry)
    };
    let store = db.open().await;
    assert_eq!(store.run(&child.run_id).await.unwrap(), Some(child.clone()));
    assert_eq!(store.run(&retry.run_id).await.unwrap(), Some(retry.clone()));
    let summary = store.run_summary(&child.run_id).await.unwrap().unwrap();
    assert_eq!(summary.parent_run_id, child.parent_run_id);
    let listed = store
        .run_summaries("a", 10, RunsFrom::Offset(0))
        .await
        .unwrap()
        .runs;
    let parents: Vec<Option<&str>> = listed.iter().map(|r| r.parent_run_id.as_deref()).collect();
    let parent = child.parent_run_id.as_deref();
    // Newest first: the retry, the child, the parent.
    assert_eq!(parents, [parent, parent, None]);
}
backends!(a_chained_runs_parent_run_id_round_trips: memory, sqlite, postgres);

fn audit_row(at_ms: i64, action: &str, target: &str, job: Option<&str>) -> AuditRecord {
    AuditRecord {
        at: from_ms(at_ms),
        actor: "ops".into(),
        client: Some("127.0.0.1:5000".into()),
        action: action.into(),
        target: target.into(),
        job: job.map(str::to_owned),
        detail: serde_json::json!({"note": "x"}),
    }
}

async fn the_audit_log_pages_by_cursor_filters_by_job_and_prunes_by_age(db: TestStore) {
    let store = db.open().await;
    assert!(
        store
            .audit(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    store
        .record_audit(vec![
            audit_row(1_000, "job_created", "a", Some("a")),
            audit_row(2_000, "calendar_put", "days", None),
            audit_row(3_000, "run_replayed", "run-1", Some("a")),
        ])
        .await
        .unwrap();
    store
        .record_audit(vec![audit_row(4_000, "job_created", "b", Some("b"))])
        .await
        .unwrap();
    let page = |job: Option<&str>, before: Option<i64>, limit: usize| {
        let store = store.clone();
        let query = AuditQuery {
            job: job.map(str::to_owned),
            before,
            limit,
        };
        async move { store.audit(&query).await.unwrap() }
    };
    let all = page(None, None, 10).await;
    let targets: Vec<&str> = all.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["b", "run-1", "days", "a"]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let newest = &all[0];
    assert_eq!(
        (
            newest.at,
            newest.actor.as_str(),
            newest.client.as_deref(),
            newest.job.as_deref()
        ),
        (from_ms(4_000), "ops", Some("127.0.0.1:5000"), Some("b"))
    );
    assert_eq!(newest.detail["note"], "x");
    // A cursor page, and the same page after a newer row.
    let second = page(None, Some(all[1].id), 2).await;
    assert_eq!(second, all[2..4]);
    store
        .record_audit(vec![audit_row(5_000, "job_deleted", "b", Some("b"))])
        .await
        .unwrap();
    assert_eq!(page(None, Some(all[1].id), 2).await, second);
    // One job's rows, its runs' included.
    let of_a: Vec<String> = page(Some("a"), None, 10)
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(of_a, ["run_replayed", "job_created"]);
    // Rows made before the cutoff go; ids are not given again.
    store.prune_audit(from_ms(3_000)).await.unwrap();
    let left: Vec<String> = page(None, None, 10)
        .await
        .into_iter()
        .map(|e| e.target)
        .collect();
    assert_eq!(left, ["b", "b", "run-1"]);
    store
        .record_audit(vec![audit_row(6_000, "job_created", "c", None)])
        .await
        .unwrap();
    let top = page(None, None, 1).await;
    assert!(top[0].id > all[0].id + 1, "{top:?}");
}
backends!(the_audit_log_pages_by_cursor_filters_by_job_and_prunes_by_age: memory, sqlite, postgres);
