//! The plugins a host has loaded, by name, and the ones it refused.

use super::{Plugin, PluginError};
use crate::runtime::Runtime;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Loaded plugins by name. Runs hold an `Arc<Plugin>`, so replacing a
/// plugin never disturbs a run already using the old one.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    loaded: RwLock<BTreeMap<String, Arc<Plugin>>>,
    refused: RwLock<BTreeMap<String, String>>,
}

impl PluginRegistry {
    /// The loaded plugin named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Adds or replaces a plugin.
    pub fn insert(&self, plugin: Plugin) {
        let name = plugin.name().to_owned();
        self.refused
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        self.loaded
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, Arc::new(plugin));
    }

    /// Records why a file was refused (keeping any good version loaded).
    pub fn refuse(&self, name: &str, error: &PluginError) {
        self.refused
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), error.to_string());
    }

    /// Names and hashes of the loaded plugins.
    pub fn loaded(&self) -> Vec<Arc<Plugin>> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Refused files and why.
    pub fn refused(&self) -> Vec<(String, String)> {
        self.refused
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Loads every `NAME.wasm` in `dir`. A bad file is logged and recorded
    /// as refused; it never stops the others from loading.
    ///
    /// # Errors
    /// Only when `dir` itself cannot be read.
    pub fn load_dir(&self, runtime: &Runtime, dir: &Path) -> std::io::Result<()> {
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            match Plugin::load_file(runtime, &path) {
                Ok(plugin) => {
                    tracing::info!(plugin = %name, hash = %plugin.hash().short(), "plugin loaded");
                    self.insert(plugin);
                }
                Err(err) => {
                    tracing::warn!(plugin = %name, file = %path.display(), error = %err, "plugin refused");
                    self.refuse(&name, &err);
                }
            }
        }
        Ok(())
    }
}
