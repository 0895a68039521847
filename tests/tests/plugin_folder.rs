//! The plugins folder while `wasmcron run` runs: files dropped in, replaced,
//! broken, removed and restored; the compile cache across restarts.

use std::path::Path;
use std::time::Duration;
use wasmcron::plugin::ContentHash;
use wasmcron_tests::host::{Host, count, eventually, prewarm, setup, strings};
use wasmcron_tests::plugins;

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

fn hash_of(path: &str) -> String {
    ContentHash::of(&std::fs::read(path).expect("read plugin"))
        .as_str()
        .to_owned()
}

/// Writes `bytes` to `dest` the way deploy tools do: a temporary name in
/// the same folder, then a rename.
fn atomic_copy(bytes: &[u8], dest: &Path) {
    let tmp = dest.with_extension("wasm.partial");
    std::fs::write(&tmp, bytes).expect("write temp");
    std::fs::rename(&tmp, dest).expect("rename");
}

fn runs_with_hash(dir: &Path, hash: &str) -> i64 {
    count(
        dir,
        &format!(
            "SELECT count(*) FROM runs WHERE job_id = 'hello' AND status = 'finished' \
             AND outcome_kind = 'succeeded' AND plugin_hash = '{hash}'"
        ),
    )
}

#[test]
fn plugins_dropped_replaced_broken_removed_and_restored_while_running() {
    let dir = setup("version = 1\n", &[]);
    let pdir = dir.path().join("plugins");
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "the host to start", || {
        host.log().contains("wasmcron running")
    });

    // Drop a sidecar and its plugin: the sidecar's job fires, no API call.
    std::fs::write(
        pdir.join("hello.toml"),
        "[[jobs]]\ntrigger = { type = \"interval\", every = \"1s\" }\n",
    )
    .expect("sidecar");
    let hello = std::fs::read(plugins::HELLO).expect("hello");
    atomic_copy(&hello, &pdir.join("hello.wasm"));
    let v1 = hash_of(plugins::HELLO);
    eventually(&host, "a run of the dropped plugin", || {
        runs_with_hash(dir.path(), &v1) >= 1
    });

    // Replace it, written in place and slowly (in two halves): the half
    // file is never loaded, and the next runs use the new version.
    let probe = std::fs::read(plugins::PROBE).expect("probe");
    let v2 = hash_of(plugins::PROBE);
    let target = pdir.join("hello.wasm");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&target).expect("create");
        let (a, b) = probe.split_at(probe.len() / 2);
        f.write_all(a).expect("first half");
        f.sync_all().expect("sync");
        std::thread::sleep(Duration::from_millis(100));
        f.write_all(b).expect("second half");
    }
    eventually(&host, "a run of the replacement", || {
        runs_with_hash(dir.path(), &v2) >= 1
    });

    // Garbage and a wrong-world component are refused, logged, and
    // nothing else is disturbed.
    std::fs::write(pdir.join("garbage.wasm"), b"definitely not wasm").expect("garbage");
    atomic_copy(
        &std::fs::read(plugins::WRONG_WORLD).expect("wrong world"),
        &pdir.join("other.wasm"),
    );
    eventually(&host, "both refusals logged", || {
        let log = host.log();
        log.contains("not a WebAssembly file") && log.contains("does not implement world `job`")
    });
    let before = runs_with_hash(dir.path(), &v2);
    eventually(&host, "runs to go on", || {
        runs_with_hash(dir.path(), &v2) > before
    });

    // A bad replacement leaves the good version in service.
    std::fs::write(&target, b"\0asm\x0d\0\x01\0\x01\xff\xff").expect("bad replacement");
    eventually(&host, "the bad replacement refused", || {
        host.log()
            .contains("plugin refused; the previous version stays in service")
    });
    let before = runs_with_hash(dir.path(), &v2);
    eventually(&host, "the old version to keep running", || {
        runs_with_hash(dir.path(), &v2) > before
    });

    // Remove it: the job is kept and waits.
    std::fs::remove_file(&target).expect("remove");
    eventually(&host, "the removal noticed", || {
        host.log().contains("plugin file removed")
    });
    eventually(&host, "the job to be held", || {
        host.log()
            .contains("plugin is not loaded; the job waits for it")
    });
    let held_at = count(
        dir.path(),
        "SELECT count(*) FROM runs WHERE job_id = 'hello'",
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE job_id = 'hello'"
        ),
        held_at,
        "a held job must not fire"
    );
    assert_eq!(
        strings(dir.path(), "SELECT id FROM jobs"),
        vec!["hello".to_owned()]
    );

    // Restore it: the job resumes on the restored version.
    atomic_copy(&hello, &target);
    eventually(&host, "runs after the restore", || {
        runs_with_hash(dir.path(), &v1) >= 2
    });

    host.signal("-TERM");
    assert!(host.wait().success());
}

