//! `wasmcron cron next` and `wasmcron cron explain`.

use crate::trigger::preview::{CronPreview, PreviewError, parse_after};
use chrono::Utc;
use std::process::ExitCode;

fn preview(expr: &str, tz: &str) -> anyhow::Result<CronPreview> {
    CronPreview::parse(expr, Some(tz)).map_err(|e| match e {
        PreviewError::Expr(_) => {
            anyhow::Error::new(e).context(format!("invalid cron expression '{expr}'"))
        }
        other => anyhow::Error::new(other),
    })
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
    exclude: &[String],
) -> anyhow::Result<ExitCode> {
    let preview = preview(expr, tz)?;
    let zone = preview.tz();
    // `--exclude a,b` as the API's `exclude=a,b`.
    let exclude: Vec<String> = exclude
        .iter()
        .flat_map(|e| e.split(','))
        .map(str::to_owned)
        .collect();
    if let Some(name) = exclude
        .iter()
        .find(|e| !crate::trigger::calendar::looks_like_date(e))
    {
        anyhow::bail!(
            "--exclude {name}: offline, `cron next` reads only dates (YYYY-MM-DD) and ranges \
             (YYYY-MM-DD..YYYY-MM-DD); a host's calendars: curl -G URL/cron/next \
             --data-urlencode 'expr={expr}' -d exclude={name}"
        );
    }
    let exclusions = crate::job::exclude::resolve_entries(
        &exclude,
        zone,
        &crate::trigger::calendar::Calendars::new(),
    )
    .map_err(|e| match e {
        crate::job::JobError::Exclude { problem, .. } => {
            anyhow::anyhow!("--exclude: {problem} (offline, only dates and ranges)")
        }
        other => anyhow::Error::new(other),
    })?;
    let now = Utc::now();
    let from = match after {
        Some(a) => parse_after(a).map_err(|_| {
            anyhow::anyhow!("--after '{a}' is not an RFC 3339 time, e.g. 2026-12-01T09:00:00+08:00")
        })?,
        None => now,
    };
    let times = crate::trigger::preview::with_exclusions(
        |t| preview.schedule.next_after(t),
        exclusions.as_deref(),
        from,
        usize::try_from(count).unwrap_or(usize::MAX),
    );
    if json {
        // Only the fires that happen: a script reads fire times.
        let list: Vec<String> = times
            .iter()
            .filter(|f| f.excluded_by.is_none())
            .map(|f| f.at.with_timezone(&zone).to_rfc3339())
            .collect();
        println!("{}", serde_json::to_string(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}  ({}, {})",
        preview.schedule.expr(),
        preview.explain,
        zone.name()
    );
    for fire in &times {
        let t = &fire.at;
        let local = t.with_timezone(&zone);
        if let Some(by) = &fire.excluded_by {
            println!(
                "  {}   skipped ({by})",
                local.format("%a %Y-%m-%d %H:%M:%S %:z")
            );
            continue;
        }
        let until = *t - now;
        let when = if until > chrono::Duration::zero() {
            format!("in {}", human(until))
        } else {
            format!("{} ago", human(-until))
        };
        println!("  {}   {when}", local.format("%a %Y-%m-%d %H:%M:%S %:z"));
    }
    for w in &preview.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints `expr` in words.
///
/// # Errors
/// An invalid expression.
pub fn explain(expr: &str) -> anyhow::Result<ExitCode> {
    let preview = preview(expr, "UTC")?;
    println!("{}", preview.explain);
    for w in &preview.warnings {
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
