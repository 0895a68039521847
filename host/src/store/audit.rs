//! What the audit log keeps (issue 15): one row per state change made
//! through the API, the jobs file or a plugin's sidecar, with who made it
//! and from where. On PostgreSQL one table serves every host, so the
//! cluster has one log.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A change to record; the store gives it its id.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// Who: a token's name, `token` (the single `--token`), `anonymous`
    /// (a host without tokens), `config`, `sidecar` or `cli`.
    pub actor: String,
    /// The client's address (`IP:PORT`) for a change over HTTP.
    pub client: Option<String>,
    /// What, snake_case: `job_created`, `job_modified`, `job_deleted`,
    /// `job_paused`, `job_resumed`, `job_run`, `job_backfill`,
    /// `run_replayed`, `run_stopped`, `plugin_pushed`, `plugin_removed`,
    /// `calendar_put`, `calendar_deleted`.
    pub action: String,
    /// What it was done to: a job id, run id, plugin or calendar name.
    pub target: String,
    /// The job the change concerns (the job itself, or a run's job), for
    /// `GET /audit?job=`; `None` for plugins and calendars.
    pub job: Option<String>,
    /// More about it, JSON: for `job_modified` the spec fields that changed
    /// (`{"changed": {"FIELD": {"old": …, "new": …}}}`), for `job_paused`
    /// the note, for runs the new run's id.
    pub detail: serde_json::Value,
}

/// A recorded change, as `GET /audit` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its id: increasing, the cursor of `GET /audit?before=`.
    pub id: i64,
    /// When the change was made (RFC 3339, millisecond precision).
    pub at: DateTime<Utc>,
    /// Who made it (see [`AuditRecord::actor`]).
    pub actor: String,
    /// The client's address, for a change over HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// What (see [`AuditRecord::action`]).
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The job it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// More about it (see [`AuditRecord::detail`]).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// The entry `record` became under `id`.
    pub fn from_record(id: i64, record: AuditRecord) -> Self {
        Self {
            id,
            at: record.at,
            actor: record.actor,
            client: record.client,
            action: record.action,
            target: record.target,
            job: record.job,
            detail: record.detail,
        }
    }
}

/// Which rows `JobStore::audit` returns: newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only rows about this job.
    pub job: Option<String>,
    /// Only rows older than this id (the cursor).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// The detail of a row as stored: JSON text, `{}` for none. A detail that
/// does not parse back (never written by this code) reads as a string.
pub(crate) fn detail_from_text(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// The memory store's audit log (kept apart from its jobs and runs: no
/// lock of theirs is taken to record or read it).
#[derive(Debug, Default)]
pub(crate) struct MemoryAudit {
    /// The rows, oldest first, and the last id given.
    rows: std::sync::Mutex<(Vec<AuditEntry>, i64)>,
}

impl MemoryAudit {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<AuditEntry>, i64)> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `records` with ids after the last one, as the databases'
    /// sequences do (ids of pruned rows are not given again).
    pub(crate) fn record(&self, records: Vec<AuditRecord>) {
        let mut guard = self.lock();
        let (rows, last) = &mut *guard;
        for record in records {
            *last += 1;
            rows.push(AuditEntry::from_record(*last, record));
        }
    }

    /// Newest first, as [`AuditQuery`] says.
    pub(crate) fn query(&self, query: &AuditQuery) -> Vec<AuditEntry> {
        self.lock()
            .0
            .iter()
            .rev()
            .filter(|e| query.before.is_none_or(|b| e.id < b))
            .filter(|e| {
                query
                    .job
                    .as_deref()
                    .is_none_or(|j| e.job.as_deref() == Some(j))
            })
            .take(query.limit)
            .cloned()
            .collect()
    }

    /// Drops rows made before `cutoff`.
    pub(crate) fn prune(&self, cutoff: DateTime<Utc>) {
        self.lock().0.retain(|e| e.at >= cutoff);
    }
}
