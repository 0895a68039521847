//! `/jobs`: create, list, show, modify, delete, pause, resume (run now is
//! in `manual.rs`).

use super::extract::{Body, Path, Query};
use super::{ApiError, ApiState};
use crate::job::JobSpec;
use crate::plugin::World;
use crate::runtime::Limits;
use crate::scheduler::{JobInfo, JobState};
use crate::trigger::preview;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `POST /jobs`: a job spec plus whether to replace an existing job.
/// (Documents the body; the handler parses it field by field so errors
/// keep their paths.)
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateJob {
    /// The job (every field of a jobs-file `[[jobs]]` table).
    #[serde(flatten)]
    pub spec: JobSpec,
    /// Replace a job with the same id instead of answering 409.
    #[serde(default)]
    pub replace_existing: bool,
}

/// Filters and paging for `GET /jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListJobs {
    /// Only jobs of this plugin.
    pub plugin: Option<String>,
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs whose id or plugin contains this text (ASCII case
    /// ignored), e.g. `nightly`.
    pub q: Option<String>,
    /// Only jobs the host paused itself after failures in a row (`true`),
    /// or only the others (`false`).
    pub auto_paused: Option<bool>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Jobs to skip (default 0).
    pub offset: Option<usize>,
}

/// A page of jobs, ordered by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// This page.
    pub jobs: Vec<JobInfo>,
    /// Jobs matching the filters, over all pages.
    pub total: usize,
    /// The page size used.
    pub limit: usize,
    /// The offset used.
    pub offset: usize,
}

/// A page size from `limit`: 1-1000, 100 when absent.
pub(super) fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    page_size_or(limit, 100)
}

/// A page size from `limit`: 1-1000, `default` when absent; 400 naming the
/// query parameter otherwise.
pub(super) fn page_size_or(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(default),
        Some(n @ 1..=1000) => Ok(n),
        Some(n) => Err(ApiError::bad_query(
            "limit",
            format!("limit {n} is out of range 1-1000"),
        )),
    }
}

/// Checks what the scheduler itself would accept but the API refuses: a
/// plugin the host has never seen (a typo), a listener plugin as a job,
/// and a trigger that can never fire again.
pub(super) fn check_for_api(state: &ApiState, spec: &JobSpec) -> Result<(), ApiError> {
    check_plugin(state, spec)?;
    check_fires(state, spec)
}

