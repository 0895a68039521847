//! `cargo xtask`: repository chores.
//!
//! - `cargo xtask plugins [DIR] [--polyglot]`: build the plugins and copy
//!   the examples into DIR (default `wasmcron-plugins/`); with
//!   `--polyglot`, `hello-py` and `hello-js` too (see below).
//! - `cargo xtask run [-- ARGS]`: build the plugins and the host, then run
//!   the scheduler on the examples (`examples/wasmcron.toml`), `hello-py`
//!   and `hello-js` among them.
//!
//! Both build `plugins/hello-py` and `plugins/hello-js` when componentize-py
//! and componentize-js are installed (`xtask::polyglot`), and print one line
//! saying how to install a missing one. `plugins` copies them only when
//! asked: a debug host (as `.ci/schemathesis` starts on that folder) takes
//! minutes of CPU to compile each, past its 60 s default compile limit.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The example plugins a newcomer's host loads; the rest are test plugins.
/// Their sidecars, where they have one, are in `examples/sidecars/`.
const EXAMPLES: &[&str] = &["hello", "counter", "cleanup", "http-ping", "alert"];

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::repo_root().join("target"))
}

fn run() -> Result<ExitCode, String> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("plugins") => {
            let rest: Vec<String> = args.collect();
            let polyglot = rest.iter().any(|a| a == "--polyglot");
            let dir = rest.iter().find(|a| *a != "--polyglot").map_or_else(
                || xtask::repo_root().join("wasmcron-plugins"),
                PathBuf::from,
            );
            install_examples(&dir, polyglot)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("run") => {
            let dir = xtask::repo_root().join("wasmcron-plugins");
            install_examples(&dir, true)?;
            let rest: Vec<String> = args.skip_while(|a| a == "--").collect();
            demo(&dir, &rest)
        }
        _ => {
            Err("usage: cargo xtask plugins [DIR] [--polyglot] | cargo xtask run [-- ARGS]".into())
        }
    }
}

/// Copies `from` to `to` and says so.
fn install(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
    eprintln!("xtask: installed {}", to.display());
    Ok(())
}

fn install_examples(dir: &Path, with_polyglot: bool) -> Result<(), String> {
    let built = xtask::build_plugins(&xtask::repo_root(), &target_dir().join("wasm-plugins"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for plugin in built
        .iter()
        .filter(|p| EXAMPLES.contains(&p.package.as_str()))
    {
        install(&plugin.path, &dir.join(format!("{}.wasm", plugin.package)))?;
        let sidecar = xtask::repo_root()
            .join("examples/sidecars")
            .join(format!("{}.toml", plugin.package));
        if sidecar.is_file() {
            install(&sidecar, &dir.join(format!("{}.toml", plugin.package)))?;
        }
    }
    // Python and JavaScript plugins, when their toolchains are installed;
    // without them, one line each says how to get them (not an error: the
    // Rust examples are the demo).
    let polyglot =
        xtask::polyglot::build(&xtask::repo_root(), &target_dir().join("polyglot-plugins"))?;
    for note in &polyglot.notes {
        eprintln!("xtask: note: {note}");
    }
    for plugin in &polyglot.built {
        if !with_polyglot {
            eprintln!(
                "xtask: built {} ({}); not installed without --polyglot",
                plugin.package,
                plugin.path.display()
            );
            continue;
        }
        install(&plugin.path, &dir.join(format!("{}.wasm", plugin.package)))?;
    }
    // The directory cleanup's sidecar grants.
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    Ok(())
}

/// Runs the host on the examples: `wasmcron run` with the example jobs in
/// `examples/wasmcron.toml`, the embedded SQLite store `wasmcron.db`, until
/// ctrl-c. Extra arguments go to `wasmcron run`.
fn demo(dir: &Path, extra: &[String]) -> Result<ExitCode, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = xtask::repo_root();
    // No `--quiet`: a newcomer's first build compiles wasmtime and sits for
    // minutes, and cargo's progress bar is what says it is not stuck.
    eprintln!(
        "xtask: building the host (release, `cargo run --release -p wasmcron`); \
         the first build compiles wasmtime and takes about 10 minutes, later ones seconds"
    );
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "run",
            "--release",
            "-p",
            "wasmcron",
            "--",
            "run",
            "--plugins",
        ])
        .arg(dir)
        .arg("--config")
        .arg(root.join("examples/wasmcron.toml"))
        .args(extra)
        .status()
        .map_err(|e| format!("running the host: {e}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
