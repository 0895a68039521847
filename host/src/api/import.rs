//! `POST /jobs/import?dry_run=&prune=`: make this host's jobs what a jobs
//! file (`GET /jobs/export`'s answer) says, and say what that changes.
//!
//! The plan is made first ([`plan`]): each job of the file is *added*
//! (no job has its id), *changed* (with the top-level fields that differ)
//! or *unchanged* (equal to the stored spec or to its exported form, so a
//! host's own export imports as no change); with `prune`, jobs the file
//! does not list are *removed*. Every added and changed spec is checked
//! as `PUT /jobs` checks it (plugin, validation against the calendars the
//! file brings, the operator's grant policy) before anything is written.
//! A dry run answers the plan and stops there: nothing is written, no
//! event is sent.
//!
//! The writes go through one function ([`apply`]): calendars, then the
//! added and changed jobs with [`crate::scheduler::Scheduler::upsert_jobs`]
//! (as `PUT /jobs` and a jobs file at start), then the removals.

use super::export::{JobsDocument, exported_spec};
use super::extract::{Body, Query};
use super::jobs::check_plugin;
use super::{ApiError, ApiState, MAX_APPLY_JOBS};
use crate::job::JobSpec;
use crate::trigger::calendar::Calendar;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// `POST /jobs/import`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `true`: answer what the import would do, and do nothing.
    #[param(value_type = Option<bool>)]
    pub dry_run: Option<String>,
    /// `true`: also remove the jobs the file does not list (only then).
    #[param(value_type = Option<bool>)]
    pub prune: Option<String>,
}

/// A job the import changes, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChangedJob {
    /// The job's id.
    pub id: String,
    /// The spec's top-level fields that differ, e.g. `["trigger", "args"]`.
    pub fields: Vec<String>,
}

/// What an import does (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Imported {
    /// Whether this was a dry run (nothing was written).
    pub dry_run: bool,
    /// Jobs of the file no job here has the id of, in file order.
    pub added: Vec<String>,
    /// Jobs of the file whose spec differs from the stored one.
    pub changed: Vec<ChangedJob>,
    /// With `prune`: jobs here the file does not list, by id. Empty
    /// without `prune`.
    pub removed: Vec<String>,
    /// How many jobs of the file are equal to their stored job.
    pub unchanged: usize,
    /// Calendars of the file that are new or differ here (defined or
    /// replaced); calendars are never removed by an import.
    pub calendars: Vec<String>,
}

/// The plan of an import: the report and the specs to write.
struct Plan {
    report: Imported,
    calendars: Vec<(String, crate::trigger::calendar::CalendarSpec)>,
    upserts: Vec<JobSpec>,
}

/// Import a jobs file: add, change (and with `prune`, remove) jobs so
/// this host has what the file says.
///
/// Every added or changed spec is checked first; one bad spec answers
/// 422 naming it (`jobs[3].trigger.expr`) and nothing is written. With
/// `dry_run=true` the answer says what would be done, and nothing is.
#[utoipa::path(post, path = "/jobs/import", tag = "jobs", request_body = JobsDocument,
    params(ImportQuery),
    responses(
        (status = 200, description = "What was (or, in a dry run, would be) added, changed, removed and left unchanged", body = Imported),
        (status = 400, description = "Malformed JSON, or a query parameter not known", body = super::ErrorBody),
        (status = 401, description = "Token required", body = super::ErrorBody),
        (status = 413, description = "Body too large", body = super::ErrorBody),
        (status = 415, description = "Not sent as application/json", body = super::ErrorBody),
        (status = 422, description = "An invalid spec or calendar (named in `field`), an id listed twice, more than 10,000 jobs, a bad dry_run or prune", body = super::ErrorBody),
    ))]
