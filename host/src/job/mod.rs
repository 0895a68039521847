//! The validated job definition: plain data, no I/O.
//!
//! A [`JobSpec`] is what people write (config file, API body). It is
//! validated once into a [`Job`], whose fields later code trusts: the id is
//! well-formed, the trigger built, the limits enforceable, the retry policy
//! sane. The spec is kept as written, since it is what the store persists
//! and what the API shows back.

mod capabilities;
pub mod exclude;
mod listener;
mod overlap;
mod retry;

pub use capabilities::{Capabilities, CapabilityError, DirMode, DirSpec};
use listener::valid_name;
pub use listener::{ListenFor, Listener, ListenerSpec, ListenerTarget};
pub use overlap::{DEFAULT_MAX_BUFFERED, Overlap, buffer_full_note, buffered_note, cancelled_note};
pub use retry::{Backoff, RETRYABLE_KINDS, RetryPolicy, RetrySpec};
/// The list type of [`JobSpec`]'s lists (`exclude`, `on_success`,
/// `on_failure`, `listeners`): `thin_vec::ThinVec`, a `Vec` one pointer
/// wide that allocates nothing while empty. Build one with
/// `ThinVec::from(vec![...])` or `thin_vec::thin_vec![...]`.
pub use thin_vec::ThinVec;

use crate::duration::{self, DurationError};
use crate::runtime::Limits;
use crate::runtime::grants::Grants;
use crate::trigger::calendar::Calendars;
use crate::trigger::{Trigger, TriggerError, TriggerSpec};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The longest a job's retry delays and history window (`keep_for`) may
/// be: 100 years, beyond any use, and short enough that the scheduler's
/// `now + delay` and `now - keep_for` stay on chrono's calendar (which
/// ends in the year 262,143, where its `+` and `-` panic).
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

/// A job's id: 1-128 characters of `A-Z a-z 0-9 . _ -`, but not `.` or
/// `..`, so it is safe in URLs, file names and log lines without escaping. Shared text: the
/// scheduler's job table keys its entry with the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(Arc<str>);

