//! The audit log (issue 15, item 2), through the real binary: every kind
//! of change, by named tokens, the jobs file and a sidecar, read back with
//! `GET /audit` (cursor paged) and `wasmcron audit`.

use super::roles::tokens_file;
use super::{Api, BIN, greet};
use serde_json::{Value, json};
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup_warm};
use wasmcron_tests::plugins;
use wasmcron_tests::stores::TestStore;

/// Every audit row, newest first.
async fn rows(api: &Api) -> Vec<Value> {
    let (status, page) = api.get("/audit?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().cloned().unwrap_or_default()
}

/// The one row of `action` on `target`.
fn row<'a>(rows: &'a [Value], action: &str, target: &str) -> &'a Value {
    let found: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == action && r["target"] == target)
        .collect();
    assert_eq!(found.len(), 1, "{action} {target}: {rows:#?}");
    found[0]
}

async fn delete(api: &Api, path: &str) -> u16 {
    api.send(reqwest::Method::DELETE, path, None).await.0
}

fn by(row: &Value, actor: &str) {
    assert_eq!(row["actor"], actor, "{row}");
    let client = row["client"].as_str().unwrap_or_default();
    assert!(client.starts_with("127.0.0.1:"), "{row}");
    assert!(row["at"].is_string() && row["id"].is_i64(), "{row}");
}

