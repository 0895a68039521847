//! Issue 10, "scheduler behaviour that is wrong": each fault replayed
//! through the real binary, its HTTP API and its database (SQLite and
//! PostgreSQL in turn), restarts included.

use super::{Api, BIN, assert_error};
use chrono::{DateTime, Timelike, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, eventually, setup_warm};
use wasmcron_tests::stores::{Backend, TestStore};

async fn patch(api: &Api, id: &str, body: Value) -> (u16, Value) {
    api.send(reqwest::Method::PATCH, &format!("/jobs/{id}"), Some(body))
        .await
}

fn finished(db: &TestStore, job: &str) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM runs WHERE job_id = '{job}' AND status = 'finished'"
    ))
}

/// `wasmcron_runs_total{outcome="…"}` as the host reports it.
async fn runs_total(api: &Api, outcome: &str) -> u64 {
    let (_, metrics) = api.get("/metrics").await;
    let prefix = format!("wasmcron_runs_total{{outcome=\"{outcome}\"}} ");
    metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|n| n.parse().ok())
        .expect("runs counter")
}

fn stop(host: Host) {
    host.signal("-TERM");
    assert!(host.wait().success());
}

async fn a_patch_changes_only_what_it_names(db: TestStore) {
    let dir = setup_warm("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    let job = |id: &str, every: &str| json!({"id": id, "plugin": "hello", "trigger": {"type": "interval", "every": every}});

    // Args only: the next fire, created_at and incarnation stay.
    let (status, hourly) = api.post("/jobs", job("hourly", "1h")).await;
    assert_eq!(status, 201, "{hourly}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, patched) = patch(&api, "hourly", json!({"args": {"name": "v2"}})).await;
    assert_eq!(status, 200, "{patched}");
    for field in ["next_run_time", "created_at", "incarnation"] {
        assert_eq!(patched[field], hourly[field], "{field}: {patched}");
    }
    assert_eq!(patched["spec"]["args"]["name"], "v2");
    // A new trigger reschedules.
    let (_, patched) = patch(&api, "hourly", json!({"trigger": {"every": "2h"}})).await;
    assert_ne!(patched["next_run_time"], hourly["next_run_time"]);
    assert_eq!(patched["incarnation"], hourly["incarnation"]);

    // A job whose args change more often than it fires still fires (each
    // patch used to push its next fire one interval away).
    assert_eq!(api.post("/jobs", job("deployed", "2s")).await.0, 201);
    for i in 0..10 {
        let (status, _) = patch(&api, "deployed", json!({"args": {"name": format!("v{i}")}})).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Due at 2 s and 4 s, both inside the five seconds of patching.
    assert!(
        finished(&db, "deployed") >= 1,
        "a job patched more often than it fires never ran"
    );

    // Paused, then patched: still paused, and it does not fire.
    assert_eq!(api.post("/jobs", job("tick", "1s")).await.0, 201);
    assert_eq!(api.post("/jobs/tick/pause", json!({})).await.0, 200);
    for body in [
        json!({"args": {"name": "paused"}}),
        json!({"trigger": {"every": "2s"}}),
        json!({"paused": true, "max_instances": 2}),
    ] {
        let (status, info) = patch(&api, "tick", body.clone()).await;
        assert_eq!(status, 200, "{body}: {info}");
        assert_eq!(info["paused"], true, "{body}: {info}");
        assert_eq!(info["state"], "paused", "{body}: {info}");
        assert!(info["next_run_time"].is_null(), "{body}: {info}");
    }
    // Resuming is not a patch's business.
    let refused = patch(&api, "tick", json!({"paused": false})).await;
    assert_error(&refused, 422, "validation", Some("paused"));
    let message = refused.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("POST /jobs/tick/resume"), "{message}");
    let before = finished(&db, "tick");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(finished(&db, "tick"), before, "a paused job fired");
    let (_, resumed) = api.post("/jobs/tick/resume", json!({})).await;
    assert_eq!(resumed["state"], "scheduled");
    eventually(&host, "the resumed job to fire", || {
        finished(&db, "tick") > before
    });
    let refused = patch(&api, "tick", json!({"paused": true})).await;
    assert_error(&refused, 422, "validation", Some("paused"));
    stop(host);
}
backends!(a_patch_changes_only_what_it_names: sqlite, postgres);

fn changing_only_args_in_the_jobs_file_keeps_the_schedule_across_restarts(db: &TestStore) {
    let jobs = |name: &str| {
        format!(
            "version = 1\n[[jobs]]\nid = \"hourly\"\nplugin = \"hello\"\nargs = {{ name = \"{name}\" }}\ntrigger = {{ type = \"interval\", every = \"1h\" }}\n"
        )
    };
    let dir = setup_warm(&jobs("v1"), &["hello"]);
    let row = || {
        db.rows(&format!(
            "SELECT {}, {}, incarnation, spec FROM jobs WHERE id = 'hourly'",
            db.ms("next_run_time"),
            db.ms("created_at")
        ))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()))
        .collect::<Vec<_>>()
    };
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    eventually(&host, "the job", || row().len() == 1);
    let first = row().remove(0);
    stop(host);
    std::thread::sleep(Duration::from_millis(1100));

    std::fs::write(dir.path().join("jobs.toml"), jobs("v2")).expect("jobs file");
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    eventually(&host, "the changed args", || {
        row().first().is_some_and(|r| r.3.contains("v2"))
    });
    let second = row().remove(0);
    assert_eq!(
        (second.0, second.1, &second.2),
        (first.0, first.1, &first.2),
        "next_run_time, created_at and incarnation kept"
    );
    stop(host);
}

