//! Hostile guests, each run through `wasmcron plugin run` as a user would
//! run it, with no grants unless said: the host must stay bounded (what it
//! keeps is asserted: records, bytes, markers, outcome kinds) and say what
//! happened. Memory is measured only as a generous sanity bound on the
//! child process's peak RSS, never as a timing.

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;
use wasmcron_tests::plugins;

/// What one `plugin run --json` produced.
struct Run {
    report: Value,
    /// Exit status code of the binary.
    code: Option<i32>,
    /// Peak resident set of the child (VmHWM), in bytes, as far as it was
    /// sampled before the child exited.
    peak_rss: u64,
}

/// Runs `plugin run --json FILE ARGS...`, sampling the child's peak RSS.
fn run(file: &str, extra: &[&str]) -> Run {
    let out_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out_path = out_dir.path().join("report.json");
    let out = std::fs::File::create(&out_path).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmcron"))
        .args(["plugin", "run", "--json", file])
        .args(extra)
        .stdout(out)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run wasmcron: {e}"));
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss = 0;
    let status = loop {
        if let Some(kb) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_rss = peak_rss.max(kb * 1024);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("wait: {e}"),
        }
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}): {text}"));
    Run {
        report,
        code: status.code(),
        peak_rss,
    }
}

fn kind(run: &Run) -> &str {
    run.report["outcome"]["kind"].as_str().unwrap_or_default()
}

fn logs(run: &Run) -> &[Value] {
    run.report["logs"].as_array().map_or(&[], Vec::as_slice)
}

