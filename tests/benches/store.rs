//! The SQLite store under the loads issue 10 found it failing: kv `set`
//! cost against the number of keys a job holds, kv calls beside a busy
//! writer, and the WAL file's size over a long run at 1,000 runs/s with
//! the API being read.
//!
//! `cargo bench -p wasmcron-tests --bench store [-- --wal-seconds 60 --wal-jobs 1000 --baseline-bin PATH --skip-kv --skip-wal]`
//!
//! 1. kv set cost: median and p99 time of 200 sets of new keys (40-byte
//!    keys, 100-byte values) by one job once it holds 800 / 3,800 /
//!    15,800 keys, on a real SQLite file. Baseline in the same run: the kv
//!    code before this change (copied below as `OldKv`: its own writing
//!    connection, quota by `SUM(length(..))` over the job's rows) on a
//!    file of the old kv table, pre-filled in bulk.
//! 2. kv under write load: 8 tasks record runs as fast as the store takes
//!    them while another job does 2,000 kv sets; per-set latency and
//!    failed sets, ours vs `OldKv` on the same kind of load.
//! 3. WAL growth: the release `wasmcron run` with 1,000 `hello` jobs every
//!    second (1,000 runs/s) on SQLite and an API reader looping over
//!    `GET /jobs/{id}/runs` and `GET /runs/{run_id}`, for `--wal-seconds`
//!    (default 60); the `-wal` and database file sizes every 5 s, then after
//!    SIGTERM. With `--baseline-bin PATH` (a `wasmcron` built from before
//!    this change), the same scenario with that binary first.
//!
//! Everything runs on the machine's shared cores alongside the load it
//! makes; compare rows of one run with each other.

use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasmcron::store::sqlite::SqliteJobStore;
use wasmcron::store::{JobStore, RunRecord, Write};

const QUOTA: i64 = 16 << 20;

/// The kv store as it was before issue 10 (host/src/store/sqlite/kv.rs),
/// kept here as the baseline: a connection of its own, a deferred
/// transaction, the quota summed over all of the job's rows per set.
struct OldKv {
    conn: std::sync::Mutex<Connection>,
}