impl JobId {
    /// Checks and wraps an id.
    ///
    /// # Errors
    /// [`JobError::InvalidId`] saying what is wrong.
    pub fn new(id: impl Into<String>) -> Result<Self, JobError> {
        let id = id.into();
        if id.is_empty() || id.len() > 128 {
            return Err(JobError::InvalidId {
                id,
                problem: "must be 1 to 128 characters long".into(),
            });
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(JobError::InvalidId {
                problem: format!("contains {c:?}; use letters, digits, '.', '_' and '-'"),
                id,
            });
        }
        // URLs collapse `.` and `..` segments (RFC 3986 §5.2.4): browsers
        // would send `/jobs/./pause` as `/jobs/pause`.
        if id.chars().all(|c| c == '.') && id.len() <= 2 {
            return Err(JobError::InvalidId {
                id,
                problem: "is a path segment URLs collapse ('.' or '..'); add a letter or digit"
                    .into(),
            });
        }
        Ok(Self(Arc::from(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's shared text (a clone of the pointer, not of the text).
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    /// A stable 64-bit seed derived from the id (FNV-1a), for jitter.
    pub fn seed(&self) -> u64 {
        self.0.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

impl TryFrom<String> for JobId {
    type Error = JobError;
    fn try_from(s: String) -> Result<Self, JobError> {
        Self::new(s)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0.to_string()
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Limits as written; unset fields take the host's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "limits: a table, e.g. { fuel = 1000000000, timeout = \"30s\", memory_mib = 64 }"
)]
pub struct LimitsSpec {
    /// Instruction budget, e.g. `10000000000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock limit, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Memory limit in MiB, e.g. `128`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
}

/// A job as written in a config file or API body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a job spec: a table (a JSON object) with `id`, `plugin` and `trigger`"
)]
pub struct JobSpec {
    /// Unique id, e.g. `nightly-report`.
    pub id: String,
    /// The plugin's name: its file stem in the plugins folder.
    pub plugin: String,
    /// When it runs.
    // Boxed, like the other large optional parts, and the lists are
    // `ThinVec`s (one pointer, no allocation while empty): a host keeps
    // every job's spec in memory, and most jobs leave them unset
    // (docs/BENCHMARKS.md, "Memory per job"). A `//` comment: doc
    // comments here become the OpenAPI document's descriptions.
    pub trigger: Box<TriggerSpec>,
    /// Days on which it does not fire: names of calendars
    /// (`PUT /calendars/{name}`, `[calendars.NAME]` in a jobs file) and
    /// dates given inline, `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`, e.g.
    /// `["holidays", "2026-12-24"]`. Dates are read in the trigger's `tz`.
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub exclude: ThinVec<String>,
    /// Arguments passed to every run, as JSON.
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
    /// Per-run limits; unset fields take the host defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Box<LimitsSpec>>,
    /// What to do when a run fails; unset: no retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Box<RetrySpec>>,
    /// How late a run may start and still run, e.g. `10m`. Unset: however
    /// late (a late run is better than a silently missing one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub misfire_grace: Option<Box<str>>,
    /// After downtime, run once for all missed fires rather than once each.
    #[serde(default = "yes")]
    pub coalesce: bool,
    /// Runs of this job allowed at once; a fire beyond it is skipped (and
    /// recorded), never queued.
    #[serde(default = "one")]
    pub max_instances: u32,
    /// What a fire does when `max_instances` runs are going: `skip` (the
    /// default), `buffer-one`, `buffer-all`, `cancel-other` or `allow-all`
    /// (Temporal's overlap policies; see [`Overlap`]).
    #[serde(default, skip_serializing_if = "Overlap::is_default")]
    pub overlap: Overlap,
    /// Under `overlap = "buffer-all"`, the most fires kept waiting (at
    /// least 1; unset: 100). Refused with any other policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffered: Option<u32>,
    /// Keep the job but do not fire it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Also run once when the scheduler starts (on a shared store: when a
    /// host takes over as leader), recorded with cause `start`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub run_on_start: bool,
    /// Jobs started when a fire of this job succeeds (once per fire),
    /// e.g. `["publish-report"]`; their runs have cause `chain`.
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub on_success: ThinVec<String>,
    /// Jobs started when a fire of this job has failed for good (its
    /// retries exhausted), e.g. `["page-oncall"]`.
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub on_failure: ThinVec<String>,
    /// Run history kept for this job (the newest N runs).
    #[serde(default = "default_keep_runs")]
    pub keep_runs: u32,
    /// Also drop history older than this, e.g. `30d`. Unset: by count only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub keep_for: Option<Box<str>>,
    /// Who hears about this job's runs: by default its failed and missed
    /// ones (each entry's `on` and `after_failures` choose).
    #[serde(default, skip_serializing_if = "ThinVec::is_empty")]
    #[schema(value_type = Vec<ListenerSpec>)]
    pub listeners: ThinVec<ListenerSpec>,
    /// Pause the job after this many failed runs in a row, e.g. `3`: a
    /// fire counts once, as failed when its last attempt failed (retries
    /// exhausted); a success resets the count, and so does a resume.
    /// At least 1; unset: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_after_failures: Option<u32>,
    /// What its runs may reach (directories, environment, HTTP hosts,
    /// secrets). Unset: the plugin's sidecar defaults, else nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Box<Capabilities>>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}
fn is_empty_object(v: &serde_json::Value) -> bool {
    v.as_object().is_some_and(serde_json::Map::is_empty)
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_keep_runs() -> u32 {
    100
}

/// Why a job spec was refused. Each message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A malformed id.
    #[error("id: '{id}' {problem}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// What is wrong.
        problem: String,
    },
    /// A malformed plugin name.
    #[error("plugin: '{0}' is not a plugin name (the file stem of a .wasm in the plugins folder)")]
    InvalidPlugin(String),
    /// A bad trigger.
    #[error("trigger.{}", display_trigger(.0))]
    Trigger(#[from] TriggerError),
    /// Args that are not a JSON object.
    #[error("args: must be a JSON object, got {0}")]
    Args(String),
    /// A bad limit.
    #[error("{0}")]
    Limits(String),
    /// A bad retry policy.
    #[error("retry.{0}")]
    Retry(String),
    /// A bad duration field.
    #[error("{field}: {source}")]
    Duration {
        /// The field.
        field: &'static str,
        /// The parse error.
        source: DurationError,
    },
    /// A duration longer than [`MAX_DURATION`].
    #[error(
        "{field}: {value} is longer than the longest allowed, {}",
        crate::duration::format(MAX_DURATION)
    )]
    TooLong {
        /// The field.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// `max_instances` of 0.
    #[error("max_instances: must be at least 1")]
    MaxInstances,
    /// An overlap setting that cannot apply: `max_buffered` without
    /// `buffer-all` or of 0, `allow-all` with `max_instances` 1.
    #[error("{field}: {problem}")]
    Overlap {
        /// `max_buffered` or `max_instances`.
        field: &'static str,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// A bad capability.
    #[error("{}: {}", .0.field, .0.problem)]
    Capability(CapabilityError),
    /// A bad `on_success` / `on_failure` entry.
    #[error("{field}[{index}]: {problem}")]
    Chain {
        /// `on_success` or `on_failure`.
        field: &'static str,
        /// Its position.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// A bad listener entry.
    #[error("listeners[{index}]{}: {problem}", .field.as_deref().map(|f| format!(".{f}")).unwrap_or_default())]
    Listener {
        /// Its position.
        index: usize,
        /// The field inside the entry (`on[1]`, `after_failures`), when
        /// one is at fault rather than the entry.
        field: Option<String>,
        /// What is wrong.
        problem: String,
    },
    /// A duration of zero where zero cannot be meant: `misfire_grace`
    /// (every run starts a little after its time, so it would miss them
    /// all) or `keep_for` (every run would be dropped as it is recorded).
    /// Refused only for specs being added or changed
    /// ([`Job::check_new`]): a stored job that has one still loads.
    #[error("{field}: {value} is zero; {hint}")]
    Zero {
        /// The field.
        field: &'static str,
        /// The value as written, e.g. `0s`.
        value: String,
        /// What to write instead.
        hint: &'static str,
    },
    /// A bad `exclude` entry.
    #[error("exclude[{index}]: {problem}")]
    Exclude {
        /// Its position.
        index: usize,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// `pause_after_failures` of 0.
    #[error(
        "pause_after_failures: must be at least 1; leave it unset to never pause after failures"
    )]
    PauseAfterFailures,
}

fn display_trigger(e: &TriggerError) -> String {
    e.to_string()
}

impl JobError {
    /// The offending field's path, e.g. `trigger.expr` (for API errors).
    pub fn field(&self) -> String {
        match self {
            Self::InvalidId { .. } => "id".into(),
            Self::InvalidPlugin(_) => "plugin".into(),
            Self::Trigger(e) => format!("trigger.{}", e.field()),
            Self::Args(_) => "args".into(),
            Self::Limits(m) => m.split(':').next().unwrap_or("limits").to_owned(),
            Self::Retry(m) => format!("retry.{}", m.split(':').next().unwrap_or("")),
            Self::Duration { field, .. }
            | Self::TooLong { field, .. }
            | Self::Zero { field, .. } => (*field).to_owned(),
            Self::MaxInstances => "max_instances".into(),
            Self::Listener {
                index, field: None, ..
            } => format!("listeners[{index}]"),
            Self::Listener {
                index,
                field: Some(f),
                ..
            } => format!("listeners[{index}].{f}"),
            Self::PauseAfterFailures => "pause_after_failures".into(),
            Self::Overlap { field, .. } => (*field).to_owned(),
            Self::Chain { field, index, .. } => format!("{field}[{index}]"),
            Self::Exclude { index, .. } => format!("exclude[{index}]"),
            Self::Capability(e) => e.field.clone(),
        }
    }
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// The spec it was validated from, as written.
    pub spec: JobSpec,
    /// Its schedule.
    pub trigger: Trigger,
    /// The args as JSON text, passed to every run.
    pub args: String,
    /// Per-run limits.
    pub limits: Limits,
    /// Its retry policy.
    pub retry: RetryPolicy,
    /// How late a run may start; `None` for no limit.
    pub misfire_grace: Option<Duration>,
    /// History older than this is dropped; `None` to keep by count only.
    pub keep_for: Option<Duration>,
    /// When it was first added; anchors intervals without a start.
    pub created_at: DateTime<Utc>,
    /// Warnings for people (e.g. a cron expression whose day fields OR).
    pub warnings: ThinVec<String>,
    /// Who hears about its runs, and which.
    pub listeners: ThinVec<Listener>,
    /// Its own capabilities; `None` defers to the plugin's defaults.
    pub grants: Option<Arc<Grants>>,
    /// How many fires may wait for a free instance (from `overlap` and
    /// `max_buffered`; 0 under `skip` and `allow-all`).
    ///
    /// (A host keeps every job in memory: the lists are `ThinVec`s and
    /// this a `u32`, so a job with its reference counts fits jemalloc's
    /// 448-byte class rather than the 512 one. docs/BENCHMARKS.md,
    /// "Memory per job".)
    pub buffer: u32,
}

impl Job {
    /// Rules for a spec being added or changed that a job already stored
    /// need not pass (they came after it was written; refusing it at load
    /// would stop it firing): no zero `misfire_grace` (APScheduler 3 also
    /// refuses a grace that is not positive) and no zero `keep_for`.
    ///
    /// # Errors
    /// [`JobError::Zero`] naming the field.
    pub fn check_new(&self) -> Result<(), JobError> {
        let zero = |field, value: &Option<Box<str>>, hint| JobError::Zero {
            field,
            value: value.as_deref().unwrap_or("0s").to_owned(),
            hint,
        };
        if self.misfire_grace == Some(Duration::ZERO) {
            return Err(zero(
                "misfire_grace",
                &self.spec.misfire_grace,
                "every run starts a little after its time, so it would miss them all; write \
                 how late a run may still start, e.g. \"30s\", or leave it out to run \
                 however late",
            ));
        }
        if self.keep_for == Some(Duration::ZERO) {
            return Err(zero(
                "keep_for",
                &self.spec.keep_for,
                "every run would be dropped as soon as it is recorded; write how long to \
                 keep runs, e.g. \"30d\", or leave it out to keep the newest keep_runs",
            ));
        }
        Ok(())
    }
}

impl JobSpec {
    /// Validates the spec. `created_at` anchors intervals that have no
    /// start; `defaults` fill unset limits.
    ///
    /// Instants are milliseconds everywhere: `created_at` is truncated to
    /// them here, as the trigger's own times are when parsed and as the
    /// store keeps them, so a fire time computed before a restart is the
    /// very instant computed after it (a microsecond more would make a
    /// fire that already ran look missed).
    ///
    /// # Errors
    /// A [`JobError`] naming the field and the problem.
    pub fn validate(&self, created_at: DateTime<Utc>, defaults: &Limits) -> Result<Job, JobError> {
        self.clone().into_job(created_at, defaults)
    }

    /// [`Self::validate`], resolving the calendars `exclude` names against
    /// `calendars` ([`Self::validate`] knows none).
    ///
    /// # Errors
    /// A [`JobError`] naming the field and the problem.
    pub fn validate_with(
        &self,
        created_at: DateTime<Utc>,
        defaults: &Limits,
        calendars: &Calendars,
    ) -> Result<Job, JobError> {
        self.clone().into_job_with(created_at, defaults, calendars)
    }

    /// [`Self::validate`], keeping this spec in the job rather than a copy
    /// (a restart validates every stored job: a copy each doubled the
    /// memory the specs took while it did).
    ///
    /// # Errors
    /// A [`JobError`] naming the field and the problem.
    pub fn into_job(self, created_at: DateTime<Utc>, defaults: &Limits) -> Result<Job, JobError> {
        self.into_job_with(created_at, defaults, &Calendars::new())
    }

    /// [`Self::into_job`], resolving the calendars `exclude` names against
    /// `calendars`.
    ///
    /// # Errors
    /// A [`JobError`] naming the field and the problem.
    pub fn into_job_with(
        self,
        created_at: DateTime<Utc>,
        defaults: &Limits,
        calendars: &Calendars,
    ) -> Result<Job, JobError> {
        let created_at = created_at.trunc_subsecs(3);
        let id = JobId::new(self.id.clone())?;
        if !valid_name(&self.plugin) {
            return Err(JobError::InvalidPlugin(self.plugin.clone()));
        }
        if !self.args.is_object() {
            return Err(JobError::Args(self.args.to_string()));
        }
        let trigger = self
            .trigger
            .build(created_at, id.seed())?
            .with_exclusions(exclude::resolve(&self, calendars)?);
        let unset = LimitsSpec::default();
        let spec_limits = self.limits.as_deref().unwrap_or(&unset);
        let limits = Limits {
            fuel: spec_limits.fuel.unwrap_or(defaults.fuel),
            timeout: match &spec_limits.timeout {
                Some(t) => duration::parse(t).map_err(|source| JobError::Duration {
                    field: "limits.timeout",
                    source,
                })?,
                None => defaults.timeout,
            },
            memory_bytes: spec_limits
                .memory_mib
                .map_or(defaults.memory_bytes, |m| m.saturating_mul(1 << 20)),
        };
        limits.validate().map_err(JobError::Limits)?;
        let misfire_grace = self
            .misfire_grace
            .as_deref()
            .map(|g| {
                duration::parse(g).map_err(|source| JobError::Duration {
                    field: "misfire_grace",
                    source,
                })
            })
            .transpose()?;
        let keep_for = self
            .keep_for
            .as_deref()
            .map(|k| {
                let d = duration::parse(k).map_err(|source| JobError::Duration {
                    field: "keep_for",
                    source,
                })?;
                // History is pruned before `now - keep_for`.
                if d > MAX_DURATION {
                    return Err(JobError::TooLong {
                        field: "keep_for",
                        value: k.to_owned(),
                    });
                }
                Ok(d)
            })
            .transpose()?;
        if self.max_instances == 0 {
            return Err(JobError::MaxInstances);
        }
        if self.pause_after_failures == Some(0) {
            return Err(JobError::PauseAfterFailures);
        }
        let max_buffered = match (self.overlap, self.max_buffered) {
            (Overlap::BufferAll, Some(0)) => {
                return Err(JobError::Overlap {
                    field: "max_buffered",
                    problem: "must be at least 1; to keep no fire waiting write \
                              overlap = \"skip\""
                        .into(),
                });
            }
            (Overlap::BufferAll, n) => n.unwrap_or(DEFAULT_MAX_BUFFERED),
            (other, Some(_)) => {
                return Err(JobError::Overlap {
                    field: "max_buffered",
                    problem: format!(
                        "only applies with overlap = \"buffer-all\" (this job's overlap is \
                         \"{}\"); remove it or set overlap = \"buffer-all\"",
                        other.as_str()
                    ),
                });
            }
            (_, None) => 0,
        };
        if self.overlap == Overlap::AllowAll && self.max_instances == 1 {
            return Err(JobError::Overlap {
                field: "max_instances",
                problem: "overlap = \"allow-all\" needs max_instances above 1 (the most runs \
                          of this job at once, e.g. 10); with 1 it would skip like \
                          overlap = \"skip\""
                    .into(),
            });
        }
        let retry = match &self.retry {
            Some(r) => r.validate().map_err(JobError::Retry)?,
            None => RetryPolicy::none(),
        };
        for (field, ids) in [
            ("on_success", &self.on_success),
            ("on_failure", &self.on_failure),
        ] {
            for (index, target) in ids.iter().enumerate() {
                let problem = if let Err(e) = JobId::new(target.as_str()) {
                    Some(format!("'{target}' is not a job id ({e})"))
                } else if *target == self.id {
                    Some(format!(
                        "a job cannot chain to itself ('{target}'); use a trigger or retry \
                         policy to run it again"
                    ))
                } else if ids[..index].contains(target) {
                    Some(format!("'{target}' is listed twice"))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(JobError::Chain {
                        field,
                        index,
                        problem,
                    });
                }
            }
        }
        let listeners = self
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| l.validate(i))
            .collect::<Result<ThinVec<_>, _>>()?;
        let grants = self
            .capabilities
            .as_deref()
            .map(|c| c.validate().map(Arc::new).map_err(JobError::Capability))
            .transpose()?;
        let warnings = trigger.warnings().into();
        let buffer = u32::try_from(self.overlap.buffer(max_buffered)).unwrap_or(u32::MAX);
        Ok(Job {
            id,
            args: self.args.to_string(),
            spec: self,
            trigger,
            limits,
            retry,
            misfire_grace,
            keep_for,
            created_at,
            warnings,
            listeners,
            grants,
            buffer,
        })
    }
}

#[cfg(test)]
mod tests;

/// Applies a JSON merge patch (RFC 7396) to `target`, as `PATCH
/// /jobs/{id}` and the embedding handle's `patch` apply one to a job spec:
/// objects merge key by key, a `null` removes the key, anything else
/// (arrays included) replaces what was there.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(map) = target.as_object_mut() {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
    }
}
