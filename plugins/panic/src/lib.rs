//! `panic`: panics on every run. A test plugin for the trapped outcome.

use wasmcron_guest::{Context, JobError, job};

#[job]
fn explode(ctx: Context) -> Result<(), JobError> {
    panic!("job {} exploded on purpose", ctx.job_id());
}