async fn every_change_is_recorded_with_its_token_and_a_diff(db: TestStore) {
    let dir = setup_warm(
        r#"version = 1

[[jobs]]
id = "from-config"
plugin = "hello"
trigger = { type = "interval", every = "1h" }

[[jobs]]
id = "sleepy"
plugin = "slow"
args = { millis = 60000 }
trigger = { type = "interval", every = "1h" }
"#,
        &["hello", "slow"],
    );
    std::fs::write(
        dir.path().join("plugins/hello.toml"),
        "[[jobs]]\nid = \"side\"\ntrigger = { type = \"interval\", every = \"1h\" }\n",
    )
    .expect("sidecar");
    let (_, ops, boss, file) = tokens_file(dir.path());
    let host = Host::start_with_db_url(
        BIN,
        dir.path(),
        &db.db_arg(),
        // A pushed plugin is compiled before the answer: on a loaded
        // machine a debug build takes longer than the default 30 s.
        &[
            "--tokens",
            &file.display().to_string(),
            "--api-request-timeout",
            "300s",
        ],
    );
    let ops = Api::new(&host).with_token(&ops);
    let boss = Api::new(&host).with_token(&boss);
    boss.plugins_ready().await;
    boss.until("/jobs/side", |j| j["spec"]["id"] == "side")
        .await;

    // The jobs file and the sidecar, at start.
    let start = rows(&boss).await;
    for id in ["from-config", "sleepy"] {
        let r = row(&start, "job_created", id);
        assert_eq!(r["actor"], "config", "{r}");
        assert!(r.get("client").is_none(), "{r}");
    }
    assert_eq!(row(&start, "job_created", "side")["actor"], "sidecar");

    // Jobs: created, modified (a diff of the fields that changed), paused
    // with a note, resumed, run now, replayed, backfilled.
    assert_eq!(boss.post("/jobs", greet()).await.0, 201);
    let patch = json!({"trigger": {"type": "interval", "every": "2h"}});
    let (status, body) = boss
        .send(reqwest::Method::PATCH, "/jobs/greet", Some(patch))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ops
        .post("/jobs/greet/pause", json!({"note": "upstream down"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ops.post("/jobs/greet/resume", json!({})).await.0, 200);
    let (status, run) = ops
        .post("/jobs/greet/run", json!({"args": {"name": "ops-chosen"}}))
        .await;
    assert_eq!(status, 202, "{run}");
    let run_id = run["run_id"].as_str().unwrap_or_default().to_owned();
    ops.until(&format!("/runs/{run_id}"), |r| r["status"] == "finished")
        .await;
    let (status, replay) = ops.post(&format!("/runs/{run_id}/replay"), json!({})).await;
    assert_eq!(status, 202, "{replay}");
    let now = chrono::Utc::now();
    let (status, body) = ops
        .post(
            "/jobs/greet/backfill",
            json!({"from": (now - chrono::Duration::hours(5)).to_rfc3339(), "to": now.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    // A run stopped.
    let (status, sleepy) = ops.post("/jobs/sleepy/run", json!({})).await;
    assert_eq!(status, 202, "{sleepy}");
    let sleepy_id = sleepy["run_id"].as_str().unwrap_or_default().to_owned();
    ops.until(&format!("/runs/{sleepy_id}"), |r| r["status"] == "running")
        .await;
    let (status, body) = ops
        .post(&format!("/runs/{sleepy_id}/stop"), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");

    // Calendars and plugins.
    let calendar = boss
        .send(
            reqwest::Method::PUT,
            "/calendars/holidays",
            Some(json!({"dates": ["2030-12-25"]})),
        )
        .await;
    assert_eq!(calendar.0, 201, "{calendar:?}");
    assert_eq!(delete(&boss, "/calendars/holidays").await, 204);
    let bytes = std::fs::read(plugins::HELLO).expect("hello");
    let pushed = reqwest::Client::new()
        .put(format!("{}/plugins/extra", host.api_url()))
        .bearer_auth(boss.token.as_deref().unwrap_or_default())
        .body(bytes)
        .send()
        .await
        .expect("push");
    assert_eq!(pushed.status().as_u16(), 200);
    let pushed: Value = pushed.json().await.expect("json");
    assert_eq!(delete(&boss, "/plugins/extra").await, 204);

    // An apply: one row per job it changes, none for those it does not.
    let (_, current) = boss.get("/jobs/greet").await;
    let mut changed_config = json!({
        "id": "from-config", "plugin": "hello",
        "trigger": {"type": "interval", "every": "1h"}, "args": {"name": "applied"}
    });
    changed_config["max_instances"] = json!(2);
    let list = json!({"jobs": [current["spec"], changed_config, {
        "id": "bulk", "plugin": "hello", "trigger": {"type": "interval", "every": "1h"}
    }]});
    let (status, applied) = boss.send(reqwest::Method::PUT, "/jobs", Some(list)).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["written"], 2, "{applied}");
    assert_eq!(delete(&boss, "/jobs/bulk").await, 204);

    let all = rows(&boss).await;
    let created = row(&all, "job_created", "greet");
    by(created, "boss");
    assert_eq!(created["job"], "greet");
    let modified = row(&all, "job_modified", "greet");
    by(modified, "boss");
    let changed = modified["detail"]["changed"]
        .as_object()
        .expect("changed fields");
    assert_eq!(
        changed.keys().collect::<Vec<_>>(),
        ["trigger"],
        "{modified}"
    );
    assert_eq!(changed["trigger"]["old"]["every"], "1h", "{modified}");
    assert_eq!(changed["trigger"]["new"]["every"], "2h", "{modified}");
    let paused = row(&all, "job_paused", "greet");
    by(paused, "ops");
    assert_eq!(paused["detail"]["note"], "upstream down", "{paused}");
    by(row(&all, "job_resumed", "greet"), "ops");
    let ran = row(&all, "job_run", "greet");
    by(ran, "ops");
    assert_eq!(ran["detail"]["run_id"], run_id.as_str(), "{ran}");
    // The args an operator gave that run are in the entry.
    assert_eq!(ran["detail"]["args"]["name"], "ops-chosen", "{ran}");
    let replayed = row(&all, "run_replayed", &run_id);
    by(replayed, "ops");
    assert_eq!(replayed["job"], "greet", "{replayed}");
    assert_eq!(replayed["detail"]["run_id"], replay["run_id"], "{replayed}");
    by(row(&all, "job_backfill", "greet"), "ops");
    let stopped = row(&all, "run_stopped", &sleepy_id);
    by(stopped, "ops");
    assert_eq!(stopped["job"], "sleepy", "{stopped}");
    let calendar = row(&all, "calendar_put", "holidays");
    by(calendar, "boss");
    assert_eq!(
        calendar["detail"]["spec"]["dates"][0], "2030-12-25",
        "{calendar}"
    );
    assert!(calendar.get("job").is_none(), "{calendar}");
    by(row(&all, "calendar_deleted", "holidays"), "boss");
    let plugin = row(&all, "plugin_pushed", "extra");
    by(plugin, "boss");
    assert_eq!(plugin["detail"]["hash"], pushed["hash"], "{plugin}");
    by(row(&all, "plugin_removed", "extra"), "boss");
    // The apply: greet unchanged (its only job_modified row is the PATCH's).
    let config_change = all
        .iter()
        .find(|r| r["action"] == "job_modified" && r["target"] == "from-config")
        .expect("the apply's modification");
    by(config_change, "boss");
    let fields = config_change["detail"]["changed"]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(fields, ["args", "max_instances"], "{config_change}");
    by(row(&all, "job_created", "bulk"), "boss");
    by(row(&all, "job_deleted", "bulk"), "boss");
    // Newest first, ids increasing with time.
    let ids: Vec<i64> = all.iter().filter_map(|r| r["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    // One job's rows: its own and its runs'.
    let (_, greet_rows) = boss.get("/audit?job=greet&limit=1000").await;
    let actions: Vec<&str> = greet_rows["entries"]
        .as_array()
        .map(|l| l.iter().filter_map(|r| r["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        actions,
        [
            "job_backfill",
            "run_replayed",
            "job_run",
            "job_resumed",
            "job_paused",
            "job_modified",
            "job_created"
        ],
        "{greet_rows}"
    );

    // Cursor paging: pages meet without overlap, and a change recorded
    // meanwhile does not shift them.
    let (_, first) = boss.get("/audit?job=greet&limit=3").await;
    let before = first["next_before"].as_i64().expect("a next page");
    let (_, second) = boss
        .get(&format!("/audit?job=greet&limit=3&before={before}"))
        .await;
    assert_eq!(ops.post("/jobs/greet/pause", json!({})).await.0, 200);
    let (_, again) = boss
        .get(&format!("/audit?job=greet&limit=3&before={before}"))
        .await;
    assert_eq!(second["entries"], again["entries"]);
    let paged: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|p| p["entries"].as_array().into_iter().flatten())
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(paged, actions[..6], "{first} {second}");
    let (_, last) = boss
        .get(&format!(
            "/audit?job=greet&limit=3&before={}",
            second["next_before"].as_i64().expect("a third page")
        ))
        .await;
    assert_eq!(last["entries"].as_array().map(Vec::len), Some(1), "{last}");
    assert!(last["next_before"].is_null(), "{last}");
    let (status, bad) = boss.get("/audit?before=abc").await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = boss.get("/audit?limit=0").await;
    assert_eq!(
        (status, &bad["error"]["field"]),
        (400, &json!("limit")),
        "{bad}"
    );

    // The CLI.
    let out = std::process::Command::new(BIN)
        .args(["audit", "--job", "greet", "--limit", "2", "--url"])
        .arg(host.api_url())
        .env("WASMCRON_TOKEN", boss.token.as_deref().unwrap_or_default())
        .output()
        .expect("wasmcron audit");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("ACTION"),
        "{text}"
    );
    assert!(
        lines[1].contains("job_paused") && lines[1].contains("ops"),
        "{text}"
    );
    assert!(lines[2].contains("job_backfill"), "{text}");
    assert!(lines[3].starts_with("next: --before "), "{text}");
}
backends!(every_change_is_recorded_with_its_token_and_a_diff: sqlite, postgres);

/// Without tokens, changes are recorded as `anonymous`; retention below an
/// hour is refused at start.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_without_tokens_records_anonymous_changes() {
    let dir = setup_warm("version = 1\n", &["hello"]);
    let host = Host::start(BIN, dir.path(), &["--audit-keep-for", "30d"]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    assert_eq!(api.post("/jobs", greet()).await.0, 201);
    let all = rows(&api).await;
    by(row(&all, "job_created", "greet"), "anonymous");

    let out = std::process::Command::new(BIN)
        .args(["run", "--db", "memory", "--audit-keep-for", "10m"])
        .output()
        .expect("wasmcron run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 1h"), "{stderr}");
}
