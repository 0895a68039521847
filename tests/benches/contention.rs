//! Healthy jobs beside runaway guests, on the real binary.
//!
//! `cargo bench -p wasmcron-tests --bench contention [-- --seconds 20 --jobs 1000 --bin PATH]`
//!
//! Each scenario starts `wasmcron run` (SQLite, default `--workers`) with
//! N healthy `hello` jobs on a 1 s interval, all aligned to the same whole
//! second (the hard case: N fires at one instant, every second), runs for
//! S seconds, stops it with SIGTERM and reads the run history from the
//! database file:
//! - alone: only the healthy jobs;
//! - hostile: the same beside 10 `spin` jobs (burn fuel until their 30 s
//!   timeout, a new one as soon as one ends), 3 `slow` jobs (sleep through
//!   their 30 s timeout), and a `panic` job failing every second whose
//!   listener, `stall`, computes through each delivery's 10 s timeout.
//!
//! Per scenario: the healthy runs' lateness (`started_at - scheduled_at`,
//! p50/p99/max), their fires recorded `skipped` (previous run still in
//! flight, which for a 2 ms guest means it had not got a worker) and
//! `missed`, and the hostile/alone ratio of p50 and p99 from the same
//! invocation. `--bin PATH` measures another build of the binary too
//! (e.g. main's), back to back with this one.

use std::path::Path;
use std::time::Duration;
use wasmcron_tests::host::{Host, query, setup};

/// Healthy job ids are `h0000`..; they alone are measured.
fn jobs_toml(healthy: usize, hostile: bool, start: &str) -> String {
    let mut toml = String::from("version = 1\n");
    for i in 0..healthy {
        toml.push_str(&format!(
            "[[jobs]]\nid = \"h{i:04}\"\nplugin = \"hello\"\nkeep_runs = 100000\n\
             trigger = {{ type = \"interval\", every = \"1s\", start = \"{start}\" }}\n"
        ));
    }
    if hostile {
        for i in 0..10 {
            toml.push_str(&format!(
                "[[jobs]]\nid = \"spin{i}\"\nplugin = \"spin\"\n\
                 trigger = {{ type = \"interval\", every = \"1s\", start = \"{start}\" }}\n\
                 limits = {{ timeout = \"30s\" }}\n"
            ));
        }
        // Fails every second; each failure keeps its listener computing
        // for the listener's 10 s timeout.
        toml.push_str(&format!(
            "[[jobs]]\nid = \"fail\"\nplugin = \"panic\"\nlisteners = [{{ plugin = \"stall\" }}]\n\
             trigger = {{ type = \"interval\", every = \"1s\", start = \"{start}\" }}\n"
        ));
        for i in 0..3 {
            toml.push_str(&format!(
                "[[jobs]]\nid = \"slow{i}\"\nplugin = \"slow\"\nargs = {{ millis = 60000 }}\n\
                 trigger = {{ type = \"interval\", every = \"1s\", start = \"{start}\" }}\n\
                 limits = {{ timeout = \"30s\" }}\n"
            ));
        }
    }
    toml
}

