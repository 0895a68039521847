//! `GET /cron/next` and `GET /cron/explain`: what `wasmcron cron next` and
//! `wasmcron cron explain` print, as JSON, from the same code
//! ([`crate::trigger::preview`]). Nothing is stored or scheduled.

use super::extract::Query;
use super::{ApiError, ApiState};
use crate::trigger::calendar::Exclusions;
use crate::trigger::preview::{CronPreview, parse_after};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How many fire times `GET /cron/next` gives without `count`.
pub const DEFAULT_COUNT: usize = 10;
/// The most fire times `GET /cron/next` gives.
pub const MAX_COUNT: usize = 100;

/// `GET /cron/next`'s query. Every value is checked by hand, so a bad one
/// is a 422 naming it (not a generic 400).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NextQuery {
    /// Required: the cron expression, e.g. `0 9 * * mon` (5 fields, or 6
    /// with seconds first), URL-encoded (`0%209%20*%20*%20mon`).
    #[param(example = "0 9 * * mon")]
    pub expr: Option<String>,
    /// The IANA zone its wall times are in, e.g. `Europe/Berlin`; default
    /// `UTC`.
    #[param(example = "Europe/Berlin")]
    pub tz: Option<String>,
    /// How many fire times, 1-100; default 10.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, example = 5)]
    pub count: Option<String>,
    /// Fire times strictly after this RFC 3339 instant (with an offset;
    /// percent-encode a `+` as `%2B`); default now.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-03-28T00:00:00+01:00")]
    pub after: Option<String>,
    /// Days to leave out, as a job's `exclude`: comma-separated dates
    /// (`2026-12-25`), ranges (`2026-12-24..2026-12-26`) and names of this
    /// host's calendars. The fires they skip are listed with
    /// `excluded_by`; `count` counts the others.
    #[param(example = "holidays,2026-12-24")]
    pub exclude: Option<String>,
}

/// `GET /cron/explain`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// Required: the cron expression, URL-encoded.
    #[param(example = "0 0 13 * fri")]
    pub expr: Option<String>,
}

/// One fire time of `GET /cron/next`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CronFire {
    /// RFC 3339 with the offset `tz` has at that instant, e.g.
    /// `2026-10-25T02:00:00+01:00`.
    pub local: String,
    /// The same instant in UTC (RFC 3339), as `next_run_time` and
    /// `next_fires` write it.
    pub utc: DateTime<Utc>,
    /// The calendar (or `exclude` for a date given in `exclude`) that
    /// skips this fire; absent for a fire that happens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_by: Option<String>,
}

/// `GET /cron/next`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CronNext {
    /// The expression, trimmed.
    pub expr: String,
    /// The zone its wall times are in.
    pub tz: String,
    /// The expression in words, e.g. `at 09:00 on Monday`.
    pub explain: String,
    /// The next fire times, in order.
    pub fires: Vec<CronFire>,
    /// Warnings for people, e.g. that a restricted day-of-month and
    /// day-of-week are ORed (classic cron); empty when none.
    pub warnings: Vec<String>,
}

/// `GET /cron/explain`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CronExplain {
    /// The expression, trimmed.
    pub expr: String,
    /// The expression in words, e.g. `at 09:00 on Monday`.
    pub explain: String,
    /// Warnings for people, as for `GET /cron/next`.
    pub warnings: Vec<String>,
}

fn required_expr(expr: Option<String>) -> Result<String, ApiError> {
    expr.ok_or_else(|| {
        ApiError::validation(
            "expr",
            "expr: required: the cron expression, URL-encoded, e.g. ?expr=0%209%20*%20*%20mon",
        )
    })
}

fn preview(expr: &str, tz: Option<&str>) -> Result<CronPreview, ApiError> {
    CronPreview::parse(expr, tz).map_err(|e| ApiError::validation(e.field(), e.to_string()))
}

