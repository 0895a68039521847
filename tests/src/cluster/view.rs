//! `GET /cluster` as the tests read it, and what "the hosts agree on one
//! leader" means.

use serde::Deserialize;

/// One host as `GET /cluster` describes itself.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct HostId {
    /// Its id (a UUID, new at each start).
    pub id: String,
    /// Its name, as written in `runs.host`.
    pub name: String,
}

/// The lease holder as a host sees it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Leader {
    /// The leader's host id.
    pub host_id: String,
    /// The leader's name.
    pub name: String,
    /// The fencing term: one more at each change of leader.
    pub term: i64,
    /// When the lease runs out unless renewed (RFC 3339).
    pub expires_at: String,
}

/// A host's answer to `GET /cluster`.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterView {
    /// `postgres` for these tests.
    pub backend: String,
    /// The host answering.
    pub host: HostId,
    /// Whether it holds the lease.
    pub is_leader: bool,
    /// Who holds the lease, as far as it knows.
    pub leader: Option<Leader>,
    /// The lease's time to live.
    pub lease_ttl_ms: i64,
}

impl ClusterView {
    /// `(host_id, term)` of the leader it names.
    pub fn leader_key(&self) -> Option<(String, i64)> {
        self.leader.as_ref().map(|l| (l.host_id.clone(), l.term))
    }
}

/// The one leader `views` agree on.
pub(super) fn agreed_leader(
    views: &[(usize, Result<ClusterView, String>)],
) -> Result<(usize, Leader), String> {
    let mut leaders = Vec::new();
    let mut named = Vec::new();
    for (i, view) in views {
        let v = view.as_ref().map_err(Clone::clone)?;
        if v.backend != "postgres" {
            return Err(format!("host {i} says backend {:?}", v.backend));
        }
        if v.is_leader {
            leaders.push((*i, v));
        }
        named.push((*i, v.leader_key()));
    }
    let [(i, v)] = leaders.as_slice() else {
        let which: Vec<usize> = leaders.iter().map(|(i, _)| *i).collect();
        return Err(format!("{} hosts say is_leader: {which:?}", which.len()));
    };
    let leader = v
        .leader
        .clone()
        .ok_or_else(|| format!("host {i} says is_leader but names no leader"))?;
    if leader.host_id != v.host.id {
        return Err(format!(
            "host {i} says is_leader but names {} (it is {})",
            leader.host_id, v.host.id
        ));
    }
    let key = Some((leader.host_id.clone(), leader.term));
    if let Some((j, other)) = named.iter().find(|(_, k)| *k != key) {
        return Err(format!(
            "host {i} leads as {key:?} but host {j} names {other:?}"
        ));
    }
    Ok((*i, leader))
}
