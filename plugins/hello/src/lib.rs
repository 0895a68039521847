//! `hello`: logs and returns a greeting using its arguments.
//!
//! Args: `{"name": "world"}` (optional; defaults to "world").

use serde::Deserialize;
use wasmcron_guest::{Context, JobError, job, log};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Args {
    name: Option<String>,
}

#[job]
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
