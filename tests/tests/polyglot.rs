//! Jobs written in Python and JavaScript (issue 16): `plugins/hello-py`
//! and `plugins/hello-js`, built by the tests' build script with
//! componentize-py and componentize-js, run by the real binary as
//! `wasmcron plugin run` and as jobs of a real host: hello's output, a
//! retryable error retried and a permanent one not, kv kept across runs and
//! a restart, and an endless loop stopped by fuel and by the timeout.
//!
//! Without those toolchains the tests print `SKIPPED` and pass, unless
//! `WASMCRON_REQUIRE_POLYGLOT=1` (CI sets it, after `.ci/polyglot` installs
//! them), when they fail saying what is missing.

use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use wasmcron_tests::host::{Host, count, eventually_within, query};
use wasmcron_tests::plugins;

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

/// An 18 MB component compiled by a debug build of cranelift on a loaded
/// 2-core machine takes minutes, far past the 60 s default.
const COMPILE_TIMEOUT: &str = "900s";

/// How long a host may take to load a plugin before a test gives up: a
/// safety net, not a performance bound (its compile cache is prewarmed, so
/// this is milliseconds unless the cache was refused).
const COMPILE_WAIT: Duration = Duration::from_secs(1800);

/// The built plugin, or `None` after a `SKIPPED` line saying why (the build
/// script's notes about `tool`) when its toolchain is missing.
///
/// # Panics
/// When it is missing and `WASMCRON_REQUIRE_POLYGLOT=1`.
fn plugin(path: Option<&'static str>, what: &str, tool: &str) -> Option<&'static str> {
    if path.is_some() {
        return path;
    }
    let why: Vec<&str> = plugins::POLYGLOT_NOTES
        .iter()
        .copied()
        .filter(|n| n.contains(tool))
        .collect();
    let why = why.join("; ");
    assert!(
        std::env::var("WASMCRON_REQUIRE_POLYGLOT").as_deref() != Ok("1"),
        "{what} was not built and WASMCRON_REQUIRE_POLYGLOT=1: {why} (.ci/polyglot installs both toolchains)"
    );
    // Straight to stderr: the test harness swallows the `eprintln!` of a
    // passing test, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n******** SKIPPED: {what} was not built: {why}. Set WASMCRON_REQUIRE_POLYGLOT=1 to fail instead. ********\n"
    );
    None
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn wasmcron(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

/// `wasmcron plugin run FILE --args '{"name":"CLI"}'`: hello's output, its
/// log line with the job id and attempt, what it printed, exit 0.
fn plugin_run_says_hello(file: &str) {
    let out = wasmcron(&[
        "plugin",
        "run",
        file,
        "--json",
        "--args",
        r#"{"name":"CLI"}"#,
        "--compile-timeout",
        COMPILE_TIMEOUT,
        // The tests' shared compile cache: a debug build of cranelift takes
        // minutes per Python or JavaScript component, once per build.
        "--cache-dir",
        &wasmcron_tests::test_cache_dir().display().to_string(),
    ]);
    assert!(out.status.success(), "{file}: {}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{file}: not JSON ({e}): {}", text(&out)));
    assert_eq!(report["outcome"]["kind"], "succeeded", "{report}");
    assert_eq!(report["outcome"]["output"], "Hello, CLI!", "{report}");
    let logs = report["logs"].to_string();
    assert!(
        logs.contains("saying hello to CLI (job cli, attempt 1)"),
        "{logs}"
    );
    assert!(logs.contains("hello from stdout"), "{logs}");
}

#[test]
fn hello_py_runs_with_plugin_run() {
    if let Some(file) = plugin(plugins::HELLO_PY, "hello-py", "componentize-py") {
        plugin_run_says_hello(file);
    }
}

#[test]
fn hello_js_runs_with_plugin_run() {
    if let Some(file) = plugin(plugins::HELLO_JS, "hello-js", "componentize-js") {
        plugin_run_says_hello(file);
    }
}

/// The jobs of [`scheduled_by_a_real_host`], all on `PLUGIN`, all run by
/// hand (`wasmcron jobs run`): their hourly interval never comes during a
/// test.
const JOBS: &str = r#"
version = 1

[[jobs]]
id = "greet"
plugin = "PLUGIN"
args = { name = "e2e" }
trigger = { type = "interval", every = "1h" }

[[jobs]]
id = "flaky"
plugin = "PLUGIN"
args = { fail = "retryable", fail_attempts = 1 }
trigger = { type = "interval", every = "1h" }
retry = { max_attempts = 3, delay = "1s" }

[[jobs]]
id = "broken"
plugin = "PLUGIN"
args = { fail = "permanent" }
trigger = { type = "interval", every = "1h" }
retry = { max_attempts = 3, delay = "1s" }

[[jobs]]
id = "typo"
plugin = "PLUGIN"
args = { nmae = "e2e" }
trigger = { type = "interval", every = "1h" }
retry = { max_attempts = 3, delay = "1s" }

[[jobs]]
id = "tally"
plugin = "PLUGIN"
args = { count = true }
trigger = { type = "interval", every = "1h" }

[[jobs]]
id = "burn"
plugin = "PLUGIN"
args = { spin = true }
trigger = { type = "interval", every = "1h" }
limits = { fuel = FUEL, timeout = "120s" }

[[jobs]]
id = "hang"
plugin = "PLUGIN"
args = { spin = true }
trigger = { type = "interval", every = "1h" }
limits = { timeout = "2s" }
"#;

/// The fuel budget of `burn`: far above what a greeting costs (asserted
/// below, so running out proves the loop ran), far below what the loop
/// burns in `burn`'s 120 s timeout (about 10 G a second).
const FUEL: u64 = 20_000_000_000;

/// One finished run: (attempt, outcome kind, outcome JSON, logs JSON, fuel).
type Run = (i64, String, Value, String, i64);

fn runs(dir: &Path, job: &str) -> Vec<Run> {
    query(
        dir,
        &format!(
            "SELECT attempt, outcome_kind, outcome, logs, fuel FROM runs
              WHERE job_id = '{job}' AND status = 'finished' ORDER BY attempt, run_id"
        ),
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or(Value::Null),
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        },
    )
}

