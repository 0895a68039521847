//! The plugins a host has loaded, by name, and the ones it refused.

use super::{ContentHash, Plugin, PluginError};
use crate::runtime::Runtime;
use crate::runtime::grants::Grants;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Loaded plugins by name. Runs hold an `Arc<Plugin>`, so replacing a
/// plugin never disturbs a run already using the old one.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    loaded: BTreeMap<String, Arc<Plugin>>,
    /// Why the latest file (or sidecar) of a name was refused; kept beside
    /// a loaded good version, which stays in service.
    refused: BTreeMap<String, String>,
    /// Files being compiled in the background, by name; a loaded older
    /// version (if any) serves meanwhile.
    compiling: BTreeMap<String, Compiling>,
    /// Sidecar default capabilities, by plugin name.
    defaults: BTreeMap<String, Arc<Grants>>,
}

/// A plugin file being compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiling {
    /// The file's content hash.
    pub hash: ContentHash,
    /// When the compile was queued.
    pub since: chrono::DateTime<chrono::Utc>,
}

/// One name's standing, for listings.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// The version in service, if any.
    pub loaded: Option<Arc<Plugin>>,
    /// Why the latest file was refused, if it was.
    pub refused: Option<String>,
    /// A newer file being compiled, if one is.
    pub compiling: Option<Compiling>,
}

impl PluginRegistry {
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The loaded plugin named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.read().loaded.get(name).cloned()
    }

    /// Adds or replaces a plugin, clearing any refusal of that name.
    pub fn insert(&self, plugin: Plugin) {
        let name = plugin.name().to_owned();
        let mut inner = self.write();
        inner.refused.remove(&name);
        inner.loaded.insert(name, Arc::new(plugin));
    }

    /// Takes a plugin out of service (its file is gone). Runs holding it
    /// finish; its refusal record, if any, goes too.
    pub fn remove(&self, name: &str) -> Option<Arc<Plugin>> {
        let mut inner = self.write();
        inner.refused.remove(name);
        inner.loaded.remove(name)
    }

    /// Records why a file was refused (keeping any good version loaded).
    pub fn refuse(&self, name: &str, error: &dyn std::fmt::Display) {
        self.write()
            .refused
            .insert(name.to_owned(), error.to_string());
    }

    /// Records that a file of `name` with `hash` is being compiled.
    pub fn start_compiling(&self, name: &str, hash: ContentHash) {
        self.write().compiling.insert(
            name.to_owned(),
            Compiling {
                hash,
                since: chrono::Utc::now(),
            },
        );
    }

    /// The compile of `name` is over (loaded, refused, or abandoned).
    pub fn done_compiling(&self, name: &str) {
        self.write().compiling.remove(name);
    }

    /// The file of `name` being compiled, if any.
    pub fn compiling(&self, name: &str) -> Option<Compiling> {
        self.read().compiling.get(name).cloned()
    }

    /// How many files are being compiled.
    pub fn compiling_count(&self) -> usize {
        self.read().compiling.len()
    }

    /// Sets (or clears) a plugin's default capabilities from its sidecar.
    pub fn set_default_grants(&self, name: &str, grants: Option<Arc<Grants>>) {
        let mut inner = self.write();
        match grants {
            Some(g) => inner.defaults.insert(name.to_owned(), g),
            None => inner.defaults.remove(name),
        };
    }

    /// The capabilities a job of plugin `name` gets when it sets none.
    pub fn default_grants(&self, name: &str) -> Arc<Grants> {
        // One shared empty set: this is asked for every run of a job
        // without capabilities of its own, and a fresh `Arc` each time
        // showed in the profile of an aligned burst.
        static NONE: std::sync::LazyLock<Arc<Grants>> = std::sync::LazyLock::new(Arc::default);
        self.read()
            .defaults
            .get(name)
            .cloned()
            .unwrap_or_else(|| NONE.clone())
    }

    /// The loaded plugins.
    pub fn loaded(&self) -> Vec<Arc<Plugin>> {
        self.read().loaded.values().cloned().collect()
    }

    /// Refused files and why.
    pub fn refused(&self) -> Vec<(String, String)> {
        self.read()
            .refused
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every name the host knows, loaded, compiling or refused, by name.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let inner = self.read();
        let mut names: Vec<&String> = inner
            .loaded
            .keys()
            .chain(inner.refused.keys())
            .chain(inner.compiling.keys())
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| PluginStatus {
                name: name.clone(),
                loaded: inner.loaded.get(name).cloned(),
                refused: inner.refused.get(name).cloned(),
                compiling: inner.compiling.get(name).cloned(),
            })
            .collect()
    }

    /// Loads every `NAME.wasm` in `dir` once, without a cache or sidecars
    /// (for tools and tests; `wasmcron run` uses [`super::PluginFolder`]).
    /// A bad file is logged and recorded as refused; it never stops the
    /// others from loading.
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
                    self.refuse(&name, &err as &PluginError);
                }
            }
        }
        Ok(())
    }
}
