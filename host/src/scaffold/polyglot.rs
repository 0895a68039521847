//! `wasmcron new --lang python|js` and `wasmcron plugin build` for those
//! projects: what the two languages share. Each writes an app, wasmcron's
//! helper module for the language, the WIT, an `args.schema.json` (jobs
//! only), the toolchain's own project file (which also marks the project
//! for `plugin build`) and a README; each is built by a componentize tool
//! into `DIR/NAME.wasm`, to which the args schema is appended as a custom
//! section the host reads at load (see [`crate::plugin::declared`]).
//!
//! The language's own parts live in `python.rs` and `js.rs`; finding the
//! tool, in `toolchain.rs`.

use super::toolchain::{self, Search};
use super::{WIT, WIT_DIR, js, python};
use crate::plugin::declared::{ARGS_SCHEMA_SECTION, ArgsSchema, MAX_SCHEMA_BYTES};
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

/// Files to write: a path in the project and its content.
pub(super) type Files = Vec<(PathBuf, Content)>;

/// A file's content.
#[derive(Debug, Clone, Copy)]
pub(super) enum Content {
    /// A template: its `{{placeholders}}` are filled in.
    Template(&'static str),
    /// Copied as it is (the helper module, the WIT).
    Verbatim(&'static str),
}

/// The file that describes a job's `args`, embedded by `plugin build`.
pub const ARGS_SCHEMA_FILE: &str = "args.schema.json";

/// A language built by a componentize tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Guest {
    Python,
    Js,
}

impl Guest {
    fn tool(self) -> &'static toolchain::Tool {
        match self {
            Self::Python => &python::TOOL,
            Self::Js => &js::TOOL,
        }
    }

    fn text(self) -> &'static Text {
        match self {
            Self::Python => &python::TEXT,
            Self::Js => &js::TEXT,
        }
    }
}

/// What the README and the printed hints say about a language.
#[derive(Debug)]
pub(super) struct Text {
    /// Its name, for people.
    pub lang: &'static str,
    /// The file holding the job or listener.
    pub app: &'static str,
    /// wasmcron's helper module, copied beside it.
    pub helper: &'static str,
    /// What marks the project for `plugin build`, as a README phrase.
    pub marker: &'static str,
    /// Where the toolchain goes and what pins it, for the README.
    pub install_note: &'static str,
    /// The command that installs the toolchain, run in the project.
    pub install: &'static str,
    /// About how long the componentize step takes, in seconds.
    pub secs: u32,
    /// About how large the component is, in MB.
    pub size: u32,
    /// What makes it that large.
    pub engine: &'static str,
}

/// The world a project targets, as its marker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum World {
    /// A scheduled job (`export runner`).
    Job,
    /// An error listener (`export handler`).
    Listener,
}

impl World {
    /// Its name in the WIT (and on the toolchain's command line).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Job => "job",
            Self::Listener => "listener",
        }
    }
}

/// A Python or JavaScript project, as its marker describes it.
#[derive(Debug)]
pub(super) struct Project {
    /// Its folder.
    pub dir: PathBuf,
    /// The plugin's name (its `.wasm` is `NAME.wasm`).
    pub name: String,
    /// The world it targets.
    pub world: World,
    /// Its language.
    pub lang: Guest,
}

/// `wasmcron new --lang python|js`: writes the project into `dir` (checked
/// to be absent or empty) and says what to do next.
///
/// # Errors
/// A write failing.
pub(super) fn new_project(
    dir: &Path,
    name: &str,
    listener: bool,
    guest: Guest,
) -> anyhow::Result<ExitCode> {
    let text = guest.text();
    let mut files = match guest {
        Guest::Python => python::files(listener),
        Guest::Js => js::files(listener),
    };
    files.push((
        PathBuf::from(WIT_DIR).join("wasmcron.wit"),
        Content::Verbatim(WIT),
    ));
    files.push((
        "README.md".into(),
        Content::Template(include_str!("polyglot/README.md.tmpl")),
    ));
    if !listener {
        files.push((
            ARGS_SCHEMA_FILE.into(),
            Content::Template(include_str!("polyglot/args.schema.json.tmpl")),
        ));
    }
    for (path, content) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = match content {
            Content::Template(template) => fill(template, name, listener, guest),
            Content::Verbatim(text) => text.to_owned(),
        };
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "wrote {} ({} plugin in {})",
        dir.display(),
        super::kind(listener),
        text.lang
    );
    println!("next:");
    println!(
        "  (cd {} && {})    # the toolchain, once",
        dir.display(),
        text.install
    );
    println!(
        "  wasmcron plugin build {} --cache-dir ~/.cache/wasmcron/compiled",
        dir.display()
    );
    println!(
        "  {}",
        try_line(name, listener, &format!("{}/", dir.display()))
    );
    Ok(ExitCode::SUCCESS)
}

