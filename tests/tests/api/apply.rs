//! `PUT /jobs` and `wasmcron jobs apply`: many jobs in one request, as a
//! jobs file is applied at start (issue 12's scale goal: jobs added in
//! bulk through the API).

use super::{Api, BIN, assert_error, assert_message_has, cli};
use serde_json::{Value, json};
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup};
use wasmcron_tests::stores::TestStore;

fn spec(id: &str, every: &str) -> Value {
    json!({"id": id, "plugin": "hello", "trigger": {"type": "interval", "every": every}})
}

async fn put(api: &Api, jobs: Vec<Value>) -> (u16, Value) {
    api.send(reqwest::Method::PUT, "/jobs", Some(json!({ "jobs": jobs })))
        .await
}

async fn many_jobs_are_applied_in_one_request_and_a_bad_one_changes_nothing(db: TestStore) {
    let dir = setup("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;

    let jobs: Vec<Value> = (0..300)
        .map(|i| spec(&format!("bulk-{i:03}"), "1h"))
        .collect();
    let (status, done) = put(&api, jobs.clone()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["written"].as_u64(), done["unchanged"].as_u64()),
        (Some(300), Some(0))
    );
    assert_eq!(done["notes"], json!([]));
    let (_, page) = api.get("/jobs?limit=1000").await;
    assert_eq!(page["total"], 300, "{page}");
    assert!(
        page["jobs"]
            .as_array()
            .is_some_and(|l| l.iter().all(|j| j["next_run_time"].is_string()))
    );
    assert_eq!(db.count("SELECT count(*) FROM jobs"), 300);

    // The same list again writes nothing.
    let (status, done) = put(&api, jobs.clone()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["written"].as_u64(), done["unchanged"].as_u64()),
        (Some(0), Some(300))
    );

    // One changed spec and one invalid: 422 naming the invalid one by its
    // position and field, and the changed one is not applied either.
    let mut next = jobs.clone();
    next[5] = spec("bulk-005", "2h");
    next[7]["trigger"] = json!({"type": "cron", "expr": "61 * * * *"});
    let resp = put(&api, next).await;
    assert_error(&resp, 422, "validation", Some("jobs[7].trigger.expr"));
    assert_message_has(&resp, "bulk-007");
    // The unchanged specs before it were not written: not "applied".
    assert_message_has(&resp, "nothing was applied");
    let (_, job) = api.get("/jobs/bulk-005").await;
    assert_eq!(job["spec"]["trigger"]["every"], "1h", "{job}");
    // A plugin the host has never seen, and a malformed spec, likewise.
    let resp = put(
        &api,
        vec![
            spec("x", "1h"),
            json!({"id": "y", "plugin": "nope", "trigger": {"type": "interval", "every": "1h"}}),
        ],
    )
    .await;
    assert_error(&resp, 422, "validation", Some("jobs[1].plugin"));
    let resp = put(&api, vec![json!({"id": "z", "plugin": "hello"})]).await;
    assert_error(&resp, 422, "validation", Some("jobs[0].trigger"));
    assert_eq!(api.get("/jobs/x").await.0, 404);
    // An id twice in one list.
    let resp = put(
        &api,
        vec![spec("dup", "1h"), spec("other", "1h"), spec("dup", "2h")],
    )
    .await;
    assert_error(&resp, 422, "validation", Some("jobs[2].id"));
    assert_eq!(api.get("/jobs/dup").await.0, 404);
    // A chain to a job that is neither listed nor there, and a cycle:
    // refused by position and field before anything is written (a bad
    // chain was found only while writing, and the answer said the spec
    // before it was applied when nothing was).
    let mut chained = spec("chained", "1h");
    chained["on_failure"] = json!(["before-chain", "no-such-job"]);
    let resp = put(&api, vec![spec("before-chain", "1h"), chained]).await;
    assert_error(&resp, 422, "validation", Some("jobs[1].on_failure[1]"));
    assert_message_has(&resp, "no-such-job");
    assert_eq!(api.get("/jobs/before-chain").await.0, 404);
    let (mut a, mut b) = (spec("cycle-a", "1h"), spec("cycle-b", "1h"));
    a["on_success"] = json!(["cycle-b"]);
    b["on_success"] = json!(["cycle-a"]);
    let resp = put(&api, vec![a, b]).await;
    assert_error(&resp, 422, "validation", Some("jobs[0].on_success[0]"));
    assert_eq!(api.get("/jobs/cycle-a").await.0, 404);
    // Too many in one request.
    let too_many: Vec<Value> = (0..10_001).map(|i| json!({"id": format!("t{i}"), "plugin": "hello", "trigger": {"type": "interval", "every": "1h"}})).collect();
    let resp = put(&api, too_many).await;
    assert_error(&resp, 422, "validation", Some("jobs"));
    assert_eq!(db.count("SELECT count(*) FROM jobs"), 300);

    // The CLI: a jobs file of 12,000 jobs (more than one request's worth,
    // requests in flight together) in TOML, then the same file again. The
    // last job chains to the first, which an earlier request adds; the
    // first chains to the one before the last, which the CLI sends first.
    let mut toml = String::from("version = 1\n");
    for i in 0..12_000 {
        toml.push_str(&format!(
            "\n[[jobs]]\nid = \"file-{i:05}\"\nplugin = \"hello\"\ntrigger = {{ type = \"interval\", every = \"1h\" }}\n"
        ));
        if i == 0 {
            toml.push_str("on_failure = [\"file-11998\"]\n");
        }
    }
    toml.push_str("on_success = [\"file-00000\"]\n");
    let file = dir.path().join("many.toml");
    std::fs::write(&file, toml).expect("jobs file");
    let file = file.to_string_lossy().into_owned();
    let url = host.api_url();
    let (ok, out, err) = cli(&["jobs", "apply", &file], &url);
    assert!(ok, "{err}");
    assert!(
        out.contains("12000 jobs: 12000 written, 0 unchanged"),
        "{out}"
    );
    let (_, job) = api.get("/jobs/file-00000").await;
    assert_eq!(job["spec"]["on_failure"], json!(["file-11998"]), "{job}");
    let (ok, out, err) = cli(&["jobs", "apply", &file, "--json"], &url);
    assert!(ok, "{err}");
    let done: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        (done["written"].as_u64(), done["unchanged"].as_u64()),
        (Some(0), Some(12_000))
    );
    assert_eq!(db.count("SELECT count(*) FROM jobs"), 12_300);
    // A bad spec in a later request: the requests before it stay applied,
    // and the message says which of the file's jobs failed and how the
    // API's `jobs[i]` maps to the file.
    let mut bad = String::from("version = 1\n");
    for i in 0..12_000 {
        let every = if i == 11_999 { "soon" } else { "1h" };
        bad.push_str(&format!(
            "\n[[jobs]]\nid = \"bad-{i:05}\"\nplugin = \"hello\"\ntrigger = {{ type = \"interval\", every = \"{every}\" }}\n"
        ));
    }
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, bad).expect("jobs file");
    let (ok, _, err) = cli(&["jobs", "apply", &bad_file.to_string_lossy()], &url);
    assert!(!ok);
    let applied = db.count("SELECT count(*) FROM jobs WHERE id LIKE 'bad-%'");
    assert!((1..12_000).contains(&applied), "{applied}");
    assert!(
        err.contains(&format!(
            "applying the file's jobs {}-12000 of 12000 ({applied} applied before these;",
            applied + 1
        )) && err.contains(&format!(
            "`jobs[{}]` below is the file's job 12000 ('bad-11999')",
            11_999 - applied
        )) && err.contains(&format!("jobs[{}].trigger", 11_999 - applied)),
        "{err}"
    );
    // A cycle longer than one request is named as a cycle, by the file's
    // positions, before anything is sent.
    let ring: Vec<Value> = (0..2_100)
        .map(|i| {
            let mut s = spec(&format!("ring-{i:04}"), "1h");
            s["on_success"] = json!([format!("ring-{:04}", (i + 1) % 2_100)]);
            s
        })
        .collect();
    let ring_file = dir.path().join("ring.json");
    std::fs::write(&ring_file, json!({ "jobs": ring }).to_string()).expect("jobs file");
    let before = db.count("SELECT count(*) FROM jobs");
    let (ok, _, err) = cli(&["jobs", "apply", &ring_file.to_string_lossy()], &url);
    assert!(!ok);
    assert!(
        err.contains("chain in a cycle (2100 jobs): 'ring-0000' (job 1) → 'ring-0001' (job 2)"),
        "{err}"
    );
    assert_eq!(db.count("SELECT count(*) FROM jobs"), before);
    // A file without a jobs list says what it should hold.
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "version = 1\n").expect("file");
    let (ok, _, err) = cli(&["jobs", "apply", &empty.to_string_lossy()], &url);
    assert!(!ok);
    assert!(
        err.contains("no `jobs` list") && err.contains("[[jobs]]"),
        "{err}"
    );
    // A job whose plugin was removed waits for it; applying its unchanged
    // spec again is not refused for the missing plugin (a new job of that
    // plugin is).
    std::fs::remove_file(dir.path().join("plugins").join("hello.wasm")).expect("remove hello");
    api.until("/jobs/bulk-000", |j| j["state"] == "waiting-for-plugin")
        .await;
    let (status, done) = put(&api, jobs[..3].to_vec()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["unchanged"].as_u64(), Some(3), "{done}");
    let resp = put(&api, vec![spec("new-one", "1h")]).await;
    assert_error(&resp, 422, "validation", Some("jobs[0].plugin"));
    host.signal("-TERM");
    assert!(host.wait().success());
}
backends!(many_jobs_are_applied_in_one_request_and_a_bad_one_changes_nothing: sqlite, postgres);

