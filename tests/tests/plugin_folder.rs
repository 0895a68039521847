//! The plugins folder while `wasmcron run` runs: files dropped in, replaced,
//! broken, removed and restored; the compile cache across restarts.

use std::path::Path;
use std::time::Duration;
use wasmcron::plugin::ContentHash;
use wasmcron_tests::host::{Host, count, eventually, setup, strings};
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
    eventually(&host, "the host to start", || {
        host.log().contains("wasmcron running")
    });
    host.signal("-TERM");
    let log_path = host.log_path().to_path_buf();
    assert!(host.wait().success());
    std::fs::read_to_string(log_path).unwrap_or_default()
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
