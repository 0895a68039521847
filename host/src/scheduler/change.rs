//! Adding and changing jobs: what a new spec keeps of the job it replaces.
//!
//! One rule for every way a spec arrives (`POST /jobs` with
//! `replace_existing`, `PATCH /jobs/{id}`, a jobs file or a sidecar that
//! changed between restarts):
//!
//! - **The schedule is kept unless the trigger changes.** Same trigger:
//!   same `created_at` (it anchors intervals without a `start`) and same
//!   next fire, so an hourly job whose args change at every deploy still
//!   runs every hour, and fires missed while the host was down are still
//!   handled by `misfire_grace` and `coalesce`. A new trigger starts from
//!   now, as a new job does.
//! - **The paused state changes only through pause and resume**, or when
//!   a file's (or body's) own `paused` value changes: a spec that says
//!   what the previous one said leaves a job paused through the API
//!   paused. (The API refuses a `PATCH` that would flip it; see
//!   `api/jobs.rs`.)
//! - **A job keeps its incarnation** (and with it its run history and the
//!   runs in flight) until it is deleted; a job created after a delete is
//!   a new incarnation.

use super::{JobInfo, Scheduler, SchedulerError};
use crate::event::Event;
use crate::job::{Job, JobSpec};
use crate::store::{JobRecord, Write, new_incarnation};
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// How many jobs of a jobs file are written at once: the SQLite writer
/// groups up to this many commands in one transaction, so a file of new
/// jobs costs a commit per this many rather than one each.
const WRITE_AT_ONCE: usize = 1024;

/// How many specs at the front of an upsert's list are applied when the
/// spec at `index` is refused before its write: those before the first
/// one still waiting in `batch` for its write, else all before `index`.
fn applied_before(batch: &[(usize, Change)], index: usize) -> usize {
    batch.first().map_or(index, |(first, _)| *first)
}

/// What the scheduler knows of a job a new spec would replace.
struct Existing {
    job: Arc<Job>,
    incarnation: String,
    paused: bool,
    next_run: Option<DateTime<Utc>>,
    /// Why the host paused it, while it is paused.
    reason: Option<String>,
}

/// A spec validated against the job it replaces, not yet written.
struct Change {
    record: JobRecord,
    job: Job,
    existed: bool,
    keep: bool,
    replace: bool,
}

/// What putting a change in the scheduler's state needs once its record
/// has gone to the store (the record itself is moved there, not copied).
struct Install {
    job: Job,
    existed: bool,
    keep: bool,
    next_run: Option<DateTime<Utc>>,
    paused: bool,
    incarnation: String,
    paused_reason: Option<String>,
}

impl Change {
    /// The record to write, whether it replaces a row, and the rest.
    fn split(self) -> (JobRecord, bool, Install) {
        let install = Install {
            job: self.job,
            existed: self.existed,
            keep: self.keep,
            next_run: self.record.next_run_time,
            paused: self.record.paused,
            incarnation: self.record.incarnation.clone(),
            paused_reason: self.record.paused_reason.clone(),
        };
        (self.record, self.replace, install)
    }
}

/// A caller's own check of each spec an upsert adds or changes, given the
/// job as validated and the instant it was validated at
/// ([`Scheduler::upsert_jobs_checked`]); its error is the spec's.
pub type SpecCheck = dyn Fn(&Job, DateTime<Utc>) -> Result<(), SchedulerError> + Send + Sync;

/// A spec of [`Scheduler::upsert_jobs`] that could not be applied: the
/// first [`UpsertError::applied`] specs were, the ones after it were not.
#[derive(Debug, thiserror::Error)]
#[error("jobs[{index}] (id '{id}')")]
pub struct UpsertError {
    /// Its position in the list, from 0.
    pub index: usize,
    /// Its id.
    pub id: String,
    /// How many specs at the front of the list are applied: all before
    /// `index` when it failed being written, fewer when it was refused
    /// while specs before it still waited for their write (they are
    /// written a thousand at a time), 0 when nothing was written.
    pub applied: usize,
    /// Why: [`SchedulerError::Invalid`] naming the field, or a store error.
    #[source]
    pub error: SchedulerError,
}

/// What [`Scheduler::upsert_jobs`] did.
#[derive(Debug, Default)]
pub struct Upserted {
    /// Specs equal to the job's stored one: nothing was done for them.
    pub unchanged: usize,
    /// Jobs added or changed (each written to the store).
    pub written: usize,
    /// The jobs of the list a person should hear about, in list order:
    /// those with warnings, or whose plugin is not loaded.
    pub notes: Vec<JobInfo>,
}