/// The `compiled` field of each "plugin loaded" log line, by plugin.
fn compiled_by_plugin(log: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "plugin loaded")
        .map(|v| {
            (
                v["fields"]["plugin"].as_str().unwrap_or("").to_owned(),
                v["fields"]["compiled"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn start_and_stop(dir: &Path) -> String {
    let host = Host::start(BIN, dir, &[]);
    // Plugins compile in the background after start-up: wait for both.
    wait_long(&host, "both plugins loaded", || {
        host.log().matches("\"plugin loaded\"").count() >= 2
    });
    host.signal("-TERM");
    let log_path = host.log_path().to_path_buf();
    let status = host.wait();
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert!(status.success(), "the host exited with {status}:\n{log}");
    log
}

#[test]
fn a_restart_loads_compiled_plugins_from_the_cache_and_a_corrupt_entry_is_recompiled() {
    let dir = setup("version = 1\n", &["hello", "counter"]);
    let pair = |a: &str, b: &str| {
        vec![
            ("counter".to_owned(), a.to_owned()),
            ("hello".to_owned(), b.to_owned()),
        ]
    };

    let first = start_and_stop(dir.path());
    assert_eq!(
        compiled_by_plugin(&first),
        pair("compiled-and-cached", "compiled-and-cached"),
        "{first}"
    );

    let second = start_and_stop(dir.path());
    assert_eq!(
        compiled_by_plugin(&second),
        pair("cache", "cache"),
        "{second}"
    );

    // Damage hello's entry (flip bytes in the middle): it is discarded
    // and recompiled, never loaded.
    let hello_hash = hash_of(plugins::HELLO);
    let entry = std::fs::read_dir(dir.path().join("cache"))
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&hello_hash))
        })
        .expect("hello's cache entry");
    let mut bytes = std::fs::read(&entry).expect("entry");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&entry, &bytes).expect("corrupt");

    let third = start_and_stop(dir.path());
    assert_eq!(
        compiled_by_plugin(&third),
        pair("cache", "recompiled"),
        "{third}"
    );
    assert!(third.contains("checksum mismatch"), "{third}");

    // And the recompiled entry is good again.
    let fourth = start_and_stop(dir.path());
    assert_eq!(compiled_by_plugin(&fourth), pair("cache", "cache"));
}

#[test]
fn a_sidecar_grants_its_jobs_a_directory_relative_to_the_plugins_folder() {
    let dir = setup("version = 1\n", &["cleanup"]);
    let reports = dir.path().join("plugins/reports");
    std::fs::create_dir_all(&reports).expect("reports");
    let old = reports.join("old.log");
    std::fs::write(&old, b"stale").expect("old file");
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| {
            f.set_modified(std::time::SystemTime::now() - Duration::from_secs(30 * 86_400))
        })
        .expect("age it");
    std::fs::write(reports.join("fresh.log"), b"new").expect("fresh file");
    std::fs::write(
        dir.path().join("plugins/cleanup.toml"),
        r#"
[capabilities]
dirs = [{ host = "reports", guest = "/data", mode = "rw" }]

[[jobs]]
id = "tidy"
trigger = { type = "interval", every = "1s" }
args = { older_than_days = 7 }
"#,
    )
    .expect("sidecar");
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "a successful cleanup run", || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE job_id = 'tidy' AND outcome_kind = 'succeeded'",
        ) >= 1
    });
    assert!(!old.exists());
    assert!(reports.join("fresh.log").exists());
    host.signal("-TERM");
    assert!(host.wait().success());
}

