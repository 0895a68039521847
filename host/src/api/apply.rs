//! `PUT /jobs`: apply a list of jobs at once, as a jobs file (`--config`)
//! is applied at start: each spec adds its job, or changes the job with
//! its id, or (equal to the stored spec) changes nothing. Jobs not in the
//! list are left alone. The way to add thousands of jobs: one request per
//! few thousand, written to the store a thousand at a time, instead of a
//! request and a commit per job.

use super::extract::Body;
use super::jobs::check_plugin;
use super::{ApiError, ApiState};
use crate::audit::{Action, Change};
use crate::job::JobSpec;
use crate::scheduler::JobInfo;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// Most specs one `PUT /jobs` takes (the body must also fit in the API's
/// body limit, 1 MiB: about 5,000 small specs).
pub const MAX_APPLY_JOBS: usize = 10_000;

/// `PUT /jobs`'s body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyJobs {
    /// Job specs (every field of a jobs-file `[[jobs]]` table), at most
    /// 10,000, each id once.
    pub jobs: Vec<JobSpec>,
}

/// What `PUT /jobs` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Applied {
    /// Specs equal to their job's stored spec: nothing was done for them.
    pub unchanged: usize,
    /// Jobs added or changed.
    pub written: usize,
    /// Jobs of the list to look at, in list order: those with warnings,
    /// or whose plugin is not loaded (yet).
    pub notes: Vec<JobInfo>,
}

/// A listed job as it was before the list was applied, for its audit row.
enum Before {
    /// No job had its id: `job_created`.
    New(String),
    /// The job's spec before, and the listed one.
    Replaced(Box<(JobSpec, JobSpec)>),
}

/// Add or change many jobs.
///
/// Every spec is checked before anything is written: one invalid spec
/// (or an id listed twice) answers 422 naming it (`jobs[3].trigger.expr`),
/// and nothing changes. The specs are then written about a thousand at a
/// time: a store failure part way leaves the jobs before the failing one
/// applied (the message says which), and a host killed part way may have
/// applied some; sending the same list again is safe either way, since
/// specs already applied are unchanged.
#[utoipa::path(put, path = "/jobs", tag = "jobs", request_body = ApplyJobs,
    responses(
        (status = 200, description = "Applied: counts, and the jobs with something to look at", body = Applied),
        (status = 400, description = "Malformed JSON", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "Not sent as application/json", body = super::ErrorBody),
        (status = 422, description = "An invalid spec (its position and field named), or more than 10,000", body = super::ErrorBody),
    ))]
pub(super) async fn apply(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Body(body): Body<ApplyJobs>,
) -> Result<Json<Applied>, ApiError> {
    if body.jobs.len() > MAX_APPLY_JOBS {
        return Err(ApiError::validation(
            "jobs",
            format!(
                "jobs: {} specs in one request; send at most {MAX_APPLY_JOBS} per request",
                body.jobs.len()
            ),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(body.jobs.len());
    for (i, spec) in body.jobs.iter().enumerate() {
        if let Some(first) = seen.insert(spec.id.as_str(), i) {
            return Err(ApiError::validation(
                format!("jobs[{i}].id"),
                format!(
                    "jobs[{i}].id: '{}' is also jobs[{first}]; each id may appear once in a list",
                    spec.id
                ),
            ));
        }
        // A spec equal to its job's is left as it is, whatever the checks
        // for new specs would say now (its plugin may have been removed:
        // the job waits for it, and re-applying an unchanged file must
        // not fail on that).
        // The rest of the API's check (the spec validates and fires
        // again) is made by the upsert below, on the job it validates
        // anyway, before it writes anything.
        if !state.scheduler.has_spec(spec) {
            check_plugin(&state, spec).map_err(|e| e.within(&format!("jobs[{i}]"), &spec.id))?;
        }
    }
    // Chains are checked against the whole list before anything is
    // written (the upsert checks them again as it writes).
    state
        .scheduler
        .check_chains(&body.jobs)
        .map_err(|(i, e)| ApiError::from(e).within(&format!("jobs[{i}]"), &body.jobs[i].id))?;
    // What each job was, for the audit log's one row per job changed: a
    // new job needs only its id; only a replaced one's specs are copied
    // (copying every spec was a few percent of adding a million).
    let before: Vec<Before> = body
        .jobs
        .iter()
        .map(|spec| match state.scheduler.spec_of(&spec.id) {
            None => Before::New(spec.id.clone()),
            Some(old) => Before::Replaced(Box::new((old, spec.clone()))),
        })
        .collect();
    let fires_again = |job: &crate::job::Job, now| {
        super::jobs::fires_again(job, now).map_err(|(field, problem)| {
            crate::scheduler::SchedulerError::BadRequest {
                field: field.to_owned(),
                problem,
            }
        })
    };
    let result = state
        .scheduler
        .upsert_jobs_checked(body.jobs, &fires_again)
        .await;
    // Jobs applied: all, or those at the front of the list the error
    // counts (not always all before the failing one: a refused spec stops
    // the ones before it that still wait for their write).
    let written = match &result {
        Ok(_) => before.len(),
        Err(e) => e.applied,
    };
    let changes = before
        .iter()
        .take(written)
        .filter_map(|before| match before {
            Before::New(id) => Some(Change::job(Action::JobCreated, id)),
            Before::Replaced(specs) => Change::job_written(Some(&specs.0), &specs.1),
        })
        .collect();
    super::audit(&state, &actor, changes).await;
    let done = result.map_err(|e| {
        let (index, applied) = (e.index, e.applied);
        let error = ApiError::from(e.error).within(&format!("jobs[{index}]"), &e.id);
        match applied {
            0 => error.noting("; nothing was applied"),
            1 => error.noting("; the first job of the list was applied"),
            n => error.noting(&format!("; the first {n} jobs of the list were applied")),
        }
    })?;
    Ok(Json(Applied {
        unchanged: done.unchanged,
        written: done.written,
        notes: done.notes,
    }))
}
