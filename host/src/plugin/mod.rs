//! Plugin file → loaded component: validated, compiled once, pre-linked.
//!
//! Loading checks, in order, what can be wrong with a file and says so in
//! words a plugin author can act on: not wasm at all, cut short, a core
//! module instead of a component, not valid, importing something the host
//! does not provide, not implementing world `job`.
//!
//! In `wasmcron run`, compiling happens in a child process bounded in
//! memory and time (see [`compile`]), in the background: the folder never
//! waits for it. `plugin check`, `plugin run` and library users compile in
//! process with [`Plugin::load_file`].

mod cache;
pub mod compile;
pub mod declared;
mod folder;
mod registry;
mod schema_cost;
mod sidecar;

pub use cache::{
    CacheError, CompileCache, CompileSource, Lookup, default_dir as default_cache_dir,
};
pub use compile::{CompileLimits, Compiler};
pub use declared::{ArgsSchema, ArgsViolation, DeclaredError};
pub use folder::{FolderChange, PluginFolder, WatchOptions};
pub use registry::{Compiling, PluginRegistry, PluginStatus};
pub use sidecar::{Sidecar, SidecarError};

use crate::runtime::Runtime;
use crate::runtime::{Linked, Runnable};
pub use crate::runtime::{WitVersion, World};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::Component;

/// The WIT export a job plugin must provide (a 0.1.0 component's
/// `wasmcron:plugin/runner@0.1.0` is served too).
pub const RUNNER_EXPORT: &str = "wasmcron:plugin/runner@0.2.0";
/// The WIT export a listener plugin must provide (or its 0.1.0 version).
pub const HANDLER_EXPORT: &str = "wasmcron:plugin/handler@0.2.0";
/// Largest plugin file accepted.
pub const MAX_PLUGIN_BYTES: u64 = 64 << 20;

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    // Not `source`: thiserror would make it the error's source, and a
    // report of the chain (`{:#}`) would print the OS error twice.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is larger than the host accepts.
    #[error("plugin is {size} bytes; the limit is {MAX_PLUGIN_BYTES}")]
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// The bytes are not WebAssembly.
    #[error(
        "not a WebAssembly file (it does not start with the `\\0asm` magic bytes); \
         build the plugin with `cargo build --release --target wasm32-wasip2`"
    )]
    NotWasm,
    /// The file ends before the WebAssembly binary does.
    #[error("the WebAssembly file is truncated ({detail}); was it copied completely?")]
    Truncated {
        /// The parser's message.
        detail: String,
    },
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build with \
         `--target wasm32-wasip2` (which emits a component) or wrap it with \
         `wasm-tools component new`"
    )]
    CoreModule,
    /// The component is malformed or uses features the host does not enable.
    #[error("invalid WebAssembly component: {detail}")]
    Invalid {
        /// The validator's message.
        detail: String,
    },
    /// The component imports something the host does not provide.
    #[error(
        "the component imports `{import}`, which this host does not provide \
         (it provides wasmcron:plugin/log, wasmcron:plugin/kv and WASI 0.2): {detail}"
    )]
    UnsatisfiedImport {
        /// The import's name.
        import: String,
        /// The linker's message.
        detail: String,
    },
    /// Compiling it needed more memory than the compiler process may use.
    #[error(
        "compiling it needed more than the compile memory limit ({}, --compile-memory): \
         the component is very large or shaped to be expensive to compile; make it \
         smaller, or raise --compile-memory if you trust it",
        show_bytes(.limit)
    )]
    CompileMemory {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Compiling it took longer than allowed.
    #[error(
        "compiling it took longer than the compile time limit ({}, --compile-timeout): \
         the component is very large or shaped to be slow to compile; make it \
         smaller, or raise --compile-timeout if you trust it",
        show_duration(.limit)
    )]
    CompileTimeout {
        /// The CPU-time limit (the wall-clock limit is twice it).
        limit: std::time::Duration,
    },
    /// Compiling this very file under the same bounds was refused before
    /// (remembered in the compile cache); it is not compiled again until
    /// it changes or the bounds do.
    #[error(
        "{reason} (refused at an earlier start and remembered in the compile cache: this \
         file is not compiled again until it changes or --compile-memory/--compile-timeout do)"
    )]
    RefusedBefore {
        /// The earlier refusal's reason.
        reason: String,
    },
    /// The compiler process failed for a reason of its own.
    #[error("the plugin could not be compiled: {detail}")]
    CompilerFailed {
        /// What happened.
        detail: String,
    },
    /// The component does not implement world `job`.
    #[error(
        "the component does not implement world `job`: {detail}; a job plugin must \
         export `{RUNNER_EXPORT}` (with wasmcron-guest, put #[job] on a function), \
         a listener plugin `{HANDLER_EXPORT}` (#[listener]); their 0.1.0 versions are \
         served too"
    )]
    WrongWorld {
        /// What was missing or mismatched.
        detail: String,
    },
    /// What the component declares about itself (its args schema) is
    /// unusable.
    #[error(transparent)]
    Declared(#[from] DeclaredError),
    /// The declared args schema would make checking one job's args too
    /// costly (see `plugin::schema_cost`): its `$ref`s and `anyOf` /
    /// `oneOf` / `allOf` branches multiply.
    #[error(
        "the `wasmcron:args-schema` section's schema would visit {} schema nodes to check one \
         job's args (its `$ref`s and `anyOf`/`oneOf`/`allOf` branches multiply); the limit is \
         {limit}: have branches refer to shared definitions less often, or drop the schema",
        show_count(.cost)
    )]
    ArgsSchemaTooComplex {
        /// The count (saturating at `u64::MAX`).
        cost: u64,
        /// The limit: 100,000 schema nodes.
        limit: u64,
    },
}

