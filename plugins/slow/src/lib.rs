//! `slow`: sleeps through the WASI clock, then returns.
//!
//! Args: `{"millis": 10000}` (default 10 s). A test plugin for timeouts and
//! `max_instances`.

use serde::Deserialize;
use wasmcron_guest::{Context, JobError, job, log};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Args {
    millis: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self { millis: 10_000 }
    }
}

#[job]
fn slow(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    log::info!("sleeping {} ms", args.millis);
    std::thread::sleep(std::time::Duration::from_millis(args.millis));
    Ok(format!("slept {} ms", args.millis))
}
