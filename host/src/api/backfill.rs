//! `POST /jobs/{id}/backfill`: run every fire a job's schedule had in a
//! past range (scheduler/backfill.rs).

use super::extract::{Body, Path};
use super::{ApiError, ApiState};
use crate::job::Overlap;
use crate::scheduler::{BackfillRange, BackfillStarted};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

/// The body of `POST /jobs/{id}/backfill`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    /// The range's first instant (inclusive), RFC 3339 with an offset,
    /// e.g. `2026-11-01T00:00:00Z`.
    #[schema(format = DateTime)]
    pub from: String,
    /// Its last instant (inclusive), not in the future.
    #[schema(format = DateTime)]
    pub to: String,
    /// How the backfill's runs overlap: `buffer-all` (one after another,
    /// the default), `allow-all` (up to the job's `max_instances` at once)
    /// or `skip` (a fire that finds a run of the job going is recorded
    /// skipped).
    #[serde(default = "buffer_all")]
    pub overlap: Overlap,
}

fn buffer_all() -> Overlap {
    Overlap::BufferAll
}

fn instant(field: &'static str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(3))
        .map_err(|_| {
            ApiError::validation(
                field,
                format!(
                    "{field}: '{}' is not an RFC 3339 time; write one with an offset, e.g. \
                     2026-11-01T00:00:00Z",
                    text.chars().take(100).collect::<String>()
                ),
            )
        })
}

/// Runs every fire the job's schedule had from `from` to `to` (both
/// inclusive, in the past), in order and behind live fires, each recorded
/// as a run with cause `backfill`. Answers at once with how many fires it
/// will run; the runs appear in the job's history as they go.
#[utoipa::path(post, path = "/jobs/{id}/backfill", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    request_body = BackfillBody,
    responses(
        (status = 202, description = "Started: how many fires it runs, the first and the last", body = BackfillStarted),
        (status = 400, description = "Malformed JSON, or a path parameter that does not decode", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
        (status = 409, description = "The job's plugin is not loaded (still compiling, refused or absent)", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "A body not sent as application/json", body = super::ErrorBody),
        (status = 422, description = "from or to not RFC 3339, a reversed range, one reaching into the future or holding more than 10,000 fires (the message says how many), an overlap other than buffer-all, allow-all or skip, or an unknown field (named in `field`)", body = super::ErrorBody),
        (status = 503, description = "The store cannot be written", body = super::ErrorBody),
    ))]
pub(super) async fn backfill(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(id): Path<String>,
    Body(body): Body<BackfillBody>,
) -> Result<(StatusCode, Json<BackfillStarted>), ApiError> {
    let range = BackfillRange {
        from: instant("from", &body.from)?,
        to: instant("to", &body.to)?,
        overlap: body.overlap,
    };
    let started = state.scheduler.backfill(&id, range).await?;
    let change = crate::audit::Change::job(crate::audit::Action::JobBackfill, &id).with_detail(
        serde_json::json!({ "from": body.from, "to": body.to, "fires": started.fires }),
    );
    super::audit(&state, &actor, vec![change]).await;
    Ok((StatusCode::ACCEPTED, Json(started)))
}
