//! Whether the store can take writes now: the disk may be full, the file
//! system read-only, the device failing.
//!
//! A scheduler must not run what it cannot record, so the store says when
//! it cannot write and the scheduler holds its fires until it can (they are
//! then treated like fires missed while the host was down: misfire grace
//! and coalescing decide). The store finds out by itself when writing works
//! again (SQLite's writer probes once a second), so nobody has to restart
//! the host after freeing space.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::watch;

/// The store's write health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    /// Writes succeed.
    Writable,
    /// Writes fail, for a reason that is the storage's, not the data's
    /// (disk full, read-only file system, I/O error).
    Unwritable {
        /// What the database said, for operators (for example `database or
        /// disk is full`).
        reason: String,
        /// When writes started failing.
        since: DateTime<Utc>,
    },
}

impl StoreHealth {
    /// Whether writes succeed.
    pub fn is_writable(&self) -> bool {
        matches!(self, Self::Writable)
    }
}

/// The shared, watchable health of one store: the backend sets it, the
/// scheduler and `/healthz` read it.
#[derive(Debug, Clone)]
pub struct HealthCell(Arc<watch::Sender<StoreHealth>>);

impl Default for HealthCell {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(StoreHealth::Writable)))
    }
}

impl HealthCell {
    /// The health now.
    pub fn get(&self) -> StoreHealth {
        self.0.borrow().clone()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<StoreHealth> {
        self.0.subscribe()
    }

    /// A write failed because of the storage. Logged once per outage (an
    /// error: the host stops firing until it clears); later failures keep
    /// the first reason's time but show the latest reason.
    pub fn unwritable(&self, reason: &str) {
        self.0.send_if_modified(|h| match h {
            StoreHealth::Writable => {
                tracing::error!(
                    reason,
                    "the job store cannot be written; firing is held (no run starts without \
                     its record) until writes succeed again, which is checked every second: \
                     free disk space or make the database writable"
                );
                *h = StoreHealth::Unwritable {
                    reason: reason.to_owned(),
                    since: Utc::now(),
                };
                true
            }
            StoreHealth::Unwritable { reason: old, .. } if old != reason => {
                reason.clone_into(old);
                true
            }
            StoreHealth::Unwritable { .. } => false,
        });
    }

    /// A write succeeded. Logged when it ends an outage.
    pub fn writable(&self) {
        self.0.send_if_modified(|h| match h {
            StoreHealth::Writable => false,
            StoreHealth::Unwritable { since, .. } => {
                let outage = (Utc::now() - *since).to_std().unwrap_or_default();
                tracing::warn!(
                    outage = %crate::duration::format(outage),
                    "the job store can be written again; firing resumes (fires due meanwhile \
                     are handled as missed: misfire_grace and coalesce decide)"
                );
                *h = StoreHealth::Writable;
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_keeps_its_start_and_ends_on_a_write() {
        let cell = HealthCell::default();
        let mut rx = cell.subscribe();
        assert!(cell.get().is_writable());
        cell.unwritable("database or disk is full");
        assert!(rx.has_changed().unwrap_or(false));
        rx.mark_unchanged();
        let StoreHealth::Unwritable { since, .. } = cell.get() else {
            panic!("unwritable")
        };
        cell.unwritable("database or disk is full");
        assert!(!rx.has_changed().unwrap_or(true), "same reason: no change");
        cell.unwritable("disk I/O error");
        assert_eq!(
            cell.get(),
            StoreHealth::Unwritable {
                reason: "disk I/O error".into(),
                since
            }
        );
        cell.writable();
        assert!(cell.get().is_writable());
    }
}
