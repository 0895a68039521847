//! `POST /jobs/{id}/run`: run a job now, as it is or with other args or
//! another `scheduled_at` for that run.

use super::extract::{OptionalBody, Path};
use super::{ApiError, ApiState};
use crate::scheduler::RunNow;
use crate::store::{RunCause, RunRecord};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

/// A run just recorded (by run now or a replay), with why it happens, as
/// its summary in the history will say.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SubmittedRun {
    /// The run as recorded.
    #[serde(flatten)]
    pub run: RunRecord,
    /// Why it happens: `manual` or `replay`.
    pub cause: RunCause,
}

impl From<RunRecord> for SubmittedRun {
    fn from(run: RunRecord) -> Self {
        Self {
            cause: run.cause(),
            run,
        }
    }
}

/// The optional body of `POST /jobs/{id}/run`: what this run does
/// differently from the job's own. No body, an empty body, `null` or `{}`
/// is a plain run now with the job's args. A field set to `null` is as if
/// left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunNowBody {
    /// This run's args, instead of the job's (not merged with them): a
    /// JSON object, e.g. `{"name": "Ada"}`. The run records them and its
    /// guest reads them.
    #[schema(value_type = Option<Object>)]
    pub args: Option<serde_json::Value>,
    /// The fire time the run records and its guest sees as its
    /// `scheduled_at`, RFC 3339 with an offset (kept to the millisecond),
    /// e.g. `2026-12-01T09:00:00+08:00`. The run still starts now.
    /// Default: now.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_at: Option<String>,
}

impl RunNowBody {
    /// Checks the fields into the scheduler's [`RunNow`]; a 422 naming the
    /// field otherwise.
    fn check(self) -> Result<RunNow, ApiError> {
        let args = match self.args {
            None => None,
            Some(serde_json::Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(ApiError::validation(
                    "args",
                    format!(
                        "args: must be a JSON object such as {{\"name\": \"Ada\"}}, got {}",
                        shorten(&other.to_string())
                    ),
                ));
            }
        };
        let scheduled_at = self
            .scheduled_at
            .map(|text| {
                DateTime::parse_from_rfc3339(text.trim())
                    .map(|t| t.with_timezone(&Utc).trunc_subsecs(3))
                    .map_err(|_| {
                        ApiError::validation(
                            "scheduled_at",
                            format!(
                                "scheduled_at: '{}' is not an RFC 3339 time; write one with an \
                                 offset, e.g. 2026-12-01T09:00:00+08:00 or 2026-12-01T01:00:00Z",
                                shorten(&text)
                            ),
                        )
                    })
            })
            .transpose()?;
        Ok(RunNow { args, scheduled_at })
    }
}

/// At most 100 characters of `text`, for quoting input in a message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Run a job now, outside its schedule (which is unchanged). The optional
/// body gives this run other args or another `scheduled_at`; without one
/// the run has the job's args and is scheduled at now.
#[utoipa::path(post, path = "/jobs/{id}/run", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    request_body(content = Option<RunNowBody>, content_type = "application/json",
        description = "Optional: this run's `args` (a JSON object) and `scheduled_at` (RFC 3339)"),
    responses(
        (status = 202, description = "Recorded and queued, with the args and scheduled_at it runs with", body = SubmittedRun),
        (status = 400, description = "Malformed JSON, or a path parameter that does not decode", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
        (status = 409, description = "max_instances runs already going, or the job's plugin is not loaded (still compiling, refused or absent)", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "A body not sent as application/json", body = super::ErrorBody),
        (status = 422, description = "args not an object or breaking the schema the job's plugin declares, scheduled_at not RFC 3339, or an unknown field (named in `field`); nothing is recorded", body = super::ErrorBody),
    ))]
pub(super) async fn run_now(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<RunNowBody>,
) -> Result<(StatusCode, Json<SubmittedRun>), ApiError> {
    let how = body.map(RunNowBody::check).transpose()?.unwrap_or_default();
    // Args given for this run go in the audit entry: an `operate` token may
    // run a job with args of its choosing, and who ran what with which
    // input must be readable without looking the run up.
    let args = how.args.clone();
    if let Some(args) = &args {
        check_run_args(&state, &id, args)?;
    }
    let run = state.scheduler.run_now_with(&id, how).await?;
    let mut detail = serde_json::json!({ "run_id": run.run_id });
    if let Some(args) = args {
        detail["args"] = serde_json::Value::Object(args);
    }
    let change = crate::audit::Change::job(crate::audit::Action::JobRun, &id).with_detail(detail);
    super::audit(&state, &actor, vec![change]).await;
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// Holds a run's own args to the schema the job's plugin declares, as a
/// job's args are when it is added (a job or plugin this host does not
/// know is left to the scheduler, which answers 404 or 409).
fn check_run_args(
    state: &ApiState,
    id: &str,
    args: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    let Ok(job) = state.scheduler.job(id) else {
        return Ok(());
    };
    let Some(plugin) = state.scheduler.plugins().get(&job.spec.plugin) else {
        return Ok(());
    };
    plugin
        .check_args(&serde_json::Value::Object(args.clone()))
        .map_err(|(field, message)| ApiError::validation(field, message))
}
