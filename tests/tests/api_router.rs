//! The API's router without a port (`tower::ServiceExt::oneshot`), over a
//! real scheduler with the test plugins: fuzzed with arbitrary bodies,
//! queries and paths, no request may produce a 5xx or an error outside
//! the one shape.

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt as _;
use wasmcron::api::{ApiState, Metrics, router};
use wasmcron::scheduler::{ManualClock, Scheduler};
use wasmcron::store::MemoryJobStore;
use wasmcron_tests::sched::{start, t0};

fn state(scheduler: Scheduler) -> ApiState {
    ApiState {
        scheduler,
        metrics: Arc::new(Metrics::default()),
        tokens: None,
        auth_reads: false,
        stop: tokio_util::sync::CancellationToken::new(),
        cluster: wasmcron::api::ClusterSettings {
            host: wasmcron::api::HostIdentity {
                id: "test-host".into(),
                name: "test".into(),
            },
            backend: "memory",
            lease_ttl: None,
        },
        plugin_admin: None,
    }
}

async fn call(state: &ApiState, method: Method, uri: &str, body: Vec<u8>) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn check(what: &str, (status, body): &(u16, Value)) {
    assert!(*status < 500, "{what}: {status} {body}");
    if *status >= 400 {
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty() && !message.is_empty(),
            "{what}: {status} without the error shape: {body}"
        );
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z*/, 0-9:-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "cron",
            "interval",
            "date",
            "any",
            "all",
            "hello",
            "0 9 * * mon",
            "1s",
            "-5s",
            "Europe/Berlin",
            "2001-01-01T00:00:00Z",
            "/data",
            "https://x.example",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "id",
                    "plugin",
                    "trigger",
                    "type",
                    "expr",
                    "tz",
                    "every",
                    "at",
                    "triggers",
                    "args",
                    "limits",
                    "fuel",
                    "timeout",
                    "memory_mib",
                    "retry",
                    "max_attempts",
                    "misfire_grace",
                    "coalesce",
                    "max_instances",
                    "capabilities",
                    "dirs",
                    "env",
                    "http",
                    "secrets",
                    "host",
                    "guest",
                    "mode",
                    "listeners",
                    "webhook",
                    "replace_existing",
                    "start",
                    "end",
                    "jitter",
                    "keep_runs",
                    "keep_for",
                    "scheduled_at",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn no_request_makes_a_5xx_or_breaks_the_error_shape() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let state = rt.block_on(async {
        let clock = Arc::new(ManualClock::new(t0()));
        let scheduler = start(Arc::new(MemoryJobStore::default()), clock).await;
        let state = state(scheduler);
        let created = call(
            &state,
            Method::POST,
            "/jobs",
            serde_json::to_vec(&json!({
                "id": "known", "plugin": "hello",
                "trigger": {"type": "interval", "every": "1h"}
            }))
            .expect("json"),
        )
        .await;
        assert_eq!(created.0, 201, "{created:?}");
        state
    });
    let config = ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        body in json_value(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
        query in "[a-z=&%0-9_-]{0,24}",
        segment in "[A-Za-z0-9%._~-]{0,20}",
    )| {
        rt.block_on(async {
            let bytes = serde_json::to_vec(&body).expect("json");
            for (method, uri, payload) in [
                (Method::POST, "/jobs".to_owned(), bytes.clone()),
                (Method::PATCH, "/jobs/known".to_owned(), bytes.clone()),
                (Method::POST, "/jobs".to_owned(), raw.clone()),
                (Method::GET, format!("/jobs?{query}"), Vec::new()),
                (Method::GET, format!("/jobs/known/runs?{query}"), Vec::new()),
                (Method::GET, format!("/jobs/{segment}"), Vec::new()),
                (Method::POST, format!("/runs/{segment}/replay"), Vec::new()),
                (Method::GET, format!("/plugins/{segment}"), Vec::new()),
                // A job that is not there: the body is checked all the
                // same (before the job is looked up), and no run piles up.
                (Method::POST, "/jobs/absent/run".to_owned(), bytes.clone()),
                (Method::POST, "/jobs/absent/run".to_owned(), raw.clone()),
                (Method::GET, format!("/cron/next?{query}"), Vec::new()),
                (Method::GET, format!("/cron/next?expr={segment}&{query}"), Vec::new()),
                (Method::GET, format!("/cron/explain?expr={segment}"), Vec::new()),
            ] {
                let what = format!("{method} {uri} {}", String::from_utf8_lossy(&payload));
                let answer = call(&state, method, &uri, payload).await;
                check(&what, &answer);
            }
        });
    });
}

#[tokio::test]
async fn plugin_uploads_take_bodies_up_to_64_mib_and_no_more() {
    let clock = Arc::new(ManualClock::new(t0()));
    let state = state(start(Arc::new(MemoryJobStore::default()), clock).await);
    // Past the 1 MiB of other routes: the body reaches the handler (which
    // has no uploader here, hence 503), it is not cut at 1 MiB.
    let (status, body) = call(&state, Method::PUT, "/plugins/big", vec![0; 2 << 20]).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = call(&state, Method::PUT, "/plugins/big", vec![0; (64 << 20) + 1]).await;
    assert_eq!(status, 413, "{body}");
}

#[tokio::test]
async fn a_refused_write_with_an_unread_body_tells_the_client_not_to_reuse_the_connection() {
    let clock = Arc::new(ManualClock::new(t0()));
    let mut state = state(start(Arc::new(MemoryJobStore::default()), clock).await);
    state.tokens = Some(Arc::new(
        wasmcron::api::Tokens::single("router-test-token-0123456789").expect("token"),
    ));
    let send = |method: Method, body: Vec<u8>| {
        let request = Request::builder()
            .method(method)
            .uri("/plugins/hello")
            .header("content-length", body.len().to_string())
            .body(Body::from(body))
            .expect("request");
        router(state.clone()).oneshot(request)
    };
    // hyper closes a connection whose request body was not read; a pooling
    // client must be told, or its next request fails on the dead socket.
    let response = send(Method::PUT, vec![0; 200 << 10])
        .await
        .expect("infallible");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "a 401 to a PUT with a body must say Connection: close"
    );
    // Nothing unread: the connection stays usable.
    let response = send(Method::DELETE, Vec::new()).await.expect("infallible");
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().get("connection").is_none());
}
