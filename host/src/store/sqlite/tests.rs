//! What only the SQLite store has: its migrations from older files and
//! its WAL. Everything the backends share is tested on each of them in
//! `tests/tests/store_backends.rs`.

use super::runs::from_ms;
use super::*;
use crate::job::JobSpec;

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

#[tokio::test]
async fn close_empties_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SqliteJobStore::open(&path).unwrap();
    store.insert_job(record("a"), false).await.unwrap();
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

/// SQLite runs one checkpoint at a time, and a TRUNCATE that meets another
/// gives up at once (the busy handler is not asked for that lock): a clean
/// stop that met the background pass must try again, not leave the WAL
/// behind. Here another connection's FULL checkpoint holds the lock for
/// 300 ms, waiting for a reader on an older snapshot.
#[tokio::test]
async fn close_waits_out_another_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = SqliteJobStore::open(&path).unwrap();
    store.insert_job(record("a"), false).await.unwrap();
    // A reader on the snapshot before the writes below.
    let reader = Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    let writes = (0..2000)
        .map(|i| Write::Run(RunRecord::pending("a", from_ms(i), from_ms(i), 1)))
        .collect();
    store.write(writes).await.unwrap();
    let (holding, held) = std::sync::mpsc::channel();
    let other = {
        let path = path.clone();
        std::thread::spawn(move || {
            let conn = Connection::open(&path).unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            holding.send(()).unwrap();
            // Again if it met the store's background pass (busy at once).
            while conn
                .query_row("PRAGMA wal_checkpoint(FULL)", [], |r| r.get::<_, i64>(0))
                .unwrap()
                != 0
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    held.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        reader.execute_batch("COMMIT").unwrap();
    });
    store.close().await.unwrap();
    assert_eq!(std::fs::metadata(wal_path(&path)).unwrap().len(), 0);
    release.join().unwrap();
    other.join().unwrap();
}