fn job_ids(dir: &Path) -> Vec<String> {
    strings(dir, "SELECT id FROM jobs ORDER BY id")
}

#[test]
fn a_sidecar_owns_its_jobs_across_edits_removal_and_restarts() {
    let dir = setup("version = 1\n", &["hello"]);
    let sidecar = dir.path().join("plugins/hello.toml");
    let declare = |ids: &[&str]| {
        let text: String = ids
            .iter()
            .map(|id| {
                format!(
                    "[[jobs]]\nid = \"{id}\"\ntrigger = {{ type = \"interval\", every = \"1h\" }}\n"
                )
            })
            .collect();
        std::fs::write(&sidecar, text).expect("sidecar");
    };
    declare(&["a", "b"]);
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "both jobs", || job_ids(dir.path()) == ["a", "b"]);

    // Edit: b is no longer declared, c is new.
    declare(&["a", "c"]);
    eventually(&host, "the edit followed", || {
        job_ids(dir.path()) == ["a", "c"]
    });
    assert!(host.log().contains("its sidecar no longer declares it"));

    // Delete the sidecar: its jobs go.
    std::fs::remove_file(&sidecar).expect("remove sidecar");
    eventually(&host, "the jobs removed", || job_ids(dir.path()).is_empty());
    host.signal("-TERM");
    assert!(host.wait().success());

    // Across a restart: declared, host stopped, sidecar deleted, started.
    declare(&["d"]);
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "job d", || job_ids(dir.path()) == ["d"]);
    host.signal("-TERM");
    assert!(host.wait().success());
    std::fs::remove_file(&sidecar).expect("remove sidecar");
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "the host to start", || {
        host.log().contains("wasmcron running")
    });
    assert!(job_ids(dir.path()).is_empty(), "{:?}", job_ids(dir.path()));
    host.signal("-TERM");
    assert!(host.wait().success());
}

/// A sidecar cannot take over a job it did not make (a fresh-user trial
/// of issue 15 found one rewriting an API job's plugin and args, then
/// deleting it with the sidecar): the job of the jobs file keeps its spec,
/// the refusal is logged, and deleting the sidecar removes only its own.
#[test]
fn a_sidecar_cannot_take_over_or_delete_a_job_it_did_not_make() {
    let dir = setup(
        "version = 1\n\n[[jobs]]\nid = \"x1\"\nplugin = \"hello\"\n\
         trigger = { type = \"interval\", every = \"1h\" }\nargs = { name = \"team\" }\n",
        &["hello", "counter"],
    );
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "the jobs file's job", || {
        job_ids(dir.path()) == ["x1"]
    });
    let spec_of_x1 = || strings(dir.path(), "SELECT spec FROM jobs WHERE id = 'x1'");
    let before = spec_of_x1();
    std::fs::write(
        dir.path().join("plugins/counter.toml"),
        "[[jobs]]\nid = \"x1\"\ntrigger = { type = \"interval\", every = \"1m\" }\n\n\
         [[jobs]]\nid = \"own\"\ntrigger = { type = \"interval\", every = \"1m\" }\n",
    )
    .expect("sidecar");
    eventually(&host, "the sidecar's own job", || {
        job_ids(dir.path()) == ["own", "x1"]
    });
    eventually(&host, "the refusal logged", || {
        host.log()
            .contains("x1\\\" is taken by a job this sidecar did not make")
    });
    assert_eq!(spec_of_x1(), before, "the jobs file's job was changed");
    std::fs::remove_file(dir.path().join("plugins/counter.toml")).expect("remove sidecar");
    eventually(&host, "the sidecar's job removed", || {
        job_ids(dir.path()) == ["x1"]
    });
    assert_eq!(spec_of_x1(), before);
    host.signal("-TERM");
    assert!(host.wait().success());
}

