//! Compiled components on disk, so a restart does not recompile.
//!
//! Loading a serialized component skips wasmtime's validation: the bytes
//! are trusted as native code. So the rules here are strict:
//! - entries are only ever read from our own directory, which we create
//!   private (0700) and refuse to use when others may write to it;
//! - an entry's name is derived from the plugin's content hash *and* the
//!   engine's compatibility hash (wasmtime version, target, every setting
//!   that changes code generation), so a different engine never looks at
//!   it;
//! - each entry carries a SHA-256 of its payload, checked before wasmtime
//!   sees a byte, so a torn write, a bit flip or a truncated file is
//!   discarded and recompiled, never deserialized;
//! - wasmtime's own header check (version and configuration) runs as well;
//!   an entry it rejects is discarded too.
//!
//! Writes go to a temporary file renamed into place, so a reader sees a
//! whole entry or none.

use super::ContentHash;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"wasmcron-cwasm01";
const DIGEST_LEN: usize = 32;

/// How a plugin's compiled code was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompileSource {
    /// Compiled now; there is no cache.
    Compiled,
    /// Compiled now and stored in the cache.
    CompiledAndCached,
    /// Read from the cache.
    Cache,
    /// A cache entry was found damaged or incompatible, discarded, and the
    /// plugin recompiled (and cached again).
    Recompiled,
}

impl CompileSource {
    /// How a plugin compiled now is described: `damaged` when a bad cache
    /// entry was discarded first, `stored` when the result went into the
    /// cache.
    pub fn after_compile(damaged: bool, stored: bool) -> Self {
        match (damaged, stored) {
            (true, _) => Self::Recompiled,
            (false, true) => Self::CompiledAndCached,
            (false, false) => Self::Compiled,
        }
    }

    /// The name used in logs and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compiled => "compiled",
            Self::CompiledAndCached => "compiled-and-cached",
            Self::Cache => "cache",
            Self::Recompiled => "recompiled",
        }
    }
}

/// What [`CompileCache::lookup`] found.
pub enum Lookup {
    /// A sound entry.
    Hit(Component),
    /// None usable; `damaged` when one was there and was discarded.
    Miss {
        /// A damaged or incompatible entry was deleted.
        damaged: bool,
    },
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hit(_) => f.write_str("Hit"),
            Self::Miss { damaged } => f.debug_struct("Miss").field("damaged", damaged).finish(),
        }
    }
}

/// A directory of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

