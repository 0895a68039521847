//! Plugin loading: compiling versus the compile cache.
//!
//! `cargo bench -p wasmcron-tests --bench plugins [-- --startup-plugins N]`
//!
//! 1. Per plugin, the median time to load it (checks, compile, link,
//!    `InstancePre`) with no cache, and from a warm cache; interleaved in
//!    rounds so machine noise hits both alike. Reports the ratio.
//! 2. `wasmcron run` start-up with N distinct plugins (default 50) in its
//!    folder: time from spawn to the "wasmcron running" log line and to
//!    the last of the N "plugin loaded" lines (plugins compile in the
//!    background, after start-up), with an empty cache (cold) and with the
//!    cache the cold start left (warm). The N plugins are copies of
//!    `hello` made distinct by a custom section each, so each has its own
//!    hash and cache entry but costs the same to compile.
//! 3. `wasmcron run` with a plugin that is expensive to compile in its
//!    folder beside `hello` and a job firing `hello` every second: time
//!    from spawn to `/healthz` answering and to that job's first finished
//!    run. With `WASMCRON_BASELINE_BIN=/path/to/an/older/wasmcron` the same
//!    is timed for that binary too (the "before" column).

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
    slow_startup()?;
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

/// Spawns `bin run` with `args`, logging to `log`; killed when dropped.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &str, args: &[&std::ffi::OsStr], log: &Path) -> anyhow::Result<Spawned> {
    Ok(Spawned(
        Command::new(bin)
            .args(["run", "--log-format", "json"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()?,
    ))
}

/// Polls until `done` holds for the log's text, up to 10 minutes; the time
/// since `started`.
fn until_log(
    log: &Path,
    started: Instant,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<Duration> {
    loop {
        if done(&std::fs::read_to_string(log)?) {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the host never got there:\n{}",
            std::fs::read_to_string(log)?
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Time to "wasmcron running" and to `n` "plugin loaded" lines.
fn time_to_running(
    folder: &Path,
    cache: &Path,
    log: &Path,
    n: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let _host = spawn(
        env!("CARGO_BIN_EXE_wasmcron"),
        &[
            "--db".as_ref(),
            "memory".as_ref(),
            "--no-api".as_ref(),
            "--plugins".as_ref(),
            folder.as_os_str(),
            "--cache-dir".as_ref(),
            cache.as_os_str(),
        ],
        log,
    )?;
    let running = until_log(log, started, |t| t.contains("wasmcron running"))?;
    let loaded = until_log(log, started, |t| {
        t.matches("\"plugin loaded\"").count() >= n
    })?;
    Ok((running, loaded))
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
        cold.push(time_to_running(&folder, &cache, &log, n)?);
        let text = std::fs::read_to_string(&log)?;
        anyhow::ensure!(
            text.matches("compiled-and-cached").count() == n,
            "expected {n} compiles:\n{text}"
        );
        warm.push(time_to_running(&folder, &cache, &log, n)?);
        let text = std::fs::read_to_string(&log)?;
        anyhow::ensure!(
            text.matches("\"compiled\":\"cache\"").count() == n,
            "expected {n} cache hits:\n{text}"
        );
    }
    let med = |v: &[(Duration, Duration)], loaded: bool| {
        median(v.iter().map(|p| if loaded { p.1 } else { p.0 }).collect())
    };
    println!("## `wasmcron run` start-up with {n} plugins (median of 3)");
    println!();
    println!("| cache | time to \"wasmcron running\" | time to all loaded | per plugin |");
    println!("|---|---:|---:|---:|");
    for (name, v) in [("cold (empty)", &cold), ("warm", &warm)] {
        let (r, l) = (med(v, false), med(v, true));
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.1} ms |",
            ms(r),
            ms(l),
            ms(l) / n as f64
        );
    }
    println!();
    Ok(())
}

/// The API's address once the host has logged it.
fn api_addr(log: &Path, started: Instant) -> anyhow::Result<String> {
    until_log(log, started, |t| t.contains("HTTP API listening"))?;
    for line in std::fs::read_to_string(log)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if let Some(addr) = v["fields"]["addr"].as_str() {
            return Ok(addr.to_owned());
        }
    }
    anyhow::bail!("no API address in the log")
}

fn healthz_ok(addr: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200")
}

/// Time to `/healthz` answering and to the first finished run of `tick`,
/// for `bin` started on `dir` (a fresh cache each time: the heavy plugin
/// is never a cache hit, `hello` compiles too).
fn slow_start_once(bin: &str, dir: &Path, round: usize) -> anyhow::Result<(Duration, Duration)> {
    let log = dir.join(format!("host-{round}.log"));
    let cache = dir.join(format!("cache-{round}"));
    let folder = dir.join("plugins");
    let jobs = dir.join("jobs.toml");
    let started = Instant::now();
    let _host = spawn(
        bin,
        &[
            "--db".as_ref(),
            "memory".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--plugins".as_ref(),
            folder.as_os_str(),
            "--config".as_ref(),
            jobs.as_os_str(),
            "--cache-dir".as_ref(),
            cache.as_os_str(),
        ],
        &log,
    )?;
    let addr = api_addr(&log, started)?;
    while !healthz_ok(&addr) {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "no /healthz");
        std::thread::sleep(Duration::from_millis(2));
    }
    let healthz = started.elapsed();
    let fired = until_log(&log, started, |t| {
        t.lines()
            .any(|l| l.contains("\"run finished\"") && l.contains("\"job\":\"tick\""))
    })?;
    Ok((healthz, fired))
}