/// The command that tries the built component at `{at}NAME.wasm`.
fn try_line(name: &str, listener: bool, at: &str) -> String {
    let cache = "--cache-dir ~/.cache/wasmcron/compiled";
    if listener {
        format!("wasmcron plugin check {at}{name}.wasm {cache}")
    } else {
        format!("wasmcron plugin run {at}{name}.wasm --args '{{\"name\": \"Ada\"}}' {cache}")
    }
}

fn fill(template: &str, name: &str, listener: bool, guest: Guest) -> String {
    let text = guest.text();
    let world = if listener { "listener" } else { "job" };
    let schedule = super::schedule_line(name, listener);
    let args = if listener {
        String::new()
    } else {
        format!(
            "\n## Args\n\n`{ARGS_SCHEMA_FILE}` is a JSON Schema of the job's `args`. `plugin \
             build` embeds it\nin the component; the host then refuses a job whose args do not \
             fit it when the\njob is added or changed (`422`, naming the field, e.g. \
             `args.name`), and\n`plugin run` refuses such `--args`. `plugin check` and `GET \
             /plugins/{name}`\nshow it. Keep it in step with the args `{}` reads; delete it to \
             accept any\nargs.\n",
            text.app
        )
    };
    template
        .replace("{{name}}", name)
        .replace("{{kind}}", super::kind(listener))
        .replace("{{world}}", world)
        .replace("{{lang}}", text.lang)
        .replace("{{app}}", text.app)
        .replace("{{helper}}", text.helper)
        .replace(
            "{{helper_more}}",
            if listener { "" } else { ", typed args, errors" },
        )
        .replace("{{marker}}", text.marker)
        .replace("{{toolchain}}", text.install_note)
        .replace("{{install}}", text.install)
        .replace("{{tool}}", guest.tool().name)
        .replace("{{secs}}", &text.secs.to_string())
        .replace("{{size}}", &text.size.to_string())
        .replace("{{engine}}", text.engine)
        .replace(
            "{{schema_step}}",
            if listener {
                ""
            } else {
                "embeds `args.schema.json`, "
            },
        )
        .replace(
            "{{try_intro}}",
            if listener {
                "check it (a listener runs only when a job's run fails or is missed, on a\nrunning host):"
            } else {
                "try it once, in the same sandbox a scheduled run gets:"
            },
        )
        .replace("{{try}}", &try_line(name, listener, ""))
        .replace("{{args}}", &args)
        .replace("{{schedule}}", &schedule)
}

/// The Python or JavaScript project in `dir`, if there is one.
///
/// # Errors
/// A project file that cannot be read or parsed.
pub(super) fn detect(dir: &Path) -> anyhow::Result<Option<Project>> {
    if let Some(project) = python::detect(dir)? {
        return Ok(Some(project));
    }
    js::detect(dir)
}

/// What `plugin build` looked for, for its "no project" message: the
/// marker files, and what a present one lacked.
pub(super) fn looked_for(dir: &Path) -> String {
    let mut what = vec![
        "Cargo.toml (Rust)".to_owned(),
        format!("{} with a [tool.wasmcron] table (Python)", python::MARKER),
        format!("{} with a \"wasmcron\" key (JavaScript)", js::MARKER),
    ];
    for (marker, lacks) in [
        (python::MARKER, "has no [tool.wasmcron] table"),
        (js::MARKER, "has no \"wasmcron\" key"),
    ] {
        if dir.join(marker).is_file() {
            what.push(format!("(its {marker} {lacks})"));
        }
    }
    what.join(", ")
}

