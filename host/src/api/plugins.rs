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
    /// The world it implements, with the package version it targets:
    /// `wasmcron:plugin/job@0.2.0` or `wasmcron:plugin/listener@0.2.0`
    /// (`@0.1.0` for a component built against 0.1.0).
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
    /// The JSON Schema its jobs' `args` must fit, as the plugin declares
    /// it (custom section `wasmcron:args-schema`); absent when it declares
    /// none, and then any `args` are accepted. A job whose `args` break it
    /// is refused with 422 naming the field (`args.name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub args_schema: Option<serde_json::Value>,
    /// Jobs using it.
    pub jobs: usize,
    /// On a store several hosts share: which version each live host has
    /// loaded (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostVersion>,
    /// Whether live hosts have different versions of it loaded (or one
    /// host has none while others have it): pushing it again through
    /// `PUT /plugins/{name}` brings every host to one version.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub divergent: bool,
}

/// The version of a plugin one host has loaded.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostVersion {
    /// The host's name.
    pub host: String,
    /// SHA-256 of the version it has loaded; `null` when it has none.
    pub hash: Option<String>,
}

/// Fills in each plugin's versions across the live hosts sharing the
/// store (nothing on a store one host owns).
async fn with_hosts(state: &ApiState, plugins: &mut [PluginInfo]) {
    let hosts = match state.scheduler.store().hosts().await {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(error = %e, "could not read the hosts for GET /plugins");
            return;
        }
    };
    let alive: Vec<_> = hosts.into_iter().filter(|h| h.alive).collect();
    if alive.len() < 2 {
        return;
    }
    for p in plugins {
        p.hosts = alive
            .iter()
            .map(|h| HostVersion {
                host: h.name.clone(),
                hash: h
                    .plugins
                    .iter()
                    .find(|v| v.name == p.name)
                    .map(|v| v.hash.clone()),
            })
            .collect();
        let first = p.hosts.first().map(|v| &v.hash);
        p.divergent = p.hosts.iter().any(|v| Some(&v.hash) != first);
    }
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
        world: loaded.map(|p| p.world_name().to_owned()),
        size: loaded.map(|p| p.size()),
        compiled: loaded.map(|p| p.compiled().as_str().to_owned()),
        refused_reason: status.refused,
        compiling: status.compiling.map(|c| CompilingInfo {
            hash: c.hash.as_str().to_owned(),
            since: c.since,
        }),
        imports: loaded.map(|p| p.imports().to_vec()).unwrap_or_default(),
        args_schema: loaded
            .and_then(|p| p.args_schema())
            .map(|s| s.document().clone()),
        jobs,
        hosts: Vec::new(),
        divergent: false,
    }
}

/// Every plugin, loaded or refused, by name.
#[utoipa::path(get, path = "/plugins", tag = "plugins",
    responses((status = 200, description = "Plugins by name", body = Vec<PluginInfo>)))]
pub(super) async fn list(State(state): State<ApiState>) -> Json<Vec<PluginInfo>> {
    let statuses = state.scheduler.plugins().statuses();
    let mut plugins: Vec<PluginInfo> = statuses.into_iter().map(|s| info(&state, s)).collect();
    with_hosts(&state, &mut plugins).await;
    Json(plugins)
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
    let mut plugin = [info(&state, status)];
    with_hosts(&state, &mut plugin).await;
    let [plugin] = plugin;
    Ok(Json(plugin))
}

/// Pushing and removing plugins through the API (`PUT` and `DELETE
/// /plugins/{name}`); the app provides it.
#[async_trait::async_trait]
pub trait PluginAdmin: Send + Sync + std::fmt::Debug {
    /// Checks `bytes` as the plugins folder would (size, header, a bounded
    /// compile, the world) and, when they pass, makes them plugin `name`
    /// on this host, and on every host sharing the store.
    ///
    /// # Errors
    /// 422 naming what is wrong with the name or the file; 503 when the
    /// store or the folder cannot take it.
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<Pushed, ApiError>;
    /// Removes plugin `name` (its file here, and on every host sharing the
    /// store). Its jobs wait for it.
    ///
    /// # Errors
    /// 404 when there is no such plugin file; 503 as for `put`.
    async fn remove(&self, name: &str) -> Result<(), ApiError>;
}

/// `PUT /plugins/{name}`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pushed {
    /// The plugin's name.
    pub name: String,
    /// SHA-256 of the file.
    pub hash: String,
    /// Its size in bytes.
    pub size: u64,
    /// The world it implements, with the package version it targets:
    /// `wasmcron:plugin/job@0.2.0` or `wasmcron:plugin/listener@0.2.0`
    /// (`@0.1.0` for a component built against 0.1.0).
    pub world: String,
    /// Whether every host sharing the store gets it (PostgreSQL), or only
    /// this host's folder (SQLite, memory).
    pub cluster: bool,
}

/// A `.wasm` file as a request body (its schema: a binary string).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(
    dead_code,
    reason = "only its OpenAPI schema is used; the handler takes the raw bytes"
)]
pub struct WasmFile(Vec<u8>);

/// The largest plugin body `PUT /plugins/{name}` takes.
pub const MAX_PLUGIN_BODY: usize = 64 << 20;

fn admin(state: &ApiState) -> Result<&std::sync::Arc<dyn PluginAdmin>, ApiError> {
    state.plugin_admin.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this host does not take plugin uploads",
        )
    })
}

/// Pushes a plugin: the body is the `.wasm` component. It gets the same
/// checks as a file dropped into the plugins folder (a bounded compile in
/// a child process included), so a file that would be refused never
/// reaches a host. On PostgreSQL it is kept in the database by its
/// SHA-256 and every host writes it into its plugins folder within about
/// a second; on SQLite it is written into this host's folder (atomically).
/// The folder then loads it as any file.
#[utoipa::path(put, path = "/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name: 1-128 of A-Z a-z 0-9 . _ -, not starting with a dot")),
    request_body(content = WasmFile, content_type = "application/octet-stream", description = "The component, at most 64 MiB (any content type is taken; the CLI sends application/wasm)"),
    responses(
        (status = 200, description = "Checked and pushed", body = Pushed),
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = super::ErrorBody),
        (status = 413, description = "Over 64 MiB", body = super::ErrorBody),
        (status = 422, description = "A bad name, or a file the plugins folder would refuse (the reason says why)", body = super::ErrorBody),
        (status = 503, description = "The store or the folder cannot take it now", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn put(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Pushed>, ApiError> {
    let admin = admin(&state)?;
    let pushed = admin.put(&name, body.to_vec()).await?;
    let change = crate::audit::Change::named(crate::audit::Action::PluginPushed, &name)
        .with_detail(serde_json::json!({ "hash": pushed.hash, "size": pushed.size }));
    super::audit(&state, &actor, vec![change]).await;
    Ok(Json(pushed))
}

/// Removes a plugin's file (on every host, on PostgreSQL). Its jobs stay
/// and wait for it.
#[utoipa::path(delete, path = "/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 422, description = "Not a plugin name", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = super::ErrorBody),
        (status = 404, description = "No such plugin file", body = super::ErrorBody),
        (status = 503, description = "The store or the folder cannot take it now", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(name): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    admin(&state)?.remove(&name).await?;
    let change = crate::audit::Change::named(crate::audit::Action::PluginRemoved, &name);
    super::audit(&state, &actor, vec![change]).await;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
