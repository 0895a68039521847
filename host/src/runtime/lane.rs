//! The hook the scheduler's lanes use to see how much CPU a run takes.
//!
//! A run executing inside [`count_slices`] adds one to its counter for
//! every epoch slice it uses: each epoch tick (10 ms) that finds the guest
//! executing, where it yields to the async executor. A guest waiting in a
//! host call (a sleep, a request) uses none. The scheduler reads the
//! counter to move CPU-heavy runs off its fast lane (`scheduler/lane.rs`).
//!
//! A task-local rather than a field of [`super::RunRequest`], so callers
//! that run plugins directly (`plugin run`, the tests) need no change, and
//! the count follows the run's future wherever it is polled.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

tokio::task_local! {
    static SLICES: Arc<AtomicU32>;
}

/// Runs `future` with the epoch slices of every run inside it counted in
/// `counter`.
pub fn count_slices<F: Future>(
    counter: Arc<AtomicU32>,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<Arc<AtomicU32>, F> {
    SLICES.scope(counter, future)
}

/// The counter of the [`count_slices`] scope this is called in, if any.
pub(super) fn counter() -> Option<Arc<AtomicU32>> {
    SLICES.try_with(Arc::clone).ok()
}
