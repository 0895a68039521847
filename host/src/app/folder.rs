//! What the plugins folder's changes mean for the scheduler.
//!
//! Jobs a sidecar declares are *owned* by it, as a manifest owns what it
//! declares: edit the sidecar and the jobs follow (changed ones are
//! updated, unchanged ones keep their schedule state, ones no longer
//! listed are removed); delete the sidecar and its jobs go. Which ids each
//! sidecar declared is kept in the store (kv namespace `wasmcron`, which
//! no job id can collide with), so a sidecar edited or deleted while the
//! host was down is honoured at the next start. The `--config` jobs file
//! owns its jobs the same way (checked at each start with a jobs file).

use crate::audit::{Action, Actor, Change, record};
use crate::plugin::{FolderChange, PluginRegistry};
use crate::scheduler::{JobInfo, Scheduler};
use crate::store::KvStore;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

const NAMESPACE: &str = "wasmcron";
const KEY: &str = "sidecar-jobs";
const CONFIG_KEY: &str = "config-jobs";
/// The digest of the jobs file last applied in full, while no job has been
/// added, changed or removed since (deleted at the first such change).
const APPLIED_KEY: &str = "config-applied";

/// Applies folder changes to the scheduler.
pub(super) struct FolderSync {
    pub(super) scheduler: Scheduler,
    pub(super) kv: Arc<dyn KvStore>,
    pub(super) folder: PathBuf,
}

impl FolderSync {
    /// The store, for the audit log.
    fn store(&self) -> &dyn crate::store::JobStore {
        self.scheduler.store().as_ref()
    }

