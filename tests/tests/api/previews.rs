//! Issue 13, "scheduling control", items 3 and 9: a run now with other
//! args or another `scheduled_at`, and previews of fire times
//! (`next_fires` on `GET /jobs/{id}`, `GET /cron/next`, `GET
//! /cron/explain`), through the real binary, its HTTP API and CLI.

use super::{Api, BIN, TOKEN, assert_error, cli};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup_warm};
use wasmcron_tests::stores::TestStore;

fn time(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn times(v: &Value) -> Vec<DateTime<Utc>> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(time)
        .collect()
}

/// Every run of `job` the API lists, newest first.
async fn runs(api: &Api, job: &str) -> Vec<Value> {
    let (status, page) = api.get(&format!("/jobs/{job}/runs?limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    page["runs"].as_array().cloned().unwrap_or_default()
}

async fn finished(api: &Api, run: &Value) -> Value {
    let id = run["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run id: {run}"));
    api.until(&format!("/runs/{id}"), |r| r["status"] == "finished")
        .await
}

/// `POST path` with `body` as raw bytes and `content_type` (or none).
async fn post_raw(api: &Api, path: &str, content_type: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", api.base))
        .body(body.to_vec());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn a_run_now_takes_other_args_and_another_time(db: TestStore) {
    let dir = setup_warm("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let (status, job) = api
        .post(
            "/jobs",
            json!({"id": "greet", "plugin": "hello", "max_instances": 10,
                   "trigger": {"type": "interval", "every": "1h"}, "args": {"name": "api"}}),
        )
        .await;
    assert_eq!(status, 201, "{job}");

    // Other args and another scheduled_at: recorded, and seen by the guest.
    let (status, run) = api
        .post(
            "/jobs/greet/run",
            json!({"args": {"name": "Ada"}, "scheduled_at": "2026-01-02T03:04:05.678+01:00"}),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    assert_eq!(run["scheduled_at"], "2026-01-02T02:04:05.678Z", "{run}");
    let args: Value =
        serde_json::from_str(run["args"].as_str().expect("args recorded")).expect("json");
    assert_eq!(args, json!({"name": "Ada"}));
    let done = finished(&api, &run).await;
    assert_eq!(done["outcome"]["output"], "Hello, Ada!", "{done}");
    assert_eq!(done["scheduled_at"], "2026-01-02T02:04:05.678Z", "{done}");
    assert_eq!(done["args"], run["args"], "{done}");
    assert!(
        done["logs"]
            .as_array()
            .is_some_and(|l| l.iter().any(|r| r["message"]
                .as_str()
                .is_some_and(|m| m.contains("saying hello to Ada")))),
        "{done}"
    );
    // The job itself is unchanged.
    let (_, shown) = api.get("/jobs/greet").await;
    assert_eq!(shown["spec"]["args"], json!({"name": "api"}));

    // Args alone: scheduled now. A replay of that run keeps its args.
    let before = Utc::now();
    let (status, run) = api
        .post("/jobs/greet/run", json!({"args": {"name": "Grace"}}))
        .await;
    assert_eq!(status, 202, "{run}");
    let at = time(&run["scheduled_at"]);
    assert!(
        at >= before - chrono::Duration::seconds(1)
            && at <= Utc::now() + chrono::Duration::seconds(1),
        "{run}"
    );
    assert_eq!(
        finished(&api, &run).await["outcome"]["output"],
        "Hello, Grace!"
    );

    // No body, an empty one, `null` (what the CLI sent before) and `{}`:
    // a plain run now with the job's args, as before.
    for (content_type, body) in [
        (None, &b""[..]),
        (Some("application/json"), &b""[..]),
        (Some("application/json"), &b"null"[..]),
        (Some("application/json"), &b"{}"[..]),
        (Some("application/json"), &b"{\"args\": null}"[..]),
    ] {
        let (status, run) = post_raw(&api, "/jobs/greet/run", content_type, body).await;
        assert_eq!(status, 202, "{content_type:?} {body:?}: {run}");
        let done = finished(&api, &run).await;
        assert_eq!(done["outcome"]["output"], "Hello, api!", "{body:?}: {done}");
        let at = time(&done["scheduled_at"]);
        assert!(Utc::now() - at < chrono::Duration::seconds(60), "{done}");
    }

    // Bad bodies: 422 (or 400/415) naming the field, and no run recorded.
    let recorded = runs(&api, "greet").await.len();
    for (body, field, says) in [
        (json!({"args": [1, 2]}), Some("args"), "object"),
        (json!({"args": "name=Ada"}), Some("args"), "object"),
        (json!({"args": 7}), Some("args"), "object"),
        (
            json!({"scheduled_at": "yesterday"}),
            Some("scheduled_at"),
            "RFC 3339",
        ),
        (
            json!({"scheduled_at": "2026-01-02 03:04"}),
            Some("scheduled_at"),
            "RFC 3339",
        ),
        (
            json!({"scheduled_at": 1767225600}),
            Some("scheduled_at"),
            "string",
        ),
        (json!({"colour": "blue"}), Some("colour"), "colour"),
        (json!({"args": {}, "when": "now"}), Some("when"), "when"),
        (json!([1]), Some("body"), "must be a JSON object"),
        (json!("run"), Some("body"), "not a string"),
    ] {
        let resp = api.post("/jobs/greet/run", body.clone()).await;
        assert_error(&resp, 422, "validation", field);
        let message = resp.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {message}");
    }
    assert_error(
        &post_raw(
            &api,
            "/jobs/greet/run",
            Some("application/json"),
            b"{\"args\":",
        )
        .await,
        400,
        "malformed_json",
        None,
    );
    assert_error(
        &post_raw(
            &api,
            "/jobs/greet/run",
            Some("text/plain"),
            b"{\"args\": {}}",
        )
        .await,
        415,
        "unsupported_media_type",
        None,
    );
    assert_error(
        &api.post("/jobs/nope/run", json!({"args": {"name": "x"}}))
            .await,
        404,
        "not_found",
        None,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        runs(&api, "greet").await.len(),
        recorded,
        "a refused body recorded a run"
    );

    // The CLI: `jobs run ID --args JSON --at TIME`.
    let url = api.base.clone();
    let (ok, out, err) = cli(
        &[
            "jobs",
            "run",
            "greet",
            "--args",
            r#"{"name": "cli"}"#,
            "--at",
            "2026-03-01T09:00:00+08:00",
        ],
        &url,
    );
    assert!(ok, "{err}");
    let run_id = out.split_whitespace().nth(1).expect("run id").to_owned();
    let done = api
        .until(&format!("/runs/{run_id}"), |r| r["status"] == "finished")
        .await;
    assert_eq!(done["outcome"]["output"], "Hello, cli!", "{done}");
    assert_eq!(done["scheduled_at"], "2026-03-01T01:00:00Z", "{done}");
    let (ok, out, _) = cli(&["runs", "show", &run_id], &url);
    assert!(ok && out.contains("Hello, cli!"), "{out}");
    // Bad --args and --at are refused before any request (nothing listens
    // on port 9: a request would fail with "cannot reach").
    for (args, says) in [
        (
            &["jobs", "run", "greet", "--args", "{name: cli}"][..],
            "--args is not valid JSON",
        ),
        (
            &["jobs", "run", "greet", "--args", "[1]"][..],
            "--args must be a JSON object",
        ),
        (
            &["jobs", "run", "greet", "--at", "tomorrow"][..],
            "--at 'tomorrow' is not an RFC 3339 time",
        ),
    ] {
        let (ok, out, err) = cli(args, "http://127.0.0.1:9");
        assert!(!ok, "{args:?}: {out}");
        assert!(
            err.contains(says) && !err.contains("cannot reach"),
            "{args:?}: {err}"
        );
    }
}
backends!(a_run_now_takes_other_args_and_another_time: sqlite, postgres);

async fn a_jobs_next_fires_are_the_fires_the_scheduler_will_take(db: TestStore) {
    let dir = setup_warm("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;

    // A cron job: the same five as GET /cron/next from its creation.
    let expr = "0 9 * * mon-fri";
    let (status, job) = api
        .post(
            "/jobs",
            json!({"id": "weekdays", "plugin": "hello",
                   "trigger": {"type": "cron", "expr": expr, "tz": "Europe/Berlin"}}),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let (status, shown) = api.get("/jobs/weekdays").await;
    assert_eq!(status, 200, "{shown}");
    let fires = times(&shown["next_fires"]);
    assert_eq!(fires.len(), 5, "{shown}");
    assert_eq!(shown["next_fires"][0], shown["next_run_time"], "{shown}");
    let created = shown["created_at"].as_str().expect("created_at");
    let (status, cron) = api
        .get(&format!(
            "/cron/next?expr=0%209%20*%20*%20mon-fri&tz=Europe%2FBerlin&count=5&after={}",
            created.replace('+', "%2B")
        ))
        .await;
    assert_eq!(status, 200, "{cron}");
    let previewed: Vec<DateTime<Utc>> = cron["fires"]
        .as_array()
        .expect("fires")
        .iter()
        .map(|f| time(&f["utc"]))
        .collect();
    assert_eq!(fires, previewed);
    // The same strings, as the API writes UTC instants.
    let utc: Vec<Value> = cron["fires"]
        .as_array()
        .expect("fires")
        .iter()
        .map(|f| f["utc"].clone())
        .collect();
    assert_eq!(shown["next_fires"], Value::Array(utc));

    // Paused: still shown (what a resume now would plan).
    assert_eq!(api.post("/jobs/weekdays/pause", json!({})).await.0, 200);
    let (_, paused) = api.get("/jobs/weekdays").await;
    assert_eq!(paused["state"], "paused");
    assert_eq!(times(&paused["next_fires"]), fires, "{paused}");

    // An interval job with a start: start + k * every.
    let (status, _) = api
        .post(
            "/jobs",
            json!({"id": "every90", "plugin": "hello",
                   "trigger": {"type": "interval", "every": "90m", "start": "2030-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, shown) = api.get("/jobs/every90").await;
    let start = time(&json!("2030-01-01T00:00:00Z"));
    let expected: Vec<DateTime<Utc>> = (0..5)
        .map(|k| start + chrono::Duration::minutes(90 * k))
        .collect();
    assert_eq!(times(&shown["next_fires"]), expected, "{shown}");

    // Jitter included: the listed fires are the ones the runs record.
    let (status, _) = api
        .post(
            "/jobs",
            json!({"id": "jittered", "plugin": "hello",
                   "trigger": {"type": "interval", "every": "1s", "jitter": "900ms"}}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, shown) = api.get("/jobs/jittered").await;
    let listed = times(&shown["next_fires"]);
    assert_eq!(listed.len(), 5, "{shown}");
    assert_eq!(shown["next_fires"][0], shown["next_run_time"]);
    let nominal: Vec<i64> = listed
        .iter()
        .map(|t| t.timestamp_subsec_millis().into())
        .collect();
    let mut fired = Vec::new();
    for _ in 0..100 {
        fired = runs(&api, "jittered").await;
        if fired.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut fired: Vec<DateTime<Utc>> = fired.iter().map(|r| time(&r["scheduled_at"])).collect();
    fired.sort();
    assert!(fired.len() >= 3, "{fired:?}");
    assert_eq!(
        fired[..3],
        listed[..3],
        "sub-second offsets listed: {nominal:?}"
    );

    // A date trigger: its one fire, then none once it has fired.
    let at = (Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, _) = api
        .post(
            "/jobs",
            json!({"id": "once", "plugin": "hello", "trigger": {"type": "date", "at": at}}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, shown) = api.get("/jobs/once").await;
    assert_eq!(
        times(&shown["next_fires"]),
        vec![time(&json!(at))],
        "{shown}"
    );
    let done = api.until("/jobs/once", |j| j["state"] == "finished").await;
    assert_eq!(done["next_fires"], json!([]), "{done}");
}
backends!(a_jobs_next_fires_are_the_fires_the_scheduler_will_take: sqlite, postgres);

#[tokio::test(flavor = "multi_thread")]
async fn cron_previews_answer_as_the_cli_does() {
    let dir = setup_warm("version = 1\n", &[]);
    let host = Host::start(BIN, dir.path(), &[]);
    let api = Api::new(&host);

    // Across the autumn change in Berlin: 02:00 happens twice.
    let (status, next) = api
        .get(
            "/cron/next?expr=0%20*%20*%20*%20*&tz=Europe/Berlin&after=2026-10-24T23:30:00Z&count=4",
        )
        .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["tz"], "Europe/Berlin");
    assert_eq!(next["warnings"], json!([]));
    let local: Vec<&str> = next["fires"]
        .as_array()
        .expect("fires")
        .iter()
        .filter_map(|f| f["local"].as_str())
        .collect();
    assert_eq!(
        local,
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T04:00:00+01:00"
        ]
    );
    let utc: Vec<&str> = next["fires"]
        .as_array()
        .expect("fires")
        .iter()
        .filter_map(|f| f["utc"].as_str())
        .collect();
    assert_eq!(
        utc,
        [
            "2026-10-25T00:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T02:00:00Z",
            "2026-10-25T03:00:00Z"
        ]
    );
    // And the spring change: 02:30 does not exist on 29 March; with an
    // offset in `after` (the `+` percent-encoded).
    let (status, next) = api
        .get("/cron/next?expr=30%202%20*%20*%20*&tz=Europe/Berlin&after=2026-03-28T01:00:00%2B01:00&count=3")
        .await;
    assert_eq!(status, 200, "{next}");
    let local: Vec<&str> = next["fires"]
        .as_array()
        .expect("fires")
        .iter()
        .filter_map(|f| f["local"].as_str())
        .collect();
    // What the CLI prints for the same question.
    let (ok, out, err) = cli_cron(&[
        "cron",
        "next",
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-03-28T01:00:00+01:00",
        "--count",
        "3",
        "--json",
    ]);
    assert!(ok, "{err}");
    let printed: Vec<String> = serde_json::from_str(&out).expect("json");
    assert_eq!(local, printed);
    assert_eq!(local.len(), 3);
    assert!(
        local[1].starts_with("2026-03-29T03:") && local[1].ends_with("+02:00"),
        "{local:?}"
    );

    // Defaults: UTC, 10 fires, after now.
    let (status, next) = api.get("/cron/next?expr=*/5%20*%20*%20*%20*").await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["tz"], "UTC");
    let fires = next["fires"].as_array().expect("fires");
    assert_eq!(fires.len(), 10);
    assert!(time(&fires[0]["utc"]) > Utc::now() - chrono::Duration::seconds(5));
    let (status, next) = api.get("/cron/next?expr=*%20*%20*%20*%20*&count=100").await;
    assert_eq!(status, 200);
    assert_eq!(next["fires"].as_array().map(Vec::len), Some(100));

    // Cron's OR rule for the day fields: warned, as the CLI warns.
    let (status, next) = api
        .get("/cron/next?expr=0%200%2013%20*%205&after=2026-03-12T00:00:00Z&count=2")
        .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(
        next["explain"],
        "at 00:00 on day 13 of the month OR on Friday"
    );
    let warnings = next["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{next}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("fires on day 13 of the month OR on Friday"))
    );
    let utc: Vec<&str> = next["fires"]
        .as_array()
        .expect("fires")
        .iter()
        .filter_map(|f| f["utc"].as_str())
        .collect();
    assert_eq!(utc, ["2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z"]);

    // Bad input: 422 naming the parameter and saying what to write.
    for (query, field, says) in [
        (
            "expr=0%2025%20*%20*%20*",
            "expr",
            "hour: 25 is out of range 0-23",
        ),
        ("expr=0%200%2030%202%20*", "expr", "can never fire"),
        ("tz=UTC", "expr", "required"),
        ("expr=0%209%20*%20*%20*&tz=Mars/Olympus", "tz", "IANA"),
        ("expr=0%209%20*%20*%20*&count=0", "count", "1-100"),
        ("expr=0%209%20*%20*%20*&count=101", "count", "1-100"),
        ("expr=0%209%20*%20*%20*&count=ten", "count", "whole number"),
        ("expr=0%209%20*%20*%20*&count=-1", "count", "whole number"),
        (
            "expr=0%209%20*%20*%20*&after=yesterday",
            "after",
            "RFC 3339",
        ),
        // An unencoded `+` arrives as a space.
        (
            "expr=0%209%20*%20*%20*&after=2026-03-28T01:00:00+01:00",
            "after",
            "%2B",
        ),
    ] {
        let resp = api.get(&format!("/cron/next?{query}")).await;
        assert_error(&resp, 422, "validation", Some(field));
        let message = resp.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{query}: {message}");
    }
    assert_error(
        &api.get("/cron/next?expr=*%20*%20*%20*%20*&colour=blue")
            .await,
        400,
        "bad_query",
        None,
    );

    // Explain.
    let (status, explained) = api.get("/cron/explain?expr=0%209%20*%20*%20mon").await;
    assert_eq!(status, 200, "{explained}");
    assert_eq!(
        explained,
        json!({"expr": "0 9 * * mon", "explain": "at 09:00 on Monday", "warnings": []})
    );
    let (ok, out, _) = cli_cron(&["cron", "explain", "0 9 * * mon"]);
    assert!(ok && out.trim() == "at 09:00 on Monday", "{out}");
    let (_, explained) = api.get("/cron/explain?expr=0%200%2013%20*%205").await;
    assert_eq!(
        explained["warnings"].as_array().map(Vec::len),
        Some(1),
        "{explained}"
    );
    let resp = api.get("/cron/explain?expr=0%200%201%20jab%20*").await;
    assert_error(&resp, 422, "validation", Some("expr"));
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("jab"))
    );
    assert_error(
        &api.get("/cron/explain").await,
        422,
        "validation",
        Some("expr"),
    );

    // They are reads: open without a token unless the host guards reads.
    drop(host);
    let host = Host::start(BIN, dir.path(), &["--token", TOKEN, "--auth-reads"]);
    let guarded = Api::new(&host);
    assert_error(
        &guarded.get("/cron/explain?expr=0%209%20*%20*%20*").await,
        401,
        "unauthorized",
        None,
    );
    let guarded = guarded.with_token(TOKEN);
    assert_eq!(
        guarded.get("/cron/next?expr=0%209%20*%20*%20*").await.0,
        200
    );
}

fn cli_cron(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("run the CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
