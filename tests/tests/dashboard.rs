//! The web dashboard (issue 14) end to end: the real binary serving its
//! built-in page, driven by a real headless Chromium through chromedriver,
//! with every outcome checked on the page and, where it matters, through
//! the HTTP API.
//!
//! Each test has its own host (its own folder, database and port) and its
//! own browser. Without Chromium and chromedriver installed the tests print
//! `SKIPPED` and pass, unless `WASMCRON_REQUIRE_BROWSER=1` (as in CI).
//! Screenshots go to `<target>/tmp/dashboard-screenshots/`.

use serde_json::{Value, json};
use std::time::Duration;
use wasmcron_tests::browser::Browser;
use wasmcron_tests::host::{Host, setup_warm};

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

/// Where screenshots go: under the cargo target folder, never the repo.
const SHOTS: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/dashboard-screenshots/");

/// A token for the token-required tests (at least 16 characters).
const TOKEN: &str = "dashboard-e2e-token-0123456789";

/// A phone's viewport (CSS pixels).
const PHONE: (u32, u32) = (375, 800);

/// A job that always fails with a log line first: the `exit` plugin prints
/// `exiting with 3` and calls `exit(3)`, which the host records as
/// `failed`, "the guest called exit with a non-zero status (1)" (WASI's
/// exit carries only success or failure).
const BOOM: &str = r#"
[[jobs]]
id = "boom"
plugin = "exit"
args = { code = 3 }
trigger = { type = "interval", every = "1h" }
"#;

/// A job that succeeds, rarely due on its own.
const GREET: &str = r#"
[[jobs]]
id = "greet"
plugin = "hello"
args = { name = "dashboard" }
trigger = { type = "interval", every = "1h" }
"#;

/// The HTTP API of the host under test.
struct Api {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("the API's body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET path`, which must answer 200.
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `POST path`, which must answer 2xx.
    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.send(reqwest::Method::POST, path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {answer}"
        );
        answer
    }