fn count(count: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = count else {
        return Ok(DEFAULT_COUNT);
    };
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=MAX_COUNT) => Ok(n),
        Ok(n) => Err(ApiError::validation(
            "count",
            format!("count: {n} is out of range 1-{MAX_COUNT}"),
        )),
        Err(_) => Err(ApiError::validation(
            "count",
            format!(
                "count: '{}' is not a whole number; give 1 to {MAX_COUNT}",
                text.chars().take(40).collect::<String>()
            ),
        )),
    }
}

/// The next fire times of a cron expression in a zone.
#[utoipa::path(get, path = "/cron/next", tag = "cron", params(NextQuery),
    responses(
        (status = 200, description = "The fire times, in the zone and in UTC, and any warnings", body = CronNext),
        (status = 400, description = "A query parameter given twice or not known", body = super::ErrorBody),
        (status = 401, description = "Token required (with --auth-reads)", body = super::ErrorBody),
        (status = 422, description = "A bad or missing expr, an unknown tz, a count outside 1-100, an after that is not RFC 3339, an exclude entry that is no date, range or calendar here (named in `field`)", body = super::ErrorBody),
    ))]
pub(super) async fn next(
    State(state): State<ApiState>,
    Query(q): Query<NextQuery>,
) -> Result<Json<CronNext>, ApiError> {
    let expr = required_expr(q.expr)?;
    let preview = preview(&expr, q.tz.as_deref())?;
    let count = count(q.count.as_deref())?;
    let after = match q.after.as_deref() {
        Some(text) => {
            parse_after(text).map_err(|e| ApiError::validation(e.field(), e.to_string()))?
        }
        None => Utc::now(),
    };
    let zone = preview.tz();
    let exclusions = match q.exclude.as_deref() {
        Some(list) => Some(exclusions(&state, list, zone)?),
        None => None,
    };
    let fires = crate::trigger::preview::with_exclusions(
        |t| preview.schedule.next_after(t),
        exclusions.as_ref(),
        after,
        count,
    )
    .into_iter()
    .map(|f| CronFire {
        local: f
            .at
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::AutoSi, false),
        utc: f.at,
        excluded_by: f.excluded_by,
    })
    .collect();
    Ok(Json(CronNext {
        expr: preview.schedule.expr().to_owned(),
        tz: zone.name().to_owned(),
        explain: preview.explain,
        fires,
        warnings: preview.warnings,
    }))
}

/// `exclude`'s entries resolved as a job's `exclude` is, against this
/// host's calendars; errors are the job's, under field `exclude`.
fn exclusions(state: &ApiState, list: &str, zone: chrono_tz::Tz) -> Result<Exclusions, ApiError> {
    let entries: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let exclusions =
        crate::job::exclude::resolve_entries(&entries, zone, &state.scheduler.calendar_set())
            .map_err(|e| ApiError::validation("exclude", e.to_string()))?;
    Ok(exclusions.map(|e| (*e).clone()).unwrap_or(Exclusions {
        zone,
        calendars: Vec::new(),
    }))
}

/// A cron expression in words.
#[utoipa::path(get, path = "/cron/explain", tag = "cron", params(ExplainQuery),
    responses(
        (status = 200, description = "The expression in words, and any warnings", body = CronExplain),
        (status = 400, description = "A query parameter given twice or not known", body = super::ErrorBody),
        (status = 401, description = "Token required (with --auth-reads)", body = super::ErrorBody),
        (status = 422, description = "A bad or missing expr (field `expr`)", body = super::ErrorBody),
    ))]
pub(super) async fn explain(Query(q): Query<ExplainQuery>) -> Result<Json<CronExplain>, ApiError> {
    let expr = required_expr(q.expr)?;
    let preview = preview(&expr, None)?;
    Ok(Json(CronExplain {
        expr: preview.schedule.expr().to_owned(),
        explain: preview.explain,
        warnings: preview.warnings,
    }))
}
