//! HTTP API throughput, and firing lateness with and without API load.
//!
//! `cargo bench -p wasmcron-tests --bench api [-- --seconds N --connections C --fires F --rate R]`
//!
//! Starts the release `wasmcron run` on loopback with a SQLite store and
//! `hello`, with F interval jobs firing once a second each (default 100
//! fires/s). Then, in order:
//! 1. idle: N seconds with no API traffic; fire lateness (guest start −
//!    due time, from the runs table) p50/p99;
//! 2. `GET /jobs/{id}` at a steady R requests/s (default 2,000; open
//!    loop): latency p50/p99 and the fire lateness in that window;
//! 3. `GET /jobs/{id}` from C concurrent keep-alive connections as fast as
//!    they go, for N seconds: requests/s, latency, lateness;
//! 4. `POST /jobs` (new ids, hourly jobs) the same way.
//!
//! The load generator (tokio + reqwest) runs on the same 2 cores as the
//! host, as wrk or oha would; compare the lateness rows with each other,
//! not with other machines.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasmcron_tests::plugins;

struct Options {
    seconds: u64,
    connections: usize,
    fires: usize,
    rate: u64,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 10,
        connections: 32,
        fires: 100,
        rate: 2000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match a.as_str() {
            "--seconds" => o.seconds = value().unwrap_or(o.seconds),
            "--connections" => o.connections = value().map_or(o.connections, |v| v as usize),
            "--fires" => o.fires = value().map_or(o.fires, |v| v as usize),
            "--rate" => o.rate = value().unwrap_or(o.rate),
            _ => {}
        }
    }
    o
}

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_host(dir: &Path) -> anyhow::Result<(Host, String)> {
    let log = dir.join("host.log");
    let child = Command::new(env!("CARGO_BIN_EXE_wasmcron"))
        .args([
            "run",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--plugins",
        ])
        .arg(dir.join("plugins"))
        .arg("--db")
        .arg(format!("sqlite://{}", dir.join("wasmcron.db").display()))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .env("RUST_LOG", "warn,wasmcron::app=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let host = Host(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&log)?;
        if let Some(addr) = text.lines().find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["fields"]["addr"].as_str().map(str::to_owned))
        }) {
            return Ok((host, format!("http://{addr}")));
        }
        anyhow::ensure!(Instant::now() < deadline, "host did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Fire lateness (ms) of the `tick*` runs due in `[from, to)` (unix ms).
fn lateness(db: &Path, from: i64, to: i64) -> anyhow::Result<Vec<f64>> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mut stmt = conn.prepare(
        "SELECT started_at - scheduled_at FROM runs
         WHERE job_id LIKE 'tick%' AND started_at IS NOT NULL
           AND scheduled_at >= ?1 AND scheduled_at < ?2",
    )?;
    let mut v: Vec<f64> = stmt
        .query_map([from, to], |r| r.get::<_, i64>(0))?
        .filter_map(Result::ok)
        .map(|ms| ms as f64)
        .collect();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// Builds the n-th request of a load phase.
type MakeRequest = Arc<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

struct Load {
    requests: usize,
    errors: usize,
    latencies_ms: Vec<f64>,
    elapsed: Duration,
}

async fn load(connections: usize, seconds: u64, request: MakeRequest) -> Load {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap_or_default();
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = client.clone();
        let counter = counter.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match request(&client, n).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut out = Load {
        requests: 0,
        errors: 0,
        latencies_ms: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        if let Ok((lat, errors)) = t.await {
            out.requests += lat.len();
            out.errors += errors;
            out.latencies_ms.extend(lat);
        }
    }
    out.elapsed = started.elapsed();
    out.latencies_ms.sort_by(f64::total_cmp);
    out
}

/// An open-loop load: `rate` requests a second, each sent on schedule
/// whether or not earlier ones have answered (what steady traffic from
/// many clients looks like, unlike a closed loop).
async fn paced(rate: u64, seconds: u64, request: MakeRequest) -> Load {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        ticker.tick().await;
        let req = request(&client, n);
        n += 1;
        tasks.spawn(async move {
            let t = Instant::now();
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    Some(t.elapsed().as_secs_f64() * 1e3)
                }
                _ => None,
            }
        });
    }
    let mut out = Load {
        requests: 0,
        errors: 0,
        latencies_ms: Vec::new(),
        elapsed: started.elapsed(),
    };
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Some(ms)) => {
                out.requests += 1;
                out.latencies_ms.push(ms);
            }
            _ => out.errors += 1,
        }
    }
    out.latencies_ms.sort_by(f64::total_cmp);
    out
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options();
    let tmp = tempfile::tempdir()?;
    std::fs::create_dir_all(tmp.path().join("plugins"))?;
    std::fs::copy(plugins::HELLO, tmp.path().join("plugins/hello.wasm"))?;
    let (_host, url) = start_host(tmp.path())?;
    let db = tmp.path().join("wasmcron.db");
    let client = reqwest::Client::new();
    for i in 0..o.fires {
        let body = serde_json::json!({
            "id": format!("tick{i}"), "plugin": "hello",
            "trigger": {"type": "interval", "every": "1s"},
            "keep_runs": 1000
        });
        let r = client
            .post(format!("{url}/jobs"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            r.status().as_u16() == 201,
            "creating tick{i}: {}",
            r.status()
        );
    }
    // Let the fires settle into their rhythm.
    tokio::time::sleep(Duration::from_secs(3)).await;

    println!(
        "## API load and fire lateness ({} fires/s of `hello`, SQLite, {} s per phase, {} connections)",
        o.fires, o.seconds, o.connections
    );
    println!();
    println!(
        "| phase | requests/s | request p50 | request p99 | errors | fire lateness p50 | fire lateness p99 | fires measured |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");

    let from = now_ms();
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let to = now_ms();
    // Runs due at the end of the window need a moment to start.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = lateness(&db, from, to)?;
    println!(
        "| idle (no API traffic) | - | - | - | - | {:.1} ms | {:.1} ms | {} |",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
        idle.len()
    );

    let fires = o.fires;
    let get_job = |base: String| -> MakeRequest {
        Arc::new(move |c: &reqwest::Client, n: usize| {
            c.get(format!("{base}/jobs/tick{}", n % fires))
        })
    };
    let create_job = |base: String| -> MakeRequest {
        Arc::new(move |c: &reqwest::Client, n: usize| {
            c.post(format!("{base}/jobs")).json(&serde_json::json!({
                "id": format!("load{n}"), "plugin": "hello",
                "trigger": {"type": "interval", "every": "1h"}
            }))
        })
    };
    let phases = [
        (
            format!("`GET /jobs/{{id}}` at a steady {} req/s", o.rate),
            Some(o.rate),
            get_job(url.clone()),
        ),
        ("`GET /jobs/{id}`".to_owned(), None, get_job(url.clone())),
        (
            "`POST /jobs` (new hourly jobs)".to_owned(),
            None,
            create_job(url.clone()),
        ),
    ];
    for (name, rate, request) in phases {
        let from = now_ms();
        let result = match rate {
            Some(rate) => paced(rate, o.seconds, request).await,
            None => load(o.connections, o.seconds, request).await,
        };
        let to = now_ms();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let late = lateness(&db, from, to)?;
        println!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.1} ms | {:.1} ms | {} |",
            result.requests as f64 / result.elapsed.as_secs_f64(),
            percentile(&result.latencies_ms, 0.5),
            percentile(&result.latencies_ms, 0.99),
            result.errors,
            percentile(&late, 0.5),
            percentile(&late, 0.99),
            late.len()
        );
    }
    Ok(())
}