    /// Polls `GET path` until `check` holds (60 s safety net).
    async fn until(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..600 {
            let (status, body) = self.send(reqwest::Method::GET, path, None).await;
            if status == 200 && check(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("GET {path} never satisfied the check");
    }

    /// Waits until no plugin is still compiling, so runs started from the
    /// page find their plugin in service.
    async fn plugins_ready(&self) {
        self.until("/plugins", |list| {
            list.as_array().is_some_and(|l| {
                l.iter()
                    .all(|p| p["status"] != "compiling" && p.get("compiling").is_none())
            })
        })
        .await;
    }

    /// Waits until run `run_id` has finished and returns it.
    async fn finished_run(&self, run_id: &str) -> Value {
        self.until(&format!("/runs/{run_id}"), |r| r["status"] == "finished")
            .await
    }
}

/// One test's world: a browser, the host and its folder. Fields drop in
/// this order: the browser first, then the host, then its folder.
struct Dash {
    browser: Browser,
    api: Api,
    _host: Host,
    _dir: tempfile::TempDir,
}

/// Starts a host on `jobs` (a jobs file without its `version` line) with
/// `plugins` installed and compiled, plus `extra` arguments to `wasmcron
/// run`, and a browser; `None` when the browser tests are skipped.
async fn dash(jobs: &str, plugins: &[&str], extra: &[&str]) -> Option<Dash> {
    let browser = Browser::launch(SHOTS).await?;
    if std::env::var_os("WASMCRON_DASHBOARD_DIR").is_some() {
        eprintln!(
            "note: WASMCRON_DASHBOARD_DIR is set: the host serves that folder's files, \
             not the dashboard built into the binary"
        );
    }
    let jobs = format!("version = 1\n{jobs}");
    let dir = setup_warm(&jobs, plugins);
    let host = Host::start(BIN, dir.path(), extra);
    let api = Api {
        base: host.api_url(),
        http: reqwest::Client::new(),
        token: extra.contains(&"--token").then(|| TOKEN.to_owned()),
    };
    api.plugins_ready().await;
    Some(Dash {
        browser,
        api,
        _host: host,
        _dir: dir,
    })
}

impl Dash {
    /// Loads the dashboard afresh at `#route` and waits until page `page`
    /// says its data is loaded and rendered.
    async fn open(&self, route: &str, page: &str) {
        // A route of the page already open is only a fragment change of
        // the same document: the reload makes it a real load, as a
        // bookmark or a pasted link is. (Not through another page: a page
        // left that way stays in the back/forward cache, see
        // `leaving_the_dashboard_and_coming_back_…` below.)
        self.browser
            .goto(&format!("{}/#{route}", self.api.base))
            .await;
        self.browser.reload().await;
        self.ready(page).await;
    }

    /// Waits until `<main>` shows page `page`, loaded and rendered.
    async fn ready(&self, page: &str) {
        self.browser
            .wait_for(&format!(
                r#"main#main[data-page="{page}"][data-ready="true"]"#
            ))
            .await;
    }

    /// The text of job `id`'s state badge on the jobs page.
    async fn badge(&self, id: &str) -> String {
        self.browser
            .text(&format!(
                r#"tr[data-job-id="{id}"] [data-testid="job-state"]"#
            ))
            .await
            .trim()
            .to_owned()
    }

    /// Waits until job `id`'s badge reads exactly `state`.
    async fn wait_badge(&self, id: &str, state: &str) {
        let css = format!(r#"tr[data-job-id="{id}"] [data-testid="job-state"]"#);
        self.browser
            .wait_until(&format!("job {id}'s badge to read {state:?}"), || async {
                self.browser
                    .try_text(&css)
                    .await
                    .is_some_and(|t| t.trim() == state)
            })
            .await;
    }

    /// `document.body.dataset.canWrite`.
    async fn can_write(&self) -> String {
        self.browser
            .exec("return document.body.dataset.canWrite ?? null", Vec::new())
            .await
            .as_str()
            .unwrap_or("(unset)")
            .to_owned()
    }

    /// Asserts the token appears nowhere in the page's address.
    async fn assert_token_not_in_url(&self) {
        let url = self.browser.url().await;
        assert!(
            !url.contains(TOKEN) && !url.contains("token="),
            "the token (or a token parameter) is in the URL: {url}"
        );
    }
}

/// The host's jobs, by id.
async fn jobs_by_id(api: &Api) -> std::collections::BTreeMap<String, Value> {
    let page = api.get("/jobs").await;
    page["jobs"]
        .as_array()
        .expect("GET /jobs lists jobs")
        .iter()
        .map(|j| {
            (
                j["spec"]["id"].as_str().unwrap_or_default().to_owned(),
                j.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_page_lists_every_job_with_its_state_and_schedule_in_words() {
    let jobs = format!(
        r#"{GREET}
[[jobs]]
id = "nightly.report"
plugin = "hello"
trigger = {{ type = "cron", expr = "5 0 * * *", tz = "Asia/Shanghai" }}

[[jobs]]
id = "held"
plugin = "hello"
trigger = {{ type = "cron", expr = "0 9 * * mon" }}
paused = true

[[jobs]]
id = "orphan"
plugin = "absent"
trigger = {{ type = "interval", every = "30m" }}
"#
    );
    let Some(d) = dash(&jobs, &["hello"], &[]).await else {
        return;
    };
    let listed = jobs_by_id(&d.api).await;
    let states: Vec<(&str, &str)> = listed
        .iter()
        .map(|(id, j)| (id.as_str(), j["state"].as_str().unwrap_or_default()))
        .collect();
    // What the API says first, so a difference below is the page's.
    assert_eq!(
        states,
        [
            ("greet", "scheduled"),
            ("held", "paused"),
            ("nightly.report", "scheduled"),
            ("orphan", "waiting-for-plugin"),
        ],
        "the API's view of the jobs file"
    );

    d.open("/jobs", "jobs").await;
    d.browser.wait_count("tr[data-job-id]", listed.len()).await;
    d.browser.save_screenshot("jobs-list").await;
    for (id, job) in &listed {
        assert_eq!(d.badge(id).await, job["state"], "job {id}'s badge");
        let row = d.browser.text(&format!(r#"tr[data-job-id="{id}"]"#)).await;
        // The words may be shown apart from their zone: check both.
        let schedule = job["schedule"].as_str().expect("jobs have a schedule");
        let (words, zone) = match schedule.rsplit_once(" (") {
            Some((words, zone)) => (words, zone.trim_end_matches(')')),
            None => (schedule, ""),
        };
        assert!(
            row.contains(words) && row.contains(zone),
            "job {id}'s row does not show its schedule {schedule:?}: {row:?}"
        );
    }
    let nightly = d.browser.text(r#"tr[data-job-id="nightly.report"]"#).await;
    assert!(
        nightly.contains("00:05") && nightly.contains("Asia/Shanghai"),
        "a cron schedule in words with its zone: {nightly:?}"
    );

    // The search box narrows the list to the matching job.
    d.browser
        .type_text(r#"input[data-testid="job-search"]"#, "nightly")
        .await;
    d.browser
        .wait_until("the search to hide the other jobs", || async {
            !d.browser.is_displayed(r#"tr[data-job-id="greet"]"#).await
                && !d.browser.is_displayed(r#"tr[data-job-id="orphan"]"#).await
        })
        .await;
    assert!(
        d.browser
            .is_displayed(r#"tr[data-job-id="nightly.report"]"#)
            .await,
        "the matching job stays listed"
    );
    d.browser.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_paused_resumed_and_deleted_from_the_jobs_page_is_so_in_the_api() {
    let jobs = format!("{GREET}{BOOM}");
    let Some(d) = dash(&jobs, &["hello", "exit"], &[]).await else {
        return;
    };
    d.open("/jobs", "jobs").await;
    assert_eq!(d.badge("greet").await, "scheduled");

    d.browser
        .click(r#"tr[data-job-id="greet"] button[data-action="pause"]"#)
        .await;
    d.wait_badge("greet", "paused").await;
    let job = d.api.get("/jobs/greet").await;
    assert_eq!(job["state"], "paused", "{job}");
    assert_eq!(job["paused"], true, "{job}");
    assert_eq!(d.badge("boom").await, "scheduled", "only greet was paused");
    d.browser.save_screenshot("jobs-paused").await;

    // A fresh load shows what the host holds, not what the page remembers.
    d.open("/jobs", "jobs").await;
    assert_eq!(d.badge("greet").await, "paused");

    d.browser
        .click(r#"tr[data-job-id="greet"] button[data-action="resume"]"#)
        .await;
    d.wait_badge("greet", "scheduled").await;
    let job = d.api.get("/jobs/greet").await;
    assert_eq!(job["state"], "scheduled", "{job}");
    assert_eq!(job["paused"], false, "{job}");

    // Delete asks first; confirmed, the job is gone from the page and the
    // host, and the other one stays.
    d.browser
        .click(r#"tr[data-job-id="boom"] button[data-action="delete"]"#)
        .await;
    d.browser.wait_for("dialog[open]").await;
    assert_eq!(
        d.api.send(reqwest::Method::GET, "/jobs/boom", None).await.0,
        200,
        "deleted before the confirmation"
    );
    d.browser.save_screenshot("jobs-delete-confirm").await;
    d.browser
        .click(r#"dialog[open] button[data-action="confirm"]"#)
        .await;
    d.browser.wait_gone(r#"tr[data-job-id="boom"]"#).await;
    let (status, body) = d.api.send(reqwest::Method::GET, "/jobs/boom", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(d.badge("greet").await, "scheduled");
    d.browser.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_shows_up_live_without_a_reload() {
    let jobs = format!("{GREET}{BOOM}");
    let Some(d) = dash(&jobs, &["hello", "exit"], &[]).await else {
        return;
    };
    d.open("/live", "live").await;
    // A mark on this document: a reload would lose it.
    d.browser
        .exec("window.__sameDocument = 'yes'; return null", Vec::new())
        .await;
    // Connected to the stream before the run is started, or its events
    // would go by unseen (the API's stream does not replay).
    d.browser
        .wait_js(
            "the event stream to be connected",
            "document.getElementById('conn')?.dataset.state === 'open' || \
             !document.getElementById('conn')",
        )
        .await;

    let run = d.api.post("/jobs/boom/run", json!({})).await;
    let run_id = run["run_id"].as_str().expect("run now answers the run");
    let css = format!(r#"li[data-run-id="{run_id}"][data-outcome="failed"]"#);
    d.browser.wait_for(&css).await;
    assert_eq!(
        d.browser.attr(&css, "data-job-id").await.as_deref(),
        Some("boom")
    );
    let same = d
        .browser
        .exec("return window.__sameDocument ?? null", Vec::new())
        .await;
    assert_eq!(same, "yes", "the page was reloaded");
    let recorded = d.api.finished_run(run_id).await;
    assert_eq!(recorded["outcome"]["kind"], "failed", "{recorded}");
    d.browser.save_screenshot("live-failed-run").await;
    d.browser.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_with_the_run_button_shows_its_logs_and_error_on_its_page() {
    let jobs = format!("{GREET}{BOOM}");
    let Some(d) = dash(&jobs, &["hello", "exit"], &[]).await else {
        return;
    };
    d.open("/jobs", "jobs").await;
    d.browser
        .click(r#"tr[data-job-id="boom"] button[data-action="run"]"#)
        .await;
    let runs = d
        .api
        .until("/jobs/boom/runs", |page| {
            page["runs"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["status"] == "finished"))
        })
        .await;
    let runs = runs["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "one click, one run: {runs:?}");
    let run_id = runs[0]["run_id"].as_str().expect("a run id").to_owned();
    let run = d.api.finished_run(&run_id).await;
    assert_eq!(run["outcome"]["kind"], "failed", "{run}");
    let message = run["outcome"]["message"]
        .as_str()
        .expect("a failure message");
    assert!(message.contains("non-zero status"), "{message}");

    // From the job's page to the run's.
    d.open("/jobs/boom", "job").await;
    let spec = d.browser.text(r#"[data-testid="job-spec"]"#).await;
    assert!(
        spec.contains("exit"),
        "the job's spec names its plugin: {spec:?}"
    );
    d.browser
        .wait_for(r#"ol[data-testid="next-fires"] > li"#)
        .await;
    let row = format!(r#"tr[data-run-id="{run_id}"]"#);
    d.browser.wait_for(&row).await;
    d.browser.save_screenshot("job-boom").await;
    d.browser.click(&format!("{row} a")).await;
    d.ready("run").await;
    let url = d.browser.url().await;
    assert!(url.ends_with(&format!("#/runs/{run_id}")), "{url}");

    let outcome = d
        .browser
        .wait_for_text(r#"[data-testid="run-outcome"]"#, "failed")
        .await;
    assert!(outcome.contains("failed"), "{outcome:?}");
    let error = d.browser.text(r#"[data-testid="run-error"]"#).await;
    assert!(
        error.contains(message),
        "the page's error {error:?} lacks the run's message {message:?}"
    );
    let logs = d.browser.text(r#"pre[data-testid="run-logs"]"#).await;
    assert!(
        logs.contains("exiting with 3"),
        "the plugin's line: {logs:?}"
    );
    for record in run["logs"].as_array().expect("the run's logs") {
        let line = record["message"].as_str().unwrap_or_default();
        assert!(
            logs.contains(line),
            "log line {line:?} missing from {logs:?}"
        );
    }
    d.browser.save_screenshot("run-failed").await;
    d.browser.assert_no_console_errors().await;
}

/// hello declares its args' schema (issue 16 item 6): the job page's
/// "Run now" dialog is a form drawn from it (a labelled field with its
/// description, filled with the job's args), and what it sends runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_declared_args_become_a_form_in_the_run_dialog() {
    let Some(d) = dash(GREET, &["hello"], &[]).await else {
        return;
    };
    d.open("/jobs/greet", "job").await;
    d.browser.click(r#"button[data-action="run"]"#).await;
    let input = r#"dialog[open] [data-testid="args-form"] input[name="arg-name"]"#;
    d.browser.wait_for(input).await;
    let form = d
        .browser
        .text(r#"dialog[open] [data-testid="args-form"]"#)
        .await;
    assert!(form.contains("name (optional)"), "{form:?}");
    assert!(
        form.contains("Who to greet"),
        "the field's description: {form:?}"
    );
    assert_eq!(
        d.browser
            .exec(
                &format!("return document.querySelector('{input}').value"),
                vec![]
            )
            .await,
        "dashboard",
        "filled with the job's args"
    );
    d.browser.clear(input).await;
    d.browser.type_text(input, "Grace").await;
    d.browser.save_screenshot("job-run-args-form").await;
    d.browser
        .click(r#"dialog[open] button[data-action="confirm"]"#)
        .await;
    d.browser.wait_gone("dialog[open]").await;
    let runs = d
        .api
        .until("/jobs/greet/runs", |page| {
            page["runs"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["status"] == "finished"))
        })
        .await;
    let run_id = runs["runs"][0]["run_id"]
        .as_str()
        .expect("a run id")
        .to_owned();
    let run = d.api.finished_run(&run_id).await;
    assert_eq!(run["outcome"]["output"], "Hello, Grace!", "{run}");
    d.browser.assert_no_console_errors().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cron_tester_explains_warns_and_refuses_as_you_type() {
    let Some(d) = dash(GREET, &["hello"], &[]).await else {
        return;
    };
    d.open("/cron", "cron").await;
    let expr = "input#cron-expr";
    let words = r#"[data-testid="cron-words"]"#;
    let fires = r#"ol[data-testid="cron-fires"] > li"#;
    let warning = r#"[data-testid="cron-warning"]"#;
    let error = r#"[data-testid="cron-error"]"#;
    d.browser.wait_for("input#cron-zone").await;

    // A valid expression: its words, as the API says them, and 10 fires.
    let valid = "*/15 9-17 * * mon-fri";
    let explained = d
        .api
        .get(&format!("/cron/explain?expr={}", encode(valid)))
        .await;
    let said = explained["explain"].as_str().expect("words");
    d.browser.clear(expr).await;
    d.browser.type_text(expr, valid).await;
    d.browser.wait_for_text(words, said).await;
    d.browser.wait_count(fires, 10).await;
    assert_eq!(d.browser.count(warning).await, 0, "no warning for {valid}");
    assert_eq!(d.browser.count(error).await, 0, "no error for {valid}");
    d.browser.save_screenshot("cron-valid").await;

    // Both day fields restricted: cron ORs them, and the page warns.
    let or_days = "0 0 1 * mon";
    d.browser.clear(expr).await;
    d.browser.type_text(expr, or_days).await;
    let warned = d.browser.wait_for_text(warning, "OR").await;
    assert!(
        warned.contains("Monday") && warned.contains("day 1"),
        "the warning names both day fields: {warned:?}"
    );
    assert_eq!(d.browser.count(error).await, 0, "{or_days} is valid");
    d.browser.save_screenshot("cron-or-days").await;

    // An invalid one, typed a character at a time: after "6" alone the
    // page already says something is wrong; at the end it names the
    // minute field, as the API does.
    let invalid = "61 * * * *";
    let (status, refused) = d
        .api
        .send(
            reqwest::Method::GET,
            &format!("/cron/next?expr={}", encode(invalid)),
            None,
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    let reason = refused["error"]["message"].as_str().expect("a message");
    assert!(
        reason.contains("minute") && reason.contains("61"),
        "{reason}"
    );
    d.browser.clear(expr).await;
    let browser = &d.browser;
    browser
        .type_chars(expr, invalid, |typed| async move {
            if typed == "6" {
                browser.wait_for(error).await;
            }
        })
        .await;
    d.browser.wait_for_text(error, reason).await;
    assert_eq!(
        d.browser.count(warning).await,
        0,
        "no warning with an error"
    );
    assert_eq!(d.browser.count(fires).await, 0, "no fires for {invalid}");
    d.browser.save_screenshot("cron-invalid").await;
    // Chrome logs every 4xx answer as a failed request; the 422s that
    // refuse the incomplete and invalid expressions are the point here.
    d.browser
        .assert_no_console_errors_but(|m| {
            m.source == "network" && m.message.contains("/cron/") && m.message.contains(" 422 ")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_writes_are_hidden_until_signed_in_and_a_wrong_token_is_refused() {
    let Some(d) = dash(GREET, &["hello"], &["--token", TOKEN]).await else {
        return;
    };
    let pause = r#"tr[data-job-id="greet"] button[data-action="pause"]"#;
    d.open("/jobs", "jobs").await;
    assert_eq!(d.badge("greet").await, "scheduled", "reads need no token");
    assert_eq!(d.can_write().await, "false");
    assert!(
        !d.browser.is_displayed(pause).await,
        "Pause is offered without a token"
    );
    assert!(
        d.browser.is_displayed("button#sign-in").await,
        "no Sign-in button"
    );
    d.browser.save_screenshot("token-signed-out").await;

    // A wrong token: the dialog says so, and nothing is unlocked.
    d.browser.click("button#sign-in").await;
    d.browser.wait_for("dialog#token-dialog[open]").await;
    let wrong = "not-the-right-token-0000";
    d.browser.type_text("input#token-input", wrong).await;
    d.browser.click("button#token-submit").await;
    d.browser
        .wait_until("the dialog to show an error", || async {
            d.browser
                .texts(r#"dialog#token-dialog[open] [role="alert"]"#)
                .await
                .iter()
                .any(|t| !t.trim().is_empty())
        })
        .await;
    d.browser.save_screenshot("token-wrong").await;
    assert_eq!(d.can_write().await, "false");
    assert!(!d.browser.is_displayed(pause).await);
    let url = d.browser.url().await;
    assert!(!url.contains(wrong), "the wrong token is in the URL: {url}");
    d.assert_token_not_in_url().await;

    // The right one: the dialog closes and the actions appear.
    d.browser.clear("input#token-input").await;
    d.browser.type_text("input#token-input", TOKEN).await;
    d.browser.click("button#token-submit").await;
    d.browser.wait_gone("dialog#token-dialog[open]").await;
    d.browser
        .wait_js(
            "canWrite to become true",
            "document.body.dataset.canWrite === 'true'",
        )
        .await;
    d.ready("jobs").await;
    d.browser.click(pause).await;
    d.wait_badge("greet", "paused").await;
    let job = d.api.get("/jobs/greet").await;
    assert_eq!(job["state"], "paused", "{job}");
    d.assert_token_not_in_url().await;
    d.browser.save_screenshot("token-signed-in").await;
}

/// An `operate` token (issue 15): run, pause and resume are offered, the
/// admin's actions (delete a job, upload or remove a plugin) are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operate_token_is_offered_run_and_pause_but_not_delete() {
    let out = std::process::Command::new(BIN)
        .args(["token", "new", "ops", "--role", "operate"])
        .output()
        .expect("wasmcron token new");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let secret = text.lines().next().unwrap_or_default().to_owned();
    let tokens = tempfile::tempdir().expect("tempdir");
    let file = tokens.path().join("tokens.toml");
    std::fs::write(&file, &text[text.find("[[tokens]]").unwrap_or_default()..]).expect("tokens");
    let file = file.display().to_string();
    let Some(d) = dash(GREET, &["hello"], &["--tokens", &file]).await else {
        return;
    };
    d.open("/jobs", "jobs").await;
    d.browser.click("button#sign-in").await;
    d.browser.wait_for("dialog#token-dialog[open]").await;
    d.browser.type_text("input#token-input", &secret).await;
    d.browser.click("button#token-submit").await;
    d.browser.wait_gone("dialog#token-dialog[open]").await;
    d.browser
        .wait_js(
            "canWrite to become true",
            "document.body.dataset.canWrite === 'true'",
        )
        .await;
    d.ready("jobs").await;
    let can_admin = d
        .browser
        .exec("return document.body.dataset.canAdmin ?? null", Vec::new())
        .await;
    assert_eq!(can_admin, json!("false"));
    let row = |action: &str| format!(r#"tr[data-job-id="greet"] button[data-action="{action}"]"#);
    assert!(
        d.browser.is_displayed(&row("run")).await,
        "Run is not offered"
    );
    // There, but hidden.
    assert_eq!(d.browser.count(&row("delete")).await, 1);
    assert!(
        !d.browser.is_displayed(&row("delete")).await,
        "Delete is offered to an operate token"
    );
    d.browser.click(&row("pause")).await;
    d.wait_badge("greet", "paused").await;
    assert_eq!(d.api.get("/jobs/greet").await["state"], "paused");
    d.browser.save_screenshot("token-operate-jobs").await;

    // The job's page: resume, run and backfill, no delete.
    d.open("/jobs/greet", "job").await;
    let head = |action: &str| format!(r#".actions button[data-action="{action}"]"#);
    assert!(d.browser.is_displayed(&head("resume")).await);
    assert!(d.browser.is_displayed(&head("backfill")).await);
    assert_eq!(d.browser.count(&head("delete")).await, 1);
    assert!(!d.browser.is_displayed(&head("delete")).await);
    // The plugins page: no upload, no delete.
    d.open("/plugins", "plugins").await;
    assert_eq!(
        d.browser
            .count(r#"section.plugin button[data-action="delete"]"#)
            .await,
        1
    );
    assert_eq!(
        d.browser.count(r#"section[aria-labelledby="up-h"]"#).await,
        1
    );
    assert!(
        !d.browser
            .is_displayed(r#"section.plugin button[data-action="delete"]"#)
            .await
    );
    assert!(
        !d.browser
            .is_displayed(r#"section[aria-labelledby="up-h"]"#)
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_reads_the_page_asks_for_the_token_before_showing_anything() {
    let Some(d) = dash(GREET, &["hello"], &["--token", TOKEN, "--auth-reads"]).await else {
        return;
    };
    d.browser.goto(&format!("{}/#/jobs", d.api.base)).await;
    d.browser.wait_for("dialog#token-dialog[open]").await;
    assert_eq!(d.browser.count("tr[data-job-id]").await, 0, "jobs shown");
    let shown = d
        .browser
        .exec("return document.body.innerText", Vec::new())
        .await;
    assert!(
        !shown.as_str().unwrap_or_default().contains("greet"),
        "a job's id shows before sign-in: {shown}"
    );
    d.browser.save_screenshot("auth-reads-asks").await;

    d.browser.type_text("input#token-input", TOKEN).await;
    d.browser.click("button#token-submit").await;
    d.browser.wait_gone("dialog#token-dialog[open]").await;
    d.ready("jobs").await;
    assert_eq!(d.badge("greet").await, "scheduled");
    assert_eq!(d.can_write().await, "true");
    d.assert_token_not_in_url().await;
    d.browser.save_screenshot("auth-reads-signed-in").await;
}

/// The routes of every page, with the `data-page` each shows; `{run}` is a
/// finished run's id.
const PAGES: &[(&str, &str)] = &[
    ("/", "overview"),
    ("/jobs", "jobs"),
    ("/jobs/greet", "job"),
    ("/runs/{run}", "run"),
    ("/plugins", "plugins"),
    ("/cron", "cron"),
    ("/live", "live"),
];

/// Measures the page against the screen's width (`arguments[0]`, else
/// the viewport's): the layout viewport's and the document's widths, and
/// the outermost elements whose right edge passes it, leaving out those
/// inside a container of the page that scrolls or clips them (a wide table
/// in its own scroller is fine) unless they are positioned out of it.
const WIDTH_CHECK: &str = "
    const root = document.documentElement;
    const limit = arguments[0] ?? root.clientWidth;
    const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
        (typeof e.className === 'string' && e.className.trim()
            ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
    const contained = (e) => {
        // A fixed box escapes every scroller; an absolute one escapes the
        // scrollers below its containing block (its offsetParent), so
        // only a scroller up to and including that one holds it.
        const position = getComputedStyle(e).position;
        if (position === 'fixed') return false;
        const block = position === 'absolute' ? e.offsetParent : null;
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
            if (block && !a.contains(block)) continue;
            if (getComputedStyle(a).overflowX !== 'visible') return true;
        }
        return false;
    };
    const out = [];
    for (const e of document.querySelectorAll('body *')) {
        const right = e.getBoundingClientRect().right;
        if (right > limit + 1 && !out.some((o) => o.el.contains(e)) && !contained(e)) {
            out.push({ el: e, right });
        }
        if (out.length >= 5) break;
    }
    return {
        limit,
        over: window.innerWidth > limit + 1 && arguments[0] != null
            || root.scrollWidth > limit + 1 || out.length > 0,
        innerWidth: window.innerWidth,
        scrollWidth: root.scrollWidth,
        sticking_out: out.map((o) => name(o.el) + ' right=' + Math.round(o.right)),
    };
";

/// Text squeezed into a column a character or two wide (one letter per
/// line): the elements of `<main>` with at least 4 characters of their own
/// text that are under 2.5 em wide and over 4 em tall.
const SQUEEZE_CHECK: &str = "
    const out = [];
    for (const e of document.querySelectorAll('#main *')) {
        const own = [...e.childNodes].filter((n) => n.nodeType === 3)
            .map((n) => n.textContent).join('').trim();
        if (own.length < 4) continue;
        const r = e.getBoundingClientRect();
        const em = parseFloat(getComputedStyle(e).fontSize) || 16;
        if (r.width > 0 && r.width < 2.5 * em && r.height > 4 * em) {
            out.push(e.tagName.toLowerCase() + ' ' + JSON.stringify(own.slice(0, 30)) +
                ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
        }
    }
    return out;
";

/// Loads every page at the current viewport, saving `<prefix>-<page>.png`;
/// fails, after visiting them all, on any console error, on a page wider
/// than the screen (375 px at `phone` width) and on text squeezed into a
/// column too narrow to read.
async fn every_page(d: &Dash, prefix: &str, phone: bool) {
    // A finished run of each kind, so the overview and the run page have
    // something to show.
    let ok = d.api.post("/jobs/greet/run", json!({})).await;
    let ok = ok["run_id"].as_str().expect("a run id").to_owned();
    let bad = d.api.post("/jobs/boom/run", json!({})).await;
    d.api.finished_run(&ok).await;
    d.api
        .finished_run(bad["run_id"].as_str().expect("a run id"))
        .await;
    let mut problems = Vec::new();
    for (route, page) in PAGES {
        let route = route.replace("{run}", &ok);
        d.open(&route, page).await;
        let shot = d.browser.save_screenshot(&format!("{prefix}-{page}")).await;
        // Wider than the screen: a page that scrolls sideways (or, on a
        // phone, that the browser zooms out to fit, widening its layout
        // viewport). Names the outermost elements that stick out.
        let limit = if phone { json!(PHONE.0) } else { Value::Null };
        let size = d.browser.exec(WIDTH_CHECK, vec![limit]).await;
        if size["over"].as_bool() != Some(false) {
            problems.push(format!(
                "#{route} is wider than the {} px screen: {}; see {}",
                size["limit"],
                size,
                shot.display()
            ));
        }
        let squeezed = d.browser.exec(SQUEEZE_CHECK, Vec::new()).await;
        if squeezed.as_array().is_some_and(|l| !l.is_empty()) {
            problems.push(format!(
                "#{route} shows text squeezed to a letter per line: {squeezed}; see {}",
                shot.display()
            ));
        }
        for error in d.browser.console_errors().await {
            problems.push(format!("#{route}: console error: {error}"));
        }
        d.browser.forget_console().await;
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) at {prefix} width:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_cleanly_at_desktop_width() {
    let jobs = format!("{GREET}{BOOM}");
    let Some(d) = dash(&jobs, &["hello", "exit"], &[]).await else {
        return;
    };
    every_page(&d, "desktop", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_cleanly_at_phone_width() {
    let jobs = format!("{GREET}{BOOM}");
    let Some(d) = dash(&jobs, &["hello", "exit"], &[]).await else {
        return;
    };
    d.browser.set_viewport(PHONE.0, PHONE.1, true).await;
    every_page(&d, "phone", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_dashboard_and_coming_back_does_not_leave_its_event_streams_open() {
    let Some(d) = dash(GREET, &["hello"], &[]).await else {
        return;
    };
    // A user follows a link elsewhere and later opens the dashboard again
    // (a bookmark, a typed address), several times. Chrome keeps each left
    // page in its back/forward cache, alive: unless the page closes its
    // `/events` stream when hidden (`pagehide`), every visit holds one of
    // the 6 connections Chrome allows a plain-HTTP host, and the 6th visit
    // waits forever for its data.
    for visit in 1..=8 {
        d.browser.goto("about:blank").await;
        d.browser.goto(&format!("{}/#/jobs", d.api.base)).await;
        d.browser
            .wait_until(
                &format!("visit {visit} of the jobs page to load (each earlier visit was left for another page)"),
                || async {
                    d.browser
                        .count(r#"main#main[data-page="jobs"][data-ready="true"] tr[data-job-id="greet"]"#)
                        .await
                        == 1
                },
            )
            .await;
    }
    d.browser.assert_no_console_errors().await;
}

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
