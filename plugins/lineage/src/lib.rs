//! `lineage`: reports why its run happened and, for a chained run, the run
//! that started it, as JSON. A test plugin for `wasmcron:plugin@0.2.0`'s
//! `cause` and `parent` (through the SDK).
//!
//! Output: `{"job_id", "run_id", "attempt", "cause", "parent"}`, where
//! `parent` is `null` or `{"job_id", "run_id", "outcome", "output",
//! "message"}`.
//!
//! Args (all optional):
//! - `fail`: fail permanently with this message (after nothing else);
//! - `fail_attempts`: fail, retryably, while the attempt is at most this.

use serde::Deserialize;
use serde_json::json;
use wasmcron_guest::{Context, JobError, job};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Args {
    fail: Option<String>,
    fail_attempts: u32,
}

#[job]
fn lineage(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    if let Some(message) = args.fail {
        return Err(JobError::permanent(message));
    }
    if ctx.attempt() <= args.fail_attempts {
        return Err(JobError::retryable(format!(
            "attempt {} fails on purpose",
            ctx.attempt()
        )));
    }
    let parent = ctx.parent().map(|p| {
        json!({
            "job_id": p.job_id,
            "run_id": p.run_id,
            "outcome": p.outcome,
            "output": p.output,
            "message": p.message,
        })
    });
    Ok(json!({
        "job_id": ctx.job_id(),
        "run_id": ctx.run_id(),
        "attempt": ctx.attempt(),
        "cause": ctx.cause().as_str(),
        "parent": parent,
    })
    .to_string())
}
