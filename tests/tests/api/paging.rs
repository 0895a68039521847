//! Issue 15, item 6: run history pages by cursor (`before=RUN_ID`, the
//! previous page's `next_before`), so a client paging while runs arrive
//! sees each run once; through the real binary, its HTTP API and its CLI.

use super::overview::run_ids;
use super::{Api, BIN, assert_error, cli};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup_warm};
use wasmcron_tests::stores::TestStore;

/// Pages `path` (no query string) by cursor, `per` runs a
/// page, waiting `pause` between pages so that runs arrive meanwhile.
async fn page_through(api: &Api, path: &str, per: usize, pause: Duration) -> Vec<Value> {
    let mut runs = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..200 {
        let url = match &before {
            Some(b) => format!("{path}?limit={per}&before={b}"),
            None => format!("{path}?limit={per}"),
        };
        let (status, page) = api.get(&url).await;
        assert_eq!(status, 200, "{url}: {page}");
        if before.is_some() {
            assert_eq!(
                page["next_offset"],
                Value::Null,
                "cursor pages have no offset: {page}"
            );
        }
        assert_eq!(page["before"].as_str(), before.as_deref(), "{page}");
        runs.extend(page["runs"].as_array().cloned().unwrap_or_default());
        match page["next_before"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), runs.last().and_then(|r| r["run_id"].as_str()));
                before = Some(next.to_owned());
            }
            None => return runs,
        }
        tokio::time::sleep(pause).await;
    }
    panic!("{path}: more than 200 pages");
}

