//! Builds the plugins written in Python and JavaScript (`plugins/hello-py`,
//! `plugins/hello-js`) with componentize-py and componentize-js, when those
//! toolchains are installed.
//!
//! They are optional on purpose: a newcomer with only rustup must still be
//! able to run `cargo xtask run` and `cargo test --workspace`. A missing
//! toolchain is therefore not an error but a [`Polyglot::notes`] line that
//! says how to install it; the tests that need these plugins print
//! `SKIPPED` then, unless `WASMCRON_REQUIRE_POLYGLOT=1` (CI sets it through
//! `.ci/polyglot`).
//!
//! Each toolchain is looked for, in order: the path in its environment
//! variable ([`PY_ENV`], [`JS_ENV`]; `.ci/polyglot` exports them), a
//! project-local install (`.venv/` and `node_modules/` at the repository's
//! root), where `.ci/polyglot` installs it (`~/.cache/wasmcron-polyglot`),
//! then the `PATH`.
//!
//! A component is rebuilt only when its inputs (sources, guest helper, WIT,
//! the toolchain's path and version) change: componentize-py takes about
//! 15 s and componentize-js about 25 s, and a build script may run often.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BuiltPlugin;

/// The componentize-py release the plugins are built and tested with.
pub const PY_VERSION: &str = "0.25.1";
/// The @bytecodealliance/componentize-js release the plugins are built and
/// tested with.
pub const JS_VERSION: &str = "0.23.0";
/// The componentize-py executable to use, overriding the search.
pub const PY_ENV: &str = "WASMCRON_COMPONENTIZE_PY";
/// The componentize-js CLI to use, overriding the search.
pub const JS_ENV: &str = "WASMCRON_COMPONENTIZE_JS";
/// Set to `1` to make missing toolchains (and skipped tests) failures.
pub const REQUIRE_ENV: &str = "WASMCRON_REQUIRE_POLYGLOT";
/// The WIT package the guests target, under the repository's root.
const WIT_DIR: &str = "wit/v0.2";

/// A plugin written in another language than Rust.
struct Source {
    /// Its folder under `plugins/`, and the name it is installed under.
    package: &'static str,
    lang: Lang,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    JavaScript,
}

/// Every non-Rust plugin.
const SOURCES: &[Source] = &[
    Source {
        package: "hello-py",
        lang: Lang::Python,
    },
    Source {
        package: "hello-js",
        lang: Lang::JavaScript,
    },
];

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Self::Python => "componentize-py",
            Self::JavaScript => "componentize-js",
        }
    }

    fn pinned(self) -> &'static str {
        match self {
            Self::Python => PY_VERSION,
            Self::JavaScript => JS_VERSION,
        }
    }

    fn env(self) -> &'static str {
        match self {
            Self::Python => PY_ENV,
            Self::JavaScript => JS_ENV,
        }
    }

    /// Where a project-local install keeps the executable, relative to the
    /// repository's root.
    fn local(self) -> &'static str {
        match self {
            Self::Python => ".venv/bin/componentize-py",
            Self::JavaScript => "node_modules/.bin/componentize-js",
        }
    }

    /// Where `.ci/polyglot` installs it, relative to its cache folder.
    fn cached(self) -> &'static str {
        match self {
            Self::Python => "venv/bin/componentize-py",
            Self::JavaScript => "js/node_modules/.bin/componentize-js",
        }
    }

    /// The file holding the job: what a project passes to the toolchain.
    fn entry(self) -> &'static str {
        match self {
            Self::Python => "app.py",
            Self::JavaScript => "app.js",
        }
    }

    /// The guest helper module, under the repository's root.
    fn helper(self) -> &'static str {
        match self {
            Self::Python => "guest-sdk/python/wasmcron.py",
            Self::JavaScript => "guest-sdk/js/wasmcron.js",
        }
    }

    fn install_hint(self) -> String {
        match self {
            Self::Python => format!(
                "install it with `python3 -m venv .venv && .venv/bin/pip install componentize-py=={PY_VERSION}` \
                 (or run .ci/polyglot)"
            ),
            Self::JavaScript => format!(
                "install it with `npm install @bytecodealliance/componentize-js@{JS_VERSION}` at the \
                 repository's root (needs Node.js 20 or later; or run .ci/polyglot)"
            ),
        }
    }
}

