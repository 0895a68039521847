//! Runs outside the schedule: run a job now, replay a past run.

use super::{Inner, Scheduler, SchedulerError, execute};
use crate::event::Event;
use crate::store::{RunOrigin, RunRecord, RunStatus, Write};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What a run started by hand may set for itself (the body of
/// `POST /jobs/{id}/run`). The default is a plain run now: the job's args,
/// scheduled at the instant it is asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunNow {
    /// This run's args, instead of the job's (not merged with them); the
    /// run records them and its guest reads them. `None`: the job's.
    pub args: Option<serde_json::Map<String, serde_json::Value>>,
    /// The fire time the run records as `scheduled_at` and its guest sees
    /// in its context (e.g. to redo the work of a past fire). The run
    /// still starts now. `None`: now.
    pub scheduled_at: Option<DateTime<Utc>>,
}

impl Scheduler {
    /// Lets `run_on_start` jobs run, when [`super::SchedulerConfig::defer_start_runs`]
    /// held them: on a store of its own they run now, with the jobs as
    /// they are now (after the caller applied its jobs file); on a shared
    /// one, if this host already took over as leader. Later calls do
    /// nothing.
    pub fn started_up(&self) {
        use std::sync::atomic::Ordering;
        let inner = &self.inner;
        if inner.start_ready.swap(true, Ordering::AcqRel) {
            return;
        }
        if inner.store.leadership().get() == crate::store::Leadership::Sole {
            run_on_start(inner, false);
        } else if inner.leader_starts_due.swap(false, Ordering::AcqRel) {
            run_on_start(inner, true);
        }
    }

    /// Runs a job now, outside its schedule (its schedule is unchanged). On
    /// a store several hosts share, whichever host has a free worker and
    /// the plugin runs it (it is claimed like any pending run).
    ///
    /// # Errors
    /// [`SchedulerError::JobNotFound`], [`SchedulerError::MaxInstances`],
    /// or a store error.
    pub async fn run_now(&self, id: &str) -> Result<RunRecord, SchedulerError> {
        self.run_now_with(id, RunNow::default()).await
    }

    /// [`Self::run_now`] with other args or another `scheduled_at` for this
    /// run only (the job is unchanged).
    ///
    /// # Errors
    /// As for [`Self::run_now`].
    pub async fn run_now_with(&self, id: &str, how: RunNow) -> Result<RunRecord, SchedulerError> {
        // Milliseconds, as the store keeps them (the answer says what the
        // history will).
        let scheduled_at = how
            .scheduled_at
            .unwrap_or_else(|| chrono::SubsecRound::trunc_subsecs(self.inner.clock.now(), 3));
        let args = how.args.map(|a| serde_json::Value::Object(a).to_string());
        self.submit(Submit {
            args,
            ..Submit::new(id, scheduled_at, RunOrigin::Manual)
        })
        .await
    }

    /// Runs a past run again: same job, same args, same `scheduled_at` and
    /// attempt number in its context, and only on the same plugin version.
    /// (Runs recorded before args were kept per run use the job's current
    /// args.)
    ///
    /// # Errors
    /// [`SchedulerError::RunNotFound`]; [`SchedulerError::CannotReplay`]
    /// when the job is gone, the run never started, or its plugin version
    /// is no longer loaded; as for [`Self::run_now`].
    pub async fn replay(&self, run_id: &str) -> Result<RunRecord, SchedulerError> {
        // The summary: a replay needs the run's args and plugin version,
        // never its logs (which may be a flood's worth).
        let original = self
            .inner
            .store
            .run_summary(run_id)
            .await?
            .ok_or_else(|| SchedulerError::RunNotFound(run_id.to_owned()))?;
        self.adopt_stored(&original.job_id).await?;
        let job = self.job(&original.job_id).map_err(|_| {
            SchedulerError::CannotReplay(format!(
                "job '{}' of run {run_id} no longer exists",
                original.job_id
            ))
        })?;
        let Some(used) = original.plugin_hash.as_deref() else {
            return Err(SchedulerError::CannotReplay(format!(
                "run {run_id} never started ({}), so there is no plugin version to replay",
                original.status.as_str()
            )));
        };
        let loaded = self
            .inner
            .plugins
            .get(&job.spec.plugin)
            .map(|p| p.hash().as_str().to_owned());
        if loaded.as_deref() != Some(used) {
            return Err(SchedulerError::CannotReplay(format!(
                "run {run_id} used plugin '{}' version {}, which is no longer loaded (now: {})",
                job.spec.plugin,
                &used[..used.len().min(12)],
                loaded.as_deref().map_or("none", |h| &h[..h.len().min(12)])
            )));
        }
        let note = format!("replay of run {run_id}");
        self.submit(Submit {
            attempt: original.attempt,
            note: Some(note),
            args: original.args,
            // A chained run's replay sees the same parent.
            parent_run_id: original.parent_run_id,
            ..Submit::new(&original.job_id, original.scheduled_at, RunOrigin::Replay)
        })
        .await
    }

