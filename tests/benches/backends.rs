//! One host on PostgreSQL against one on SQLite (issue 11): recorded runs
//! per second for aligned bursts, and grouped writes of run rows.
//!
//! `cargo bench -p wasmcron-tests --bench backends [-- --jobs 1000 --seconds 10]`
//!
//! Needs PostgreSQL at 127.0.0.1:5432 (`.ci/postgres`); a fresh database
//! is created and dropped. Scenarios, each on SQLite then PostgreSQL:
//! - burst: `--jobs` interval jobs running `plugins/hello`, all due at the
//!   same instant every second for `--seconds`; finished runs recorded per
//!   second of wall time, lateness (start minus scheduled) p50/p99/max;
//! - writes: 10,000 run rows written by 10,000 concurrent one-row
//!   `JobStore::write` calls (what finishing runs do), grouped by the
//!   store's writer; rows per second.

use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmcron::job::JobSpec;
use wasmcron::plugin::{Plugin, PluginRegistry};
use wasmcron::runtime::{Runtime, RuntimeConfig};
use wasmcron::scheduler::{Scheduler, SchedulerConfig, SchedulerParts, SystemClock};
use wasmcron::store::{JobRecord, JobStore, RunRecord, RunStatus, Write};
use wasmcron_tests::stores::{Backend, TestStore};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

async fn scheduler(store: Arc<dyn JobStore>) -> Scheduler {
    let runtime = Runtime::new(RuntimeConfig::default(), store.kv()).expect("runtime");
    let plugins = PluginRegistry::default();
    let cache =
        wasmcron::plugin::CompileCache::open(&wasmcron_tests::test_cache_dir(), runtime.engine())
            .ok();
    plugins.insert(
        Plugin::load_file_cached(
            &runtime,
            std::path::Path::new(wasmcron_tests::plugins::HELLO),
            cache.as_ref(),
        )
        .expect("hello"),
    );
    Scheduler::start(SchedulerParts {
        store,
        runtime: Arc::new(runtime),
        plugins: Arc::new(plugins),
        clock: Arc::new(SystemClock),
        config: SchedulerConfig::default(),
    })
    .await
    .expect("start")
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

struct Burst {
    per_s: f64,
    runs: usize,
    expected: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

async fn burst(store: Arc<dyn JobStore>, jobs: usize, seconds: u64) -> Burst {
    let s = scheduler(store.clone()).await;
    let start_at = Utc::now() + chrono::Duration::seconds(3);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..jobs {
        let s = s.clone();
        let spec: JobSpec = serde_json::from_str(&format!(
            r#"{{"id":"b{i}","plugin":"hello","trigger":{{"type":"interval","every":"1s","start":"{}"}}}}"#,
            start_at.to_rfc3339()
        ))
        .expect("spec");
        set.spawn(async move { s.add_job(spec, false).await.map(|_| ()) });
    }
    while let Some(r) = set.join_next().await {
        r.expect("join").expect("add");
    }
    let stop = start_at + chrono::Duration::seconds(seconds as i64);
    tokio::time::sleep((stop - Utc::now()).to_std().unwrap_or_default()).await;
    s.shutdown(Duration::from_secs(30)).await;
    let wall = (Utc::now() - start_at).num_milliseconds() as f64 / 1000.0;
    let mut late = Vec::new();
    for i in 0..jobs {
        for r in store.runs(&format!("b{i}"), 10_000, 0).await.expect("runs") {
            if let (RunStatus::Finished, Some(st)) = (r.status, r.started_at) {
                late.push((st - r.scheduled_at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
    }
    late.sort_by(f64::total_cmp);
    Burst {
        per_s: late.len() as f64 / wall,
        runs: late.len(),
        expected: jobs * seconds as usize,
        p50: pct(&late, 50.0),
        p99: pct(&late, 99.0),
        max: late.last().copied().unwrap_or(f64::NAN),
    }
}

async fn writes(store: Arc<dyn JobStore>, rows: usize) -> f64 {
    let job = JobRecord {
        spec: serde_json::from_str(
            r#"{"id":"w","plugin":"hello","trigger":{"type":"interval","every":"1h"}}"#,
        )
        .expect("spec"),
        created_at: Utc::now(),
        next_run_time: None,
        paused: false,
        incarnation: "w".into(),
        paused_reason: None,
        failures_from: None,
    };
    store.insert_job(job.clone(), false).await.expect("job");
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..rows {
        let store = store.clone();
        set.spawn(async move {
            let at = Utc::now() + chrono::Duration::milliseconds(i as i64);
            let mut run = RunRecord::pending("w", at, at, 1).of("w");
            run.status = RunStatus::Finished;
            store.write(vec![Write::Run(run)]).await
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("join").expect("write");
    }
    rows as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("backends bench: skipped (run with `cargo bench`)");
        return;
    }
    let (jobs, seconds) = (arg("--jobs", 1000) as usize, arg("--seconds", 10));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    println!(
        "\n{:<10} {:>12} {:>14} {:>22} {:>16}",
        "backend", "runs/s", "runs/due", "lateness p50/p99/max", "rows/s (10k)"
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (b, w) = rt.block_on(async {
            let db = TestStore::new(backend);
            let b = burst(db.open().await, jobs, seconds).await;
            let db = TestStore::new(backend);
            let w = writes(db.open().await, 10_000).await;
            (b, w)
        });
        println!(
            "{:<10} {:>12.0} {:>14} {:>22} {:>16.0}",
            format!("{backend:?}"),
            b.per_s,
            format!("{}/{}", b.runs, b.expected),
            format!("{:.0}/{:.0}/{:.0} ms", b.p50, b.p99, b.max),
            w
        );
    }
}