fn slow_startup() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let folder = tmp.path().join("plugins");
    std::fs::create_dir_all(&folder)?;
    std::fs::copy(plugins::HELLO, folder.join("hello.wasm"))?;
    let heavy = wasmcron_tests::slow::slow_component(HEAVY.0, HEAVY.1, 7);
    std::fs::write(folder.join("heavy.wasm"), &heavy)?;
    std::fs::write(
        tmp.path().join("jobs.toml"),
        "version = 1\n[[jobs]]\nid = \"tick\"\nplugin = \"hello\"\n\
         trigger = { type = \"interval\", every = \"1s\" }\n",
    )?;
    let baseline = std::env::var("WASMCRON_BASELINE_BIN").ok();
    let ours = env!("CARGO_BIN_EXE_wasmcron");
    let (mut after, mut before) = (Vec::new(), Vec::new());
    for round in 0..3 {
        after.push(slow_start_once(ours, tmp.path(), round)?);
        if let Some(bin) = &baseline {
            before.push(slow_start_once(bin, tmp.path(), 100 + round)?);
        }
    }
    println!(
        "## `wasmcron run` with a plugin that is expensive to compile ({} KiB) in its folder (median of 3)",
        heavy.len() / 1024
    );
    println!();
    println!(
        "| binary | time to `/healthz` | time to the first run of a `hello` job (every 1 s) |"
    );
    println!("|---|---:|---:|");
    let row = |name: &str, v: &[(Duration, Duration)]| {
        let h = median(v.iter().map(|p| p.0).collect());
        let f = median(v.iter().map(|p| p.1).collect());
        println!("| {name} | {:.0} ms | {:.0} ms |", ms(h), ms(f));
        (h, f)
    };
    let (h, f) = row("this build", &after);
    if !before.is_empty() {
        let (bh, bf) = row("baseline (`WASMCRON_BASELINE_BIN`)", &before);
        println!();
        println!(
            "this build / baseline: `/healthz` {:.3}x, first run {:.3}x",
            h.as_secs_f64() / bh.as_secs_f64(),
            f.as_secs_f64() / bf.as_secs_f64()
        );
    }
    println!();
    Ok(())
}

/// Functions and live values of the generated heavy plugin.
const HEAVY: (u32, u32) = (4, 2000);
