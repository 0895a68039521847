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
    let specs = jobs_of(&doc).with_context(|| format!("in {}", file.display()))?;
    let client = Client::new(remote);
    // Calendars first, as `wasmcron run --config` defines them before its
    // jobs: the jobs may name them.
    if let Some(calendars) = doc.get("calendars").and_then(Value::as_object) {
        for (name, spec) in calendars {
            client
                .call(
                    reqwest::Method::PUT,
                    &format!("/calendars/{}", super::client::seg(name)),
                    Some(spec),
                )
                .await
                .with_context(|| format!("in {}: calendars.{name}", file.display()))?;
        }
    }
    let (mut written, mut unchanged, mut notes) = (0, 0, Vec::new());
    let mut first = 0;
    for (len, body) in bodies(specs)? {
        let done = client
            .put_bytes("/jobs", "application/json", body)
            .await
            .with_context(|| {
                // The file's jobs go in requests of a few thousand: say
                // which request failed, what came before it, and how the
                // API's `jobs[i]` maps to the file.
                format!(
                    "applying the file's jobs {}-{} of {} ({first} applied before these; \
                     `jobs[i]` below is the file's job i+{}; applying the same file again \
                     is safe)",
                    first + 1,
                    first + len,
                    specs.len(),
                    first + 1
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
        "{} job{}: {written} written, {unchanged} unchanged",
        specs.len(),
        if specs.len() == 1 { "" } else { "s" }
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

/// The `jobs` list of a jobs file read as JSON, checked as `wasmcron run
/// --config` checks the file's top level (only `version = 1`, `jobs` and
/// `calendars`), with each id once.
fn jobs_of(doc: &Value) -> anyhow::Result<&[Value]> {
    let Some(top) = doc.as_object() else {
        bail!("a jobs file holds `version = 1` and [[jobs]] tables (JSON: {{\"jobs\": [...]}})");
    };
    if let Some(key) = top
        .keys()
        .find(|k| !matches!(k.as_str(), "version" | "jobs" | "calendars"))
    {
        bail!(
            "unknown key `{key}` at the top of the file: it may hold `version`, `jobs` and \
             `calendars`"
        );
    }
    if let Some(version) = top.get("version")
        && version.as_u64() != Some(1)
    {
        bail!("version {version} is not supported (this wasmcron reads version 1)");
    }
    let Some(specs) = top.get("jobs").and_then(Value::as_array) else {
        bail!(
            "no `jobs` list: write the jobs as [[jobs]] tables (TOML, as for \
             `wasmcron run --config`) or as {{\"jobs\": [...]}} (JSON)"
        );
    };
    let mut seen = std::collections::HashMap::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        if let Some(id) = spec.get("id").and_then(Value::as_str)
            && let Some(first) = seen.insert(id, i)
        {
            bail!(
                "job {} has the id '{id}' of job {}: each id may appear once",
                i + 1,
                first + 1
            );
        }
    }
    Ok(specs)
}

/// `specs` as `PUT /jobs` bodies (`{"jobs": [...]}`, encoded once), each
/// of at most [`MAX_APPLY_JOBS`] specs and [`CHUNK_BYTES`] bytes, with the
/// number of specs in each.
fn bodies(specs: &[Value]) -> anyhow::Result<Vec<(usize, Vec<u8>)>> {
    const HEAD: &[u8] = b"{\"jobs\":[";
    let mut out = Vec::new();
    let (mut body, mut count) = (HEAD.to_vec(), 0);
    let mut spec_json = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        spec_json.clear();
        serde_json::to_writer(&mut spec_json, spec)?;
        if spec_json.len() + HEAD.len() + 2 > CHUNK_BYTES {
            bail!(
                "job {} ('{}') is {} bytes of JSON, more than one request may carry ({} KiB)",
                i + 1,
                text(&spec["id"]),
                spec_json.len(),
                CHUNK_BYTES / 1024
            );
        }
        if count == MAX_APPLY_JOBS || body.len() + spec_json.len() + 3 > CHUNK_BYTES {
            body.extend_from_slice(b"]}");
            out.push((count, std::mem::replace(&mut body, HEAD.to_vec())));
            count = 0;
        }
        if count > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&spec_json);
        count += 1;
    }
    if count > 0 {
        body.extend_from_slice(b"]}");
        out.push((count, body));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_top_level_and_ids_are_checked() {
        let ok = json!({"version": 1, "jobs": [{"id": "a"}, {"id": "b"}]});
        assert_eq!(jobs_of(&ok).map(<[Value]>::len).ok(), Some(2));
        for (bad, says) in [
            (json!({"verison": 1, "jobs": []}), "unknown key `verison`"),
            (
                json!({"version": 2, "jobs": []}),
                "version 2 is not supported",
            ),
            (json!({"job": []}), "unknown key `job`"),
            (json!({"version": 1}), "no `jobs` list"),
            (json!([{"id": "a"}]), "[[jobs]]"),
            (
                json!({"jobs": [{"id": "a"}, {"id": "b"}, {"id": "a"}]}),
                "job 3 has the id 'a' of job 1",
            ),
        ] {
            let err = jobs_of(&bad).map(<[Value]>::len);
            assert!(
                err.as_ref().is_err_and(|e| e.to_string().contains(says)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn bodies_keep_under_the_count_and_byte_limits_and_lose_nothing() -> anyhow::Result<()> {
        let specs: Vec<Value> = (0..25_000)
            .map(|i| json!({ "id": format!("j{i}"), "plugin": "hello" }))
            .collect();
        let cut = bodies(&specs)?;
        assert!(cut.len() > 2);
        let mut ids = Vec::new();
        for (count, body) in &cut {
            assert!(*count <= MAX_APPLY_JOBS && body.len() <= CHUNK_BYTES);
            let parsed: Value = serde_json::from_slice(body)?;
            let jobs = parsed["jobs"].as_array().cloned().unwrap_or_default();
            assert_eq!(jobs.len(), *count);
            ids.extend(jobs.into_iter().map(|j| j["id"].clone()));
        }
        let expected: Vec<Value> = specs.iter().map(|s| s["id"].clone()).collect();
        assert_eq!(ids, expected);
        let big = vec![json!({ "id": "x", "args": "a".repeat(MAX_BODY) })];
        assert!(bodies(&big).is_err());
        assert!(bodies(&[])?.is_empty());
        Ok(())
    }
}
