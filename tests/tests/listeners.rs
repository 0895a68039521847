//! Per-job error listeners: a listener plugin and webhooks, one of which
//! hangs.

use chrono::Duration;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wasmcron::event::Event;
use wasmcron::scheduler::{Clock, ManualClock};
use wasmcron::store::{JobStore, MemoryJobStore};
use wasmcron_tests::sched::{spec, start, t0, wait_for};

/// Polls the listener's kv namespace until `key` appears.
async fn listener_kv(store: &Arc<dyn JobStore>, key: &str) -> serde_json::Value {
    for _ in 0..3000 {
        if let Ok(Some(bytes)) = store.kv().get("listener/alert", key) {
            return serde_json::from_slice(&bytes).expect("json");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("listener never wrote {key}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_plugin_hears_about_panic_and_spin_failures() {
    let store: Arc<dyn JobStore> = Arc::new(MemoryJobStore::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(store.clone(), clock.clone()).await;
    s.add_job(
        spec(r#"{"id":"boom","plugin":"panic","trigger":{"type":"interval","every":"1m"},"listeners":[{"plugin":"alert"}]}"#),
        false,
    )
    .await
    .unwrap();
    s.add_job(
        spec(r#"{"id":"spinner","plugin":"spin","limits":{"fuel":20000000},"trigger":{"type":"interval","every":"1m"},"listeners":[{"plugin":"alert"}]}"#),
        false,
    )
    .await
    .unwrap();
    clock.advance(Duration::minutes(1));
    let boom = listener_kv(&store, "last/boom").await;
    assert_eq!(boom["outcome"], "trapped");
    assert!(
        boom["message"]
            .as_str()
            .unwrap_or_default()
            .contains("exploded on purpose"),
        "{boom}"
    );
    let spin = listener_kv(&store, "last/spinner").await;
    assert_eq!(spin["outcome"], "out-of-fuel");
    // The listener's kv is its own, not the failing jobs'.
    assert_eq!(store.kv().get("boom", "last/boom").unwrap(), None);
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

/// A tiny HTTP server: answers 200 to every request and forwards each
/// body, or, when `hang`, reads the request and never answers.
async fn http_server(hang: bool) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            if hang {
                                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                                return;
                            }
                            let _ = tx.send(body.to_owned());
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_get_the_event_and_a_hanging_one_blocks_nothing() {
    let (ok_url, mut received) = http_server(false).await;
    let (hang_url, _never) = http_server(true).await;
    let store: Arc<dyn JobStore> = Arc::new(MemoryJobStore::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(&format!(
            r#"{{"id":"boom","plugin":"panic","trigger":{{"type":"interval","every":"1m"}},
                "listeners":[{{"webhook":"{hang_url}"}},{{"webhook":"{ok_url}"}},{{"plugin":"alert"}}]}}"#
        )),
        false,
    )
    .await
    .unwrap();
    s.add_job(
        spec(r#"{"id":"steady","plugin":"hello","trigger":{"type":"interval","every":"1m"}}"#),
        false,
    )
    .await
    .unwrap();
    clock.advance(Duration::minutes(1));
    let body = tokio::time::timeout(std::time::Duration::from_secs(60), received.recv())
        .await
        .expect("webhook called")
        .expect("body");
    let event: serde_json::Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(event["event"], "run-failed");
    assert_eq!(event["job_id"], "boom");
    assert_eq!(event["outcome"], "trapped");
    listener_kv(&store, "last/boom").await;
    // While the hanging webhook is still being waited on, the scheduler
    // keeps firing.
    clock.advance(Duration::minutes(1));
    wait_for(&mut rx, |e| {
        matches!(e, Event::RunSucceeded(r) if r.job_id == "steady" && r.scheduled_at == t0() + Duration::minutes(2))
    })
    .await;
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

/// The next webhook body within `secs`, as JSON, or `None`.
async fn next_body(
    rx: &mut mpsc::UnboundedReceiver<String>,
    secs: u64,
) -> Option<serde_json::Value> {
    let body = tokio::time::timeout(std::time::Duration::from_secs(secs), rx.recv())
        .await
        .ok()??;
    Some(serde_json::from_str(&body).expect("json body"))
}

/// Advances to the next minute's fire and waits for its run to end.
async fn fire(
    clock: &ManualClock,
    rx: &mut wasmcron::event::EventReceiver,
    job: &str,
    n: i64,
) -> Event {
    clock.advance(Duration::minutes(1));
    let at = t0() + Duration::minutes(n);
    wait_for(rx, |e| {
        matches!(e, Event::RunFailed(r) | Event::RunSucceeded(r) if r.job_id == job && r.scheduled_at == at)
    })
    .await
}

// Issue 13, items 5 and 10: `hello` fails when given an argument it does
// not know, so changing the args (schedule kept) makes it fail or not.
#[tokio::test(flavor = "multi_thread")]
async fn pause_after_failures_and_listener_filters() {
    let (paused_url, mut paused_rx) = http_server(false).await;
    let (recovered_url, mut recovered_rx) = http_server(false).await;
    let (after_url, mut after_rx) = http_server(false).await;
    let (ok_url, mut ok_rx) = http_server(false).await;
    let store: Arc<dyn JobStore> = Arc::new(MemoryJobStore::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    let job = |args: &str| {
        spec(&format!(
            r#"{{"id":"a","plugin":"hello","trigger":{{"type":"interval","every":"1m"}},"args":{args},
                "pause_after_failures":3,
                "listeners":[{{"webhook":"{paused_url}","on":["paused"]}},
                             {{"webhook":"{recovered_url}","on":["recovered"]}},
                             {{"webhook":"{after_url}","after_failures":2}},
                             {{"webhook":"{ok_url}","on":["succeeded"]}}]}}"#
        ))
    };
    let failing = job(r#"{"fail":true}"#);
    s.add_job(failing.clone(), false).await.unwrap();
    // Never paused without the field, however often it fails.
    s.add_job(
        spec(r#"{"id":"b","plugin":"hello","args":{"fail":1},"trigger":{"type":"interval","every":"1m"}}"#),
        false,
    )
    .await
    .unwrap();

    // Two failures, then a success: the 2nd is heard by after_failures = 2,
    // the 1st is not; the success is a recovery after 2.
    fire(&clock, &mut rx, "a", 1).await;
    assert!(
        next_body(&mut after_rx, 2).await.is_none(),
        "the 1st failure is not heard"
    );
    let Event::RunFailed(second) = fire(&clock, &mut rx, "a", 2).await else {
        panic!("run 2 failed")
    };
    assert_eq!(second.failures_in_a_row, Some(2));
    let heard = next_body(&mut after_rx, 30)
        .await
        .expect("the 2nd failure is heard");
    assert_eq!(heard["on"], "failed");
    assert_eq!(heard["run_id"], second.run_id.as_str());
    s.modify_job(job("{}")).await.unwrap();
    fire(&clock, &mut rx, "a", 3).await;
    let recovered = next_body(&mut recovered_rx, 30)
        .await
        .expect("recovery heard");
    assert_eq!(recovered["on"], "recovered");
    assert_eq!(recovered["recovered_after"], 2);
    let ok = next_body(&mut ok_rx, 30).await.expect("success heard");
    assert_eq!(ok["on"], "succeeded");
    // Nothing else reached the `succeeded`-only listener (two failures
    // went by), and the success ended the streak: not paused.
    assert!(next_body(&mut ok_rx, 1).await.is_none());
    assert!(!s.job("a").unwrap().paused);

    // Three failures in a row: paused, with its reason and event.
    s.modify_job(failing.clone()).await.unwrap();
    fire(&clock, &mut rx, "a", 4).await;
    fire(&clock, &mut rx, "a", 5).await;
    let Event::RunFailed(third) = fire(&clock, &mut rx, "a", 6).await else {
        panic!("run 6 failed")
    };
    let paused = wait_for(
        &mut rx,
        |e| matches!(e, Event::JobPaused(j) if j.job_id == "a"),
    )
    .await;
    let Event::JobPaused(paused) = paused else {
        unreachable!()
    };
    let want = format!(
        "auto-paused after 3 failed runs in a row (last: run {})",
        third.run_id
    );
    assert_eq!(paused.reason.as_deref(), Some(want.as_str()));
    let info = s.job("a").unwrap();
    assert!(info.paused);
    assert_eq!(info.paused_reason.as_deref(), Some(want.as_str()));
    assert_eq!(
        store
            .job("a")
            .await
            .unwrap()
            .unwrap()
            .paused_reason
            .as_deref(),
        Some(want.as_str())
    );
    let heard = next_body(&mut paused_rx, 30).await.expect("pause heard");
    assert_eq!(heard["on"], "paused");
    assert_eq!(heard["event"], "job-paused");
    assert_eq!(heard["reason"], want.as_str());
    // The 1st and 2nd failures after the recovery: only the 2nd (run 5)
    // and 3rd (run 6) are heard by after_failures = 2.
    let a = next_body(&mut after_rx, 30).await.expect("run 5 heard");
    let b = next_body(&mut after_rx, 30).await.expect("run 6 heard");
    let mut heard: Vec<_> = [a, b].iter().map(|v| v["scheduled_at"].clone()).collect();
    heard.sort_by_key(ToString::to_string);
    let t = |n| serde_json::to_value(t0() + Duration::minutes(n)).unwrap();
    assert_eq!(heard, vec![t(5), t(6)]);
    assert!(!s.job("b").unwrap().paused);

    // Resume clears the reason and the count: one failure does not pause.
    let resumed = s.resume_job("a").await.unwrap();
    assert_eq!(resumed.paused_reason, None);
    assert_eq!(store.job("a").await.unwrap().unwrap().paused_reason, None);
    let next = resumed.next_run_time.expect("next fire");
    clock.advance(next - clock.now());
    wait_for(
        &mut rx,
        |e| matches!(e, Event::RunFailed(r) if r.job_id == "a" && r.scheduled_at == next),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!s.job("a").unwrap().paused);
    // A manual pause has no reason.
    assert_eq!(s.pause_job("a").await.unwrap().paused_reason, None);
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

// A fire's retries count once: two fires of two failed attempts each
// pause a job with pause_after_failures = 2 only after the second fire.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_fire_counts_once_toward_pause_after_failures() {
    let store: Arc<dyn JobStore> = Arc::new(MemoryJobStore::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    s.add_job(
        spec(
            r#"{"id":"r","plugin":"panic","trigger":{"type":"interval","every":"1m"},
                 "pause_after_failures":2,
                 "retry":{"max_attempts":2,"delay":"1s","retry_on":["trapped"]}}"#,
        ),
        false,
    )
    .await
    .unwrap();
    for n in 1..=2 {
        let at = t0() + Duration::minutes(n);
        clock.advance(at - clock.now());
        wait_for(
            &mut rx,
            |e| matches!(e, Event::RunRetried(r) if r.job_id == "r" && r.scheduled_at == at),
        )
        .await;
        assert!(
            !s.job("r").unwrap().paused,
            "paused after fire {n}'s first attempt"
        );
        clock.advance(Duration::seconds(1));
        wait_for(&mut rx, |e| {
            matches!(e, Event::RunFailed(r) if r.job_id == "r" && r.scheduled_at == at && r.attempt == 2)
        })
        .await;
        if n == 1 {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            assert!(!s.job("r").unwrap().paused, "paused after one fire");
        }
    }
    wait_for(
        &mut rx,
        |e| matches!(e, Event::JobPaused(j) if j.job_id == "r" && j.reason.is_some()),
    )
    .await;
    assert!(
        s.job("r")
            .unwrap()
            .paused_reason
            .unwrap()
            .contains("2 failed runs in a row")
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

// A changed spec (here a replace, as a jobs file or `replace_existing`
// makes) of a job that stays paused keeps the reason it was auto-paused
// for; one whose `paused` changed to false resumes it, clears the reason
// and counts failures afresh, as `POST /jobs/{id}/resume` does.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_spec_keeps_the_pause_reason_and_a_spec_resume_resets_the_count() {
    let store: Arc<dyn JobStore> = Arc::new(MemoryJobStore::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    let job = |paused: bool, name: &str| {
        spec(&format!(
            r#"{{"id":"a","plugin":"hello","args":{{"fail":true,"name":"{name}"}},
                "trigger":{{"type":"interval","every":"1m"}},
                "pause_after_failures":2,"paused":{paused}}}"#
        ))
    };
    s.add_job(job(false, "x"), false).await.unwrap();
    fire(&clock, &mut rx, "a", 1).await;
    fire(&clock, &mut rx, "a", 2).await;
    wait_for(
        &mut rx,
        |e| matches!(e, Event::JobPaused(j) if j.job_id == "a"),
    )
    .await;
    let reason = s.job("a").unwrap().paused_reason.expect("auto-paused");

    // Changed args, still paused: the reason stays, here and stored.
    let kept = s.add_job(job(false, "y"), true).await.unwrap();
    assert!(kept.paused);
    assert_eq!(kept.paused_reason.as_deref(), Some(reason.as_str()));
    let kept = s.add_job(job(true, "y"), true).await.unwrap();
    assert_eq!(kept.paused_reason.as_deref(), Some(reason.as_str()));
    let stored = store.job("a").await.unwrap().unwrap();
    assert_eq!(stored.paused_reason.as_deref(), Some(reason.as_str()));

    // `paused` changed to false: resumed, reason gone, count reset.
    let resumed = s.add_job(job(false, "y"), true).await.unwrap();
    assert!(!resumed.paused);
    assert_eq!(resumed.paused_reason, None);
    let stored = store.job("a").await.unwrap().unwrap();
    assert_eq!(stored.paused_reason, None);
    assert!(stored.failures_from.is_some());
    let next = resumed.next_run_time.expect("next fire");
    clock.advance(next - clock.now());
    let failed = wait_for(
        &mut rx,
        |e| matches!(e, Event::RunFailed(r) if r.job_id == "a" && r.scheduled_at == next),
    )
    .await;
    let Event::RunFailed(failed) = failed else {
        unreachable!()
    };
    assert_eq!(
        failed.failures_in_a_row,
        Some(1),
        "counted afresh: {failed:?} {:?}",
        store.job("a").await.unwrap().unwrap().failures_from
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!s.job("a").unwrap().paused);
    s.shutdown(std::time::Duration::from_secs(5)).await;
}

/// Polls listener `plugin`'s kv until `key` holds JSON that `ok` accepts.
async fn heard(
    store: &Arc<dyn JobStore>,
    plugin: &str,
    key: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let namespace = format!("listener/{plugin}");
    let mut last = None;
    for _ in 0..3000 {
        if let Ok(Some(bytes)) = store.kv().get(&namespace, key) {
            let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            if ok(&value) {
                return value;
            }
            last = Some(value);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{plugin} never heard what was expected at {key}; last: {last:?}");
}

// Issue 13: a 0.2.0 listener (`alert`, through the SDK) hears a recovery
// and an auto-pause as `run-recovered` and `job-paused`; a 0.1.0 one
// (`legacy-alert`, wit-bindgen on wit/v0.1) as before 0.2.0:
// `run-succeeded` and `run-failed`, with outcomes `recovered` and `paused`.
#[tokio::test(flavor = "multi_thread")]
async fn recoveries_and_pauses_reach_each_listener_in_its_version() {
    let store: Arc<dyn JobStore> = Arc::new(MemoryJobStore::default());
    let clock = Arc::new(ManualClock::new(t0()));
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    let job = |args: &str| {
        spec(&format!(
            r#"{{"id":"w","plugin":"hello","trigger":{{"type":"interval","every":"1m"}},
                "args":{args},"pause_after_failures":2,
                "listeners":[{{"plugin":"alert","on":["recovered","paused"]}},
                             {{"plugin":"legacy_alert","on":["recovered","paused"]}}]}}"#
        ))
    };
    // `hello` refuses an argument it does not know.
    let failing = job(r#"{"fail":true}"#);
    s.add_job(failing.clone(), false).await.unwrap();
    fire(&clock, &mut rx, "w", 1).await;
    s.modify_job(job("{}")).await.unwrap();
    let Event::RunSucceeded(recovery) = fire(&clock, &mut rx, "w", 2).await else {
        panic!("run 2 succeeded")
    };
    let new = heard(&store, "alert", "last/w", |v| {
        v["run_id"] == recovery.run_id.as_str()
    })
    .await;
    assert_eq!(new["kind"], "run-recovered", "{new}");
    assert_eq!(new["outcome"], "recovered", "{new}");
    let old = heard(&store, "legacy_alert", "last/w", |v| {
        v["run_id"] == recovery.run_id.as_str()
    })
    .await;
    assert_eq!(old["kind"], "run-succeeded", "{old}");
    assert_eq!(old["outcome"], "recovered", "{old}");

    s.modify_job(failing).await.unwrap();
    fire(&clock, &mut rx, "w", 3).await;
    let Event::RunFailed(last) = fire(&clock, &mut rx, "w", 4).await else {
        panic!("run 4 failed")
    };
    wait_for(
        &mut rx,
        |e| matches!(e, Event::JobPaused(j) if j.job_id == "w"),
    )
    .await;
    let is_pause = |v: &serde_json::Value| v["outcome"] == "paused";
    let new = heard(&store, "alert", "last/w", is_pause).await;
    assert_eq!(new["kind"], "job-paused", "{new}");
    assert_eq!(new["run_id"], last.run_id.as_str(), "{new}");
    let old = heard(&store, "legacy_alert", "last/w", is_pause).await;
    assert_eq!(old["kind"], "run-failed", "{old}");
    assert_eq!(old["run_id"], last.run_id.as_str(), "{old}");
    assert!(
        old["message"]
            .as_str()
            .is_some_and(|m| m.contains("auto-paused after 2 failed runs in a row")),
        "{old}"
    );
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
