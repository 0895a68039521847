//! Chains (issue 13): `on_success` / `on_failure` start other jobs when a
//! fire of a job ends that way, once per fire.
//!
//! A spec's chain targets must exist (in the scheduler, or earlier or
//! later in the same jobs list) and must not lead back to the job: both are
//! checked when it is added or changed, and a cycle is refused with its
//! path. A target deleted later is passed over at run time with a warning.
//! The child's run has origin `chain`, its parent's run id
//! (`parent_run_id`, kept by its retries too) and a note naming the
//! parent; the API shows both (`GET /runs/{run_id}` of the parent has its
//! output). A 0.2.0 guest reads its parent in its run context
//! ([`parent_of`]): job, run, outcome, and the output or error message.

use super::manual::{Submit, submit};
use super::{Inner, SchedulerError, State, execute};
use crate::event::Event;
use crate::job::{Job, JobError, JobSpec};
use crate::runtime::{Outcome, ParentRun};
use crate::store::{RunOrigin, RunRecord, RunStatus, Write};
use std::collections::HashMap;
use std::sync::Arc;

/// The chain edges of a job: its `on_success` and `on_failure` targets.
fn edges(spec: &JobSpec) -> impl Iterator<Item = &str> {
    spec.on_success
        .iter()
        .chain(&spec.on_failure)
        .map(String::as_str)
}

/// The chain targets of each spec of a jobs list, by id (every id, so a
/// target later in the list counts as existing); empty when no spec of the
/// list chains (the common case, and a million-job list costs nothing).
pub(super) fn listed(specs: &[JobSpec]) -> HashMap<String, Vec<String>> {
    if specs
        .iter()
        .all(|s| s.on_success.is_empty() && s.on_failure.is_empty())
    {
        return HashMap::new();
    }
    specs
        .iter()
        .map(|s| (s.id.clone(), edges(s).map(str::to_owned).collect()))
        .collect()
}