/// Why a cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// It could not be created or inspected.
    #[error("compile cache {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Others may write to it, so its entries could be planted.
    #[error(
        "compile cache {path} is writable by other users (mode {mode:o}); \
         `chmod 700` it or choose another --cache-dir"
    )]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl CompileCache {
    /// Opens (creating, private) the cache directory for `engine`.
    ///
    /// # Errors
    /// When the directory cannot be created, or others may write to it.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, CacheError> {
        let io = |source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o022 != 0 {
                return Err(CacheError::Unsafe {
                    path: dir.to_path_buf(),
                    mode,
                });
            }
        }
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize()[..8]);
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, hash: &ContentHash) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hash.as_str(), self.engine_key))
    }

    /// The cached component for `hash`, if a sound entry exists. A damaged
    /// or incompatible entry is deleted (and logged) and reported as
    /// [`Lookup::Miss`] with `damaged` set.
    pub fn lookup(&self, engine: &Engine, hash: &ContentHash) -> Lookup {
        let path = self.entry_path(hash);
        match std::fs::read(&path) {
            Ok(entry) => match self.read_entry(engine, &entry) {
                Ok(component) => {
                    // Its modification time is its last use, for pruning.
                    touch(&path);
                    Lookup::Hit(component)
                }
                Err(why) => {
                    tracing::warn!(entry = %path.display(), "discarding compile cache entry: {why}");
                    let _ = std::fs::remove_file(&path);
                    Lookup::Miss { damaged: true }
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Lookup::Miss { damaged: false },
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %e, "cannot read compile cache entry");
                Lookup::Miss { damaged: false }
            }
        }
    }

    fn refusal_path(&self, hash: &ContentHash, bounds: &str) -> PathBuf {
        self.dir.join(format!(
            "{}-{}-{bounds}.refused",
            hash.as_str(),
            self.engine_key
        ))
    }

    /// Remembers that compiling `hash` under the compile bounds `bounds`
    /// (see `CompileLimits::key`) was refused for `reason`, so the next
    /// start refuses the same file at once instead of spending the whole
    /// bound on it again. Failure is logged, never an error.
    pub fn remember_refusal(&self, hash: &ContentHash, bounds: &str, reason: &str) {
        let path = self.refusal_path(hash, bounds);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::write(&tmp, reason).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(entry = %path.display(), error = %e, "cannot remember a compile refusal");
        }
    }

    /// Why compiling `hash` under `bounds` was refused before, if it was
    /// (see [`Self::remember_refusal`]). A remembered refusal is pruned
    /// like an entry once unused.
    pub fn refusal(&self, hash: &ContentHash, bounds: &str) -> Option<String> {
        let path = self.refusal_path(hash, bounds);
        let reason = std::fs::read_to_string(&path).ok()?;
        touch(&path);
        Some(reason)
    }

    /// Stores `payload` (from `Component::serialize`) as the entry for
    /// `hash`. Failure is logged and reported as `false`, never an error:
    /// the plugin works without its entry.
    pub fn store(&self, hash: &ContentHash, payload: &[u8]) -> bool {
        let path = self.entry_path(hash);
        match self.write_entry(&path, payload) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %e, "cannot write compile cache entry");
                false
            }
        }
    }

    /// The component for `bytes`: from the cache when a sound entry exists,
    /// else compiled with `compile` (in this process) and stored.
    ///
    /// # Errors
    /// Whatever `compile` returns; cache trouble is logged, never an error.
    pub fn load_or_compile<E>(
        &self,
        engine: &Engine,
        hash: &ContentHash,
        compile: impl FnOnce() -> Result<Component, E>,
    ) -> Result<(Component, CompileSource), E> {
        let damaged = match self.lookup(engine, hash) {
            Lookup::Hit(component) => return Ok((component, CompileSource::Cache)),
            Lookup::Miss { damaged } => damaged,
        };
        let component = compile()?;
        let stored = match component.serialize() {
            Ok(payload) => self.store(hash, &payload),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot serialize a compiled plugin for the cache");
                false
            }
        };
        Ok((component, CompileSource::after_compile(damaged, stored)))
    }

    /// Deletes entries not used for `unused_for` (by modification time,
    /// which a cache hit refreshes) unless they belong to a plugin in
    /// `keep`, and temporary files a crashed write left behind. Entries of
    /// other engine configurations (an older wasmtime) age out the same
    /// way. Returns how many files went.
    pub fn prune(&self, keep: &[&ContentHash], unused_for: std::time::Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let ours =
                name.ends_with(".cwasm") || name.ends_with(".refused") || name.contains(".tmp");
            if !ours || keep.iter().any(|h| name.starts_with(h.as_str())) {
                continue;
            }
            let idle = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if idle >= unused_for && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    fn read_entry(&self, engine: &Engine, entry: &[u8]) -> Result<Component, String> {
        let header = MAGIC.len() + DIGEST_LEN;
        if entry.len() < header || &entry[..MAGIC.len()] != MAGIC {
            return Err("not a wasmcron cache entry (bad magic or cut short)".into());
        }
        let (digest, payload) = entry[MAGIC.len()..].split_at(DIGEST_LEN);
        if Sha256::digest(payload).as_slice() != digest {
            return Err("checksum mismatch (damaged or partly written)".into());
        }
        deserialize(engine, payload).map_err(|e| format!("rejected by wasmtime: {e:#}"))
    }

    fn write_entry(&self, path: &Path, payload: &[u8]) -> std::io::Result<()> {
        let mut entry = Vec::with_capacity(MAGIC.len() + DIGEST_LEN + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&Sha256::digest(payload));
        entry.extend_from_slice(payload);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &entry)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// Deserializes a checked payload.
#[expect(
    unsafe_code,
    reason = "wasmtime's deserialize trusts its input as native code; the checks that make that sound are listed below"
)]
pub(super) fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the bytes come from `serialize` of a
    // compatible engine and have not been tampered with. It has two
    // callers:
    // - `read_entry`: the payload was read from our private cache
    //   directory (checked not writable by others at open), written there
    //   by `write_entry` from `Component::serialize`, its SHA-256 matches
    //   the one stored beside it, and the entry's name includes this
    //   engine's compatibility hash; or
    // - `Plugin::from_compiler_output`: it is the stdout of a child process we spawned
    //   from this very executable (`/proc/self/exe` on Linux) running
    //   `__compile`, which writes only `Component::serialize` output of an
    //   engine with this engine's code-generation settings (a unit test
    //   checks the compatibility hashes agree); it went through a pipe
    //   only the two processes hold and never touched the disk, and only
    //   a zero exit status makes it a payload.
    // Either way wasmtime re-checks version and configuration in its own
    // header.
    unsafe { Component::deserialize(engine, payload) }
}

fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().write(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Feeds `Hash` output into SHA-256, for a stable key (std's hasher is not
/// stable across Rust versions).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default cache directory: `$XDG_CACHE_HOME/wasmcron/compiled`, else
/// `$HOME/.cache/wasmcron/compiled`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasmcron").join("compiled"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn aged(dir: &Path, name: &str, days: u64) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, b"x").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
            .unwrap();
        path
    }

    #[test]
    fn prune_keeps_live_and_recent_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompileCache::open(&tmp.path().join("c"), &engine).unwrap();
        let dir = cache.dir().to_path_buf();
        let live = ContentHash::of(b"live");
        let kept_live = aged(&dir, &format!("{live}-aaaa.cwasm"), 90);
        let recent = aged(
            &dir,
            &format!("{}-aaaa.cwasm", ContentHash::of(b"recent")),
            1,
        );
        let stale = aged(&dir, &format!("{}-aaaa.cwasm", ContentHash::of(b"old")), 30);
        let torn = aged(&dir, "x-aaaa.tmp123", 30);
        let foreign = aged(&dir, "notes.txt", 300);
        assert_eq!(cache.prune(&[&live], Duration::from_secs(7 * 86_400)), 2);
        assert!(kept_live.exists() && recent.exists() && foreign.exists());
        assert!(!stale.exists() && !torn.exists());
    }
}