/// How a spec reached the scheduler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A new job; an existing one is replaced only with `replace`.
    Add { replace: bool },
    /// A change to an existing job.
    Modify,
}

impl Scheduler {
    /// Adds a job (or replaces one, with `replace`), committed to the store
    /// before it returns. Replacing keeps the job's schedule when the
    /// trigger is unchanged, and its paused state unless the spec's
    /// `paused` differs from the replaced spec's (see the module docs).
    ///
    /// # Errors
    /// [`SchedulerError::Invalid`] naming the bad field,
    /// [`SchedulerError::Duplicate`], or a store error.
    pub async fn add_job(&self, spec: JobSpec, replace: bool) -> Result<JobInfo, SchedulerError> {
        self.put(spec, Mode::Add { replace }).await
    }

    /// Changes an existing job to `spec` (a `PATCH`): as [`Self::add_job`]
    /// with `replace`, but the job must exist.
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`], [`SchedulerError::Invalid`], or a
    /// store error.
    pub async fn modify_job(&self, spec: JobSpec) -> Result<JobInfo, SchedulerError> {
        self.put(spec, Mode::Modify).await
    }

    /// Adds `spec` unless a job with the same id and the very same spec is
    /// already stored, in which case nothing changes (so a restart with an
    /// unchanged config file neither resets schedules nor forgets fires
    /// missed while down). A changed spec replaces the job, keeping its
    /// schedule unless the trigger changed.
    ///
    /// # Errors
    /// As for [`Scheduler::add_job`].
    pub async fn upsert_job(&self, spec: JobSpec) -> Result<JobInfo, SchedulerError> {
        self.adopt_stored(&spec.id).await?;
        let same = self
            .inner
            .lock()
            .jobs
            .get(spec.id.as_str())
            .is_some_and(|e| e.job.spec == spec);
        if same {
            return self.job(&spec.id);
        }
        self.add_job(spec, true).await
    }

    /// Upserts a list of specs (a jobs file at start), in order, as
    /// [`Self::upsert_job`] does each: a spec equal to its job's costs a
    /// comparison (no store write, no new schedule, no event), so an
    /// unchanged file costs about what a restart without it does. Changed
    /// and new jobs are written 1,024 at a time, which the
    /// store commits together. An id listed twice takes its last spec (the
    /// earlier ones are still checked).
    ///
    /// # Errors
    /// The first spec that is invalid or cannot be written, with its
    /// position and how many specs at the front of the list are applied
    /// ([`UpsertError::applied`]: those before it, except any still
    /// waiting for their write when it was refused); none after it.
    ///
    /// # Cancel safety
    /// None: a future dropped part way may leave jobs written to the store
    /// but not scheduled until the next start. Run it to its end (the API
    /// runs each request on a task of its own for this reason).
    pub async fn upsert_jobs(&self, specs: Vec<JobSpec>) -> Result<Upserted, UpsertError> {
        self.upsert(specs, None).await
    }

    /// As [`Self::upsert_jobs`], but all or nothing for what is checked:
    /// every spec that adds or changes a job is validated against the job
    /// it replaces and passed to `check` before any is written, so an
    /// invalid spec, or one `check` refuses, changes nothing. A store
    /// failure part way still leaves the specs before it applied. For a
    /// request of a bounded number of specs (`PUT /jobs`: at most 10,000),
    /// whose changes are all held at once.
    ///
    /// # Errors
    /// As [`Self::upsert_jobs`]; an invalid or refused spec has
    /// [`UpsertError::applied`] 0.
    ///
    /// # Cancel safety
    /// As [`Self::upsert_jobs`].
    pub async fn upsert_jobs_checked(
        &self,
        specs: Vec<JobSpec>,
        check: &SpecCheck,
    ) -> Result<Upserted, UpsertError> {
        self.upsert(specs, Some(check)).await
    }

    /// [`Self::upsert_jobs`], with a check: then every change is prepared
    /// before any is written.
    async fn upsert(
        &self,
        specs: Vec<JobSpec>,
        check: Option<&SpecCheck>,
    ) -> Result<Upserted, UpsertError> {
        let inner = &self.inner;
        let fail = |index: usize, id: &str, applied: usize, error: SchedulerError| UpsertError {
            index,
            id: id.to_owned(),
            applied,
            error,
        };
        let ids: Vec<Arc<str>> = specs.iter().map(|s| Arc::from(s.id.as_str())).collect();
        let listed = super::chain::listed(&specs);
        // One pass for cycles over the whole list, rather than a search
        // from each spec (see `chain::acyclic`).
        let acyclic = listed.is_empty() || super::chain::acyclic(&inner.lock(), &listed);
        let last: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (&**id, i)).collect();
        let mut done = Upserted::default();
        let now = inner.clock.now().trunc_subsecs(3);
        let mut batch: Vec<(usize, Change)> = Vec::new();
        // Specs at the front of the list applied when one is refused
        // before its write: with a check nothing is written yet, and the
        // unchanged specs before it must not read as applied (a person
        // took "the first 7 jobs were applied" to mean written).
        let front = |batch: &[(usize, Change)], index: usize| match check {
            Some(_) => 0,
            None => applied_before(batch, index),
        };
        for (index, spec) in specs.into_iter().enumerate() {
            inner
                .check_running()
                .map_err(|e| fail(index, &spec.id, front(&batch, index), e))?;
            self.adopt_stored(&spec.id)
                .await
                .map_err(|e| fail(index, &spec.id, front(&batch, index), e))?;
            let same = inner
                .lock()
                .jobs
                .get(spec.id.as_str())
                .is_some_and(|e| e.job.spec == spec);
            if same {
                done.unchanged += 1;
            } else if last.get(spec.id.as_str()) != Some(&index) {
                // Replaced by a later spec of the same id: only checked.
                let job = spec
                    .validate_with(now, &inner.config.default_limits, &inner.calendars())
                    .map_err(|e| fail(index, &spec.id, front(&batch, index), e.into()))?;
                self.check_new(&job)
                    .map_err(|e| fail(index, &spec.id, front(&batch, index), e))?;
            } else {
                let change = self
                    .prepare(spec, Mode::Add { replace: true }, now, &listed, !acyclic)
                    .and_then(|change| match check {
                        Some(check) => check(&change.job, now).map(|()| change),
                        None => Ok(change),
                    })
                    .map_err(|e| fail(index, &ids[index], front(&batch, index), e))?;
                batch.push((index, change));
            }
            // With a check, nothing is written until every spec passed it.
            if check.is_none() && batch.len() >= WRITE_AT_ONCE {
                self.write_changes(&mut batch, &ids, &mut done).await?;
            }
        }
        self.write_changes(&mut batch, &ids, &mut done).await?;
        let state = inner.lock();
        let mut loaded: HashMap<&str, bool> = HashMap::new();
        for (index, id) in ids.iter().enumerate() {
            let Some(entry) = state.jobs.get(&**id) else {
                continue;
            };
            if last.get(&**id) != Some(&index) {
                continue;
            }
            let plugin = entry.job.spec.plugin.as_str();
            let plugin_loaded = *loaded
                .entry(plugin)
                .or_insert_with(|| inner.plugins.get(plugin).is_some());
            if !plugin_loaded || !entry.job.warnings.is_empty() {
                done.notes.push(inner.info(entry).described());
            }
        }
        Ok(done)
    }

    /// On a store other hosts share, a job they added moments ago may not
    /// be here yet (their changes arrive within half a second): before
    /// acting on a job this host does not know (a spec that adds or
    /// replaces, a pause, a run-now), take the stored job.
    pub(super) async fn adopt_stored(&self, id: &str) -> Result<(), SchedulerError> {
        let inner = &self.inner;
        if !inner.shared || inner.lock().jobs.contains_key(id) {
            return Ok(());
        }
        if let Some(record) = inner.store.job(id).await? {
            super::reload::apply(inner, id, Some(record), None);
        }
        Ok(())
    }

    async fn put(&self, spec: JobSpec, mode: Mode) -> Result<JobInfo, SchedulerError> {
        let inner = &self.inner;
        inner.check_running()?;
        self.adopt_stored(&spec.id).await?;
        // Milliseconds, as the store keeps them: `created_at` anchors
        // intervals, and an anchor that lost its microseconds at a restart
        // would move every fire (and make a false miss).
        let now = inner.clock.now().trunc_subsecs(3);
        let change = self.prepare(spec, mode, now, &HashMap::new(), true)?;
        let id = change.record.spec.id.clone();
        let (record, replace, install) = change.split();
        inner.store.insert_job(record, replace).await?;
        self.installed(install).await?;
        self.job(&id)
    }

    /// What `spec` makes of the job it adds or replaces (see the module
    /// docs), validated, not yet written. `cycles`: whether its chains
    /// must be searched for a way back to it (not when the whole list was
    /// found free of cycles at once).
    fn prepare(
        &self,
        spec: JobSpec,
        mode: Mode,
        now: DateTime<Utc>,
        listed: &HashMap<String, Vec<String>>,
        cycles: bool,
    ) -> Result<Change, SchedulerError> {
        let inner = &self.inner;
        let existing = inner.lock().jobs.get(spec.id.as_str()).map(|e| Existing {
            job: e.job.clone(),
            incarnation: e.incarnation.to_string(),
            paused: e.paused,
            next_run: e.next_run,
            reason: inner.pause_notes.reason(e),
        });
        let existing = match (existing, mode) {
            (None, Mode::Modify) => return Err(SchedulerError::JobNotFound(spec.id.clone())),
            (Some(_), Mode::Add { replace: false }) => {
                return Err(SchedulerError::Duplicate(spec.id.clone()));
            }
            (existing, _) => existing,
        };
        // Only the excluded days changed: the schedule goes on from the
        // fire it had planned if that is past (fires missed while down are
        // still caught up), else from now (days freed before the planned
        // fire fire again), under the new exclusions.
        let mut days_only = false;
        let (created_at, paused, incarnation, keep) = match &existing {
            None => (now, spec.paused, new_incarnation(), false),
            Some(old) => {
                let same_trigger = old.job.spec.trigger == spec.trigger;
                // A file or body that says what the replaced spec said
                // about `paused` leaves the live state (pause and resume
                // through the API) alone.
                let paused = if spec.paused == old.job.spec.paused {
                    old.paused
                } else {
                    spec.paused
                };
                let created_at = if same_trigger {
                    old.job.created_at
                } else {
                    now
                };
                let same_days = old.job.spec.exclude == spec.exclude;
                days_only = same_trigger && !same_days && !old.paused && !paused;
                let keep = same_trigger && same_days && !old.paused && !paused;
                (created_at, paused, old.incarnation.clone(), keep)
            }
        };
        let job =
            spec.validate_with(created_at, &inner.config.default_limits, &inner.calendars())?;
        self.check_new(&job)?;
        super::chain::check(&inner.lock(), &spec, listed, cycles)?;
        // The pause note (issue 13): a job that stays paused keeps the
        // reason the host paused it for; one resumed by this spec (its
        // `paused` changed to false) loses it and counts its failures in a
        // row afresh, as a resume through the API does.
        let (paused_reason, failures_from) = match &existing {
            Some(old) if old.paused && paused => (old.reason.clone(), None),
            Some(old) if old.paused => (None, Some(now)),
            _ => (None, None),
        };
        let next_run = match &existing {
            _ if paused => None,
            Some(old) if keep => old.next_run,
            Some(Existing {
                next_run: Some(planned),
                ..
            }) if days_only => {
                if *planned <= now {
                    job.trigger
                        .next_after(*planned - chrono::Duration::milliseconds(1))
                } else {
                    // Strictly after now, as for a new schedule: a fire at
                    // this very instant was just taken.
                    job.trigger.next_after(now)
                }
            }
            _ => job.trigger.next_after(now),
        };
        // With replace asked, a row another host inserted meanwhile is
        // replaced too (the last writer wins), rather than refused.
        let replace = existing.is_some() || mode == (Mode::Add { replace: true });
        Ok(Change {
            record: JobRecord {
                spec,
                created_at,
                next_run_time: next_run,
                paused,
                incarnation,
                paused_reason,
                failures_from,
            },
            job,
            existed: existing.is_some(),
            keep,
            replace,
        })
    }

    /// Checks `spec` as adding it would (validation against `calendars`,
    /// the operator's grant policy), writing nothing: what a dry run of an
    /// import answers.
    ///
    /// # Errors
    /// [`SchedulerError::Invalid`] naming the field.
    pub fn check_spec(
        &self,
        spec: &JobSpec,
        calendars: &crate::trigger::calendar::Calendars,
    ) -> Result<(), SchedulerError> {
        let now = self.inner.clock.now().trunc_subsecs(3);
        let job = spec.validate_with(now, &self.inner.config.default_limits, calendars)?;
        self.check_new(&job)
    }

    /// Checks the chains (`on_success`, `on_failure`) of a jobs list as
    /// [`Self::upsert_jobs`] will when it writes them: each target a job of
    /// the list or of this host, no chain leading back to its job. Specs
    /// equal to their job's are skipped, as the upsert leaves them alone.
    /// For a dry run, and for a bulk request to refuse a bad chain before
    /// anything of it is written.
    ///
    /// # Errors
    /// The position of the first spec with a bad chain, and
    /// [`SchedulerError::Invalid`] naming `on_success[i]` / `on_failure[i]`.
    pub fn check_chains(&self, specs: &[JobSpec]) -> Result<(), (usize, SchedulerError)> {
        let listed = super::chain::listed(specs);
        if listed.is_empty() {
            return Ok(());
        }
        let state = self.inner.lock();
        let cycles = !super::chain::acyclic(&state, &listed);
        for (index, spec) in specs.iter().enumerate() {
            let same = state
                .jobs
                .get(spec.id.as_str())
                .is_some_and(|e| e.job.spec == *spec);
            if !same {
                super::chain::check(&state, spec, &listed, cycles).map_err(|e| (index, e))?;
            }
        }
        Ok(())
    }

    /// The checks a spec being added or changed passes beyond
    /// validation: [`Job::check_new`]'s rules and the operator's grant
    /// policy ([`Self::check_policy`]).
    fn check_new(&self, job: &Job) -> Result<(), SchedulerError> {
        job.check_new()?;
        self.check_policy(job)
    }

    /// Refuses a job granted more than the operator's policy allows
    /// (`wasmcron run --allow-*`), naming the field and the flag. A job
    /// without its own capabilities is not refused here: its plugin's
    /// sidecar defaults were checked when the sidecar was read.
    pub(super) fn check_policy(&self, job: &Job) -> Result<(), SchedulerError> {
        let Some(grants) = &job.grants else {
            return Ok(());
        };
        self.inner.runtime.policy().check(grants).map_err(|e| {
            SchedulerError::Invalid(crate::job::JobError::Capability(
                crate::job::CapabilityError {
                    field: e.field,
                    problem: e.problem,
                },
            ))
        })
    }

    /// Writes `batch`'s records (the store groups them in transactions of
    /// up to a thousand) and puts each committed one in the scheduler's
    /// state, in list order, as its write is answered: the API's thread
    /// installs the first while the store still writes the rest.
    ///
    /// # Errors
    /// The first change whose write failed: the ones before it are
    /// applied; the ones after it are not put in the scheduler's state
    /// (those already written are taken from the store at the next start).
    async fn write_changes(
        &self,
        batch: &mut Vec<(usize, Change)>,
        ids: &[Arc<str>],
        done: &mut Upserted,
    ) -> Result<(), UpsertError> {
        use futures_util::StreamExt as _;
        let store = &self.inner.store;
        let mut installs = Vec::with_capacity(batch.len());
        let mut writes = futures_util::stream::FuturesOrdered::new();
        for (index, change) in batch.drain(..) {
            let (record, replace, install) = change.split();
            writes.push_back(store.insert_job(record, replace));
            installs.push((index, install));
        }
        let fail = |index: usize, error: SchedulerError| UpsertError {
            index,
            id: ids[index].to_string(),
            applied: index,
            error,
        };
        for (index, install) in installs {
            let Some(written) = writes.next().await else {
                break;
            };
            written.map_err(|e| fail(index, e.into()))?;
            self.installed(install).await.map_err(|e| fail(index, e))?;
            done.written += 1;
        }
        Ok(())
    }

    /// Puts a change whose record the store has committed in the
    /// scheduler's state, and announces it.
    async fn installed(&self, change: Install) -> Result<(), SchedulerError> {
        let inner = &self.inner;
        let Install {
            job,
            existed,
            keep,
            next_run,
            paused,
            incarnation,
            paused_reason,
        } = change;
        let id = job.spec.id.clone();
        inner.pause_notes.set(&id, &incarnation, paused_reason);
        let installed = inner.install(job, next_run, paused, &incarnation, keep);
        if installed != next_run {
            // The timer took a fire while this change was being committed:
            // the store gets the next fire the job really has.
            inner
                .store
                .write(vec![Write::NextRun {
                    job_id: id.clone(),
                    next: installed,
                }])
                .await?;
        }
        let event = inner.job_event(&id);
        inner.events.publish(if existed {
            Event::JobModified(event)
        } else {
            Event::JobAdded(event)
        });
        Ok(())
    }
}