#[derive(Debug)]
struct Figures {
    p50: f64,
    p99: f64,
    max: f64,
    runs: usize,
    skipped: usize,
    missed: usize,
    /// Hostile runs demoted to the slow lane (from the host's log).
    demoted: usize,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

/// Waits (5 min at most) for the host to listen: compiling plugins with a
/// debug build on a loaded machine takes a while.
fn wait_listening(host: &Host) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !host.log().contains("HTTP API listening") {
        assert!(std::time::Instant::now() < deadline, "{}", host.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Compiles every plugin the scenarios use into `cache` once, so each
/// scenario's host starts in about a second.
fn warm_cache(bin: &str, cache: &Path) {
    let dir = setup(
        "version = 1\n",
        &["hello", "spin", "slow", "panic", "stall"],
    );
    std::os::unix::fs::symlink(cache, dir.path().join("cache")).expect("cache link");
    let mut host = Host::start(bin, dir.path(), &[]);
    wait_listening(&host);
    host.kill();
}

fn scenario(bin: &str, cache: &Path, healthy: usize, hostile: bool, seconds: i64) -> Figures {
    // Aligned to a whole second far enough ahead for the host to start and
    // load its (cached) plugins; the first two seconds are a warm-up, not
    // counted.
    let now = chrono::Utc::now().timestamp();
    let start = now + 15;
    let start_text = chrono::DateTime::from_timestamp(start, 0)
        .expect("time")
        .to_rfc3339();
    let mut plugins = vec!["hello"];
    if hostile {
        plugins.extend(["spin", "slow", "panic", "stall"]);
    }
    let dir = setup(&jobs_toml(healthy, hostile, &start_text), &plugins);
    std::os::unix::fs::symlink(cache, dir.path().join("cache")).expect("cache link");
    let host = Host::start(bin, dir.path(), &["--shutdown-grace", "1s"]);
    wait_listening(&host);
    let stop = start + 2 + seconds;
    let wait = (stop * 1000 - chrono::Utc::now().timestamp_millis()).max(0);
    std::thread::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0)));
    host.signal("-TERM");
    let log = host.log();
    let demoted = log.matches("demoted to the slow lane").count();
    let _ = host.wait();
    let (from, to) = ((start + 2) * 1000, (stop - 1) * 1000);
    let rows = query(
        dir.path(),
        &format!(
            "SELECT status, scheduled_at, started_at FROM runs \
             WHERE job_id GLOB 'h[0-9]*' AND scheduled_at >= {from} AND scheduled_at < {to}"
        ),
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        },
    );
    let mut late = Vec::new();
    let (mut skipped, mut missed) = (0, 0);
    for (status, scheduled, started) in rows {
        match (status.as_str(), started) {
            ("finished", Some(s)) => late.push((s - scheduled) as f64),
            ("skipped", _) => skipped += 1,
            ("missed", _) => missed += 1,
            _ => {}
        }
    }
    late.sort_by(f64::total_cmp);
    Figures {
        p50: pct(&late, 50.0),
        p99: pct(&late, 99.0),
        max: late.last().copied().unwrap_or(f64::NAN),
        runs: late.len(),
        skipped,
        missed,
        demoted,
    }
}

fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("contention bench: skipped (run with `cargo bench`)");
        return;
    }
    let seconds: i64 = arg("--seconds").unwrap_or(20);
    let healthy: usize = arg("--jobs").unwrap_or(1000);
    let mut bins = vec![(
        "this build".to_owned(),
        env!("CARGO_BIN_EXE_wasmcron").to_owned(),
    )];
    if let Some(other) = arg::<String>("--bin") {
        bins.insert(0, (other.clone(), other));
    }
    println!(
        "{healthy} healthy `hello` jobs every 1 s (aligned), {seconds} s measured per scenario; \
         lateness in ms"
    );
    println!(
        "{:<28} {:<8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8} {:>10}",
        "binary",
        "scenario",
        "runs",
        "p50",
        "p99",
        "max",
        "skipped",
        "missed",
        "demoted",
        "p50/p99 x"
    );
    for (label, bin) in &bins {
        let cache = tempfile::tempdir().expect("cache dir");
        warm_cache(bin, cache.path());
        let alone = scenario(bin, cache.path(), healthy, false, seconds);
        let hostile = scenario(bin, cache.path(), healthy, true, seconds);
        let short: String = label.chars().rev().take(28).collect::<String>();
        let short: String = short.chars().rev().collect();
        for (name, f) in [("alone", &alone), ("hostile", &hostile)] {
            println!(
                "{:<28} {:<8} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8} {:>7} {:>8} {:>10}",
                short,
                name,
                f.runs,
                f.p50,
                f.p99,
                f.max,
                f.skipped,
                f.missed,
                f.demoted,
                format!(
                    "{:.1}/{:.1}",
                    f.p50 / alone.p50.max(1.0),
                    f.p99 / alone.p99.max(1.0)
                )
            );
        }
    }
}
