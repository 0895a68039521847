//! `exit`: ends the run with `std::process::exit(code)` (WASI `exit`)
//! instead of returning. Args: `{"code": N}` (default 0). A test plugin for
//! how such a run is reported.

use serde::Deserialize;
use wasmcron_guest::{Context, JobError, job};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Args {
    code: i32,
}

#[job]
fn exit(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    println!("exiting with {}", args.code);
    std::process::exit(args.code)
}