/// A toolchain found on this machine.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The executable.
    pub path: PathBuf,
    /// What its `--version` printed (e.g. `0.25.1`).
    pub version: String,
}

/// What [`build`] made, and what it could not.
#[derive(Debug, Default)]
pub struct Polyglot {
    /// The plugins built.
    pub built: Vec<BuiltPlugin>,
    /// One line per toolchain that is missing (a plugin not built) or not
    /// the pinned version: fit to print as is.
    pub notes: Vec<String>,
    /// The toolchain files whose change means a rebuild (for a build
    /// script's `rerun-if-changed`).
    pub tools: Vec<PathBuf>,
}

/// Whether `WASMCRON_REQUIRE_POLYGLOT=1` is set.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The folder `.ci/polyglot` installs the toolchains into.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("WASMCRON_POLYGLOT_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wasmcron-polyglot"))
        })
}

/// The inputs of the non-Rust plugins (for a build script's
/// `rerun-if-changed`).
pub fn inputs(root: &Path) -> Vec<PathBuf> {
    let mut inputs = vec![root.join("guest-sdk/python"), root.join("guest-sdk/js")];
    for src in SOURCES {
        inputs.push(root.join("plugins").join(src.package));
    }
    inputs
}

/// Finds `lang`'s toolchain (see the module's documentation for where).
///
/// # Errors
/// A message saying where it was looked for and how to install it.
fn find(root: &Path, lang: Lang) -> Result<Toolchain, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os(lang.env()) {
        let path = PathBuf::from(path);
        // An explicit path that does not work is the user's mistake to
        // hear about, not a reason to fall back silently.
        return version(lang, &path).map_err(|e| {
            format!(
                "{}={} does not run: {e}; unset it or {}",
                lang.env(),
                path.display(),
                lang.install_hint()
            )
        });
    }
    candidates.push(root.join(lang.local()));
    if let Some(dir) = cache_dir() {
        candidates.push(dir.join(lang.cached()));
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        candidates.push(dir.join(lang.name()));
    }
    for path in candidates.iter().filter(|p| p.is_file()) {
        if let Ok(tool) = version(lang, path) {
            return Ok(tool);
        }
    }
    let cached = cache_dir().map_or_else(
        || "~/.cache/wasmcron-polyglot".to_owned(),
        |d| d.display().to_string(),
    );
    Err(format!(
        "{} not found (looked at ${}, {}, {cached} and the PATH); {}",
        lang.name(),
        lang.env(),
        lang.local(),
        lang.install_hint()
    ))
}

/// Runs `path --version`: `componentize-py 0.25.1` or `0.23.0`.
fn version(lang: Lang, path: &Path) -> Result<Toolchain, String> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if !out.status.success() {
        let hint = if lang == Lang::JavaScript {
            " (is Node.js installed?)"
        } else {
            ""
        };
        return Err(format!(
            "`{} --version` failed ({}){hint}: {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    Ok(Toolchain {
        path: path.to_path_buf(),
        version,
    })
}

