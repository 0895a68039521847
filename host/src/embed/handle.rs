//! The handle of a started embedded host.

use super::Error;
use crate::api::{ApiState, Tokens};
use crate::app::Host;
use crate::audit::{Action, Actor, Change};
use crate::job::JobSpec;
use crate::runtime::World;
use crate::scheduler::{JobInfo, Scheduler};
use crate::store::RunRecord;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Who the handle's changes are recorded as in the audit log.
const ACTOR: &str = "embed";

/// A running embedded host: cheap to clone (every clone drives the same
/// host), safe to share between your handlers.
///
/// Changes are committed to the store before a call returns, recorded in
/// the audit log as made by `embed`, and published as [`Event`](crate::event::Event)s, as
/// changes through the HTTP API are.
///
/// Call [`Wasmcron::stop`] before your program ends: dropping every clone
/// does not stop the host (its tasks live on the tokio runtime until that
/// ends), and without the stop, runs going on are cut off rather than
/// given their grace, and are recorded as interrupted at the next start.
#[derive(Debug, Clone)]
pub struct Wasmcron {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    scheduler: Scheduler,
    api: ApiState,
    grace: Duration,
    stopped: AtomicBool,
    /// Taken by the first [`Wasmcron::stop`]; a second waits for it here.
    host: tokio::sync::Mutex<Option<Host>>,
}

