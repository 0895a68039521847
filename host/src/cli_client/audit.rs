//! `wasmcron audit`: a running host's audit log (`GET /audit`), newest
//! first, a page at a time.

use super::client::{Client, seg};
use super::render::{out, print_json, table, text};
use super::{Remote, quiet_on_closed_pipe};
use clap::Args;
use serde_json::Value;
use std::process::ExitCode;

/// `wasmcron audit`'s arguments.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only changes to this job (and its runs).
    #[arg(long)]
    job: Option<String>,
    /// How many entries, 1-1000.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    limit: u16,
    /// Only entries older than this id (the `next: --before ID` a page
    /// ends with).
    #[arg(long)]
    before: Option<i64>,
    #[command(flatten)]
    remote: Remote,
}

/// Prints a page of the audit log.
///
/// # Errors
/// The host unreachable, or its error answer.
pub async fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    quiet_on_closed_pipe(to_stdout(args).await)
}

async fn to_stdout(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let mut query = vec![format!("limit={}", args.limit)];
    if let Some(job) = &args.job {
        query.push(format!("job={}", seg(job)));
    }
    if let Some(before) = args.before {
        query.push(format!("before={before}"));
    }
    let page = Client::new(&args.remote)
        .get(&format!("/audit?{}", query.join("&")))
        .await?;
    if args.remote.json {
        print_json(&page)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = page["entries"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|e| {
            vec![
                text(&e["id"]),
                text(&e["at"]),
                text(&e["actor"]),
                text(&e["action"]),
                text(&e["target"]),
                detail(&e["detail"]),
            ]
        })
        .collect();
    table(&["ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL"], &rows)?;
    if let Some(next) = page["next_before"].as_i64() {
        out!("next: --before {next}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A row's detail in a cell: the changed fields' names for a
/// modification, else the JSON (`-` for none).
fn detail(v: &Value) -> String {
    if let Some(changed) = v["changed"].as_object() {
        let names: Vec<&str> = changed.keys().map(String::as_str).collect();
        return format!("changed: {}", names.join(", "));
    }
    match v.as_object() {
        Some(map) if map.is_empty() => "-".into(),
        _ => v.to_string(),
    }
}
