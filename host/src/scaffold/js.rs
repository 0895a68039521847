//! The JavaScript parts of `wasmcron new --lang js` and `plugin build`:
//! the project's files, how a JavaScript project is recognised (a
//! `package.json` with a `"wasmcron"` key), and the componentize-js
//! command, with the arguments `cargo xtask` builds `plugins/hello-js` with.

use super::polyglot::{Content, Files, Project, Text, World};
use super::toolchain::Tool;
use anyhow::Context as _;
use std::path::Path;
use std::process::Command;

/// @bytecodealliance/componentize-js's CLI, pinned as in
/// `xtask/src/polyglot.rs` and the project's `package.json`.
pub(super) const TOOL: Tool = Tool {
    name: "componentize-js",
    pinned: "0.23.0",
    env: "WASMCRON_COMPONENTIZE_JS",
    local: "node_modules/.bin/componentize-js",
    cached: "js/node_modules/.bin/componentize-js",
    install: "npm install",
    needs: "Node.js 20 or later and npm; on Debian, apt-get install nodejs npm",
    runs_on: Some("Node.js"),
};

/// The file that marks a JavaScript project.
pub(super) const MARKER: &str = "package.json";

/// What the README and the printed hints say about JavaScript.
pub(super) const TEXT: Text = Text {
    lang: "JavaScript",
    app: "app.js",
    helper: "wasmcron.js",
    marker: "the `\"wasmcron\"` key of `package.json`",
    install_note: "`node_modules/`, @bytecodealliance/componentize-js pinned in `package.json`; \
                   needs Node.js 20 or later",
    install: "npm install",
    secs: 25,
    size: 12,
    engine: "JavaScript engine",
};

/// The project's files besides the shared ones (WIT, args schema, README).
pub(super) fn files(listener: bool) -> Files {
    let app = if listener {
        include_str!("js/listener.js.tmpl")
    } else {
        include_str!("js/app.js.tmpl")
    };
    vec![
        ("app.js".into(), Content::Template(app)),
        (
            "wasmcron.js".into(),
            Content::Verbatim(include_str!("../../../guest-sdk/js/wasmcron.js")),
        ),
        (
            "package.json".into(),
            Content::Template(include_str!("js/package.json.tmpl")),
        ),
        (
            ".gitignore".into(),
            Content::Verbatim("/node_modules/\n/*.wasm\n"),
        ),
    ]
}

/// `package.json`, as far as `plugin build` reads it: the rest is the
/// author's (and npm's), so unknown keys are fine there, not in ours.
#[derive(serde::Deserialize)]
struct PackageJson {
    name: Option<String>,
    wasmcron: Option<Marker>,
}

/// `"wasmcron": { "world": "job" }`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Marker {
    world: World,
}

/// The JavaScript project in `dir`, if its `package.json` has a
/// `"wasmcron"` key; `Ok(None)` when it has none (or there is no such
/// file).
///
/// # Errors
/// A `package.json` that cannot be read or is not JSON, or a `"wasmcron"`
/// project without a `"name"`.
pub(super) fn detect(dir: &Path) -> anyhow::Result<Option<Project>> {
    let path = dir.join(MARKER);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: PackageJson =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    let Some(marker) = doc.wasmcron else {
        return Ok(None);
    };
    let name = doc
        .name
        .with_context(|| format!("{}: no \"name\"", path.display()))?;
    Ok(Some(Project {
        dir: dir.to_path_buf(),
        name,
        world: marker.world,
        lang: super::polyglot::Guest::Js,
    }))
}

/// The componentize-js command that builds `project` into `out` (a file
/// name in the project's folder, where the command runs).
pub(super) fn command(tool: &Path, project: &Project, out: &str) -> Command {
    let mut cmd = Command::new(tool);
    cmd.current_dir(&project.dir)
        .args(["app.js", "--wit", super::WIT_DIR])
        .args(["--world-name", project.world.as_str(), "-o", out]);
    cmd
}
