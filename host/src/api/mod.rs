//! The HTTP API: jobs, runs, plugins, events, health, metrics, cron
//! previews and the OpenAPI document, over the running [`Scheduler`].
//!
//! ```text
//! request ──▶ body limit ──▶ auth: the route's role (read, operate, admin;
//!             reads open unless --auth-reads) ──▶ Actor for the audit log
//!         ──▶ handler ──▶ Scheduler ──▶ JSON (or ApiError's one shape)
//! ```
//!
//! Handlers are thin: parse, call the scheduler, shape the answer. The
//! OpenAPI document is generated from the handlers' annotations and the
//! types' derives (`utoipa`), so it cannot drift from what is served
//! without a test noticing.

mod apply;
mod audit_log;
mod auth;
mod backfill;
mod calendars;
mod cluster;
mod cron;
mod dashboard;
mod error;
mod events;
mod export;
mod extract;
mod history;
mod import;
mod jobs;
mod manual;
mod metrics;
mod openapi;
mod pause;
mod plugins;
mod runs;
mod serve;
mod tokens;

pub use apply::{Applied, ApplyJobs, MAX_APPLY_JOBS};
pub use audit_log::{AuditPage, ListAudit};
pub use auth::{Actor, AuthInfo};
pub use cluster::{ClusterSettings, ClusterView, HostIdentity};
pub use cron::{CronExplain, CronFire, CronNext, DEFAULT_COUNT, MAX_COUNT};
pub use dashboard::DASHBOARD_DIR_ENV;
pub use error::{ApiError, ErrorBody};
pub use events::tagged;
pub use export::JobsDocument;
pub use import::{ChangedJob, Imported};
pub use metrics::Metrics;
pub use plugins::{MAX_PLUGIN_BODY, PluginAdmin, Pushed};
pub use serve::{ServeLimits, serve_with};
pub use tokens::{
    Credential, Role, SINGLE_TOKEN_NAME, Tokens, TokensFileError, check_name, hash_secret,
    new_secret, toml_entry,
};

use crate::audit::Change;
use crate::scheduler::Scheduler;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1 << 20;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The scheduler the API drives.
    pub scheduler: Scheduler,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The tokens the host accepts (`--token`, `--tokens`); `None`: no
    /// route needs one, and every change is recorded as `anonymous`.
    pub tokens: Option<Arc<Tokens>>,
    /// Also require a token (any role) for reads.
    pub auth_reads: bool,
    /// Cancelled at shutdown: ends open event streams, so a connected
    /// client cannot hold the shutdown up.
    pub stop: tokio_util::sync::CancellationToken,
    /// Who this host is, for `/cluster`.
    pub cluster: ClusterSettings,
    /// Plugin uploads (`PUT`/`DELETE /plugins/{name}`); `None`: refused.
    pub plugin_admin: Option<Arc<dyn PluginAdmin>>,
}

/// Records `changes` made by `actor` in the audit log (never fails; see
/// [`crate::audit`]). Every state-changing handler calls it after its
/// change is made.
async fn audit(state: &ApiState, actor: &Actor, changes: Vec<Change>) {
    crate::audit::record(state.scheduler.store().as_ref(), actor, changes).await;
}

