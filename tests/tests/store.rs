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