impl OldKv {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS kv (job_id TEXT NOT NULL, key TEXT NOT NULL,
               value BLOB NOT NULL, PRIMARY KEY (job_id, key)) WITHOUT ROWID;",
        )?;
        Ok(Self {
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn set(&self, job: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction()?;
        let used: i64 = tx.query_row(
            "SELECT COALESCE(SUM(length(key) + length(value)), 0) FROM kv
             WHERE job_id = ?1 AND key != ?2",
            params![job, key],
            |r| r.get(0),
        )?;
        anyhow::ensure!(
            used + (key.len() + value.len()) as i64 <= QUOTA,
            "quota exceeded"
        );
        tx.execute(
            "INSERT OR REPLACE INTO kv (job_id, key, value) VALUES (?1, ?2, ?3)",
            params![job, key, value],
        )?;
        tx.commit()?;
        Ok(())
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * p / 100.0).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn key(i: usize) -> String {
    format!("key-{i:036}")
}

/// Times (µs) of 200 sets through `set`, of new keys from `from` on.
fn time_sets(from: usize, set: &dyn Fn(&str, &[u8]) -> anyhow::Result<()>) -> Vec<f64> {
    let value = [7u8; 100];
    sorted(
        (from..from + 200)
            .map(|i| {
                let t = Instant::now();
                set(&key(i), &value).unwrap_or_else(|e| panic!("set {i}: {e}"));
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    )
}

/// Inserts keys `from..to` in one transaction, past any quota check: the
/// old code's cost per set depends on the rows held, not on how they got
/// there, and setting 16,000 keys through it one by one takes minutes.
fn bulk_fill(conn: &Connection, from: usize, to: usize) -> anyhow::Result<()> {
    conn.execute_batch("BEGIN")?;
    for i in from..to {
        conn.execute(
            "INSERT INTO kv (job_id, key, value) VALUES ('job', ?1, ?2)",
            params![key(i), [7u8; 100].as_slice()],
        )?;
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

fn kv_cost(rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = SqliteJobStore::open(&dir.path().join("new.db"))?;
    let kv = store.kv();
    let old_path = dir.path().join("old.db");
    let old_kv = OldKv::open(&old_path)?;
    let old_fill = Connection::open(&old_path)?;
    println!(
        "\nkv set cost vs keys held (SQLite file; µs per set, 200 sets of new keys once the job holds N-200)"
    );
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "N", "before p50", "before p99", "after p50", "after p99", "p50 x"
    );
    let (mut held_new, mut held_old) = (0, 0);
    for n in [1000, 4000, 16_000] {
        // Ours is filled through its own API, as a guest would.
        for i in held_new..n - 200 {
            kv.set("job", &key(i), &[7u8; 100])?;
        }
        let w = time_sets(n - 200, &|k, v| Ok(kv.set("job", k, v)?));
        held_new = n;
        bulk_fill(&old_fill, held_old, n - 200)?;
        let o = time_sets(n - 200, &|k, v| old_kv.set("job", k, v));
        held_old = n;
        println!(
            "{n:>8} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>8.1}",
            pct(&o, 50.0),
            pct(&o, 99.0),
            pct(&w, 50.0),
            pct(&w, 99.0),
            pct(&o, 50.0) / pct(&w, 50.0)
        );
    }
    drop(store);
    kv_under_load(rt)
}

/// Records runs from 8 tasks as fast as the store takes them until `stop`.
fn write_load(
    rt: &tokio::runtime::Runtime,
    store: Arc<SqliteJobStore>,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|t| {
            let (store, stop, written) = (store.clone(), stop.clone(), written.clone());
            rt.spawn(async move {
                let mut i = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let at = chrono::DateTime::from_timestamp_millis(i).unwrap_or_default();
                    let batch = (0..20)
                        .map(|_| Write::Run(RunRecord::pending(&format!("load{t}"), at, at, 1)))
                        .collect();
                    if store.write(batch).await.is_ok() {
                        written.fetch_add(20, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

fn kv_under_load(rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    println!("\nkv sets beside a busy writer (8 tasks recording runs flat out; 2,000 sets)");
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>14}",
        "", "p50 µs", "p99 µs", "max ms", "failed", "runs written/s"
    );
    for which in ["before", "after"] {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("db");
        let store = Arc::new(SqliteJobStore::open(&path)?);
        let old = OldKv::open(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicUsize::new(0));
        let tasks = write_load(rt, store.clone(), stop.clone(), written.clone());
        std::thread::sleep(Duration::from_millis(500));
        let t0 = Instant::now();
        let (mut lat, mut failed, mut first_error) = (Vec::new(), 0, None);
        for i in 0..2000 {
            let key = format!("k{i}");
            let t = Instant::now();
            let r = if which == "before" {
                old.set("kvjob", &key, b"value")
            } else {
                store.kv().set("kvjob", &key, b"value").map_err(Into::into)
            };
            match r {
                Ok(()) => lat.push(t.elapsed().as_secs_f64() * 1e6),
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = rt.block_on(t);
        }
        let lat = sorted(lat);
        println!(
            "{which:<8} {:>10.0} {:>10.0} {:>10.1} {:>10} {:>14.0}{}",
            pct(&lat, 50.0),
            pct(&lat, 99.0),
            lat.last().copied().unwrap_or(f64::NAN) / 1e3,
            failed,
            written.load(Ordering::Relaxed) as f64 / (secs + 0.5),
            first_error.map_or(String::new(), |e| format!("  (first error: {e})"))
        );
    }
    Ok(())
}

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_host(bin: &Path, dir: &Path, cache: &Path) -> anyhow::Result<(Host, String)> {
    let log = dir.join("host.log");
    let child = Command::new(bin)
        .args(["run", "--log-format", "json", "--listen", "127.0.0.1:0"])
        .arg("--plugins")
        .arg(dir.join("plugins"))
        .arg("--db")
        .arg(format!("sqlite://{}", dir.join("wasmcron.db").display()))
        .arg("--config")
        .arg(dir.join("jobs.toml"))
        .arg("--cache-dir")
        .arg(cache)
        .args(["--shutdown-grace", "10s"])
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

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

struct WalRun {
    /// (seconds since the first fire, wal bytes, db bytes)
    samples: Vec<(u64, u64, u64)>,
    wal_max: u64,
    after_stop: (u64, u64),
    finished_runs: i64,
    api_reads: usize,
    lateness_p50_p99: (f64, f64),
}

/// 1,000 `hello` jobs a second on SQLite with an API reader, for `seconds`.
fn wal_run(
    bin: &Path,
    seconds: u64,
    n: usize,
    cache: &Path,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<WalRun> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("plugins"))?;
    std::fs::copy(
        wasmcron_tests::plugins::HELLO,
        dir.path().join("plugins/hello.wasm"),
    )?;
    // Phases spread over the second, starting once the host is up.
    let start = chrono::Utc::now() + chrono::Duration::seconds(15);
    let mut jobs = String::from("version = 1\n");
    for i in 0..n {
        let at = start + chrono::Duration::microseconds(((2 * i + 1) * 500_000 / n) as i64);
        jobs.push_str(&format!(
            "[[jobs]]\nid = \"j{i}\"\nplugin = \"hello\"\ntrigger = {{ type = \"interval\", every = \"1s\", start = \"{}\" }}\n",
            at.to_rfc3339()
        ));
    }
    std::fs::write(dir.path().join("jobs.toml"), jobs)?;
    let (mut host, base) = start_host(bin, dir.path(), cache)?;
    let db = dir.path().join("wasmcron.db");
    let wal = dir.path().join("wasmcron.db-wal");
    std::thread::sleep((start - chrono::Utc::now()).to_std().unwrap_or_default());
    // The reader: a page of a job's runs, then each of those runs, in a
    // loop, one request at a time.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, base) = (stop.clone(), reads.clone(), base.clone());
        rt.spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let page: serde_json::Value = match client
                    .get(format!("{base}/jobs/j{}/runs?limit=100", i % n))
                    .send()
                    .await
                {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => serde_json::Value::Null,
                };
                reads.fetch_add(1, Ordering::Relaxed);
                for run in page["runs"].as_array().into_iter().flatten().take(5) {
                    if let Some(id) = run["run_id"].as_str()
                        && client.get(format!("{base}/runs/{id}")).send().await.is_ok()
                    {
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
        })
    };
    let t0 = Instant::now();
    let mut samples = Vec::new();
    let mut wal_max = 0;
    while t0.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(250));
        wal_max = wal_max.max(size(&wal));
        let s = t0.elapsed().as_secs();
        if s.is_multiple_of(5) && samples.last().is_none_or(|(last, _, _)| *last != s) {
            samples.push((s, size(&wal), size(&db)));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(reader);
    let pid = host.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    let exit = host.0.wait()?;
    anyhow::ensure!(exit.success(), "the host exited with {exit}");
    // Sizes as the stopped host left them, before anything opens the file.
    let after_stop = (size(&wal), size(&db));
    let conn = Connection::open(&db)?;
    let finished: i64 = conn.query_row(
        "SELECT count(*) FROM runs WHERE status = 'finished'",
        [],
        |r| r.get(0),
    )?;
    let mut late: Vec<f64> = conn
        .prepare("SELECT started_at - scheduled_at FROM runs WHERE started_at IS NOT NULL")?
        .query_map([], |r| r.get::<_, i64>(0))?
        .filter_map(Result::ok)
        .map(|v| v as f64)
        .collect();
    late.sort_by(f64::total_cmp);
    Ok(WalRun {
        samples,
        wal_max,
        after_stop,
        finished_runs: finished,
        api_reads: reads.load(Ordering::Relaxed),
        lateness_p50_p99: (pct(&late, 50.0), pct(&late, 99.0)),
    })
}

fn print_wal(label: &str, r: &WalRun, seconds: u64, jobs: usize) {
    println!("\n{label}: {jobs} hello jobs every second on SQLite with an API reader, {seconds} s");
    println!("{:>6} {:>12} {:>12}", "s", "wal MB", "db MB");
    for (s, wal, db) in &r.samples {
        println!("{s:>6} {:>12.1} {:>12.1}", mb(*wal), mb(*db));
    }
    println!(
        "largest WAL seen {:.1} MB; after a clean stop: wal {:.1} MB, db {:.1} MB",
        mb(r.wal_max),
        mb(r.after_stop.0),
        mb(r.after_stop.1)
    );
    println!(
        "finished runs {} ({:.0}/s), API reads {} ({:.0}/s), fire lateness p50/p99 {:.0}/{:.0} ms",
        r.finished_runs,
        r.finished_runs as f64 / seconds as f64,
        r.api_reads,
        r.api_reads as f64 / seconds as f64,
        r.lateness_p50_p99.0,
        r.lateness_p50_p99.1
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("store bench: skipped (run with `cargo bench`)");
        return Ok(());
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = value("--wal-seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !args.iter().any(|a| a == "--skip-kv") {
        kv_cost(&rt)?;
    }
    if !args.iter().any(|a| a == "--skip-wal") {
        let jobs: usize = value("--wal-jobs")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        // One compile cache for both hosts: their start is not measured.
        let cache = tempfile::tempdir()?;
        if let Some(base) = value("--baseline-bin") {
            let r = wal_run(&PathBuf::from(&base), seconds, jobs, cache.path(), &rt)?;
            print_wal(&format!("before ({base})"), &r, seconds, jobs);
        }
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_wasmcron"));
        let r = wal_run(&bin, seconds, jobs, cache.path(), &rt)?;
        print_wal("after (this build)", &r, seconds, jobs);
    }
    Ok(())
}
