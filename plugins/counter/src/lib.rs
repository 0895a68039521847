//! `counter`: increments a counter in the job's kv store on every run.
//!
//! Output: `{"count": N, "in_memory": M}`. `count` persists across runs and
//! restarts through kv; `in_memory` counts calls within this instance and is
//! always 1, because every run gets a fresh sandbox (the tests rely on it).

use std::sync::atomic::{AtomicU64, Ordering};
use wasmcron_guest::{Context, JobError, job, kv, log};

static CALLS_IN_THIS_INSTANCE: AtomicU64 = AtomicU64::new(0);

#[job]
fn count(_ctx: Context) -> Result<serde_json::Value, JobError> {
    let in_memory = CALLS_IN_THIS_INSTANCE.fetch_add(1, Ordering::SeqCst) + 1;
    let count: u64 = kv::get_json("count")?.unwrap_or(0) + 1;
    kv::set_json("count", &count)?;
    log::info!("count is now {count}");
    Ok(serde_json::json!({ "count": count, "in_memory": in_memory }))
}
