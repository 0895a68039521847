//! `wasmcron jobs export [FILE]` and `wasmcron jobs import FILE`: a host's
//! jobs and calendars as a jobs file, and a jobs file made a host's jobs
//! (`GET /jobs/export`, `POST /jobs/import`).

use super::client::Client;
use super::render::{out, print_json};
use super::{Remote, read_spec};
use anyhow::Context as _;
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;

/// Writes the host's jobs file to `file` (stdout for `-` or none), as
/// TOML unless `json` or the file's name ends in `.json`.
///
/// # Errors
/// The host's error answer, or the file not writable.
pub(super) async fn export(file: Option<&Path>, json: bool, remote: &Remote) -> anyhow::Result<()> {
    let file = file.filter(|f| f.as_os_str() != "-");
    let json = json || file.is_some_and(|f| f.extension().is_some_and(|e| e == "json"));
    let accept = if json {
        "application/json"
    } else {
        "application/toml"
    };
    let text = Client::new(remote).get_text("/jobs/export", accept).await?;
    match file {
        Some(path) => std::fs::write(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .context("writing the export")?,
    }
    Ok(())
}

/// Sends `file` (TOML, or JSON for `.json` and `-`) to `POST
/// /jobs/import` and prints what was (or would be) added, changed,
/// removed and left unchanged.
///
/// # Errors
/// An unreadable file, or the host's error answer (nothing was written).
pub(super) async fn import(
    file: &Path,
    dry_run: bool,
    prune: bool,
    remote: &Remote,
) -> anyhow::Result<()> {
    let doc = read_spec(&file.to_path_buf())?;
    let path = format!("/jobs/import?dry_run={dry_run}&prune={prune}");
    let done = Client::new(remote)
        .post(&path, &doc)
        .await
        .with_context(|| format!("importing {}", file.display()))?;
    if remote.json {
        return print_json(&done);
    }
    let ids = |key: &str| -> Vec<String> {
        done[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let verb = if dry_run { "would be " } else { "" };
    for id in ids("added") {
        out!("+ {id} ({verb}added)")?;
    }
    for change in done["changed"].as_array().into_iter().flatten() {
        let fields: Vec<&str> = change["fields"]
            .as_array()
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out!(
            "~ {} ({verb}changed: {})",
            change["id"].as_str().unwrap_or_default(),
            fields.join(", ")
        )?;
    }
    for id in ids("removed") {
        out!("- {id} ({verb}removed)")?;
    }
    for name in ids("calendars") {
        out!("= calendar {name} ({verb}defined)")?;
    }
    out!(
        "{} added, {} changed, {} removed, {} unchanged{}",
        ids("added").len(),
        done["changed"].as_array().map_or(0, Vec::len),
        ids("removed").len(),
        done["unchanged"].as_u64().unwrap_or(0),
        if dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        }
    )?;
    Ok(())
}
