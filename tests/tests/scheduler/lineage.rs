//! What a guest learns about its run (issue 13, items 7 and 8): a 0.2.0
//! guest (`lineage`, through the SDK) reads why it runs and, for a chained
//! run, the run that started it; the child's record names its parent; a
//! 0.1.0 guest (`legacy`, wit-bindgen on `wit/v0.1`) still runs, with the
//! context it always had, its log and its kv.

use chrono::Duration;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use wasmcron::event::Event;
use wasmcron::runtime::Outcome;
use wasmcron::scheduler::{ManualClock, Scheduler};
use wasmcron::store::{JobStore, RunSummary, RunsFrom};
use wasmcron_tests::backends;
use wasmcron_tests::sched::{spec, start, t0, wait_for};
use wasmcron_tests::stores::TestStore;

/// The job's run summaries, oldest first.
async fn runs(store: &Arc<dyn JobStore>, job: &str) -> Vec<RunSummary> {
    let mut runs = store
        .run_summaries(job, 100, RunsFrom::Offset(0))
        .await
        .expect("summaries")
        .runs;
    runs.reverse();
    runs
}

/// A successful run's output text.
fn output_text(run: &RunSummary) -> String {
    match &run.outcome {
        Some(Outcome::Succeeded { output }) => output.clone(),
        other => panic!(
            "run {} of {} did not succeed: {other:?}",
            run.run_id, run.job_id
        ),
    }
}

/// A successful run's output, parsed.
fn output(run: &RunSummary) -> Value {
    let text = output_text(run);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Waits for run `run_id` to succeed.
async fn succeeds(rx: &mut wasmcron::event::EventReceiver, run_id: &str) {
    wait_for(
        rx,
        |e| matches!(e, Event::RunSucceeded(r) if r.run_id == run_id),
    )
    .await;
}

/// Adds the jobs of the test: chain targets first (a chain must name jobs
/// that exist).
async fn add_jobs(s: &Scheduler) {
    let hourly = r#""trigger":{"type":"interval","every":"1h"}"#;
    let yearly = r#""trigger":{"type":"cron","expr":"0 0 1 1 *"}"#;
    for json in [
        format!(r#"{{"id":"child_ok","plugin":"lineage",{yearly}}}"#),
        format!(r#"{{"id":"child_bad","plugin":"lineage",{yearly}}}"#),
        format!(r#"{{"id":"old_child","plugin":"legacy",{yearly}}}"#),
        format!(r#"{{"id":"sched","plugin":"lineage",{hourly}}}"#),
        // Fails its first attempt (retryably): the retry reads `retry`.
        format!(
            r#"{{"id":"retry","plugin":"lineage","args":{{"fail_attempts":1}},
                "retry":{{"max_attempts":2,"delay":"1s"}},{hourly}}}"#
        ),
        format!(
            r#"{{"id":"ok","plugin":"lineage","on_success":["child_ok","old_child"],
                "on_failure":["child_bad"],{hourly}}}"#
        ),
        format!(
            r#"{{"id":"bad","plugin":"lineage","args":{{"fail":"broken on purpose"}},
                "on_success":["child_ok"],"on_failure":["child_bad"],{hourly}}}"#
        ),
        format!(r#"{{"id":"old","plugin":"legacy","args":{{"who":"legacy"}},{hourly}}}"#),
    ] {
        s.add_job(spec(&json), false).await.expect("add");
    }
}

