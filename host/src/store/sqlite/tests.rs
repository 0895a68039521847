//! The SQLite store against a real file.

use super::runs::from_ms;
use super::writer::ms;
use super::*;
use crate::job::JobSpec;
use crate::runtime::{LogLevel, LogRecord, LogSource, Outcome};
use crate::store::{KvError, RunStatus};

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
    }
}

#[tokio::test]
async fn jobs_runs_and_kv_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/wasmcron.db");
    {
        let store = SqliteJobStore::open(&path).unwrap();
        store.insert_job(&record("a"), false).await.unwrap();
        let mut run = RunRecord::pending("a", from_ms(1), from_ms(1), 1);
        run.status = RunStatus::Finished;
        run.outcome = Some(Outcome::Succeeded {
            output: "ok".into(),
        });
        let pending = RunRecord::pending("a", from_ms(2), from_ms(2), 1);
        store
            .write(vec![Write::Run(run), Write::Run(pending.clone())])
            .await
            .unwrap();
        store.kv().set("a", "k", b"v").unwrap();
    }
    let store = SqliteJobStore::open(&path).unwrap();
    let snap = store.load().await.unwrap();
    assert_eq!(snap.jobs, vec![record("a")]);
    assert_eq!(snap.unfinished.len(), 1);
    assert_eq!(snap.unfinished[0].status, RunStatus::Pending);
    let runs = store.runs("a", 10, 0).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[1].outcome,
        Some(Outcome::Succeeded {
            output: "ok".into()
        })
    );
    assert_eq!(store.kv().get("a", "k").unwrap(), Some(b"v".to_vec()));
}

#[tokio::test]
async fn duplicate_and_missing_jobs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteJobStore::open(&dir.path().join("db")).unwrap();
    store.insert_job(&record("a"), false).await.unwrap();
    assert!(matches!(
        store.insert_job(&record("a"), false).await,
        Err(StoreError::Duplicate(id)) if id == "a"
    ));
    store.insert_job(&record("a"), true).await.unwrap();
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

#[tokio::test]
async fn concurrent_writers_are_grouped_and_all_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteJobStore::open(&dir.path().join("db")).unwrap());
    store.insert_job(&record("a"), false).await.unwrap();
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

#[tokio::test]
async fn a_failing_command_does_not_undo_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteJobStore::open(&dir.path().join("db")).unwrap());
    store.insert_job(&record("a"), false).await.unwrap();
    let (a, b) = (record("a"), record("b"));
    let (dup, fresh) = tokio::join!(store.insert_job(&a, false), store.insert_job(&b, false));
    assert!(matches!(dup, Err(StoreError::Duplicate(_))));
    fresh.unwrap();
    assert_eq!(store.load().await.unwrap().jobs.len(), 2);
}

#[tokio::test]
async fn prune_keeps_the_newest_finished_runs_and_all_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteJobStore::open(&dir.path().join("db")).unwrap();
    store.insert_job(&record("a"), false).await.unwrap();
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
    // By age: finished runs before 8 s go, whatever the count; the pending
    // one stays.
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
}

#[tokio::test]
async fn an_unreadable_job_row_is_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SqliteJobStore::open(&path).unwrap();
    store.insert_job(&record("a"), false).await.unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE jobs SET spec = '{\"from\":\"the future\"}' WHERE id = 'a'",
            [],
        )
        .unwrap();
    }
    let snap = store.load().await.unwrap();
    assert!(snap.jobs.is_empty());
    assert_eq!(snap.broken.len(), 1);
    assert_eq!(snap.broken[0].id, "a");
    // Still there for a newer version to read.
    let conn = Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = SqliteJobStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("schema version 99"), "{err}");
}

#[tokio::test]
async fn runs_of_a_deleted_incarnation_are_not_recorded_or_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteJobStore::open(&dir.path().join("db")).unwrap();
    let old = JobRecord {
        incarnation: "old".into(),
        ..record("a")
    };
    store.insert_job(&old, false).await.unwrap();
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
    store.insert_job(&new, false).await.unwrap();
    // The old run finishes after the job was deleted and re-created.
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

