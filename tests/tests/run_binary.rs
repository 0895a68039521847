//! `wasmcron run` as a user runs it: the binary, a plugins folder, a jobs
//! file, a real SQLite file, signals.

use wasmcron_tests::host::{Host, count, eventually, query, setup, strings};

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

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
    let host = Host::start(BIN, dir.path(), &[]);
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
    let log_path = host.log_path().to_path_buf();
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
    let mut host = Host::start(BIN, dir.path(), &[]);
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
    host.kill();
    drop(host);

    // What the store holds right after the crash: the job, its schedule,
    // and the run still marked running.
    let jobs = query(dir.path(), "SELECT id, next_run_time FROM jobs", |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
    });
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].1.is_some(), "next_run_time kept");

    let host = Host::start(BIN, dir.path(), &["--shutdown-grace", "1s"]);
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
    let host = Host::start(BIN, dir.path(), &[]);
    let log_path = host.log_path().to_path_buf();
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
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "a finished run", || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'finished'",
        ) >= 1
    });
    // Plugins compile in the background: the wrong-world one may be
    // refused after hello's first run.
    eventually(&host, "both refusals", || {
        let log = host.log();
        log.contains("plugin refused")
            && log.contains("not a WebAssembly file")
            && log.contains("does not implement world `job`")
    });
    host.signal("-TERM");
    assert!(host.wait().success());
}

#[test]
fn a_job_dropped_from_the_jobs_file_is_removed_at_the_next_start() {
    let jobs = |ids: &[&str]| -> String {
        let mut text = "version = 1\n".to_owned();
        for id in ids {
            text.push_str(&format!(
                "[[jobs]]\nid = \"{id}\"\nplugin = \"hello\"\ntrigger = {{ type = \"interval\", every = \"1h\" }}\n"
            ));
        }
        text
    };
    let dir = setup(&jobs(&["keep", "drop"]), &["hello"]);
    let ids = || strings(dir.path(), "SELECT id FROM jobs ORDER BY id");
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "both jobs", || ids() == ["drop", "keep"]);
    host.signal("-TERM");
    assert!(host.wait().success());

    std::fs::write(dir.path().join("jobs.toml"), jobs(&["keep"])).expect("jobs file");
    let host = Host::start(BIN, dir.path(), &[]);
    eventually(&host, "the host to start", || {
        host.log().contains("wasmcron running")
    });
    assert_eq!(ids(), ["keep"]);
    assert!(host.log().contains("the jobs file no longer declares it"));
    host.signal("-TERM");
    assert!(host.wait().success());
}

#[test]
fn a_second_host_on_the_same_sqlite_file_is_refused_and_a_killed_one_leaves_no_lock() {
    let dir = setup(
        "version = 1\n[[jobs]]\nid = \"greet\"\nplugin = \"hello\"\n\
         trigger = { type = \"interval\", every = \"1s\" }\n",
        &["hello"],
    );
    let mut first = Host::start(BIN, dir.path(), &[]);
    first.api_url_within(std::time::Duration::from_secs(600));
    // Two hosts on one SQLite file would each fire every job.
    let second = Host::start(BIN, dir.path(), &[]);
    let status = second.wait();
    assert!(!status.success());
    let log = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("host-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .find(|l| l.contains("another wasmcron host"))
        .unwrap_or_default();
    assert!(
        log.contains("is using the database") && log.contains("postgres://"),
        "the second host should say why it stopped: {log}"
    );
    // The first goes on; killed, it leaves nothing that blocks a restart.
    first.kill();
    let third = Host::start(BIN, dir.path(), &[]);
    eventually(&third, "runs after the restart", || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE status = 'finished'",
        ) >= 1
    });
}

/// `wasmcron` as a CLI client of `url` with `token`.
fn client(args: &[&str], url: &str, token: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args).args(["--url", url]);
    if let Some(token) = token {
        cmd.args(["--token", token]);
    }
    cmd.output().expect("run the wasmcron client")
}

#[test]
fn a_plugin_pushed_through_the_api_is_checked_loaded_and_removed() {
    let dir = setup(
        r#"
version = 1
[[jobs]]
id = "greet"
plugin = "hello"
args = { name = "pushed" }
trigger = { type = "interval", every = "1s" }
"#,
        &[],
    );
    let token = "a-token-of-at-least-32-characters-0123";
    let host = Host::start(BIN, dir.path(), &["--token", token]);
    let url = host.api_url();
    let hello = wasmcron_tests::plugins::HELLO;
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // Without the token: refused, nothing written.
    let out = client(&["plugins", "push", hello], &url, None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("401"), "{}", text(&out));
    assert!(!dir.path().join("plugins/hello.wasm").exists());

    // A file the folder would refuse never reaches it, and says why.
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"not wasm at all").expect("write");
    let out = client(
        &[
            "plugins",
            "push",
            &bad.display().to_string(),
            "--name",
            "hello",
        ],
        &url,
        Some(token),
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not a WebAssembly file"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("422"), "{}", text(&out));
    assert!(!dir.path().join("plugins/hello.wasm").exists());

    // A good one is written into the folder, loaded, and its job runs.
    let out = client(&["plugins", "push", hello], &url, Some(token));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("pushed hello"), "{}", text(&out));
    eventually(&host, "a run of the pushed plugin", || {
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE job_id = 'greet' AND outcome_kind = 'succeeded'",
        ) >= 1
    });

    // Removed: the file goes, the job waits for its plugin.
    let out = client(&["plugins", "rm", "hello"], &url, Some(token));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dir.path().join("plugins/hello.wasm").exists());
    eventually(&host, "the plugin unloaded", || {
        let out = client(&["plugins", "list", "--json"], &url, None);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list.as_array().is_some_and(|a| a.is_empty())
    });
    let out = client(&["plugins", "rm", "hello"], &url, Some(token));
    assert!(text(&out).contains("404"), "{}", text(&out));
}
