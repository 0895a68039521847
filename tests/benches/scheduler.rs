//! Scheduler throughput, lateness, store speed and memory, next to
//! APScheduler 3.10 doing the same in the same run.
//!
//! `cargo bench -p wasmcron-tests --bench scheduler [-- --seconds 10]`
//!
//! Scenarios (ours run sandboxed `plugins/hello` on SQLite; APScheduler runs
//! a native no-op function, its default memory store unless said):
//! - lateness: N interval jobs every 1 s for S seconds, their phases spread
//!   evenly over the second (N runs/s); per run, start time minus scheduled
//!   time (p50/p99/max), and fires lost (neither run nor recorded as
//!   skipped/missed);
//! - recorded runs/s on SQLite (ours: finished runs committed per second in
//!   the 10k scenario; APScheduler: executed fires per second with its
//!   SQLAlchemy SQLite store and 1,000 jobs);
//! - adding 100k jobs; restarting with 100k persisted jobs (ours);
//! - memory per idle job (RSS growth over 100k jobs / 100k).
//!
//! The APScheduler half needs `python3` with `venv`; the bench installs
//! APScheduler into a venv itself (tests/benches/apscheduler/run.sh).

/// The allocator the `wasmcron` binary ships with (host/src/main.rs), so
/// the bench measures what the binary does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmcron::job::JobSpec;
use wasmcron::plugin::{Plugin, PluginRegistry};
use wasmcron::runtime::{Runtime, RuntimeConfig};
use wasmcron::scheduler::{Scheduler, SchedulerConfig, SchedulerParts, SystemClock};
use wasmcron::store::sqlite::SqliteJobStore;
use wasmcron::store::{JobStore, MemoryJobStore, RunStatus};

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn spec(id: &str, every: &str, start: Option<&str>) -> JobSpec {
    let start = start.map_or(String::new(), |s| format!(r#","start":"{s}""#));
    serde_json::from_str(&format!(
        r#"{{"id":"{id}","plugin":"hello","trigger":{{"type":"interval","every":"{every}"{start}}}}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn scheduler(store: Arc<dyn JobStore>) -> Scheduler {
    let runtime = Runtime::new(RuntimeConfig::default(), store.kv()).expect("runtime");
    let plugins = PluginRegistry::default();
    plugins.insert(
        Plugin::load_file(
            &runtime,
            std::path::Path::new(wasmcron_tests::plugins::HELLO),
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

async fn add_all(s: &Scheduler, specs: Vec<JobSpec>) {
    let mut set = tokio::task::JoinSet::new();
    for chunk in specs.chunks(1000) {
        for spec in chunk.iter().cloned() {
            let s = s.clone();
            set.spawn(async move { s.add_job(spec, false).await.map(|_| ()) });
        }
        while let Some(r) = set.join_next().await {
            r.expect("join").expect("add");
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

struct Lateness {
    p50: f64,
    p99: f64,
    max: f64,
    runs: usize,
    expected: usize,
    not_run: usize,
    lost: usize,
    recorded_per_s: f64,
}

async fn lateness(n: usize, seconds: u64) -> Lateness {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn JobStore> =
        Arc::new(SqliteJobStore::open(&dir.path().join("bench.db")).expect("db"));
    let s = scheduler(store.clone()).await;
    // Job i fires at start + (i + 0.5)/n s + k s: n fires spread evenly over
    // every second (n runs/s), `seconds` fires each before `stop`.
    let start_at = Utc::now() + chrono::Duration::seconds(5);
    let specs = (0..n)
        .map(|i| {
            let offset = chrono::Duration::microseconds(((2 * i + 1) * 500_000 / n) as i64);
            spec(
                &format!("j{i}"),
                "1s",
                Some(&(start_at + offset).to_rfc3339()),
            )
        })
        .collect();
    add_all(&s, specs).await;
    let stop = start_at + chrono::Duration::seconds(seconds as i64);
    tokio::time::sleep((stop - Utc::now()).to_std().unwrap_or_default()).await;
    s.shutdown(Duration::from_secs(10)).await;
    let wall = (Utc::now() - start_at).num_milliseconds() as f64 / 1000.0;
    let mut late = Vec::new();
    let (mut runs, mut not_run) = (0, 0);
    // Count fires due at least 200 ms before the stop: later ones may not
    // have been taken when firing stopped (they would be handled as missed
    // at the next start), which is not a loss.
    let cutoff = stop - chrono::Duration::milliseconds(200);
    let mut expected = 0;
    let mut fired_per_job = Vec::with_capacity(n);
    for i in 0..n {
        let offset = chrono::Duration::microseconds(((2 * i + 1) * 500_000 / n) as i64);
        expected += (0..seconds as i64)
            .filter(|k| start_at + offset + chrono::Duration::seconds(*k) < cutoff)
            .count();
        let recs: Vec<_> = store
            .runs(&format!("j{i}"), 10_000, 0)
            .await
            .expect("runs")
            .into_iter()
            .filter(|r| r.scheduled_at < cutoff)
            .collect();
        fired_per_job.push(recs.len());
        for r in recs {
            match (r.status, r.started_at) {
                (RunStatus::Finished, Some(st)) => {
                    runs += 1;
                    late.push(
                        (st - r.scheduled_at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                    );
                }
                (RunStatus::Missed | RunStatus::Skipped, _) => not_run += 1,
                _ => {}
            }
        }
    }
    late.sort_by(f64::total_cmp);
    let recorded: usize = fired_per_job.iter().sum();
    Lateness {
        p50: pct(&late, 50.0),
        p99: pct(&late, 99.0),
        max: late.last().copied().unwrap_or(f64::NAN),
        runs,
        expected,
        not_run,
        lost: expected.saturating_sub(recorded),
        recorded_per_s: runs as f64 / wall,
    }
}

fn aps() -> Option<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/apscheduler/run.sh");
    let seconds = seconds().to_string();
    let out = std::process::Command::new("bash")
        .args([script, "--seconds", &seconds])
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "APScheduler baseline failed ({}); reporting ours only",
            out.status
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn seconds() -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(10)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("scheduler bench: skipped (run with `cargo bench`)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let secs = seconds();
    let ours = rt.block_on(async {
        let l1k = lateness(1000, secs).await;
        let l10k = lateness(10_000, secs).await;

        // Adding 100k jobs and the memory they take (memory store).
        let s = scheduler(Arc::new(MemoryJobStore::default())).await;
        let specs: Vec<JobSpec> = (0..100_000)
            .map(|i| spec(&format!("m{i}"), "1h", None))
            .collect();
        let before = rss_bytes();
        let t = Instant::now();
        add_all(&s, specs.clone()).await;
        let add_mem = t.elapsed();
        let per_job = (rss_bytes().saturating_sub(before)) as f64 / 100_000.0;
        s.shutdown(Duration::from_secs(1)).await;

        // The same on SQLite, then a restart that loads them all.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bench.db");
        let store: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open(&path).expect("db"));
        let s = scheduler(store).await;
        let before = rss_bytes();
        let t = Instant::now();
        add_all(&s, specs).await;
        let add_sqlite = t.elapsed();
        let per_job_sqlite = (rss_bytes().saturating_sub(before)) as f64 / 100_000.0;
        s.shutdown(Duration::from_secs(1)).await;
        let t = Instant::now();
        let store: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open(&path).expect("db"));
        let s = scheduler(store).await;
        let restart = t.elapsed();
        assert_eq!(s.jobs().len(), 100_000);
        s.shutdown(Duration::from_secs(1)).await;
        (
            l1k,
            l10k,
            add_mem,
            per_job,
            add_sqlite,
            per_job_sqlite,
            restart,
        )
    });
    let (l1k, l10k, add_mem, per_job, add_sqlite, per_job_sqlite, restart) = ours;
    let aps = aps();
    let get = |path: &[&str]| -> String {
        let mut v = aps.as_ref();
        for p in path {
            v = v.and_then(|x| x.get(*p));
        }
        match v {
            Some(serde_json::Value::Number(n)) => format!("{:.1}", n.as_f64().unwrap_or(f64::NAN)),
            Some(other) => other.to_string(),
            None => "n/a".into(),
        }
    };
    println!(
        "\nwasmcron vs APScheduler {} (same machine, same run; {secs} s per lateness scenario)",
        get(&["apscheduler"])
    );
    println!(
        "{:<44} {:>22} {:>22}",
        "scenario", "wasmcron (sandboxed)", "APScheduler (native)"
    );
    for (label, l, key) in [
        ("1,000 jobs every 1 s", &l1k, "lateness_1k"),
        ("10,000 jobs every 1 s", &l10k, "lateness_10k"),
    ] {
        println!(
            "{:<44} {:>22} {:>22}",
            format!("{label}: lateness p50/p99/max ms"),
            format!("{:.1}/{:.1}/{:.1}", l.p50, l.p99, l.max),
            format!(
                "{}/{}/{}",
                get(&[key, "p50_ms"]),
                get(&[key, "p99_ms"]),
                get(&[key, "max_ms"])
            )
        );
        println!(
            "{:<44} {:>22} {:>22}",
            format!("{label}: runs / fires due"),
            format!("{}/{}", l.runs, l.expected),
            format!("{}/{}", get(&[key, "executed"]), get(&[key, "expected"]))
        );
        println!(
            "{:<44} {:>22} {:>22}",
            format!("{label}: not run (recorded) / lost"),
            format!("{}/{}", l.not_run, l.lost),
            format!("{}+{}/?", get(&[key, "missed"]), get(&[key, "skipped"]))
        );
    }
    println!(
        "{:<44} {:>22} {:>22}",
        "recorded runs/s on SQLite",
        format!("{:.0}", l10k.recorded_per_s),
        get(&["sqlite", "runs_per_second"])
    );
    println!(
        "{:<44} {:>22} {:>22}",
        "add 100k jobs (memory store), s",
        format!("{:.2}", add_mem.as_secs_f64()),
        get(&["add", "seconds"])
    );
    println!(
        "{:<44} {:>22} {:>22}",
        "memory per idle job (memory store), bytes",
        format!("{per_job:.0}"),
        get(&["add", "bytes_per_job"])
    );
    println!(
        "{:<44} {:>22} {:>22}",
        "memory per idle job (SQLite store), bytes",
        format!("{per_job_sqlite:.0}"),
        "n/a"
    );
    println!(
        "{:<44} {:>22} {:>22}",
        "add 100k jobs (SQLite), s",
        format!("{:.2}", add_sqlite.as_secs_f64()),
        "n/a"
    );
    println!(
        "{:<44} {:>22} {:>22}",
        "restart with 100k persisted jobs (SQLite), s",
        format!("{:.2}", restart.as_secs_f64()),
        "n/a"
    );
}