impl Wasmcron {
    pub(super) fn new(host: Host, tokens: Option<Arc<Tokens>>, grace: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                scheduler: host.scheduler.clone(),
                api: host.api_state(tokens, false),
                grace,
                stopped: AtomicBool::new(false),
                host: tokio::sync::Mutex::new(Some(host)),
            }),
        }
    }

    fn running(&self) -> Result<&Scheduler, Error> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        Ok(&self.shared.scheduler)
    }

    async fn audit(&self, changes: Vec<Change>) {
        crate::audit::record(
            self.shared.scheduler.store().as_ref(),
            &Actor::internal(ACTOR),
            changes,
        )
        .await;
    }

    /// Refuses a spec whose plugin this host does not know, or knows as a
    /// listener: the scheduler would keep such a job waiting for a plugin
    /// that never comes, and a typo is better caught here.
    fn check_plugin(&self, spec: &JobSpec) -> Result<(), Error> {
        let registry = self.shared.scheduler.plugins();
        match registry.get(&spec.plugin) {
            Some(plugin) if plugin.world() != World::Job => Err(Error::invalid(
                "plugin",
                format!(
                    "plugin: '{}' implements {}, not world `job`; it can only be a listener",
                    spec.plugin,
                    plugin.world_name()
                ),
            )),
            Some(plugin) => plugin
                .check_args(&spec.args)
                .map_err(|(field, message)| Error::invalid(field, message)),
            // Still compiling, or refused with a file in the folder: the
            // job waits for it, as the API lets it.
            None if registry.statuses().iter().any(|s| s.name == spec.plugin) => Ok(()),
            None => {
                let mut known: Vec<String> = registry
                    .loaded()
                    .iter()
                    .filter(|p| p.world() == World::Job)
                    .map(|p| p.name().to_owned())
                    .collect();
                known.sort();
                Err(Error::invalid(
                    "plugin",
                    format!(
                        "plugin: no plugin named '{}' (loaded job plugins: {})",
                        spec.plugin,
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ))
            }
        }
    }

    async fn write(&self, spec: JobSpec, how: Write) -> Result<JobInfo, Error> {
        let scheduler = self.running()?;
        self.check_plugin(&spec)?;
        let before = scheduler.spec_of(&spec.id);
        let info = match how {
            Write::Add => scheduler.add_job(spec, false).await?,
            Write::Put => scheduler.add_job(spec, true).await?,
            Write::Replace => scheduler.modify_job(spec).await?,
        };
        let change = Change::job_written(before.as_ref(), &info.spec);
        self.audit(change.into_iter().collect()).await;
        Ok(info)
    }

    /// Adds a job.
    ///
    /// # Errors
    /// [`Error::Duplicate`] when the id is taken; [`Error::Invalid`]
    /// naming the field of a bad spec or an unknown plugin;
    /// [`Error::Stopped`]; [`Error::Scheduler`] for a store failure.
    pub async fn add(&self, spec: JobSpec) -> Result<JobInfo, Error> {
        self.write(spec, Write::Add).await
    }

    /// Adds a job, or replaces the one with its id (keeping its schedule
    /// when the trigger is unchanged, and its paused state unless `paused`
    /// differs from the replaced spec's).
    ///
    /// # Errors
    /// As [`Self::add`], without [`Error::Duplicate`].
    pub async fn put(&self, spec: JobSpec) -> Result<JobInfo, Error> {
        self.write(spec, Write::Put).await
    }

    /// Replaces an existing job's whole spec (as [`Self::put`], but the
    /// job must exist).
    ///
    /// # Errors
    /// [`Error::JobNotFound`]; otherwise as [`Self::add`].
    pub async fn replace(&self, spec: JobSpec) -> Result<JobInfo, Error> {
        self.write(spec, Write::Replace).await
    }

    /// Changes the fields of job `id` that `patch` names: a JSON merge
    /// patch (RFC 7396) of its spec, as `PATCH /jobs/{id}` takes, e.g.
    /// `{"trigger": {"type": "interval", "every": "5m"}, "retry": null}`
    /// (`null` removes a field, restoring its default).
    ///
    /// # Errors
    /// [`Error::JobNotFound`]; [`Error::Invalid`] when `patch` is not an
    /// object, changes the id or `paused` (use [`Self::pause`] and
    /// [`Self::resume`]), or makes a bad spec (naming the field); otherwise
    /// as [`Self::add`].
    pub async fn patch(&self, id: &str, patch: &serde_json::Value) -> Result<JobInfo, Error> {
        let scheduler = self.running()?;
        let current = scheduler.job(id)?;
        if !patch.is_object() {
            return Err(Error::invalid(
                "",
                "the patch must be a JSON object (a merge patch of the job spec)",
            ));
        }
        if patch
            .get("paused")
            .is_some_and(|p| *p != serde_json::Value::Bool(current.paused))
        {
            return Err(Error::invalid(
                "paused",
                "paused: a patch does not pause or resume a job; call pause or resume",
            ));
        }
        let mut merged = serde_json::to_value(&current.spec)
            .map_err(|e| Error::invalid("", format!("the current spec: {e}")))?;
        crate::job::merge_patch(&mut merged, patch);
        if merged.get("id").and_then(|v| v.as_str()) != Some(id) {
            return Err(Error::invalid(
                "id",
                "id: a job's id cannot be changed; add a new job and remove this one",
            ));
        }
        let spec: JobSpec = serde_path(merged)?;
        self.replace(spec).await
    }

    /// Removes job `id` (its run history goes with it).
    ///
    /// # Errors
    /// [`Error::JobNotFound`]; [`Error::Stopped`]; [`Error::Scheduler`]
    /// for a store failure.
    pub async fn remove(&self, id: &str) -> Result<(), Error> {
        self.running()?.remove_job(id).await?;
        self.audit(vec![Change::job(Action::JobDeleted, id)]).await;
        Ok(())
    }

    /// Pauses job `id`: it keeps its spec and history but does not fire.
    /// Runs going on go on.
    ///
    /// # Errors
    /// As [`Self::remove`].
    pub async fn pause(&self, id: &str) -> Result<JobInfo, Error> {
        let info = self.running()?.pause_job(id).await?;
        self.audit(vec![Change::job(Action::JobPaused, id)]).await;
        Ok(info)
    }

    /// Resumes job `id` from its next fire after now (fires missed while
    /// paused are not run).
    ///
    /// # Errors
    /// As [`Self::remove`].
    pub async fn resume(&self, id: &str) -> Result<JobInfo, Error> {
        let info = self.running()?.resume_job(id).await?;
        self.audit(vec![Change::job(Action::JobResumed, id)]).await;
        Ok(info)
    }

    /// Starts a run of job `id` now, outside its schedule (a paused job
    /// too), and returns its record as started (`pending`); its end comes
    /// as an event and in [`Self::runs`].
    ///
    /// # Errors
    /// [`Error::JobNotFound`]; [`Error::Scheduler`] when its plugin is not
    /// loaded or it already has `max_instances` runs going;
    /// [`Error::Stopped`].
    pub async fn run_now(&self, id: &str) -> Result<RunRecord, Error> {
        let record = self.running()?.run_now(id).await?;
        self.audit(vec![Change::job(Action::JobRun, id).with_detail(
            serde_json::json!({
                "run_id": record.run_id,
            }),
        )])
        .await;
        Ok(record)
    }

    /// Job `id` as the scheduler sees it now: spec, next fire, state.
    ///
    /// # Errors
    /// [`Error::JobNotFound`]; [`Error::Stopped`].
    pub fn job(&self, id: &str) -> Result<JobInfo, Error> {
        Ok(self.running()?.job(id)?)
    }

    /// Every job, by id.
    pub fn jobs(&self) -> Vec<JobInfo> {
        let mut jobs = self.shared.scheduler.jobs();
        jobs.sort_by(|a, b| a.spec.id.cmp(&b.spec.id));
        jobs
    }

    /// The newest `limit` runs of job `id`, newest first.
    ///
    /// # Errors
    /// [`Error::Stopped`]; [`Error::Scheduler`] for a store failure. A job
    /// without runs (or no such job) gives an empty list.
    pub async fn runs(&self, id: &str, limit: usize) -> Result<Vec<RunRecord>, Error> {
        Ok(self.running()?.runs(id, limit).await?)
    }

    /// One run by its id; `None` when there is none.
    ///
    /// # Errors
    /// As [`Self::runs`].
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, Error> {
        Ok(self.running()?.run(run_id).await?)
    }

    /// Every event from now on, each an `Arc<Event>` shared with the
    /// host's other subscribers (match on `*event`): jobs added, changed,
    /// paused, removed; runs submitted, started, succeeded, failed, missed,
    /// retried; plugins loaded. A receiver that falls more than 4,096
    /// events behind gets `RecvError::Lagged` and skips ahead; it ends
    /// (`Closed`) when the host stops.
    pub fn subscribe(&self) -> crate::event::EventReceiver {
        self.shared.scheduler.subscribe()
    }

    /// The HTTP API (`/jobs`, `/runs`, `/events`, `/plugins`, ... as
    /// `GET /openapi.json` lists them) as a router to nest under a prefix
    /// of your own app:
    /// `Router::new().nest("/wasmcron", wasmcron.router())`. Nest it in a
    /// router whose state is already given (`.with_state(...)` first), or
    /// with `nest_service`.
    ///
    /// Its event streams end at [`Self::begin_stop`], so your server's
    /// graceful shutdown is not held by an open `/events`. See the module
    /// docs for what it leaves to your server (auth without
    /// [`super::Builder::api_token`], connection limits). The dashboard
    /// (at `/`) calls the API at the root of the server, so it works only
    /// when the router is served unprefixed.
    pub fn router(&self) -> axum::Router {
        crate::api::router(self.shared.api.clone())
    }

    /// The scheduler underneath, for what this handle does not cover
    /// (calendars, backfills, replays). Its API is the crate's internal
    /// one and changes more often than this handle's.
    pub fn scheduler(&self) -> &Scheduler {
        &self.shared.scheduler
    }

    /// The first half of [`Self::stop`], for a server's shutdown hook: no
    /// more fires, and the router's event streams end (so your server can
    /// drain its connections). Runs going on go on; calls other than
    /// reads fail with [`Error::Stopped`] from here.
    pub fn begin_stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.scheduler.stop_firing();
        self.shared.api.stop.cancel();
    }

    /// Stops gracefully: no more fires, running jobs get the builder's
    /// shutdown grace to finish (then are stopped and recorded as
    /// interrupted), runs not started stay pending for the next start,
    /// and the store is closed (a SQLite file may then be opened again).
    /// Every clone is stopped; a second call waits for the first.
    pub async fn stop(&self) {
        self.begin_stop();
        let mut host = self.shared.host.lock().await;
        if let Some(host) = host.take() {
            host.finish(self.shared.grace).await;
        }
    }
}

/// How [`Wasmcron::write`] writes.
#[derive(Debug, Clone, Copy)]
enum Write {
    Add,
    Put,
    Replace,
}

/// A spec from JSON, refused naming the path of the bad field (e.g.
/// `trigger.every`), as the API's 422 names it.
fn serde_path(value: serde_json::Value) -> Result<JobSpec, Error> {
    serde_path_to_error::deserialize::<_, JobSpec>(value).map_err(|e| {
        let path = e.path().to_string();
        let message = format!("{path}: {}", e.inner());
        Error::invalid(path, message)
    })
}