pub(super) async fn import(
    State(state): State<ApiState>,
    axum::Extension(actor): axum::Extension<super::Actor>,
    Query(q): Query<ImportQuery>,
    Body(doc): Body<JobsDocument>,
) -> Result<Json<Imported>, ApiError> {
    let dry_run = flag("dry_run", q.dry_run.as_deref())?;
    let prune = flag("prune", q.prune.as_deref())?;
    let mut plan = plan(&state, doc, prune)?;
    plan.report.dry_run = dry_run;
    if !dry_run {
        apply(&state, &actor, &plan).await?;
    }
    Ok(Json(plan.report))
}

fn flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::validation(
            name,
            format!("{name}: '{other}' is not true or false"),
        )),
    }
}

/// Compares the file with this host's jobs and checks what would change.
fn plan(state: &ApiState, doc: JobsDocument, prune: bool) -> Result<Plan, ApiError> {
    if doc.version != 1 {
        return Err(ApiError::validation(
            "version",
            format!(
                "version: {} is not supported (this wasmcron reads version 1)",
                doc.version
            ),
        ));
    }
    if doc.jobs.len() > MAX_APPLY_JOBS {
        return Err(ApiError::validation(
            "jobs",
            format!(
                "jobs: {} specs in one import; import at most {MAX_APPLY_JOBS} at once (or \
                 apply the rest with PUT /jobs)",
                doc.jobs.len()
            ),
        ));
    }
    let scheduler = &state.scheduler;
    // The calendars the jobs will be checked against: this host's, with
    // the file's put over them (as the import will define them first).
    let mut calendars = (*scheduler.calendar_set()).clone();
    let mut calendar_writes = Vec::new();
    for (name, spec) in doc.calendars {
        let checked = Calendar::new(&spec).map_err(|e| {
            ApiError::validation(
                format!("calendars.{name}.{}", e.field()),
                format!("calendars.{name}.{}: {}", e.field(), e.problem()),
            )
        })?;
        if calendars.get(&name).is_some_and(|c| *c.spec() == spec) {
            continue;
        }
        calendars.insert(name.clone(), Arc::new(checked));
        calendar_writes.push((name, spec));
    }
    let current: HashMap<String, _> = scheduler
        .jobs()
        .into_iter()
        .map(|info| (info.spec.id.clone(), info))
        .collect();
    let mut report = Imported {
        calendars: calendar_writes.iter().map(|(n, _)| n.clone()).collect(),
        ..Imported::default()
    };
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(doc.jobs.len());
    let mut upserts = Vec::new();
    for (i, spec) in doc.jobs.iter().enumerate() {
        if let Some(first) = seen.insert(spec.id.as_str(), i) {
            return Err(ApiError::validation(
                format!("jobs[{i}].id"),
                format!(
                    "jobs[{i}].id: '{}' is also jobs[{first}]; each id may appear once in a file",
                    spec.id
                ),
            ));
        }
        let fields = match current.get(&spec.id) {
            None => None,
            Some(info) => {
                let exported = exported_spec(info);
                if *spec == info.spec || *spec == exported {
                    report.unchanged += 1;
                    continue;
                }
                Some(differing(&exported, spec))
            }
        };
        let within = |e: ApiError| e.within(&format!("jobs[{i}]"), &spec.id);
        check_plugin(state, spec).map_err(within)?;
        scheduler
            .check_spec(spec, &calendars)
            .map_err(|e| within(ApiError::from(e)))?;
        match fields {
            None => report.added.push(spec.id.clone()),
            Some(fields) => report.changed.push(ChangedJob {
                id: spec.id.clone(),
                fields,
            }),
        }
        upserts.push(spec.clone());
    }
    // Chains are checked against the whole file here, so a dry run
    // refuses a bad one as the import would.
    scheduler
        .check_chains(&doc.jobs)
        .map_err(|(i, e)| ApiError::from(e).within(&format!("jobs[{i}]"), &doc.jobs[i].id))?;
    if prune {
        let listed: HashSet<&str> = doc.jobs.iter().map(|s| s.id.as_str()).collect();
        let mut removed: Vec<String> = current
            .keys()
            .filter(|id| !listed.contains(id.as_str()))
            .cloned()
            .collect();
        removed.sort();
        report.removed = removed;
    }
    Ok(Plan {
        report,
        calendars: calendar_writes,
        upserts,
    })
}

