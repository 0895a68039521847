//! The operator's grant policy (`wasmcron run --allow-*`, issue 15 item
//! 3): grants outside it refused from the API, a jobs file and a sidecar;
//! stored jobs outside a narrower policy paused at start; and the SSRF
//! check of allowlisted names that resolve to loopback.

use super::{Api, BIN, assert_error};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;
use wasmcron_tests::host::{Host, setup};

fn job(id: &str, caps: Value) -> Value {
    json!({"id": id, "plugin": "hello", "trigger": {"type": "interval", "every": "1h"},
           "capabilities": caps})
}

fn message(resp: &(u16, Value)) -> String {
    resp.1["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_outside_the_policy_are_refused_from_the_api_a_jobs_file_and_a_sidecar() {
    let dir = setup("version = 1\n", &["hello"]);
    let allowed = dir.path().join("allowed");
    std::fs::create_dir_all(allowed.join("reports")).unwrap();
    // A symlink inside the allowed tree that leads out of it.
    std::os::unix::fs::symlink("/etc", allowed.join("etc-link")).unwrap();
    let root = allowed.display().to_string();
    let policy = [
        "--allow-dirs",
        root.as_str(),
        "--allow-env",
        "TZ",
        "--allow-http",
        "https://*.example.com",
        "--allow-secrets",
        "TOKEN",
    ];
    let host = Host::start(BIN, dir.path(), &policy);
    let api = Api::new(&host);
    api.plugins_ready().await;

    // Inside the policy: accepted.
    let inside = json!({"dirs": [{"host": format!("{root}/reports"), "guest": "/data"}],
        "env": ["TZ"], "http": ["https://api.example.com"], "secrets": ["TOKEN"]});
    let resp = api.post("/jobs", job("inside", inside)).await;
    assert_eq!(resp.0, 201, "{resp:?}");

    // Each kind outside: 422 naming the field and the flag.
    for (caps, field, flag) in [
        (
            json!({"dirs": [{"host": "/etc", "guest": "/etc"}]}),
            "capabilities.dirs[0]",
            "--allow-dirs",
        ),
        (
            json!({"dirs": [{"host": format!("{root}/reports"), "guest": "/r"},
                            {"host": format!("{root}/etc-link"), "guest": "/e"}]}),
            "capabilities.dirs[1]",
            "--allow-dirs",
        ),
        (
            json!({"env": ["TZ", "HOME"]}),
            "capabilities.env[1]",
            "--allow-env",
        ),
        (
            json!({"http": ["https://evil.org"]}),
            "capabilities.http[0]",
            "--allow-http",
        ),
        (
            json!({"secrets": ["OTHER"]}),
            "capabilities.secrets[0]",
            "--allow-secrets",
        ),
    ] {
        let resp = api.post("/jobs", job("outside", caps)).await;
        assert_error(&resp, 422, "validation", Some(field));
        let m = message(&resp);
        assert!(m.contains(flag) && m.contains("ask the operator"), "{m}");
    }
    let m = message(
        &api.post(
            "/jobs",
            job(
                "outside",
                json!({"dirs": [{"host": "/etc", "guest": "/etc"}]}),
            ),
        )
        .await,
    );
    assert!(
        m.contains(&format!(
            "`/etc` is outside the operator's --allow-dirs ({root}"
        )),
        "{m}"
    );
    assert_eq!(api.get("/jobs/outside").await.0, 404);

    // A patch and a bulk apply are held to it too.
    let resp = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/inside",
            Some(json!({"capabilities": {"env": ["PATH"]}})),
        )
        .await;
    assert_error(&resp, 422, "validation", Some("capabilities.env[0]"));
    let resp = api
        .send(
            reqwest::Method::PUT,
            "/jobs",
            Some(json!({"jobs": [job("bulk", json!({"env": ["PATH"]}))]})),
        )
        .await;
    assert_error(
        &resp,
        422,
        "validation",
        Some("jobs[0].capabilities.env[0]"),
    );

    // A sidecar whose job asks for more: that job is not added, and the
    // log says why; one whose default capabilities do: refused whole.
    std::fs::write(
        dir.path().join("plugins/hello.toml"),
        "[[jobs]]\nid = \"from-sidecar\"\ntrigger = { type = \"interval\", every = \"1h\" }\n\
         capabilities = { env = [\"HOME\"] }\n",
    )
    .unwrap();
    wasmcron_tests::host::eventually(&host, "the sidecar job refused", || {
        host.log().contains("sidecar job refused")
    });
    let log = host.log();
    assert!(
        log.contains("capabilities.env[0]") && log.contains("--allow-env"),
        "{log}"
    );
    assert_eq!(api.get("/jobs/from-sidecar").await.0, 404);
    std::fs::write(
        dir.path().join("plugins/hello.toml"),
        "[capabilities]\nenv = [\"HOME\"]\n\n[[jobs]]\nid = \"sidecar-2\"\n\
         trigger = { type = \"interval\", every = \"1h\" }\n",
    )
    .unwrap();
    wasmcron_tests::host::eventually(&host, "the sidecar refused", || {
        host.log().contains("sidecar refused")
    });
    assert_eq!(api.get("/jobs/sidecar-2").await.0, 404);
    drop(host);

    // A jobs file granting more stops the start, naming the job, field
    // and flag.
    std::fs::remove_file(dir.path().join("plugins/hello.toml")).unwrap();
    std::fs::write(
        dir.path().join("jobs.toml"),
        "version = 1\n[[jobs]]\nid = \"filed\"\nplugin = \"hello\"\n\
         trigger = { type = \"interval\", every = \"1h\" }\n\
         capabilities = { secrets = [\"ROOT_PASSWORD\"] }\n",
    )
    .unwrap();
    let host = Host::start(BIN, dir.path(), &policy);
    let log_path = host.log_path().to_owned();
    let status = host.wait();
    assert!(!status.success());
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(
        log.contains("filed")
            && log.contains("capabilities.secrets[0]")
            && log.contains("--allow-secrets"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_job_outside_a_narrower_policy_is_paused_at_start_with_the_reason() {
    let dir = setup("version = 1\n", &["hello"]);
    let host = Host::start(BIN, dir.path(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let resp = api
        .post("/jobs", job("wide", json!({"env": ["HOME"]})))
        .await;
    assert_eq!(resp.0, 201, "{resp:?}");
    let resp = api
        .post("/jobs", job("narrow", json!({"env": ["TZ"]})))
        .await;
    assert_eq!(resp.0, 201, "{resp:?}");
    drop(host);

    let host = Host::start(BIN, dir.path(), &["--allow-env", "TZ"]);
    let api = Api::new(&host);
    let (_, wide) = api.get("/jobs/wide").await;
    assert_eq!(wide["paused"], true, "{wide}");
    let reason = wide["paused_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("capabilities.env[0]") && reason.contains("--allow-env"),
        "{wide}"
    );
    // Kept as it was: its spec and its neighbour untouched.
    assert_eq!(wide["spec"]["capabilities"]["env"], json!(["HOME"]));
    let (_, narrow) = api.get("/jobs/narrow").await;
    assert_eq!(narrow["paused"], false, "{narrow}");
    // The pause is in the audit log, as the host's own change.
    let (_, audit) = api.get("/audit?job=wide").await;
    let paused = audit["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "job_paused"))
        .cloned()
        .unwrap_or_else(|| panic!("no job_paused entry: {audit}"));
    assert_eq!(paused["actor"], "host", "{paused}");
    assert!(
        paused["detail"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("--allow-env")),
        "{paused}"
    );
    // A resume as it is would only make refused runs: refused, naming the
    // grant and the flag; after a PATCH within the policy it resumes.
    let resume = api.post("/jobs/wide/resume", json!({})).await;
    assert_eq!(resume.0, 422, "{resume:?}");
    let message = resume.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--allow-env"), "{resume:?}");
    assert_eq!(api.get("/jobs/wide").await.1["paused"], true);
    let patched = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/wide",
            Some(json!({"capabilities": {"env": ["TZ"]}})),
        )
        .await;
    assert_eq!(patched.0, 200, "{patched:?}");
    let resumed = api.post("/jobs/wide/resume", json!({})).await;
    assert_eq!(resumed.0, 200, "{resumed:?}");
    assert_eq!(resumed.1["paused"], false, "{resumed:?}");
}

/// A one-thread HTTP server on 127.0.0.1 answering `200 pong`.
fn pong_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
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
    port
}

/// Runs job `id` now and waits for its run to end; the run's record.
async fn run_now(api: &Api, id: &str) -> Value {
    let (status, run) = api.post(&format!("/jobs/{id}/run"), json!({})).await;
    assert_eq!(status, 202, "{run}");
    let run_id = run["run_id"].as_str().expect("run id").to_owned();
    for _ in 0..600 {
        let (_, run) = api.get(&format!("/runs/{run_id}")).await;
        if run["status"] != "running" && run["status"] != "pending" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run_id} never ended");
}

fn logs(run: &Value) -> String {
    run["logs"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|r| r["message"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowlisted_name_that_resolves_to_loopback_is_refused_unless_allowed() {
    let port = pong_server();
    let dir = setup("version = 1\n", &["http_ping"]);
    let host = Host::start(BIN, dir.path(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let ping = |http: Value| {
        json!({"id": "ping", "plugin": "http_ping",
               "trigger": {"type": "interval", "every": "1h"},
               "args": {"url": format!("http://localhost:{port}/health")},
               "capabilities": {"http": http}})
    };

    // Allowlisted by name only: refused once `localhost` resolves, as the
    // guest's error, with the address and the way out in the run's log.
    let resp = api
        .post("/jobs", ping(json!([format!("http://localhost:{port}")])))
        .await;
    assert_eq!(resp.0, 201, "{resp:?}");
    let run = run_now(&api, "ping").await;
    assert_eq!(run["outcome"]["kind"], "failed", "{run}");
    let log = logs(&run);
    assert!(
        log.contains("resolves to")
            && log.contains("127.0.0.1")
            && log.contains("--allow-private-http"),
        "{run}"
    );

    // The entry names the address: allowed.
    let resp = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/ping",
            Some(json!({"capabilities": {"http": [
                format!("http://localhost:{port}"), format!("http://127.0.0.1:{port}")]}})),
        )
        .await;
    assert_eq!(resp.0, 200, "{resp:?}");
    let run = run_now(&api, "ping").await;
    assert_eq!(run["outcome"]["kind"], "succeeded", "{run}");
    assert!(
        run["outcome"]["output"]
            .as_str()
            .is_some_and(|o| o.contains("\"status\":200")),
        "{run}"
    );

    // The literal address still works as it always did.
    let resp = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/ping",
            Some(
                json!({"args": {"url": format!("http://127.0.0.1:{port}/health")},
                        "capabilities": {"http": [format!("http://127.0.0.1:{port}")]}}),
            ),
        )
        .await;
    assert_eq!(resp.0, 200, "{resp:?}");
    let run = run_now(&api, "ping").await;
    assert_eq!(run["outcome"]["kind"], "succeeded", "{run}");
    drop(host);

    // The operator allows private addresses: the name alone is enough.
    let host = Host::start(BIN, dir.path(), &["--allow-private-http"]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let resp = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/ping",
            Some(
                json!({"args": {"url": format!("http://localhost:{port}/health")},
                        "capabilities": {"http": [format!("http://localhost:{port}")]}}),
            ),
        )
        .await;
    assert_eq!(resp.0, 200, "{resp:?}");
    let run = run_now(&api, "ping").await;
    assert_eq!(run["outcome"]["kind"], "succeeded", "{run}");
}
