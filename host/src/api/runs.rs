//! `/jobs/{id}/runs`, `/runs/{run_id}`, `/runs/{run_id}/logs` and replays.
//!
//! Every answer here is bounded whatever the guests logged: lists carry run
//! summaries without logs (cut at [`crate::store::RUN_PAGE_BYTES`]), a run
//! comes with its first page of logs, and the rest of its logs are read a
//! page at a time (at most 1,000 records and
//! [`crate::store::LOG_PAGE_BYTES`] each). Before, reading a flooded job's
//! history answered 867 MB in 65 s (issue 10).

use super::extract::{Path, Query};
use super::jobs::{page_size, page_size_or};
use super::{ApiError, ApiState};
use crate::runtime::LogRecord;
use crate::scheduler::SchedulerError;
use crate::store::{LogPage, RunSummary, RunsFrom};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Most log records a run carries inline, and most a logs page holds.
pub const MAX_LOG_PAGE: usize = 1000;

/// Paging for run history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListRuns {
    /// Page size, 1-1000 (default 100); a page is also cut at about 4 MiB.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Runs to skip (default 0). Pages shift when runs are recorded
    /// meanwhile; `before` does not.
    pub offset: Option<usize>,
    /// Cursor: only the runs after this run in the listing (the previous
    /// page's `next_before`), so pages stay put as runs arrive. Not with
    /// `offset`.
    pub before: Option<String>,
}

/// Where a page starts, from `offset` and `before` (at most one of them).
///
/// # Errors
/// 400 at `before` when both are given.
pub(super) fn runs_from(
    offset: Option<usize>,
    before: Option<String>,
) -> Result<RunsFrom, ApiError> {
    match (offset, before) {
        (Some(_), Some(_)) => Err(ApiError::bad_query(
            "before",
            "give either offset or before, not both; before (the previous page's next_before) \
             keeps pages stable as runs arrive",
        )),
        (_, Some(before)) if before.is_empty() => Err(ApiError::bad_query(
            "before",
            "before is empty; give a run id (the previous page's next_before)",
        )),
        (_, Some(before)) => Ok(RunsFrom::Before(before)),
        (offset, None) => Ok(RunsFrom::Offset(offset.unwrap_or(0))),
    }
}

/// A page of runs, newest first, without their logs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// This page.
    pub runs: Vec<RunSummary>,
    /// The page size asked for (a page holds fewer when cut by size).
    pub limit: usize,
    /// The offset used (0 when paging by `before`).
    pub offset: usize,
    /// The offset of the next page; `null` when this is the last, or when
    /// paging by `before`.
    pub next_offset: Option<usize>,
    /// The cursor used, if any.
    pub before: Option<String>,
    /// The next page's cursor (`?before=` this): the id of the last run
    /// here; `null` when this is the last page.
    pub next_before: Option<String>,
}

impl RunPage {
    /// The answer for `page`, read with `limit` from `from`.
    pub(super) fn new(page: crate::store::RunList, limit: usize, from: RunsFrom) -> Self {
        let next_before = page
            .more
            .then(|| page.runs.last().map(|r| r.run_id.clone()))
            .flatten();
        let (offset, next_offset, before) = match from {
            RunsFrom::Offset(offset) => {
                (offset, page.more.then_some(offset + page.runs.len()), None)
            }
            RunsFrom::Before(before) => (0, None, Some(before)),
        };
        Self {
            runs: page.runs,
            limit,
            offset,
            next_offset,
            before,
            next_before,
        }
    }
}

/// A job's run history, newest first: summaries without logs (each says
/// how many log records it has; read them with `GET /runs/{run_id}/logs`).
#[utoipa::path(get, path = "/jobs/{id}/runs", tag = "runs",
    params(("id" = String, Path, description = "Job id"), ListRuns),
    responses(
        (status = 200, description = "A page of runs", body = RunPage),
        (status = 400, description = "Bad query; or `before` names no stored run of this job", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<ListRuns>,
) -> Result<Json<RunPage>, ApiError> {
    let limit = page_size(q.limit)?;
    let from = runs_from(q.offset, q.before)?;
    state.scheduler.job(&id)?;
    if let Some(cursor) = from.before() {
        // A job's runs are ordered by when they were scheduled, so the
        // cursor must be a run the store still has, of this job: say so
        // rather than answer an empty page that looks like the end.
        let run = state
            .scheduler
            .store()
            .run_summary(cursor)
            .await
            .map_err(SchedulerError::from)?;
        match run {
            Some(run) if run.job_id == id => {}
            Some(run) => {
                return Err(ApiError::bad_query(
                    "before",
                    format!(
                        "run {cursor:?} is a run of job {:?}, not of {id:?}; page with the \
                         next_before of this job's own runs",
                        run.job_id
                    ),
                ));
            }
            None => {
                return Err(ApiError::bad_query(
                    "before",
                    format!(
                        "run {cursor:?} is not stored (never, or pruned since by keep_runs or \
                         keep_for); start again from the first page, without before"
                    ),
                ));
            }
        }
    }
    let page = state
        .scheduler
        .store()
        .run_summaries(&id, limit, from.clone())
        .await
        .map_err(SchedulerError::from)?;
    Ok(Json(RunPage::new(page, limit, from)))
}

/// One run with its first page of logs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunSummary,
    /// Its first log records: up to 1,000 and about 1 MiB.
    pub logs: Vec<LogRecord>,
    /// Where `GET /runs/{run_id}/logs?offset=` continues; `null` when
    /// `logs` holds them all.
    pub logs_next_offset: Option<u64>,
}