/// A plugin's content hash: SHA-256 of the file, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(String);

impl ContentHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The full hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What loading learns from a plugin file's bytes before compiling: its
/// size and what it declares.
#[derive(Debug, Clone)]
pub(crate) struct FileFacts {
    size: u64,
    args_schema: Option<Arc<ArgsSchema>>,
}

/// A loaded plugin: compiled, type-checked against its world, and linked
/// (`InstancePre`), so a run only instantiates.
pub struct Plugin {
    name: String,
    hash: ContentHash,
    size: u64,
    args_schema: Option<Arc<ArgsSchema>>,
    linked: Linked,
    imports: Vec<String>,
    exports: Vec<String>,
    compiled: CompileSource,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// A plugin file's name (its file stem) and bytes, refusing a file past
/// [`MAX_PLUGIN_BYTES`] before reading it.
///
/// # Errors
/// [`PluginError::Io`], [`PluginError::TooLarge`].
pub(crate) fn read_file(path: &Path) -> Result<(String, Vec<u8>), PluginError> {
    let io = |error| PluginError::Io {
        path: path.to_path_buf(),
        error,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_PLUGIN_BYTES {
        return Err(PluginError::TooLarge { size });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_owned();
    Ok((name, bytes))
}

impl Plugin {
    /// Loads the plugin at `path`; its name is the file stem.
    ///
    /// # Errors
    /// See [`PluginError`]: every variant names the problem and the fix.
    pub fn load_file(runtime: &Runtime, path: &Path) -> Result<Self, PluginError> {
        Self::load_file_cached(runtime, path, None)
    }

    /// Loads the plugin at `path`, through `cache` when given.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn load_file_cached(
        runtime: &Runtime,
        path: &Path,
        cache: Option<&CompileCache>,
    ) -> Result<Self, PluginError> {
        let (name, bytes) = read_file(path)?;
        Self::load_bytes_cached(runtime, name, &bytes, cache)
    }

    /// Loads a plugin from its bytes.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn load_bytes(runtime: &Runtime, name: String, bytes: &[u8]) -> Result<Self, PluginError> {
        Self::load_bytes_cached(runtime, name, bytes, None)
    }

    /// Loads a plugin from its bytes, through `cache` when given. The
    /// header and size checks run first either way, so a file that is not
    /// a component never reaches the cache.
    ///
    /// # Errors
    /// See [`PluginError`].
    pub fn load_bytes_cached(
        runtime: &Runtime,
        name: String,
        bytes: &[u8],
        cache: Option<&CompileCache>,
    ) -> Result<Self, PluginError> {
        let facts = Self::inspect(bytes)?;
        let hash = ContentHash::of(bytes);
        let compile = || {
            Component::new(runtime.engine(), bytes)
                .map_err(|err| classify_compile_error(format!("{err:#}")))
        };
        let (component, compiled) = match cache {
            Some(cache) => cache.load_or_compile(runtime.engine(), &hash, compile)?,
            None => (compile()?, CompileSource::Compiled),
        };
        Self::from_component(runtime, name, hash, facts, &component, compiled)
    }

    /// The checks that need no compiler: size, then the preamble and the
    /// section framing (not wasm, cut short, a core module). Run before a
    /// file goes anywhere near the cache or a compiler.
    ///
    /// # Errors
    /// [`PluginError::TooLarge`], [`PluginError::NotWasm`],
    /// [`PluginError::Truncated`] or [`PluginError::CoreModule`].
    pub fn check(bytes: &[u8]) -> Result<(), PluginError> {
        let size = bytes.len() as u64;
        if size > MAX_PLUGIN_BYTES {
            return Err(PluginError::TooLarge { size });
        }
        check_header(bytes)
    }

    /// [`Self::check`], then what the file declares (its args schema, see
    /// [`declared`]): everything loading learns from the bytes without a
    /// compiler.
    ///
    /// # Errors
    /// As [`Self::check`], [`PluginError::Declared`] or
    /// [`PluginError::ArgsSchemaTooComplex`].
    pub(crate) fn inspect(bytes: &[u8]) -> Result<FileFacts, PluginError> {
        Self::check(bytes)?;
        let args_schema = declared::read_args_schema(bytes)?;
        if let Some(schema) = &args_schema {
            let cost = schema_cost::expansion(schema.document());
            if cost > schema_cost::MAX_EXPANSION {
                return Err(PluginError::ArgsSchemaTooComplex {
                    cost,
                    limit: schema_cost::MAX_EXPANSION,
                });
            }
        }
        Ok(FileFacts {
            size: bytes.len() as u64,
            args_schema,
        })
    }

    /// Loads the output of the compiler process (see [`compile`]).
    ///
    /// # Errors
    /// As [`Self::from_component`], or [`PluginError::CompilerFailed`] when
    /// wasmtime rejects the output (a different engine built it).
    pub(crate) fn from_compiler_output(
        runtime: &Runtime,
        name: String,
        hash: ContentHash,
        facts: FileFacts,
        payload: &[u8],
        compiled: CompileSource,
    ) -> Result<Self, PluginError> {
        let component = cache::deserialize(runtime.engine(), payload).map_err(|e| {
            PluginError::CompilerFailed {
                detail: format!("the compiler's output was rejected: {e:#}"),
            }
        })?;
        Self::from_component(runtime, name, hash, facts, &component, compiled)
    }

    /// Links a compiled component and checks its world.
    pub(crate) fn from_component(
        runtime: &Runtime,
        name: String,
        hash: ContentHash,
        facts: FileFacts,
        component: &Component,
        compiled: CompileSource,
    ) -> Result<Self, PluginError> {
        let ty = component.component_type();
        let engine = runtime.engine();
        let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
        let instance_pre = runtime.linker().instantiate_pre(component).map_err(|err| {
            let detail = format!("{err:#}");
            let import = between_backticks(&detail).unwrap_or("?").to_owned();
            PluginError::UnsatisfiedImport { import, detail }
        })?;
        let pre = Linked::new(&instance_pre).map_err(|err| PluginError::WrongWorld {
            detail: format!("{err:#}"),
        })?;
        Ok(Self {
            name,
            hash,
            size: facts.size,
            args_schema: facts.args_schema,
            linked: pre,
            imports,
            exports,
            compiled,
        })
    }

    /// The JSON Schema its job's `args` must fit, when it declares one
    /// (see [`declared`]); `None` accepts any args.
    pub fn args_schema(&self) -> Option<&ArgsSchema> {
        self.args_schema.as_deref()
    }

    /// Checks a job's `args` against its declared schema; any args pass
    /// when it declares none.
    ///
    /// # Errors
    /// `(field, message)`: the first violation's field path (`args.name`)
    /// and a message naming the plugin and every violation found.
    pub fn check_args(&self, args: &serde_json::Value) -> Result<(), (String, String)> {
        let Some(schema) = self.args_schema() else {
            return Ok(());
        };
        schema.check(args).map_err(|violations| {
            let field = violations
                .first()
                .map_or_else(|| "args".to_owned(), |v| v.field.clone());
            let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
            let message = format!(
                "{}; the args do not fit the schema plugin '{}' declares (GET /plugins/{} \
                 shows it)",
                list.join("; "),
                self.name,
                self.name
            );
            (field, message)
        })
    }

    /// Whether its code was compiled now or read from the cache.
    pub fn compiled(&self) -> CompileSource {
        self.compiled
    }

    /// The plugin's name (the file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The content hash of the file it was loaded from.
    pub fn hash(&self) -> &ContentHash {
        &self.hash
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The component's imports, by name.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The component's exports, by name.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// The world it implements.
    pub fn world(&self) -> World {
        self.linked.world()
    }

    /// The version of the `wasmcron:plugin` package it targets.
    pub fn version(&self) -> WitVersion {
        self.linked.version()
    }

    /// Its world's full name with the version, e.g.
    /// `wasmcron:plugin/job@0.2.0` (what `plugin check` and the API show).
    pub fn world_name(&self) -> &'static str {
        self.linked.world_name()
    }
}

impl Runnable for Plugin {
    fn name(&self) -> &str {
        &self.name
    }

