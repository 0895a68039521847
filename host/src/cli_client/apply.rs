//! `wasmcron jobs apply FILE`: a jobs file's `[[jobs]]` sent to a running
//! host with `PUT /jobs`, in requests that fit the API's limits.

use super::client::Client;
use super::render::{out, print_json, text};
use super::{Remote, read_spec};
use crate::api::{MAX_APPLY_JOBS, MAX_BODY};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Bytes of specs per request: under the API's body limit with room for
/// the envelope.
const CHUNK_BYTES: usize = MAX_BODY - 4096;

/// Applies `file`'s jobs; prints what was written and unchanged, and the
/// jobs with warnings or without their plugin.
///
/// # Errors
/// An unreadable file, one without a `jobs` list, a spec too large for a
/// request, or the host's error answer (which names the spec, counted
/// from the first of the file). Requests answered before an error stay
/// applied; applying the same file again is safe.
pub(super) async fn apply(file: &PathBuf, remote: &Remote) -> anyhow::Result<()> {
    let doc = read_spec(file)?;
    let Some(specs) = doc.get("jobs").and_then(Value::as_array) else {
        bail!(
            "{} has no `jobs` list: write the jobs as [[jobs]] tables (TOML, as for \
             `wasmcron run --config`) or as {{\"jobs\": [...]}} (JSON)",
            file.display()
        );
    };
    let client = Client::new(remote);
    let (mut written, mut unchanged, mut notes) = (0, 0, Vec::new());
    let mut first = 0;
    for chunk in chunks(specs)? {
        let len = chunk.len();
        let done = client
            .call(
                reqwest::Method::PUT,
                "/jobs",
                Some(&json!({ "jobs": chunk })),
            )
            .await
            .with_context(|| {
                format!(
                    "applying jobs {}-{} of {} (the {first} before were applied)",
                    first + 1,
                    first + len,
                    specs.len()
                )
            })?;
        written += done["written"].as_u64().unwrap_or(0);
        unchanged += done["unchanged"].as_u64().unwrap_or(0);
        if let Some(n) = done["notes"].as_array() {
            notes.extend(n.iter().cloned());
        }
        first += len;
    }
    if remote.json {
        print_json(&json!({ "written": written, "unchanged": unchanged, "notes": notes }))?;
        return Ok(());
    }
    out!(
        "{} jobs: {written} written, {unchanged} unchanged",
        specs.len()
    )?;
    for note in &notes {
        let mut why: Vec<String> = note["warnings"]
            .as_array()
            .map(|w| w.iter().map(text).collect())
            .unwrap_or_default();
        if note["state"] == "waiting-for-plugin" {
            why.push(format!(
                "plugin '{}' is not loaded",
                text(&note["spec"]["plugin"])
            ));
        }
        out!("  {}: {}", text(&note["spec"]["id"]), why.join("; "))?;
    }
    Ok(())
}

/// `specs` cut in runs of at most [`MAX_APPLY_JOBS`] specs and
/// [`CHUNK_BYTES`] bytes of JSON.
fn chunks(specs: &[Value]) -> anyhow::Result<Vec<&[Value]>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, spec) in specs.iter().enumerate() {
        let size = serde_json::to_vec(spec)?.len() + 1;
        if size > CHUNK_BYTES {
            bail!(
                "job {} ('{}') is {size} bytes of JSON, more than one request may carry ({} KiB)",
                i + 1,
                text(&spec["id"]),
                CHUNK_BYTES / 1024
            );
        }
        if i > start && (i - start == MAX_APPLY_JOBS || bytes + size > CHUNK_BYTES) {
            out.push(&specs[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < specs.len() {
        out.push(&specs[start..]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_under_the_count_and_byte_limits_and_lose_nothing() -> anyhow::Result<()> {
        let specs: Vec<Value> = (0..25_000)
            .map(|i| json!({ "id": format!("j{i}"), "plugin": "hello" }))
            .collect();
        let cut = chunks(&specs)?;
        assert!(cut.iter().all(|c| c.len() <= MAX_APPLY_JOBS));
        assert!(
            cut.iter().all(
                |c| serde_json::to_vec(&json!({ "jobs": c })).map_or(0, |v| v.len()) < MAX_BODY
            )
        );
        assert_eq!(cut.iter().map(|c| c.len()).sum::<usize>(), specs.len());
        let big = vec![json!({ "id": "x", "args": "a".repeat(MAX_BODY) })];
        assert!(chunks(&big).is_err());
        assert!(chunks(&[])?.is_empty());
        Ok(())
    }
}