    async fn submit(&self, run: Submit<'_>) -> Result<RunRecord, SchedulerError> {
        self.inner.check_running()?;
        self.adopt_stored(run.id).await?;
        submit(&self.inner, run).await
    }
}

impl Inner {
    /// Whether job `job`'s plugin `plugin` is loaded, for a run asked for
    /// outside the schedule: one it cannot run is refused at once rather
    /// than recorded as missed.
    ///
    /// # Errors
    /// [`SchedulerError::PluginNotLoaded`], saying whether it is still
    /// compiling.
    pub(super) fn plugin_loaded(&self, job: &str, plugin: &str) -> Result<(), SchedulerError> {
        if self.plugins.get(plugin).is_some() {
            return Ok(());
        }
        Err(SchedulerError::PluginNotLoaded {
            job: job.to_owned(),
            plugin: plugin.to_owned(),
            why: if self.plugins.compiling(plugin).is_some() {
                "still compiling"
            } else {
                "not in the plugins folder, or refused"
            },
        })
    }
}

/// A run to record outside the schedule ([`submit`]): what the five kinds
/// of such run (now, replay, start, backfill, chain) each set.
pub(super) struct Submit<'a> {
    /// The job.
    pub(super) id: &'a str,
    /// The fire it stands for.
    pub(super) scheduled_at: DateTime<Utc>,
    /// 1, or a replayed run's attempt.
    pub(super) attempt: u32,
    /// Why it runs, for people.
    pub(super) note: Option<String>,
    /// Its args (JSON text); `None`: the job's.
    pub(super) args: Option<String>,
    /// What made it.
    pub(super) origin: RunOrigin,
    /// Only this life of the job (one deleted and added again under its
    /// id is another job); `None`: whichever is live.
    pub(super) incarnation: Option<&'a str>,
    /// A chained run's parent.
    pub(super) parent_run_id: Option<String>,
}

impl<'a> Submit<'a> {
    /// A first attempt of `origin` at `scheduled_at`, nothing else set.
    pub(super) fn new(id: &'a str, scheduled_at: DateTime<Utc>, origin: RunOrigin) -> Self {
        Self {
            id,
            scheduled_at,
            attempt: 1,
            note: None,
            args: None,
            origin,
            incarnation: None,
            parent_run_id: None,
        }
    }
}

/// Records a run of job `id` outside its schedule (pending, of `origin`;
/// a chained run with its parent's run id) and starts it (on a shared
/// store, any host claims it).
///
/// # Errors
/// [`SchedulerError::JobNotFound`], [`SchedulerError::PluginNotLoaded`],
/// [`SchedulerError::MaxInstances`], or a store error.
pub(super) async fn submit(
    inner: &Arc<Inner>,
    run: Submit<'_>,
) -> Result<RunRecord, SchedulerError> {
    let Submit {
        id,
        scheduled_at,
        attempt,
        note,
        args,
        origin,
        incarnation,
        parent_run_id,
    } = run;
    // On a shared store the runs of the job on every host count, as
    // the store has them (each host only knows its own); `None` where
    // this host counts its own below.
    let elsewhere = if inner.shared {
        inner.store.runs_in_flight(id).await?
    } else {
        None
    };
    // Milliseconds, as the store keeps them.
    let now = chrono::SubsecRound::trunc_subsecs(inner.clock.now(), 3);
    // `quick`: the job's last run was quick (the starter's places).
    let (run, quick) = {
        let mut state = inner.lock();
        // With `incarnation`, only that life of the job: one deleted and
        // added again under its id is another job.
        let entry = state
            .jobs
            .get_mut(id)
            .filter(|e| incarnation.is_none_or(|i| e.incarnation == *i))
            .ok_or_else(|| SchedulerError::JobNotFound(id.to_owned()))?;
        inner.plugin_loaded(id, &entry.job.spec.plugin)?;
        let max = entry.job.spec.max_instances;
        // On a shared store the run is then claimed like any pending
        // run (by whichever host has a free worker), and the claim
        // keeps max_instances across hosts (two run-nows answered at
        // the same instant on two hosts may both be accepted: the
        // second waits for a free instance); this host counts
        // nothing of its own.
        let going = elsewhere.unwrap_or(u64::from(entry.in_flight));
        if going >= u64::from(max) {
            return Err(SchedulerError::MaxInstances {
                job: id.to_owned(),
                max,
            });
        }
        if !inner.shared {
            entry.in_flight += 1;
            if origin == RunOrigin::Backfill {
                entry.backfilling += 1;
            }
        }
        let run = RunRecord {
            note,
            args,
            origin,
            parent_run_id,
            ..RunRecord::pending(id, scheduled_at, now, attempt).of(&entry.incarnation.to_string())
        };
        (run, entry.quick)
    };
    if let Err(e) = inner.store.write(vec![Write::Run(run.clone())]).await {
        if !inner.shared {
            execute::release(inner, &run);
        }
        return Err(e.into());
    }
    inner.events.publish(Event::RunSubmitted(execute::run_event(
        &run, now, None, None,
    )));
    if inner.shared {
        // A pending row every host may claim: starting it here too
        // would run it twice.
        inner.claim_wake.notify_one();
    } else {
        execute::spawn(inner.clone(), run.clone(), quick);
    }
    Ok(run)
}