async fn a_guest_reads_why_it_runs_and_a_chained_one_its_parent(db: TestStore) {
    let clock = Arc::new(ManualClock::new(t0()));
    let store: Arc<dyn JobStore> = db.open().await;
    let s = start(store.clone(), clock.clone()).await;
    let mut rx = s.subscribe();
    add_jobs(&s).await;
    clock.advance(Duration::hours(1));
    // Every fire and chained run succeeds but `bad`'s; the events come in
    // any order. The retry waits for the clock to pass its delay.
    let want: HashSet<&str> = [
        "sched",
        "retry",
        "ok",
        "child_ok",
        "child_bad",
        "old_child",
        "old",
    ]
    .into();
    let mut done = HashSet::new();
    while done != want {
        let e = wait_for(&mut rx, |e| {
            matches!(e, Event::RunSucceeded(_) | Event::RunRetried(_))
        })
        .await;
        match e {
            Event::RunRetried(r) if r.job_id == "retry" => clock.advance(Duration::seconds(1)),
            Event::RunSucceeded(r) => {
                if let Some(id) = want.get(r.job_id.as_str()) {
                    done.insert(*id);
                }
            }
            _ => {}
        }
    }
    let manual = s.run_now("sched").await.expect("run now");
    succeeds(&mut rx, &manual.run_id).await;
    let replay = s.replay(&manual.run_id).await.expect("replay");
    succeeds(&mut rx, &replay.run_id).await;

    // Schedule, run now, replay.
    let sched = runs(&store, "sched").await;
    let causes: Vec<Value> = sched.iter().map(|r| output(r)["cause"].clone()).collect();
    assert_eq!(
        causes,
        [json!("schedule"), json!("manual"), json!("replay")]
    );
    for r in &sched {
        let out = output(r);
        assert_eq!(out["run_id"], r.run_id.as_str());
        assert_eq!(out["parent"], Value::Null, "{out}");
        assert_eq!(r.parent_run_id, None);
    }
    // The retry's second attempt.
    let retry = runs(&store, "retry").await;
    assert_eq!(retry.len(), 2, "{retry:#?}");
    let out = output(&retry[1]);
    assert_eq!(
        (out["cause"].clone(), out["attempt"].clone()),
        (json!("retry"), json!(2))
    );

    // on_success: the child reads its parent's run id and output.
    let ok = runs(&store, "ok").await;
    assert_eq!(ok.len(), 1, "{ok:#?}");
    assert_eq!(output(&ok[0])["cause"], "schedule");
    let child = runs(&store, "child_ok").await;
    assert_eq!(
        child.len(),
        1,
        "only ok's success chains to child_ok: {child:#?}"
    );
    let out = output(&child[0]);
    assert_eq!(out["cause"], "chain");
    assert_eq!(
        out["parent"],
        json!({
            "job_id": "ok",
            "run_id": ok[0].run_id,
            "outcome": "succeeded",
            "output": output_text(&ok[0]),
            "message": null,
        })
    );
    assert_eq!(
        child[0].parent_run_id.as_deref(),
        Some(ok[0].run_id.as_str())
    );
    let record = s
        .run(&child[0].run_id)
        .await
        .expect("run")
        .expect("recorded");
    assert_eq!(record.parent_run_id.as_deref(), Some(ok[0].run_id.as_str()));

    // on_failure: the parent's error message, no output.
    let bad = runs(&store, "bad").await;
    assert_eq!(bad.len(), 1, "{bad:#?}");
    let child = runs(&store, "child_bad").await;
    assert_eq!(
        child.len(),
        1,
        "only bad's failure chains to child_bad: {child:#?}"
    );
    assert_eq!(
        output(&child[0])["parent"],
        json!({
            "job_id": "bad",
            "run_id": bad[0].run_id,
            "outcome": "failed",
            "output": null,
            "message": "broken on purpose",
        })
    );
    assert_eq!(
        child[0].parent_run_id.as_deref(),
        Some(bad[0].run_id.as_str())
    );

    // 0.1.0: its whole context, its kv, its log; chained, it runs too (it
    // has no field for its parent, but its record has one).
    let old = runs(&store, "old").await;
    assert_eq!(old.len(), 1, "{old:#?}");
    let out = output(&old[0]);
    let mut keys: Vec<&str> = out
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "args",
            "attempt",
            "fired_at",
            "job_id",
            "run_id",
            "runs",
            "scheduled_at"
        ],
        "{out}"
    );
    assert_eq!(out["job_id"], "old");
    assert_eq!(out["run_id"], old[0].run_id.as_str());
    assert_eq!(out["attempt"], 1);
    assert_eq!(
        out["scheduled_at"],
        json!([(t0() + Duration::hours(1)).timestamp(), 0])
    );
    let args: Value = serde_json::from_str(out["args"].as_str().unwrap_or_default()).expect("args");
    assert_eq!(args, json!({"who": "legacy"}));
    assert_eq!(out["runs"], 1);
    let record = s.run(&old[0].run_id).await.expect("run").expect("recorded");
    assert!(
        record.logs.iter().any(
            |l| l.message == format!("legacy run {} of job old", old[0].run_id)
                && l.fields.iter().any(|(k, v)| k == "attempt" && v == "1")
        ),
        "{:#?}",
        record.logs
    );
    let old_child = runs(&store, "old_child").await;
    assert_eq!(old_child.len(), 1, "{old_child:#?}");
    assert_eq!(output(&old_child[0])["job_id"], "old_child");
    assert_eq!(
        old_child[0].parent_run_id.as_deref(),
        Some(ok[0].run_id.as_str())
    );
    // Its kv persists between runs.
    let again = s.run_now("old").await.expect("run now");
    succeeds(&mut rx, &again.run_id).await;
    let old = runs(&store, "old").await;
    assert_eq!(output(&old[1])["runs"], 2);
    s.shutdown(std::time::Duration::from_secs(5)).await;
}
backends!(a_guest_reads_why_it_runs_and_a_chained_one_its_parent: memory, sqlite, postgres);
