//! `wasmcron run --db postgres://…` as a user runs it: the database
//! unreachable at start, and jobs and runs across a stop and a start.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmcron_tests::host::{Host, eventually, setup_warm};
use wasmcron_tests::stores::{Backend, TestStore};

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

#[test]
fn an_unreachable_database_at_start_is_a_clear_error_with_the_password_masked() {
    let dir = setup_warm("version = 1\n", &[]);
    // Port 1 on loopback: nothing listens, so the refusal is immediate.
    let url = "postgres://wasmcron:hunter2@127.0.0.1:1/jobs";
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["run", "--plugins"])
        .arg(dir.path().join("plugins"))
        .args(["--db", url])
        .stdin(Stdio::null())
        .output()
        .expect("run wasmcron");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited 0:\n{stderr}");
    assert!(
        stderr.contains("postgres://wasmcron:***@127.0.0.1:1/jobs"),
        "the URL is not named:\n{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password shows:\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn jobs_and_runs_survive_a_stop_and_a_start_on_postgres() {
    let db = TestStore::new(Backend::Postgres);
    let pg = db.pg().expect("a PostgreSQL store");
    let dir = setup_warm(
        r#"
version = 1
[[jobs]]
id = "greet"
plugin = "hello"
args = { name = "pg" }
trigger = { type = "interval", every = "1s" }
"#,
        &["hello"],
    );
    let finished = || {
        pg.count(
            "SELECT count(*) FROM runs WHERE job_id = 'greet' AND status = 'finished'
               AND outcome_kind = 'succeeded'",
        )
    };
    let host = Host::start_with_db_url(BIN, dir.path(), pg.url(), &[]);
    eventually(&host, "two finished runs", || finished() >= 2);
    // A job added through the API, not in the jobs file.
    let api = host.api_url();
    let added = reqwest::blocking_post(
        &format!("{api}/jobs"),
        r#"{"id":"hourly","plugin":"hello","trigger":{"type":"interval","every":"1h"}}"#,
    );
    assert_eq!(added, 201);
    host.signal("-TERM");
    let status = host.wait();
    assert!(status.success(), "exit {status}");
    let before = finished();
    let incarnation = pg.strings("SELECT incarnation FROM jobs WHERE id = 'greet'");
    assert_eq!(
        pg.count("SELECT count(*) FROM runs WHERE status IN ('pending', 'running')"),
        0,
        "a clean stop leaves no run in flight"
    );

    let host = Host::start_with_db_url(BIN, dir.path(), pg.url(), &[]);
    eventually(&host, "runs after the restart", || finished() >= before + 2);
    assert_eq!(
        pg.strings("SELECT id FROM jobs ORDER BY id"),
        ["greet", "hourly"]
    );
    assert_eq!(
        pg.strings("SELECT incarnation FROM jobs WHERE id = 'greet'"),
        incarnation,
        "the same job, not a new one"
    );
    // The history from before the stop is listed through the API.
    let api = host.api_url();
    let runs = reqwest::blocking_get(&format!("{api}/jobs/greet/runs?limit=1000"));
    let listed = runs["runs"].as_array().map_or(0, Vec::len);
    assert!(
        i64::try_from(listed).unwrap_or(0) >= before + 2,
        "{listed} runs listed, {before} before the stop"
    );
    host.signal("-TERM");
    assert!(host.wait().success());
}

/// Small blocking HTTP calls on a runtime of their own.
mod reqwest {
    use serde_json::Value;

    fn on_runtime<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    pub fn blocking_post(url: &str, body: &str) -> u16 {
        on_runtime(async {
            ::reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .expect("POST")
                .status()
                .as_u16()
        })
    }

    pub fn blocking_get(url: &str) -> Value {
        on_runtime(async {
            ::reqwest::get(url)
                .await
                .expect("GET")
                .json()
                .await
                .expect("JSON")
        })
    }
}
