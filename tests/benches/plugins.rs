//! Plugin loading: compiling versus the compile cache.
//!
//! `cargo bench -p wasmcron-tests --bench plugins [-- --startup-plugins N]`
//!
//! 1. Per plugin, the median time to load it (checks, compile, link,
//!    `InstancePre`) with no cache, and from a warm cache; interleaved in
//!    rounds so machine noise hits both alike. Reports the ratio.
//! 2. `wasmcron run` start-up with N distinct plugins (default 50) in its
//!    folder: time from spawn to the "wasmcron running" log line, with an
//!    empty cache (cold) and with the cache the cold start left (warm).
//!    The N plugins are copies of `hello` made distinct by a custom section
//!    each, so each has its own hash and cache entry but costs the same to
//!    compile.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmcron::plugin::{CompileCache, CompileSource, Plugin};
use wasmcron::runtime::{Runtime, RuntimeConfig};
use wasmcron::store::MemoryKv;
use wasmcron_tests::plugins;

const ROUNDS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let mut startup_plugins = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--startup-plugins" {
            startup_plugins = args.next().and_then(|n| n.parse().ok()).unwrap_or(50);
        }
    }
    per_plugin()?;
    startup(startup_plugins)?;
    Ok(())
}

fn per_plugin() -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig::default(), Arc::new(MemoryKv::default()))
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let tmp = tempfile::tempdir()?;
    let cache = CompileCache::open(&tmp.path().join("cache"), runtime.engine())?;
    println!("## Load one plugin: compile vs compile cache (median of {ROUNDS})");
    println!();
    println!("| plugin | size | compile | from cache | ratio |");
    println!("|---|---:|---:|---:|---:|");
    for (name, path) in [
        ("hello", plugins::HELLO),
        ("counter", plugins::COUNTER),
        ("cleanup", plugins::CLEANUP),
        ("http_ping", plugins::HTTP_PING),
        ("probe", plugins::PROBE),
    ] {
        let bytes = std::fs::read(path)?;
        // Fill the cache once.
        let first = Plugin::load_bytes_cached(&runtime, name.into(), &bytes, Some(&cache))?;
        anyhow::ensure!(first.compiled() == CompileSource::CompiledAndCached);
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let p = Plugin::load_bytes(&runtime, name.into(), &bytes)?;
            cold.push(t.elapsed());
            anyhow::ensure!(p.compiled() == CompileSource::Compiled);
            let t = Instant::now();
            let p = Plugin::load_bytes_cached(&runtime, name.into(), &bytes, Some(&cache))?;
            warm.push(t.elapsed());
            anyhow::ensure!(p.compiled() == CompileSource::Cache);
        }
        let (c, w) = (median(cold), median(warm));
        println!(
            "| {name} | {} KiB | {:.1} ms | {:.2} ms | {:.3}x |",
            bytes.len() / 1024,
            ms(c),
            ms(w),
            w.as_secs_f64() / c.as_secs_f64()
        );
    }
    println!();
    Ok(())
}

/// `bytes` plus a custom section carrying `tag`: a different file (and
/// hash) with the same code.
fn tagged(bytes: &[u8], tag: usize) -> Vec<u8> {
    let name = b"wasmcron-bench";
    let payload = tag.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push(u8::try_from(size).unwrap_or(u8::MAX)); // < 128: one LEB byte
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn time_to_running(folder: &Path, cache: &Path, log: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmcron"))
        .args(["run", "--log-format", "json", "--db", "memory", "--plugins"])
        .arg(folder)
        .arg("--cache-dir")
        .arg(cache)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let result = loop {
        if std::fs::read_to_string(log)?.contains("wasmcron running") {
            break Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            break Err(anyhow::anyhow!("host did not start"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn startup(n: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let folder = tmp.path().join("plugins");
    std::fs::create_dir_all(&folder)?;
    let hello = std::fs::read(plugins::HELLO)?;
    for i in 0..n {
        std::fs::write(folder.join(format!("p{i:03}.wasm")), tagged(&hello, i))?;
    }
    let log = tmp.path().join("host.log");
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let cache = tmp.path().join(format!("cache-{round}"));
        cold.push(time_to_running(&folder, &cache, &log)?);
        let text = std::fs::read_to_string(&log)?;
        anyhow::ensure!(
            text.matches("compiled-and-cached").count() == n,
            "expected {n} compiles:\n{text}"
        );
        warm.push(time_to_running(&folder, &cache, &log)?);
        let text = std::fs::read_to_string(&log)?;
        anyhow::ensure!(
            text.matches("\"compiled\":\"cache\"").count() == n,
            "expected {n} cache hits:\n{text}"
        );
    }
    let (c, w) = (median(cold), median(warm));
    println!("## `wasmcron run` start-up with {n} plugins (median of 3)");
    println!();
    println!("| cache | time to \"wasmcron running\" | per plugin |");
    println!("|---|---:|---:|");
    println!(
        "| cold (empty) | {:.0} ms | {:.1} ms |",
        ms(c),
        ms(c) / n as f64
    );
    println!("| warm | {:.0} ms | {:.1} ms |", ms(w), ms(w) / n as f64);
    println!();
    println!("warm/cold: {:.3}x", w.as_secs_f64() / c.as_secs_f64());
    Ok(())
}
