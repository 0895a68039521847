//! Issue 13, item 4: calendars and exclusion dates through the real
//! binary: a calendar from the jobs file, `PUT|GET|DELETE /calendars`,
//! a job's `exclude`, the skipped fires in `GET /jobs/{id}` and
//! `GET /cron/next`, errors naming the field, and a restart.

use super::{Api, BIN, assert_error, cli};
use chrono::{DateTime, Datelike, Utc, Weekday};
use chrono_tz::Asia::Shanghai;
use reqwest::Method;
use serde_json::{Value, json};
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup_warm};
use wasmcron_tests::stores::TestStore;

const JOBS: &str = r#"
version = 1

[calendars.weekends]
days = ["* * sat,sun"]
description = "no runs at the weekend"
"#;

fn time(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn weekend(t: DateTime<Utc>) -> bool {
    matches!(
        t.with_timezone(&Shanghai).weekday(),
        Weekday::Sat | Weekday::Sun
    )
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

async fn calendars_skip_fires_through_the_binary(db: TestStore) {
    let dir = setup_warm(JOBS, &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;

    // The jobs file's calendar, and a job naming it.
    let (status, made) = api
        .post(
            "/jobs",
            json!({"id": "weekday", "plugin": "hello", "exclude": ["weekends"],
                   "trigger": {"type": "cron", "expr": "0 9 * * *", "tz": "Asia/Shanghai"}}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let (status, all) = api.get("/calendars").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all[0]["name"], "weekends", "{all}");
    assert_eq!(all[0]["days"], json!(["* * sat,sun"]), "{all}");
    assert_eq!(all[0]["jobs"], json!(["weekday"]), "{all}");

    // Five fires that happen, none at a Shanghai weekend; the weekend
    // fires among them listed as skipped, by `weekends`.
    let (status, job) = api.get("/jobs/weekday").await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["spec"]["exclude"], json!(["weekends"]), "{job}");
    let next: Vec<DateTime<Utc>> = list(&job["next_fires"]).iter().map(time).collect();
    assert_eq!(next.len(), 5, "{job}");
    assert!(next.iter().all(|t| !weekend(*t)), "{job}");
    let skipped = list(&job["excluded_fires"]);
    assert!(
        skipped.len() >= 2,
        "a weekend lies within five weekdays: {job}"
    );
    for s in &skipped {
        assert_eq!(s["excluded_by"], "weekends", "{job}");
        assert!(weekend(time(&s["at"])), "{job}");
    }

    // A holiday on the next fire's date (in Shanghai), named by the job:
    // that fire no longer happens.
    let holiday = next[0].with_timezone(&Shanghai).date_naive().to_string();
    let (status, made) = api
        .send(
            Method::PUT,
            "/calendars/holidays",
            Some(json!({"dates": [holiday]})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["jobs"], json!([]), "{made}");
    let (status, again) = api
        .send(
            Method::PUT,
            "/calendars/holidays",
            Some(json!({"dates": [holiday]})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    let (status, patched) = api
        .send(
            Method::PATCH,
            "/jobs/weekday",
            Some(json!({"exclude": ["weekends", "holidays"]})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let (_, job) = api.get("/jobs/weekday").await;
    assert_eq!(time(&job["next_fires"][0]), next[1], "{job}");
    assert_eq!(time(&job["next_run_time"]), next[1], "{job}");
    assert!(
        list(&job["excluded_fires"])
            .iter()
            .any(|s| s["excluded_by"] == "holidays" && time(&s["at"]) == next[0]),
        "{job}"
    );

    // The cron tester leaves the same days out, naming what skips each.
    let (status, cron) = api
        .get("/cron/next?expr=0%209%20*%20*%20*&tz=Asia/Shanghai&count=5&exclude=weekends,holidays")
        .await;
    assert_eq!(status, 200, "{cron}");
    let fires = list(&cron["fires"]);
    let happen: Vec<DateTime<Utc>> = fires
        .iter()
        .filter(|f| f["excluded_by"].is_null())
        .map(|f| time(&f["utc"]))
        .collect();
    assert_eq!(
        happen,
        list(&job["next_fires"])
            .iter()
            .map(time)
            .collect::<Vec<_>>()
    );
    assert!(
        fires.iter().any(|f| f["excluded_by"] == "holidays"),
        "{cron}"
    );

    // Bad input: each a 422 naming the field, and nothing changed.
    for (path, body, field) in [
        (
            "/calendars/holidays",
            json!({"dates": ["2026-02-30"]}),
            "dates[0]",
        ),
        (
            "/calendars/holidays",
            json!({"dates": ["2026-12-31..2026-01-01"]}),
            "dates[0]",
        ),
        (
            "/calendars/holidays",
            json!({"days": ["* * sat,sun", "* *"]}),
            "days[1]",
        ),
        ("/calendars/holidays", json!({"colour": "red"}), "colour"),
        ("/calendars/9-to-5", json!({"days": ["* * *"]}), "name"),
        ("/calendars/exclude", json!({"days": ["* * *"]}), "name"),
        (
            "/calendars/holidays",
            json!({"dates": ["2026-12-01", "2026-12-01"]}),
            "dates[1]",
        ),
        (
            "/calendars/holidays",
            json!({"dates": [" 2026-12-01"]}),
            "dates[0]",
        ),
    ] {
        let resp = api.send(Method::PUT, path, Some(body.clone())).await;
        assert_error(&resp, 422, "validation", Some(field));
    }
    let (_, kept) = api.get("/calendars/holidays").await;
    assert_eq!(kept["dates"], json!([holiday]), "{kept}");
    for (exclude, says) in [
        (json!(["nope"]), "no calendar named 'nope'"),
        (json!(["2026-1-1"]), "YYYY-MM-DD"),
        (json!(["holidays", "holidays"]), "listed twice"),
    ] {
        let resp = api
            .post(
                "/jobs",
                json!({"id": "other", "plugin": "hello", "exclude": exclude,
                       "trigger": {"type": "interval", "every": "1h"}}),
            )
            .await;
        assert_error(&resp, 422, "validation", None);
        let field = resp.1["error"]["field"].as_str().unwrap_or_default();
        assert!(field.starts_with("exclude["), "{resp:?}");
        assert!(
            resp.1["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{resp:?}"
        );
    }
    assert_error(&api.get("/jobs/other").await, 404, "not_found", None);
    assert_error(
        &api.get("/cron/next?expr=0%209%20*%20*%20*&exclude=nope")
            .await,
        422,
        "validation",
        Some("exclude"),
    );
    // In use: 409 naming the job; unknown: 404.
    let resp = api.send(Method::DELETE, "/calendars/weekends", None).await;
    assert_error(&resp, 409, "conflict", None);
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("weekday")),
        "{resp:?}"
    );
    assert_error(
        &api.send(Method::DELETE, "/calendars/nope", None).await,
        404,
        "not_found",
        None,
    );

    // The CLI client lists and shows them.
    let (ok, out, err) = cli(&["calendars", "list"], &api.base);
    assert!(ok, "{err}");
    assert!(
        out.contains("holidays") && out.contains("weekends"),
        "{out}"
    );
    let (ok, out, err) = cli(&["calendars", "show", "holidays"], &api.base);
    assert!(ok, "{err}");
    assert!(out.contains(&holiday) && out.contains("weekday"), "{out}");
    // `jobs show` lists the skipped fires among the next ones.
    let (ok, out, err) = cli(&["jobs", "show", "weekday"], &api.base);
    assert!(ok, "{err}");
    assert!(out.contains("skipped (holidays)"), "{out}");
    assert!(out.contains("skipped (weekends)"), "{out}");

    // A restart keeps them, and the job still skips its holiday.
    drop(host);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let (status, kept) = api.get("/calendars/holidays").await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["jobs"], json!(["weekday"]), "{kept}");
    let (_, job) = api.get("/jobs/weekday").await;
    assert_eq!(time(&job["next_run_time"]), next[1], "{job}");

    // The OpenAPI document has the routes.
    let (_, doc) = api.get("/openapi.json").await;
    assert!(doc["paths"]["/calendars/{name}"]["put"].is_object());
    assert!(doc["components"]["schemas"]["CalendarSpec"].is_object());
}
backends!(calendars_skip_fires_through_the_binary: sqlite, postgres);
