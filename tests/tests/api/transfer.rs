//! `GET /jobs/export` and `POST /jobs/import` (issue 15 item 4): an
//! export imported into an empty host reproduces the same schedules; a
//! dry run changes nothing; `prune` removes only when asked; and the CLI's
//! `jobs export` and `jobs import`.

use super::{Api, BIN, assert_error, cli};
use serde_json::{Value, json};
use std::time::Duration;
use wasmcron_tests::host::{Host, setup};

/// A host with one job of each kind of trigger, a calendar, capabilities,
/// listeners and a job paused through the API.
async fn populate(api: &Api) -> Vec<String> {
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            "/calendars/holidays",
            Some(json!({"dates": ["2030-12-25"], "days": ["* * sun"]})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status}");
    let specs = [
        json!({"id": "cron-tz", "plugin": "hello", "args": {"name": "a"},
               "trigger": {"type": "cron", "expr": "30 9 * * mon-fri", "tz": "Asia/Shanghai"},
               "exclude": ["holidays", "2030-01-01"]}),
        json!({"id": "every-7m", "plugin": "hello",
               "trigger": {"type": "interval", "every": "7m", "jitter": "10s"},
               "capabilities": {"env": ["TZ"]},
               "listeners": [{"plugin": "alert"}]}),
        json!({"id": "once", "plugin": "hello",
               "trigger": {"type": "date", "at": "2031-06-01T12:00:00", "tz": "Europe/Berlin"}}),
        json!({"id": "either", "plugin": "hello",
               "trigger": {"type": "any", "triggers": [
                   {"type": "cron", "expr": "0 0 1 * *"}, {"type": "interval", "every": "5h"}]}}),
        json!({"id": "held", "plugin": "hello",
               "trigger": {"type": "interval", "every": "1h"}}),
    ];
    for spec in &specs {
        let resp = api.post("/jobs", spec.clone()).await;
        assert_eq!(resp.0, 201, "{resp:?}");
    }
    let resp = api.post("/jobs/held/pause", json!({})).await;
    assert_eq!(resp.0, 200, "{resp:?}");
    specs
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts two hosts plan the same fires for a job. A fire may fall due
/// between reading one host and the other (a jittered interval's first
/// fire comes within seconds of its creation), so the lists are compared
/// from the later of their first entries; RFC 3339 UTC strings in the
/// same format sort as times.
fn assert_same_fires(a: &Value, b: &Value, id: &str) {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (a, b) = (list(a), list(b));
    let from = match (a.first(), b.first()) {
        (Some(x), Some(y)) => x.max(y).clone(),
        _ => {
            assert_eq!(a, b, "{id}");
            return;
        }
    };
    let a: Vec<_> = a.into_iter().filter(|t| *t >= from).collect();
    let b: Vec<_> = b.into_iter().filter(|t| *t >= from).collect();
    let common = a.len().min(b.len());
    assert!(
        common + 1 >= a.len().max(b.len()) && common > 0,
        "{id}: {a:?} vs {b:?}"
    );
    assert_eq!(a[..common], b[..common], "{id}");
}

async fn import(api: &Api, query: &str, doc: &Value) -> (u16, Value) {
    api.post(&format!("/jobs/import?{query}"), doc.clone())
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_imported_into_an_empty_host_has_the_same_schedules() {
    let dir_a = setup("version = 1\n", &["hello", "alert"]);
    let host_a = Host::start(BIN, dir_a.path(), &[]);
    let a = Api::new(&host_a);
    a.plugins_ready().await;
    let ids = populate(&a).await;
    // Let the interval anchors lie in the past, so a host counting from
    // the import would be visibly off.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (status, export) = a.get("/jobs/export").await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["version"], 1);
    assert_eq!(export["jobs"].as_array().map(Vec::len), Some(ids.len()));
    assert_eq!(
        export["calendars"]["holidays"]["dates"],
        json!(["2030-12-25"])
    );
    let toml_text = a
        .http
        .get(format!("{}/jobs/export", a.base))
        .header("accept", "application/toml")
        .send()
        .await
        .expect("export as TOML");
    assert_eq!(
        toml_text.headers()["content-type"].to_str().ok(),
        Some("application/toml")
    );
    let toml_text = toml_text.text().await.expect("body");
    assert!(toml_text.contains("[[jobs]]"), "{toml_text}");
    // The TOML is a jobs file: the same document as the JSON.
    let from_toml: Value =
        serde_json::to_value(toml::from_str::<toml::Value>(&toml_text).expect("TOML")).unwrap();
    assert_eq!(from_toml, export);

    // Importing a host's own export changes nothing.
    let (status, done) = import(&a, "", &export).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["unchanged"], ids.len(), "{done}");
    assert_eq!(
        (done["added"].clone(), done["changed"].clone()),
        (json!([]), json!([]))
    );

    // An empty host: a dry run says everything would be added, and changes
    // nothing (no job, no calendar, no event).
    let dir_b = setup("version = 1\n", &["hello", "alert"]);
    let host_b = Host::start(BIN, dir_b.path(), &[]);
    let b = Api::new(&host_b);
    b.plugins_ready().await;
    let mut events = b
        .http
        .get(format!("{}/events", b.base))
        .send()
        .await
        .expect("event stream");
    let (status, dry) = import(&b, "dry_run=true", &export).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    let mut added: Vec<String> = dry["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    added.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(added, want);
    assert_eq!(dry["calendars"], json!(["holidays"]));
    assert_eq!(b.get("/jobs").await.1["total"], 0);
    assert_eq!(b.get("/calendars").await.1, json!([]));
    assert_eq!(
        wasmcron_tests::host::count(dir_b.path(), "SELECT count(*) FROM jobs"),
        0
    );
    // The first job event the stream carries is the marker's, added after
    // the dry run.
    let resp = b
        .post(
            "/jobs",
            json!({"id": "marker", "plugin": "hello", "trigger": {"type": "interval", "every": "1h"}}),
        )
        .await;
    assert_eq!(resp.0, 201, "{resp:?}");
    let mut seen = String::new();
    while !seen.contains("marker") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), events.chunk())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    for id in &ids {
        assert!(!seen.contains(&format!("\"{id}\"")), "{id} in {seen}");
    }
    assert_eq!(
        b.send(reqwest::Method::DELETE, "/jobs/marker", None)
            .await
            .0,
        204
    );

    // The import itself: the same next fires and specs.
    let (status, done) = import(&b, "dry_run=false", &export).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["added"].as_array().map(Vec::len), Some(ids.len()));
    for id in &ids {
        let exported = export["jobs"]
            .as_array()
            .and_then(|l| l.iter().find(|j| j["id"] == id.as_str()))
            .expect("exported");
        let (_, ja) = a.get(&format!("/jobs/{id}?fires=10")).await;
        let (_, jb) = b.get(&format!("/jobs/{id}?fires=10")).await;
        assert_same_fires(&ja["next_fires"], &jb["next_fires"], id);
        assert_eq!(jb["excluded_fires"], ja["excluded_fires"], "{id}");
        assert_eq!(jb["paused"], ja["paused"], "{id}");
        assert_eq!(&jb["spec"], exported, "{id}");
    }
    assert_eq!(b.get("/jobs/held").await.1["paused"], true);
    assert_eq!(
        b.get("/calendars/holidays").await.1["days"],
        json!(["* * sun"])
    );
    // And b's export is a's.
    assert_eq!(b.get("/jobs/export").await.1, export);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_reports_changes_prunes_only_when_asked_and_checks_before_writing() {
    let dir = setup("version = 1\n", &["hello"]);
    let host = Host::start(BIN, dir.path(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let job = |id: &str, every: &str| json!({"id": id, "plugin": "hello", "trigger": {"type": "cron", "expr": every}});
    let doc =
        json!({"jobs": [job("a", "0 * * * *"), job("b", "0 * * * *"), job("c", "0 * * * *")]});
    let (status, done) = import(&api, "", &doc).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["added"], json!(["a", "b", "c"]));

    // b changed, c left out: without prune c stays; a dry run with prune
    // names it and keeps it; prune removes it.
    let mut next = json!({"jobs": [job("a", "0 * * * *"), job("b", "5 * * * *")]});
    next["jobs"][1]["args"] = json!({"name": "x"});
    let (_, dry) = import(&api, "dry_run=true", &next).await;
    assert_eq!(
        dry["changed"],
        json!([{"id": "b", "fields": ["args", "trigger"]}])
    );
    assert_eq!(
        (dry["removed"].clone(), dry["unchanged"].clone()),
        (json!([]), json!(1))
    );
    let (_, dry) = import(&api, "dry_run=true&prune=true", &next).await;
    assert_eq!(dry["removed"], json!(["c"]));
    assert_eq!(
        api.get("/jobs/b").await.1["spec"]["trigger"]["expr"],
        "0 * * * *"
    );
    assert_eq!(api.get("/jobs/c").await.0, 200);
    let (_, done) = import(&api, "prune=true", &next).await;
    assert_eq!(done["removed"], json!(["c"]), "{done}");
    assert_eq!(api.get("/jobs/c").await.0, 404);
    assert_eq!(
        api.get("/jobs/b").await.1["spec"]["trigger"]["expr"],
        "5 * * * *"
    );
    // The audit log has what the imports did (dry runs wrote nothing):
    // three creations, b's change with its fields, c's removal.
    let (status, audit) = api.get("/audit?limit=100").await;
    assert_eq!(status, 200, "{audit}");
    let seen: Vec<(String, String)> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or_default().to_owned(),
                r["target"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let pair = |a: &str, t: &str| (a.to_owned(), t.to_owned());
    assert_eq!(
        seen,
        vec![
            pair("job_deleted", "c"),
            pair("job_modified", "b"),
            pair("job_created", "c"),
            pair("job_created", "b"),
            pair("job_created", "a"),
        ],
        "{audit}"
    );
    let modified = &audit["entries"][1]["detail"]["changed"];
    assert_eq!(modified["trigger"]["new"]["expr"], "5 * * * *", "{audit}");

    // One bad spec: 422 naming it, and nothing of the file is written.
    let bad = json!({"jobs": [job("d", "0 * * * *"), job("e", "61 * * * *")]});
    let resp = import(&api, "", &bad).await;
    assert_error(&resp, 422, "validation", Some("jobs[1].trigger.expr"));
    assert_eq!(api.get("/jobs/d").await.0, 404);
    let resp = import(
        &api,
        "",
        &json!({"jobs": [job("d", "0 * * * *"), job("d", "1 * * * *")]}),
    )
    .await;
    assert_error(&resp, 422, "validation", Some("jobs[1].id"));
    // A chain to a job neither in the file nor here: the dry run refuses it
    // as the import does (it used to pass the dry run), naming it.
    let mut chained = job("f", "0 * * * *");
    chained["on_failure"] = json!(["a", "no-such-job"]);
    let doc = json!({"jobs": [job("d", "0 * * * *"), chained]});
    for query in ["dry_run=true", ""] {
        let resp = import(&api, query, &doc).await;
        assert_error(&resp, 422, "validation", Some("jobs[1].on_failure[1]"));
    }
    assert_eq!(api.get("/jobs/d").await.0, 404);
    let resp = import(&api, "dry_run=maybe", &bad).await;
    assert_error(&resp, 422, "validation", Some("dry_run"));
    let resp = import(&api, "", &json!({"version": 2, "jobs": []})).await;
    assert_error(&resp, 422, "validation", Some("version"));

    // The CLI: export to a file, import it elsewhere with --dry-run, then
    // for real.
    let url = host.api_url();
    let file = dir.path().join("export.toml");
    let (ok, _, err) = cli(&["jobs", "export", file.to_str().unwrap()], &url);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("id = \"b\""), "{text}");
    let dir2 = setup("version = 1\n", &["hello"]);
    let host2 = Host::start(BIN, dir2.path(), &[]);
    let api2 = Api::new(&host2);
    api2.plugins_ready().await;
    let url2 = host2.api_url();
    let (ok, out, err) = cli(
        &["jobs", "import", file.to_str().unwrap(), "--dry-run"],
        &url2,
    );
    assert!(ok, "{err}");
    assert!(out.contains("+ a (would be added)"), "{out}");
    assert!(
        out.contains("2 added, 0 changed, 0 removed, 0 unchanged (dry run"),
        "{out}"
    );
    assert_eq!(api2.get("/jobs").await.1["total"], 0);
    let (ok, out, err) = cli(&["jobs", "import", file.to_str().unwrap()], &url2);
    assert!(ok, "{err}");
    assert!(out.contains("2 added"), "{out}");
    assert_eq!(api2.get("/jobs").await.1["total"], 2);
    let (ok, out, _) = cli(&["jobs", "import", file.to_str().unwrap()], &url2);
    assert!(
        ok && out.contains("0 added, 0 changed, 0 removed, 2 unchanged"),
        "{out}"
    );
}