/// `wasmcron jobs run ID` against the host at `url`.
fn run_now(url: &str, job: &str) {
    let out = wasmcron(&["jobs", "run", job, "--url", url]);
    assert!(out.status.success(), "run {job}: {}", text(&out));
}

/// Waits until the host has compiled and loaded `name`.
fn wait_loaded(host: &Host, url: &str, name: &str) {
    eventually_within(
        host,
        &format!("plugin {name} to load"),
        COMPILE_WAIT,
        || {
            let out = wasmcron(&["plugins", "list", "--json", "--url", url]);
            let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let status = list
                .as_array()
                .and_then(|a| a.iter().find(|p| p["name"] == name))
                .map(|p| p["status"].as_str().unwrap_or_default().to_owned());
            if let Some(s) = status.as_deref() {
                assert!(s != "refused", "{name} was refused: {list}");
            }
            status.as_deref() == Some("loaded")
        },
    );
}

/// Puts `file`'s compiled code into `dir/cache`, the cache the host gets,
/// compiling it once per build into the tests' shared compile cache: with a
/// debug build of cranelift a Python or JavaScript component takes minutes
/// to compile, and the `plugin run` tests compile them already.
fn prewarm(dir: &Path, name: &str, file: &str) {
    use wasmcron::plugin::{CompileCache, ContentHash, Plugin};
    let runtime = wasmcron_tests::runtime();
    let shared = CompileCache::open(&wasmcron_tests::test_cache_dir(), runtime.engine())
        .expect("shared compile cache");
    let ours = CompileCache::open(&dir.join("cache"), runtime.engine()).expect("compile cache");
    let bytes = std::fs::read(file).expect("read the plugin");
    if let Err(e) = Plugin::load_bytes_cached(&runtime, name.to_owned(), &bytes, Some(&shared)) {
        panic!("{file} does not load: {e}");
    }
    let hash = ContentHash::of(&bytes);
    let mut copied = 0;
    for entry in std::fs::read_dir(shared.dir()).expect("shared cache dir") {
        let entry = entry.expect("cache entry").path();
        let file_name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if file_name.starts_with(hash.as_str()) && file_name.ends_with(".cwasm") {
            std::fs::copy(&entry, ours.dir().join(file_name)).expect("copy a cache entry");
            copied += 1;
        }
    }
    assert!(
        copied > 0,
        "{name}: nothing in the shared cache after loading it"
    );
}

fn start(dir: &Path) -> Host {
    Host::start(BIN, dir, &["--compile-timeout", COMPILE_TIMEOUT])
}

