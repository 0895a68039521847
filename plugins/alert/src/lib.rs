//! `alert`: an error listener. Name it in a job's `listeners` and it hears
//! about the job's failed and missed runs: it logs each one and keeps the
//! last per job in its kv store (key `last/JOB`), counting them (`count`).

use wasmcron_guest::{Event, JobError, kv, listener, log};

#[listener]
fn alert(event: Event) -> Result<(), JobError> {
    log::warn!(
        "job {} run {:?} attempt {}: {} {}",
        event.job_id(),
        event.run_id(),
        event.attempt(),
        event.outcome(),
        event.message().unwrap_or("")
    );
    let record = serde_json::json!({
        "kind": event.kind_name(),
        "run_id": event.run_id(),
        "attempt": event.attempt(),
        "outcome": event.outcome(),
        "message": event.message(),
    });
    kv::set_json(&format!("last/{}", event.job_id()), &record)?;
    let count: u64 = kv::get_json("count")?.unwrap_or(0);
    kv::set_json("count", &(count + 1))?;
    Ok(())
}
