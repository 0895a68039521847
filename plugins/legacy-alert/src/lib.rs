//! `legacy-alert`: a listener component built against
//! `wasmcron:plugin@0.1.0` (`wit/v0.1`) with `wit-bindgen` directly. It
//! keeps the last event per job in its kv (`last/JOB`) as JSON: `{"kind",
//! "run_id", "outcome", "message"}`, `kind` as 0.1.0 names it (0.1.0 has no
//! `run-recovered` nor `job-paused`).

wit_bindgen::generate!({
    world: "listener",
    path: "../../wit/v0.1",
});

use exports::wasmcron::plugin::handler::Guest;
use wasmcron::plugin::kv;
use wasmcron::plugin::types::{EventKind, JobEvent};

struct LegacyAlert;

impl Guest for LegacyAlert {
    fn on_event(event: JobEvent) -> Result<(), String> {
        let kind = match event.kind {
            EventKind::RunSucceeded => "run-succeeded",
            EventKind::RunFailed => "run-failed",
            EventKind::RunMissed => "run-missed",
            EventKind::RunSkipped => "run-skipped",
            EventKind::RunRetried => "run-retried",
        };
        let record = serde_json::json!({
            "kind": kind,
            "run_id": event.run_id,
            "outcome": event.outcome,
            "message": event.message,
        });
        kv::set(
            &format!("last/{}", event.job_id),
            record.to_string().as_bytes(),
        )
        .map_err(|e| format!("kv: {e:?}"))
    }
}

export!(LegacyAlert);
