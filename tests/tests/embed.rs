//! wasmcron embedded in a user's service: `host/examples/embed.rs` built
//! in-process and driven over real HTTP, and the handle on its own.

// The example, as a user would copy it; its `main` is the example binary's.
#[expect(dead_code, reason = "the example's main is not called by the tests")]
#[path = "../../host/examples/embed.rs"]
mod example;

use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wasmcron::embed::{Builder, Error, Wasmcron, every, job_spec};
use wasmcron::event::Event;
use wasmcron_tests::plugins;

/// A host with the real `hello` plugin given as bytes (folder plugins
/// would be compiled by re-running this test binary, which is not a
/// compiler), keeping its jobs in `db`.
fn builder(db: &Path) -> Builder {
    let hello = match std::fs::read(plugins::HELLO) {
        Ok(bytes) => bytes,
        Err(e) => panic!("reading {}: {e}", plugins::HELLO),
    };
    Builder::new()
        .sqlite(db)
        .plugin("hello", hello)
        .compile_cache(Some(wasmcron_tests::test_cache_dir()))
        .workers(4)
        .shutdown_grace(Duration::from_secs(10))
}

async fn start(builder: Builder) -> Wasmcron {
    match builder.start().await {
        Ok(w) => w,
        Err(e) => panic!("the embedded host did not start: {e:?}"),
    }
}

/// The example's app served on a free loopback port.
struct Service {
    base: String,
    http: reqwest::Client,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    wasmcron: Wasmcron,
}

impl Service {
    async fn serve(wasmcron: Wasmcron) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        let stop = CancellationToken::new();
        let cancelled = stop.clone();
        let stopping = wasmcron.clone();
        let app = example::app(wasmcron.clone());
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    cancelled.cancelled().await;
                    stopping.begin_stop();
                })
                .await;
            if let Err(e) = served {
                panic!("the service failed: {e}");
            }
        });
        Self {
            base,
            http: reqwest::Client::new(),
            stop,
            server,
            wasmcron,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let response = req.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn post_text(&self, path: &str, body: &str) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// What a ctrl-c does in the example: the server drains, then the
    /// host stops.
    async fn shut_down(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.server)
            .await
            .expect("the server drains within 15 s")
            .expect("the server task ends cleanly");
        tokio::time::timeout(Duration::from_secs(20), self.wasmcron.stop())
            .await
            .expect("the host stops within its grace");
    }
}