/// `wasmcron plugin build` for a Python or JavaScript project: checks its
/// `args.schema.json` (before the slow part), runs the toolchain into
/// `DIR/NAME.wasm`, appends the schema. Returns the component's path.
///
/// # Errors
/// A bad name or schema, a missing WIT folder or toolchain (the message
/// says how to install it), or the build failing (its output is shown as it
/// goes).
pub(super) fn build(project: &Project) -> anyhow::Result<PathBuf> {
    super::check_name(&project.name).with_context(|| {
        format!(
            "the project's name (in {}) names the plugin",
            project.dir.display()
        )
    })?;
    let schema = read_schema(project)?;
    let wit = project.dir.join(WIT_DIR);
    if !wit.is_dir() {
        bail!(
            "{} is missing: the WIT the component targets (any `wasmcron new` project holds a \
             copy)",
            wit.display()
        );
    }
    let tool = project.lang.tool();
    let found = toolchain::find(tool, &Search::from_env(tool, &project.dir))?;
    if found.version != tool.pinned {
        eprintln!(
            "warning: {} is {} ({}); projects are made for {}: if the build fails, install that \
             one: in {}, run `{}`",
            tool.name,
            found.version,
            found.path.display(),
            tool.pinned,
            project.dir.display(),
            tool.install
        );
    }
    let file = format!("{}.wasm", project.name);
    let out = project.dir.join(&file);
    // A failed build must not leave the last one looking fresh.
    match std::fs::remove_file(&out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing the old {}", out.display()));
        }
        _ => {}
    }
    let mut cmd = match project.lang {
        Guest::Python => python::command(&found.path, project, &file),
        Guest::Js => js::command(&found.path, project, &file),
    };
    eprintln!(
        "building {} with {} {} (about {} s)",
        project.dir.display(),
        tool.name,
        found.version,
        project.lang.text().secs
    );
    // The tool's own output goes to stderr: stdout is for what
    // `plugin build` says (the check and the `built:` line).
    let status = cmd
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running {}", found.path.display()))?;
    if !status.success() || !out.is_file() {
        bail!(
            "{} {} failed ({status}); its messages are above (projects are made for {} {})",
            tool.name,
            found.version,
            tool.name,
            tool.pinned
        );
    }
    if let Some(schema) = schema {
        let bytes = std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
        let bytes =
            crate::plugin::declared::append_custom_section(&bytes, ARGS_SCHEMA_SECTION, &schema);
        std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(out)
}

/// The project's `args.schema.json`, checked as the host will check it,
/// compacted; `None` when there is none.
///
/// # Errors
/// It is not JSON, not a usable schema, too large, or in a listener's
/// project (a listener gets no args).
fn read_schema(project: &Project) -> anyhow::Result<Option<Vec<u8>>> {
    let path = project.dir.join(ARGS_SCHEMA_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if project.world == World::Listener {
        bail!(
            "{}: a listener gets no args, so it declares no args schema; remove the file",
            path.display()
        );
    }
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let compact = serde_json::to_vec(&doc).context("serialising the args schema")?;
    if compact.len() > MAX_SCHEMA_BYTES {
        bail!(
            "{} is {} bytes without spaces; an args schema may be at most {MAX_SCHEMA_BYTES}",
            path.display(),
            compact.len()
        );
    }
    ArgsSchema::new(doc).with_context(|| path.display().to_string())?;
    Ok(Some(compact))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(dir: &Path, world: World) -> Project {
        Project {
            dir: dir.to_path_buf(),
            name: "x".into(),
            world,
            lang: Guest::Python,
        }
    }

    #[test]
    fn the_args_schema_is_checked_before_anything_is_built() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = project(dir.path(), World::Job);
        assert!(read_schema(&job).expect("no file is fine").is_none());

        let path = dir.path().join(ARGS_SCHEMA_FILE);
        std::fs::write(&path, "{\"type\": \"object\",}").expect("write");
        let err = format!("{:#}", read_schema(&job).expect_err("not JSON"));
        assert!(err.contains("is not JSON"), "{err}");

        std::fs::write(&path, r#"{"type": "no-such-type"}"#).expect("write");
        let err = format!("{:#}", read_schema(&job).expect_err("not a schema"));
        assert!(err.contains("not a usable JSON Schema"), "{err}");

        std::fs::write(&path, "{\n  \"type\": \"object\"\n}\n").expect("write");
        let compact = read_schema(&job).expect("fine").expect("declared");
        assert_eq!(compact, br#"{"type":"object"}"#);

        let err = format!(
            "{:#}",
            read_schema(&project(dir.path(), World::Listener)).expect_err("listener")
        );
        assert!(err.contains("a listener gets no args"), "{err}");
    }

    #[test]
    fn the_template_schema_is_usable_and_every_placeholder_is_filled() {
        for guest in [Guest::Python, Guest::Js] {
            for listener in [false, true] {
                let dir = tempfile::tempdir().expect("tempdir");
                let out = dir.path().join("p");
                new_project(&out, "my-job", listener, guest).expect("written");
                let project = detect(&out).expect("readable").expect("detected");
                assert_eq!(project.name, "my-job");
                assert_eq!(project.lang, guest);
                assert_eq!(project.world == World::Listener, listener);
                assert_eq!(read_schema(&project).expect("usable").is_some(), !listener);
                for entry in std::fs::read_dir(&out).expect("read dir") {
                    let path = entry.expect("entry").path();
                    if path.is_file() {
                        let text = std::fs::read_to_string(&path).expect("text");
                        assert!(
                            !text.contains("{{"),
                            "{} keeps a placeholder",
                            path.display()
                        );
                    }
                }
            }
        }
    }
}
