//! `GET /audit`: the audit log, newest first, paged by cursor.

use super::extract::Query;
use super::{ApiError, ApiState};
use crate::store::{AuditEntry, AuditQuery};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /audit`'s query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAudit {
    /// Only changes to this job (and to its runs).
    pub job: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Only entries older than this id: the previous page's
    /// `next_before`. Pages do not shift as changes are recorded.
    pub before: Option<i64>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// This page, newest first.
    pub entries: Vec<AuditEntry>,
    /// The page size used.
    pub limit: usize,
    /// Pass as `before` for the next (older) page; `null` on the last
    /// page.
    pub next_before: Option<i64>,
}

/// The audit log: who changed what, when and from where, newest first.
/// Every state change is recorded (jobs, pauses, runs started by hand,
/// backfills, replays, stops, plugins, calendars), by the token's name
/// (`token` for `--token`, `anonymous` without tokens, `config` for the
/// jobs file, `sidecar` for a plugin's sidecar). Kept for
/// `--audit-keep-for` (default 90 days); on PostgreSQL one log for every
/// host.
#[utoipa::path(get, path = "/audit", tag = "audit", params(ListAudit),
    responses(
        (status = 200, description = "A page of the audit log, newest first", body = AuditPage),
        (status = 400, description = "Bad query: limit out of range, before not an integer, an unknown parameter", body = super::ErrorBody),
        (status = 401, description = "Token required (with --auth-reads)", body = super::ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<ApiState>,
    Query(q): Query<ListAudit>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = super::jobs::page_size(q.limit)?;
    if let Some(before) = q.before
        && before < 1
    {
        return Err(ApiError::bad_query(
            "before",
            format!("before {before}: audit ids start at 1; pass a page's next_before"),
        ));
    }
    // One more than asked, to know whether an older page exists.
    let mut entries = state
        .scheduler
        .store()
        .audit(&AuditQuery {
            job: q.job,
            before: q.before,
            limit: limit + 1,
        })
        .await
        .map_err(|e| ApiError::from(crate::scheduler::SchedulerError::Store(e)))?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next_before = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        limit,
        next_before,
    }))
}
