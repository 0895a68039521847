//! `wasmcron cron next` and `wasmcron cron explain`.

use crate::trigger::cron::CronSchedule;
use crate::trigger::spec::parse_tz;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use std::process::ExitCode;

fn schedule(expr: &str, tz: &str) -> anyhow::Result<CronSchedule> {
    let tz = parse_tz(Some(tz)).map_err(anyhow::Error::msg)?;
    CronSchedule::parse(expr, tz).with_context(|| format!("invalid cron expression '{expr}'"))
}

/// Prints the next `count` fire times of `expr`.
///
/// # Errors
/// An invalid expression, zone or `--after` time.
pub fn next(
    expr: &str,
    tz: &str,
    after: Option<&str>,
    count: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let schedule = schedule(expr, tz)?;
    let now = Utc::now();
    let mut at = match after {
        Some(a) => DateTime::parse_from_rfc3339(a)
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| {
                format!("--after '{a}' is not an RFC 3339 time, e.g. 2026-12-01T09:00:00+08:00")
            })?,
        None => now,
    };
    let mut times = Vec::new();
    for _ in 0..count {
        match schedule.next_after(at) {
            Some(t) => {
                times.push(t);
                at = t;
            }
            None => break,
        }
    }
    let zone = schedule.tz();
    if json {
        let list: Vec<String> = times
            .iter()
            .map(|t| t.with_timezone(&zone).to_rfc3339())
            .collect();
        println!("{}", serde_json::to_string(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}  ({}, {})",
        schedule.expr(),
        schedule.explain(),
        zone.name()
    );
    for t in &times {
        let local = t.with_timezone(&zone);
        let until = *t - now;
        let when = if until > chrono::Duration::zero() {
            format!("in {}", human(until))
        } else {
            format!("{} ago", human(-until))
        };
        println!("  {}   {when}", local.format("%a %Y-%m-%d %H:%M:%S %:z"));
    }
    if let Some(w) = schedule.warning() {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints `expr` in words.
///
/// # Errors
/// An invalid expression.
pub fn explain(expr: &str) -> anyhow::Result<ExitCode> {
    let schedule = schedule(expr, "UTC")?;
    println!("{}", schedule.explain());
    if let Some(w) = schedule.warning() {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// "4d 23h", "12m 5s": the two largest units.
fn human(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |rest, (u, size)| {
            let n = *rest / size;
            *rest %= size;
            Some((n, u))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}
