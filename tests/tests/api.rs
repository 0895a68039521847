//! The HTTP API of the real binary, with a SQLite and a PostgreSQL store
//! in turn, through a real HTTP client.

use serde_json::{Value, json};
use std::time::Duration;
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup};
use wasmcron_tests::stores::TestStore;

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");
const TOKEN: &str = "0123456789abcdef-test-token";

struct Api {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    fn new(host: &Host) -> Self {
        Self {
            base: host.api_url(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn raw_post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        // A client of its own: a refused oversized body ends its connection.
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until no plugin is still compiling: plugins compile in the
    /// background after start-up, and these tests want them in service.
    async fn plugins_ready(&self) -> &Self {
        self.until("/plugins", |list| {
            list.as_array().is_some_and(|l| {
                l.iter()
                    .all(|p| p["status"] != "compiling" && p.get("compiling").is_none())
            })
        })
        .await;
        self
    }

    /// Polls `GET path` until `check` holds (60 s safety net).
    async fn until(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..600 {
            let (status, body) = self.get(path).await;
            if status == 200 && check(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("GET {path} never satisfied the check");
    }
}

/// Asserts that an error answer's message holds `text`.
fn assert_message_has(resp: &(u16, Value), text: &str) {
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(text)),
        "{text:?} not in {resp:?}"
    );
}

fn assert_error(resp: &(u16, Value), status: u16, code: &str, field: Option<&str>) {
    assert_eq!(resp.0, status, "{resp:?}");
    assert_eq!(resp.1["error"]["code"], code, "{resp:?}");
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{resp:?}"
    );
    if let Some(f) = field {
        assert_eq!(resp.1["error"]["field"], f, "{resp:?}");
    }
}

fn greet() -> Value {
    json!({
        "id": "greet",
        "plugin": "hello",
        "trigger": {"type": "interval", "every": "1h"},
        "args": {"name": "api"}
    })
}

async fn jobs_are_created_listed_modified_run_and_deleted_with_clear_errors(db: TestStore) {
    let dir = setup("version = 1\n", &["hello", "alert"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;

    let (status, job) = api.post("/jobs", greet()).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["state"], "scheduled");
    assert!(job["next_run_time"].is_string(), "{job}");
    assert_eq!(job["spec"]["args"]["name"], "api");

    assert_error(&api.post("/jobs", greet()).await, 409, "conflict", None);
    let mut replace = greet();
    replace["replace_existing"] = json!(true);
    assert_eq!(api.post("/jobs", replace).await.0, 201);

    // Validation: each names its field.
    let bad = |patch: Value| {
        let mut spec = greet();
        spec["id"] = json!("bad");
        for (k, v) in patch.as_object().expect("object") {
            spec[k] = v.clone();
        }
        spec
    };
    for (body, field, says) in [
        (
            bad(json!({"trigger": {"type": "cron", "expr": "0 25 * * *"}})),
            "trigger.expr",
            "hour",
        ),
        (
            bad(json!({"trigger": {"type": "cron", "expr": "0 9 * * mon", "tz": "Mars/Olympus"}})),
            "trigger.tz",
            "Mars/Olympus",
        ),
        (
            bad(json!({"trigger": {"type": "interval", "every": "-5s"}})),
            "trigger.every",
            "-5s",
        ),
        (
            bad(json!({"trigger": {"type": "date", "at": "2001-01-01T00:00:00Z"}})),
            "trigger.at",
            "no fire time",
        ),
        (bad(json!({"plugin": "nope"})), "plugin", "nope"),
        (bad(json!({"plugin": "alert"})), "plugin", "listener"),
        (bad(json!({"id": "has space"})), "id", "has space"),
        (
            bad(json!({"capabilities": {"dirs": [{"host": "relative", "guest": "/d"}]}})),
            "capabilities.dirs[0].host",
            "absolute",
        ),
        // Issue 13: pause_after_failures and listener filters.
        (
            bad(json!({"pause_after_failures": 0})),
            "pause_after_failures",
            "at least 1",
        ),
        (
            bad(
                json!({"listeners": [{"webhook": "http://127.0.0.1:9/hook", "on": ["failed", "nope"]}]}),
            ),
            "listeners[0].on[1]",
            "'nope' is not one of",
        ),
        (
            bad(
                json!({"listeners": [{"webhook": "http://127.0.0.1:9/hook", "after_failures": 0}]}),
            ),
            "listeners[0].after_failures",
            "at least 1",
        ),
        // A zero grace would miss every run; zero keep_for drop each.
        (
            bad(json!({"misfire_grace": "0s"})),
            "misfire_grace",
            "would miss them all",
        ),
        (
            bad(json!({"keep_for": "0ms"})),
            "keep_for",
            "dropped as soon as it is recorded",
        ),
    ] {
        let resp = api.post("/jobs", body).await;
        assert_error(&resp, 422, "validation", Some(field));
        let message = resp.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{field}: {message}");
    }
    let unknown_field = api.post("/jobs", bad(json!({"colour": "blue"}))).await;
    assert_error(&unknown_field, 422, "validation", None);
    assert!(
        unknown_field.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("colour")
    );
    assert_error(
        &api.post("/jobs", json!({"id": "x", "plugin": "hello"}))
            .await,
        422,
        "validation",
        None,
    );
    assert_error(
        &api.raw_post("/jobs", b"{\"id\": ".to_vec()).await,
        400,
        "malformed_json",
        None,
    );
    let huge = format!("{{\"id\":\"x\",\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    assert_error(
        &api.raw_post("/jobs", huge.into_bytes()).await,
        413,
        "too_large",
        None,
    );

    // Listing, filters, paging.
    let (_, page) = api.get("/jobs").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["jobs"][0]["spec"]["id"], "greet");
    assert_eq!(api.get("/jobs?plugin=nope").await.1["total"], 0);
    assert_eq!(api.get("/jobs?state=paused").await.1["total"], 0);
    assert_eq!(api.get("/jobs?state=scheduled&limit=1").await.1["total"], 1);
    assert_error(
        &api.get("/jobs?limit=0").await,
        400,
        "bad_query",
        Some("limit"),
    );
    assert_error(&api.get("/jobs?state=sleepy").await, 400, "bad_query", None);
    assert_error(&api.get("/jobs/nope").await, 404, "not_found", None);

    // Modify (a merge patch), pause, resume.
    let (status, job) = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/greet",
            Some(json!({"args": {"name": "patched"}, "trigger": {"every": "2h"}})),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["spec"]["args"]["name"], "patched");
    assert_eq!(job["spec"]["trigger"]["every"], "2h");
    assert_error(
        &api.send(
            reqwest::Method::PATCH,
            "/jobs/greet",
            Some(json!({"id": "other"})),
        )
        .await,
        422,
        "validation",
        Some("id"),
    );
    assert_error(
        &api.send(
            reqwest::Method::PATCH,
            "/jobs/greet",
            Some(json!({"trigger": {"every": "soon"}})),
        )
        .await,
        422,
        "validation",
        Some("trigger.every"),
    );
    assert_error(
        &api.send(
            reqwest::Method::PATCH,
            "/jobs/greet",
            Some(json!({"misfire_grace": "0s"})),
        )
        .await,
        422,
        "validation",
        Some("misfire_grace"),
    );
    assert_eq!(
        api.post("/jobs/greet/pause", json!({})).await.1["state"],
        "paused"
    );
    assert_eq!(api.get("/jobs?state=paused").await.1["total"], 1);
    assert_eq!(
        api.post("/jobs/greet/resume", json!({})).await.1["state"],
        "scheduled"
    );