/// `file` installed as plugin `name` in a real host, its jobs run by hand.
fn scheduled_by_a_real_host(name: &str, file: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("plugins")).expect("plugins dir");
    std::fs::copy(file, dir.path().join(format!("plugins/{name}.wasm"))).expect("copy plugin");
    let jobs = JOBS
        .replace("PLUGIN", name)
        .replace("FUEL", &FUEL.to_string());
    std::fs::write(dir.path().join("jobs.toml"), jobs).expect("jobs file");
    let d = dir.path();
    prewarm(d, name, file);

    let host = start(d);
    let url = host.api_url();
    wait_loaded(&host, &url, name);

    // hello's output, log line and stdout.
    run_now(&url, "greet");
    // Permanent first: by the time flaky's retry (same delay) has run, a
    // retry of broken or typo would have too.
    run_now(&url, "broken");
    run_now(&url, "typo");
    run_now(&url, "flaky");
    run_now(&url, "tally");
    let long = Duration::from_secs(120);
    eventually_within(&host, "greet to finish", long, || {
        !runs(d, "greet").is_empty()
    });
    let greet = runs(d, "greet");
    let (_, kind, outcome, logs, greet_fuel) = &greet[0];
    assert_eq!(kind, "succeeded", "{outcome}");
    assert_eq!(outcome["output"], "Hello, e2e!", "{outcome}");
    assert!(
        logs.contains("saying hello to e2e (job greet, attempt 1)"),
        "{logs}"
    );
    assert!(logs.contains("hello from stdout"), "{logs}");

    // A retryable error is retried (attempt 2 succeeds)...
    eventually_within(&host, "flaky's retry to finish", long, || {
        runs(d, "flaky").len() >= 2
    });
    let flaky = runs(d, "flaky");
    assert_eq!(flaky[0].0, 1);
    assert_eq!(flaky[0].1, "failed", "{:?}", flaky[0]);
    assert_eq!(flaky[0].2["retryable"], true, "{:?}", flaky[0]);
    assert_eq!(
        flaky[0].2["message"], "attempt 1 failed on purpose",
        "{:?}",
        flaky[0]
    );
    assert_eq!(
        (flaky[1].0, flaky[1].1.as_str()),
        (2, "succeeded"),
        "{flaky:?}"
    );
    assert_eq!(flaky[1].2["output"], "Hello, world!", "{flaky:?}");

    // ... a permanent one is not, whatever the retry policy; nor are bad
    // arguments, which the helper refuses naming the field.
    for job in ["broken", "typo"] {
        let r = runs(d, job);
        assert_eq!(r.len(), 1, "{job} ran {} times: {r:?}", r.len());
        assert_eq!(r[0].1, "failed", "{job}: {:?}", r[0]);
        assert_eq!(r[0].2["retryable"], false, "{job}: {:?}", r[0]);
    }
    let typo = &runs(d, "typo")[0].2;
    assert!(
        typo["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field `nmae`")),
        "{typo}"
    );

    // kv: the count goes on from run to run...
    eventually_within(&host, "tally's first run", long, || {
        !runs(d, "tally").is_empty()
    });
    run_now(&url, "tally");
    eventually_within(&host, "tally's second run", long, || {
        runs(d, "tally").len() >= 2
    });

    // The limits: an endless loop is stopped by its fuel, and by its
    // timeout when the fuel would last longer.
    run_now(&url, "burn");
    run_now(&url, "hang");
    eventually_within(&host, "burn and hang to be stopped", long, || {
        !runs(d, "burn").is_empty() && !runs(d, "hang").is_empty()
    });
    let burn = &runs(d, "burn")[0];
    assert_eq!(burn.1, "out-of-fuel", "{burn:?}");
    assert!(
        *greet_fuel < i64::try_from(FUEL / 10).unwrap_or(i64::MAX),
        "a greeting burns {greet_fuel} fuel: the loop, not the start-up, must use up burn's {FUEL}"
    );
    let hang = &runs(d, "hang")[0];
    assert_eq!(hang.1, "timed-out", "{hang:?}");

    // ... and across a restart.
    host.signal("-TERM");
    let status = host.wait();
    assert!(status.success(), "exit {status}");
    let host = start(d);
    let url = host.api_url();
    wait_loaded(&host, &url, name);
    run_now(&url, "tally");
    eventually_within(&host, "tally's run after the restart", long, || {
        runs(d, "tally").len() >= 3
    });
    let outputs: Vec<String> = runs(d, "tally")
        .iter()
        .map(|r| r.2["output"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        outputs,
        [
            "Hello, world! (greeting 1)",
            "Hello, world! (greeting 2)",
            "Hello, world! (greeting 3)"
        ],
        "host log:\n{}",
        host.log()
    );
    assert_eq!(
        count(
            d,
            "SELECT count(*) FROM kv WHERE job_id = 'tally' AND key = 'greetings'"
        ),
        1
    );
    // kv delete: `forget` drops the count, so this run counts from 1.
    let out = wasmcron(&[
        "jobs",
        "run",
        "tally",
        "--args",
        r#"{"count":true,"forget":true}"#,
        "--url",
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    eventually_within(&host, "tally's run that forgets", long, || {
        runs(d, "tally").len() >= 4
    });
    let last = &runs(d, "tally")[3];
    assert_eq!(last.2["output"], "Hello, world! (greeting 1)", "{last:?}");
    host.signal("-TERM");
    let status = host.wait();
    assert!(status.success(), "exit {status}");
}

#[test]
fn hello_py_is_scheduled_retried_keeps_kv_and_is_stopped_by_its_limits() {
    if let Some(file) = plugin(plugins::HELLO_PY, "hello-py", "componentize-py") {
        scheduled_by_a_real_host("hello-py", file);
    }
}

#[test]
fn hello_js_is_scheduled_retried_keeps_kv_and_is_stopped_by_its_limits() {
    if let Some(file) = plugin(plugins::HELLO_JS, "hello-js", "componentize-js") {
        scheduled_by_a_real_host("hello-js", file);
    }
}