fn message(run: &Run) -> String {
    run.report["outcome"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The capture's framing charge and default budget: at most 64 KiB / 64 B
/// records are kept.
const MAX_KEPT: usize = 1024;

/// Regression: 100,000 empty `log` calls and 100,000 empty lines were all
/// kept (each was charged 0 bytes), with no truncation marker.
#[test]
fn empty_records_cost_their_framing_and_are_dropped_and_counted() {
    // A generous timeout: the machine running the tests may be loaded, and
    // this is about what is kept, not how fast.
    let r = run(
        plugins::FLOOD,
        &[
            "--timeout",
            "300s",
            "--args",
            r#"{"empty_logs":100000,"empty_lines":20000}"#,
        ],
    );
    assert_eq!(kind(&r), "succeeded", "{}", r.report["outcome"]);
    assert_eq!(r.report["outcome"]["output"], "calls=120000");
    let logs = logs(&r);
    assert_eq!(logs.len(), MAX_KEPT + 1, "kept records plus the marker");
    let dropped = 120_000 - MAX_KEPT as u64;
    assert_eq!(r.report["logs_dropped_records"], dropped);
    assert_eq!(r.report["logs_dropped_bytes"], 0);
    let marker = logs[MAX_KEPT]["message"].as_str().unwrap_or_default();
    assert_eq!(logs[MAX_KEPT]["source"], "host");
    assert!(marker.contains(&format!("({dropped} records)")), "{marker}");
    assert!(marker.contains("64 bytes"), "{marker}");
}

/// Regression: one `log` call with millions of empty fields made the host
/// lift the whole list (~126 MiB) and keep it until the run ended, because
/// the 32 kept fields still owned the list's allocation; twenty such calls
/// held gigabytes.
#[test]
fn millions_of_log_fields_are_neither_lifted_nor_kept() {
    // A million fields: wasmtime itself refuses to lift more than 128 MiB
    // of them in one call (about 1.6 million), with its own trap.
    let fields = 1_000_000;
    let r = run(
        plugins::FLOOD,
        &[
            "--timeout",
            "300s",
            "--args",
            &format!(r#"{{"fields":{fields},"field_calls":30}}"#),
        ],
    );
    assert_eq!(kind(&r), "succeeded", "{}", r.report["outcome"]);
    let logs = logs(&r);
    assert_eq!(logs.len(), 30);
    let kept = logs[0]["fields"].as_array().map_or(0, Vec::len);
    assert_eq!(kept, 33, "32 fields and the note");
    assert_eq!(
        logs[0]["fields"][32][1],
        format!("{} more fields not kept (at most 32 per call)", fields - 32)
    );
    // The guest itself holds ~64 MiB of its own memory for the list; the
    // host held another ~46 MiB per call before, ~1.4 GiB for these 30. A
    // sanity bound, far from both.
    assert!(r.peak_rss < 512 << 20, "peak RSS {} MiB", r.peak_rss >> 20);
}

/// Regression: a guest with no grant at all created 1,000 `fields`
/// resources of 100 KiB each, taking the host from 34 to 134 MiB.
#[test]
fn http_resources_need_an_http_grant() {
    for args in [
        r#"{"fields":1000,"value_bytes":102400}"#,
        r#"{"fields":1000,"value_bytes":102400,"from_list":true}"#,
    ] {
        let r = run(plugins::HTTPRES, &["--args", args]);
        assert_eq!(kind(&r), "trapped", "{args}: {}", r.report["outcome"]);
        let m = message(&r);
        assert!(m.contains("no capabilities.http grant"), "{m}");
        assert!(m.contains("send HTTP headers"), "{m}");
    }
    // Empty ones: a few (a request to be denied needs them), then no more.
    let r = run(plugins::HTTPRES, &["--args", r#"{"fields":1000}"#]);
    assert_eq!(kind(&r), "trapped", "{}", r.report["outcome"]);
    assert!(
        message(&r).contains("may not create HTTP fields"),
        "{}",
        message(&r)
    );
    let r = run(plugins::HTTPRES, &["--args", r#"{"fields":8}"#]);
    assert_eq!(r.report["outcome"]["output"], "created=8", "{}", r.report);
}

/// With a grant, what a run's HTTP resources may hold is bounded too.
#[test]
fn http_resources_of_a_granted_job_are_bounded() {
    let grant = ["--capabilities", r#"{"http":["https://example.com"]}"#];
    let r = run(
        plugins::HTTPRES,
        &[
            &["--args", r#"{"fields":1000,"value_bytes":102400}"#],
            &grant[..],
        ]
        .concat(),
    );
    assert_eq!(kind(&r), "trapped", "{}", r.report["outcome"]);
    let m = message(&r);
    assert!(m.contains("would exceed 33554432 bytes"), "{m}");
    // 1,000 x 100 KiB is ~100 MiB of headers; the budget stops it at 32.
    assert!(r.peak_rss < 512 << 20, "peak RSS {} MiB", r.peak_rss >> 20);

    let r = run(
        plugins::HTTPRES,
        &[
            &[
                "--args",
                r#"{"fields":50,"value_bytes":1024,"from_list":true}"#,
            ],
            &grant[..],
        ]
        .concat(),
    );
    assert_eq!(r.report["outcome"]["output"], "created=50", "{}", r.report);
}

/// Regression: a guest calling `exit(0)` was reported as trapped.
#[test]
fn exit_zero_succeeds_and_a_non_zero_exit_fails() {
    let r = run(plugins::EXIT, &["--args", r#"{"code":0}"#]);
    assert_eq!(kind(&r), "succeeded", "{}", r.report["outcome"]);
    assert_eq!(r.report["outcome"]["output"], "");
    assert_eq!(r.code, Some(0));
    let logs = logs(&r);
    assert_eq!(logs[0]["message"], "exiting with 0");
    assert!(
        logs.iter().any(|l| l["source"] == "host"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("called exit(0)"))),
        "{logs:?}"
    );

    let r = run(plugins::EXIT, &["--args", r#"{"code":3}"#]);
    assert_eq!(kind(&r), "failed", "{}", r.report["outcome"]);
    assert_eq!(r.report["outcome"]["retryable"], false);
    assert!(message(&r).contains("non-zero status"), "{}", message(&r));
    assert_eq!(r.code, Some(1));
}

/// Regression: a CPU-bound run stopped by its timeout reported about 1,000
/// fuel where it burned billions.
#[test]
fn a_timed_out_run_reports_the_fuel_it_burned() {
    let r = run(
        plugins::SPIN,
        &["--timeout", "400ms", "--fuel", "1000000000000000"],
    );
    assert_eq!(kind(&r), "timed-out", "{}", r.report["outcome"]);
    let fuel = r.report["fuel_consumed"].as_u64().unwrap_or_default();
    // A tight loop burns billions a second; even a starved 400 ms burns far
    // more than this.
    assert!(fuel > 10_000_000, "fuel_consumed {fuel}");
}

/// Regression: an output over 128 MiB trapped with wasmtime's message
/// instead of being cut like any output over 64 KiB.
#[test]
fn an_output_over_128_mib_is_cut() {
    let bytes: u64 = 150 << 20;
    let r = run(
        plugins::PROBE,
        &[
            "--memory-mib",
            "512",
            "--args",
            &format!(r#"{{"output_bytes":{bytes}}}"#),
        ],
    );
    assert_eq!(kind(&r), "succeeded", "{}", r.report["outcome"]);
    let output = r.report["outcome"]["output"].as_str().unwrap_or_default();
    assert!(output.len() < 70 * 1024, "{}", output.len());
    let cut = bytes - 64 * 1024;
    assert!(
        output.ends_with(&format!("…[output cut: {cut} more bytes]")),
        "{}",
        &output[output.len().saturating_sub(60)..]
    );
}

/// Regression: tables above 20,000 elements were refused although the
/// limits said 100,000.
#[test]
fn a_table_within_the_documented_limit_loads_and_runs() {
    let r = run(plugins::BIGTABLE, &[]);
    assert_eq!(kind(&r), "succeeded", "{}", r.report["outcome"]);
    assert_eq!(r.report["outcome"]["output"], "5");
}
