//! The CLI for people writing jobs by hand: `jobs add ID --plugin P --cron
//! EXPR` (a spec from flags, no file needed for the common case) and `jobs
//! edit ID` (the spec in `$VISUAL`/`$EDITOR`, sent back as a JSON merge
//! patch of what changed, RFC 7396, so a field someone else changed
//! meanwhile is not overwritten).

use super::client::{Client, seg};
use super::render::out;
use super::{Remote, show_job};
use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Map, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A job spec from flags: `jobs add ID --plugin P (--cron EXPR | --every
/// DURATION | --at TIME) [--tz ZONE] [--args JSON] [--paused]`.
#[derive(Debug, Args)]
pub struct QuickJob {
    /// The plugin that runs the job. With it, the first argument is the new
    /// job's id and the flags below make its spec (no file needed).
    #[arg(long)]
    plugin: Option<String>,
    /// Fire on a cron expression (5 fields, or 6 with seconds first), e.g.
    /// "0 9 * * mon-fri"; quote it for the shell.
    #[arg(long, requires = "plugin", conflicts_with_all = ["every", "at"])]
    cron: Option<String>,
    /// Fire every this long, e.g. 30s, 5m, 1h, 1d.
    #[arg(long, requires = "plugin", conflicts_with = "at")]
    every: Option<String>,
    /// Fire once, at this time: RFC 3339 (2026-12-01T09:00:00+08:00), or a
    /// local time (2026-12-01T09:00:00) read in --tz.
    #[arg(long, requires = "plugin")]
    at: Option<String>,
    /// IANA time zone of --cron or --at, e.g. Asia/Shanghai (default UTC).
    #[arg(long, requires = "plugin", conflicts_with = "every")]
    tz: Option<String>,
    /// The job's arguments, JSON, e.g. '{"name": "Ada"}'.
    #[arg(long, requires = "plugin", value_name = "JSON")]
    args: Option<String>,
    /// Add the job paused (resume it with `jobs resume ID`).
    #[arg(long, requires = "plugin")]
    paused: bool,
}

impl QuickJob {
    /// Whether the flags describe the job (`--plugin` given), so the first
    /// argument of `jobs add` is an id rather than a spec file.
    pub(super) fn given(&self) -> bool {
        self.plugin.is_some()
    }

    /// The job spec these flags say, for job `id`.
    ///
    /// # Errors
    /// No schedule flag, or `--args` not JSON. The host checks the rest
    /// (the cron expression, zone, duration…) and names the field.
    pub(super) fn spec(&self, id: &str) -> anyhow::Result<Value> {
        let Some(plugin) = &self.plugin else {
            bail!("--plugin is needed to add a job from flags");
        };
        let mut trigger = Map::new();
        match (&self.cron, &self.every, &self.at) {
            (Some(expr), _, _) => {
                trigger.insert("type".into(), "cron".into());
                trigger.insert("expr".into(), expr.as_str().into());
            }
            (_, Some(every), _) => {
                trigger.insert("type".into(), "interval".into());
                trigger.insert("every".into(), every.as_str().into());
            }
            (_, _, Some(at)) => {
                trigger.insert("type".into(), "date".into());
                trigger.insert("at".into(), at.as_str().into());
            }
            (None, None, None) => bail!(
                "job {id:?} needs a schedule: add --cron \"0 9 * * *\", --every 10m or --at \
                 2026-12-01T09:00:00Z"
            ),
        }
        if let Some(tz) = &self.tz {
            trigger.insert("tz".into(), tz.as_str().into());
        }
        let mut spec = Map::new();
        spec.insert("id".into(), id.into());
        spec.insert("plugin".into(), plugin.as_str().into());
        spec.insert("trigger".into(), Value::Object(trigger));
        if let Some(args) = &self.args {
            let args: Value = serde_json::from_str(args).with_context(|| {
                format!(
                    "--args is not JSON ({args:?}); quote it for the shell, e.g. \
                     --args '{{\"name\": \"Ada\"}}'"
                )
            })?;
            spec.insert("args".into(), args);
        }
        if self.paused {
            spec.insert("paused".into(), Value::Bool(true));
        }
        Ok(Value::Object(spec))
    }
}

/// How `jobs edit` shows the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EditFormat {
    /// TOML, as in a jobs file (JSON instead when the spec holds a `null`,
    /// which TOML cannot write).
    Toml,
    /// JSON.
    Json,
}