    fn owned(&self) -> BTreeMap<String, Vec<String>> {
        match self.kv.get(NAMESPACE, KEY) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Ok(None) => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read which jobs sidecars declared");
                BTreeMap::new()
            }
        }
    }

    fn save(&self, owned: &BTreeMap<String, Vec<String>>) {
        let saved = serde_json::to_vec(owned)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                self.kv
                    .set(NAMESPACE, KEY, &bytes)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            tracing::warn!(error = %e, "cannot record which jobs sidecars declared");
        }
    }

    /// The jobs file declared `ids` (already upserted): jobs it declared at
    /// an earlier start and no longer does are removed.
    ///
    /// Costs a set lookup per id, and no write when the file declares what
    /// it declared before (with a list lookup per id, an unchanged file of
    /// 100,000 jobs took 135 s here).
    pub(super) async fn config_declares(&self, ids: Vec<String>) {
        let previous: Vec<String> = match self.kv.get(NAMESPACE, CONFIG_KEY) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => Vec::new(),
        };
        if previous == ids {
            return;
        }
        let declared: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        for id in previous.iter().filter(|id| !declared.contains(id.as_str())) {
            if self.scheduler.job(id).is_err() {
                continue;
            }
            match self.scheduler.remove_job(id).await {
                Ok(()) => {
                    tracing::info!(job = %id, "job removed: the jobs file no longer declares it");
                    let change = Change::job(Action::JobDeleted, id);
                    record(self.store(), &Actor::internal("config"), vec![change]).await;
                }
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "could not remove a job the jobs file dropped")
                }
            }
        }
        let saved = serde_json::to_vec(&ids)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                self.kv
                    .set(NAMESPACE, CONFIG_KEY, &b)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            tracing::warn!(error = %e, "cannot record which jobs the jobs file declared");
        }
    }

    /// Whether the jobs file whose digest is `digest` is the one applied
    /// at an earlier start, with no job added, changed or removed since:
    /// then its jobs are as it says, and it need not be read again (at a
    /// million jobs, parsing and comparing took about as long as the rest
    /// of the start).
    pub(super) fn marked(kv: &dyn KvStore, digest: &str) -> bool {
        matches!(kv.get(NAMESPACE, APPLIED_KEY), Ok(Some(d)) if d == digest.as_bytes())
    }

    /// Whether every job the jobs file declared at its last start is
    /// still there (a belt to [`Self::marked`]'s braces: a job
    /// removed since clears the mark anyway).
    pub(super) fn config_jobs_present(&self) -> bool {
        let declared: Vec<String> = match self.kv.get(NAMESPACE, CONFIG_KEY) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(ids) => ids,
                Err(_) => return false,
            },
            _ => return false,
        };
        self.scheduler.jobs_exist(&declared)
    }

    /// Records that the jobs file with `digest` is applied, and clears that
    /// record at the first job added, changed or removed from now on (the
    /// next start then reads the file again, and it wins over the change,
    /// as it always did). Call before anything else can change a job.
    ///
    /// A change whose commit the process does not outlive by the moment the
    /// clearing takes may leave the record in place: the next start then
    /// keeps that change rather than the file's version of the job.
    pub(super) fn config_applied(self: &std::sync::Arc<Self>, digest: &str) {
        if !Self::marked(self.kv.as_ref(), digest)
            && let Err(e) = self.kv.set(NAMESPACE, APPLIED_KEY, digest.as_bytes())
        {
            tracing::warn!(error = %e, "cannot record the jobs file as applied; it is read again at the next start");
            return;
        }
        let mut events = self.scheduler.subscribe();
        let sync = self.clone();
        tokio::spawn(async move {
            use crate::event::Event;
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(e)
                        if matches!(
                            *e,
                            Event::JobAdded(_) | Event::JobModified(_) | Event::JobRemoved(_)
                        ) =>
                    {
                        break;
                    }
                    Err(RecvError::Lagged(_)) => break,
                    Ok(_) => {}
                    Err(RecvError::Closed) => return,
                }
            }
            let kv = sync.kv.clone();
            let cleared =
                tokio::task::spawn_blocking(move || kv.delete(NAMESPACE, APPLIED_KEY)).await;
            if !matches!(cleared, Ok(Ok(()))) {
                tracing::warn!(
                    "cannot clear the record of the jobs file as applied; the next start \
                     may keep this change to one of its jobs instead of the file's version"
                );
            }
        });
    }

    /// Removes `ids` that still belong to `plugin` (an id since taken over
    /// by another plugin's job is left alone).
    async fn drop_jobs(&self, plugin: &str, ids: &[String], why: &str) {
        for id in ids {
            let ours = self
                .scheduler
                .job(id)
                .is_ok_and(|j| j.spec.plugin == plugin);
            if !ours {
                continue;
            }
            match self.scheduler.remove_job(id).await {
                Ok(()) => {
                    tracing::info!(job = %id, plugin, "job removed: {why}");
                    let change = Change::job(Action::JobDeleted, id);
                    record(self.store(), &Actor::internal("sidecar"), vec![change]).await;
                }
                Err(e) => {
                    tracing::warn!(job = %id, plugin, error = %e, "could not remove a job {why}")
                }
            }
        }
    }

    /// Tells the scheduler what the folder did: plugins back in service
    /// resume their held jobs; sidecar jobs follow their sidecar. A bad
    /// sidecar job is logged and skipped; a refused sidecar changes nothing.
    pub(super) async fn apply(&self, changes: Vec<FolderChange>) {
        for change in changes {
            match change {
                FolderChange::Loaded { name, .. } => self.scheduler.plugin_loaded(&name),
                FolderChange::Refused { name, error } => {
                    self.scheduler.plugin_refused(&name, error);
                }
                FolderChange::Removed { name } => self.scheduler.plugin_removed(&name),
                FolderChange::Sidecar { name, sidecar } => {
                    let mut owned = self.owned();
                    let mine: Vec<String> = owned.get(&name).cloned().unwrap_or_default();
                    let mut ids: Vec<String> = Vec::new();
                    for spec in sidecar.jobs {
                        let id = spec.id.clone();
                        let before = self.scheduler.spec_of(&id);
                        // A sidecar owns only the jobs it made: an id taken by
                        // a job of the API, the jobs file or another sidecar
                        // is refused, never rewritten (and so never deleted
                        // with this sidecar). Whoever can drop a file into the
                        // folder must not take over another person's job.
                        if before.is_some() && !mine.contains(&id) {
                            tracing::warn!(
                                plugin = %name,
                                job = %id,
                                "sidecar job refused: job id {id:?} is taken by a job this sidecar \
                                 did not make (the API's, the jobs file's or another sidecar's); \
                                 give the sidecar's job another id, or delete the other job first"
                            );
                            continue;
                        }
                        match self.scheduler.upsert_job(spec).await {
                            Ok(info) => {
                                ids.push(id.clone());
                                report_job(&info, self.scheduler.plugins());
                                let change = Change::job_written(before.as_ref(), &info.spec);
                                record(
                                    self.store(),
                                    &Actor::internal("sidecar"),
                                    change.into_iter().collect(),
                                )
                                .await;
                            }
                            Err(err) => {
                                // A job it made before stays its own (and stays
                                // as it was); a new id it failed to make is not
                                // claimed, so no later job by that id is taken.
                                if mine.contains(&id) {
                                    ids.push(id.clone());
                                }
                                tracing::warn!(plugin = %name, job = %id, error = %err, "sidecar job refused");
                            }
                        }
                    }
                    let gone: Vec<String> = owned
                        .get(&name)
                        .map(|old| old.iter().filter(|id| !ids.contains(id)).cloned().collect())
                        .unwrap_or_default();
                    self.drop_jobs(&name, &gone, "its sidecar no longer declares it")
                        .await;
                    owned.insert(name, ids);
                    self.save(&owned);
                }
                FolderChange::SidecarRemoved { name } => {
                    let mut owned = self.owned();
                    if let Some(ids) = owned.remove(&name) {
                        self.drop_jobs(&name, &ids, "its sidecar was removed").await;
                        self.save(&owned);
                    }
                }
                FolderChange::SidecarRefused { .. } => {}
            }
        }
    }

    /// At start: sidecars deleted while the host was down take their jobs
    /// with them.
    pub(super) async fn reconcile(&self) {
        let owned = self.owned();
        let vanished: Vec<String> = owned
            .keys()
            .filter(|name| !self.folder.join(format!("{name}.toml")).exists())
            .cloned()
            .collect();
        for name in vanished {
            self.apply(vec![FolderChange::SidecarRemoved { name }])
                .await;
        }
    }
}

pub(super) fn report_job(info: &JobInfo, plugins: &PluginRegistry) {
    for w in &info.warnings {
        tracing::warn!(job = %info.spec.id, "{w}");
    }
    if info.plugin_loaded {
        return;
    }
    if plugins.compiling(&info.spec.plugin).is_some() {
        tracing::info!(job = %info.spec.id, plugin = %info.spec.plugin, "the job's plugin is still compiling; the job waits for it");
    } else {
        tracing::warn!(job = %info.spec.id, plugin = %info.spec.plugin, "the job's plugin is not loaded; the job waits for it");
    }
}