/// A key for "these inputs, built by this toolchain": a hash of the files'
/// contents and the toolchain's path and version.
fn stamp(files: &[PathBuf], tool: &Toolchain) -> Result<String, String> {
    let mut h = DefaultHasher::new();
    tool.path.hash(&mut h);
    tool.version.hash(&mut h);
    for file in files {
        file.hash(&mut h);
        std::fs::read(file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?
            .hash(&mut h);
    }
    Ok(format!("{:016x}", h.finish()))
}

/// The files of a folder, sorted (one level: the plugins are flat).
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Builds every non-Rust plugin whose toolchain is installed into `out`.
///
/// # Errors
/// When the pinned version of a toolchain is there but the build fails (a
/// broken plugin is an error; a missing toolchain, or another version that
/// fails, only a note), or on I/O errors.
pub fn build(root: &Path, out: &Path) -> Result<Polyglot, String> {
    // The toolchains run in a folder of their own: relative paths would
    // point elsewhere there.
    let out = &std::path::absolute(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let root = &std::path::absolute(root).map_err(|e| format!("{}: {e}", root.display()))?;
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let mut result = Polyglot::default();
    for lang in [Lang::Python, Lang::JavaScript] {
        let tool = match find(root, lang) {
            Ok(tool) => tool,
            Err(note) => {
                result.notes.push(note);
                continue;
            }
        };
        if tool.version != lang.pinned() {
            result.notes.push(format!(
                "{} is {} ({}); the plugins are tested with {}: if the build fails, {}",
                lang.name(),
                tool.version,
                tool.path.display(),
                lang.pinned(),
                lang.install_hint()
            ));
        }
        result.tools.push(tool.path.clone());
        for src in SOURCES.iter().filter(|s| s.lang == lang) {
            match build_one(root, out, src, &tool) {
                Ok(plugin) => result.built.push(plugin),
                // The pinned version must build them: a failure is a broken
                // plugin or helper. Another version is the machine's, not
                // ours to promise: skip the plugin, saying why.
                Err(e) if tool.version != lang.pinned() && !required() => result.notes.push(e),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(result)
}

fn build_one(
    root: &Path,
    out: &Path,
    src: &Source,
    tool: &Toolchain,
) -> Result<BuiltPlugin, String> {
    let dir = root.join("plugins").join(src.package);
    let wit = root.join(WIT_DIR);
    let helper = root.join(src.lang.helper());
    let mut inputs = files_in(&dir)?;
    inputs.extend(files_in(&wit)?);
    inputs.push(helper.clone());
    let name = src.package.replace('-', "_");
    let wasm = out.join(format!("{name}.wasm"));
    let stamp_file = out.join(format!("{name}.stamp"));
    let key = stamp(&inputs, tool)?;
    let plugin = BuiltPlugin {
        name,
        package: src.package.to_owned(),
        path: wasm.clone(),
    };
    if wasm.is_file() && std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == key) {
        return Ok(plugin);
    }
    // A stale stamp must not survive a failed build.
    let _ = std::fs::remove_file(&stamp_file);
    eprintln!(
        "xtask: building plugins/{} with {} {} (takes 15-30 s)",
        src.package,
        src.lang.name(),
        tool.version
    );
    // Both toolchains build from a staging folder holding the plugin's files
    // and the helper side by side, as in a project that copied the helper
    // beside its app: `import wasmcron` and `./wasmcron.js` resolve the
    // same way, and componentize-py's `__pycache__` lands there, not in the
    // sources (where it would make cargo rerun the tests' build script).
    let stage = out.join(format!("{}-src", src.package));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(|e| format!("creating {}: {e}", stage.display()))?;
    for file in files_in(&dir)?.iter().chain([&helper]) {
        let dest = stage.join(file.file_name().unwrap_or_default());
        std::fs::copy(file, &dest)
            .map_err(|e| format!("copying {} to {}: {e}", file.display(), dest.display()))?;
    }
    let mut cmd = Command::new(&tool.path);
    cmd.current_dir(&stage);
    match src.lang {
        Lang::Python => {
            cmd.arg("-d")
                .arg(&wit)
                .args(["-w", "job", "componentize", "app", "-p", ".", "-o"])
                .arg(&wasm)
                // An active virtualenv's site-packages would be bundled into
                // the component: keep the build the same for everyone.
                .env_remove("VIRTUAL_ENV");
        }
        Lang::JavaScript => {
            cmd.arg(src.lang.entry())
                .arg("--wit")
                .arg(&wit)
                .args(["--world-name", "job", "-o"])
                .arg(&wasm);
        }
    }
    let output = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", tool.path.display()))?;
    if !output.status.success() || !wasm.is_file() {
        return Err(format!(
            "building plugins/{} with {} {} failed ({}):\n{}{}\n(tested with {} {}; {})",
            src.package,
            src.lang.name(),
            tool.version,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            src.lang.name(),
            src.lang.pinned(),
            src.lang.install_hint()
        ));
    }
    std::fs::write(&stamp_file, key)
        .map_err(|e| format!("writing {}: {e}", stamp_file.display()))?;
    Ok(plugin)
}
