//! Runs across all jobs: `GET /runs` (a filtered page, newest first) and
//! `GET /stats` (counts by status and outcome over a window, the success
//! rate and fire lateness): what an overview page or a monitoring script
//! asks without walking every job.

use super::extract::Query;
use super::jobs::page_size;
use super::runs::{RunPage, runs_from};
use super::{ApiError, ApiState};
use crate::runtime::OutcomeKind;
use crate::scheduler::SchedulerError;
use crate::store::{RunFilter, RunStatus};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `GET /runs`'s filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAllRuns {
    /// Only runs in this status: `pending`, `running`, `finished`,
    /// `missed`, `skipped` or `interrupted`.
    pub status: Option<String>,
    /// Only finished runs that ended this way: `succeeded`, `failed`,
    /// `trapped`, `timed-out`, `out-of-fuel` or `memory-limit`.
    pub outcome: Option<String>,
    /// Page size, 1-1000 (default 100); a page is also cut at about 4 MiB.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Runs to skip (default 0). Pages shift when runs are recorded
    /// meanwhile; `before` does not.
    pub offset: Option<usize>,
    /// Cursor: only runs recorded before this run id (the previous page's
    /// `next_before`; the run need not be stored any more). Not with
    /// `offset`.
    pub before: Option<String>,
}

/// The runs of every job, newest recorded first, without their logs:
/// e.g. `GET /runs?status=running` for what is going on now, or
/// `GET /runs?outcome=failed&limit=20` for the latest failures. A
/// deleted job's runs were deleted with it.
#[utoipa::path(get, path = "/runs", tag = "runs",
    params(ListAllRuns),
    responses(
        (status = 200, description = "A page of runs", body = RunPage),
        (status = 400, description = "Bad query (the field names which)", body = super::ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<ApiState>,
    Query(q): Query<ListAllRuns>,
) -> Result<Json<RunPage>, ApiError> {
    let limit = page_size(q.limit)?;
    let from = runs_from(q.offset, q.before)?;
    let filter = RunFilter {
        status: q
            .status
            .as_deref()
            .map(|s| {
                RunStatus::parse(s).ok_or_else(|| {
                    ApiError::bad_query(
                        "status",
                        format!(
                            "unknown status {s:?}; use pending, running, finished, missed, \
                             skipped or interrupted"
                        ),
                    )
                })
            })
            .transpose()?,
        outcome: q
            .outcome
            .as_deref()
            .map(|s| {
                OutcomeKind::parse(s).ok_or_else(|| {
                    ApiError::bad_query(
                        "outcome",
                        format!(
                            "unknown outcome {s:?}; use succeeded, failed, trapped, timed-out, \
                             out-of-fuel or memory-limit"
                        ),
                    )
                })
            })
            .transpose()?,
    };
    let page = state
        .scheduler
        .store()
        .all_runs(filter, limit, from.clone())
        .await
        .map_err(SchedulerError::from)?;
    Ok(Json(RunPage::new(page, limit, from)))
}

/// `GET /stats`'s window.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// How far back to count, as a duration (`1h`, `24h`, `7d`): from 1
    /// minute to 31 days; default `24h`.
    pub window: Option<String>,
}

/// Shortest and longest `GET /stats` window.
const WINDOW_RANGE: (std::time::Duration, std::time::Duration) = (
    std::time::Duration::from_secs(60),
    std::time::Duration::from_secs(31 * 24 * 3600),
);

/// `GET /stats`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// The window as asked, e.g. `24h`.
    pub window: String,
    /// Its start (runs scheduled at or after this count), RFC 3339.
    pub from: DateTime<Utc>,
    /// Its end: now.
    pub to: DateTime<Utc>,
    /// Runs scheduled in the window: `total`, and one count per status
    /// (`pending`, `running`, `finished`, `missed`, `skipped`,
    /// `interrupted`), zeros included.
    pub runs: BTreeMap<String, u64>,
    /// Finished runs by outcome kind (`succeeded`, `failed`, `trapped`,
    /// `timed-out`, `out-of-fuel`, `memory-limit`), zeros included.
    pub outcomes: BTreeMap<String, u64>,
    /// Succeeded ÷ finished, 0-1; `null` when no run finished.
    pub success_rate: Option<f64>,
    /// How late scheduled fires started.
    pub lateness_ms: Lateness,
}

/// Fire lateness in `GET /stats`: `started_at − scheduled_at` of first
/// attempts of scheduled fires in the window (retries and manual runs are
/// late by design and left out), over at most the newest 100,000.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lateness {
    /// Median, in ms (nearest rank); `null` without samples.
    pub p50: Option<i64>,
    /// 99th percentile, in ms (nearest rank); `null` without samples.
    pub p99: Option<i64>,
    /// The most late, in ms (of the samples); `null` without samples.
    pub max: Option<i64>,
    /// How many fires these are over.
    pub count: usize,
}

/// Runs over a window: by status and outcome, the success rate and fire
/// lateness, across all jobs (and, on a shared store, all hosts). Counts
/// runs by their scheduled time.
#[utoipa::path(get, path = "/stats", tag = "runs",
    params(StatsQuery),
    responses(
        (status = 200, description = "Counts over the window", body = Stats),
        (status = 400, description = "Bad window", body = super::ErrorBody),
    ))]
pub(super) async fn stats(
    State(state): State<ApiState>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let window = q.window.unwrap_or_else(|| "24h".into());
    let span = crate::duration::parse(&window)
        .map_err(|e| ApiError::bad_query("window", format!("window {window:?}: {e}")))?;
    if span < WINDOW_RANGE.0 || span > WINDOW_RANGE.1 {
        return Err(ApiError::bad_query(
            "window",
            format!("window {window:?} is out of range; use 1m to 31d, e.g. 24h"),
        ));
    }
    let to = Utc::now();
    let from = to - chrono::TimeDelta::from_std(span).unwrap_or(chrono::TimeDelta::days(1));
    let counts = state
        .scheduler
        .store()
        .run_counts(from)
        .await
        .map_err(SchedulerError::from)?;
    let mut runs: BTreeMap<String, u64> = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Finished,
        RunStatus::Missed,
        RunStatus::Skipped,
        RunStatus::Interrupted,
    ]
    .into_iter()
    .map(|s| (s.as_str().to_owned(), 0))
    .collect();
    runs.extend(counts.by_status.clone());
    let total = runs.values().sum();
    runs.insert("total".into(), total);
    let mut outcomes: BTreeMap<String, u64> = OutcomeKind::ALL
        .into_iter()
        .map(|k| (k.as_str().to_owned(), 0))
        .collect();
    outcomes.extend(counts.by_outcome.clone());
    let finished: u64 = outcomes.values().sum();
    #[allow(clippy::cast_precision_loss)]
    let success_rate = (finished > 0)
        .then(|| outcomes.get("succeeded").copied().unwrap_or(0) as f64 / finished as f64);
    Ok(Json(Stats {
        window,
        from,
        to,
        runs,
        outcomes,
        success_rate,
        lateness_ms: Lateness {
            p50: counts.lateness_quantile(0.5),
            p99: counts.lateness_quantile(0.99),
            max: counts.lateness_ms.iter().copied().max(),
            count: counts.lateness_ms.len(),
        },
    }))
}