/// One run, with its output and (up to a page of) its logs.
#[utoipa::path(get, path = "/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path, description = "Run id")),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 200, description = "The run", body = RunDetail),
        (status = 404, description = "No such run", body = super::ErrorBody),
    ))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(run_id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let store = state.scheduler.store();
    let not_found = || ApiError::not_found(format!("run '{run_id}' not found"));
    let run = store
        .run_summary(&run_id)
        .await
        .map_err(SchedulerError::from)?
        .ok_or_else(not_found)?;
    // A run going on this host shows its logs so far; else the stored
    // ones (a run pruned in between has none).
    let logs = match state.scheduler.live_logs(&run_id, 0, MAX_LOG_PAGE) {
        Some(live) => Some(live),
        None => store
            .run_logs(&run_id, 0, MAX_LOG_PAGE)
            .await
            .map_err(SchedulerError::from)?,
    };
    let (logs, logs_next_offset) = logs.map_or((Vec::new(), None), |p| (p.logs, p.next_offset));
    Ok(Json(RunDetail {
        run,
        logs,
        logs_next_offset,
    }))
}

/// Paging for a run's logs.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListLogs {
    /// Records per page, 1-1000 (default 1000); a page is also cut at
    /// about 1 MiB.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Records to skip (default 0).
    pub offset: Option<usize>,
}

/// A run's captured logs, a page at a time, in the order captured. While
/// the run goes on the host asked, its logs so far (secrets redacted; a
/// line not yet ended by a newline shows once it is); on another host of
/// a cluster, they show once it ends.
#[utoipa::path(get, path = "/runs/{run_id}/logs", tag = "runs",
    params(("run_id" = String, Path, description = "Run id"), ListLogs),
    responses(
        (status = 200, description = "A page of log records", body = LogPage),
        (status = 400, description = "Bad query", body = super::ErrorBody),
        (status = 404, description = "No such run", body = super::ErrorBody),
    ))]
pub(super) async fn logs(
    State(state): State<ApiState>,
    Path(run_id): Path<String>,
    Query(q): Query<ListLogs>,
) -> Result<Json<LogPage>, ApiError> {
    let limit = page_size_or(q.limit, MAX_LOG_PAGE)?;
    let offset = q.offset.unwrap_or(0);
    if let Some(live) = state.scheduler.live_logs(&run_id, offset, limit) {
        return Ok(Json(live));
    }
    state
        .scheduler
        .store()
        .run_logs(&run_id, offset, limit)
        .await
        .map_err(SchedulerError::from)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("run '{run_id}' not found")))
}

/// Run a past run again: same job, same args, same `scheduled_at` and
/// attempt in its context, same plugin version.
#[utoipa::path(post, path = "/runs/{run_id}/replay", tag = "runs",
    params(("run_id" = String, Path, description = "Run id")),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 202, description = "The new run, recorded and queued", body = super::manual::SubmittedRun),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such run", body = super::ErrorBody),
        (status = 409, description = "Cannot replay: job gone, never started, or plugin version no longer loaded", body = super::ErrorBody),
    ))]
pub(super) async fn replay(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<super::manual::SubmittedRun>), ApiError> {
    match state.scheduler.replay(&run_id).await {
        Ok(run) => {
            let change =
                crate::audit::Change::run(crate::audit::Action::RunReplayed, &run_id, &run.job_id)
                    .with_detail(serde_json::json!({ "run_id": run.run_id }));
            super::audit(&state, &actor, vec![change]).await;
            Ok((StatusCode::ACCEPTED, Json(run.into())))
        }
        Err(SchedulerError::RunNotFound(id)) => {
            Err(ApiError::not_found(format!("run '{id}' not found")))
        }
        Err(SchedulerError::CannotReplay(why)) => Err(ApiError::conflict(why)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /runs/{run_id}/stop`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StopAnswer {
    /// The run.
    pub run_id: String,
    /// `here`: this host is stopping its guest; `elsewhere`: it goes on
    /// another host sharing the store, which was asked to.
    pub stopping: String,
}

/// Stop a running run: its guest is stopped (as a timeout stops it) and the
/// run is recorded `interrupted` with a note saying it was stopped by
/// request, and not retried. Watch `GET /runs/{run_id}` or the event
/// stream for its end.
#[utoipa::path(post, path = "/runs/{run_id}/stop", tag = "runs",
    params(("run_id" = String, Path, description = "Run id")),
    responses(
        (status = 202, description = "The run is being stopped", body = StopAnswer),
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such run", body = super::ErrorBody),
        (status = 409, description = "The run is not running (pending, finished…) or is stopping already", body = super::ErrorBody),
    ))]
pub(super) async fn stop(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<StopAnswer>), ApiError> {
    let stopping = state.scheduler.stop_run(&run_id).await?;
    // The run's job, for `GET /audit?job=`: a read of the row just found.
    let job = match state.scheduler.store().run_summary(&run_id).await {
        Ok(Some(run)) => run.job_id,
        _ => String::new(),
    };
    let change = crate::audit::Change::run(crate::audit::Action::RunStopped, &run_id, &job);
    super::audit(&state, &actor, vec![change]).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(StopAnswer {
            run_id,
            stopping: match stopping {
                crate::scheduler::Stopping::Here => "here",
                crate::scheduler::Stopping::Elsewhere => "elsewhere",
            }
            .into(),
        }),
    ))
}