/// The API's check of a spec's plugin: a loaded job plugin, or one the
/// folder knows (still compiling, refused); a listener is refused; `args`
/// must fit the schema the plugin declares, if it declares one.
pub(super) fn check_plugin(state: &ApiState, spec: &JobSpec) -> Result<(), ApiError> {
    let registry = state.scheduler.plugins();
    match registry.get(&spec.plugin) {
        Some(plugin) if plugin.world() != World::Job => {
            return Err(ApiError::validation(
                "plugin",
                format!(
                    "plugin '{}' implements {}, not world `job`; it can only be a listener",
                    spec.plugin,
                    plugin.world_name()
                ),
            ));
        }
        Some(plugin) => {
            plugin
                .check_args(&spec.args)
                .map_err(|(field, message)| ApiError::validation(field, message))?;
        }
        None if registry.statuses().iter().any(|s| s.name == spec.plugin) => {}
        None => {
            let known: Vec<String> = registry
                .loaded()
                .iter()
                .filter(|p| p.world() == World::Job)
                .map(|p| p.name().to_owned())
                .collect();
            return Err(ApiError::validation(
                "plugin",
                format!(
                    "no plugin named '{}' in the plugins folder (loaded job plugins: {})",
                    spec.plugin,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// The API's check that a spec validates and will fire again.
fn check_fires(state: &ApiState, spec: &JobSpec) -> Result<(), ApiError> {
    let now = chrono::Utc::now();
    let job = spec
        .validate_with(now, &Limits::default(), &state.scheduler.calendar_set())
        .map_err(|e| ApiError::validation(e.field(), e.to_string()))?;
    fires_again(&job, now).map_err(|(field, problem)| ApiError::validation(field, problem))
}

/// Whether a validated job has a fire after `now`; else the field to
/// blame and why (every fire on an excluded day, or a trigger whose date
/// or end has passed). A job the API adds must fire at least once more.
pub(super) fn fires_again(
    job: &crate::job::Job,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), (&'static str, String)> {
    if job.trigger.next_after(now).is_some() {
        return Ok(());
    }
    if job.trigger.preview_after(now).is_some() {
        return Err((
            "exclude",
            "exclude: every fire of the trigger (for 3,660 days with a fire in a row) falls on a day this job \
             excludes; exclude fewer days or change the trigger"
                .to_owned(),
        ));
    }
    let field = match &*job.spec.trigger {
        crate::trigger::TriggerSpec::Date { .. } => "trigger.at",
        _ => "trigger",
    };
    Err((
        field,
        format!(
            "{field}: the trigger has no fire time after now (a date in the past, or an end that has passed)"
        ),
    ))
}

/// Create a job.
#[utoipa::path(post, path = "/jobs", tag = "jobs", request_body = CreateJob,
    responses(
        (status = 201, description = "Created (or replaced), with its next_run_time", body = JobInfo),
        (status = 400, description = "Malformed JSON", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 409, description = "Duplicate id without replace_existing", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "Not sent as application/json", body = super::ErrorBody),
        (status = 422, description = "Invalid field", body = super::ErrorBody),
    ))]
pub(super) async fn create(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Body(mut body): Body<serde_json::Value>,
) -> Result<(StatusCode, Json<JobInfo>), ApiError> {
    // Parsed by hand rather than through `CreateJob`'s flatten, which
    // would hide the path of a bad field.
    let Some(object) = body.as_object_mut() else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "the body must be a JSON object: a job spec",
        ));
    };
    let replace = match object.remove("replace_existing") {
        None => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(other) => {
            return Err(ApiError::validation(
                "replace_existing",
                format!("replace_existing: must be true or false, got {other}"),
            ));
        }
    };
    let spec: JobSpec = super::extract::from_value(body)?;
    check_for_api(&state, &spec)?;
    let before = state.scheduler.spec_of(&spec.id);
    let info = state.scheduler.add_job(spec, replace).await?;
    let change = crate::audit::Change::job_written(before.as_ref(), &info.spec);
    super::audit(&state, &actor, change.into_iter().collect()).await;
    Ok((StatusCode::CREATED, Json(info)))
}

/// List jobs.
#[utoipa::path(get, path = "/jobs", tag = "jobs", params(ListJobs),
    responses(
        (status = 200, description = "A page of jobs, by id", body = JobPage),
        (status = 400, description = "Bad query", body = super::ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<ApiState>,
    Query(q): Query<ListJobs>,
) -> Result<Json<JobPage>, ApiError> {
    let limit = page_size(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    let mut jobs: Vec<JobInfo> = state
        .scheduler
        .jobs()
        .into_iter()
        .filter(|j| q.plugin.as_ref().is_none_or(|p| *p == j.spec.plugin))
        .filter(|j| q.auto_paused.is_none_or(|a| a == j.auto_paused))
        .filter(|j| {
            q.q.as_deref().is_none_or(|text| {
                let text = text.to_ascii_lowercase();
                j.spec.id.as_str().to_ascii_lowercase().contains(&text)
                    || j.spec.plugin.to_ascii_lowercase().contains(&text)
            })
        })
        .collect();
    if q.state.is_some() {
        // The stored next fire decides `finished` too: before filtering.
        stored_next_runs(&state, &mut jobs).await;
    }
    jobs.retain(|j| q.state.is_none_or(|s| s == j.state));
    jobs.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
    let total = jobs.len();
    let mut jobs: Vec<JobInfo> = jobs.into_iter().skip(offset).take(limit).collect();
    if q.state.is_none() {
        stored_next_runs(&state, &mut jobs).await;
    }
    Ok(Json(JobPage {
        jobs,
        total,
        limit,
        offset,
    }))
}

/// `GET /jobs/{id}`'s answer: the job as listed, and its coming fires.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDetail {
    /// The job, as `GET /jobs` lists it.
    #[serde(flatten)]
    pub job: JobInfo,
    /// Its next fire times (`fires` of them, default 5; RFC 3339 UTC, jitter included): the
    /// instants the scheduler will fire it at, from `next_run_time` on. A
    /// paused job shows those it would have if resumed now; a finished
    /// trigger, none.
    pub next_fires: Vec<chrono::DateTime<chrono::Utc>>,
    /// The fires its `exclude` calendars skip from now until the last of
    /// `next_fires` (at most twice `fires`), each with the calendar that skips it;
    /// absent when it excludes nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded_fires: Vec<preview::PreviewFire>,
}

/// `GET /jobs/{id}`'s query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShowJob {
    /// How many next fires to list, 1-100 (default 5).
    #[param(minimum = 1, maximum = 100)]
    pub fires: Option<usize>,
}

/// Most next fires `GET /jobs/{id}?fires=` lists.
pub const MAX_FIRES: usize = 100;

/// Show a job, with its next fire times.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id"), ShowJob),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 200, description = "The job and its next fires", body = JobDetail),
        (status = 404, description = "No such job", body = super::ErrorBody),
    ))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<ShowJob>,
) -> Result<Json<JobDetail>, ApiError> {
    let count = match q.fires {
        None => preview::JOB_PREVIEW,
        Some(n @ 1..=MAX_FIRES) => n,
        Some(n) => {
            return Err(ApiError::bad_query(
                "fires",
                format!("fires {n} is out of range 1-{MAX_FIRES}"),
            ));
        }
    };
    let (job, trigger) = state.scheduler.job_and_trigger(&id)?;
    let mut job = [job];
    stored_next_runs(&state, &mut job).await;
    let [job] = job;
    // A paused job has no planned fire: show what a resume now would plan.
    let first = if job.paused {
        trigger.next_after(state.scheduler.now())
    } else {
        job.next_run_time
    };
    let next_fires = preview::job_fires(&trigger, first, count);
    let excluded_fires = preview::excluded_fires(
        &trigger,
        state.scheduler.now(),
        next_fires.last().copied(),
        count,
    );
    Ok(Json(JobDetail {
        job,
        next_fires,
        excluded_fires,
    }))
}

