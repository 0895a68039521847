//! `hello`: logs and returns a greeting using its arguments.
//!
//! Args: `{"name": "world"}` (optional; defaults to "world"). Declared
//! with `#[job(args = Args)]`, so the host refuses a job whose args have
//! another field or a name that is not a string.

use serde::Deserialize;
use wasmcron_guest::{Context, JobArgs, JobError, job, log};

/// hello's arguments.
#[derive(Deserialize, Default, JobArgs)]
#[serde(default, deny_unknown_fields)]
struct Args {
    /// Who to greet ("world" when absent).
    name: Option<String>,
}

#[job(args = Args)]
fn hello(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    let name = args.name.as_deref().unwrap_or("world");
    log::info!(
        "saying hello to {name} (job {}, attempt {})",
        ctx.job_id(),
        ctx.attempt()
    );
    println!("hello from stdout");
    Ok(format!("Hello, {name}!"))
}
