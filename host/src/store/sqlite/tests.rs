//! The SQLite store against a real file.

use super::*;
use crate::job::JobSpec;
use crate::runtime::Outcome;

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
