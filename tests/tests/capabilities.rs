//! Per-job capabilities with the real plugins: directories (and the ways
//! out of them), environment variables, secrets, and HTTP allowlists
//! against a local server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use wasmcron::job::Capabilities;
use wasmcron::runtime::grants::Grants;
use wasmcron::runtime::{Limits, LogSource, Outcome, RunReport, Runtime};
use wasmcron_tests::{load, plugins, request, runtime};

fn grants(json: &str) -> Arc<Grants> {
    let caps: Capabilities = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
    Arc::new(caps.validate().unwrap_or_else(|e| panic!("{json}: {e:?}")))
}

async fn run(rt: &Runtime, plugin: &str, args: &str, grants: Arc<Grants>) -> RunReport {
    let plugin = load(rt, plugin);
    let mut req = request(
        "caps",
        args,
        Limits {
            timeout: Duration::from_secs(20),
            ..Limits::default()
        },
    );
    req.grants = grants;
    rt.run(&plugin, &req).await
}

fn output(report: &RunReport) -> serde_json::Value {
    match &report.outcome {
        Outcome::Succeeded { output } => serde_json::from_str(output).expect("JSON output"),
        other => panic!("expected success, got {other:?}; logs {:?}", report.logs),
    }
}

fn age(path: &Path, days: u64) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .expect("set mtime");
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_deletes_old_files_in_its_granted_directory_only() {
    let tmp = tempfile::tempdir().unwrap();
    let granted = tmp.path().join("reports");
    let outside = tmp.path().join("keep");
    std::fs::create_dir_all(granted.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    for (name, days) in [("old.csv", 10), ("new.csv", 1), ("sub/old-nested.csv", 30)] {
        std::fs::write(granted.join(name), b"x").unwrap();
        age(&granted.join(name), days);
    }
    std::fs::write(outside.join("old-outside.csv"), b"x").unwrap();
    age(&outside.join("old-outside.csv"), 100);

    let rt = runtime();
    let rw = grants(&format!(
        r#"{{"dirs":[{{"host":"{}","guest":"/data","mode":"rw"}}]}}"#,
        granted.display()
    ));
    let report = run(
        &rt,
        plugins::CLEANUP,
        r#"{"older_than_days":7}"#,
        rw.clone(),
    )
    .await;
    let out = output(&report);
    assert_eq!(out["deleted"], serde_json::json!(["/data/old.csv"]));
    assert!(!granted.join("old.csv").exists());
    assert!(granted.join("new.csv").exists());
    assert!(granted.join("sub/old-nested.csv").exists(), "not recursive");
    assert!(outside.join("old-outside.csv").exists());

    // Pointing it elsewhere does not escape the grant.
    for dir in ["/data/../keep", "/keep", "/", "/data/.."] {
        let report = run(
            &rt,
            plugins::CLEANUP,
            &format!(r#"{{"dir":"{dir}","older_than_days":7}}"#),
            rw.clone(),
        )
        .await;
        assert!(
            matches!(
                &report.outcome,
                Outcome::Failed {
                    retryable: false,
                    ..
                }
            ) || output(&report)["deleted"] == serde_json::json!([]),
            "{dir}: {:?}",
            report.outcome
        );
    }
    assert!(outside.join("old-outside.csv").exists());

    // Read-only: it may look but not delete.
    let ro = grants(&format!(
        r#"{{"dirs":[{{"host":"{}","guest":"/data"}}]}}"#,
        granted.display()
    ));
    let report = run(
        &rt,
        plugins::CLEANUP,
        r#"{"older_than_days":7,"recursive":true}"#,
        ro,
    )
    .await;
    let out = output(&report);
    assert_eq!(out["deleted"], serde_json::json!([]));
    assert_eq!(out["errors"].as_array().map(Vec::len), Some(1), "{out}");
    assert!(granted.join("sub/old-nested.csv").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_granted_directory_cannot_be_left_by_dotdot_absolute_paths_or_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let granted = tmp.path().join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::write(tmp.path().join("secret.txt"), b"top secret").unwrap();
    std::fs::write(granted.join("mine.txt"), b"mine").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), granted.join("link.txt"))
            .unwrap();
        std::os::unix::fs::symlink(tmp.path(), granted.join("up")).unwrap();
    }
    let g = grants(&format!(
        r#"{{"dirs":[{{"host":"{}","guest":"/data","mode":"rw"}}]}}"#,
        granted.display()
    ));
    let rt = runtime();
    let read = |path: String| {
        let rt = &rt;
        let g = g.clone();
        async move {
            let r = run(
                rt,
                plugins::PROBE,
                &format!(r#"{{"read_file":"{path}"}}"#),
                g,
            )
            .await;
            output(&r)["read_file"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    assert_eq!(read("/data/mine.txt".into()).await, "read 4 bytes");
    let secret = tmp.path().join("secret.txt");
    for path in [
        "/data/../secret.txt".to_owned(),
        secret.display().to_string(),
        "/data/link.txt".to_owned(),
        "/data/up/secret.txt".to_owned(),
        "/etc/passwd".to_owned(),
    ] {
        let result = read(path.clone()).await;
        assert!(result.starts_with("error"), "{path}: {result}");
    }
    // Writing through a symlink out is refused as well.
    let r = run(
        &rt,
        plugins::PROBE,
        r#"{"write_file":"/data/up/planted.txt"}"#,
        g.clone(),
    )
    .await;
    assert!(
        output(&r)["write_file"]
            .as_str()
            .unwrap_or_default()
            .starts_with("error")
    );
    assert!(!tmp.path().join("planted.txt").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn env_grants_pass_only_the_named_variables() {
    let rt = runtime();
    // PATH and HOME are set in any test environment; grant one of them.
    let r = run(
        &rt,
        plugins::PROBE,
        r#"{"env":true}"#,
        grants(r#"{"env":["PATH","NOT_SET_ANYWHERE_X"]}"#),
    )
    .await;
    assert_eq!(output(&r)["env"], serde_json::json!(["PATH"]));
    let r = run(
        &rt,
        plugins::PROBE,
        r#"{"env":true,"list_dir":"/"}"#,
        Arc::default(),
    )
    .await;
    let out = output(&r);
    assert_eq!(out["env"], serde_json::json!([]));
    assert!(
        out["list_dir"]
            .as_str()
            .unwrap_or_default()
            .starts_with("error"),
        "{out}"
    );
}

/// A one-thread HTTP server answering every request `200 pong`, counting
/// the connections it accepted.
fn pong_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong",
            );
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread")]
async fn http_ping_reaches_allowed_hosts_and_is_refused_the_rest() {
    let (port, hits) = pong_server();
    let rt = runtime();
    let url = format!("http://127.0.0.1:{port}/health");
    let args = format!(r#"{{"url":"{url}"}}"#);

    let allowed = grants(&format!(r#"{{"http":["http://127.0.0.1:{port}"]}}"#));
    let r = run(&rt, plugins::HTTP_PING, &args, allowed).await;
    let out = output(&r);
    assert_eq!(out["status"], 200);
    assert_eq!(out["bytes"], 4);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Another port, another host name, another scheme, or no grant at all:
    // refused before connecting, with a reason for the guest and the logs.
    for http in [
        format!(r#"["http://127.0.0.1:{}"]"#, port.wrapping_add(1)),
        format!(r#"["http://localhost:{port}"]"#),
        format!(r#"["https://127.0.0.1:{port}"]"#),
        "[]".to_owned(),
    ] {
        let g = grants(&format!(r#"{{"http":{http}}}"#));
        let r = run(&rt, plugins::HTTP_PING, &args, g).await;
        match &r.outcome {
            Outcome::Failed { message, retryable } => {
                assert!(!retryable, "{http}");
                assert!(message.contains("denied by the host"), "{http}: {message}");
                assert!(message.contains("capabilities.http"), "{message}");
            }
            other => panic!("{http}: expected a denial, got {other:?}"),
        }
        assert!(
            r.logs.iter().any(|l| l.source == LogSource::Host
                && l.message
                    .contains(&format!("http://127.0.0.1:{port} denied"))),
            "{http}: {:?}",
            r.logs
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a denied request connected");
}

#[test]
fn secrets_reach_the_guest_but_not_its_logs_or_output() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmcron"))
        .args(["plugin", "run", plugins::PROBE, "--json", "--args"])
        .arg(r#"{"echo_env":["PING_TOKEN"]}"#)
        .arg("--capabilities")
        .arg(r#"{"secrets":["PING_TOKEN"]}"#)
        .env("WASMCRON_SECRET_PING_TOKEN", "hunter2-s3cret")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("hunter2-s3cret"), "{stdout}");
    // Once in the captured stdout line, once in the output.
    assert_eq!(stdout.matches("[secret PING_TOKEN]").count(), 2, "{stdout}");

    // An unset secret fails the run, naming the variable to set.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmcron"))
        .args(["plugin", "run", plugins::PROBE, "--capabilities"])
        .arg(r#"{"secrets":["MISSING_ONE"]}"#)
        .env_remove("WASMCRON_SECRET_MISSING_ONE")
        .output()
        .expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(text.contains("WASMCRON_SECRET_MISSING_ONE"), "{text}");
}
