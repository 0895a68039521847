//! `POST /jobs/{id}/pause` (with an optional note) and `POST
//! /jobs/{id}/resume`.

use super::extract::{OptionalBody, Path};
use super::{ApiError, ApiState};
use crate::audit::{Action, Change};
use crate::scheduler::JobInfo;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

/// `POST /jobs/{id}/pause`'s optional body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PauseBody {
    /// Why, or until when, e.g. `upstream API down until Monday`: shown
    /// as the job's `paused_reason` until it is resumed. At most
    /// [`MAX_PAUSE_NOTE`] characters.
    pub note: Option<String>,
}

/// The longest pause note, in characters.
pub const MAX_PAUSE_NOTE: usize = 500;

/// Pause a job, optionally with a note saying why.
#[utoipa::path(post, path = "/jobs/{id}/pause", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    request_body(content = Option<PauseBody>, description = "Optional: a note", content_type = "application/json"),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 200, description = "Paused", body = JobInfo),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
        (status = 422, description = "A note too long or naming itself an auto-pause", body = super::ErrorBody),
    ))]
pub(super) async fn pause(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<PauseBody>,
) -> Result<Json<JobInfo>, ApiError> {
    let note = body
        .and_then(|b| b.note)
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if let Some(n) = &note {
        if n.chars().count() > MAX_PAUSE_NOTE {
            return Err(ApiError::validation(
                "note",
                format!(
                    "the note has {} characters; at most {MAX_PAUSE_NOTE}",
                    n.chars().count()
                ),
            ));
        }
        if n.starts_with(crate::scheduler::AUTO_PREFIX) {
            return Err(ApiError::validation(
                "note",
                format!(
                    "a note may not start with {:?}: that marks the host's own pauses",
                    crate::scheduler::AUTO_PREFIX
                ),
            ));
        }
    }
    let info = state
        .scheduler
        .pause_job_with_note(&id, note.clone())
        .await?;
    let change =
        Change::job(Action::JobPaused, &id).with_detail(serde_json::json!({ "note": note }));
    super::audit(&state, &actor, vec![change]).await;
    Ok(Json(info))
}

/// Resume a job; its next fire is computed from now.
#[utoipa::path(post, path = "/jobs/{id}/resume", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 200, description = "Resumed", body = JobInfo),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
        (status = 422, description = "The job's capabilities are outside the operator's grant policy (change them first; the field and flag are named)", body = super::ErrorBody),
    ))]
pub(super) async fn resume(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(id): Path<String>,
) -> Result<Json<JobInfo>, ApiError> {
    let info = state.scheduler.resume_job(&id).await?;
    super::audit(&state, &actor, vec![Change::job(Action::JobResumed, &id)]).await;
    Ok(Json(info))
}
