//! `wasmcron new` (a ready plugin project for one job or listener) and
//! `wasmcron plugin build` (build a project and check the component), the
//! developer's loop Spin's `spin new` / `spin build` made familiar.
//!
//! The templates, the guest SDK and the WIT are embedded in the binary at
//! build time, so a project made by any `wasmcron` binary targets exactly
//! the contract that binary serves, and builds outside this repository
//! without network access to anything but crates.io.
//!
//! Rust projects are written and built here; Python and JavaScript ones
//! (componentize-py, componentize-js) in `polyglot.rs`, with each
//! language's own parts in `python.rs` and `js.rs`.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

mod js;
mod polyglot;
mod python;
mod toolchain;

pub use polyglot::ARGS_SCHEMA_FILE;
pub use toolchain::ToolchainError;

/// The languages `wasmcron new` writes projects in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, on the guest SDK (`wasmcron-guest`), built for wasm32-wasip2.
    Rust,
    /// Python, with wasmcron's helper module, built by componentize-py.
    Python,
    /// JavaScript, with wasmcron's helper module, built by componentize-js.
    #[value(alias = "javascript")]
    Js,
}

/// The WIT version projects target: the newest this host serves.
const WIT_DIR: &str = "wit/v0.2";
const WIT: &str = include_str!("../../../wit/v0.2/wasmcron.wit");

/// The guest SDK's sources, vendored into each Rust project.
const SDK_FILES: [(&str, &str); 10] = [
    ("src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
    (
        "src/args.rs",
        include_str!("../../../guest-sdk/src/args.rs"),
    ),
    (
        "src/context.rs",
        include_str!("../../../guest-sdk/src/context.rs"),
    ),
    (
        "src/error.rs",
        include_str!("../../../guest-sdk/src/error.rs"),
    ),
    (
        "src/event.rs",
        include_str!("../../../guest-sdk/src/event.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../guest-sdk/src/http.rs"),
    ),
    ("src/kv.rs", include_str!("../../../guest-sdk/src/kv.rs")),
    ("src/log.rs", include_str!("../../../guest-sdk/src/log.rs")),
    (
        "macros/src/lib.rs",
        include_str!("../../../guest-sdk/macros/src/lib.rs"),
    ),
    (
        "macros/src/args.rs",
        include_str!("../../../guest-sdk/macros/src/args.rs"),
    ),
];

/// What `wasmcron new` was asked for.
#[derive(Debug)]
pub struct NewProject {
    /// The plugin's name: 1-64 lowercase letters, digits, `-` and `_`,
    /// starting with a letter (it names the crate and the `.wasm`).
    pub name: String,
    /// Its language.
    pub lang: Lang,
    /// Where to write it; `./NAME` when `None`. Must not exist, or be an
    /// empty folder.
    pub dir: Option<PathBuf>,
    /// An error listener (world `listener`) instead of a job.
    pub listener: bool,
}

/// `wasmcron new`: writes the project and says what to do next.
///
/// # Errors
/// A bad name, a folder that exists and is not empty, or a write failing.
pub fn new_project(req: &NewProject) -> anyhow::Result<ExitCode> {
    check_name(&req.name)?;
    let dir = req.dir.clone().unwrap_or_else(|| PathBuf::from(&req.name));
    if dir.exists() {
        let empty = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "{} exists and is not empty; give another --dir, or remove it first",
                dir.display()
            );
        }
    }
    match req.lang {
        Lang::Rust => write_rust(&dir, &req.name, req.listener)?,
        Lang::Python => {
            return polyglot::new_project(&dir, &req.name, req.listener, polyglot::Guest::Python);
        }
        Lang::Js => {
            return polyglot::new_project(&dir, &req.name, req.listener, polyglot::Guest::Js);
        }
    }
    println!(
        "wrote {} ({} plugin in Rust)",
        dir.display(),
        kind(req.listener)
    );
    println!("next:");
    println!("  wasmcron plugin build {}", dir.display());
    let built = dir.join("target/wasm32-wasip2/release");
    println!(
        "  {}",
        try_line(&req.name, req.listener, &format!("{}/", built.display()))
    );
    Ok(ExitCode::SUCCESS)
}

fn kind(listener: bool) -> &'static str {
    if listener { "listener" } else { "job" }
}

/// The command that tries the built component at `{at}NAME.wasm` (cargo
/// names it after the crate, `-` turned into `_`).
fn try_line(name: &str, listener: bool, at: &str) -> String {
    let wasm = format!("{at}{}.wasm", name.replace('-', "_"));
    if listener {
        format!("wasmcron plugin check {wasm}")
    } else {
        format!("wasmcron plugin run {wasm} --args '{{\"name\": \"Ada\"}}'")
    }
}