// ---- Compiling in the background, within bounds (issue 10, item 6) ----

/// The generated plugin that is expensive to compile. Sized so that, in
/// the debug build the tests run, its compile takes far longer than the
/// tests below need to show what happens while it runs: the debug build
/// optimises cranelift (the workspace's dev profile), and the cost grows
/// with the square of `HEAVY_LIVE` (`wasmcron plugin check` of a debug
/// build, 2026-12-03: 3,000 live values 1.8 s, 6,000 7.3 s, 9,000 16.9 s).
/// No test waits for it to finish: each compile is cancelled, timed out or
/// stopped with its host.
fn heavy(salt: u32) -> Vec<u8> {
    wasmcron_tests::slow::slow_component(HEAVY_FUNCTIONS, HEAVY_LIVE, salt)
}
const HEAVY_FUNCTIONS: u32 = 8;
const HEAVY_LIVE: u32 = 12_000;

/// As [`eventually`], with a safety net of 5 minutes: for waits that
/// include compiling a plugin, which in the debug build on a loaded
/// machine can take a minute (not a timing assertion).
fn wait_long(host: &Host, what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; host log:\n{}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path` on the host's API with a plain socket: status and JSON body
/// (None when the connection fails).
fn get(base: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    request(base, "GET", path)
}

/// `METHOD path` without a body: status and JSON body.
fn request(base: &str, method: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    use std::io::{Read as _, Write as _};
    let addr = base.strip_prefix("http://")?;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, serde_json::from_str(body).unwrap_or_default()))
}

fn plugin(base: &str, name: &str) -> serde_json::Value {
    get(base, &format!("/plugins/{name}"))
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn succeeded(dir: &Path, job: &str) -> i64 {
    count(
        dir,
        &format!("SELECT count(*) FROM runs WHERE job_id = '{job}' AND outcome_kind = 'succeeded'"),
    )
}

const TICK: &str = "version = 1\n\n[[jobs]]\nid = \"tick\"\nplugin = \"hello\"\n\
                    trigger = { type = \"interval\", every = \"1s\" }\n";

#[test]
fn a_slow_compile_holds_neither_start_up_nor_firing_nor_other_plugins() {
    let jobs = format!(
        "{TICK}\n[[jobs]]\nid = \"heavy-job\"\nplugin = \"heavy\"\n\
         trigger = {{ type = \"interval\", every = \"1s\" }}\n"
    );
    let dir = setup(&jobs, &["hello"]);
    prewarm(dir.path(), &["hello"]);
    let pdir = dir.path().join("plugins");
    std::fs::write(pdir.join("heavy.wasm"), heavy(1)).expect("heavy plugin");
    // A time bound the test never reaches: the compile must be going.
    let host = Host::start(BIN, dir.path(), &["--compile-timeout", "10m"]);
    let api = host.api_url();
    let still_compiling = |when: &str| {
        let heavy = plugin(&api, "heavy");
        assert_eq!(
            heavy["status"], "compiling",
            "{when}: the heavy plugin should still be compiling (is the machine so fast \
             that HEAVY_LIVE needs raising?): {heavy}"
        );
    };

    // Start-up did not wait for it: the API answers, the compile runs.
    let (status, health) = get(&api, "/healthz").expect("healthz");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["compiling"], 1, "{health}");
    still_compiling("at start");
    assert!(
        host.log().contains("compiling plugin in the background"),
        "{}",
        host.log()
    );

    // A good plugin's job fires while it compiles; the heavy plugin's own
    // job is held, as for a missing plugin.
    eventually(&host, "a run of the good plugin's job", || {
        succeeded(dir.path(), "tick") >= 1
    });
    still_compiling("after the good job ran");
    let held = get(&api, "/jobs/heavy-job").expect("job").1;
    assert_eq!(held["state"], "waiting-for-plugin", "{held}");
    // Run now is refused with the reason, not recorded as a missed run.
    let (status, refused) = request(&api, "POST", "/jobs/heavy-job/run").expect("run now");
    assert_eq!(status, 409, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("still compiling"), "{refused}");
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE job_id = 'heavy-job'"
        ),
        0
    );

    // A good plugin dropped now loads and runs without queueing behind it.
    std::fs::write(
        pdir.join("counter.toml"),
        "[[jobs]]\nid = \"count\"\ntrigger = { type = \"interval\", every = \"1s\" }\n",
    )
    .expect("sidecar");
    atomic_copy(
        &std::fs::read(plugins::COUNTER).expect("counter"),
        &pdir.join("counter.wasm"),
    );
    wait_long(&host, "a run of the dropped plugin", || {
        succeeded(dir.path(), "count") >= 1
    });
    still_compiling("after the dropped plugin ran");
    assert_eq!(plugin(&api, "counter")["status"], "loaded");

    host.signal("-TERM");
    assert!(host.wait().success());
}

/// Reads `/events` until a frame contains every one of `needles`.
fn wait_for_event(base: &str, needles: &[&str], host: &Host) -> std::thread::JoinHandle<String> {
    use std::io::{Read as _, Write as _};
    let addr = base.strip_prefix("http://").expect("http").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    write!(stream, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("request");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let needles: Vec<String> = needles.iter().map(|s| (*s).to_owned()).collect();
    let log = host.log_path().to_path_buf();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => panic!(
                    "the event stream ended without {needles:?}:\n{text}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
                Ok(n) => n,
            };
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if let Some(line) = text
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n.as_str())))
            {
                return line.to_owned();
            }
        }
    })
}

#[test]
fn a_plugin_over_a_compile_bound_is_refused_with_the_reason_and_the_old_version_serves() {
    let dir = setup(TICK, &["hello"]);

    // Memory: at 16 MiB nothing compiles. Refused, saying which limit and
    // which flag; the host stays up.
    let host = Host::start(BIN, dir.path(), &["--compile-memory", "16MiB"]);
    let api = host.api_url();
    wait_long(&host, "hello refused", || {
        plugin(&api, "hello")["status"] == "refused"
    });
    let reason = plugin(&api, "hello")["refused_reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("compile memory limit (16 MiB, --compile-memory)")
            && reason.contains("raise --compile-memory"),
        "{reason}"
    );
    assert!(host.log().contains("plugin refused"));
    assert_eq!(get(&api, "/healthz").expect("healthz").0, 200);
    host.signal("-TERM");
    assert!(host.wait().success());

    // Restarted with the same bound: refused at once from memory, not
    // compiled again (which would spend the whole bound at every start).
    let host = Host::start(BIN, dir.path(), &["--compile-memory", "16MiB"]);
    let api = host.api_url();
    let hello = plugin(&api, "hello");
    assert_eq!(hello["status"], "refused", "{hello}");
    let again = hello["refused_reason"].as_str().unwrap_or_default();
    assert!(
        again.contains("--compile-memory") && again.contains("remembered in the compile cache"),
        "{again}"
    );
    assert!(
        !host.log().contains("compiling plugin in the background"),
        "the refused file was compiled again:\n{}",
        host.log()
    );
    host.signal("-TERM");
    assert!(host.wait().success());

    // With the default bounds it compiles (and is cached) and runs.
    let host = Host::start(BIN, dir.path(), &[]);
    wait_long(&host, "a run of hello", || {
        succeeded(dir.path(), "tick") >= 1
    });
    host.signal("-TERM");
    assert!(host.wait().success());

    // Time: at 1 s, hello comes from the cache (no compile); a
    // replacement that takes longer to compile is refused and the
    // version in service keeps running.
    let host = Host::start(BIN, dir.path(), &["--compile-timeout", "1s"]);
    let api = host.api_url();
    eventually(&host, "hello loaded from the cache", || {
        plugin(&api, "hello")["compiled"] == "cache"
    });
    let event = wait_for_event(&api, &["plugin-refused", "--compile-timeout"], &host);
    atomic_copy(&heavy(2), &dir.path().join("plugins/hello.wasm"));
    wait_long(&host, "the replacement refused", || {
        plugin(&api, "hello")["refused_reason"]
            .as_str()
            .is_some_and(|r| r.contains("compile time limit (1s, --compile-timeout)"))
    });
    let event = event.join().expect("the plugin-refused event");
    assert!(event.contains("\"plugin\":\"hello\""), "{event}");
    let hello = plugin(&api, "hello");
    assert_eq!(hello["status"], "loaded", "{hello}");
    assert_eq!(hello["hash"], hash_of(plugins::HELLO));
    assert!(
        host.log()
            .contains("plugin refused; the previous version stays in service")
    );
    let before = succeeded(dir.path(), "tick");
    eventually(&host, "the old version to keep running", || {
        succeeded(dir.path(), "tick") > before
    });
    host.signal("-TERM");
    assert!(host.wait().success());
}

#[test]
fn a_flood_of_bad_and_slow_plugin_files_never_stalls_scheduling() {
    let dir = setup(TICK, &["hello"]);
    prewarm(dir.path(), &["hello"]);
    let pdir = dir.path().join("plugins");
    let host = Host::start(BIN, dir.path(), &["--compile-timeout", "10m"]);
    let api = host.api_url();
    eventually(&host, "the first run", || {
        succeeded(dir.path(), "tick") >= 1
    });

    let hello = std::fs::read(plugins::HELLO).expect("hello");
    let wrong = std::fs::read(plugins::WRONG_WORLD).expect("wrong world");
    let mut flood = Vec::new();
    for round in 0..5u32 {
        let mut drop = |name: String, bytes: &[u8]| {
            atomic_copy(bytes, &pdir.join(&name));
            flood.push(name);
        };
        drop(format!("garbage-{round}.wasm"), b"not wasm at all");
        drop(format!("cut-{round}.wasm"), &hello[..hello.len() / 2]);
        drop(format!("world-{round}.wasm"), &wrong);
        // One heavy file, replaced every round: each replacement cancels
        // the compile under way and starts another.
        drop("heavy.wasm".to_owned(), &heavy(100 + round));
        // Over the size limit without writing 64 MiB: a sparse file.
        let huge = pdir.join(format!("huge-{round}.wasm"));
        std::fs::File::create(&huge)
            .and_then(|f| f.set_len(65 << 20))
            .expect("huge file");
        flood.push(format!("huge-{round}.wasm"));

        // Runs keep being recorded while the heavy compile is going.
        let before = succeeded(dir.path(), "tick");
        eventually(&host, "runs during the flood", || {
            succeeded(dir.path(), "tick") > before
        });
        let heavy = plugin(&api, "heavy");
        assert_eq!(heavy["status"], "compiling", "round {round}: {heavy}");
        assert_eq!(get(&api, "/healthz").expect("healthz").0, 200);
    }

    // Every bad file was refused with its own reason.
    for (name, says) in [
        ("garbage-4", "not a WebAssembly file"),
        ("cut-4", "truncated"),
        ("world-4", "does not implement world `job`"),
        ("huge-4", "the limit is"),
    ] {
        wait_long(&host, name, || {
            plugin(&api, name)["refused_reason"]
                .as_str()
                .is_some_and(|r| r.contains(says))
        });
    }
    assert!(
        host.log()
            .matches("compiling plugin in the background")
            .count()
            >= 5
    );

    // Take the flood away: the heavy compile is stopped, nothing is left
    // compiling, and the good job runs on.
    flood.sort();
    flood.dedup();
    for name in &flood {
        std::fs::remove_file(pdir.join(name)).expect("remove");
    }
    eventually(&host, "the heavy compile stopped", || {
        get(&api, "/plugins").is_some_and(|(_, list)| {
            list.as_array()
                .is_some_and(|l| l.len() == 1 && l[0]["name"] == "hello")
        })
    });
    assert!(host.log().contains("plugin file removed while compiling"));
    let before = succeeded(dir.path(), "tick");
    eventually(&host, "runs after the flood", || {
        succeeded(dir.path(), "tick") > before
    });
    host.signal("-TERM");
    assert!(host.wait().success());
}