    fn linked(&self) -> &Linked {
        &self.linked
    }
}

fn show_bytes(n: &u64) -> String {
    compile::format_bytes(*n)
}

fn show_count(n: &u64) -> String {
    if *n == u64::MAX {
        "more than 18 quintillion".to_owned()
    } else {
        n.to_string()
    }
}

fn show_duration(d: &std::time::Duration) -> String {
    crate::duration::format(*d)
}

/// Names a compiler error: wasmparser's "unexpected end" means the file was
/// cut short; anything else is invalid.
fn classify_compile_error(detail: String) -> PluginError {
    if detail.contains("unexpected end") {
        PluginError::Truncated { detail }
    } else {
        PluginError::Invalid { detail }
    }
}

/// Tells "not wasm", "cut short" and "core module" apart from the 8-byte
/// preamble before the compiler sees the file: its errors would say all
/// three in parser terms.
fn check_header(bytes: &[u8]) -> Result<(), PluginError> {
    let magic_len = bytes.len().min(4);
    if bytes[..magic_len] != WASM_MAGIC[..magic_len] {
        return Err(PluginError::NotWasm);
    }
    if bytes.len() < 8 {
        return Err(PluginError::Truncated {
            detail: format!("{} bytes, shorter than the 8-byte preamble", bytes.len()),
        });
    }
    // Bytes 4..8 are version (u16) and layer (u16): layer 0 is a core
    // module, layer 1 a component.
    if bytes[6] == 0 && bytes[7] == 0 {
        return Err(PluginError::CoreModule);
    }
    check_sections(bytes)
}

/// Walks the top-level sections (an id byte and a LEB128 size each): a
/// section that runs past the end of the file means the file was cut
/// short, whatever the parser would call it.
fn check_sections(bytes: &[u8]) -> Result<(), PluginError> {
    let mut pos = 8;
    while pos < bytes.len() {
        let start = pos;
        pos += 1; // section id
        let mut size: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = bytes.get(pos) else {
                return Err(PluginError::Truncated {
                    detail: format!(
                        "the file ends inside the header of the section at offset {start}"
                    ),
                });
            };
            pos += 1;
            size |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                // Not a valid u32 LEB128: let the parser report it.
                return Ok(());
            }
        }
        let end = pos as u64 + size;
        if end > bytes.len() as u64 {
            return Err(PluginError::Truncated {
                detail: format!(
                    "the section at offset {start} needs {end} bytes but the file has {}",
                    bytes.len()
                ),
            });
        }
        pos = usize::try_from(end).unwrap_or(usize::MAX);
    }
    Ok(())
}

fn between_backticks(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks_tell_the_cases_apart() {
        assert!(matches!(
            check_header(b"hello world"),
            Err(PluginError::NotWasm)
        ));
        assert!(matches!(
            check_header(b""),
            Ok(()) | Err(PluginError::Truncated { .. })
        ));
        assert!(matches!(
            check_header(b"\0as"),
            Err(PluginError::Truncated { .. })
        ));
        assert!(matches!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(PluginError::CoreModule)
        ));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            ContentHash::of(b"").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(ContentHash::of(b"").short(), "e3b0c44298fc");
    }
}
