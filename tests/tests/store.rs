//! The SQLite job store as the real binary uses it: the kv quota against a
//! hostile guest, and the WAL file after a clean stop (issue 10).

use serde_json::Value;
use std::time::Duration;
use wasmcron_tests::host::{Host, count, eventually, query, setup_warm};

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

/// `GET url` as JSON.
async fn get(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// Runs job `id` now and returns its finished run.
async fn run_now(base: &str, id: &str) -> Value {
    let run: Value = reqwest::Client::new()
        .post(format!("{base}/jobs/{id}/run"))
        .send()
        .await
        .expect("run now")
        .json()
        .await
        .expect("json");
    let run_id = run["run_id"].as_str().expect("run id").to_owned();
    for _ in 0..1200 {
        let r = get(&format!("{base}/runs/{run_id}")).await;
        if r["status"] == "finished" {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run_id} of {id} never finished");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_cannot_pass_its_kv_quota_with_nul_led_or_four_byte_keys() {
    // Keys of 200 bytes that length() of TEXT counted as 0 (led by NUL)
    // or 50 (4-byte characters), with 2,000-byte values: about 7,600 sets
    // fill 16 MiB, where the old quota check let 10% more in, and took
    // longer than the run's 30 s timeout (it summed every row per set).
    let jobs = r#"version = 1

[[jobs]]
id = "nul"
plugin = "kvfill"
trigger = { type = "date", at = "2099-01-01T00:00:00Z" }
args = { prefix = "\u0000" }

[[jobs]]
id = "emoji"
plugin = "kvfill"
trigger = { type = "date", at = "2099-01-01T00:00:00Z" }
args = { prefix = "😀" }
"#;
    let dir = setup_warm(jobs, &["kvfill"]);
    let host = Host::start(BIN, dir.path(), &[]);
    let base = host.api_url();
    const QUOTA: u64 = 16 << 20;
    for id in ["nul", "emoji"] {
        let run = run_now(&base, id).await;
        assert_eq!(run["outcome"]["kind"], "succeeded", "{id}: {run}");
        let out: Value = serde_json::from_str(run["outcome"]["output"].as_str().expect("output"))
            .expect("kvfill's JSON");
        let bytes = out["bytes"].as_u64().expect("bytes");
        assert!(
            bytes <= QUOTA && bytes > QUOTA - 2200,
            "{id}: the guest stored {bytes} bytes against a quota of {QUOTA}: {out}"
        );
        assert!(
            out["error"].as_str().is_some_and(|e| e.contains("quota")),
            "{id}: {out}"
        );
        assert_eq!(out["first_read_back"], true, "{id}: {out}");
        // The file agrees, counted in bytes, and the running total matches.
        let stored = count(
            dir.path(),
            &format!(
                "SELECT SUM(length(CAST(key AS BLOB)) + length(value)) FROM kv WHERE job_id = '{id}'"
            ),
        );
        let total = count(
            dir.path(),
            &format!("SELECT bytes FROM kv_usage WHERE job_id = '{id}'"),
        );
        assert_eq!(u64::try_from(stored).ok(), Some(bytes), "{id}");
        assert_eq!(stored, total, "{id}");
    }
    // Each key kept its exact bytes (a NUL-led key is not cut at the NUL).
    let keys = query(
        dir.path(),
        "SELECT max(length(CAST(key AS BLOB))), min(hex(substr(CAST(key AS BLOB), 1, 4))),
                max(hex(substr(CAST(key AS BLOB), 1, 4))) FROM kv
         WHERE job_id IN ('nul', 'emoji') GROUP BY job_id ORDER BY job_id",
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        },
    );
    // kvfill pads each key to at most 200 bytes with whole characters and a
    // 6-digit counter: 4 + 47 x 4 + 6 = 198 bytes of emoji, 200 after a NUL.
    let prefixed = |len: i64, p: &str| (len, p.to_owned(), p.to_owned());
    assert_eq!(keys, [prefixed(198, "F09F9880"), prefixed(200, "00000000")]);
}

#[test]
fn a_clean_stop_leaves_an_empty_wal() {
    // 300 jobs a second write steadily; then SIGTERM.
    let mut jobs = String::from("version = 1\n");
    for i in 0..300 {
        jobs.push_str(&format!(
            "[[jobs]]\nid = \"j{i}\"\nplugin = \"hello\"\ntrigger = {{ type = \"interval\", every = \"1s\" }}\n"
        ));
    }
    let dir = setup_warm(&jobs, &["hello"]);
    let host = Host::start(BIN, dir.path(), &["--shutdown-grace", "5s"]);
    let wal = dir.path().join("wasmcron.db-wal");
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    eventually(&host, "600 finished runs", || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'finished'",
        ) >= 600
    });
    assert!(wal_size() > 0, "the host never wrote to its WAL");
    host.signal("-TERM");
    let status = host.wait();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        wal_size(),
        0,
        "a clean stop left {} bytes of WAL",
        wal_size()
    );
    let conn = rusqlite::Connection::open(dir.path().join("wasmcron.db")).expect("open");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let finished: i64 = conn
        .query_row(
            "SELECT count(*) FROM runs WHERE status = 'finished'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert!(finished >= 600);
}

