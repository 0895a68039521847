//! Issue 14's API: what an overview asks without walking every job
//! (`GET /runs` across jobs, `GET /stats` over a window), what a client
//! must know before asking for a token (`GET /auth`), schedules in words,
//! and the dashboard's files served from the binary, through the real
//! binary and a real HTTP client.

use super::{Api, BIN, TOKEN, assert_error};
use serde_json::{Value, json};
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup_warm};
use wasmcron_tests::stores::TestStore;

/// The run ids of a page of runs, in order.
pub(super) fn run_ids(page: &Value) -> Vec<String> {
    page["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no runs in {page}"))
        .iter()
        .map(|r| r["run_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn run_now(api: &Api, job: &str) -> String {
    let (status, body) = api.post(&format!("/jobs/{job}/run"), json!({})).await;
    assert_eq!(status, 202, "run {job}: {body}");
    let id = body["run_id"].as_str().unwrap_or_default().to_owned();
    api.until(&format!("/runs/{id}"), |r| r["status"] == "finished")
        .await;
    id
}

async fn runs_across_jobs_and_stats_over_a_window(db: TestStore) {
    let dir = setup_warm(
        r#"version = 1

[[jobs]]
id = "greet"
plugin = "hello"
trigger = { type = "interval", every = "1h" }

[[jobs]]
id = "wobbly"
plugin = "flaky"
trigger = { type = "interval", every = "1h" }

[[jobs]]
id = "tick"
plugin = "hello"
trigger = { type = "interval", every = "1s" }

[[jobs]]
id = "shanghai"
plugin = "hello"
trigger = { type = "cron", expr = "5 0 * * *", tz = "Asia/Shanghai" }
paused = true
"#,
        &["hello", "flaky"],
    );
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;

    // Schedules in words, with their zones.
    let (_, shanghai) = api.get("/jobs/shanghai").await;
    let words = shanghai["schedule"].as_str().unwrap_or_default();
    assert!(
        words.contains("00:05") && words.contains("Asia/Shanghai"),
        "schedule of a cron job at 00:05 in Asia/Shanghai: {words:?}"
    );
    let (_, list) = api.get("/jobs").await;
    let tick = list["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["spec"]["id"] == "tick"))
        .unwrap_or_else(|| panic!("tick not listed: {list}"));
    assert_eq!(tick["schedule"], "every 1s", "{tick}");

    // Two successes and a failure, run by hand (attempt 1 of flaky fails).
    let ok1 = run_now(&api, "greet").await;
    let bad = run_now(&api, "wobbly").await;
    let ok2 = run_now(&api, "greet").await;

    // Newest recorded first, across jobs (tick's fires are among them).
    let (status, page) = api.get("/runs?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    let ids = run_ids(&page);
    let at = |id: &str| {
        ids.iter()
            .position(|r| r == id)
            .unwrap_or_else(|| panic!("{id} not in GET /runs: {ids:?}"))
    };
    assert!(at(&ok2) < at(&bad) && at(&bad) < at(&ok1), "{ids:?}");
    let (_, failed) = api.get("/runs?outcome=failed").await;
    assert_eq!(run_ids(&failed), vec![bad.clone()], "{failed}");
    assert_eq!(failed["runs"][0]["job_id"], "wobbly");
    let (_, paged) = api.get("/runs?limit=1").await;
    assert_eq!(run_ids(&paged).len(), 1, "{paged}");
    assert_eq!(paged["next_offset"], 1, "{paged}");
    let (_, running) = api.get("/runs?status=running").await;
    assert!(
        running["runs"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["status"] == "running")),
        "{running}"
    );
    assert_error(
        &api.get("/runs?status=done").await,
        400,
        "bad_query",
        Some("status"),
    );
    assert_error(
        &api.get("/runs?outcome=oops").await,
        400,
        "bad_query",
        Some("outcome"),
    );
    assert_error(
        &api.get("/runs?limit=0").await,
        400,
        "bad_query",
        Some("limit"),
    );

    // Stats over the last hour: the manual runs count by outcome; fire
    // lateness comes from tick's scheduled fires only.
    let stats = api
        .until("/stats?window=1h", |s| {
            s["lateness_ms"]["count"].as_u64().is_some_and(|n| n >= 3)
        })
        .await;
    let outcomes = &stats["outcomes"];
    assert_eq!(outcomes["failed"], 1, "{stats}");
    assert_eq!(outcomes["trapped"], 0, "zeros are listed: {stats}");
    let succeeded = outcomes["succeeded"].as_u64().unwrap_or(0);
    assert!(succeeded >= 2, "{stats}");
    let finished = stats["runs"]["finished"].as_u64().unwrap_or(0);
    assert_eq!(finished, succeeded + 1, "{stats}");
    let rate = stats["success_rate"].as_f64().unwrap_or(-1.0);
    #[allow(clippy::cast_precision_loss)]
    let expected = succeeded as f64 / finished as f64;
    assert!((rate - expected).abs() < 1e-9, "{stats}");
    assert!(
        stats["runs"]["total"].as_u64().unwrap_or(0) >= finished,
        "{stats}"
    );
    let late = &stats["lateness_ms"];
    let (p50, p99, max) = (
        late["p50"].as_i64().unwrap_or(-1),
        late["p99"].as_i64().unwrap_or(-1),
        late["max"].as_i64().unwrap_or(-1),
    );
    assert!(0 <= p50 && p50 <= p99 && p99 <= max, "{stats}");
    assert_eq!(stats["window"], "1h");
    assert_error(
        &api.get("/stats?window=5s").await,
        400,
        "bad_query",
        Some("window"),
    );
    assert_error(
        &api.get("/stats?window=soon").await,
        400,
        "bad_query",
        Some("window"),
    );
    assert_error(
        &api.get("/stats?window=40d").await,
        400,
        "bad_query",
        Some("window"),
    );
}
backends!(runs_across_jobs_and_stats_over_a_window: sqlite, postgres);

async fn auth_says_what_needs_a_token_and_what_a_token_may_do(db: TestStore) {
    let dir = setup_warm("version = 1\n", &[]);
    let open = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let (status, info) = Api::new(&open).get("/auth").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        info,
        json!({"reads_need_token": false, "writes_need_token": false, "token": "none",
               "role": "admin", "can_read": true, "can_write": true, "can_admin": true})
    );
    drop(open);

    let guarded = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &["--token", TOKEN]);
    let (_, none) = Api::new(&guarded).get("/auth").await;
    assert_eq!(
        none,
        json!({"reads_need_token": false, "writes_need_token": true, "token": "none",
               "can_read": true, "can_write": false, "can_admin": false})
    );
    let (_, wrong) = Api::new(&guarded)
        .with_token("0123456789abcdef-wrong-token")
        .get("/auth")
        .await;
    assert_eq!(wrong["token"], "invalid", "{wrong}");
    assert_eq!(wrong["can_write"], false, "{wrong}");
    let (_, right) = Api::new(&guarded).with_token(TOKEN).get("/auth").await;
    assert_eq!(right["token"], "valid", "{right}");
    assert_eq!(right["can_write"], true, "{right}");
    // The single --token is an admin named `token`.
    assert_eq!(
        (&right["name"], &right["role"], &right["can_admin"]),
        (&json!("token"), &json!("admin"), &json!(true)),
        "{right}"
    );
    drop(guarded);

    let closed = Host::start_with_db_url(
        BIN,
        dir.path(),
        &db.db_arg(),
        &["--token", TOKEN, "--auth-reads"],
    );
    // Answered without a token (a client must learn it needs one).
    let (status, none) = Api::new(&closed).get("/auth").await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["reads_need_token"], true, "{none}");
    assert_eq!(none["can_read"], false, "{none}");
    let (_, right) = Api::new(&closed).with_token(TOKEN).get("/auth").await;
    assert_eq!(right["can_read"], true, "{right}");
    // The dashboard's page holds no data: served without the token.
    let page = reqwest::get(format!("{}/", closed.api_url()))
        .await
        .expect("GET /");
    assert_eq!(page.status().as_u16(), 200);
}
backends!(auth_says_what_needs_a_token_and_what_a_token_may_do: sqlite);

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_with_a_strict_policy() {
    let dir = setup_warm("version = 1\n", &[]);
    let host = Host::start_with_db_url(BIN, dir.path(), "memory", &[]);
    let base = host.api_url();
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(page.status().as_u16(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    for rule in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(rule), "CSP {csp:?} lacks {rule:?}");
    }
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let etag = header(&page, "etag");
    assert!(etag.starts_with('"'), "ETag {etag:?}");
    let html = page.text().await.expect("page body");
    assert!(html.contains("<html"), "{html}");

    // Unchanged: 304 without a body.
    let again = http
        .get(format!("{base}/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("GET / again");
    assert_eq!(again.status().as_u16(), 304);

    // Everything the page names under /assets/ is served, with its type.
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    for asset in &assets {
        let r = http
            .get(format!("{base}{asset}"))
            .send()
            .await
            .expect("GET asset");
        assert_eq!(r.status().as_u16(), 200, "{asset}");
        let kind = header(&r, "content-type");
        if asset.ends_with(".js") {
            assert_eq!(kind, "text/javascript", "{asset}");
        } else if asset.ends_with(".css") {
            assert_eq!(kind, "text/css", "{asset}");
        }
    }
    let missing = http
        .get(format!("{base}/assets/nope.js"))
        .send()
        .await
        .expect("GET missing");
    assert_eq!(missing.status().as_u16(), 404);
    let body: Value = missing.json().await.expect("an error body");
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    for climb in ["/assets/../Cargo.toml", "/assets/%2e%2e/Cargo.toml"] {
        let r = http
            .get(format!("{base}{climb}"))
            .send()
            .await
            .expect("GET climb");
        assert_eq!(r.status().as_u16(), 404, "{climb}");
    }
}

async fn a_running_run_shows_its_logs_so_far_and_can_be_stopped(db: TestStore) {
    let dir = setup_warm(
        r#"version = 1

[[jobs]]
id = "sleepy"
plugin = "slow"
args = { millis = 60000 }
trigger = { type = "interval", every = "1h" }
retry = { max_attempts = 3, delay = "1s" }
"#,
        &["slow"],
    );
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let (status, body) = api.post("/jobs/sleepy/run", json!({})).await;
    assert_eq!(status, 202, "{body}");
    let id = body["run_id"].as_str().unwrap_or_default().to_owned();

    // Its log line shows while it sleeps, in both places logs are read.
    let logs = api
        .until(&format!("/runs/{id}/logs"), |p| {
            p["logs"].as_array().is_some_and(|l| {
                l.iter().any(|r| {
                    r["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("sleeping 60000 ms"))
                })
            })
        })
        .await;
    assert_eq!(logs["total"], 1, "{logs}");
    let (_, run) = api.get(&format!("/runs/{id}")).await;
    assert_eq!(run["status"], "running", "{run}");
    assert!(
        run["logs"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sleeping")),
        "{run}"
    );

    // Stopped on request: interrupted with a note saying so, not retried.
    let (status, stopped) = api.post(&format!("/runs/{id}/stop"), json!({})).await;
    assert_eq!(status, 202, "{stopped}");
    assert_eq!(stopped["stopping"], "here", "{stopped}");
    let ended = api
        .until(&format!("/runs/{id}"), |r| r["status"] != "running")
        .await;
    assert_eq!(ended["status"], "interrupted", "{ended}");
    assert!(
        ended["note"]
            .as_str()
            .is_some_and(|n| n.contains("stopped by request")),
        "{ended}"
    );
    assert!(
        ended["logs"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sleeping")),
        "the logs are kept: {ended}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, history) = api.get("/jobs/sleepy/runs").await;
    assert_eq!(
        history["runs"].as_array().map(Vec::len),
        Some(1),
        "a stopped run is not retried: {history}"
    );

    assert_error(
        &api.post(&format!("/runs/{id}/stop"), json!({})).await,
        409,
        "conflict",
        None,
    );
    assert_error(
        &api.post("/runs/01890000-0000-7000-8000-000000000000/stop", json!({}))
            .await,
        404,
        "not_found",
        None,
    );
}
backends!(a_running_run_shows_its_logs_so_far_and_can_be_stopped: sqlite, postgres);

async fn a_pause_keeps_a_persons_note_and_a_job_lists_as_many_fires_as_asked(db: TestStore) {
    let dir = setup_warm(
        r#"version = 1

[[jobs]]
id = "nightly"
plugin = "hello"
trigger = { type = "cron", expr = "0 3 * * *", tz = "Europe/Berlin" }
"#,
        &["hello"],
    );
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    let (status, paused) = api
        .post(
            "/jobs/nightly/pause",
            json!({"note": "  upstream down until Monday "}),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        paused["paused_reason"], "upstream down until Monday",
        "{paused}"
    );
    assert_eq!(paused["auto_paused"], false, "{paused}");
    // Kept over a restart.
    drop(host);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    let (_, job) = api.get("/jobs/nightly?fires=10").await;
    assert_eq!(job["paused_reason"], "upstream down until Monday", "{job}");
    assert_eq!(
        job["next_fires"].as_array().map(Vec::len),
        Some(10),
        "{job}"
    );
    let (_, job) = api.get("/jobs/nightly").await;
    assert_eq!(job["next_fires"].as_array().map(Vec::len), Some(5), "{job}");
    assert_error(
        &api.get("/jobs/nightly?fires=0").await,
        400,
        "bad_query",
        Some("fires"),
    );
    assert_error(
        &api.get("/jobs/nightly?fires=101").await,
        400,
        "bad_query",
        Some("fires"),
    );
    // A resume clears it; a pause without a body has no note.
    let (_, resumed) = api.post("/jobs/nightly/resume", json!({})).await;
    assert!(resumed.get("paused_reason").is_none(), "{resumed}");
    let (status, bare) = api
        .send(reqwest::Method::POST, "/jobs/nightly/pause", None)
        .await;
    assert_eq!(status, 200, "{bare}");
    assert!(bare.get("paused_reason").is_none(), "{bare}");
    assert_error(
        &api.post("/jobs/nightly/pause", json!({"note": "x".repeat(501)}))
            .await,
        422,
        "validation",
        Some("note"),
    );
    assert_error(
        &api.post(
            "/jobs/nightly/pause",
            json!({"note": "auto-paused after 3 failed runs"}),
        )
        .await,
        422,
        "validation",
        Some("note"),
    );
}
backends!(a_pause_keeps_a_persons_note_and_a_job_lists_as_many_fires_as_asked: sqlite, postgres);

async fn jobs_are_searched_and_filtered_by_the_host(db: TestStore) {
    let mut file = String::from("version = 1\n");
    for i in 0..30 {
        file.push_str(&format!(
            "\n[[jobs]]\nid = \"job-{i:02}\"\nplugin = \"hello\"\ntrigger = {{ type = \"interval\", every = \"1h\" }}\n"
        ));
    }
    file.push_str(
        "\n[[jobs]]\nid = \"zz-Needle\"\nplugin = \"flaky\"\ntrigger = { type = \"interval\", every = \"1h\" }\n",
    );
    let dir = setup_warm(&file, &["hello", "flaky"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    let ids = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .map(|j| {
                j.iter()
                    .map(|j| j["spec"]["id"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // By id, case ignored, past the first page; and by plugin.
    let (_, found) = api.get("/jobs?q=needle&limit=10").await;
    assert_eq!(ids(&found), ["zz-Needle"], "{found}");
    assert_eq!(found["total"], 1);
    let (_, by_plugin) = api.get("/jobs?q=FLAK").await;
    assert_eq!(ids(&by_plugin), ["zz-Needle"], "{by_plugin}");
    let (_, some) = api.get("/jobs?q=job-1&limit=3").await;
    assert_eq!(some["total"], 10, "{some}");
    assert_eq!(ids(&some), ["job-10", "job-11", "job-12"], "{some}");
    let (_, none) = api.get("/jobs?auto_paused=true").await;
    assert_eq!(none["total"], 0, "{none}");
    let (_, all) = api.get("/jobs?auto_paused=false").await;
    assert_eq!(all["total"], 31, "{all}");

    // Ids a URL would collapse are refused.
    for id in [".", ".."] {
        assert_error(
            &api
                .post(
                    "/jobs",
                    json!({"id": id, "plugin": "hello", "trigger": {"type": "interval", "every": "1h"}}),
                )
                .await,
            422,
            "validation",
            Some("id"),
        );
    }
    let (status, ok) = api
        .post(
            "/jobs",
            json!({"id": "...", "plugin": "hello", "trigger": {"type": "interval", "every": "1h"}}),
        )
        .await;
    assert_eq!(status, 201, "three dots are an ordinary id: {ok}");
}
backends!(jobs_are_searched_and_filtered_by_the_host: sqlite);
