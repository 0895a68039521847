//! Per-job error listeners: a listener plugin and webhooks, one of which
//! hangs.

use chrono::Duration;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wasmcron::event::Event;
use wasmcron::scheduler::ManualClock;
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