/// A tmpfs of `bytes` mounted on `path` for one test; unmounted (lazily, so
/// a host still holding files cannot keep it) when dropped.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(path: &std::path::Path, bytes: u64) -> Self {
        std::fs::create_dir_all(path).expect("mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test makes a small disk to fill, which needs `mount -t tmpfs` (root, or \
             CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            path: path.to_path_buf(),
        }
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        // Big pieces, then small ones: tmpfs counts whole pages.
        for chunk in [1 << 20, 4096, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
        let _ = f.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// `GET url`: status and JSON body.
async fn get_status(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The sum of `wasmcron_runs_total` over all outcomes.
async fn runs_ended(base: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with("wasmcron_runs_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_holds_firing_keeps_reads_and_recovers_by_itself() {
    // Four every-second jobs, each run storing about 60 KB (args, output
    // and a log line each carry a 20 KB name), on a 24 MiB disk of their
    // own that the test fills.
    let name = "x".repeat(20_000);
    let mut jobs = String::from("version = 1\n");
    for i in 0..4 {
        jobs.push_str(&format!(
            "[[jobs]]\nid = \"j{i}\"\nplugin = \"hello\"\n\
             trigger = {{ type = \"interval\", every = \"1s\" }}\nargs = {{ name = \"{name}\" }}\n"
        ));
    }
    let dir = setup_warm(&jobs, &["hello"]);
    let disk = Tmpfs::mount(&dir.path().join("disk"), 24 << 20);
    let db = dir.path().join("disk").join("wasmcron.db");
    let host = Host::start_with_db(BIN, dir.path(), &db, &["--shutdown-grace", "5s"]);
    let base = host.api_url();
    let finished = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM runs WHERE status = 'finished'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    let conn = rusqlite::Connection::open(&db).expect("open the host's database");
    conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
    eventually(&host, "8 finished runs", || finished(&conn) >= 8);
    let (status, health) = get_status(&format!("{base}/healthz")).await;
    assert_eq!(
        (status, &health["store"]["writable"]),
        (200, &Value::Bool(true))
    );

    // The disk fills up.
    let filler = disk.fill();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let health = loop {
        let (status, health) = get_status(&format!("{base}/healthz")).await;
        if status == 503 {
            break health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the host never said its store cannot be written:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health["status"], "store_unwritable", "{health}");
    assert_eq!(health["store"]["writable"], false, "{health}");
    let reason = health["store"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("full") || reason.contains("free"),
        "the reason should say the disk is full: {health}"
    );
    assert!(
        host.log().contains("the job store cannot be written"),
        "not said in the log:\n{}",
        host.log()
    );
    // Firing is held: no run ends while the store cannot be written (runs
    // in flight when it filled have ended and waited for their records).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = runs_ended(&base).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        runs_ended(&base).await,
        before,
        "runs ended while the store could not record them"
    );
    assert_eq!(get_status(&format!("{base}/healthz")).await.0, 503);
    // Reads are answered; a change that needs space is refused with the
    // reason, not a 500 (a small one may still fit into pages the file
    // already has, and is then simply written).
    let (status, listed) = get_status(&format!("{base}/jobs")).await;
    assert_eq!(status, 200, "{listed}");
    let (status, runs) = get_status(&format!("{base}/jobs/j0/runs?limit=5")).await;
    assert_eq!(status, 200, "{runs}");
    let refused = reqwest::Client::new()
        .post(format!("{base}/jobs"))
        .json(&serde_json::json!({
            "id": "new", "plugin": "hello", "args": {"name": "y".repeat(400_000)},
            "trigger": {"type": "interval", "every": "1h"}
        }))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status().as_u16(), 503);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "store_unwritable", "{body}");
    let held_since = chrono::Utc::now();

    // Space returns: the host finds out by itself and fires again.
    std::fs::remove_file(&filler).expect("free the disk");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while get_status(&format!("{base}/healthz")).await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the host did not find out that space returned:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = finished(&conn);
    eventually(&host, "runs after the outage", || {
        finished(&conn) >= after + 8
    });
    // Each job's fires during the outage have one story: a missed row.
    for i in 0..4 {
        let missed: i64 = conn
            .query_row(
                "SELECT count(*) FROM runs WHERE job_id = ?1 AND status = 'missed'
                   AND scheduled_at >= ?2",
                rusqlite::params![
                    format!("j{i}"),
                    (held_since - chrono::Duration::seconds(30)).timestamp_millis()
                ],
                |r| r.get(0),
            )
            .expect("missed rows");
        assert!(
            missed >= 1,
            "j{i}: the fires held during the outage left no row"
        );
    }
    host.signal("-TERM");
    assert!(host.wait().success());
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let unsettled: i64 = conn
        .query_row(
            "SELECT count(*) FROM runs WHERE status IN ('pending', 'running')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(unsettled, 0, "runs left unsettled after a clean stop");
    drop(conn);
    drop(disk);
}