/// The router with every route.
pub fn router(state: ApiState) -> Router {
    let needs = |role| auth::Needs {
        state: state.clone(),
        role,
    };
    // Job definitions, plugins and calendars: what a job may be granted
    // and when it runs.
    let admin = Router::new()
        .route("/jobs", post(jobs::create).put(apply::apply))
        .route("/jobs/import", post(import::import))
        .route(
            "/jobs/{id}",
            axum::routing::patch(jobs::modify).delete(jobs::delete),
        )
        .route(
            "/calendars/{name}",
            axum::routing::put(calendars::put).delete(calendars::delete),
        )
        .route(
            "/plugins/{name}",
            axum::routing::put(plugins::put)
                .delete(plugins::delete)
                .layer(DefaultBodyLimit::max(plugins::MAX_PLUGIN_BODY)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            needs(Role::Admin),
            auth::require,
        ));
    // Operating the jobs there are, without changing what they are.
    let operate = Router::new()
        .route("/jobs/{id}/pause", post(pause::pause))
        .route("/jobs/{id}/resume", post(pause::resume))
        .route("/jobs/{id}/run", post(manual::run_now))
        .route("/jobs/{id}/backfill", post(backfill::backfill))
        .route("/runs/{run_id}/replay", post(runs::replay))
        .route("/runs/{run_id}/stop", post(runs::stop))
        .route_layer(axum::middleware::from_fn_with_state(
            needs(Role::Operate),
            auth::require,
        ));
    let reads = Router::new()
        .route("/jobs", get(jobs::list))
        .route("/jobs/export", get(export::export))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/runs", get(runs::list))
        .route("/runs", get(history::list))
        .route("/stats", get(history::stats))
        .route("/runs/{run_id}", get(runs::show))
        .route("/runs/{run_id}/logs", get(runs::logs))
        .route("/plugins", get(plugins::list))
        .route("/plugins/{name}", get(plugins::show))
        .route("/events", get(events::stream))
        .route("/metrics", get(metrics::render))
        .route("/cluster", get(cluster::show))
        .route("/cron/next", get(cron::next))
        .route("/cron/explain", get(cron::explain))
        .route("/calendars", get(calendars::list))
        .route("/calendars/{name}", get(calendars::show))
        .route("/audit", get(audit_log::list))
        .route_layer(axum::middleware::from_fn_with_state(
            needs(Role::Read),
            auth::require,
        ));
    Router::new()
        .merge(admin)
        .merge(operate)
        .merge(reads)
        .route("/healthz", get(healthz))
        .route("/auth", get(auth::info))
        .route("/", get(dashboard::index))
        .route("/assets/{*path}", get(dashboard::asset))
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Liveness and write health: 200 while the scheduler runs and its store
/// can be written; 503 with the reason while the store cannot be written
/// (disk full, read-only file system), when no fire is taken (a run never
/// starts without its record) but reads are still answered.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses(
        (status = 200, description = "The host is up and its store can be written", body = Health),
        (status = 503, description = "The store cannot be written; firing is held until it can", body = Health),
    ))]
async fn healthz(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> (axum::http::StatusCode, axum::Json<Health>) {
    let (status, code, store) = match state.scheduler.store().health().get() {
        crate::store::StoreHealth::Writable => (
            "ok",
            axum::http::StatusCode::OK,
            StoreState {
                writable: true,
                reason: None,
                since: None,
            },
        ),
        crate::store::StoreHealth::Unwritable { reason, since } => (
            "store_unwritable",
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            StoreState {
                writable: false,
                reason: Some(reason),
                since: Some(since),
            },
        ),
    };
    (
        code,
        axum::Json(Health {
            status: status.into(),
            jobs: state.scheduler.job_count(),
            plugins: state.scheduler.plugins().loaded().len(),
            compiling: state.scheduler.plugins().compiling_count(),
            store,
        }),
    )
}

/// `/healthz`'s answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `store_unwritable` (with status 503) while the store cannot
    /// be written.
    pub status: String,
    /// Jobs defined.
    pub jobs: usize,
    /// Plugins loaded.
    pub plugins: usize,
    /// Plugin files being compiled in the background (their jobs wait;
    /// `GET /plugins` says which).
    pub compiling: usize,
    /// The job store's write health.
    pub store: StoreState,
}

/// The job store's write health in `/healthz`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StoreState {
    /// Whether writes succeed now.
    pub writable: bool,
    /// What the database said when writes began failing (for example
    /// `database or disk is full`); absent while writable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When writes began failing (RFC 3339); absent while writable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {}; GET /openapi.json lists them",
        uri.path()
    ))
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; GET /openapi.json lists the routes",
    )
}

/// Serves `router(state)` on `listener` with the default [`ServeLimits`]
/// until `shutdown` resolves.
///
/// # Errors
/// When the server fails (not for bad requests: those are answered).
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ServeLimits::default(), shutdown).await
}
