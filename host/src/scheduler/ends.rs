//! A burst's ends wait for its starts.
//!
//! What a fire is late by is the time until its guest starts. In an
//! aligned burst (thousands of jobs due on one second) the runs that start
//! first also end first, while most of the burst still waits for a
//! worker; recording each end at once (the store write, the events, the
//! retry and chain decisions) took the CPU and the store's writer those
//! starts were waiting for (`execute::finish` was a tenth of a
//! 10,000-job burst's samples in `perf`, the events it sends more;
//! docs/BENCHMARKS.md, "Aligned bursts", seventh round). So a finished run
//! whose worker is already free waits to record its end while other runs
//! are waiting to start, and records it once they all have, or after at
//! most [`SchedulerConfig::max_end_wait`](super::SchedulerConfig) (500 ms
//! by default); on SQLite the waiting ends then go to the store together
//! and share its commits.
//!
//! What waits is only the bookkeeping: the guest is done and its sandbox
//! dropped, and its worker went to the next run when the guest returned
//! (lane.rs). The end's times are the real ones (taken before the wait).
//! While an end waits its run still holds one of its job's
//! `max_instances` slots, so it never waits past its job's next fire (less
//! [`MARGIN`]), nor at all when runs of its job are queued behind it. On a
//! store several hosts share it does not wait: the other hosts read the
//! stored row when they claim.

use super::Inner;
use crate::store::RunRecord;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How long before its job's next fire a waiting end is recorded anyway.
const MARGIN: Duration = Duration::from_millis(50);

/// Tells the ends when no run is waiting to start.
#[derive(Debug, Default)]
pub(super) struct Gate {
    /// Batches of fires decided by the timer and not yet committed and
    /// handed on by the committer (fire.rs).
    uncommitted: AtomicUsize,
    quiet: Notify,
}

impl Gate {
    /// `n` batches of fires are being decided (counted before the first
    /// goes to the committer).
    pub(super) fn decided(&self, n: usize) {
        self.uncommitted.fetch_add(n, Ordering::AcqRel);
    }

    /// `n` batches were committed and their runs handed on.
    pub(super) fn committed(&self, inner: &Inner, n: usize) {
        self.uncommitted.fetch_sub(n, Ordering::AcqRel);
        self.maybe_quiet(inner);
    }

    /// Wakes the waiting ends if no run waits to start any more. Called
    /// wherever a waiting run moves on; a wake-up missed here costs only
    /// the wait's bound.
    pub(super) fn maybe_quiet(&self, inner: &Inner) {
        if !busy(inner) {
            self.quiet.notify_waiters();
        }
    }
}

/// Whether runs are waiting to start on this host: fires decided and not
/// yet committed, runs recorded pending and waiting for their start to
/// be written (starter.rs), or runs recorded running ahead of a worker
/// and waiting for one (execute.rs).
fn busy(inner: &Inner) -> bool {
    inner.ends.uncommitted.load(Ordering::Acquire) > 0
        || !inner.starts.is_empty()
        || inner.runs_ahead()
}

/// Waits, for `run`, which has just finished, until no run waits to
/// start: at most [`SchedulerConfig::max_end_wait`](super::SchedulerConfig),
/// never past its job's next fire less [`MARGIN`], not at all when its job
/// has runs queued or the store is shared, and no longer once the
/// scheduler stops firing.
pub(super) async fn after_starts(inner: &Inner, run: &RunRecord) {
    if inner.shared {
        return;
    }
    let quiet = inner.ends.quiet.notified();
    tokio::pin!(quiet);
    // Registered before looking, so a wake-up between the two is not lost.
    quiet.as_mut().enable();
    if !busy(inner) || inner.stop_firing.is_cancelled() {
        return;
    }
    let next = {
        let mut state = inner.lock();
        match state.entry_for(run) {
            Some(entry) if entry.queued.len() > 0 => return,
            Some(entry) => entry.next_run,
            None => None,
        }
    };
    let mut wait = inner.config.max_end_wait;
    if let Some(next) = next {
        let until = (next - inner.clock.now()).to_std().unwrap_or_default();
        wait = wait.min(until.saturating_sub(MARGIN));
    }
    if wait.is_zero() {
        return;
    }
    tokio::select! {
        () = quiet => {}
        () = tokio::time::sleep(wait) => {}
        () = inner.stop_firing.cancelled() => {}
    }
}