    // Run now; its record has the output and logs.
    let (status, run) = api.post("/jobs/greet/run", json!({})).await;
    assert_eq!(status, 202, "{run}");
    let run_id = run["run_id"].as_str().expect("run id").to_owned();
    let done = api
        .until(&format!("/runs/{run_id}"), |r| r["status"] == "finished")
        .await;
    assert_eq!(done["outcome"]["kind"], "succeeded");
    assert_eq!(done["outcome"]["output"], "Hello, patched!");
    assert!(
        done["logs"].as_array().is_some_and(|l| !l.is_empty()),
        "{done}"
    );
    let (_, runs) = api.get("/jobs/greet/runs?limit=10").await;
    assert_eq!(runs["runs"][0]["run_id"], run_id.as_str());
    assert_error(&api.get("/runs/nope").await, 404, "not_found", None);

    assert_eq!(done["args"], r#"{"name":"patched"}"#);

    // Replay: same plugin version, so it runs again, with the args the
    // original ran with even though the job's have changed since.
    let (status, _) = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/greet",
            Some(json!({"args": {"name": "changed"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, replay) = api.post(&format!("/runs/{run_id}/replay"), json!({})).await;
    assert_eq!(status, 202, "{replay}");
    assert_ne!(replay["run_id"], run_id.as_str());
    assert_eq!(replay["scheduled_at"], done["scheduled_at"]);
    let replayed = api
        .until(
            &format!("/runs/{}", replay["run_id"].as_str().unwrap_or_default()),
            |r| r["status"] == "finished",
        )
        .await;
    assert_eq!(replayed["outcome"]["output"], "Hello, patched!");
    assert_error(
        &api.post("/runs/nope/replay", json!({})).await,
        404,
        "not_found",
        None,
    );

    // A new version of the plugin: the old run cannot be replayed as it was.
    let old_hash = api.get("/plugins/hello").await.1["hash"].clone();
    std::fs::copy(
        wasmcron_tests::plugins::PROBE,
        dir.path().join("plugins/hello.wasm"),
    )
    .expect("replace hello");
    api.until("/plugins/hello", |p| p["hash"] != old_hash).await;
    let stale = api.post(&format!("/runs/{run_id}/replay"), json!({})).await;
    assert_error(&stale, 409, "conflict", None);
    assert!(
        stale.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no longer loaded"),
        "{stale:?}"
    );
    std::fs::copy(
        wasmcron_tests::plugins::HELLO,
        dir.path().join("plugins/hello.wasm"),
    )
    .expect("restore hello");
    api.until("/plugins/hello", |p| p["hash"] == old_hash).await;

    // Plugins.
    let (_, plugins) = api.get("/plugins").await;
    let hello = plugins
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "hello"))
        .expect("hello listed")
        .clone();
    assert_eq!(hello["status"], "loaded");
    assert_eq!(hello["hash"].as_str().map(str::len), Some(64));
    assert_eq!(hello["jobs"], 1);
    assert_eq!(
        api.get("/plugins/alert").await.1["world"],
        "wasmcron:plugin/listener@0.2.0"
    );
    assert_error(&api.get("/plugins/nope").await, 404, "not_found", None);

    // Health and metrics.
    assert_eq!(api.get("/healthz").await.1["status"], "ok");
    let (_, metrics) = api.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    let succeeded: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wasmcron_runs_total{outcome=\"succeeded\"} "))
        .and_then(|n| n.parse().ok())
        .expect("runs counter");
    assert!(succeeded >= 1, "{metrics}");
    assert!(
        metrics.contains("wasmcron_fire_lateness_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmcron_jobs{state=\"scheduled\"} 1"),
        "{metrics}"
    );

    // Delete.
    let (status, _) = api.send(reqwest::Method::DELETE, "/jobs/greet", None).await;
    assert_eq!(status, 204);
    assert_error(&api.get("/jobs/greet").await, 404, "not_found", None);
    // A deleted job's history goes with it.
    assert_error(
        &api.post(&format!("/runs/{run_id}/replay"), json!({})).await,
        404,
        "not_found",
        None,
    );
    assert_error(&api.get("/no/such/route").await, 404, "not_found", None);
    assert_error(
        &api.send(reqwest::Method::DELETE, "/jobs", None).await,
        405,
        "method_not_allowed",
        None,
    );
    host.signal("-TERM");
    assert!(host.wait().success());
}
backends!(jobs_are_created_listed_modified_run_and_deleted_with_clear_errors: sqlite, postgres);

async fn a_token_guards_changes_and_optionally_reads(db: TestStore) {
    let dir = setup("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &["--token", TOKEN]);
    let anonymous = Api::new(&host);
    assert_error(
        &anonymous.post("/jobs", greet()).await,
        401,
        "unauthorized",
        None,
    );
    let wrong = Api::new(&host).with_token("0123456789abcdef-wrong-token");
    assert_error(
        &wrong.post("/jobs", greet()).await,
        401,
        "unauthorized",
        None,
    );
    let authed = Api::new(&host).with_token(TOKEN);
    assert_eq!(authed.post("/jobs", greet()).await.0, 201);
    assert_eq!(anonymous.get("/jobs").await.0, 200);
    assert_error(
        &anonymous
            .send(reqwest::Method::DELETE, "/jobs/greet", None)
            .await,
        401,
        "unauthorized",
        None,
    );
    drop(host);

    let host = Host::start_with_db_url(
        BIN,
        dir.path(),
        &db.db_arg(),
        &["--token", TOKEN, "--auth-reads"],
    );
    let anonymous = Api::new(&host);
    assert_error(&anonymous.get("/jobs").await, 401, "unauthorized", None);
    assert_eq!(anonymous.get("/healthz").await.0, 200);
    assert_eq!(
        Api::new(&host).with_token(TOKEN).get("/jobs").await.1["total"],
        1
    );
}
backends!(a_token_guards_changes_and_optionally_reads: sqlite, postgres);

#[test]
fn exposing_the_api_without_a_token_is_refused_at_start() {
    let dir = setup("version = 1\n", &[]);
    let out = std::process::Command::new(BIN)
        .args([
            "run",
            "--db",
            "memory",
            "--listen",
            "0.0.0.0:0",
            "--plugins",
        ])
        .arg(dir.path().join("plugins"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("reachable from other machines"), "{stderr}");
    assert!(stderr.contains("--token"), "{stderr}");
}

async fn the_event_stream_delivers_a_runs_events_in_order(db: TestStore) {
    let dir = setup("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    assert_eq!(api.post("/jobs", greet()).await.0, 201);
    let mut other = greet();
    other["id"] = json!("other");
    assert_eq!(api.post("/jobs", other).await.0, 201);

    let mut stream = api
        .http
        .get(format!("{}/events?job=greet", api.base))
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);
    // Events for another job must be filtered out.
    assert_eq!(api.post("/jobs/other/run", json!({})).await.0, 202);
    let (_, run) = api.post("/jobs/greet/run", json!({})).await;
    let run_id = run["run_id"].as_str().expect("run id").to_owned();

    let mut text = String::new();
    let mut names = Vec::new();
    let read = async {
        while let Some(chunk) = stream.chunk().await.expect("chunk") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                let name = frame.lines().find_map(|l| l.strip_prefix("event: "));
                let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(name), Some(data)) = (name, data) {
                    let v: Value = serde_json::from_str(data).expect("event JSON");
                    assert_eq!(v["job_id"], "greet", "{frame}");
                    assert_eq!(v["event"], name);
                    if v["run_id"] == run_id.as_str() {
                        names.push(name.to_owned());
                        if name == "run-succeeded" {
                            return;
                        }
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the run's events");
    assert_eq!(names, ["run-submitted", "run-started", "run-succeeded"]);

    // An open stream does not hold the shutdown up: it is ended.
    host.signal("-TERM");
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream was not closed at shutdown");
    assert!(host.wait().success());
}
backends!(the_event_stream_delivers_a_runs_events_in_order: sqlite, postgres);

async fn the_openapi_document_describes_the_served_routes(db: TestStore) {
    let dir = setup("version = 1\n", &[]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    let (status, doc) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (path, method) in [
        ("/jobs", "post"),
        ("/jobs", "get"),
        ("/jobs/{id}", "patch"),
        ("/jobs/{id}", "delete"),
        ("/jobs/{id}/runs", "get"),
        ("/runs/{run_id}/replay", "post"),
        ("/plugins/{name}", "get"),
        ("/events", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for name in [
        "JobSpec",
        "TriggerSpec",
        "JobInfo",
        "RunRecord",
        "ErrorBody",
    ] {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
}
backends!(the_openapi_document_describes_the_served_routes: sqlite, postgres);

fn cli(args: &[&str], url: &str) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .args(["--url", url])
        .env_remove("WASMCRON_TOKEN")
        .output()
        .expect("run the CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn the_cli_client_drives_a_running_host(db: TestStore) {
    let dir = setup("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let url = host.api_url();
    Api::new(&host).plugins_ready().await;
    let spec = dir.path().join("greet.toml");
    std::fs::write(
        &spec,
        "id = \"greet\"\nplugin = \"hello\"\ntrigger = { type = \"cron\", expr = \"0 9 * * mon\", tz = \"Asia/Shanghai\" }\nargs = { name = \"cli\" }\n",
    )
    .expect("spec");
    let spec = spec.to_string_lossy().into_owned();

    let (ok, out, err) = cli(&["jobs", "add", &spec], &url);
    assert!(ok, "{err}");
    assert!(
        out.contains("greet") && out.contains("cron 0 9 * * mon"),
        "{out}"
    );
    let (ok, _, err) = cli(&["jobs", "add", &spec], &url);
    assert!(!ok);
    assert!(
        err.contains("already exists") && err.contains("409"),
        "{err}"
    );
    assert!(cli(&["jobs", "add", &spec, "--replace"], &url).0);

    let (ok, out, _) = cli(&["jobs", "list"], &url);
    assert!(ok);
    let mut lines = out.lines();
    assert!(lines.next().is_some_and(|h| h.starts_with("ID")), "{out}");
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("greet") && l.contains("scheduled")),
        "{out}"
    );
    let (ok, out, _) = cli(&["jobs", "list", "--json"], &url);
    assert!(ok);
    let page: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(page["total"], 1);

    let (ok, out, err) = cli(&["jobs", "run", "greet"], &url);
    assert!(ok, "{err}");
    let run_id = out.split_whitespace().nth(1).expect("run id").to_owned();
    let api = Api::new(&host);
    api.until(&format!("/runs/{run_id}"), |r| r["status"] == "finished")
        .await;
    let (ok, out, _) = cli(&["runs", "show", &run_id], &url);
    assert!(ok);
    assert!(out.contains("output:  Hello, cli!"), "{out}");
    let (ok, out, _) = cli(&["runs", "list", "greet"], &url);
    assert!(
        ok && out.contains(&run_id) && out.contains("succeeded"),
        "{out}"
    );
    // Which host ran it (here the one host, named machine:port).
    let port = url.rsplit(':').next().unwrap_or_default();
    assert!(
        out.lines().next().is_some_and(|h| h.contains("HOST"))
            && out
                .lines()
                .any(|l| l.contains(&run_id) && l.contains(&format!(":{port}"))),
        "{out}"
    );
    let (ok, out, _) = cli(&["plugins", "list"], &url);
    assert!(
        ok && out.contains("hello") && out.contains("loaded"),
        "{out}"
    );

    assert!(cli(&["jobs", "pause", "greet"], &url).1.contains("paused"));
    assert!(
        cli(&["jobs", "resume", "greet"], &url)
            .1
            .contains("scheduled")
    );
    assert!(cli(&["jobs", "rm", "greet"], &url).0);
    let (ok, _, err) = cli(&["jobs", "show", "greet"], &url);
    assert!(
        !ok && err.contains("not found") && err.contains("404"),
        "{err}"
    );

    let (ok, _, err) = cli(&["jobs", "list"], "http://127.0.0.1:9");
    assert!(!ok && err.contains("cannot reach wasmcron"), "{err}");
}
backends!(the_cli_client_drives_a_running_host: sqlite, postgres);

async fn a_log_flooding_jobs_history_stays_small_and_its_logs_stay_readable(db: TestStore) {
    // Every second a run prints 2,000 lines of 100 bytes; the runtime
    // keeps 64 KiB of them (about 650 records) per run.
    let jobs = r#"version = 1

[[jobs]]
id = "flood"
plugin = "probe"
trigger = { type = "interval", every = "1s" }
args = { print_lines = 2000 }
"#;
    let dir = setup(jobs, &["probe"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    let finished = |page: &Value| {
        page["runs"].as_array().map_or(0, |r| {
            r.iter().filter(|r| r["status"] == "finished").count()
        })
    };
    api.until("/jobs/flood/runs?limit=1000", |p| finished(p) >= 3)
        .await;

    // The list: no logs, only how many there are; a few hundred bytes a run.
    let resp = reqwest::get(format!("{}/jobs/flood/runs?limit=1000", api.base))
        .await
        .expect("list");
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.expect("body");
    let page: Value = serde_json::from_slice(&body).expect("json");
    let runs = page["runs"].as_array().expect("runs").clone();
    let done: Vec<&Value> = runs.iter().filter(|r| r["status"] == "finished").collect();
    let logged: u64 = done.iter().filter_map(|r| r["log_count"].as_u64()).sum();
    assert!(runs.iter().all(|r| r.get("logs").is_none()), "{page}");
    assert!(
        done.iter()
            .all(|r| r["log_count"].as_u64().is_some_and(|n| n > 100)),
        "{page}"
    );
    assert!(
        body.len() < 1024 * runs.len(),
        "{} bytes for {} runs holding {logged} log records",
        body.len(),
        runs.len()
    );
    assert_eq!(page["next_offset"], Value::Null);
    let (_, first) = api.get("/jobs/flood/runs?limit=1").await;
    assert_eq!(first["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["next_offset"], 1);

    // One run carries its logs (all of them: fewer than a page), and the
    // logs route pages through the same records.
    let run = done[0];
    let run_id = run["run_id"].as_str().expect("run id");
    let (status, detail) = api.get(&format!("/runs/{run_id}")).await;
    assert_eq!(status, 200);
    let logs = detail["logs"].as_array().expect("logs").clone();
    assert_eq!(Some(logs.len() as u64), run["log_count"].as_u64());
    assert_eq!(detail["logs_next_offset"], Value::Null);
    assert!(
        logs.last()
            .and_then(|l| l["message"].as_str())
            .is_some_and(|m| m.contains("dropped")),
        "the truncation marker is the last record: {:?}",
        logs.last()
    );
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let (status, p) = api
            .get(&format!("/runs/{run_id}/logs?offset={offset}&limit=100"))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["total"], logs.len());
        paged.extend(p["logs"].as_array().expect("page").iter().cloned());
        match p["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(paged, logs);
    assert_error(
        &api.get(&format!("/runs/{run_id}/logs?limit=5000")).await,
        400,
        "bad_query",
        Some("limit"),
    );
    assert_error(&api.get("/runs/nope/logs").await, 404, "not_found", None);

    // The CLI: `runs list` without logs, `runs show` with all of them.
    let (ok, out, err) = cli(&["runs", "list", "flood"], &api.base);
    assert!(
        ok && out.contains(run_id) && out.contains("LOGS"),
        "{out}{err}"
    );
    assert!(out.len() < 64 * 1024, "{} bytes", out.len());
    let (ok, out, err) = cli(&["runs", "show", run_id], &api.base);
    assert!(ok, "{err}");
    assert!(
        out.contains("dropped") && out.lines().count() > logs.len(),
        "{out}"
    );

    // The OpenAPI document describes what was served.
    let (_, doc) = api.get("/openapi.json").await;
    assert!(doc["paths"]["/runs/{run_id}/logs"]["get"].is_object());
    for name in ["RunSummary", "RunDetail", "LogPage", "RunPage"] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "schema {name} missing"
        );
    }
}
backends!(a_log_flooding_jobs_history_stays_small_and_its_logs_stay_readable: sqlite, postgres);

#[path = "api/scheduling.rs"]
mod scheduling;

#[path = "api/apply.rs"]
mod apply;

#[path = "api/previews.rs"]
mod previews;

#[path = "api/control.rs"]
mod control;

#[path = "api/calendars.rs"]
mod calendars;

/// Named tokens with roles (issue 15, item 1).
#[path = "api/roles.rs"]
mod roles;

/// The audit log (issue 15, item 2).
#[path = "api/audit.rs"]
mod audit;

/// The operator's grant policy and the SSRF check (issue 15 item 3).
#[path = "api/policy.rs"]
mod policy;

/// `GET /jobs/export`, `POST /jobs/import` and their CLI (issue 15 item 4).
#[path = "api/transfer.rs"]
mod transfer;

/// `GET /runs`, `GET /stats`, `GET /auth` and the dashboard's files (issue 14).
#[path = "api/overview.rs"]
mod overview;

// Issue 15, item 6: run history paged by cursor.
#[path = "api/paging.rs"]
mod paging;

// Issue 15, item 5: the CLI for people (jobs add from flags, jobs edit, completions).
#[path = "api/authoring.rs"]
mod authoring;

// A plugin's declared args schema (issue 16 item 6).
#[path = "api/args_schema.rs"]
mod args_schema;