/// Checks `spec`'s chain targets against the jobs the scheduler has and
/// `listed` (the specs of the same jobs list, from [`listed`], which
/// replace the scheduler's for this check).
///
/// # Errors
/// [`SchedulerError::Invalid`] naming `on_success[i]` / `on_failure[i]`:
/// a target that is no job, or one from which the chain leads back to
/// `spec` (the path is in the message).
///
/// `cycles`: whether to search for a path back to `spec`; `false` when
/// [`acyclic`] found no cycle among the list's chains (the search from
/// each spec of a long chain walks the rest of it: quadratic).
pub(super) fn check(
    state: &State,
    spec: &JobSpec,
    listed: &HashMap<String, Vec<String>>,
    cycles: bool,
) -> Result<(), SchedulerError> {
    if spec.on_success.is_empty() && spec.on_failure.is_empty() {
        return Ok(());
    }
    let targets_of = |id: &str| -> Vec<String> {
        if id == spec.id {
            return edges(spec).map(str::to_owned).collect();
        }
        if let Some(targets) = listed.get(id) {
            return targets.clone();
        }
        state
            .jobs
            .get(id)
            .map(|e| edges(&e.job.spec).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let exists = |id: &str| listed.contains_key(id) || state.jobs.contains_key(id);
    for (field, ids) in [
        ("on_success", &spec.on_success),
        ("on_failure", &spec.on_failure),
    ] {
        for (index, target) in ids.iter().enumerate() {
            let bad = |problem: String| {
                SchedulerError::Invalid(JobError::Chain {
                    field,
                    index,
                    problem,
                })
            };
            // What the spec's own validation refuses, with its own words
            // (a chain to itself, an id listed twice, a malformed id), is
            // left to it: a bulk request checks chains before validating.
            if *target == spec.id
                || ids[..index].contains(target)
                || crate::job::JobId::new(target.as_str()).is_err()
            {
                continue;
            }
            if !exists(target) {
                return Err(bad(format!(
                    "no job '{target}'; add it first (or in the same jobs file), or remove it \
                     from {field}"
                )));
            }
            if !cycles {
                continue;
            }
            // Depth-first from the target: a path back to this job is a
            // cycle. Each job reached keeps the one it was reached from
            // (not its whole path: copying paths made a 5,000-job chain
            // take minutes), to spell the cycle out.
            let mut from: HashMap<String, Option<String>> = HashMap::new();
            from.insert(target.clone(), None);
            let mut stack = vec![target.clone()];
            while let Some(job) = stack.pop() {
                for next in targets_of(&job) {
                    if next == spec.id {
                        let mut path = vec![spec.id.clone()];
                        let mut at = Some(job.clone());
                        while let Some(id) = at {
                            at = from.get(&id).cloned().flatten();
                            path.push(id);
                        }
                        path.push(spec.id.clone());
                        path.reverse();
                        return Err(bad(format!(
                            "chains back to '{}': {}; a chain must not lead back to its job",
                            spec.id,
                            path.join(" → ")
                        )));
                    }
                    if !from.contains_key(&next) {
                        from.insert(next.clone(), Some(job.clone()));
                        stack.push(next);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether the chains of `listed` (a jobs list, from [`listed`]), with
/// those of the scheduler's jobs they lead to, hold no cycle: one
/// depth-first pass over them all, in time linear in jobs and chains.
/// When they hold none, [`check`] need not search for a path back from
/// each spec (a 20,000-job chain searched so took over a minute of the
/// API's thread). When they hold one, `check` finds and words it.
pub(super) fn acyclic(state: &State, listed: &HashMap<String, Vec<String>>) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let targets_of = |id: &str| -> Vec<&str> {
        match listed.get(id) {
            Some(targets) => targets.iter().map(String::as_str).collect(),
            None => state
                .jobs
                .get(id)
                .map(|e| edges(&e.job.spec).collect())
                .unwrap_or_default(),
        }
    };
    let mut mark: HashMap<&str, Mark> = HashMap::with_capacity(listed.len());
    for root in listed.keys() {
        if mark.contains_key(root.as_str()) {
            continue;
        }
        mark.insert(root, Mark::Visiting);
        let mut stack: Vec<(&str, Vec<&str>, usize)> = vec![(root, targets_of(root), 0)];
        while let Some((job, targets, next)) = stack.last_mut() {
            match targets.get(*next).copied() {
                Some(target) => {
                    *next += 1;
                    match mark.get(target) {
                        Some(Mark::Visiting) => return false,
                        Some(Mark::Done) => {}
                        None => {
                            mark.insert(target, Mark::Visiting);
                            let further = targets_of(target);
                            stack.push((target, further, 0));
                        }
                    }
                }
                None => {
                    mark.insert(job, Mark::Done);
                    stack.pop();
                }
            }
        }
    }
    true
}

/// Starts the jobs `job` chains to after its run `run` ended as `kind`,
/// with no retry to follow: `on_success` after `succeeded`, `on_failure`
/// after a failure of the guest (`failed`, `trapped`, `out-of-fuel`,
/// `timed-out`, `memory-limit`). An interrupted run (the host stopped it)
/// chains nothing.
pub(super) fn start_children(inner: &Arc<Inner>, job: &Job, run: &RunRecord, kind: &str) {
    let (targets, how) = match kind {
        "succeeded" => (&job.spec.on_success, "on_success"),
        "failed" | "trapped" | "out-of-fuel" | "timed-out" | "memory-limit" => {
            (&job.spec.on_failure, "on_failure")
        }
        _ => return,
    };
    if targets.is_empty() {
        return;
    }
    let note = format!(
        "chained: {how} of run {} of job '{}' ({kind})",
        run.run_id, run.job_id
    );
    for target in targets.clone() {
        let inner = inner.clone();
        let note = note.clone();
        let parent = run.run_id.clone();
        inner.tasks.clone().spawn(async move {
            let now = inner.clock.now();
            let submitted = submit(
                &inner,
                Submit {
                    note: Some(note.clone()),
                    parent_run_id: Some(parent.clone()),
                    ..Submit::new(&target, now, RunOrigin::Chain)
                },
            )
            .await;
            let status = match submitted {
                Ok(_) => return,
                Err(SchedulerError::JobNotFound(_)) => {
                    tracing::warn!(job = %target, "{note}: the chained job no longer exists");
                    return;
                }
                Err(SchedulerError::MaxInstances { .. }) => RunStatus::Skipped,
                Err(SchedulerError::PluginNotLoaded { .. }) => RunStatus::Missed,
                Err(e) => {
                    tracing::warn!(job = %target, error = %e, "{note}: could not record the chained run");
                    return;
                }
            };
            let Some(incarnation) = inner
                .lock()
                .jobs
                .get(target.as_str())
                .map(|e| e.incarnation.to_string())
            else {
                return;
            };
            let why = if status == RunStatus::Skipped {
                "its max_instances runs were going"
            } else {
                "its plugin is not loaded"
            };
            let note = format!("{note}; not run: {why}");
            tracing::warn!(job = %target, "{note}");
            let row = RunRecord {
                origin: RunOrigin::Chain,
                parent_run_id: Some(parent),
                ..RunRecord::not_run(&target, now, status, note.clone()).of(&incarnation)
            };
            let event = execute::run_event(&row, now, None, Some(note));
            if inner.store.write(vec![Write::Run(row)]).await.is_ok() {
                inner.events.publish(if status == RunStatus::Skipped {
                    Event::RunSkipped(event)
                } else {
                    Event::RunMissed(event)
                });
            }
        });
    }
}

/// The parent of `run` (chained from run `parent_id`), as its guest's run
/// context has it, read from the store: how the parent ended, with its
/// output on success and its message on failure. `None`, logged, when the
/// record cannot be read or is gone (pruned, its job deleted): the run
/// goes on without it.
pub(super) async fn parent_of(
    inner: &Inner,
    run: &RunRecord,
    parent_id: &str,
) -> Option<ParentRun> {
    let parent = match inner.store.run_summary(parent_id).await {
        Ok(Some(parent)) => parent,
        Ok(None) => {
            tracing::warn!(job = %run.job_id, run = %run.run_id, parent = parent_id, "the parent run is no longer in the history; the guest gets no parent");
            return None;
        }
        Err(e) => {
            tracing::warn!(job = %run.job_id, run = %run.run_id, parent = parent_id, error = %e, "could not read the parent run; the guest gets no parent");
            return None;
        }
    };
    let (outcome, output, message) = match parent.outcome {
        Some(o) => {
            let kind = o.kind().as_str().to_owned();
            match o {
                Outcome::Succeeded { output } => (kind, Some(output), None),
                Outcome::Failed { message, .. } | Outcome::Trapped { message } => {
                    (kind, None, Some(message))
                }
                // Out of fuel, timed out, over memory: the kind says it
                // all, as the run's failure event says it.
                _ => (kind.clone(), None, Some(kind)),
            }
        }
        // A parent without an outcome did not finish (a chain starts only
        // after its parent's end is recorded): say where it is.
        None => (parent.status.as_str().to_owned(), None, parent.note),
    };
    Some(ParentRun {
        job_id: parent.job_id,
        run_id: parent.run_id,
        outcome,
        output,
        message,
    })
}
