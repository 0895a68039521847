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

/// How long a plugin's versions must differ between live hosts before a
/// host warns: a push reaches every host within a second or two, and each
/// reports its plugins at its next heartbeat, so a normal push shows a
/// short-lived difference that is not worth a warning.
pub const DIVERGENCE_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// A change in how this host's version of a plugin compares with the
/// other live hosts' (see [`DivergenceWatch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// Other live hosts run another version than this host's, and have
    /// for [`DIVERGENCE_GRACE`]: the runs of its jobs that this host
    /// claims run this host's version.
    Differs {
        /// The plugin.
        plugin: String,
        /// This host's version (hash).
        mine: String,
        /// Each other host running another version: its name and hash.
        others: Vec<(String, String)>,
    },
    /// Every live host that has the plugin runs this host's version again.
    Agrees {
        /// The plugin.
        plugin: String,
    },
}

/// Tells a host when the plugins it runs differ from the versions the
/// other live hosts run (a file copied into one folder by hand), once per
/// change of versions rather than at every look: `GET /plugins` flags it
/// too, but the host running other code than its peers says so in its
/// own log.
#[derive(Debug, Default)]
pub struct DivergenceWatch {
    /// Per plugin that differs: which versions (this host's and the
    /// others', as one key), since when, and whether that was logged.
    seen: std::collections::HashMap<String, (String, std::time::Instant, bool)>,
}

impl DivergenceWatch {
    /// Reads the hosts of `store` and [checks](Self::check) this host's
    /// plugins (`mine`; its id is `me`) against theirs, unless this host
    /// is out of contact with the database (its last heartbeat is too old,
    /// or the store cannot be written): a read then would only wait for
    /// its timeout, holding a connection other work needs. The caller
    /// paces the calls.
    pub async fn look(&mut self, store: &dyn super::JobStore, me: &str, mine: &[PluginVersion]) {
        if !in_contact(store) {
            return;
        }
        match store.hosts().await {
            Ok(hosts) => {
                self.check(me, mine, &hosts, std::time::Instant::now());
            }
            Err(e) => tracing::debug!(error = %e, "could not read the hosts to compare plugins"),
        }
    }

