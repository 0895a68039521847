//! Which host may fire: the leader lease (issue 11).
//!
//! On a store one host owns (SQLite's file lock, memory) that host always
//! leads. On PostgreSQL, hosts take a lease held in the database: one row
//! with a **term** (the fencing token, one more for each new leader), the
//! holder and an expiry on the database's clock. The holder renews it every
//! third of its TTL; another host takes it once it has expired (a leader
//! that died) or been released (a clean shutdown). Every fire the leader
//! records carries its term and the database refuses it unless that term
//! is current and unexpired, so a leader that lost its lease (a paused
//! process, a partition) cannot fire even before it notices.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::watch;

/// The host holding the lease, as the lease row says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LeaderInfo {
    /// Its host id (a UUID chosen at each start).
    pub host_id: String,
    /// Its name (`--host-name`).
    pub name: String,
    /// Its term: the fencing token, one more for each new leader.
    pub term: i64,
    /// When its lease runs out unless renewed (database clock).
    pub expires_at: DateTime<Utc>,
}

/// This host's part in the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// The store has one host, which always fires (SQLite, memory).
    Sole,
    /// This host holds the lease under `term`.
    Leader {
        /// The lease row as taken or last renewed.
        info: LeaderInfo,
    },
    /// Another host leads, or none does right now.
    Follower {
        /// The leader as last read, if any holds an unexpired lease.
        leader: Option<LeaderInfo>,
    },
}

impl Leadership {
    /// Whether this host may fire now.
    pub fn is_leader(&self) -> bool {
        matches!(self, Self::Sole | Self::Leader { .. })
    }

    /// The fencing term this host fires under (`None`: not leading, or a
    /// sole host, which needs none).
    pub fn term(&self) -> Option<i64> {
        match self {
            Self::Leader { info } => Some(info.term),
            _ => None,
        }
    }

    /// The leader, when there is a lease (not for a sole host).
    pub fn leader(&self) -> Option<&LeaderInfo> {
        match self {
            Self::Sole => None,
            Self::Leader { info } => Some(info),
            Self::Follower { leader } => leader.as_ref(),
        }
    }
}

/// The shared, watchable leadership of one host: the store's lease task
/// sets it; the scheduler fires only while it says so, and `/cluster`
/// shows it.
#[derive(Debug, Clone)]
pub struct LeaderCell(Arc<watch::Sender<Leadership>>);

impl Default for LeaderCell {
    /// A sole host: always leading.
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(Leadership::Sole)))
    }
}

impl LeaderCell {
    /// A cell that starts as a follower with no known leader (a host on a
    /// shared database, before its first look at the lease).
    pub fn follower() -> Self {
        Self(Arc::new(watch::Sender::new(Leadership::Follower {
            leader: None,
        })))
    }

    /// The leadership now.
    pub fn get(&self) -> Leadership {
        self.0.borrow().clone()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.0.subscribe()
    }

    /// Sets it, telling watchers only when it changed.
    pub fn set(&self, now: Leadership) {
        self.0.send_if_modified(|l| {
            if *l == now {
                false
            } else {
                *l = now;
                true
            }
        });
    }
}