/// On a host that shares its store and does not lead, `jobs` with their
/// next fire times as stored: the leader moves them in the store as it
/// fires, while this host's copy is the one it last loaded. A job whose
/// stored row is of another incarnation (changed elsewhere, not synced
/// here yet) or paused keeps its own; so does every job when the host is
/// out of contact with the database or the read does not come within a
/// second (a read the host can serve from memory).
async fn stored_next_runs(state: &ApiState, jobs: &mut [JobInfo]) {
    let store = state.scheduler.store();
    if jobs.is_empty()
        || !store.shared()
        || store.leadership().get().is_leader()
        || !crate::store::leader::in_contact(store.as_ref())
    {
        return;
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.spec.id.clone()).collect();
    // A read that does not come at once (the database slow or just lost)
    // does not hold the answer up.
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        store.next_run_times(&ids),
    );
    let stored = match read.await {
        Ok(Ok(stored)) => stored,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not read the stored next fire times; answering with this host's");
            return;
        }
        Err(_) => {
            tracing::debug!("no stored next fire times within 1 s; answering with this host's");
            return;
        }
    };
    let stored: std::collections::HashMap<String, (String, Option<chrono::DateTime<chrono::Utc>>)> =
        stored
            .into_iter()
            .map(|(id, incarnation, next)| (id, (incarnation, next)))
            .collect();
    for job in jobs {
        let Some((incarnation, next)) = stored.get(&job.spec.id) else {
            continue;
        };
        if *incarnation != job.incarnation || job.paused {
            continue;
        }
        job.next_run_time = *next;
        job.state = match (job.state, next) {
            (JobState::Scheduled | JobState::Finished, Some(_)) => JobState::Scheduled,
            (JobState::Scheduled | JobState::Finished, None) => JobState::Finished,
            (other, _) => other,
        };
    }
}

/// Modify or reschedule a job: the body is a JSON merge patch (RFC 7396)
/// of its spec, e.g. `{"trigger": {"type": "interval", "every": "5m"}}`
/// or `{"args": {"name": "Ada"}}`; `null` removes an optional field.
///
/// A patch changes only what it names: a job keeps its next fire and
/// `created_at` unless the trigger changes, and stays paused or running.
/// `paused` is refused unless it says what the job already is (so a spec
/// read from `GET` can be sent back): pausing and resuming have their own
/// routes, and a resume computes the next fire from now, which a patch of
/// other fields must never do by the way.
#[utoipa::path(patch, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    request_body(content = Object, description = "A JSON merge patch of the job spec"),
    responses(
        (status = 200, description = "The job as modified", body = JobInfo),
        (status = 400, description = "Malformed JSON", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "Not sent as application/json", body = super::ErrorBody),
        (status = 422, description = "Invalid field", body = super::ErrorBody),
    ))]
pub(super) async fn modify(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(id): Path<String>,
    Body(patch): Body<serde_json::Value>,
) -> Result<Json<JobInfo>, ApiError> {
    let current = state.scheduler.job(&id)?;
    if !patch.is_object() {
        return Err(ApiError::validation(
            "",
            "the body must be a JSON object (a merge patch of the job spec)",
        ));
    }
    if let Some(paused) = patch.get("paused")
        && *paused != serde_json::Value::Bool(current.paused)
    {
        let route = if current.paused { "resume" } else { "pause" };
        return Err(ApiError::validation(
            "paused",
            format!(
                "paused: a PATCH does not pause or resume a job (it is {}); use POST /jobs/{id}/{route}",
                if current.paused {
                    "paused"
                } else {
                    "not paused"
                }
            ),
        ));
    }
    let mut merged =
        serde_json::to_value(&current.spec).map_err(|e| ApiError::validation("", e.to_string()))?;
    crate::job::merge_patch(&mut merged, &patch);
    if merged.get("id").and_then(|v| v.as_str()) != Some(id.as_str()) {
        return Err(ApiError::validation(
            "id",
            "a job's id cannot be changed; create a new job and delete this one",
        ));
    }
    let spec: JobSpec = super::extract::from_value(merged)?;
    check_for_api(&state, &spec)?;
    let info = state.scheduler.modify_job(spec).await?;
    let change = crate::audit::Change::job_written(Some(&current.spec), &info.spec);
    super::audit(&state, &actor, change.into_iter().collect()).await;
    Ok(Json(info))
}

/// Delete a job (its run history goes with it).
#[utoipa::path(delete, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 400, description = "A path parameter that does not decode", body = super::ErrorBody),
        (status = 204, description = "Deleted"),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 404, description = "No such job", body = super::ErrorBody),
    ))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.scheduler.remove_job(&id).await?;
    let change = crate::audit::Change::job(crate::audit::Action::JobDeleted, &id);
    super::audit(&state, &actor, vec![change]).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use crate::job::merge_patch;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1, 2]});
        merge_patch(&mut doc, &json!({"a": [3]}));
        assert_eq!(doc, json!({"a": [3]}));
    }
}
