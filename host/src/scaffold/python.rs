//! The Python parts of `wasmcron new --lang python` and `plugin build`:
//! the project's files, how a Python project is recognised (a
//! `pyproject.toml` with a `[tool.wasmcron]` table), and the componentize-py
//! command, with the arguments `cargo xtask` builds `plugins/hello-py` with.

use super::polyglot::{Content, Files, Project, Text, World};
use super::toolchain::Tool;
use anyhow::Context as _;
use std::path::Path;
use std::process::Command;

/// componentize-py, pinned as in `xtask/src/polyglot.rs` and
/// `requirements.txt`.
pub(super) const TOOL: Tool = Tool {
    name: "componentize-py",
    pinned: "0.25.1",
    env: "WASMCRON_COMPONENTIZE_PY",
    local: ".venv/bin/componentize-py",
    cached: "venv/bin/componentize-py",
    install: "python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1",
    needs: "Python 3.10 or later; on Debian, apt-get install python3-venv",
    runs_on: None,
};

/// The file that marks a Python project.
pub(super) const MARKER: &str = "pyproject.toml";

/// What the README and the printed hints say about Python.
pub(super) const TEXT: Text = Text {
    lang: "Python",
    app: "app.py",
    helper: "wasmcron.py",
    marker: "the `[tool.wasmcron]` table of `pyproject.toml`",
    install_note: "`.venv/`, componentize-py pinned in `requirements.txt`; Debian: `apt-get \
                   install python3-venv`",
    install: "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
    secs: 15,
    size: 19,
    engine: "CPython interpreter",
};

/// The project's files besides the shared ones (WIT, args schema, README).
pub(super) fn files(listener: bool) -> Files {
    let app = if listener {
        include_str!("python/listener.py.tmpl")
    } else {
        include_str!("python/app.py.tmpl")
    };
    vec![
        ("app.py".into(), Content::Template(app)),
        (
            "wasmcron.py".into(),
            Content::Verbatim(include_str!("../../../guest-sdk/python/wasmcron.py")),
        ),
        (
            "pyproject.toml".into(),
            Content::Template(include_str!("python/pyproject.toml.tmpl")),
        ),
        (
            "requirements.txt".into(),
            Content::Verbatim(include_str!("python/requirements.txt")),
        ),
        (
            ".gitignore".into(),
            Content::Verbatim("/.venv/\n__pycache__/\n/*.wasm\n"),
        ),
    ]
}

/// `pyproject.toml`, as far as `plugin build` reads it: the rest is the
/// author's (and pip's), so unknown keys are fine there, not in our table.
#[derive(serde::Deserialize)]
struct PyProject {
    project: Option<ProjectTable>,
    tool: Option<ToolTable>,
}

#[derive(serde::Deserialize)]
struct ProjectTable {
    name: Option<String>,
}

#[derive(serde::Deserialize)]
struct ToolTable {
    wasmcron: Option<Marker>,
}

/// `[tool.wasmcron]`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Marker {
    world: World,
}

/// The Python project in `dir`, if its `pyproject.toml` has a
/// `[tool.wasmcron]` table; `Ok(None)` when it has none (or there is no
/// such file).
///
/// # Errors
/// A `pyproject.toml` that cannot be read or is not TOML, or a
/// `[tool.wasmcron]` project without a usable `[project] name`.
pub(super) fn detect(dir: &Path) -> anyhow::Result<Option<Project>> {
    let path = dir.join(MARKER);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: PyProject =
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    let Some(marker) = doc.tool.and_then(|t| t.wasmcron) else {
        return Ok(None);
    };
    let name = doc
        .project
        .and_then(|p| p.name)
        .with_context(|| format!("{}: [project] has no name", path.display()))?;
    Ok(Some(Project {
        dir: dir.to_path_buf(),
        name,
        world: marker.world,
        lang: super::polyglot::Guest::Python,
    }))
}

/// The componentize-py command that builds `project` into `out` (a file
/// name in the project's folder, where the command runs).
pub(super) fn command(tool: &Path, project: &Project, out: &str) -> Command {
    let mut cmd = Command::new(tool);
    cmd.current_dir(&project.dir)
        .args(["-d", super::WIT_DIR, "-w", project.world.as_str()])
        .args(["componentize", "app", "-p", ".", "-o", out])
        // An active virtualenv's site-packages would be bundled into the
        // component: keep the build the same for everyone.
        .env_remove("VIRTUAL_ENV");
    cmd
}