/// `run_on_start`: one run of each such job (not paused, plugin loaded)
/// when this host starts firing: at the scheduler's start on a store of
/// its own, when it takes over as leader on a shared one. A job whose
/// `max_instances` runs are going (runs recovered at the start) gets a
/// `skipped` row saying so instead; one whose plugin is not loaded, a
/// `missed` row.
///
/// The jobs are taken now (those added later get no start run); the runs
/// are recorded by a task of their own, which waits for plugins still
/// compiling.
pub(super) fn run_on_start(inner: &Arc<Inner>, leader: bool) {
    let ids: Vec<(String, String)> = inner
        .lock()
        .jobs
        .values()
        .filter(|e| e.job.spec.run_on_start && !e.paused)
        .map(|e| (e.job.id.as_str().to_owned(), e.incarnation.to_string()))
        .collect();
    if !ids.is_empty() {
        let inner = inner.clone();
        tokio::spawn(async move { start_runs(&inner, ids, leader).await });
    }
}

async fn start_runs(inner: &Arc<Inner>, ids: Vec<(String, String)>, leader: bool) {
    let why = if leader {
        "run_on_start: this host took over as the leader"
    } else {
        "run_on_start: the scheduler started"
    };
    for (id, incarnation) in ids {
        // A plugin still compiling (at a start, compiles run in the
        // background) is waited for: its start run is not a miss.
        loop {
            let compiling = {
                let state = inner.lock();
                state.jobs.get(id.as_str()).is_some_and(|e| {
                    inner.plugins.get(&e.job.spec.plugin).is_none()
                        && inner.plugins.compiling(&e.job.spec.plugin).is_some()
                })
            };
            if !compiling {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                () = inner.stop_firing.cancelled() => return,
            }
        }
        let now = inner.clock.now();
        let submitted = submit(
            inner,
            Submit {
                note: Some(why.to_owned()),
                incarnation: Some(&incarnation),
                ..Submit::new(&id, now, RunOrigin::Start)
            },
        )
        .await;
        let (status, note) = match submitted {
            Ok(_) | Err(SchedulerError::JobNotFound(_)) => continue,
            Err(e @ SchedulerError::MaxInstances { .. }) => {
                (RunStatus::Skipped, format!("{why}; {e}"))
            }
            Err(e @ SchedulerError::PluginNotLoaded { .. }) => {
                (RunStatus::Missed, format!("{why}; {e}"))
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "could not record the run_on_start run");
                continue;
            }
        };
        tracing::warn!(job = %id, "{note}");
        let run = RunRecord {
            origin: RunOrigin::Start,
            ..RunRecord::not_run(&id, now, status, note.clone()).of(&incarnation)
        };
        let event = execute::run_event(&run, now, None, Some(note));
        if inner.store.write(vec![Write::Run(run)]).await.is_ok() {
            inner.events.publish(if status == RunStatus::Skipped {
                Event::RunSkipped(event)
            } else {
                Event::RunMissed(event)
            });
        }
    }
}