/// A `PUT /jobs` received in full is applied whole, though it outlasts the
/// request deadline or its client goes away part way: its jobs are never
/// left written to the store but not scheduled (until the next restart),
/// as they were when the deadline or hyper's cancelling of a closed
/// connection's request dropped the handler between the two.
async fn a_received_list_is_applied_whole_past_the_deadline_or_a_disconnect(db: TestStore) {
    use std::io::Write as _;
    const N: usize = 10_000;
    let dir = setup("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(
        BIN,
        dir.path(),
        &db.db_arg(),
        &["--api-request-timeout", "500ms"],
    );
    let api = Api::new(&host);
    api.plugins_ready().await;
    let list = |prefix: &str| -> Vec<Value> {
        (0..N)
            .map(|i| spec(&format!("{prefix}-{i:05}"), "1h"))
            .collect()
    };

    // Past the deadline: answered, not 408, and every job scheduled.
    let started = std::time::Instant::now();
    let (status, done) = put(&api, list("late")).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["written"].as_u64(), Some(N as u64), "{done}");
    eprintln!("{N} jobs applied in {took:?}");
    // Not a timing assertion: the case under test needs the request to
    // outlast the deadline (10,000 jobs written to PostgreSQL take
    // seconds in a debug build).
    assert!(
        took > std::time::Duration::from_millis(500),
        "the list was applied within the 500 ms deadline ({took:?}); \
         make it longer for this test to mean anything"
    );

    // A client that sends its list and goes away before the answer.
    let body = serde_json::to_vec(&json!({ "jobs": list("gone") })).expect("encode");
    let url = host.api_url();
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "PUT /jobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    )
    .expect("head");
    stream.write_all(&body).expect("body");
    stream.shutdown(std::net::Shutdown::Both).expect("shutdown");
    drop(stream);

    // Every job of both lists is scheduled here and stored, and stays so.
    let total = 2 * N as i64;
    api.until("/jobs?limit=1", |page| page["total"] == total)
        .await;
    assert_eq!(db.count("SELECT count(*) FROM jobs"), total);
    for id in ["late-00000", "late-09999", "gone-00000", "gone-09999"] {
        let (status, job) = api.get(&format!("/jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        assert!(job["next_run_time"].is_string(), "{job}");
    }
    // A body that never arrives in full is still refused at the deadline.
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "PUT /jobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: 100\r\n\r\n{{\"jobs\": ["
    )
    .expect("head");
    // A safety net, not a timing assertion.
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(60)));
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    let (_, page) = api.get("/jobs?limit=1").await;
    assert_eq!(page["total"], total, "{page}");
    host.signal("-TERM");
    assert!(host.wait().success());
}
// PostgreSQL: its writes are slow enough for the list to outlast the
// deadline by far, while the body still arrives well within it.
backends!(a_received_list_is_applied_whole_past_the_deadline_or_a_disconnect: postgres);
