//! `wasmcron run` as a user runs it: the binary, a plugins folder, a jobs
//! file, a real SQLite file, signals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wasmcron_tests::plugins;

struct Host {
    child: Child,
    stderr: PathBuf,
}

impl Host {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let stderr = dir.join(format!("host-{}.log", Instant::now().elapsed().as_nanos()));
        let log = std::fs::File::create(&stderr).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_wasmcron"))
            .args(["run", "--plugins"])
            .arg(dir.join("plugins"))
            .arg("--db")
            .arg(format!("sqlite://{}", dir.join("wasmcron.db").display()))
            .arg("--config")
            .arg(dir.join("jobs.toml"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start wasmcron");
        Self { child, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "host did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup(jobs: &str, plugin_names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let pdir = dir.path().join("plugins");
    std::fs::create_dir_all(&pdir).expect("plugins dir");
    for name in plugin_names {
        let (_, path) = plugins::ALL
            .iter()
            .find(|(n, _)| n == name)
            .expect("known plugin");
        std::fs::copy(path, pdir.join(format!("{name}.wasm"))).expect("copy plugin");
    }
    std::fs::write(dir.path().join("jobs.toml"), jobs).expect("jobs file");
    dir
}

fn query<T>(
    dir: &Path,
    sql: &str,
    f: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    let path = dir.join("wasmcron.db");
    let Ok(conn) = rusqlite::Connection::open(&path) else {
        return Vec::new();
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let Ok(mut stmt) = conn.prepare(sql) else {
        return Vec::new();
    };
    stmt.query_map([], f)
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The single integer a `SELECT count(*)` query returns (0 when the
/// database is not there yet).
fn count(dir: &Path, sql: &str) -> i64 {
    query(dir, sql, |r| r.get::<_, i64>(0))
        .first()
        .copied()
        .unwrap_or(0)
}

/// The first column of every row, as text.
fn strings(dir: &Path, sql: &str) -> Vec<String> {
    query(dir, sql, |r| r.get::<_, String>(0))
}

/// Polls until `check` holds, up to 60 s (a safety net, not a timing
/// assertion).
fn eventually(host: &Host, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; host log:\n{}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn runs_jobs_from_the_config_file_and_stops_cleanly_on_sigterm() {
    let dir = setup(
        r#"
version = 1
[[jobs]]
id = "greet"
plugin = "hello"
args = { name = "e2e" }
trigger = { type = "interval", every = "1s" }
"#,
        &["hello"],
    );
    let host = Host::start(dir.path(), &[]);
    eventually(&host, "two finished runs", || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE job_id = 'greet' AND status = 'finished'
               AND outcome_kind = 'succeeded'",
        ) >= 2
    });
    let outputs = strings(
        dir.path(),
        "SELECT outcome FROM runs WHERE status = 'finished'",
    );
    assert!(outputs[0].contains("Hello, e2e!"), "{outputs:?}");
    host.signal("-TERM");
    let log_path = host.stderr.clone();
    let status = host.wait();
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("run finished"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn kill_dash_nine_mid_run_loses_nothing() {
    let dir = setup(
        r#"
version = 1
[[jobs]]
id = "slow"
plugin = "slow"
args = { millis = 30000 }
trigger = { type = "interval", every = "1s" }
limits = { timeout = "60s" }
"#,
        &["slow"],
    );
    let mut host = Host::start(dir.path(), &[]);
    eventually(&host, "a running run", || {
        !strings(
            dir.path(),
            "SELECT run_id FROM runs WHERE status = 'running'",
        )
        .is_empty()
    });
    let running = strings(
        dir.path(),
        "SELECT run_id FROM runs WHERE status = 'running'",
    );
    host.child.kill().expect("kill -9");
    let _ = host.child.wait();
    drop(host);

    // What the store holds right after the crash: the job, its schedule,
    // and the run still marked running.
    let jobs = query(dir.path(), "SELECT id, next_run_time FROM jobs", |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
    });
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].1.is_some(), "next_run_time kept");

    let host = Host::start(dir.path(), &["--shutdown-grace", "1s"]);
    let run_id = running[0].clone();
    eventually(&host, "the interrupted run to be recorded", || {
        query(
            dir.path(),
            &format!("SELECT status, note FROM runs WHERE run_id = '{run_id}'"),
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .first()
        .is_some_and(|(s, note)| {
            s == "interrupted" && note.as_deref().unwrap_or_default().contains("host stopped")
        })
    });
    // The job keeps its schedule: it fires again after the restart.
    eventually(&host, "a new run after the restart", || {
        !strings(
            dir.path(),
            &format!("SELECT run_id FROM runs WHERE status = 'running' AND run_id != '{run_id}'"),
        )
        .is_empty()
    });
    host.signal("-TERM");
    let status = host.wait();
    assert!(status.success(), "exit {status}");
    // Shut down with a 1 s grace while the 30 s guest ran: recorded as
    // interrupted, not left running.
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'running'"
        ),
        0
    );
}

#[test]
fn a_bad_jobs_file_is_refused_naming_the_job_and_field() {
    let dir = setup(
        r#"
version = 1
[[jobs]]
id = "bad"
plugin = "hello"
trigger = { type = "cron", expr = "0 25 * * *" }
"#,
        &["hello"],
    );
    let host = Host::start(dir.path(), &[]);
    let log_path = host.stderr.clone();
    let status = host.wait();
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("config jobs[0] (id 'bad')"), "{log}");
    assert!(log.contains("hour: 25 is out of range 0-23"), "{log}");
}

#[test]
fn a_bad_plugin_in_the_folder_is_refused_and_the_rest_keep_running() {
    let dir = setup(
        r#"
version = 1
[[jobs]]
id = "greet"
plugin = "hello"
trigger = { type = "interval", every = "1s" }
"#,
        &["hello", "wrong_world"],
    );
    std::fs::write(dir.path().join("plugins/garbage.wasm"), b"not wasm at all").expect("garbage");
    let host = Host::start(dir.path(), &[]);
    eventually(&host, "a finished run", || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'finished'",
        ) >= 1
    });
    let log = host.log();
    assert!(log.contains("plugin refused"), "{log}");
    assert!(log.contains("not a WebAssembly file"), "{log}");
    assert!(log.contains("does not implement world `job`"), "{log}");
    host.signal("-TERM");
    assert!(host.wait().success());
}
