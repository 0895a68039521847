//! `GET|PUT|DELETE /calendars/{name}`, `GET /calendars`: named calendars,
//! days on which the jobs naming them in `exclude` do not fire
//! (scheduler/calendars.rs).

use super::extract::{Body, Path};
use super::{ApiError, ApiState};
use crate::scheduler::CalendarInfo;
use crate::trigger::calendar::CalendarSpec;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// Every calendar, by name, with the jobs naming each.
#[utoipa::path(get, path = "/calendars", tag = "calendars",
    responses(
        (status = 200, description = "The calendars", body = [CalendarInfo]),
        (status = 401, description = "Token required (with --auth-reads)", body = super::ErrorBody),
    ))]
pub(super) async fn list(State(state): State<ApiState>) -> Json<Vec<CalendarInfo>> {
    Json(state.scheduler.calendars())
}

/// One calendar.
#[utoipa::path(get, path = "/calendars/{name}", tag = "calendars",
    params(("name" = String, Path, description = "Calendar name")),
    responses(
        (status = 200, description = "The calendar and the jobs naming it", body = CalendarInfo),
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 401, description = "Token required (with --auth-reads)", body = super::ErrorBody),
        (status = 404, description = "No such calendar", body = super::ErrorBody),
    ))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<CalendarInfo>, ApiError> {
    Ok(Json(state.scheduler.calendar(&name)?))
}

/// Defines a calendar or replaces it whole. The jobs naming it move their
/// next fire at once to what it allows. Dates are read in each job's time
/// zone.
#[utoipa::path(put, path = "/calendars/{name}", tag = "calendars",
    params(("name" = String, Path, description = "Calendar name: 1-64 letters, digits, '-', '_', '.', starting with a letter")),
    request_body = CalendarSpec,
    responses(
        (status = 200, description = "Replaced", body = CalendarInfo),
        (status = 201, description = "Defined", body = CalendarInfo),
        (status = 400, description = "Malformed JSON, or a path parameter that does not decode", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "A body not sent as application/json", body = super::ErrorBody),
        (status = 422, description = "A bad name, a date that is not YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD, a reversed range, a day rule that is not three cron day fields, or an unknown field (named in `field`)", body = super::ErrorBody),
        (status = 503, description = "The store cannot be written", body = super::ErrorBody),
    ))]
pub(super) async fn put(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(name): Path<String>,
    Body(spec): Body<CalendarSpec>,
) -> Result<(StatusCode, Json<CalendarInfo>), ApiError> {
    let spec_json = serde_json::to_value(&spec).unwrap_or_default();
    let (info, created) = state.scheduler.put_calendar(&name, spec).await?;
    let change = crate::audit::Change::named(crate::audit::Action::CalendarPut, &name)
        .with_detail(serde_json::json!({ "spec": spec_json, "created": created }));
    super::audit(&state, &actor, vec![change]).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)))
}

/// Removes a calendar no job names.
#[utoipa::path(delete, path = "/calendars/{name}", tag = "calendars",
    params(("name" = String, Path, description = "Calendar name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such calendar", body = super::ErrorBody),
        (status = 409, description = "Jobs name it in their exclude (the message lists them)", body = super::ErrorBody),
        (status = 503, description = "The store cannot be written", body = super::ErrorBody),
    ))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.scheduler.delete_calendar(&name).await?;
    let change = crate::audit::Change::named(crate::audit::Action::CalendarDeleted, &name);
    super::audit(&state, &actor, vec![change]).await;
    Ok(StatusCode::NO_CONTENT)
}
