//! `/plugins`: what the plugins folder holds, loaded or refused.

use super::extract::Path;
use super::{ApiError, ApiState};
use crate::plugin::PluginStatus;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// A plugin as the host sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginInfo {
    /// The name (the file stem).
    pub name: String,
    /// `loaded`, `compiling` or `refused`. A replacement of a loaded
    /// plugin that is compiling or was refused leaves it `loaded` (the old
    /// version serves), with `compiling` or `refused_reason` set.
    pub status: String,
    /// SHA-256 of the version in service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// `wasmcron:plugin/job@0.1.0` or `wasmcron:plugin/listener@0.1.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// File size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// `compiled`, `compiled-and-cached`, `cache` or `recompiled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compiled: Option<String>,
    /// Why the latest file was refused, and what to do about it (for a
    /// compile over its memory or time limit: which flag raises it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_reason: Option<String>,
    /// A newer file being compiled in the background, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compiling: Option<CompilingInfo>,
    /// The component's imports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
    /// Jobs using it.
    pub jobs: usize,
}

/// A plugin file being compiled.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompilingInfo {
    /// SHA-256 of the file being compiled.
    pub hash: String,
    /// When its compile was queued (RFC 3339).
    pub since: chrono::DateTime<chrono::Utc>,
}

fn info(state: &ApiState, status: PluginStatus) -> PluginInfo {
    let jobs = state
        .scheduler
        .jobs()
        .iter()
        .filter(|j| j.spec.plugin == status.name)
        .count();
    let loaded = status.loaded.as_ref();
    PluginInfo {
        name: status.name.clone(),
        status: if loaded.is_some() {
            "loaded"
        } else if status.compiling.is_some() {
            "compiling"
        } else {
            "refused"
        }
        .to_owned(),
        hash: loaded.map(|p| p.hash().as_str().to_owned()),
        world: loaded.map(|p| p.world().name().to_owned()),
        size: loaded.map(|p| p.size()),
        compiled: loaded.map(|p| p.compiled().as_str().to_owned()),
        refused_reason: status.refused,
        compiling: status.compiling.map(|c| CompilingInfo {
            hash: c.hash.as_str().to_owned(),
            since: c.since,
        }),
        imports: loaded.map(|p| p.imports().to_vec()).unwrap_or_default(),
        jobs,
    }
}

/// Every plugin, loaded or refused, by name.
#[utoipa::path(get, path = "/plugins", tag = "plugins",
    responses((status = 200, description = "Plugins by name", body = Vec<PluginInfo>)))]
pub(super) async fn list(State(state): State<ApiState>) -> Json<Vec<PluginInfo>> {
    let statuses = state.scheduler.plugins().statuses();
    Json(statuses.into_iter().map(|s| info(&state, s)).collect())
}

/// One plugin.
#[utoipa::path(get, path = "/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 200, description = "The plugin", body = PluginInfo),
        (status = 404, description = "No such plugin", body = super::ErrorBody),
    ))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<PluginInfo>, ApiError> {
    let status = state
        .scheduler
        .plugins()
        .statuses()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| {
            ApiError::not_found(format!("no plugin named '{name}' in the plugins folder"))
        })?;
    Ok(Json(info(&state, status)))
}
