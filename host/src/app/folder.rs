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

use crate::plugin::{FolderChange, PluginRegistry};
use crate::scheduler::{JobInfo, Scheduler};
use crate::store::KvStore;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

const NAMESPACE: &str = "wasmcron";
const KEY: &str = "sidecar-jobs";
const CONFIG_KEY: &str = "config-jobs";

/// Applies folder changes to the scheduler.
pub(super) struct FolderSync {
    pub(super) scheduler: Scheduler,
    pub(super) kv: Arc<dyn KvStore>,
    pub(super) folder: PathBuf,
}

impl FolderSync {
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
    pub(super) async fn config_declares(&self, ids: Vec<String>) {
        let previous: Vec<String> = match self.kv.get(NAMESPACE, CONFIG_KEY) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => Vec::new(),
        };
        for id in previous.iter().filter(|id| !ids.contains(id)) {
            if self.scheduler.job(id).is_err() {
                continue;
            }
            match self.scheduler.remove_job(id).await {
                Ok(()) => {
                    tracing::info!(job = %id, "job removed: the jobs file no longer declares it")
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
                Ok(()) => tracing::info!(job = %id, plugin, "job removed: {why}"),
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
                    let ids: Vec<String> = sidecar.jobs.iter().map(|j| j.id.clone()).collect();
                    for spec in sidecar.jobs {
                        let id = spec.id.clone();
                        match self.scheduler.upsert_job(spec).await {
                            Ok(info) => report_job(&info, self.scheduler.plugins()),
                            Err(err) => {
                                tracing::warn!(plugin = %name, job = %id, error = %err, "sidecar job refused");
                            }
                        }
                    }
                    let mut owned = self.owned();
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