#[tokio::test]
async fn a_database_from_before_incarnations_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let mut conn = Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..2] {
            tx.execute_batch(sql).unwrap();
        }
        tx.execute_batch(
            "INSERT INTO jobs (id, spec, created_at, next_run_time, paused)
               VALUES ('a', '{\"id\":\"a\",\"plugin\":\"hello\",\"trigger\":{\"type\":\"interval\",\"every\":\"1m\"}}', 0, 60000, 0);
             INSERT INTO runs (run_id, job_id, attempt, scheduled_at, due_at, status)
               VALUES ('r1', 'a', 1, 0, 0, 'finished');",
        )
        .unwrap();
        tx.pragma_update(None, "user_version", 2).unwrap();
        tx.commit().unwrap();
    }
    let store = SqliteJobStore::open(&path).unwrap();
    let snap = store.load().await.unwrap();
    assert_eq!(snap.jobs.len(), 1);
    assert!(!snap.jobs[0].incarnation.is_empty());
    let runs = store.runs("a", 10, 0).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].incarnation, snap.jobs[0].incarnation);
}

#[tokio::test]
async fn kv_quota_counts_bytes_of_nul_led_and_four_byte_keys() {
    // Keys that length() of TEXT under-counts: led by NUL (counted as 0
    // characters) and made of 4-byte characters (counted as 1 each).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SqliteJobStore::open(&path).unwrap();
    let kv = store.sqlite_kv().clone();
    let nul_key = format!("\0{}", "x".repeat(99));
    let emoji_key = "😀".repeat(25);
    kv.set("j", &nul_key, &[1; 100]).unwrap();
    kv.set("j", &emoji_key, &[2; 100]).unwrap();
    assert_eq!(kv.used("j").unwrap(), 400);
    assert_eq!(kv.get("j", &nul_key).unwrap(), Some(vec![1; 100]));
    // What the table holds agrees, counted independently in bytes.
    let conn = Connection::open(&path).unwrap();
    let stored: i64 = conn
        .query_row(
            "SELECT SUM(length(CAST(key AS BLOB)) + length(value)) FROM kv WHERE job_id = 'j'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 400);
    // Overwrites replace their entry's size; deletes give it back.
    kv.set("j", &emoji_key, &[3; 10]).unwrap();
    assert_eq!(kv.used("j").unwrap(), 310);
    kv.delete("j", &nul_key).unwrap();
    assert_eq!(kv.used("j").unwrap(), 110);
    kv.delete("j", "missing").unwrap();
    assert_eq!(kv.used("j").unwrap(), 110);
}

#[tokio::test]
async fn kv_quota_stops_a_job_at_16_mib_of_nul_led_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteJobStore::open(&dir.path().join("db")).unwrap();
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
    // Another job is not affected.
    kv.set("other", "k", b"v").unwrap();
}

#[tokio::test]
async fn deleting_a_job_frees_its_kv_quota() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteJobStore::open(&dir.path().join("db")).unwrap();
    store.insert_job(&record("a"), false).await.unwrap();
    store.kv().set("a", "k", &[0; 1000]).unwrap();
    assert_eq!(store.sqlite_kv().used("a").unwrap(), 1001);
    store.delete_job("a").await.unwrap();
    assert_eq!(store.sqlite_kv().used("a").unwrap(), 0);
    assert_eq!(store.kv().get("a", "k").unwrap(), None);
}