/// `jobs edit ID`: fetch the spec, open it in the editor, send what
/// changed as a merge patch, show the job as the host now has it.
///
/// # Errors
/// The host unreachable or refusing the change (the edited file is then
/// kept and its path named), the editor failing, or the file not parsing.
pub(super) async fn edit(id: &str, format: EditFormat, remote: &Remote) -> anyhow::Result<()> {
    let client = Client::new(remote);
    let job = client.get(&format!("/jobs/{}", seg(id))).await?;
    let mut spec = job
        .get("spec")
        .cloned()
        .context("the host's answer has no job spec")?;
    // Pausing has its own commands (a patch may not pause or resume), so
    // the field is left out of what is edited rather than offered as
    // something to change.
    if let Some(fields) = spec.as_object_mut() {
        fields.remove("paused");
    }
    let (text, format) = render(id, &spec, format)?;
    let file = tempfile::Builder::new()
        .prefix(&format!("wasmcron-{}-", file_safe(id)))
        .suffix(match format {
            EditFormat::Toml => ".toml",
            EditFormat::Json => ".json",
        })
        .tempfile()
        .context("creating a file to edit the spec in")?;
    file.as_file()
        .write_all(text.as_bytes())
        .context("writing the spec to edit")?;
    let path = file.path().to_path_buf();
    run_editor(&path)?;
    let edited = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the edited spec back from {}", path.display()))?;
    if edited
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        out!("the file was left empty: nothing sent, job {id} unchanged")?;
        return Ok(());
    }
    let new = match parse(&edited, format) {
        Ok(new) => new,
        Err(e) => return Err(kept(file, id, e)),
    };
    let patch = merge_diff(&spec, &new);
    if patch.as_object().is_some_and(Map::is_empty) {
        out!("no change: job {id} left as it is")?;
        return Ok(());
    }
    match client
        .call(
            reqwest::Method::PATCH,
            &format!("/jobs/{}", seg(id)),
            Some(&patch),
        )
        .await
    {
        Ok(job) if remote.json => super::render::print_json(&job)?,
        Ok(job) => show_job(&job)?,
        Err(e) => return Err(kept(file, id, e)),
    }
    Ok(())
}

/// The spec as the editor shows it, and the format it ended up in.
fn render(id: &str, spec: &Value, format: EditFormat) -> anyhow::Result<(String, EditFormat)> {
    if format == EditFormat::Toml {
        match toml::to_string_pretty(spec) {
            Ok(body) => {
                let head = format!(
                    "# Job {id:?}: change what you want, save and quit. What changed is sent as\n\
                     # a merge patch (fields removed here are removed from the job); an empty\n\
                     # file or no change sends nothing. `paused` is not here: pause and resume\n\
                     # with `wasmcron jobs pause|resume`.\n\n"
                );
                return Ok((head + &body, EditFormat::Toml));
            }
            // TOML has no null; such a spec is shown as JSON instead.
            Err(_) => {
                eprintln!(
                    "note: this spec holds a null, which TOML cannot write; editing it as JSON"
                );
            }
        }
    }
    let mut body = serde_json::to_string_pretty(spec)?;
    body.push('\n');
    Ok((body, EditFormat::Json))
}

fn parse(text: &str, format: EditFormat) -> anyhow::Result<Value> {
    let value = match format {
        EditFormat::Toml => {
            let value: toml::Value = toml::from_str(text).context("the edited spec is not TOML")?;
            serde_json::to_value(value)?
        }
        EditFormat::Json => serde_json::from_str(text).context("the edited spec is not JSON")?,
    };
    if !value.is_object() {
        bail!("the edited spec must be one job spec (a table / object)");
    }
    Ok(value)
}

/// Keeps the edited file (so the edit is not lost) and says where it is.
/// It is not offered for sending whole (`jobs add FILE --replace`): that
/// would undo what others changed since, where `jobs edit` sends only the
/// edit.
fn kept(file: tempfile::NamedTempFile, id: &str, err: anyhow::Error) -> anyhow::Error {
    match file.keep() {
        Ok((_, path)) => err.context(format!(
            "your edit is kept in {}; run `wasmcron jobs edit {id}` again and copy your change \
             from that file (nothing was changed)",
            path.display(),
        )),
        Err(e) => err.context(format!("(the edited file could not be kept: {e})")),
    }
}

/// The editor: `$VISUAL`, then `$EDITOR`, else `vi`, run through `sh` as
/// git runs it, so `EDITOR="code --wait"` works.
fn run_editor(path: &Path) -> anyhow::Result<()> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(&editor)
        .arg(path)
        .status()
        .with_context(|| format!("starting the editor {editor:?} (set VISUAL or EDITOR)"))?;
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}; nothing sent (the job is unchanged)");
    }
    Ok(())
}

/// A job id made safe for a file name (ids may hold `/`).
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

/// The JSON merge patch (RFC 7396) that turns `old` into `new`: fields
/// removed become `null`, objects are compared field by field, anything
/// else (arrays included) is replaced whole when it differs. `{}` when
/// nothing changed.
pub(super) fn merge_diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in new {
                match old.get(key) {
                    Some(before) if before == value => {}
                    Some(before @ Value::Object(_)) if value.is_object() => {
                        patch.insert(key.clone(), merge_diff(before, value));
                    }
                    _ => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

/// Where `jobs add` reads a spec from when no `--plugin` is given.
pub(super) fn spec_file(target: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(target);
    if target != "-" && !path.exists() {
        bail!(
            "no spec file {target:?}; to add a job from flags give its plugin and schedule: \
             wasmcron jobs add {target} --plugin PLUGIN --cron \"0 9 * * *\" (or --every 10m, \
             --at TIME)"
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::merge_diff;
    use serde_json::json;

    #[test]
    fn a_merge_diff_applied_gives_the_new_spec() {
        let old = json!({"id": "a", "trigger": {"type": "cron", "expr": "0 9 * * *", "tz": "UTC"},
                         "args": {"n": 1, "keep": [1, 2]}, "max_instances": 2});
        let new = json!({"id": "a", "trigger": {"type": "cron", "expr": "0 10 * * *"},
                         "args": {"n": 1, "keep": [1, 3]}, "paused": false});
        let patch = merge_diff(&old, &new);
        assert_eq!(
            patch,
            json!({"trigger": {"expr": "0 10 * * *", "tz": null}, "args": {"keep": [1, 3]},
                   "max_instances": null, "paused": false})
        );
        assert_eq!(merge_diff(&old, &old), json!({}));
    }
}