/// A plugin name: what cargo accepts as a package name and the host as a
/// plugin name.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "plugin name {name:?}: use 1-64 lowercase letters, digits, '-' and '_', starting \
             with a letter (e.g. nightly-report)"
        );
    }
    Ok(())
}

/// The README's line on putting the plugin to use: a `jobs add` command
/// for a job, the `listeners` entry for a listener (every language).
fn schedule_line(name: &str, listener: bool) -> String {
    if listener {
        format!("name it in a job's listeners: `listeners = [{{ plugin = \"{name}\" }}]`.")
    } else {
        format!(
            "add a job:\n\n```sh\nwasmcron jobs add {name}-nightly --plugin {name} --cron \"0 3 * * *\" \
             --args '{{\"name\": \"team\"}}'\n```"
        )
    }
}

fn fill(template: &str, name: &str, listener: bool) -> String {
    let schedule = schedule_line(name, listener);
    template
        .replace("{{name}}", name)
        .replace("{{kind}}", kind(listener))
        .replace("{{version}}", env!("CARGO_PKG_VERSION"))
        .replace(
            "{{try}}",
            &try_line(name, listener, "target/wasm32-wasip2/release/"),
        )
        .replace("{{schedule}}", &schedule)
        .replace(
            "{{try_intro}}",
            if listener {
                "Check it (a listener runs only when a job's run fails or is missed, on a\nrunning host):"
            } else {
                "Try it once, in the same sandbox a\nscheduled run gets:"
            },
        )
}

fn write_rust(dir: &Path, name: &str, listener: bool) -> anyhow::Result<()> {
    let code = if listener {
        include_str!("listener.rs.tmpl")
    } else {
        include_str!("job.rs.tmpl")
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        (
            "Cargo.toml".into(),
            fill(include_str!("Cargo.toml.tmpl"), name, listener),
        ),
        (
            ".cargo/config.toml".into(),
            "[build]\ntarget = \"wasm32-wasip2\"\n".into(),
        ),
        (".gitignore".into(), "/target\n".into()),
        ("src/lib.rs".into(), fill(code, name, listener)),
        (
            "README.md".into(),
            fill(include_str!("README.md.tmpl"), name, listener),
        ),
        (PathBuf::from(WIT_DIR).join("wasmcron.wit"), WIT.into()),
        (
            "wasmcron-guest/Cargo.toml".into(),
            fill(include_str!("sdk.Cargo.toml.tmpl"), name, listener),
        ),
        (
            "wasmcron-guest/macros/Cargo.toml".into(),
            fill(include_str!("macros.Cargo.toml.tmpl"), name, listener),
        ),
    ];
    for (path, text) in SDK_FILES {
        files.push((PathBuf::from("wasmcron-guest").join(path), text.to_owned()));
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `wasmcron plugin build [DIR]`: builds the project in `dir` with its
/// language's toolchain and returns the component's path, for the caller
/// to check as `plugin check` does.
///
/// The language is told by the project's files: a `Cargo.toml` is Rust; a
/// `pyproject.toml` with a `[tool.wasmcron]` table, Python; a
/// `package.json` with a `"wasmcron"` key, JavaScript (both written by
/// `wasmcron new`, and built into `DIR/NAME.wasm`).
///
/// # Errors
/// No project there (the message says what was looked for), a missing
/// toolchain (it says how to install it), or the build failing (its own
/// output is shown as it goes).
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if manifest.is_file() {
        return build_rust(&manifest);
    }
    match polyglot::detect(dir)? {
        Some(project) => polyglot::build(&project),
        None => bail!(
            "no plugin project in {}: looked for {} (make one with `wasmcron new NAME [--lang \
             python|js]`)",
            dir.display(),
            polyglot::looked_for(dir)
        ),
    }
}

fn build_rust(manifest: &Path) -> anyhow::Result<PathBuf> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if let Ok(out) = installed
        && out.status.success()
        && !String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == "wasm32-wasip2")
    {
        bail!(
            "the Rust target wasm32-wasip2 is not installed; install it with `rustup target add \
             wasm32-wasip2` and build again"
        );
    }
    // Cargo's JSON messages name the artifacts it wrote (wherever the
    // target directory is); its diagnostics still reach the terminal.
    let mut child = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting cargo (install Rust with rustup: https://rustup.rs)")?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut wasm = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.context("reading cargo's output")?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
            && let Some(files) = msg["filenames"].as_array()
        {
            wasm = files
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from)
                .or(wasm);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status}); its messages are above");
    }
    wasm.context("cargo built no .wasm: is the package a `cdylib` (see Cargo.toml's [lib])?")
}
