//! The contact watchdog (issue 11): on a store several hosts share, a host
//! whose heartbeat has not reached the database for TTL − TTL/5 stops the
//! guests it is running, before the leader can take it for stopped,
//! record its runs `interrupted` and retry them on another host. Without
//! this a host cut off from the database (a partition, a paused VM) would
//! keep running a fire's guest while its retry runs elsewhere.
//!
//! The deadline comes from the lease task ([`crate::store::LeaderCell`]):
//! it is measured from when the last good heartbeat was sent, on this
//! host's clock, so it passes before the database's TTL does. A stopped
//! run's end is written once the database answers again, unless the
//! leader's sweep recorded it first (then it is refused, see
//! [`crate::store::Write::End`]).

use super::Inner;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The note of a run stopped by the watchdog.
pub(super) const NOTE: &str = "this host lost contact with the database: the run was stopped \
                               so that another host can retry it";

/// The token the guests this host starts now stop on: cancelled at the end
/// of the shutdown grace, or when contact is lost.
pub(super) fn guest_stop(inner: &Inner) -> CancellationToken {
    inner
        .contact_stop
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Watches the heartbeat deadline until the runs stop.
pub(super) async fn watchdog(inner: Arc<Inner>) {
    let mut beats = inner.store.leadership().heartbeats();
    loop {
        let deadline = *beats.borrow_and_update();
        let lapsed = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = beats.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = lapsed => {}
            () = inner.stop_runs.cancelled() => return,
        }
        // No heartbeat went in for too long: stop what runs here, and
        // start later runs under a fresh token.
        let stopped = {
            let mut stop = inner
                .contact_stop
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let old = std::mem::replace(&mut *stop, inner.stop_runs.child_token());
            old.cancel();
            inner.runs_here.load(std::sync::atomic::Ordering::Relaxed)
        };
        tracing::warn!(
            runs = stopped,
            "lost contact with the database: no heartbeat went in for most of the lease TTL; \
             stopping this host's runs so that another host can retry them"
        );
        // Until the next heartbeat goes in.
        tokio::select! {
            changed = beats.changed() => {
                if changed.is_err() {
                    return;
                }
                tracing::info!("in contact with the database again");
            }
            () = inner.stop_runs.cancelled() => return,
        }
    }
}
