//! `wasmcron calendars list|show|put|rm`: named calendars of a running
//! host (`/calendars`), days on which the jobs naming them do not fire.

use super::client::{Client, seg};
use super::render::{out, print_json, table, text};
use super::{Remote, quiet_on_closed_pipe};
use clap::Subcommand;
use serde_json::{Value, json};
use std::process::ExitCode;

/// `wasmcron calendars …`
#[derive(Debug, Subcommand)]
pub enum CalendarsCommand {
    /// List calendars, with the jobs naming each.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one calendar.
    Show {
        /// Its name.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Define a calendar, or replace it whole; the jobs naming it move
    /// their next fire at once.
    Put {
        /// Its name, e.g. `holidays`.
        name: String,
        /// An excluded date `YYYY-MM-DD` or range `YYYY-MM-DD..YYYY-MM-DD`
        /// (repeat for more).
        #[arg(long = "date")]
        dates: Vec<String>,
        /// An excluded-day rule: the three day fields of a cron line, e.g.
        /// `'* * sat,sun'` (repeat for more).
        #[arg(long = "days")]
        days: Vec<String>,
        /// A note for people.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a calendar no job names.
    Rm {
        /// Its name.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Runs a `calendars` command.
///
/// # Errors
/// The host unreachable, or its error answer.
pub async fn calendars(cmd: CalendarsCommand) -> anyhow::Result<ExitCode> {
    quiet_on_closed_pipe(to_stdout(cmd).await)
}

/// The entries of a list, `sep`-separated (day rules hold commas).
fn joined(v: &Value, sep: &str) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items.iter().map(text).collect::<Vec<_>>().join(sep),
        _ => "-".into(),
    }
}

/// A list for a table cell: its first three entries and how many in all.
fn cell(v: &Value, sep: &str, what: &str) -> String {
    match v.as_array() {
        Some(items) if items.len() > 3 => format!(
            "{}{sep}… ({} {what})",
            items[..3].iter().map(text).collect::<Vec<_>>().join(sep),
            items.len()
        ),
        _ => joined(v, sep),
    }
}

async fn to_stdout(cmd: CalendarsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CalendarsCommand::List { remote } => {
            let list = Client::new(&remote).get("/calendars").await?;
            if remote.json {
                return print_json(&list).map(|()| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = list
                .as_array()
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|c| {
                    vec![
                        text(&c["name"]),
                        cell(&c["dates"], ", ", "dates"),
                        cell(&c["days"], "; ", "rules"),
                        cell(&c["jobs"], ", ", "jobs"),
                    ]
                })
                .collect();
            table(&["NAME", "DATES", "DAYS", "JOBS"], &rows)?;
        }
        CalendarsCommand::Show { name, remote } => {
            let c = Client::new(&remote)
                .get(&format!("/calendars/{}", seg(&name)))
                .await?;
            if remote.json {
                return print_json(&c).map(|()| ExitCode::SUCCESS);
            }
            show(&c)?;
        }
        CalendarsCommand::Put {
            name,
            dates,
            days,
            description,
            remote,
        } => {
            let mut body = json!({"dates": dates, "days": days});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let c = Client::new(&remote)
                .call(
                    reqwest::Method::PUT,
                    &format!("/calendars/{}", seg(&name)),
                    Some(&body),
                )
                .await?;
            if remote.json {
                return print_json(&c).map(|()| ExitCode::SUCCESS);
            }
            show(&c)?;
        }
        CalendarsCommand::Rm { name, remote } => {
            Client::new(&remote)
                .delete(&format!("/calendars/{}", seg(&name)))
                .await?;
            if !remote.json {
                out!("removed {name}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(c: &Value) -> std::io::Result<()> {
    out!("name:        {}", text(&c["name"]))?;
    if let Some(d) = c["description"].as_str() {
        out!("description: {d}")?;
    }
    out!("dates:       {}", joined(&c["dates"], ", "))?;
    out!("days:        {}", joined(&c["days"], "; "))?;
    out!("jobs:        {}", joined(&c["jobs"], ", "))
}
