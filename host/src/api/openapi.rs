//! `GET /openapi.json`: generated from the handlers' `#[utoipa::path]`
//! annotations and the types' `ToSchema` derives (which read the same
//! serde attributes the server parses with).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wasmcron",
        description = "Scheduled jobs as sandboxed WebAssembly components. Errors always have the shape \
                       {\"error\": {\"code\", \"message\", \"field\"}}. When the host runs with --token or --tokens, \
                       state-changing routes (and, with --auth-reads, all but /healthz, /auth and /openapi.json) \
                       need `Authorization: Bearer TOKEN` (401 without a known token). Tokens have roles: `read` \
                       (GET routes and the event stream), `operate` (plus pause, resume, run now, backfill, replay, stop), \
                       `admin` (everything: jobs, plugins, calendars); a token whose role is too low is answered 403 \
                       naming the role needed. GET /auth says what a token may do. The dashboard is served at / (not part of this API)."
    ),
    paths(
        super::jobs::create,
        super::apply::apply,
        super::export::export,
        super::import::import,
        super::jobs::list,
        super::jobs::show,
        super::jobs::modify,
        super::jobs::delete,
        super::pause::pause,
        super::pause::resume,
        super::manual::run_now,
        super::backfill::backfill,
        super::runs::list,
        super::history::list,
        super::history::stats,
        super::runs::show,
        super::runs::logs,
        super::runs::replay,
        super::runs::stop,
        super::plugins::list,
        super::plugins::show,
        super::events::stream,
        super::metrics::render,
        super::healthz,
        super::auth::info,
        super::cluster::show,
        super::cron::next,
        super::cron::explain,
        super::calendars::list,
        super::calendars::show,
        super::calendars::put,
        super::calendars::delete,
        super::plugins::put,
        super::plugins::delete,
        super::audit_log::list,
        document,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "jobs", description = "Define, change and trigger jobs"),
        (name = "runs", description = "Run history, logs and outputs"),
        (name = "plugins", description = "The plugins folder"),
        (name = "events", description = "Live events"),
        (name = "calendars", description = "Named calendars: days on which the jobs naming them do not fire"),
        (name = "cron", description = "Cron expressions previewed: fire times and words"),
        (name = "audit", description = "Who changed what: the audit log"),
        (name = "health", description = "Liveness, metrics and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object)))]
pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
