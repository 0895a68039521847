//! The sandboxed runtime, driven with the real plugins built from plugins/.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmcron::plugin::{Plugin, PluginError};
use wasmcron::runtime::{Limits, LogSource, Outcome, OutcomeKind, Runtime};
use wasmcron::store::MemoryKv;
use wasmcron_tests::{load, plugins, request, runtime, runtime_with_kv};

fn quick() -> Limits {
    Limits {
        timeout: Duration::from_secs(20),
        ..Limits::default()
    }
}

/// After any misbehaviour, the same runtime must still run a healthy guest.
async fn assert_healthy(rt: &Runtime) {
    let hello = load(rt, plugins::HELLO);
    let report = rt
        .run(&hello, &request("healthy", r#"{"name":"after"}"#, quick()))
        .await;
    assert_eq!(
        report.outcome,
        Outcome::Succeeded {
            output: "Hello, after!".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_returns_its_greeting_and_captures_log_and_stdout() {
    let rt = runtime();
    let hello = load(&rt, plugins::HELLO);
    let report = rt
        .run(&hello, &request("greeter", r#"{"name":"Ada"}"#, quick()))
        .await;
    assert_eq!(
        report.outcome,
        Outcome::Succeeded {
            output: "Hello, Ada!".into()
        }
    );
    assert!(report.fuel_consumed > 0);
    let log = report
        .logs
        .iter()
        .find(|r| r.source == LogSource::Log)
        .map(|r| r.message.clone());
    assert_eq!(
        log.as_deref(),
        Some("saying hello to Ada (job greeter, attempt 1)")
    );
    assert!(
        report
            .logs
            .iter()
            .any(|r| r.source == LogSource::Stdout && r.message == "hello from stdout")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_a_permanent_failure() {
    let rt = runtime();
    let hello = load(&rt, plugins::HELLO);
    let report = rt
        .run(&hello, &request("greeter", r#"{"nom":1}"#, quick()))
        .await;
    match report.outcome {
        Outcome::Failed { message, retryable } => {
            assert!(!retryable);
            assert!(message.contains("invalid job arguments"), "{message}");
            assert!(message.contains("nom"), "{message}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flaky_fails_retryably_on_odd_attempts_and_succeeds_on_even() {
    let rt = runtime();
    let flaky = load(&rt, plugins::FLAKY);
    let mut req = request("flaky", "{}", quick());
    let first = rt.run(&flaky, &req).await;
    assert_eq!(
        first.outcome,
        Outcome::Failed {
            message: "attempt 1 failed on purpose".into(),
            retryable: true
        }
    );
    req.attempt = 2;
    let second = rt.run(&flaky, &req).await;
    assert_eq!(second.outcome.kind(), OutcomeKind::Succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_runs_out_of_fuel() {
    let rt = runtime();
    let spin = load(&rt, plugins::SPIN);
    let limits = Limits {
        fuel: 50_000_000,
        ..quick()
    };
    let report = rt.run(&spin, &request("spin", "{}", limits)).await;
    assert_eq!(report.outcome, Outcome::OutOfFuel);
    assert_eq!(report.fuel_consumed, 50_000_000);
    assert_healthy(&rt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_with_ample_fuel_times_out() {
    let rt = runtime();
    let spin = load(&rt, plugins::SPIN);
    let limits = Limits {
        fuel: u64::MAX,
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let report = rt.run(&spin, &request("spin", "{}", limits)).await;
    assert_eq!(report.outcome, Outcome::TimedOut);
    assert_healthy(&rt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_sleeping_in_a_host_call_times_out() {
    let rt = runtime();
    let slow = load(&rt, plugins::SLOW);
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let report = rt
        .run(&slow, &request("slow", r#"{"millis": 60000}"#, limits))
        .await;
    assert_eq!(report.outcome, Outcome::TimedOut);
    // The guest logged before it slept; the capture survives the cancel.
    assert!(report.logs.iter().any(|r| r.message == "sleeping 60000 ms"));
    assert_healthy(&rt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_within_its_timeout_succeeds() {
    let rt = runtime();
    let slow = load(&rt, plugins::SLOW);
    let report = rt
        .run(&slow, &request("slow", r#"{"millis": 50}"#, quick()))
        .await;
    assert_eq!(
        report.outcome,
        Outcome::Succeeded {
            output: "slept 50 ms".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hog_hits_the_memory_limit() {
    let rt = runtime();
    let hog = load(&rt, plugins::HOG);
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..quick()
    };
    let report = rt.run(&hog, &request("hog", "{}", limits)).await;
    assert_eq!(report.outcome, Outcome::MemoryLimit);
    assert_healthy(&rt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn panic_traps_with_the_panic_message() {
    let rt = runtime();
    let panic = load(&rt, plugins::PANIC);
    let report = rt.run(&panic, &request("boom", "{}", quick())).await;
    match report.outcome {
        Outcome::Trapped { message } => {
            assert!(
                message.contains("job boom exploded on purpose"),
                "{message}"
            );
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_healthy(&rt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_recursion_traps_as_stack_exhaustion() {
    let rt = runtime();
    let deep = load(&rt, plugins::DEEP);
    let report = rt.run(&deep, &request("deep", "{}", quick())).await;
    match report.outcome {
        Outcome::Trapped { message } => {
            assert!(message.contains("call stack exhausted"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_healthy(&rt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_share_state_only_through_kv() {
    let kv = Arc::new(MemoryKv::default());
    let rt = runtime_with_kv(kv.clone());
    let counter = load(&rt, plugins::COUNTER);
    let mut outputs = Vec::new();
    for _ in 0..3 {
        let report = rt.run(&counter, &request("tally", "{}", quick())).await;
        match report.outcome {
            Outcome::Succeeded { output } => outputs.push(output),
            other => panic!("counter failed: {other:?}"),
        }
    }
    // `in_memory` is a static in the guest: 1 every time means every run
    // had a fresh instance; `count` lives in kv and grows.
    assert_eq!(
        outputs,
        [
            r#"{"count":1,"in_memory":1}"#,
            r#"{"count":2,"in_memory":1}"#,
            r#"{"count":3,"in_memory":1}"#
        ]
    );
    // Another job's counter starts from scratch: kv is per job.
    let other = rt.run(&counter, &request("other", "{}", quick())).await;
    assert_eq!(
        other.outcome,
        Outcome::Succeeded {
            output: r#"{"count":1,"in_memory":1}"#.into()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn output_past_the_log_budget_is_dropped_marked_and_harmless() {
    let rt = runtime();
    let probe = load(&rt, plugins::PROBE);
    let report = rt
        .run(
            &probe,
            &request("chatty", r#"{"print_lines": 5000}"#, quick()),
        )
        .await;
    assert_eq!(report.outcome.kind(), OutcomeKind::Succeeded);
    assert!(report.logs_dropped_bytes > 0);
    let last = report
        .logs
        .last()
        .map(|r| r.message.clone())
        .unwrap_or_default();
    assert!(last.contains("bytes of output dropped"), "{last}");
    let kept: usize = report.logs.iter().map(|r| r.message.len()).sum();
    assert!(kept < 70 * 1024, "kept {kept} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_output_is_cut_and_marked() {
    let rt = runtime();
    let probe = load(&rt, plugins::PROBE);
    let report = rt
        .run(
            &probe,
            &request("big", r#"{"output_bytes": 200000}"#, quick()),
        )
        .await;
    match report.outcome {
        Outcome::Succeeded { output } => {
            assert!(output.len() < 70 * 1024);
            assert!(
                output.ends_with("…[output cut: 134464 more bytes]"),
                "{}",
                &output[output.len() - 40..]
            );
        }
        other => panic!("expected success, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_limits_are_refused_to_the_guest_not_trapped() {
    let rt = runtime();
    let probe = load(&rt, plugins::PROBE);
    let cases = [
        (
            r#"{"kv_key_len": 300}"#,
            "invalid kv key: the key is 300 bytes; the limit is 256",
        ),
        (r#"{"kv_key_len": 0}"#, "invalid kv key: the key is empty"),
        (
            r#"{"kv_value_len": 1048577}"#,
            "kv value too large: the value is 1048577 bytes; the limit is 1048576",
        ),
        (r#"{"kv_value_len": 1024}"#, "ok"),
    ];
    for (args, expected) in cases {
        let report = rt.run(&probe, &request("kv", args, quick())).await;
        let expected = serde_json::json!({ "kv_set": expected }).to_string();
        assert_eq!(
            report.outcome,
            Outcome::Succeeded { output: expected },
            "{args}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_without_grants_sees_no_environment_and_no_files() {
    // SAFETY-free: setting our own env var for the duration of the test is
    // fine; the point is that the guest must not see it.
    let rt = runtime();
    let probe = load(&rt, plugins::PROBE);
    let args = r#"{"env": true, "read_file": "/etc/passwd"}"#;
    let report = rt.run(&probe, &request("nosy", args, quick())).await;
    let Outcome::Succeeded { output } = report.outcome else {
        panic!("probe failed: {:?}", report.outcome);
    };
    let v: serde_json::Value = serde_json::from_str(&output).unwrap_or_default();
    assert_eq!(v["env"], serde_json::json!([]));
    let read = v["read_file"].as_str().unwrap_or_default();
    assert!(read.starts_with("error:"), "{read}");
}

/// On a single-threaded executor a guest that never yielded would starve
/// every other task. The runaway below must not stop `hello` from finishing
/// while it is still spinning.
#[tokio::test(flavor = "current_thread")]
async fn a_runaway_guest_does_not_block_the_executor() {
    let rt = Arc::new(runtime());
    let spin = load(&rt, plugins::SPIN);
    let hello = load(&rt, plugins::HELLO);
    let limits = Limits {
        fuel: u64::MAX,
        timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let spinning = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.run(&spin, &request("spin", "{}", limits)).await })
    };
    tokio::task::yield_now().await;
    let report = rt.run(&hello, &request("hello", "{}", quick())).await;
    assert_eq!(report.outcome.kind(), OutcomeKind::Succeeded);
    assert!(!spinning.is_finished(), "spin should still be running");
    spinning.abort();
}

fn load_err(rt: &Runtime, bytes: &[u8]) -> PluginError {
    match Plugin::load_bytes(rt, "bad".into(), bytes) {
        Ok(p) => panic!("{} loaded but should not have", p.name()),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_are_refused_with_distinct_readable_errors() {
    let rt = runtime();
    let hello_bytes = std::fs::read(plugins::HELLO).unwrap_or_default();

    let err = load_err(&rt, b"#!/bin/sh\necho not wasm\n");
    assert!(matches!(err, PluginError::NotWasm), "{err}");
    assert!(err.to_string().contains("not a WebAssembly file"));

    let err = load_err(&rt, &hello_bytes[..hello_bytes.len() / 2]);
    assert!(matches!(err, PluginError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("truncated"));

    // The smallest valid core module: magic and version 1.
    let err = load_err(&rt, b"\0asm\x01\0\0\0");
    assert!(matches!(err, PluginError::CoreModule), "{err}");
    assert!(err.to_string().contains("not a component"));

    let wrong = std::fs::read(plugins::WRONG_WORLD).unwrap_or_default();
    let err = load_err(&rt, &wrong);
    assert!(matches!(err, PluginError::WrongWorld { .. }), "{err}");
    assert!(err.to_string().contains("wasmcron:plugin/runner@0.1.0"));

    let unknown = std::fs::read(plugins::UNKNOWN_IMPORT).unwrap_or_default();
    let err = load_err(&rt, &unknown);
    match &err {
        PluginError::UnsatisfiedImport { import, .. } => {
            assert_eq!(import, "acme:secrets/vault");
        }
        other => panic!("expected an unsatisfied import, got {other}"),
    }

    let missing = Plugin::load_file(&rt, Path::new("/nonexistent/job.wasm"));
    assert!(matches!(missing, Err(PluginError::Io { .. })));

    // None of it disturbed the runtime.
    assert_healthy(&rt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_built_plugin_has_a_stable_content_hash() {
    let rt = runtime();
    let a = load(&rt, plugins::HELLO);
    let b = load(&rt, plugins::HELLO);
    let c = load(&rt, plugins::COUNTER);
    assert_eq!(a.hash(), b.hash());
    assert_ne!(a.hash(), c.hash());
    assert_eq!(a.hash().as_str().len(), 64);
}