async fn run_history_pages_by_cursor_while_runs_arrive(db: TestStore) {
    let dir = setup_warm(
        r#"version = 1

[[jobs]]
id = "tick"
plugin = "hello"
trigger = { type = "interval", every = "1s" }

[[jobs]]
id = "greet"
plugin = "hello"
trigger = { type = "interval", every = "1h" }
"#,
        &["hello"],
    );
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    api.until("/jobs/tick/runs?limit=1000", |p| {
        p["runs"].as_array().is_some_and(|r| r.len() >= 6)
    })
    .await;
    let (status, greet) = api.post("/jobs/greet/run", json!({})).await;
    assert_eq!(status, 202, "{greet}");
    let foreign = greet["run_id"].as_str().unwrap_or_default().to_owned();

    // A job's history, two runs a page, a new fire arriving between pages:
    // each run once, newest scheduled first, and only runs that were
    // there when the first page was read (new ones arrive ahead of it).
    let (_, start) = api.get("/jobs/tick/runs?limit=1000").await;
    let at_start = run_ids(&start);
    let runs = page_through(&api, "/jobs/tick/runs", 2, Duration::from_millis(700)).await;
    let ids: Vec<String> = runs
        .iter()
        .map(|r| r["run_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "a run shown twice: {ids:?}"
    );
    let keys: Vec<(chrono::DateTime<chrono::FixedOffset>, String)> = runs
        .iter()
        .map(|r| {
            let at = r["scheduled_at"].as_str().unwrap_or_default();
            (
                chrono::DateTime::parse_from_rfc3339(at)
                    .unwrap_or_else(|e| panic!("scheduled_at {at:?}: {e}")),
                r["run_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {keys:?}"
    );
    assert!(
        ids.len() >= at_start.len(),
        "{} runs paged, {} at start",
        ids.len(),
        at_start.len()
    );
    let first_page: HashSet<&String> = at_start.iter().take(2).collect();
    assert!(
        ids.iter().skip(2).all(|id| !first_page.contains(id)),
        "the first page's runs came back on a later page: {ids:?}"
    );

    // Every job's runs, by run id: the same guarantees.
    let all = page_through(&api, "/runs", 3, Duration::from_millis(400)).await;
    let all_ids: Vec<&str> = all.iter().filter_map(|r| r["run_id"].as_str()).collect();
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "{all_ids:?}");
    assert!(all_ids.contains(&foreign.as_str()), "{all_ids:?}");
    // There the cursor need not be stored: any id bounds the walk.
    let oldest = all_ids.last().copied().unwrap_or_default();
    let (status, tail) = api.get(&format!("/runs?before={oldest}~")).await;
    assert_eq!(status, 200, "{tail}");
    assert_eq!(run_ids(&tail), vec![oldest.to_owned()]);

    // Clear refusals.
    let both = api.get("/jobs/tick/runs?offset=2&before=x").await;
    assert_error(&both, 400, "bad_query", Some("before"));
    assert!(both.1.to_string().contains("not both"), "{}", both.1);
    assert_error(
        &api.get("/runs?offset=1&before=x").await,
        400,
        "bad_query",
        Some("before"),
    );
    assert_error(
        &api.get("/jobs/tick/runs?before=").await,
        400,
        "bad_query",
        Some("before"),
    );
    let other = api.get(&format!("/jobs/tick/runs?before={foreign}")).await;
    assert_error(&other, 400, "bad_query", Some("before"));
    assert!(other.1.to_string().contains("\\\"greet\\\""), "{}", other.1);
    let gone = api.get("/jobs/tick/runs?before=0190aaaa-no-such-run").await;
    assert_error(&gone, 400, "bad_query", Some("before"));
    assert!(gone.1.to_string().contains("not stored"), "{}", gone.1);
    // Offset paging is still accepted.
    let (status, by_offset) = api.get("/jobs/tick/runs?offset=1&limit=1").await;
    assert_eq!(status, 200, "{by_offset}");
    assert_eq!(by_offset["next_offset"], 2, "{by_offset}");
    assert!(by_offset["next_before"].is_string(), "{by_offset}");

    // The CLI ends a page with the cursor of the next and takes it back.
    let url = host.api_url();
    let (ok, out, err) = cli(&["runs", "list", "tick", "--limit", "2"], &url);
    assert!(ok, "{err}");
    let next = out
        .lines()
        .find_map(|l| l.strip_prefix("next: --before "))
        .unwrap_or_else(|| panic!("no cursor line in {out}"))
        .trim()
        .to_owned();
    let (ok, more, err) = cli(
        &["runs", "list", "tick", "--limit", "2", "--before", &next],
        &url,
    );
    assert!(ok, "{err}");
    assert!(
        !more.contains(&next),
        "the cursor's own run is not on the next page: {more}"
    );
    let first_shown: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.len() == 36)
        .collect();
    assert_eq!(first_shown.len(), 2, "{out}");
    assert!(
        first_shown.iter().all(|id| !more.contains(id)),
        "{out}\n{more}"
    );
}
backends!(run_history_pages_by_cursor_while_runs_arrive: sqlite, postgres);

/// `jobs list` pages through `GET /jobs` (1,000 a page at most) by
/// offset: a host with more jobs than one page lists all of them, in id
/// order, as a table and as `--json`, and with a filter.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_every_job_past_one_page() {
    const JOBS: usize = 2_003;
    let mut file = String::from("version = 1\n");
    for i in 0..JOBS {
        // Half on one plugin, half on another, so a filter pages too.
        let plugin = if i % 2 == 0 { "hello" } else { "probe" };
        file.push_str(&format!(
            "\n[[jobs]]\nid = \"job-{i:05}\"\nplugin = \"{plugin}\"\n\
             trigger = {{ type = \"cron\", expr = \"0 9 * * *\" }}\n"
        ));
    }
    let dir = setup_warm(&file, &["hello", "probe"]);
    let host = Host::start(BIN, dir.path(), &[]);
    let api = Api::new(&host);
    api.until("/jobs?limit=1", |p| p["total"] == JOBS).await;

    let (ok, out, err) = cli(&["jobs", "list"], &api.base);
    assert!(ok, "{err}");
    let ids: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let want: Vec<String> = (0..JOBS).map(|i| format!("job-{i:05}")).collect();
    assert_eq!(ids, want, "the table holds every job once, by id");

    let (ok, out, err) = cli(&["jobs", "list", "--json"], &api.base);
    assert!(ok, "{err}");
    let page: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(page["total"], JOBS);
    let listed: Vec<&str> = page["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["spec"]["id"].as_str())
        .collect();
    assert_eq!(listed, want);

    let (ok, out, err) = cli(&["jobs", "list", "--plugin", "probe"], &api.base);
    assert!(ok, "{err}");
    let probes: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let want: Vec<&String> = want.iter().skip(1).step_by(2).collect();
    assert_eq!(probes.len(), want.len());
    assert!(probes.iter().zip(&want).all(|(a, b)| a == b), "{probes:?}");
}
