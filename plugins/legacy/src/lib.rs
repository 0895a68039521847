//! `legacy`: a job component built against `wasmcron:plugin@0.1.0`
//! (`wit/v0.1`) with `wit-bindgen` directly, as a plugin written before
//! 0.2.0 was. The host must keep loading and running it unchanged.
//!
//! It logs a line (with a field), counts its runs in kv (`runs`), and
//! outputs its whole 0.1.0 run context and the count as JSON:
//! `{"job_id", "run_id", "scheduled_at", "fired_at", "attempt", "args",
//! "runs"}` (times as `[seconds, nanoseconds]`).

wit_bindgen::generate!({
    world: "job",
    path: "../../wit/v0.1",
});

use exports::wasmcron::plugin::runner::Guest;
use wasmcron::plugin::types::{JobError, RunContext};
use wasmcron::plugin::{kv, log};

struct Legacy;

impl Guest for Legacy {
    fn run(ctx: RunContext) -> Result<String, JobError> {
        log::log(
            log::Level::Info,
            &format!("legacy run {} of job {}", ctx.run_id, ctx.job_id),
            &[("attempt".to_owned(), ctx.attempt.to_string())],
        );
        let kv_error = |e: kv::KvError| JobError {
            message: format!("kv: {e:?}"),
            retryable: true,
        };
        let runs = match kv::get("runs").map_err(kv_error)? {
            Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
            None => 0,
        } + 1;
        kv::set("runs", runs.to_string().as_bytes()).map_err(kv_error)?;
        Ok(serde_json::json!({
            "job_id": ctx.job_id,
            "run_id": ctx.run_id,
            "scheduled_at": [ctx.scheduled_at.seconds, ctx.scheduled_at.nanoseconds],
            "fired_at": [ctx.fired_at.seconds, ctx.fired_at.nanoseconds],
            "attempt": ctx.attempt,
            "args": ctx.args,
            "runs": runs,
        })
        .to_string())
    }
}

export!(Legacy);
