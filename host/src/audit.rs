//! The audit log's recording side (issue 15): every path that changes
//! state (the API's handlers, the jobs file at start, plugin sidecars)
//! says what it changed here, and [`record`] writes it to the store with
//! who and from where. A new route that changes something makes a
//! [`Change`] and calls [`record`]; nothing else is needed.
//!
//! ```text
//! API handler / jobs file / sidecar ──▶ Change ──▶ record(store, actor) ──▶ audit table
//! ```
//!
//! A failed audit write does not undo or fail the change: the change is
//! made and committed by then, and failing the request would invite the
//! client to repeat a change that happened. It is logged at `error` with
//! the whole row, so the log holds what the table missed.

use crate::job::JobSpec;
use crate::store::{AuditRecord, JobStore};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Who made a change, as the audit log records it: the token's name
/// (`token` for the single `--token`, `anonymous` on a host without
/// tokens) and the client's address when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's name, `anonymous`, or for changes that come from no
    /// request `config` (the jobs file), `sidecar` (a plugin's sidecar
    /// jobs) or `cli`.
    pub name: String,
    /// The client's IP address and port, when the change came over HTTP.
    pub client: Option<String>,
}

impl Actor {
    /// A change that came from no request: `config`, `sidecar`, `cli`.
    pub fn internal(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            client: None,
        }
    }
}

/// What kind of change: the `action` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A job was added.
    JobCreated,
    /// A job's spec changed (the detail has the fields, old and new).
    JobModified,
    /// A job was deleted.
    JobDeleted,
    /// A job was paused (the detail has the note).
    JobPaused,
    /// A job was resumed.
    JobResumed,
    /// A job was run now.
    JobRun,
    /// Missed fires of a job were run (backfill).
    JobBackfill,
    /// A run was replayed.
    RunReplayed,
    /// A run was asked to stop.
    RunStopped,
    /// A plugin file was pushed.
    PluginPushed,
    /// A plugin file was removed.
    PluginRemoved,
    /// A named calendar was defined or changed.
    CalendarPut,
    /// A named calendar was deleted.
    CalendarDeleted,
}

impl Action {
    /// The snake_case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobCreated => "job_created",
            Self::JobModified => "job_modified",
            Self::JobDeleted => "job_deleted",
            Self::JobPaused => "job_paused",
            Self::JobResumed => "job_resumed",
            Self::JobRun => "job_run",
            Self::JobBackfill => "job_backfill",
            Self::RunReplayed => "run_replayed",
            Self::RunStopped => "run_stopped",
            Self::PluginPushed => "plugin_pushed",
            Self::PluginRemoved => "plugin_removed",
            Self::CalendarPut => "calendar_put",
            Self::CalendarDeleted => "calendar_deleted",
        }
    }
}

/// One change to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    action: Action,
    target: String,
    job: Option<String>,
    detail: Value,
}

impl Change {
    /// A change to job `id` (its target and its job).
    pub fn job(action: Action, id: &str) -> Self {
        Self {
            action,
            target: id.to_owned(),
            job: Some(id.to_owned()),
            detail: json!({}),
        }
    }

    /// A change to run `run_id` of job `job_id`.
    pub fn run(action: Action, run_id: &str, job_id: &str) -> Self {
        Self {
            target: run_id.to_owned(),
            ..Self::job(action, job_id)
        }
    }

    /// A change to a plugin or calendar `name` (no job).
    pub fn named(action: Action, name: &str) -> Self {
        Self {
            action,
            target: name.to_owned(),
            job: None,
            detail: json!({}),
        }
    }

    /// The same with `detail` (a JSON object).
    #[must_use]
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// A job written with spec `after` that had spec `before` (`None`: it
    /// is new): `job_created`, or `job_modified` with the fields that
    /// changed; `None` when nothing did.
    pub fn job_written(before: Option<&JobSpec>, after: &JobSpec) -> Option<Self> {
        match before {
            None => Some(Self::job(Action::JobCreated, &after.id)),
            Some(before) => {
                let changed = spec_diff(before, after);
                (!changed.is_empty()).then(|| {
                    Self::job(Action::JobModified, &after.id)
                        .with_detail(json!({ "changed": changed }))
                })
            }
        }
    }

