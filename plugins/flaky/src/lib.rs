//! `flaky`: fails with a retryable error on odd attempts and succeeds on even
//! ones. A test plugin for retries.

use wasmcron_guest::{Context, JobError, job};

#[job]
fn flaky(ctx: Context) -> Result<String, JobError> {
    if ctx.attempt() % 2 == 1 {
        Err(JobError::retryable(format!(
            "attempt {} failed on purpose",
            ctx.attempt()
        )))
    } else {
        Ok(format!("succeeded on attempt {}", ctx.attempt()))
    }
}
