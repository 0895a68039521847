//! Issue 13 through the real binary: overlap policies and their 422s, a
//! backfill by API and CLI, and every run's `cause` in the history.

use super::{Api, BIN, assert_error, assert_message_has, cli};
use serde_json::{Value, json};
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup_warm};
use wasmcron_tests::stores::TestStore;

/// Every run of `job` the API lists, oldest first.
async fn runs(api: &Api, job: &str) -> Vec<Value> {
    let (status, page) = api.get(&format!("/jobs/{job}/runs?limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    let mut runs = page["runs"].as_array().cloned().unwrap_or_default();
    runs.reverse();
    runs
}

async fn overlap_backfill_and_causes_work_through_the_api_and_the_cli(db: TestStore) {
    let dir = setup_warm("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let job = |extra: Value| {
        let mut spec = json!({"id": "hourly", "plugin": "hello",
                              "trigger": {"type": "cron", "expr": "0 * * * *"}});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        spec
    };
    // Overlap settings that cannot apply: 422 naming the field.
    for (extra, field) in [
        (json!({"overlap": "queue"}), "overlap"),
        (
            json!({"overlap": "buffer-all", "max_buffered": 0}),
            "max_buffered",
        ),
        (
            json!({"overlap": "skip", "max_buffered": 3}),
            "max_buffered",
        ),
        (json!({"overlap": "allow-all"}), "max_instances"),
    ] {
        let resp = api.post("/jobs", job(extra.clone())).await;
        assert_error(&resp, 422, "validation", Some(field));
    }
    // Chains: an unknown target, and a cycle, are 422s naming the entry.
    let resp = api
        .post(
            "/jobs",
            json!({"id": "first", "plugin": "hello", "on_success": ["second"],
                   "trigger": {"type": "interval", "every": "1h"}}),
        )
        .await;
    assert_error(&resp, 422, "validation", Some("on_success[0]"));
    let (status, second) = api
        .post(
            "/jobs",
            json!({"id": "second", "plugin": "hello",
                   "trigger": {"type": "interval", "every": "1h"}}),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let (status, first) = api
        .post(
            "/jobs",
            json!({"id": "first", "plugin": "hello", "on_success": ["second"],
                   "trigger": {"type": "interval", "every": "1h"}}),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let resp = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/second",
            Some(json!({"on_failure": ["first"]})),
        )
        .await;
    assert_error(&resp, 422, "validation", Some("on_failure[0]"));
    assert_message_has(&resp, "second → first → second");
    let (status, created) = api
        .post("/jobs", job(json!({"overlap": "buffer-one"})))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["spec"]["overlap"], "buffer-one", "{created}");

    // A backfill of three past hours: 202 with its size, then three runs
    // with cause `backfill`, one after another.
    let now = chrono::Utc::now();
    let hour = |h: i64| {
        let t = now - chrono::Duration::hours(h);
        t.format("%Y-%m-%dT%H:00:00Z").to_string()
    };
    let (status, started) = api
        .post(
            "/jobs/hourly/backfill",
            json!({"from": hour(3), "to": hour(1)}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["fires"], 3, "{started}");
    assert_eq!(started["overlap"], "buffer-all", "{started}");
    api.until("/jobs/hourly/runs", |page| {
        page["runs"]
            .as_array()
            .is_some_and(|r| r.len() == 3 && r.iter().all(|r| r["status"] == "finished"))
    })
    .await;
    let history = runs(&api, "hourly").await;
    let causes: Vec<_> = history.iter().map(|r| r["cause"].clone()).collect();
    assert_eq!(causes, vec![json!("backfill"); 3], "{history:?}");
    let scheduled: Vec<_> = history
        .iter()
        .map(|r| r["scheduled_at"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(scheduled, [hour(3), hour(2), hour(1)], "{history:?}");
    // Bad backfills: 422 naming the field, and nothing runs.
    for (body, field) in [
        (json!({"from": hour(1), "to": hour(3)}), "from"),
        (json!({"from": hour(3), "to": "2999-01-01T00:00:00Z"}), "to"),
        (json!({"from": "yesterday", "to": hour(1)}), "from"),
        (
            json!({"from": hour(3), "to": hour(1), "overlap": "cancel-other"}),
            "overlap",
        ),
        (json!({"from": "2000-01-01T00:00:00Z", "to": hour(1)}), "to"),
        (json!(null), "body"),
        (json!([hour(3), hour(1)]), "body"),
    ] {
        let resp = api.post("/jobs/hourly/backfill", body.clone()).await;
        assert_error(&resp, 422, "validation", Some(field));
    }
    let resp = api
        .post(
            "/jobs/nope/backfill",
            json!({"from": hour(3), "to": hour(1)}),
        )
        .await;
    assert_eq!(resp.0, 404, "{resp:?}");
    // A run now is `manual`; the CLI backfills too and lists the causes.
    let (status, run) = api.post("/jobs/hourly/run", json!({})).await;
    assert_eq!(status, 202, "{run}");
    let (ok, out, err) = cli(
        &[
            "jobs",
            "backfill",
            "hourly",
            "--from",
            &hour(2),
            "--to",
            &hour(2),
        ],
        &api.base,
    );
    assert!(ok && out.contains("1 fire(s)"), "{out}{err}");
    api.until("/jobs/hourly/runs", |page| {
        page["runs"]
            .as_array()
            .is_some_and(|r| r.len() == 5 && r.iter().all(|r| r["status"] == "finished"))
    })
    .await;
    // `jobs show` lists the coming fires the API previews.
    let (_, shown) = api.get("/jobs/hourly").await;
    let next = shown["next_fires"][0].as_str().unwrap_or("none").to_owned();
    let (ok, out, err) = cli(&["jobs", "show", "hourly"], &api.base);
    assert!(
        ok && out.contains("next fires (UTC):") && out.contains(&next),
        "{out}{err}"
    );
    let (ok, out, err) = cli(&["runs", "list", "hourly"], &api.base);
    assert!(ok, "{err}");
    assert!(
        out.contains("CAUSE") && out.contains("manual") && out.contains("backfill"),
        "{out}"
    );
}
backends!(overlap_backfill_and_causes_work_through_the_api_and_the_cli: sqlite, postgres);

/// The outputs of `boot`'s start runs, oldest first.
async fn start_outputs(api: &Api) -> Vec<String> {
    runs(api, "boot")
        .await
        .iter()
        .filter(|r| r["cause"] == "start")
        .map(|r| r["outcome"]["output"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// `run_on_start` runs the jobs as the jobs file says at that start: a
/// job the file adds runs at once, and a changed job runs with its new
/// args (the file is applied before the start runs are taken).
async fn run_on_start_runs_the_jobs_file_as_it_is_at_that_start(db: TestStore) {
    let file = |name: &str, extra: &str| {
        format!(
            "version = 1\n\n[[jobs]]\nid = \"boot\"\nplugin = \"hello\"\nrun_on_start = true\n\
             args = {{ name = \"{name}\" }}\ntrigger = {{ type = \"interval\", every = \"1h\" }}\n{extra}"
        )
    };
    let dir = setup_warm(&file("first", ""), &["hello"]);
    {
        let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
        let api = Api::new(&host);
        // A job the file adds at this very start runs at once.
        api.until("/jobs/boot/runs", |page| {
            page["runs"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["cause"] == "start" && r["status"] == "finished")
            })
        })
        .await;
        assert_eq!(start_outputs(&api).await, ["Hello, first!"]);
        host.signal("-TERM");
        assert!(host.wait().success());
    }
    // Deployed with other args (and a paused job beside it): the start
    // run has the new args; the paused job does not run.
    std::fs::write(
        dir.path().join("jobs.toml"),
        file(
            "second",
            "\n[[jobs]]\nid = \"quiet\"\nplugin = \"hello\"\nrun_on_start = true\npaused = true\n\
             trigger = { type = \"interval\", every = \"1h\" }\n",
        ),
    )
    .expect("jobs file");
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.until("/jobs/boot/runs", |page| {
        page["runs"].as_array().is_some_and(|r| {
            r.iter()
                .filter(|r| r["cause"] == "start" && r["status"] == "finished")
                .count()
                == 2
        })
    })
    .await;
    assert_eq!(
        start_outputs(&api).await,
        ["Hello, first!", "Hello, second!"]
    );
    assert!(runs(&api, "quiet").await.is_empty());
}
backends!(run_on_start_runs_the_jobs_file_as_it_is_at_that_start: sqlite, postgres);
