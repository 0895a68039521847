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
///
/// It also carries the host's **heartbeat deadline** on a shared store:
/// the instant (this host's clock) until which its last heartbeat the
/// database took keeps its runs its own. Other hosts record a host's
/// running runs `interrupted`, and retry them, once its heartbeat is a
/// lease TTL old on the database's clock; the deadline is TTL − TTL/5 after
/// the heartbeat was *sent*, so a host cut off from the database stops its
/// guests before that can happen (the scheduler's contact watchdog), and a
/// fire's guest never runs on two hosts at once.
#[derive(Debug, Clone)]
pub struct LeaderCell {
    lead: Arc<watch::Sender<Leadership>>,
    heartbeat: Arc<watch::Sender<Option<tokio::time::Instant>>>,
}

impl Default for LeaderCell {
    /// A sole host: always leading.
    fn default() -> Self {
        Self::with(Leadership::Sole)
    }
}

impl LeaderCell {
    fn with(lead: Leadership) -> Self {
        Self {
            lead: Arc::new(watch::Sender::new(lead)),
            heartbeat: Arc::new(watch::Sender::new(None)),
        }
    }

    /// A cell that starts as a follower with no known leader (a host on a
    /// shared database, before its first look at the lease).
    pub fn follower() -> Self {
        Self::with(Leadership::Follower { leader: None })
    }

    /// The leadership now.
    pub fn get(&self) -> Leadership {
        self.lead.borrow().clone()
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.lead.subscribe()
    }

    /// Moves the heartbeat deadline (see the type's docs) after a
    /// heartbeat the database took.
    pub fn heartbeat_until(&self, until: tokio::time::Instant) {
        self.heartbeat.send_replace(Some(until));
    }

    /// The heartbeat deadline's receiver: `None` until the first
    /// heartbeat, and always on a store one host owns.
    pub fn heartbeats(&self) -> watch::Receiver<Option<tokio::time::Instant>> {
        self.heartbeat.subscribe()
    }

    /// Sets it, telling watchers only when it changed.
    pub fn set(&self, now: Leadership) {
        self.lead.send_if_modified(|l| {
            if *l == now {
                false
            } else {
                *l = now;
                true
            }
        });
    }
}

/// A plugin version a host has loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PluginVersion {
    /// The plugin's name.
    pub name: String,
    /// Its content hash (SHA-256, hex).
    pub hash: String,
}

/// What a host reports of itself at each heartbeat, kept current by the
/// app (its plugins and runs change while it runs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostReport {
    /// The plugins it has loaded.
    pub plugins: Vec<PluginVersion>,
    /// Runs it is handling (waiting for a worker or running).
    pub in_flight: u64,
}

/// A host as the shared store's `hosts` table shows it (`GET /cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HostRow {
    /// A UUID chosen at each start.
    pub id: String,
    /// Its name (`--host-name`).
    pub name: String,
    /// Its API address, when it serves one.
    pub address: String,
    /// Its wasmcron version.
    pub version: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (database clock).
    pub last_heartbeat: DateTime<Utc>,
    /// Whether that heartbeat is within the lease's TTL: a host that is
    /// not alive has its running runs recorded interrupted.
    pub alive: bool,
    /// The plugins it has loaded, with their hashes.
    pub plugins: Vec<PluginVersion>,
    /// Runs it is handling.
    pub runs_in_flight: u64,
}

/// Whether this host is in contact with a shared store's database: its
/// last heartbeat went in recently enough (see [`LeaderCell`]) and writes
/// work. Reads made out of contact only wait for their timeout; callers
/// with an answer of their own (the scheduler's copy) skip them. Always
/// true of a store one host owns that can be written.
pub fn in_contact(store: &dyn super::JobStore) -> bool {
    let leadership = store.leadership();
    let beats = leadership.heartbeats();
    let recent = match *beats.borrow() {
        Some(until) => until > tokio::time::Instant::now(),
        None => !store.shared(),
    };
    recent && store.health().get().is_writable()
}