#[test]
fn changing_only_args_in_the_jobs_file_keeps_the_schedule_across_restarts_sqlite() {
    changing_only_args_in_the_jobs_file_keeps_the_schedule_across_restarts(&TestStore::new(
        Backend::Sqlite,
    ));
}

#[test]
fn changing_only_args_in_the_jobs_file_keeps_the_schedule_across_restarts_postgres() {
    changing_only_args_in_the_jobs_file_keeps_the_schedule_across_restarts(&TestStore::new(
        Backend::Postgres,
    ));
}

/// A time with microseconds, about four seconds from now.
fn soon_with_micros() -> DateTime<Utc> {
    (Utc::now() + chrono::Duration::seconds(4))
        .with_nanosecond(123_456_000)
        .expect("valid nanoseconds")
}

async fn sub_millisecond_times_make_no_false_misses_across_a_restart(db: TestStore) {
    let dir = setup_warm("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.get("/healthz").await;
    let at = soon_with_micros();
    let text = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (status, once) = api
        .post(
            "/jobs",
            json!({"id": "once", "plugin": "hello", "trigger": {"type": "date", "at": text}}),
        )
        .await;
    assert_eq!(status, 201, "{once}");
    let (status, every) = api
        .post(
            "/jobs",
            json!({"id": "every", "plugin": "hello",
                   "trigger": {"type": "interval", "every": "1h", "start": text}}),
        )
        .await;
    assert_eq!(status, 201, "{every}");
    stop(host);
    // Down while both were due.
    let wait = (at - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;

    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    eventually(&host, "the late runs", || {
        finished(&db, "once") == 1 && finished(&db, "every") == 1
    });
    // Give a false miss time to be recorded, then look for one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let statuses: Vec<String> = db
        .rows("SELECT job_id || ':' || status FROM runs ORDER BY job_id")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(statuses, ["every:finished", "once:finished"]);
    assert_eq!(runs_total(&api, "missed").await, 0);
    stop(host);
}
backends!(sub_millisecond_times_make_no_false_misses_across_a_restart: sqlite, postgres);

async fn a_deleted_jobs_run_does_not_reappear_under_a_new_job_with_its_id(db: TestStore) {
    let dir = setup_warm("version = 1\n", &["hello", "slow"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    let slow = json!({"id": "dup", "plugin": "slow", "args": {"millis": 2000},
                      "trigger": {"type": "interval", "every": "1h"}});
    let (_, first) = api.post("/jobs", slow).await;
    let (status, run) = api.post("/jobs/dup/run", json!({})).await;
    assert_eq!(status, 202, "{run}");
    let run_id = run["run_id"].as_str().expect("run id").to_owned();
    assert_eq!(run["incarnation"], first["incarnation"]);
    api.until(&format!("/runs/{run_id}"), |r| r["status"] == "running")
        .await;
    assert_eq!(
        api.send(reqwest::Method::DELETE, "/jobs/dup", None).await.0,
        204
    );
    let hello = json!({"id": "dup", "plugin": "hello",
                       "trigger": {"type": "interval", "every": "1h"}});
    let (status, second) = api.post("/jobs", hello).await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["incarnation"], first["incarnation"]);

    // The old run ends (and is dropped, saying so) while the new job
    // lives: neither its history nor GET /runs shows it.
    eventually(&host, "the old run to end", || {
        host.log().contains("its result is not recorded")
    });
    assert_error(
        &api.get(&format!("/runs/{run_id}")).await,
        404,
        "not_found",
        None,
    );
    let (_, runs) = api.get("/jobs/dup/runs").await;
    assert_eq!(runs["runs"], json!([]), "{runs}");
    // And it did not take the new job's max_instances slot with it.
    let (status, new_run) = api.post("/jobs/dup/run", json!({})).await;
    assert_eq!(status, 202, "{new_run}");
    assert_eq!(new_run["incarnation"], second["incarnation"]);
    stop(host);
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM runs WHERE run_id = '{run_id}'"
        )),
        0
    );
}
backends!(a_deleted_jobs_run_does_not_reappear_under_a_new_job_with_its_id: sqlite, postgres);

