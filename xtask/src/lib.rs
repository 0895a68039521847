//! Builds the guest plugins in `plugins/` for `wasm32-wasip2`, and those
//! written in Python and JavaScript when their toolchains are installed
//! ([`polyglot`]).
//!
//! Shared by the `xtask` binary (the README's run command) and the build
//! script of the integration tests, so that both commands a newcomer runs
//! build the guests themselves, with nothing but rustup installed.

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod polyglot;

/// The Rust target guest plugins are built for. A `cdylib` built for it is
/// already a component: no adapter and no cargo-component needed.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// One built plugin.
#[derive(Debug, Clone)]
pub struct BuiltPlugin {
    /// The plugin's name: its crate name with `-` turned into `_`, as cargo
    /// names the `.wasm` file.
    pub name: String,
    /// Its package (and folder) name under `plugins/`, e.g. `http-ping`:
    /// the plugin name it is installed under.
    pub package: String,
    /// Absolute path of the built component.
    pub path: PathBuf,
}

/// The repository's root: the parent of the running package's directory.
///
/// Read from `CARGO_MANIFEST_DIR` at run time (cargo sets it for `cargo run`
/// and for build scripts), falling back to where this crate was compiled.
/// The compile-time path alone is not enough: cargo may reuse this crate
/// compiled in another checkout that shares the target directory.
pub fn repo_root() -> PathBuf {
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|p| p.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    here.parent()
        .map_or_else(|| here.clone(), Path::to_path_buf)
}

/// The plugin crates: every directory under `plugins/` with a Cargo.toml.
///
/// # Errors
/// When `plugins/` cannot be read.
pub fn plugin_crates(root: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = root.join("plugins");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut crates: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    Ok(crates)
}

/// The files whose change means the plugins must be rebuilt (for a build
/// script's `rerun-if-changed`). Directories are listed by their sources only,
/// so a stray `plugins/target` does not trigger endless rebuilds.
///
/// # Errors
/// When `plugins/` cannot be read.
pub fn plugin_inputs(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut inputs = vec![
        root.join("wit"),
        root.join("guest-sdk/src"),
        root.join("guest-sdk/Cargo.toml"),
        root.join("guest-sdk/macros/src"),
        root.join("guest-sdk/macros/Cargo.toml"),
        root.join("plugins/Cargo.toml"),
        root.join("plugins/.cargo/config.toml"),
    ];
    for krate in plugin_crates(root)? {
        inputs.push(krate.join("Cargo.toml"));
        inputs.push(krate.join("src"));
    }
    inputs.extend(polyglot::inputs(root));
    Ok(inputs)
}

/// Makes sure the wasm target's standard library is installed, adding it
/// with rustup when it is not (a newcomer's toolchain has only the host's).
///
/// # Errors
/// When the target is missing and rustup cannot add it.
pub fn ensure_wasm_target() -> Result<(), String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running {rustc} --print sysroot: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .is_dir()
    {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| {
            format!(
                "the {WASM_TARGET} target is not installed and rustup could not be run ({e}); \
                 install it with `rustup target add {WASM_TARGET}`"
            )
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`rustup target add {WASM_TARGET}` failed ({status}); install the target and retry"
        ))
    }
}

/// Builds every plugin in release mode into `target_dir` and returns them.
///
/// `target_dir` must not be the target directory of the cargo that runs a
/// build script calling this: cargo locks its target directory, and a nested
/// cargo sharing it would wait forever.
///
/// # Errors
/// When the wasm target cannot be installed or a plugin fails to build.
pub fn build_plugins(root: &Path, target_dir: &Path) -> Result<Vec<BuiltPlugin>, String> {
    ensure_wasm_target()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root.join("plugins"))
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--target-dir",
        ])
        .arg(target_dir);
    // The outer cargo's settings are for the host build, not for guests:
    // host RUSTFLAGS may not be valid for wasm, and clippy's wrapper would
    // lint the plugins on every test build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    // Not quiet either: cargo's progress shows while the guests compile.
    eprintln!(
        "xtask: building the plugins in {} for {WASM_TARGET} (the first build takes a minute or two)",
        root.join("plugins").display()
    );
    let status = cmd
        .status()
        .map_err(|e| format!("running {cargo} build for the plugins: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the plugins in plugins/ failed ({status})"
        ));
    }
    let out = target_dir.join(WASM_TARGET).join("release");
    let mut built = Vec::new();
    for krate in plugin_crates(root)? {
        let Some(name) = krate.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let package = name.to_owned();
        let name = name.replace('-', "_");
        let path = out.join(format!("{name}.wasm"));
        if !path.is_file() {
            return Err(format!(
                "plugin {name} built but {} is missing",
                path.display()
            ));
        }
        built.push(BuiltPlugin {
            name,
            package,
            path,
        });
    }
    Ok(built)
}
