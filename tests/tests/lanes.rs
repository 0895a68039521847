//! Runaway guests leave the fast lane (host/src/scheduler/lane.rs), keep
//! every limit there, and never take healthy jobs' workers: the real
//! binary, a SQLite file, the HTTP API.

use serde_json::Value;
use std::time::{Duration, Instant};
use wasmcron_tests::host::{Host, eventually, query, setup_warm};

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

/// `GET path` on the host's API, as JSON.
async fn get(base: &str, path: &str) -> Value {
    let resp = reqwest::get(format!("{base}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.json().await.expect("json")
}

/// `POST path` on the host's API (no body), which must succeed.
async fn post(base: &str, path: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = resp.status();
    assert!(
        status.is_success(),
        "POST {path}: {status} {}",
        resp.text().await.unwrap_or_default()
    );
}

/// A job's runs from the API, newest first (up to 1,000).
async fn runs(base: &str, job: &str) -> Vec<Value> {
    get(base, &format!("/jobs/{job}/runs?limit=1000")).await["runs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The API's base URL. More patient than `Host::api_url`: a debug build
/// compiling four plugins on a loaded machine takes its time to listen.
fn api_url(host: &Host) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !host.log().contains("HTTP API listening") {
        assert!(
            Instant::now() < deadline,
            "the API never listened:\n{}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    host.api_url()
}

/// Lines of the host's JSON log about `job` whose message starts with
/// `message`.
fn log_lines(host: &Host, job: &str, message: &str) -> usize {
    host.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
                && v["fields"]["job"] == job
        })
        .count()
}

/// Lines of the host's JSON log that say `job`'s run was demoted.
fn demotions(host: &Host, job: &str) -> usize {
    log_lines(host, job, "run demoted to the slow lane")
}

/// Waits (at most a minute) until `job` has `n` finished runs; returns
/// them, newest first.
async fn finished_runs(host: &Host, base: &str, job: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: Vec<Value> = runs(base, job)
            .await
            .into_iter()
            .filter(|r| r["status"] == "finished")
            .collect();
        if done.len() >= n {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{job}: {} of {n} runs finished:\n{}",
            done.len(),
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The host's `/metrics` text.
async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test(flavor = "multi_thread")]
async fn demoted_spinning_runs_still_end_out_of_fuel_or_timed_out_with_fuel_reported() {
    let dir = setup_warm(
        r#"
version = 1
[[jobs]]
id = "burn-fuel"
plugin = "spin"
trigger = { type = "interval", every = "1h" }
limits = { fuel = 2000000000, timeout = "60s" }

[[jobs]]
id = "burn-time"
plugin = "spin"
trigger = { type = "interval", every = "1h" }
limits = { timeout = "2s" }
"#,
        &["spin"],
    );
    let host = Host::start(BIN, dir.path(), &[]);
    let base = api_url(&host);
    post(&base, "/jobs/burn-fuel/run").await;
    post(&base, "/jobs/burn-time/run").await;
    let mut ended = Vec::new();
    for job in ["burn-fuel", "burn-time"] {
        let run = finished_runs(&host, &base, job, 1).await.remove(0);
        assert_eq!(demotions(&host, job), 1, "{job}:\n{}", host.log());
        ended.push(run);
    }
    let metrics = metrics(&base).await;
    assert!(
        metrics.contains("wasmcron_runs_demoted_total 2"),
        "{metrics}"
    );
    let (fuel, time) = (&ended[0], &ended[1]);
    assert_eq!(fuel["outcome"]["kind"], "out-of-fuel", "{fuel}");
    // All of the budget was burnt, most of it in the slow lane.
    let used = fuel["fuel"].as_u64().unwrap_or(0);
    assert!(
        used >= 2_000_000_000 - 10_000,
        "fuel reported {used}: {fuel}"
    );
    assert_eq!(time["outcome"]["kind"], "timed-out", "{time}");
    assert!(time["fuel"].as_u64().unwrap_or(0) > 0, "{time}");
}

/// Lines of the host's JSON log that say `job`'s run started in the slow
/// lane.
fn slow_starts(host: &Host, job: &str) -> usize {
    log_lines(host, job, "run started in the slow lane")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_jobs_next_run_starts_in_the_slow_lane() {
    // The first run burns its fuel, is demoted; the second starts in the
    // slow lane without taking a worker, and still runs under its limits.
    let dir = setup_warm(
        r#"
version = 1
[[jobs]]
id = "burn"
plugin = "spin"
trigger = { type = "interval", every = "1h" }
limits = { fuel = 2000000000, timeout = "60s" }
"#,
        &["spin"],
    );
    let host = Host::start(BIN, dir.path(), &[]);
    let base = api_url(&host);
    post(&base, "/jobs/burn/run").await;
    finished_runs(&host, &base, "burn", 1).await;
    assert_eq!(
        (demotions(&host, "burn"), slow_starts(&host, "burn")),
        (1, 0),
        "{}",
        host.log()
    );
    post(&base, "/jobs/burn/run").await;
    let done = finished_runs(&host, &base, "burn", 2).await;
    assert_eq!(
        (demotions(&host, "burn"), slow_starts(&host, "burn")),
        (1, 1),
        "the second run starts slow, so is never demoted:\n{}",
        host.log()
    );
    for run in &done {
        assert_eq!(run["outcome"]["kind"], "out-of-fuel", "{run}");
    }
    let metrics = metrics(&base).await;
    assert!(
        metrics.contains("wasmcron_runs_demoted_total 1")
            && metrics.contains("wasmcron_runs_started_slow_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_interrupts_a_demoted_run_and_records_it() {
    let dir = setup_warm(
        r#"
version = 1
[[jobs]]
id = "forever"
plugin = "spin"
trigger = { type = "interval", every = "1h" }
limits = { timeout = "5m", fuel = 10000000000000 }
"#,
        &["spin"],
    );
    let host = Host::start(BIN, dir.path(), &["--shutdown-grace", "1s"]);
    post(&api_url(&host), "/jobs/forever/run").await;
    eventually(&host, "the spinning run to be demoted", || {
        demotions(&host, "forever") == 1
    });
    host.signal("-TERM");
    let log_path = host.log_path().to_path_buf();
    let status = host.wait();
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert!(status.success(), "exit {status}:\n{log}");
    let rows = query(
        dir.path(),
        "SELECT status, note FROM runs WHERE job_id = 'forever'",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "interrupted", "{rows:?}\n{log}");
    assert!(
        rows[0].1.as_deref().unwrap_or("").contains("shut down"),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_fires_beside_ten_spinning_jobs_and_a_hanging_listener_are_never_skipped() {
    // Ten spinning jobs and ten healthy ones, with fewer workers than
    // spinners: without lanes the spinners hold every worker for their
    // 30 s and the healthy jobs' fires are skipped ("already in flight")
    // behind runs that never got a worker. And a job failing every second
    // whose listener computes through every delivery's timeout.
    let mut jobs = String::from(
        "version = 1\n[[jobs]]\nid = \"fail\"\nplugin = \"panic\"\n\
         listeners = [{ plugin = \"stall\" }]\ntrigger = { type = \"interval\", every = \"1s\" }\n",
    );
    for i in 0..10 {
        jobs.push_str(&format!(
            "[[jobs]]\nid = \"spin{i}\"\nplugin = \"spin\"\n\
             trigger = {{ type = \"interval\", every = \"1s\" }}\nlimits = {{ timeout = \"30s\" }}\n\
             [[jobs]]\nid = \"ok{i}\"\nplugin = \"hello\"\n\
             trigger = {{ type = \"interval\", every = \"1s\" }}\n"
        ));
    }
    let dir = setup_warm(&jobs, &["spin", "hello", "panic", "stall"]);
    let host = Host::start(
        BIN,
        dir.path(),
        &["--workers", "8", "--shutdown-grace", "1s"],
    );
    let base = api_url(&host);
    // Ten seconds of fires, with every spinner started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..10)
        .map(|i| demotions(&host, &format!("spin{i}")))
        .sum::<usize>()
        < 8
    {
        assert!(
            Instant::now() < deadline,
            "spinners not demoted:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut finished = 0;
    for i in 0..10 {
        let job = format!("ok{i}");
        let runs = runs(&base, &job).await;
        let skipped: Vec<&Value> = runs.iter().filter(|r| r["status"] == "skipped").collect();
        assert!(skipped.is_empty(), "{job}: {skipped:?}");
        finished += runs.iter().filter(|r| r["status"] == "finished").count();
    }
    // About 100 fires in those ten seconds; all ran.
    assert!(finished >= 80, "only {finished} healthy runs finished");
}