async fn after_downtime_catch_up_fires_each_run_and_start_up_misses_are_counted(db: TestStore) {
    let dir = setup_warm(
        r#"
version = 1
[[jobs]]
id = "each"
plugin = "hello"
coalesce = false
trigger = { type = "interval", every = "1s" }

[[jobs]]
id = "once"
plugin = "hello"
trigger = { type = "interval", every = "1s" }
"#,
        &["hello"],
    );
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    eventually(&host, "a run of each job", || {
        finished(&db, "each") >= 1 && finished(&db, "once") >= 1
    });
    stop(host);
    let stopped_at = Utc::now().timestamp_millis();
    // What was due when the host stopped: the first fire of the downtime.
    let next: i64 = db.count(&format!(
        "SELECT {} FROM jobs WHERE id = 'each'",
        db.ms("next_run_time")
    ));
    tokio::time::sleep(Duration::from_secs(6)).await;

    let restarted_at = Utc::now().timestamp_millis();
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    let at = db.ms("scheduled_at");
    let downtime = format!(
        "SELECT {at}, status FROM runs WHERE job_id = 'each' \
           AND {at} >= {next} AND {at} < {restarted_at} ORDER BY scheduled_at"
    );
    let fires = (restarted_at - next + 999) / 1000;
    assert!(
        fires >= 5,
        "{fires} fires missed ({stopped_at}..{restarted_at})"
    );
    eventually(&host, "every fire of the downtime to run", || {
        let rows = db.rows(&downtime);
        rows.len() as i64 >= fires && rows.iter().all(|r| r[1] == "finished")
    });
    let rows = db.rows(&downtime);
    let times: Vec<i64> = rows
        .iter()
        .map(|r| (r[0].parse::<i64>().expect("ms") - next) / 1000)
        .collect();
    assert_eq!(times, (0..fires).collect::<Vec<_>>(), "{rows:?}");
    // One after another: each began after the one before it ended.
    let spans: Vec<(i64, i64)> = db
        .rows(&format!(
            "SELECT {}, {} FROM runs WHERE job_id = 'each' \
               AND {at} >= {next} AND {at} < {restarted_at} ORDER BY scheduled_at",
            db.ms("started_at"),
            db.ms("ended_at")
        ))
        .iter()
        .map(|r| (r[0].parse().expect("ms"), r[1].parse().expect("ms")))
        .collect();
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "overlapping catch-up runs: {spans:?}"
        );
    }

    // The coalescing job's misses, recorded at start-up, are counted.
    eventually(&host, "the coalesced miss", || {
        db.count("SELECT count(*) FROM runs WHERE job_id = 'once' AND status = 'missed'") == 1
    });
    let missed = db.count("SELECT count(*) FROM runs WHERE status = 'missed'");
    assert_eq!(runs_total(&api, "missed").await, missed as u64);
    stop(host);
}
backends!(after_downtime_catch_up_fires_each_run_and_start_up_misses_are_counted: sqlite, postgres);
