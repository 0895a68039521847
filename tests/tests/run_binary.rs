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

/// Issue 12: a restart with an unchanged jobs file of 100,000 jobs took
/// 25 s (each job compared, its id looked up in a list of all the others).
/// An unchanged file must cost next to nothing: nothing written, every
/// schedule kept; a job changed through the API since is still put back
/// as the file says (the file owns its jobs); a changed file's changed
/// jobs are written, keeping their schedule when their trigger is the
/// same and moving it when the trigger changed.
#[test]
fn an_unchanged_jobs_file_is_not_written_again_at_restart_and_a_changed_job_is() {
    let jobs = |args: &str, every: &str| -> String {
        format!(
            "version = 1\n\
             [[jobs]]\nid = \"daily\"\nplugin = \"hello\"\n\
             trigger = {{ type = \"cron\", expr = \"17 3 * * *\", tz = \"Europe/Berlin\" }}\n\
             [[jobs]]\nid = \"hourly\"\nplugin = \"hello\"\nargs = {{ name = \"{args}\" }}\n\
             trigger = {{ type = \"interval\", every = \"1h\" }}\n\
             [[jobs]]\nid = \"other\"\nplugin = \"hello\"\n\
             trigger = {{ type = \"interval\", every = \"{every}\" }}\n"
        )
    };
    let dir = setup(&jobs("v1", "1h"), &["hello"]);
    let rows = || {
        query(
            dir.path(),
            "SELECT id, next_run_time, created_at, incarnation, spec FROM jobs ORDER BY id",
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
    };
    // Starts a host, lets `during` act on its API, stops it; the log holds
    // each of `expect`.
    let run_with = |expect: &[&str], during: &dyn Fn(&str)| {
        let host = Host::start(BIN, dir.path(), &[]);
        eventually(&host, "the host to start", || {
            host.log().contains("wasmcron running")
        });
        during(&host.api_url());
        let log = host.log();
        host.signal("-TERM");
        assert!(host.wait().success());
        for e in expect {
            assert!(log.contains(e), "{e}: {log}");
        }
    };
    let run_once = |expect: &[&str]| run_with(expect, &|_| {});
    run_once(&["jobs file applied", r#""unchanged":0"#, r#""written":3"#]);
    let first = rows();
    assert_eq!(first.len(), 3, "{first:?}");
    // Count every write to the jobs table from here on.
    let conn = rusqlite::Connection::open(dir.path().join("wasmcron.db")).expect("open");
    conn.execute_batch(
        "CREATE TABLE job_writes (n INTEGER NOT NULL);
         INSERT INTO job_writes VALUES (0);
         CREATE TRIGGER count_job_inserts AFTER INSERT ON jobs
           BEGIN UPDATE job_writes SET n = n + 1; END;
         CREATE TRIGGER count_job_updates AFTER UPDATE ON jobs
           BEGIN UPDATE job_writes SET n = n + 1; END;
         CREATE TRIGGER count_job_deletes AFTER DELETE ON jobs
           BEGIN UPDATE job_writes SET n = n + 1; END;",
    )
    .expect("count writes");
    drop(conn);
    let writes = || count(dir.path(), "SELECT n FROM job_writes");

    std::thread::sleep(std::time::Duration::from_millis(1100));
    run_once(&["jobs file unchanged since it was applied"]);
    assert_eq!(writes(), 0, "an unchanged jobs file wrote its jobs again");
    assert_eq!(rows(), first, "an unchanged jobs file changed its jobs");
    run_once(&["jobs file unchanged since it was applied"]);
    assert_eq!(writes(), 0, "an unchanged jobs file wrote its jobs again");

    // Changed through the API while the file stays: the next start reads
    // the file again and puts the job back as the file says.
    run_with(&["jobs file unchanged since it was applied"], &|url| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let status = rt.block_on(async {
            reqwest::Client::new()
                .patch(format!("{url}/jobs/hourly"))
                .json(&serde_json::json!({"args": {"name": "api"}}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        assert_eq!(status.ok(), Some(200));
    });
    assert!(rows()[1].4.contains("api"), "{:?}", rows()[1]);
    run_once(&["jobs file applied", r#""unchanged":2"#, r#""written":1"#]);
    assert_eq!(rows(), first, "the file's version of the job is back");

    // One job's args and another's trigger change: those two are written;
    // the first keeps its schedule, the second starts from the change.
    std::fs::write(dir.path().join("jobs.toml"), jobs("v2", "2h")).expect("jobs file");
    let before = writes();
    run_once(&["jobs file applied", r#""unchanged":1"#, r#""written":2"#]);
    let second = rows();
    assert!(writes() >= before + 2, "the changed jobs were not written");
    assert_eq!(second[0], first[0], "the unchanged job was touched");
    let (hourly, hourly_before) = (&second[1], &first[1]);
    assert!(hourly.4.contains("v2"), "{hourly:?}");
    assert_eq!(
        (hourly.1, hourly.2, &hourly.3),
        (hourly_before.1, hourly_before.2, &hourly_before.3),
        "same trigger: next_run_time, created_at and incarnation kept"
    );
    let (other, other_before) = (&second[2], &first[2]);
    assert!(other.4.contains("2h"), "{other:?}");
    assert_ne!(
        other.1, other_before.1,
        "a new trigger starts from the change"
    );
    assert_eq!(other.3, other_before.3, "the incarnation stays");
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

/// A webhook receiver on a thread: answers 200 to every request and
/// forwards each body.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = sock.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    if tx.send(body.to_owned()).is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    });
    (url, rx)
}

/// `GET url` as JSON.
fn get_json(url: &str) -> serde_json::Value {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            reqwest::get(url)
                .await
                .expect("GET")
                .json()
                .await
                .expect("JSON")
        })
}

// Issue 13: `pause_after_failures` and a listener's `on`, through the
// binary, a jobs file and a real webhook. `hello` refuses an argument it
// does not know, so `fail = true` makes every run fail.
#[test]
fn a_job_failing_in_a_row_is_auto_paused_and_a_paused_webhook_hears_it() {
    let (hook, bodies) = webhook_receiver();
    let dir = setup(
        &format!(
            r#"
version = 1
[[jobs]]
id = "failing"
plugin = "hello"
args = {{ fail = true }}
trigger = {{ type = "interval", every = "2s" }}
pause_after_failures = 2
listeners = [{{ webhook = "{hook}", on = ["paused"] }}]
"#
        ),
        &["hello"],
    );
    let host = Host::start(BIN, dir.path(), &[]);
    let api = host.api_url_within(std::time::Duration::from_secs(300));
    let body = bodies
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("the paused webhook was not called ({e}):\n{}", host.log()));
    let heard: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(heard["on"], "paused", "{heard}");
    assert_eq!(heard["event"], "job-paused", "{heard}");
    assert_eq!(heard["job_id"], "failing", "{heard}");
    let reason = heard["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("auto-paused after 2 failed runs in a row"),
        "{heard}"
    );

    let job = get_json(&format!("{api}/jobs/failing"));
    assert_eq!(job["paused"], true, "{job}");
    assert_eq!(job["paused_reason"].as_str(), Some(reason), "{job}");
    // Paused after the second failure: no third run, no second event
    // (the webhook heard only `paused`, not the failures).
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM runs WHERE job_id = 'failing' AND status = 'finished'",
        ),
        2
    );
    assert!(bodies.try_recv().is_err(), "one webhook call only");
}