    /// Compares this host's plugins (`mine`; the host's id is `me`) with
    /// the live hosts of `hosts` at `now`, and logs (and returns) what
    /// changed: a warning the first time a set of versions has differed
    /// for [`DIVERGENCE_GRACE`], a note when they agree again after one.
    pub fn check(
        &mut self,
        me: &str,
        mine: &[PluginVersion],
        hosts: &[HostRow],
        now: std::time::Instant,
    ) -> Vec<Divergence> {
        let mut changes = Vec::new();
        let mut differing = std::collections::HashSet::new();
        for plugin in mine {
            let mut others: Vec<(String, String)> = hosts
                .iter()
                .filter(|h| h.alive && h.id != me)
                .flat_map(|h| {
                    h.plugins
                        .iter()
                        .filter(|p| p.name == plugin.name && p.hash != plugin.hash)
                        .map(|p| (h.name.clone(), p.hash.clone()))
                })
                .collect();
            if others.is_empty() {
                continue;
            }
            others.sort();
            differing.insert(plugin.name.clone());
            let mut hashes: Vec<&str> = others.iter().map(|(_, h)| h.as_str()).collect();
            hashes.sort_unstable();
            hashes.dedup();
            let key = format!("{} {}", plugin.hash, hashes.join(" "));
            let entry = self
                .seen
                .entry(plugin.name.clone())
                .or_insert_with(|| (key.clone(), now, false));
            if entry.0 != key {
                *entry = (key, now, false);
            }
            if !entry.2 && now.duration_since(entry.1) >= DIVERGENCE_GRACE {
                entry.2 = true;
                let short = |h: &str| h[..h.len().min(12)].to_owned();
                let listed: Vec<String> = others
                    .iter()
                    .map(|(host, hash)| format!("{host} has {}", short(hash)))
                    .collect();
                tracing::warn!(
                    plugin = %plugin.name,
                    hash = %plugin.hash,
                    "plugin {} differs between hosts: this host runs version {}, while {}; \
                     the runs of its jobs that this host claims run this host's version. Push \
                     the plugin again (`wasmcron plugins push FILE`) so every host loads one \
                     version",
                    plugin.name,
                    short(&plugin.hash),
                    listed.join(", ")
                );
                changes.push(Divergence::Differs {
                    plugin: plugin.name.clone(),
                    mine: plugin.hash.clone(),
                    others,
                });
            }
        }
        let agreed: Vec<String> = self
            .seen
            .keys()
            .filter(|name| !differing.contains(*name))
            .cloned()
            .collect();
        for name in agreed {
            if let Some((_, _, true)) = self.seen.remove(&name) {
                tracing::info!(plugin = %name, "plugin {name}: every host runs one version again");
                changes.push(Divergence::Agrees { plugin: name });
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn host(id: &str, alive: bool, plugins: &[(&str, &str)]) -> HostRow {
        HostRow {
            id: id.to_owned(),
            name: format!("node-{id}"),
            address: String::new(),
            version: String::new(),
            started_at: DateTime::<Utc>::UNIX_EPOCH,
            last_heartbeat: DateTime::<Utc>::UNIX_EPOCH,
            alive,
            plugins: plugins
                .iter()
                .map(|(n, h)| PluginVersion {
                    name: (*n).to_owned(),
                    hash: (*h).to_owned(),
                })
                .collect(),
            runs_in_flight: 0,
        }
    }

    fn mine(hash: &str) -> Vec<PluginVersion> {
        vec![PluginVersion {
            name: "hello".into(),
            hash: hash.into(),
        }]
    }

    #[test]
    fn a_divergent_plugin_is_warned_about_once_per_change_of_versions() {
        let mut watch = DivergenceWatch::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let hosts = [
            host("a", true, &[("hello", "aaa")]),
            host("b", true, &[("hello", "bbb")]),
            host("c", false, &[("hello", "ccc")]),
        ];
        // Differing for less than the grace (a push on its way): quiet.
        assert!(watch.check("a", &mine("aaa"), &hosts, at(0)).is_empty());
        assert!(watch.check("a", &mine("aaa"), &hosts, at(10)).is_empty());
        // Past it: one warning naming the live host that differs (not the
        // stopped one, nor this host).
        let warned = watch.check("a", &mine("aaa"), &hosts, at(15));
        assert_eq!(
            warned,
            vec![Divergence::Differs {
                plugin: "hello".into(),
                mine: "aaa".into(),
                others: vec![("node-b".into(), "bbb".into())],
            }]
        );
        // Not again while the versions stay as they are.
        assert!(watch.check("a", &mine("aaa"), &hosts, at(60)).is_empty());
        // A new version here that still differs: a new warning after the
        // grace.
        assert!(watch.check("a", &mine("ddd"), &hosts, at(61)).is_empty());
        assert_eq!(watch.check("a", &mine("ddd"), &hosts, at(76)).len(), 1);
        // One version everywhere again: said once.
        let same = [host("b", true, &[("hello", "ddd")])];
        assert_eq!(
            watch.check("a", &mine("ddd"), &same, at(77)),
            vec![Divergence::Agrees {
                plugin: "hello".into()
            }]
        );
        assert!(watch.check("a", &mine("ddd"), &same, at(78)).is_empty());
    }

    #[test]
    fn a_difference_that_ends_within_the_grace_is_never_reported() {
        let mut watch = DivergenceWatch::default();
        let t0 = Instant::now();
        let other = [host("b", true, &[("hello", "new")])];
        assert!(watch.check("a", &mine("old"), &other, t0).is_empty());
        let caught_up = [host("b", true, &[("hello", "old")])];
        assert!(
            watch
                .check("a", &mine("old"), &caught_up, t0 + Duration::from_secs(2))
                .is_empty()
        );
        // A later difference starts its own grace.
        assert!(
            watch
                .check("a", &mine("old"), &other, t0 + Duration::from_secs(20))
                .is_empty()
        );
    }
}
