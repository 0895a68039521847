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
//!
//! ```text
//! read file ──checks──▶ refused at once (not wasm, cut short, core module, too large)
//!           ──cache hit (~1 ms)──▶ loaded at once
//!           ──cache miss──▶ compile in a child process, in the background ──▶ loaded | refused
//! ```
//!
//! Nothing waits for a compile: not the scan (other files are read and
//! compiled beside it, a bounded number at once), not start-up, not the
//! scheduler (the plugin's jobs are held until it is loaded, as for a
//! missing plugin; a loaded older version serves meanwhile). A compile
//! whose file changes again or goes is cancelled and its process killed.

mod background;
mod watch;

pub use watch::WatchOptions;

use super::compile::Compiler;
use super::{CompileCache, CompileSource, ContentHash, Lookup, MAX_PLUGIN_BYTES, Plugin};
use super::{PluginError, PluginRegistry, Sidecar};
use crate::runtime::Runtime;
use background::Compiled;
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
    compiler: Arc<Compiler>,
    /// Compiles under way, by name: the file's hash and how to stop it.
    compiling: HashMap<String, (ContentHash, CancellationToken)>,
    /// Cancels every compile when the folder stops being watched.
    stop: CancellationToken,
    done_tx: mpsc::UnboundedSender<Compiled>,
    done_rx: Option<mpsc::UnboundedReceiver<Compiled>>,
}

impl std::fmt::Debug for PluginFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginFolder")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl PluginFolder {
    /// A folder feeding `registry`, compiling with `compiler`; nothing is
    /// read until [`Self::scan`].
    pub fn new(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        registry: Arc<PluginRegistry>,
        cache: Option<CompileCache>,
        compiler: Arc<Compiler>,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            dir,
            runtime,
            registry,
            cache,
            seen: HashMap::new(),
            compiler,
            compiling: HashMap::new(),
            stop: CancellationToken::new(),
            done_tx,
            done_rx: Some(done_rx),
        }
    }

    /// How many files are being compiled in the background.
    pub fn compiling(&self) -> usize {
        self.compiling.len()
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
    /// settling (scan again after the debounce). Files that need compiling
    /// are only queued (must be called inside a tokio runtime); their
    /// results come through [`Self::watch`].
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
                    if self.abandon(&name) {
                        tracing::info!(plugin = %name, "plugin file removed while compiling; compile stopped");
                    }
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

    /// Reads one plugin file: refused or loaded at once when no compile is
    /// needed, else queued for a background compile.
    fn load_plugin(
        &mut self,
        name: &str,
        path: &Path,
        before: Stat,
        changes: &mut Vec<FolderChange>,
    ) -> Read {
        let current = self.registry.get(name);
        if before.len > MAX_PLUGIN_BYTES {
            self.abandon(name);
            let err = PluginError::TooLarge { size: before.len };
            self.settle(name, path, current.as_ref(), Err(err), changes);
            return Read::Done { content: None };
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                let err = PluginError::Io {
                    path: path.to_path_buf(),
                    error,
                };
                self.settle(name, path, current.as_ref(), Err(err), changes);
                return Read::Done { content: None };
            }
        };
        if stat(path) != Some(before) {
            return Read::Changed;
        }
        let hash = ContentHash::of(&bytes);
        if current.as_ref().is_some_and(|p| *p.hash() == hash) {
            // Touched, not changed; or put back to the version in service
            // while a newer one compiled, which is then not wanted.
            self.abandon(name);
            return Read::Done { content: None };
        }
        if self.compiling.get(name).is_some_and(|(h, _)| *h == hash) {
            return Read::Done { content: None };
        }
        // An older file of this name still compiling is superseded.
        self.abandon(name);
        let facts = match Plugin::inspect(&bytes) {
            Ok(facts) => facts,
            Err(err) => {
                self.settle(name, path, current.as_ref(), Err(err), changes);
                return Read::Done { content: None };
            }
        };
        let damaged = match &self.cache {
            Some(cache) => match cache.lookup(self.runtime.engine(), &hash) {
                Lookup::Hit(component) => {
                    let result = Plugin::from_component(
                        &self.runtime,
                        name.to_owned(),
                        hash,
                        facts,
                        &component,
                        CompileSource::Cache,
                    );
                    self.settle(name, path, current.as_ref(), result, changes);
                    return Read::Done { content: None };
                }
                Lookup::Miss { damaged } => {
                    let bounds = self.compiler.limits().key();
                    if let Some(reason) = cache.refusal(&hash, &bounds) {
                        let err = PluginError::RefusedBefore { reason };
                        self.settle(name, path, current.as_ref(), Err(err), changes);
                        return Read::Done { content: None };
                    }
                    damaged
                }
            },
            None => false,
        };
        self.spawn_compile(
            name,
            path,
            hash,
            background::ReadFile { bytes, facts },
            damaged,
            current.is_some(),
        );
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
        // Default capabilities are a grant like a job's own: bounded by the
        // operator's policy. (The sidecar's jobs are checked when the
        // scheduler adds them.)
        let parsed = Sidecar::parse(name, &text, &self.dir).and_then(|sidecar| {
            match sidecar
                .grants
                .as_deref()
                .map(|g| self.runtime.policy().check(g))
            {
                Some(Err(e)) => Err(crate::plugin::sidecar::SidecarError {
                    file: format!("{name}.toml"),
                    problem: format!("{e}"),
                }),
                _ => Ok(sidecar),
            }
        });
        match parsed {
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
}

fn stat(path: &Path) -> Option<Stat> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stat {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}
