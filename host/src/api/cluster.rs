//! `GET /cluster`: this host, and which host leads (issue 11).

use super::{ApiError, ApiState};
use crate::store::{HostRow, LeaderInfo};
use axum::Json;
use axum::extract::State;
use serde::Serialize;

/// Who this host is, as `/cluster` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostIdentity {
    /// A UUID chosen at each start.
    pub id: String,
    /// Its name (`--host-name`; by default the machine's name and the API
    /// port), recorded on the runs it runs.
    pub name: String,
}

/// What `/cluster` needs from the app: who this host is and what its
/// store shares.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This host.
    pub host: HostIdentity,
    /// `sqlite`, `memory` or `postgres`.
    pub backend: &'static str,
    /// The leader lease's TTL, when hosts share the store.
    pub lease_ttl: Option<std::time::Duration>,
}

/// `/cluster`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    /// `sqlite`, `memory` or `postgres`.
    pub backend: String,
    /// This host.
    pub host: HostIdentity,
    /// Whether this host evaluates the schedules now (always, on a store
    /// one host owns).
    pub is_leader: bool,
    /// The host holding the leader lease, when there is a lease and an
    /// unexpired holder; `null` otherwise.
    pub leader: Option<LeaderInfo>,
    /// The lease's time to live in milliseconds (`--lease`); absent on a
    /// store one host owns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_ttl_ms: Option<u64>,
    /// The hosts sharing the store, by their heartbeats (empty on a store
    /// one host owns); each with its plugins and hashes, and how many runs
    /// it is handling.
    pub hosts: Vec<HostRow>,
}

/// This host and the leader. On SQLite or memory the host is alone and
/// always leads; on PostgreSQL the lease decides.
#[utoipa::path(get, path = "/cluster", tag = "health",
    responses(
        (status = 200, description = "This host, the leader and the hosts", body = ClusterView),
        (status = 503, description = "The store cannot be read now", body = super::ErrorBody),
    ))]
pub(super) async fn show(State(state): State<ApiState>) -> Result<Json<ClusterView>, ApiError> {
    let leadership = state.scheduler.store().leadership().get();
    let hosts = state
        .scheduler
        .store()
        .hosts()
        .await
        .map_err(|e| ApiError::from(crate::scheduler::SchedulerError::from(e)))?;
    Ok(Json(ClusterView {
        backend: state.cluster.backend.to_owned(),
        host: state.cluster.host.clone(),
        is_leader: leadership.is_leader(),
        leader: leadership.leader().cloned(),
        lease_ttl_ms: state
            .cluster
            .lease_ttl
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        hosts,
    }))
}
