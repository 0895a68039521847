//! At start: stored jobs that the operator's grant policy no longer
//! allows.
//!
//! A job added under a wider policy (or none) stays in the store when the
//! host restarts with a narrower one. It is neither deleted nor silently
//! changed: it is **paused with a note** naming the grant and the flag,
//! so it shows in `GET /jobs?state=paused` and the dashboard with the
//! reason, keeps its history, and comes back with one `PATCH` (narrower
//! capabilities) and a resume. Refusing to start instead would take every
//! other job down with it. Its runs are refused by the runtime's own check
//! anyway, should it be resumed unchanged.

use crate::audit::{Action, Actor, Change, record};
use crate::scheduler::Scheduler;

/// Pauses every running job whose own capabilities the policy refuses.
pub(super) async fn pause_outside(scheduler: &Scheduler) {
    let policy = scheduler.runtime().policy();
    if policy.is_open() {
        return;
    }
    for info in scheduler.jobs() {
        if info.paused {
            continue;
        }
        let Some(caps) = info.spec.capabilities.as_deref() else {
            continue;
        };
        let Ok(grants) = caps.validate() else {
            continue;
        };
        let Err(refused) = policy.check(&grants) else {
            continue;
        };
        let note = format!(
            "paused at start: {refused}. The operator's grant policy (wasmcron run --allow-*) \
             no longer allows this job's capabilities; change them and resume it"
        );
        tracing::warn!(job = %info.spec.id, "{note}");
        match scheduler
            .pause_job_with_note(&info.spec.id, Some(note.clone()))
            .await
        {
            // In the audit log as the host's own change, like a person's
            // pause with its note.
            Ok(_) => {
                let change = Change::job(Action::JobPaused, &info.spec.id)
                    .with_detail(serde_json::json!({ "note": note }));
                record(
                    scheduler.store().as_ref(),
                    &Actor::internal("host"),
                    vec![change],
                )
                .await;
            }
            Err(e) => {
                tracing::error!(job = %info.spec.id, error = %e, "could not pause a job outside the grant policy");
            }
        }
    }
}