#[tokio::test]
async fn migration_3_backfills_kv_usage_in_bytes_and_log_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        // A database as version 2 left it, with a NUL-led key.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO kv (job_id, key, value) VALUES ('j', ?1, ?2)",
            params!["\0abc", vec![0u8; 10]],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO runs (run_id, job_id, attempt, scheduled_at, due_at, status, logs)
             VALUES ('r', 'j', 1, 0, 0, 'finished', ?1)",
            params![r#"[{"source":"log","level":"info","message":"a"},{"source":"log","level":"info","message":""}]"#],
        )
        .unwrap();
    }
    let store = SqliteJobStore::open(&path).unwrap();
    assert_eq!(store.sqlite_kv().used("j").unwrap(), 14);
    let summary = store.run_summary("r").await.unwrap().unwrap();
    assert_eq!(summary.log_count, 2);
    let page = store.run_logs("r", 1, 10).await.unwrap().unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.logs.len(), 1);
    assert_eq!(page.logs[0].message, "");
    assert_eq!(page.next_offset, None);
}

fn log(i: usize, len: usize) -> LogRecord {
    LogRecord {
        source: LogSource::Log,
        level: LogLevel::Info,
        message: format!("{i:06}{}", "x".repeat(len)),
        fields: Vec::new(),
    }
}

#[tokio::test]
async fn run_lists_leave_logs_out_and_logs_come_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteJobStore::open(&dir.path().join("db")).unwrap();
    store.insert_job(&record("a"), false).await.unwrap();
    let mut run = RunRecord::pending("a", from_ms(1), from_ms(1), 1);
    run.status = RunStatus::Finished;
    // 2 MiB of logs in 2,048 records of about 1 KiB.
    run.logs = (0..2048).map(|i| log(i, 1024)).collect();
    store.write(vec![Write::Run(run.clone())]).await.unwrap();

    let list = store.run_summaries("a", 10, 0).await.unwrap();
    assert_eq!(list.runs.len(), 1);
    assert!(!list.more);
    assert_eq!(list.runs[0].log_count, 2048);
    assert_eq!(list.runs[0], RunSummary::from(&run));

    // Pages stop at the count asked or at LOG_PAGE_BYTES, whichever first.
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

#[tokio::test]
async fn a_page_of_runs_is_cut_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteJobStore::open(&dir.path().join("db")).unwrap();
    store.insert_job(&record("a"), false).await.unwrap();
    // 100 runs with 100 KiB args each: 10 MiB, more than a page may hold.
    let writes = (0..100)
        .map(|i| {
            let mut r = RunRecord::pending("a", from_ms(i), from_ms(i), 1);
            r.args = Some(format!(r#"{{"pad":"{}"}}"#, "p".repeat(100 * 1024)));
            Write::Run(r)
        })
        .collect();
    store.write(writes).await.unwrap();
    let first = store.run_summaries("a", 1000, 0).await.unwrap();
    assert!(first.more);
    let bytes: usize = first.runs.iter().map(RunSummary::approx_json_len).sum();
    assert!(bytes <= crate::store::RUN_PAGE_BYTES, "{bytes}");
    assert!(first.runs.len() > 10 && first.runs.len() < 100);
    // Paging on from each page's end reaches every run once, newest first.
    let mut seen: Vec<i64> = first.runs.iter().map(|r| ms(r.scheduled_at)).collect();
    let mut more = first.more;
    while more {
        let page = store.run_summaries("a", 1000, seen.len()).await.unwrap();
        assert!(!page.runs.is_empty());
        seen.extend(page.runs.iter().map(|r| ms(r.scheduled_at)));
        more = page.more;
    }
    assert_eq!(seen, (0..100).rev().collect::<Vec<i64>>());
    let short = store.run_summaries("a", 3, 0).await.unwrap();
    assert_eq!(short.runs.len(), 3);
    assert!(short.more);
}

#[tokio::test]
async fn close_empties_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SqliteJobStore::open(&path).unwrap();
    store.insert_job(&record("a"), false).await.unwrap();
    let writes = (0..2000)
        .map(|i| Write::Run(RunRecord::pending("a", from_ms(i), from_ms(i), 1)))
        .collect();
    store.write(writes).await.unwrap();
    let wal = wal_path(&path);
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    store.close().await.unwrap();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    // Still usable.
    store.kv().set("a", "k", b"v").unwrap();
    assert_eq!(store.kv().get("a", "k").unwrap(), Some(b"v".to_vec()));
}
