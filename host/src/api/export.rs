//! `GET /jobs/export`: every job and calendar as a jobs file, so another
//! host (or this one, later) can be given the same schedules with
//! `POST /jobs/import` (import.rs) or `wasmcron run --config`.
//!
//! A spec is exported as it would have to be written to fire at the same
//! instants on a host that has never seen it:
//!
//! - an `interval` without `start` is anchored at when the job was added
//!   (its `created_at`), so its `start` is written: an importing host
//!   would otherwise count from the import;
//! - `paused` is the job's state now (a job paused through the API is
//!   exported paused).
//!
//! Import compares a spec with both the stored spec and this form, so
//! importing a host's own export changes nothing.

use super::{ApiError, ApiState};
use crate::job::JobSpec;
use crate::scheduler::JobInfo;
use crate::trigger::TriggerSpec;
use crate::trigger::calendar::CalendarSpec;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A jobs file: what `GET /jobs/export` answers and `POST /jobs/import`
/// takes, the shape `wasmcron run --config` reads (`version = 1`,
/// `[[jobs]]`, `[calendars.NAME]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsDocument {
    /// The format's version; only 1 exists (default 1).
    #[serde(default = "one")]
    pub version: u32,
    /// Job specs, each id once.
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
    /// Named calendars, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub calendars: BTreeMap<String, CalendarSpec>,
}

fn one() -> u32 {
    1
}

/// The spec of `info` as an export writes it (see the module docs).
pub(super) fn exported_spec(info: &JobInfo) -> JobSpec {
    let mut spec = info.spec.clone();
    spec.paused = info.paused;
    let anchor = info.created_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    pin_intervals(&mut spec.trigger, &anchor);
    spec
}

/// Writes `anchor` as the `start` of every interval (nested ones
/// included) that has none.
fn pin_intervals(trigger: &mut TriggerSpec, anchor: &str) {
    match trigger {
        TriggerSpec::Interval { start, .. } if start.is_none() => {
            *start = Some(anchor.into());
        }
        TriggerSpec::Any { triggers } | TriggerSpec::All { triggers } => {
            for t in triggers {
                pin_intervals(t, anchor);
            }
        }
        _ => {}
    }
}

/// Every job and calendar of this host.
pub(super) fn document(state: &ApiState) -> JobsDocument {
    JobsDocument {
        version: 1,
        jobs: state.scheduler.jobs().iter().map(exported_spec).collect(),
        calendars: state
            .scheduler
            .calendars()
            .into_iter()
            .map(|c| {
                let spec = crate::trigger::calendar::CalendarSpec {
                    dates: c.dates,
                    days: c.days,
                    description: c.description,
                };
                (c.name, spec)
            })
            .collect(),
    }
}

/// Export every job and calendar as a jobs file.
///
/// JSON by default; TOML, as `wasmcron run --config` reads it, when the
/// request's `Accept` names `application/toml`. Intervals without a
/// `start` get the one they count from, so an importing host fires them
/// at the same instants.
#[utoipa::path(get, path = "/jobs/export", tag = "jobs",
    responses(
        (status = 200, description = "Every job and calendar, as a jobs file", content(
            (JobsDocument = "application/json"),
            (String = "application/toml"))),
        (status = 401, description = "Token required (with --auth-reads)", body = super::ErrorBody),
        (status = 406, description = "TOML asked for, and a job's args hold what TOML cannot write (a null); ask for JSON", body = super::ErrorBody),
    ))]
pub(super) async fn export(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let doc = document(&state);
    let wants_toml = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.split(';').next().unwrap_or("").trim() == "application/toml");
    if !wants_toml {
        return Ok(axum::Json(doc).into_response());
    }
    let text = toml::to_string(&doc).map_err(|e| {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!(
                "the jobs cannot be written as TOML ({e}); TOML has no null, which a job's \
                 args may hold: ask for JSON (Accept: application/json)"
            ),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/toml")], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_without_start_are_anchored_nested_too() {
        let mut t: TriggerSpec = serde_json::from_str(
            r#"{"type":"any","triggers":[{"type":"interval","every":"1h"},
                {"type":"interval","every":"2h","start":"2026-01-01T00:00:00Z"},
                {"type":"cron","expr":"0 9 * * *"}]}"#,
        )
        .unwrap();
        pin_intervals(&mut t, "2026-12-01T10:00:00.123Z");
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["triggers"][0]["start"], "2026-12-01T10:00:00.123Z");
        assert_eq!(json["triggers"][1]["start"], "2026-01-01T00:00:00Z");
        assert!(json["triggers"][2].get("start").is_none());
    }
}