/// The top-level fields of two specs that differ, sorted.
fn differing(old: &JobSpec, new: &JobSpec) -> Vec<String> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut fields: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    fields.extend(old.keys().filter(|k| !new.contains_key(*k)).cloned());
    fields.sort();
    fields
}

/// How many jobs an import adds or changes, and removes, before it writes
/// their audit rows: the rows follow the changes in steps this small, so a
/// host killed in the middle of a large import loses at most one step's
/// rows of the changes it made (it lost all of them when the rows were
/// written at the end: a fresh-user trial killed an import with `prune`
/// after 2,027 removals and found none of them in the log). Upserts go in
/// larger steps: each step is one store commit, a removal is one already.
const UPSERT_STEP: usize = 1000;
/// See [`UPSERT_STEP`].
const REMOVE_STEP: usize = 100;

/// Writes a checked plan: calendars, then jobs ([`UPSERT_STEP`] at a
/// time), then the removals; each change made goes in the audit log under
/// `actor` as it is made, also when a later step fails (what was written
/// stays written). The one place an import changes anything.
async fn apply(state: &ApiState, actor: &super::Actor, plan: &Plan) -> Result<(), ApiError> {
    use crate::audit::{Action, Change};
    let scheduler = &state.scheduler;
    let mut changes = Vec::new();
    for (name, spec) in &plan.calendars {
        if let Err(e) = scheduler.put_calendar(name, spec.clone()).await {
            super::audit(state, actor, changes).await;
            return Err(e.into());
        }
        changes.push(Change::named(Action::CalendarPut, name));
    }
    super::audit(state, actor, std::mem::take(&mut changes)).await;
    for (n, step) in plan.upserts.chunks(UPSERT_STEP).enumerate() {
        let before: Vec<Option<JobSpec>> = step
            .iter()
            .map(|spec| scheduler.spec_of(&spec.id))
            .collect();
        let written = scheduler.upsert_jobs(step.to_vec()).await;
        let count = written.as_ref().map_or_else(|e| e.applied, |_| step.len());
        let changes: Vec<Change> = step
            .iter()
            .zip(&before)
            .take(count)
            .filter_map(|(after, before)| Change::job_written(before.as_ref(), after))
            .collect();
        super::audit(state, actor, changes).await;
        if let Err(e) = written {
            let id = e.id.clone();
            let imported = n * UPSERT_STEP + e.applied;
            return Err(ApiError::from(e.error).noting(&format!(
                " (job '{id}'; the first {imported} jobs of the file were imported: \
                 importing the same file again is safe)"
            )));
        }
    }
    for step in plan.report.removed.chunks(REMOVE_STEP) {
        let mut changes = Vec::new();
        for id in step {
            match scheduler.remove_job(id).await {
                Ok(()) => changes.push(Change::job(Action::JobDeleted, id)),
                Err(crate::scheduler::SchedulerError::JobNotFound(_)) => {}
                Err(e) => {
                    super::audit(state, actor, changes).await;
                    return Err(ApiError::from(e));
                }
            }
        }
        super::audit(state, actor, changes).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> JobSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn differing_fields_are_named() {
        let a = spec(r#"{"id":"a","plugin":"hello","trigger":{"type":"interval","every":"1h"}}"#);
        let b = spec(
            r#"{"id":"a","plugin":"hello","args":{"x":1},"trigger":{"type":"interval","every":"2h"}}"#,
        );
        assert_eq!(differing(&a, &b), vec!["args", "trigger"]);
        assert_eq!(differing(&b, &a), vec!["args", "trigger"]);
    }
}
