//! The plugins folder: `NAME.wasm` files (and `NAME.toml` sidecars) loaded,
//! replaced and removed while the host runs.
//!
//! ```text
//! notify event / periodic rescan ──▶ scan ──▶ stat unchanged since last scan? ──▶ read, hash, load
//!                                                                    └─ no: look again after the debounce
//! ```
//!
//! A file is only read once its size and modification time have held
//! still across two scans a debounce apart, so a plugin being copied in is
//! not loaded half-written; it is re-checked after reading, too. The usual
//! atomic pattern (write `x.wasm.tmp`, rename to `x.wasm`) needs nothing
//! special: only names ending in `.wasm` and `.toml` are looked at, and a
//! rename delivers a whole file. The watcher is only a hint to scan
//! sooner; the periodic rescan alone is enough (network filesystems,
//! platforms without inotify, a watcher that overflowed).

use super::{CompileCache, CompileSource, ContentHash, MAX_PLUGIN_BYTES, Plugin, PluginError};
use super::{PluginRegistry, Sidecar};
use crate::runtime::Runtime;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a scan changed, for the scheduler and the logs.
#[derive(Debug, Clone)]
pub enum FolderChange {
    /// A plugin was loaded (new, or replacing an older version).
    Loaded {
        /// Its name.
        name: String,
        /// Its content hash.
        hash: ContentHash,
        /// Whether it replaced a loaded version.
        replaced: bool,
        /// Compiled now or read from the cache.
        compiled: CompileSource,
    },
    /// A file was refused; a previously loaded version stays in service.
    Refused {
        /// The plugin's name.
        name: String,
        /// Why.
        error: String,
    },
    /// A plugin's file is gone; it is out of service.
    Removed {
        /// Its name.
        name: String,
    },
    /// A sidecar was read.
    Sidecar {
        /// The plugin it belongs to.
        name: String,
        /// Its contents.
        sidecar: Sidecar,
    },
    /// A sidecar was refused (the plugin itself is unaffected).
    SidecarRefused {
        /// The plugin it belongs to.
        name: String,
        /// Why.
        error: String,
    },
    /// A sidecar is gone: its default capabilities no longer apply.
    SidecarRemoved {
        /// The plugin it belonged to.
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    len: u64,
    modified: Option<SystemTime>,
}

#[derive(Debug)]
struct Seen {
    stat: Stat,
    /// Whether this stat has been acted on.
    done: bool,
    /// Hash of the contents last acted on (sidecars; plugins compare with
    /// the registry).
    content: Option<ContentHash>,
}

/// What reading a file came to.
enum Read {
    /// It changed while being read: look again after the debounce.
    Changed,
    /// Acted on; `content` is the hash to remember (sidecars compare with
    /// it next time; plugins compare with the registry instead).
    Done { content: Option<ContentHash> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Wasm,
    Sidecar,
}

/// Keeps a plugins folder and a [`PluginRegistry`] in step.
pub struct PluginFolder {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    registry: Arc<PluginRegistry>,
    cache: Option<CompileCache>,
    seen: HashMap<(String, Kind), Seen>,
}

impl std::fmt::Debug for PluginFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginFolder")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl PluginFolder {
    /// A folder feeding `registry`; nothing is read until [`Self::scan`].
    pub fn new(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        registry: Arc<PluginRegistry>,
        cache: Option<CompileCache>,
    ) -> Self {
        Self {
            dir,
            runtime,
            registry,
            cache,
            seen: HashMap::new(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Prunes the compile cache of entries no loaded plugin uses and none
    /// has used for `unused_for`.
    pub fn prune_cache(&self, unused_for: Duration) {
        let Some(cache) = &self.cache else { return };
        let loaded = self.registry.loaded();
        let keep: Vec<&ContentHash> = loaded.iter().map(|p| p.hash()).collect();
        let removed = cache.prune(&keep, unused_for);
        if removed > 0 {
            tracing::info!(dir = %cache.dir().display(), removed, "pruned unused compile cache entries");
        }
    }

    /// One pass over the folder. With `settle_new`, files seen for the
    /// first time are read at once (start-up: the folder is assumed at
    /// rest); otherwise only once their stat has held still since the
    /// previous scan. Returns the changes and whether some file is still
    /// settling (scan again after the debounce).
    ///
    /// # Errors
    /// Only when the folder itself cannot be listed (it is then treated as
    /// unchanged, not as emptied: nothing is unloaded).
    pub fn scan(&mut self, settle_new: bool) -> std::io::Result<(Vec<FolderChange>, bool)> {
        let mut present: Vec<(String, Kind, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            if file.starts_with('.') {
                continue;
            }
            let (stem, kind) = if let Some(stem) = file.strip_suffix(".wasm") {
                (stem, Kind::Wasm)
            } else if let Some(stem) = file.strip_suffix(".toml") {
                (stem, Kind::Sidecar)
            } else {
                continue;
            };
            if stem.is_empty() || !path.is_file() {
                continue;
            }
            present.push((stem.to_owned(), kind, path));
        }
        // Plugins before sidecars, so a sidecar's jobs find their plugin.
        present.sort_by(|a, b| (a.1 == Kind::Sidecar, &a.0).cmp(&(b.1 == Kind::Sidecar, &b.0)));

        let mut changes = Vec::new();
        let mut pending = false;
        for (name, kind, path) in &present {
            let Some(stat) = stat(path) else { continue };
            let key = (name.clone(), *kind);
            let ready = match self.seen.get_mut(&key) {
                Some(seen) if seen.stat == stat => !seen.done,
                Some(seen) => {
                    seen.stat = stat;
                    seen.done = false;
                    settle_new
                }
                None => {
                    self.seen.insert(
                        key.clone(),
                        Seen {
                            stat,
                            done: false,
                            content: None,
                        },
                    );
                    settle_new
                }
            };
            if !ready {
                pending = true;
                continue;
            }
            let read = match kind {
                Kind::Wasm => self.load_plugin(name, path, stat, &mut changes),
                Kind::Sidecar => self.load_sidecar(name, path, stat, &mut changes),
            };
            match read {
                Read::Done { content } => {
                    if let Some(seen) = self.seen.get_mut(&key) {
                        seen.done = true;
                        seen.content = content;
                    }
                }
                Read::Changed => pending = true,
            }
        }

        let gone: Vec<(String, Kind)> = self
            .seen
            .keys()
            .filter(|(n, k)| !present.iter().any(|(pn, pk, _)| pn == n && pk == k))
            .cloned()
            .collect();
        for (name, kind) in gone {
            self.seen.remove(&(name.clone(), kind));
            match kind {
                Kind::Wasm => {
                    let was_loaded = self.registry.remove(&name).is_some();
                    if was_loaded {
                        tracing::warn!(plugin = %name, "plugin file removed; its jobs wait until it is back");
                        changes.push(FolderChange::Removed { name });
                    }
                }
                Kind::Sidecar => {
                    self.registry.set_default_grants(&name, None);
                    tracing::info!(plugin = %name, "sidecar removed; its default capabilities no longer apply (its jobs are kept)");
                    changes.push(FolderChange::SidecarRemoved { name });
                }
            }
        }
        Ok((changes, pending))
    }

    /// Reads and loads one plugin file.
    fn load_plugin(
        &self,
        name: &str,
        path: &Path,
        before: Stat,
        changes: &mut Vec<FolderChange>,
    ) -> Read {
        let current = self.registry.get(name);
        let result = if before.len > MAX_PLUGIN_BYTES {
            Err(PluginError::TooLarge { size: before.len })
        } else {
            match std::fs::read(path) {
                Ok(bytes) => {
                    if stat(path) != Some(before) {
                        return Read::Changed;
                    }
                    let hash = ContentHash::of(&bytes);
                    if current.as_ref().is_some_and(|p| *p.hash() == hash) {
                        // Touched, not changed.
                        return Read::Done { content: None };
                    }
                    Plugin::load_bytes_cached(
                        &self.runtime,
                        name.to_owned(),
                        &bytes,
                        self.cache.as_ref(),
                    )
                }
                Err(source) => Err(PluginError::Io {
                    path: path.to_path_buf(),
                    source,
                }),
            }
        };
        match result {
            Ok(plugin) => {
                let hash = plugin.hash().clone();
                let compiled = plugin.compiled();
                let replaced = current.is_some();
                tracing::info!(
                    plugin = %name,
                    hash = %hash.short(),
                    world = plugin.world().name(),
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
                match &current {
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
        Read::Done { content: None }
    }

    fn load_sidecar(
        &self,
        name: &str,
        path: &Path,
        before: Stat,
        changes: &mut Vec<FolderChange>,
    ) -> Read {
        let previous = self
            .seen
            .get(&(name.to_owned(), Kind::Sidecar))
            .and_then(|s| s.content.clone());
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                let error = format!("{name}.toml: {e}");
                tracing::warn!(plugin = %name, "sidecar refused: {error}");
                changes.push(FolderChange::SidecarRefused {
                    name: name.to_owned(),
                    error,
                });
                return Read::Done { content: None };
            }
        };
        if stat(path) != Some(before) {
            return Read::Changed;
        }
        let content = ContentHash::of(text.as_bytes());
        if previous.as_ref() == Some(&content) {
            return Read::Done {
                content: Some(content),
            };
        }
        match Sidecar::parse(name, &text, &self.dir) {
            Ok(sidecar) => {
                tracing::info!(plugin = %name, jobs = sidecar.jobs.len(), capabilities = sidecar.grants.is_some(), "sidecar read");
                self.registry
                    .set_default_grants(name, sidecar.grants.clone());
                changes.push(FolderChange::Sidecar {
                    name: name.to_owned(),
                    sidecar,
                });
            }
            Err(err) => {
                tracing::warn!(plugin = %name, error = %err, "sidecar refused; fix it and save again");
                changes.push(FolderChange::SidecarRefused {
                    name: name.to_owned(),
                    error: err.to_string(),
                });
            }
        }
        Read::Done {
            content: Some(content),
        }
    }

    /// Watches the folder until `cancel`, sending each non-empty batch of
    /// changes to `tx`. Scans run on the blocking pool (compiling is CPU
    /// work).
    pub fn watch(
        mut self,
        options: WatchOptions,
        tx: mpsc::UnboundedSender<Vec<FolderChange>>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let (hint_tx, mut hints) = mpsc::unbounded_channel::<()>();
            let _watcher = start_watcher(&self.dir, hint_tx, options.rescan);
            let mut pending = false;
            loop {
                let wait = if pending {
                    options.debounce
                } else {
                    options.rescan
                };
                tokio::select! {
                    () = cancel.cancelled() => return,
                    Some(()) = hints.recv() => {
                        // Let a burst of events (a copy in progress) settle.
                        tokio::time::sleep(options.debounce).await;
                        while hints.try_recv().is_ok() {}
                    }
                    () = tokio::time::sleep(wait) => {}
                }
                let scanned = tokio::task::spawn_blocking(move || {
                    let result = self.scan(false);
                    (self, result)
                })
                .await;
                let result;
                (self, result) = match scanned {
                    Ok(done) => done,
                    Err(e) => {
                        tracing::error!(error = %e, "plugin folder scan panicked; folder watching stopped");
                        return;
                    }
                };
                match result {
                    Ok((changes, still_settling)) => {
                        pending = still_settling;
                        if !changes.is_empty() && tx.send(changes).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the plugins folder; keeping what is loaded");
                    }
                }
            }
        })
    }
}

/// How the folder is watched.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// How long a file's size and time must hold still before it is read.
    pub debounce: Duration,
    /// Rescan this often even without file events.
    pub rescan: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(250),
            rescan: Duration::from_secs(2),
        }
    }
}

fn stat(path: &Path) -> Option<Stat> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stat {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

fn start_watcher(
    dir: &Path,
    hint: mpsc::UnboundedSender<()>,
    rescan: Duration,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = hint.send(());
        }
    });
    match watcher.and_then(|mut w| {
        w.watch(dir, notify::RecursiveMode::NonRecursive)?;
        Ok(w)
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "file events unavailable; rescanning every {}", crate::duration::format(rescan));
            None
        }
    }
}