    /// The row for the store.
    fn into_record(self, actor: &Actor, at: chrono::DateTime<chrono::Utc>) -> AuditRecord {
        AuditRecord {
            at,
            actor: actor.name.clone(),
            client: actor.client.clone(),
            action: self.action.as_str().to_owned(),
            target: self.target,
            job: self.job,
            detail: self.detail,
        }
    }
}

/// The top-level spec fields whose values differ, each as `{"old": …,
/// "new": …}` (a field absent on one side is `null` there). Top-level
/// fields, not a deep diff: a trigger or capabilities block is shown
/// whole, which is how a person reads it.
pub fn spec_diff(before: &JobSpec, after: &JobSpec) -> Map<String, Value> {
    let as_map = |spec: &JobSpec| match serde_json::to_value(spec) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (old, new) = (as_map(before), as_map(after));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (o, n) = (
                old.get(k).unwrap_or(&Value::Null),
                new.get(k).unwrap_or(&Value::Null),
            );
            (o != n).then(|| (k.clone(), json!({ "old": o, "new": n })))
        })
        .collect()
}

/// Records `changes` made by `actor`, now. Never fails: a store failure
/// is logged at `error` with every row (see the module docs for why the
/// change itself stands).
pub async fn record(store: &dyn JobStore, actor: &Actor, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    // Whole milliseconds: what every backend keeps (SQLite stores ms).
    let now = chrono::Utc::now();
    let at = chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    let records: Vec<AuditRecord> = changes
        .into_iter()
        .map(|c| c.into_record(actor, at))
        .collect();
    if let Err(e) = store.record_audit(records.clone()).await {
        for r in &records {
            tracing::error!(
                error = %e,
                actor = %r.actor,
                client = r.client.as_deref().unwrap_or(""),
                action = %r.action,
                target = %r.target,
                detail = %r.detail,
                "the audit log could not be written; the change itself was made"
            );
        }
    }
}

/// Default of `--audit-keep-for`: 90 days.
pub const DEFAULT_KEEP_FOR: Duration = Duration::from_secs(90 * 24 * 3600);

/// How often old audit rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Prunes audit rows older than `keep_for` now and every hour until
/// `stop`. On a shared database every host prunes; the deletes are
/// idempotent, so that costs nothing but a statement an hour each.
pub fn spawn_pruner(
    store: Arc<dyn JobStore>,
    keep_for: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let keep = chrono::Duration::from_std(keep_for).unwrap_or(chrono::Duration::MAX);
            if let Some(cutoff) = chrono::Utc::now().checked_sub_signed(keep)
                && let Err(e) = store.prune_audit(cutoff).await
            {
                tracing::warn!(error = %e, "pruning the audit log failed; trying again in an hour");
            }
            tokio::select! {
                () = tokio::time::sleep(PRUNE_EVERY) => {}
                () = stop.cancelled() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> JobSpec {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_modification_lists_the_fields_that_changed_with_both_values() {
        let before = spec(
            r#"{"id":"a","plugin":"hello","trigger":{"type":"interval","every":"1m"},"args":{"x":1}}"#,
        );
        let after = spec(
            r#"{"id":"a","plugin":"hello","trigger":{"type":"interval","every":"5m"},"args":{"x":1}}"#,
        );
        let change = Change::job_written(Some(&before), &after).unwrap();
        assert_eq!(change.action, Action::JobModified);
        let changed = &change.detail["changed"];
        assert_eq!(changed.as_object().unwrap().len(), 1, "{changed}");
        assert_eq!(changed["trigger"]["old"]["every"], "1m");
        assert_eq!(changed["trigger"]["new"]["every"], "5m");
        assert!(Change::job_written(Some(&after), &after).is_none());
        assert_eq!(
            Change::job_written(None, &after).unwrap().action,
            Action::JobCreated
        );
    }
}
