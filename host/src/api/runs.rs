//! `/jobs/{id}/runs`, `/runs/{run_id}` and replays.

use super::extract::{Path, Query};
use super::jobs::page_size;
use super::{ApiError, ApiState};
use crate::scheduler::SchedulerError;
use crate::store::RunRecord;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Paging for run history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListRuns {
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Runs to skip (default 0).
    pub offset: Option<usize>,
}

/// A page of a job's runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// This page.
    pub runs: Vec<RunRecord>,
    /// The page size used.
    pub limit: usize,
    /// The offset used.
    pub offset: usize,
}

/// A job's run history, newest first (with captured logs and outputs).
#[utoipa::path(get, path = "/jobs/{id}/runs", tag = "runs",
    params(("id" = String, Path, description = "Job id"), ListRuns),
    responses(
        (status = 200, description = "A page of runs", body = RunPage),
        (status = 400, description = "Bad query", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<ListRuns>,
) -> Result<Json<RunPage>, ApiError> {
    let limit = page_size(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    state.scheduler.job(&id)?;
    let runs = state.scheduler.runs_page(&id, limit, offset).await?;
    Ok(Json(RunPage {
        runs,
        limit,
        offset,
    }))
}

/// One run, with its captured logs and output.
#[utoipa::path(get, path = "/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path, description = "Run id")),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 200, description = "The run", body = RunRecord),
        (status = 404, description = "No such run", body = super::ErrorBody),
    ))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(run_id): Path<String>,
) -> Result<Json<RunRecord>, ApiError> {
    state
        .scheduler
        .run(&run_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("run '{run_id}' not found")))
}

/// Run a past run again: same job, same args, same `scheduled_at` and
/// attempt in its context, same plugin version.
#[utoipa::path(post, path = "/runs/{run_id}/replay", tag = "runs",
    params(("run_id" = String, Path, description = "Run id")),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 202, description = "The new run, recorded and queued", body = RunRecord),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such run", body = super::ErrorBody),
        (status = 409, description = "Cannot replay: job gone, never started, or plugin version no longer loaded", body = super::ErrorBody),
    ))]
pub(super) async fn replay(
    State(state): State<ApiState>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<RunRecord>), ApiError> {
    match state.scheduler.replay(&run_id).await {
        Ok(run) => Ok((StatusCode::ACCEPTED, Json(run))),
        Err(SchedulerError::RunNotFound(id)) => {
            Err(ApiError::not_found(format!("run '{id}' not found")))
        }
        Err(SchedulerError::CannotReplay(why)) => Err(ApiError::conflict(why)),
        Err(e) => Err(e.into()),
    }
}
