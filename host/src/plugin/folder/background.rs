//! Background compiles: queued by a scan, run in a child process each (a
//! bounded number at once), their results applied by the watch loop
//! unless the file has changed or gone since.

use super::{FolderChange, PluginFolder};
use crate::plugin::compile::Outcome;
use crate::plugin::{CompileSource, ContentHash, FileFacts, Plugin, PluginError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A background compile's result, back to the folder.
pub(super) struct Compiled {
    name: String,
    hash: ContentHash,
    path: PathBuf,
    result: Result<Plugin, PluginError>,
}

/// A plugin file as read from the folder: its bytes and what they declare
/// (checked before any compile).
pub(super) struct ReadFile {
    pub(super) bytes: Vec<u8>,
    pub(super) facts: FileFacts,
}

impl PluginFolder {
    /// Queues a compile of `bytes` in a child process; its result comes
    /// back through `done_tx`.
    pub(super) fn spawn_compile(
        &mut self,
        name: &str,
        path: &Path,
        hash: ContentHash,
        file: ReadFile,
        damaged: bool,
        serving: bool,
    ) {
        let ReadFile { bytes, facts } = file;
        let cancel = self.stop.child_token();
        self.compiling
            .insert(name.to_owned(), (hash.clone(), cancel.clone()));
        self.registry.start_compiling(name, hash.clone());
        tracing::info!(
            plugin = %name,
            hash = %hash.short(),
            size = bytes.len(),
            "compiling plugin in the background; {}",
            if serving {
                "the loaded version serves meanwhile"
            } else {
                "its jobs wait for it"
            }
        );
        let compiler = self.compiler.clone();
        let bounds = compiler.limits().key();
        let runtime = self.runtime.clone();
        let cache = self.cache.clone();
        let tx = self.done_tx.clone();
        let name = name.to_owned();
        let path = path.to_path_buf();
        tokio::spawn(async move {
            let result = match compiler.compile(bytes.into(), &cancel).await {
                Outcome::Cancelled => return,
                Outcome::Refused(err) => {
                    // Over a bound: remembered, so a restart does not pay
                    // the whole bound again for the same file.
                    if matches!(
                        err,
                        PluginError::CompileMemory { .. } | PluginError::CompileTimeout { .. }
                    ) && let Some(cache) = &cache
                    {
                        cache.remember_refusal(&hash, &bounds, &err.to_string());
                    }
                    Err(err)
                }
                Outcome::Compiled(payload) => {
                    let (name, hash) = (name.clone(), hash.clone());
                    let loaded = tokio::task::spawn_blocking(move || {
                        let mut plugin = Plugin::from_compiler_output(
                            &runtime,
                            name,
                            hash,
                            facts,
                            &payload,
                            CompileSource::Compiled,
                        )?;
                        // Only output that loaded is worth keeping.
                        let stored = cache
                            .as_ref()
                            .is_some_and(|c| c.store(plugin.hash(), &payload));
                        plugin.compiled = CompileSource::after_compile(damaged, stored);
                        Ok(plugin)
                    })
                    .await;
                    loaded.unwrap_or_else(|e| {
                        Err(PluginError::CompilerFailed {
                            detail: format!("loading the compiled plugin failed: {e}"),
                        })
                    })
                }
            };
            let _ = tx.send(Compiled {
                name,
                hash,
                path,
                result,
            });
        });
    }

    /// Stops the compile of `name`, if one is under way; says whether one
    /// was.
    pub(super) fn abandon(&mut self, name: &str) -> bool {
        match self.compiling.remove(name) {
            Some((_, cancel)) => {
                cancel.cancel();
                self.registry.done_compiling(name);
                true
            }
            None => false,
        }
    }

    /// Applies a finished compile, unless its file has changed or gone
    /// since (then it was abandoned and the result is dropped).
    pub(super) fn finish(&mut self, done: Compiled, changes: &mut Vec<FolderChange>) {
        if self
            .compiling
            .get(&done.name)
            .is_none_or(|(h, _)| *h != done.hash)
        {
            return;
        }
        self.compiling.remove(&done.name);
        let current = self.registry.get(&done.name);
        self.settle(
            &done.name,
            &done.path,
            current.as_ref(),
            done.result,
            changes,
        );
        self.registry.done_compiling(&done.name);
    }

    /// Puts a loaded plugin in service, or records why a file was refused
    /// (keeping `current`, the version in service, if any).
    pub(super) fn settle(
        &self,
        name: &str,
        path: &Path,
        current: Option<&Arc<Plugin>>,
        result: Result<Plugin, PluginError>,
        changes: &mut Vec<FolderChange>,
    ) {
        match result {
            Ok(plugin) => {
                let hash = plugin.hash().clone();
                let compiled = plugin.compiled();
                let replaced = current.is_some();
                tracing::info!(
                    plugin = %name,
                    hash = %hash.short(),
                    world = plugin.world_name(),
                    compiled = compiled.as_str(),
                    replaced,
                    "plugin loaded"
                );
                self.registry.insert(plugin);
                changes.push(FolderChange::Loaded {
                    name: name.to_owned(),
                    hash,
                    replaced,
                    compiled,
                });
            }
            Err(err) => {
                match current {
                    Some(good) => tracing::warn!(
                        plugin = %name, file = %path.display(), error = %err,
                        keeping = %good.hash().short(),
                        "plugin refused; the previous version stays in service"
                    ),
                    None => {
                        tracing::warn!(plugin = %name, file = %path.display(), error = %err, "plugin refused")
                    }
                }
                self.registry.refuse(name, &err);
                changes.push(FolderChange::Refused {
                    name: name.to_owned(),
                    error: err.to_string(),
                });
            }
        }
    }
}