/// Polls `path` until `check` holds, for up to 30 s.
async fn until(service: &Service, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = service.get(path).await;
        if status == 200 && check(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never matched; last answer {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn succeeded(run: &Value) -> bool {
    run["status"] == "finished" && run["outcome"]["kind"] == "succeeded"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_schedule_runs_the_hello_plugin_and_its_runs_show_under_the_nested_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = Service::serve(start(builder(&dir.path().join("jobs.db"))).await).await;

    let (status, body) = service
        .post("/schedule", json!({"task_name": "greet_1", "interval": 1}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["job_id"], "greet_1", "{body}");

    // The interval's first fire is a second after the add: the real
    // plugin runs, with the task's name as its argument.
    let page = until(&service, "/wasmcron/jobs/greet_1/runs", |page| {
        page["runs"]
            .as_array()
            .is_some_and(|runs| runs.iter().any(succeeded))
    })
    .await;
    let runs = page["runs"].as_array().cloned().unwrap_or_default();
    let run = runs
        .iter()
        .find(|r| succeeded(r))
        .cloned()
        .unwrap_or_default();
    let run_id = run["run_id"].as_str().unwrap_or_default();
    let (status, full) = service.get(&format!("/wasmcron/runs/{run_id}")).await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["outcome"]["output"], "Hello, greet_1!", "{full}");
    assert_eq!(full["job_id"], "greet_1", "{full}");

    // The service's own listing, and wasmcron's, agree.
    let (status, listed) = service.get("/schedule").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["tasks"][0]["task_name"], "greet_1", "{listed}");
    assert_eq!(
        listed["tasks"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let (status, job) = service.get("/wasmcron/jobs/greet_1").await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["spec"]["args"], json!({"name": "greet_1"}), "{job}");

    // The same name again is refused, and the first stays as it was.
    let (status, body) = service
        .post("/schedule", json!({"task_name": "greet_1", "interval": 60}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        service.wasmcron.job("greet_1").map(|j| j.schedule).ok(),
        Some("every 1s".to_owned())
    );

    // Delete: gone from both, and a second delete is a 404.
    let (status, body) = service.delete("/schedule/greet_1").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = service.get("/wasmcron/jobs/greet_1").await;
    assert_eq!(status, 404, "{body}");
    let (status, listed) = service.get("/schedule").await;
    assert_eq!((status, listed), (200, json!({"tasks": []})));
    let (status, body) = service.delete("/schedule/greet_1").await;
    assert_eq!(status, 404, "{body}");
    service.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_schedule_request_gets_the_services_own_422_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = Service::serve(start(builder(&dir.path().join("jobs.db"))).await).await;
    let cases = [
        (json!({"task_name": "", "interval": 5}), "task_name"),
        (
            json!({"task_name": "a".repeat(65), "interval": 5}),
            "task_name",
        ),
        (
            json!({"task_name": "no spaces", "interval": 5}),
            "task_name",
        ),
        (json!({"task_name": 7, "interval": 5}), "task_name"),
        (json!({"interval": 5}), "task_name"),
        (json!({"task_name": "ok", "interval": 0}), "interval"),
        (json!({"task_name": "ok", "interval": 86_401}), "interval"),
        (json!({"task_name": "ok", "interval": -1}), "interval"),
        (json!({"task_name": "ok", "interval": 1.5}), "interval"),
        (json!({"task_name": "ok", "interval": "10"}), "interval"),
        (json!({"task_name": "ok"}), "interval"),
        (
            json!({"task_name": "ok", "interval": 5, "cron": "* * * * *"}),
            "cron",
        ),
        (json!(["task_name", "ok"]), "body"),
    ];
    for (body, field) in cases {
        let (status, answer) = service.post("/schedule", body.clone()).await;
        assert_eq!(status, 422, "{body} → {answer}");
        // The example's shape (FastAPI's), not wasmcron's `{"error": …}`.
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["body", field]),
            "{body} → {answer}"
        );
        assert!(
            answer["detail"][0]["msg"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body} → {answer}"
        );
    }
    let (status, answer) = service.post_text("/schedule", "{not json").await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["detail"][0]["loc"],
        json!(["body", "body"]),
        "{answer}"
    );
    // Nothing was scheduled by any of them; the edges of the ranges are.
    assert!(service.wasmcron.jobs().is_empty());
    for (name, interval) in [("a", 1), (&*"b".repeat(64), 86_400), ("A-z_9", 30)] {
        let (status, body) = service
            .post(
                "/schedule",
                json!({"task_name": name, "interval": interval}),
            )
            .await;
        assert_eq!(status, 201, "{name} {interval}: {body}");
    }
    service.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_leaves_the_store_to_the_next_start_with_its_jobs_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("jobs.db");
    let service = Service::serve(start(builder(&db)).await).await;
    let (status, body) = service
        .post(
            "/schedule",
            json!({"task_name": "nightly", "interval": 86_400}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // A run started through the nested API, the stop asked for once its
    // guest runs: the run gets the grace and its end is recorded before
    // the store closes (never left `running`).
    let mut events = service.wasmcron.subscribe();
    let (status, run) = service.post("/wasmcron/jobs/nightly/run", json!({})).await;
    assert_eq!(status, 202, "{run}");
    let run_id = run["run_id"].as_str().unwrap_or_default().to_owned();
    next_event(&mut events, |e| match e {
        Event::RunStarted(r) if r.run_id == run_id => Some(()),
        _ => None,
    })
    .await;
    service.shut_down().await;

    // After the stop the file's lock is gone: the same file opens.
    let again = start(builder(&db)).await;
    let job = again.job("nightly").expect("the job survived the restart");
    assert_eq!(job.schedule, "every 86400s", "{job:?}");
    assert_eq!(job.spec.args, json!({"name": "nightly"}));
    let record = again.run(&run_id).await.expect("reading the run");
    let record = record.expect("the run survived the restart");
    assert_eq!(
        record.status,
        wasmcron::store::RunStatus::Finished,
        "{record:?}"
    );
    assert!(
        matches!(
            record.outcome,
            Some(wasmcron::runtime::Outcome::Succeeded { ref output }) if output == "Hello, nightly!"
        ),
        "{record:?}"
    );
    let service = Service::serve(again).await;
    let (status, listed) = service.get("/schedule").await;
    assert_eq!(status, 200);
    assert_eq!(listed["tasks"][0]["task_name"], "nightly", "{listed}");
    service.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_on_the_same_sqlite_file_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("jobs.db");
    let first = start(builder(&db)).await;
    match builder(&db).start().await {
        Err(Error::Start(e)) => assert!(e.to_string().contains("another wasmcron host"), "{e}"),
        other => panic!("a second host on the file started: {other:?}"),
    }
    first.stop().await;
    start(builder(&db)).await.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_says_what_failed_and_leaves_the_file_to_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("jobs.db");
    match builder(&db)
        .plugin("broken", b"not wasm".to_vec())
        .start()
        .await
    {
        Err(Error::Start(wasmcron::embed::StartError::Plugin { name, .. })) => {
            assert_eq!(name, "broken");
        }
        other => panic!("a plugin that is not wasm was taken: {other:?}"),
    }
    match builder(&db).workers(0).start().await {
        Err(Error::Option { option, .. }) => assert_eq!(option, "workers"),
        other => panic!("zero workers were taken: {other:?}"),
    }
    // The failed start let go of the file (its lock and its store).
    start(builder(&db)).await.stop().await;
}

/// The next event matching `pick`, within 20 s.
async fn next_event<T>(
    events: &mut wasmcron::event::EventReceiver,
    pick: impl Fn(&Event) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("the event stream ended: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the event within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handle_adds_pauses_resumes_runs_patches_and_removes_a_job_with_events() {
    let hello = std::fs::read(plugins::HELLO).expect("the built hello plugin");
    let wasmcron = start(
        Builder::new()
            .in_memory()
            .plugin("hello", hello)
            .compile_cache(Some(wasmcron_tests::test_cache_dir())),
    )
    .await;
    let mut events = wasmcron.subscribe();
    let mut spec = job_spec("greet", "hello", every(Duration::from_secs(3600)));
    spec.args = json!({"name": "handle"});

    let added = wasmcron.add(spec.clone()).await.expect("added");
    assert!(added.next_run_time.is_some(), "{added:?}");
    next_event(&mut events, |e| match e {
        Event::JobAdded(j) if j.job_id == "greet" => Some(()),
        _ => None,
    })
    .await;
    assert!(matches!(
        wasmcron.add(spec.clone()).await,
        Err(Error::Duplicate(id)) if id == "greet"
    ));

    let paused = wasmcron.pause("greet").await.expect("paused");
    assert!(paused.paused, "{paused:?}");
    next_event(&mut events, |e| match e {
        Event::JobPaused(j) if j.job_id == "greet" => Some(()),
        _ => None,
    })
    .await;
    assert!(wasmcron.job("greet").expect("there").paused);
    let resumed = wasmcron.resume("greet").await.expect("resumed");
    assert!(!resumed.paused, "{resumed:?}");
    next_event(&mut events, |e| match e {
        Event::JobResumed(j) if j.job_id == "greet" => Some(()),
        _ => None,
    })
    .await;

    // A run now, outside the hourly schedule: the real plugin runs.
    let run = wasmcron.run_now("greet").await.expect("a run started");
    let run_id = run.run_id.clone();
    let ended = next_event(&mut events, |e| match e {
        Event::RunSucceeded(r) if r.run_id == run_id => Some(r.clone()),
        Event::RunFailed(r) if r.run_id == run_id => panic!("the run failed: {r:?}"),
        _ => None,
    })
    .await;
    assert_eq!(ended.job_id, "greet");
    let runs = wasmcron.runs("greet", 10).await.expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        matches!(
            &runs[0].outcome,
            Some(wasmcron::runtime::Outcome::Succeeded { output }) if output == "Hello, handle!"
        ),
        "{runs:?}"
    );

    // A merge patch changes only what it names; a bad one names its field.
    let patched = wasmcron
        .patch(
            "greet",
            &json!({"trigger": {"type": "interval", "every": "5m"}}),
        )
        .await
        .expect("patched");
    assert_eq!(patched.schedule, "every 5m", "{patched:?}");
    assert_eq!(patched.spec.args, json!({"name": "handle"}));
    next_event(&mut events, |e| match e {
        Event::JobModified(j) if j.job_id == "greet" => Some(()),
        _ => None,
    })
    .await;
    match wasmcron
        .patch("greet", &json!({"trigger": {"every": "soon"}}))
        .await
    {
        Err(Error::Invalid { field, .. }) => assert!(field.starts_with("trigger"), "{field}"),
        other => panic!("a bad patch was taken: {other:?}"),
    }
    match wasmcron
        .add(job_spec("typo", "helo", every(Duration::from_secs(60))))
        .await
    {
        Err(Error::Invalid { field, message }) => {
            assert_eq!(field, "plugin");
            assert!(message.contains("hello"), "{message}");
        }
        other => panic!("a job of an unknown plugin was taken: {other:?}"),
    }
    // hello declares its args' schema: a patch that breaks it is refused
    // naming the field, and the job keeps its args.
    match wasmcron.patch("greet", &json!({"args": {"name": 5}})).await {
        Err(Error::Invalid { field, message }) => {
            assert_eq!(field, "args.name", "{message}");
            assert!(message.contains("plugin 'hello'"), "{message}");
        }
        other => panic!("args breaking hello's schema were taken: {other:?}"),
    }
    assert_eq!(
        wasmcron.job("greet").expect("still there").spec.args,
        json!({"name": "handle"})
    );

    wasmcron.remove("greet").await.expect("removed");
    next_event(&mut events, |e| match e {
        Event::JobRemoved(j) if j.job_id == "greet" => Some(()),
        _ => None,
    })
    .await;
    assert!(matches!(wasmcron.job("greet"), Err(Error::JobNotFound(_))));
    assert!(matches!(
        wasmcron.remove("greet").await,
        Err(Error::JobNotFound(_))
    ));

    wasmcron.stop().await;
    assert!(matches!(wasmcron.add(spec).await, Err(Error::Stopped)));
    // A second stop (another clone's, say) returns at once.
    tokio::time::timeout(Duration::from_secs(1), wasmcron.stop())
        .await
        .expect("a second stop returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_its_tasks_on_postgres_and_finds_them_after_a_restart() {
    let db = wasmcron_tests::pg::TestDb::create();
    let hello = std::fs::read(plugins::HELLO).expect("the built hello plugin");
    let on_postgres = || {
        Builder::new()
            .postgres(db.url())
            .plugin("hello", hello.clone())
            .compile_cache(Some(wasmcron_tests::test_cache_dir()))
            .workers(4)
            .host_name("embedded-1")
    };
    let service = Service::serve(start(on_postgres()).await).await;
    let (status, body) = service
        .post("/schedule", json!({"task_name": "pg_task", "interval": 1}))
        .await;
    assert_eq!(status, 201, "{body}");
    // Fired by this host as the lease's leader, claimed and run by it.
    until(&service, "/wasmcron/jobs/pg_task/runs", |page| {
        page["runs"]
            .as_array()
            .is_some_and(|runs| runs.iter().any(succeeded))
    })
    .await;
    let (status, cluster) = service.get("/wasmcron/cluster").await;
    assert_eq!(status, 200, "{cluster}");
    assert_eq!(cluster["backend"], "postgres", "{cluster}");
    service.shut_down().await;

    let again = start(on_postgres()).await;
    let job = again.job("pg_task").expect("the job survived the restart");
    assert_eq!(job.spec.args, json!({"name": "pg_task"}));
    let runs = again.runs("pg_task", 100).await.expect("its runs");
    assert!(
        runs.iter()
            .all(|r| r.status != wasmcron::store::RunStatus::Running),
        "a run was left running: {runs:?}"
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_api_token_the_nested_api_refuses_changes_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "an-embedding-secret-of-32-bytes!";
    let service =
        Service::serve(start(builder(&dir.path().join("jobs.db")).api_token(secret)).await).await;
    // The service's own route is the service's business: no token.
    let (status, body) = service
        .post(
            "/schedule",
            json!({"task_name": "guarded", "interval": 3600}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // wasmcron's routes under /wasmcron: reads open, changes need it.
    let (status, body) = service.get("/wasmcron/jobs/guarded").await;
    assert_eq!(status, 200, "{body}");
    let pause = || {
        service
            .http
            .post(format!("{}/wasmcron/jobs/guarded/pause", service.base))
    };
    let (status, body) = service.send(pause()).await;
    assert_eq!(status, 401, "{body}");
    assert!(!service.wasmcron.job("guarded").expect("there").paused);
    let (status, body) = service.send(pause().bearer_auth(secret)).await;
    assert_eq!(status, 200, "{body}");
    assert!(service.wasmcron.job("guarded").expect("there").paused);
    // A token too short to be worth having is refused at start.
    match builder(&dir.path().join("other.db"))
        .api_token("short")
        .start()
        .await
    {
        Err(Error::Option { option, .. }) => assert_eq!(option, "api_token"),
        other => panic!("a short token was taken: {other:?}"),
    }
    service.shut_down().await;
}
