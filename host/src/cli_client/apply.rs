//! `wasmcron jobs apply FILE`: a jobs file's `[[jobs]]` sent to a running
//! host with `PUT /jobs`, in requests that fit the API's limits.

use super::Remote;
use super::client::Client;
use super::render::{out, print_json, text};
use crate::api::MAX_BODY;
use anyhow::{Context, bail};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Bytes of specs per request: under the API's body limit with room for
/// the envelope.
const CHUNK_BYTES: usize = MAX_BODY - 4096;

/// `PUT /jobs` requests in flight at once: while one waits for the store,
/// the API's thread checks the next. A million jobs took 10.2-11.4 s with
/// two, 7.9-9.2 s with three, 8.2 s with four (single runs of one hour;
/// docs/BENCHMARKS.md).
const IN_FLIGHT: usize = 3;

/// Specs per request at most (the API takes up to [`crate::api::MAX_APPLY_JOBS`]):
/// a request of 10,000 took over the API's 30 s request deadline on
/// PostgreSQL in a debug build under load, with another beside it; a few
/// thousand keep each request short, and the per-request cost is small.
const CHUNK_SPECS: usize = 2_000;

/// One `PUT /jobs` body.
struct Body {
    /// `{"jobs": [...]}`, encoded.
    bytes: Vec<u8>,
    /// The file's index of each spec in it, in the body's order.
    files: Vec<usize>,
    /// Whether a spec in it chains to other jobs (`on_success`,
    /// `on_failure`): those may be in an earlier request.
    chained: bool,
}

/// Applies `file`'s jobs; prints what was written and unchanged, and the
/// jobs with warnings or without their plugin.
///
/// # Errors
/// An unreadable file, one without a `jobs` list, a spec too large for a
/// request, or the host's error answer (which names the spec, counted
/// from the first of the file). Requests answered before an error stay
/// applied; applying the same file again is safe.
pub(super) async fn apply(file: &PathBuf, remote: &Remote) -> anyhow::Result<()> {
    let file_json = read_text(file)?;
    let doc = jobs_file(&file_json).with_context(|| format!("in {}", file.display()))?;
    let specs = &doc.specs;
    let client = Client::new(remote);
    // Calendars first, as `wasmcron run --config` defines them before its
    // jobs: the jobs may name them.
    if let Some(calendars) = &doc.calendars {
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
    let order = send_order(specs).with_context(|| format!("in {}", file.display()))?;
    let bodies = bodies(specs, &order)?;
    let total = specs.len();
    // Requests in flight: while the host writes one request's jobs, it
    // reads and checks the next ones (a million jobs took about twice as
    // long one request at a time). A request whose jobs chain to others
    // waits for those before it, which may hold its targets.
    let mut in_flight = FuturesOrdered::new();
    let mut waiting = bodies.into_iter().peekable();
    let mut applied = 0;
    let mut failed: Option<(anyhow::Error, Vec<usize>)> = None;
    let (mut applied_beside, mut failed_beside) = (Vec::new(), Vec::new());
    loop {
        while failed.is_none() && in_flight.len() < IN_FLIGHT {
            let Some(body) = waiting.next_if(|b: &Body| !b.chained || in_flight.is_empty()) else {
                break;
            };
            let client = &client;
            in_flight.push_back(async move {
                let answer = client
                    .put_bytes("/jobs", "application/json", body.bytes)
                    .await;
                (body.files, answer)
            });
        }
        let Some((files, answer)) = in_flight.next().await else {
            break;
        };
        match answer {
            Ok(done) if failed.is_none() => {
                written += done["written"].as_u64().unwrap_or(0);
                unchanged += done["unchanged"].as_u64().unwrap_or(0);
                if let Some(n) = done["notes"].as_array() {
                    notes.extend(n.iter().cloned());
                }
                applied += files.len();
            }
            Ok(_) => applied_beside.extend(files),
            Err(err) => match failed {
                None => failed = Some((err, files)),
                Some(_) => failed_beside.extend(files),
            },
        }
    }
    if let Some((err, files)) = failed {
        // The file's jobs go in requests of a few thousand: say which
        // request failed, what came before it, and which of the file's
        // jobs the API's `jobs[i]` is.
        let mut beside = String::new();
        if !applied_beside.is_empty() {
            applied_beside.sort_unstable();
            beside += &format!(
                "; the file's jobs {}, sent beside these, were applied",
                ranges(&applied_beside)
            );
        }
        if !failed_beside.is_empty() {
            failed_beside.sort_unstable();
            beside += &format!(
                "; the file's jobs {}, sent beside these, failed too",
                ranges(&failed_beside)
            );
        }
        // No answer (the connection was lost): the host may have written
        // part of the request before it went. (An answer's error always
        // names its status, `HTTP 422`; see `client.rs`.)
        if !err.to_string().contains("HTTP ") {
            beside += "; the host did not answer, so these may be partly applied";
        }
        let which = failing_spec(&err.to_string())
            .and_then(|i| Some((i, *files.get(i)?)))
            .map(|(i, file)| {
                let id = text_of_id(&specs[file]);
                format!(
                    "`jobs[{i}]` below is the file's job {} ('{id}'); ",
                    file + 1
                )
            })
            .unwrap_or_default();
        let mut held = files;
        held.sort_unstable();
        return Err(err.context(format!(
            "applying the file's jobs {} of {total} ({applied} applied before these{beside}; \
             {which}applying the same file again is safe)",
            ranges(&held)
        )));
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

/// A jobs file's text as JSON: a JSON file (or standard input, `-`) as
/// it is, a TOML one (`.toml`) converted.
fn read_text(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        return std::io::read_to_string(std::io::stdin()).context("reading a jobs file from stdin");
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if file.extension().is_some_and(|e| e == "toml") {
        let value: toml::Value =
            toml::from_str(&text).with_context(|| format!("in {}", file.display()))?;
        return Ok(serde_json::to_string(&value)?);
    }
    Ok(text)
}

/// A jobs file read for `PUT /jobs`: its specs are kept as their JSON
/// text, never built into values (a million jobs' values took seconds and
/// gigabytes, only to be encoded again).
struct JobsFile<'a> {
    calendars: Option<Map<String, Value>>,
    specs: Vec<Spec<'a>>,
}

/// One `[[jobs]]` entry.
struct Spec<'a> {
    /// As written in the file (JSON).
    json: &'a RawValue,
    /// Its `id`, if it has one.
    id: Option<Value>,
    /// The jobs it chains to (`on_success`, `on_failure`).
    targets: Vec<String>,
}

/// What [`jobs_file`] reads of each spec; the rest is the host's to check.
#[derive(Deserialize)]
struct Peek {
    id: Option<Value>,
    on_success: Option<Value>,
    on_failure: Option<Value>,
}

/// A jobs file's JSON text, checked as `wasmcron run --config` checks the
/// file's top level (only `version = 1`, `jobs` and `calendars`), with
/// each id once.
fn jobs_file(text: &str) -> anyhow::Result<JobsFile<'_>> {
    let doc: &RawValue = serde_json::from_str(text)?;
    if !doc.get().starts_with('{') {
        bail!("a jobs file holds `version = 1` and [[jobs]] tables (JSON: {{\"jobs\": [...]}})");
    }
    let top: BTreeMap<String, &RawValue> = serde_json::from_str(doc.get())?;
    if let Some(key) = top
        .keys()
        .find(|k| !matches!(k.as_str(), "version" | "jobs" | "calendars"))
    {
        bail!(
            "unknown key `{key}` at the top of the file: it may hold `version`, `jobs` and \
             `calendars`"
        );
    }
    if let Some(version) = top.get("version") {
        let version: Value = serde_json::from_str(version.get())?;
        if version.as_u64() != Some(1) {
            bail!("version {version} is not supported (this wasmcron reads version 1)");
        }
    }
    let Some(jobs) = top
        .get("jobs")
        .and_then(|jobs| serde_json::from_str::<Vec<&RawValue>>(jobs.get()).ok())
    else {
        bail!(
            "no `jobs` list: write the jobs as [[jobs]] tables (TOML, as for \
             `wasmcron run --config`) or as {{\"jobs\": [...]}} (JSON)"
        );
    };
    let calendars = match top.get("calendars") {
        Some(c) => serde_json::from_str::<Value>(c.get())?.as_object().cloned(),
        None => None,
    };
    let specs: Vec<Spec<'_>> = jobs
        .into_iter()
        .map(|json| {
            // A spec that is not an object is the host's to refuse.
            let peek = serde_json::from_str::<Peek>(json.get()).ok();
            let targets = peek
                .iter()
                .flat_map(|p| [&p.on_success, &p.on_failure])
                .filter_map(|list| list.as_ref()?.as_array())
                .flatten()
                .map(super::render::text)
                .collect();
            Spec {
                json,
                targets,
                id: peek.and_then(|p| p.id),
            }
        })
        .collect();
    let mut seen = std::collections::HashMap::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        if let Some(id) = spec.id.as_ref().and_then(Value::as_str)
            && let Some(first) = seen.insert(id, i)
        {
            bail!(
                "job {} has the id '{id}' of job {}: each id may appear once",
                i + 1,
                first + 1
            );
        }
    }
    Ok(JobsFile { calendars, specs })
}

/// The order to send `specs` in: the file's, except that a job others
/// chain to (`on_success`, `on_failure`) goes before the first of them, so
/// that no request names a job only a later request adds (the host
/// refuses a chain to a job it does not have). A cycle is sent as
/// written, for the host to refuse by name.
///
/// # Errors
/// A cycle among the file's jobs (the host would refuse it, but split
/// across requests it could only say that a job is missing).
fn send_order(specs: &[Spec<'_>]) -> anyhow::Result<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Seen {
        No,
        Visiting,
        Done,
    }
    if specs.iter().all(|s| s.targets.is_empty()) {
        return Ok((0..specs.len()).collect());
    }
    let index: std::collections::HashMap<&str, usize> = specs
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((s.id.as_ref()?.as_str()?, i)))
        .collect();
    let mut seen = vec![Seen::No; specs.len()];
    let mut order = Vec::with_capacity(specs.len());
    // Depth first, targets before the job naming them; by hand rather
    // than by recursion, as a chain may be a million jobs long.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in 0..specs.len() {
        if seen[root] != Seen::No {
            continue;
        }
        seen[root] = Seen::Visiting;
        stack.push((root, 0));
        while let Some(&(job, next)) = stack.last() {
            match specs[job].targets.get(next) {
                Some(target) => {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    // A chain to itself is the host's to refuse, in its words.
                    match index.get(target.as_str()) {
                        Some(&t) if t != job && seen[t] == Seen::No => {
                            seen[t] = Seen::Visiting;
                            stack.push((t, 0));
                        }
                        Some(&t) if t != job && seen[t] == Seen::Visiting => {
                            let at = stack.iter().position(|(j, _)| *j == t).unwrap_or(0);
                            let cycle: Vec<usize> =
                                stack[at..].iter().map(|(j, _)| *j).chain([t]).collect();
                            bail!("{}", cycle_message(specs, &cycle));
                        }
                        _ => {}
                    }
                }
                None => {
                    seen[job] = Seen::Done;
                    order.push(job);
                    stack.pop();
                }
            }
        }
    }
    Ok(order)
}

/// Says which of the file's jobs chain in a cycle (`cycle` ends where it
/// starts).
fn cycle_message(specs: &[Spec<'_>], cycle: &[usize]) -> String {
    const SHOWN: usize = 12;
    let name = |i: &usize| format!("'{}' (job {})", text_of_id(&specs[*i]), i + 1);
    let path: Vec<String> = if cycle.len() > SHOWN {
        let mut shown: Vec<String> = cycle[..SHOWN - 2].iter().map(name).collect();
        shown.push(format!("… {} more …", cycle.len() - SHOWN + 1));
        shown.extend(cycle[cycle.len() - 1..].iter().map(name));
        shown
    } else {
        cycle.iter().map(name).collect()
    };
    format!(
        "the file's jobs chain in a cycle ({} jobs): {}; a chain must not lead back to its \
         job: remove one of these `on_success`/`on_failure` entries",
        cycle.len() - 1,
        path.join(" → ")
    )
}

/// A spec's id as text (empty if it has none).
fn text_of_id(spec: &Spec<'_>) -> String {
    spec.id
        .as_ref()
        .map(super::render::text)
        .unwrap_or_default()
}

/// The position in its request of the spec an API error names
/// (`... (field jobs[12].trigger; HTTP 422)`), if it names one.
fn failing_spec(message: &str) -> Option<usize> {
    let at = message.rfind("(field jobs[")? + "(field jobs[".len();
    let digits = &message[at..];
    digits[..digits.find(']')?].parse().ok()
}

/// Sorted 0-based file indices as the file's jobs, 1-based, in ranges:
/// `1-2000, 2002, 4001-6000`.
fn ranges(sorted: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        out.push(if sorted[i] == start {
            format!("{}", start + 1)
        } else {
            format!("{}-{}", start + 1, sorted[i] + 1)
        });
        i += 1;
    }
    const SHOWN: usize = 8;
    if out.len() > SHOWN {
        let more = out.len() - SHOWN;
        out.truncate(SHOWN);
        out.push(format!("and {more} more ranges"));
    }
    out.join(", ")
}

/// `specs`, in `order` (indices into `specs`), as `PUT /jobs` bodies
/// (`{"jobs": [...]}`, encoded once), each of at most [`CHUNK_SPECS`]
/// specs and [`CHUNK_BYTES`] bytes.
fn bodies(specs: &[Spec<'_>], order: &[usize]) -> anyhow::Result<Vec<Body>> {
    const HEAD: &[u8] = b"{\"jobs\":[";
    let mut out = Vec::new();
    let mut body = Body {
        bytes: HEAD.to_vec(),
        files: Vec::new(),
        chained: false,
    };
    for &i in order {
        let spec = &specs[i];
        let spec_json = spec.json.get().as_bytes();
        if spec_json.len() + HEAD.len() + 2 > CHUNK_BYTES {
            bail!(
                "job {} ('{}') is {} bytes of JSON, more than one request may carry ({} KiB)",
                i + 1,
                text_of_id(spec),
                spec_json.len(),
                CHUNK_BYTES / 1024
            );
        }
        if body.files.len() == CHUNK_SPECS || body.bytes.len() + spec_json.len() + 3 > CHUNK_BYTES {
            body.bytes.extend_from_slice(b"]}");
            out.push(std::mem::replace(
                &mut body,
                Body {
                    bytes: HEAD.to_vec(),
                    files: Vec::new(),
                    chained: false,
                },
            ));
        }
        if !body.files.is_empty() {
            body.bytes.push(b',');
        }
        body.bytes.extend_from_slice(spec_json);
        body.files.push(i);
        body.chained |= !spec.targets.is_empty();
    }
    if !body.files.is_empty() {
        body.bytes.extend_from_slice(b"]}");
        out.push(body);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_top_level_and_ids_are_checked() {
        let ok = json!({"version": 1, "jobs": [{"id": "a"}, {"id": "b", "on_failure": ["a"]}]});
        let text = ok.to_string();
        let doc = jobs_file(&text).expect("a good file");
        let targets: Vec<&[String]> = doc.specs.iter().map(|s| &s.targets[..]).collect();
        assert_eq!(targets, [&[][..], &["a".to_owned()][..]]);
        for (bad, says) in [
            (json!({"verison": 1, "jobs": []}), "unknown key `verison`"),
            (
                json!({"version": 2, "jobs": []}),
                "version 2 is not supported",
            ),
            (json!({"job": []}), "unknown key `job`"),
            (json!({"version": 1}), "no `jobs` list"),
            (json!({"jobs": {"id": "a"}}), "no `jobs` list"),
            (json!([{"id": "a"}]), "[[jobs]]"),
            (
                json!({"jobs": [{"id": "a"}, {"id": "b"}, {"id": "a"}]}),
                "job 3 has the id 'a' of job 1",
            ),
        ] {
            let text = bad.to_string();
            let err = jobs_file(&text).map(|d| d.specs.len());
            assert!(
                err.as_ref().is_err_and(|e| e.to_string().contains(says)),
                "{bad}: {err:?}"
            );
        }
    }

    fn specs_of(text: &str) -> Vec<Spec<'_>> {
        jobs_file(text).expect("a jobs file").specs
    }

    #[test]
    fn bodies_keep_under_the_count_and_byte_limits_and_lose_nothing() -> anyhow::Result<()> {
        let specs: Vec<Value> = (0..25_000)
            .map(|i| json!({ "id": format!("j{i}"), "plugin": "hello" }))
            .collect();
        let text = json!({ "jobs": specs }).to_string();
        let specs_read = specs_of(&text);
        let cut = bodies(&specs_read, &send_order(&specs_read)?)?;
        assert!(cut.len() > 2);
        let mut ids = Vec::new();
        for body in &cut {
            assert!(body.files.len() <= CHUNK_SPECS && body.bytes.len() <= CHUNK_BYTES);
            assert!(!body.chained);
            let parsed: Value = serde_json::from_slice(&body.bytes)?;
            let jobs = parsed["jobs"].as_array().cloned().unwrap_or_default();
            assert_eq!(jobs.len(), body.files.len());
            ids.extend(jobs.into_iter().map(|j| j["id"].clone()));
        }
        let expected: Vec<Value> = specs.iter().map(|s| s["id"].clone()).collect();
        assert_eq!(ids, expected);
        let big = json!({ "jobs": [{ "id": "x", "args": "a".repeat(MAX_BODY) }] }).to_string();
        let big_specs = specs_of(&big);
        let err = bodies(&big_specs, &[0]).map(|b| b.len());
        assert!(
            err.as_ref()
                .is_err_and(|e| e.to_string().contains("job 1 ('x')")),
            "{err:?}"
        );
        assert!(bodies(&[], &[])?.is_empty());
        Ok(())
    }

    #[test]
    fn chain_targets_are_sent_before_the_jobs_naming_them() -> anyhow::Result<()> {
        // d → c → e (forward), b → a (backward), f names itself (the
        // host's to refuse), h names a job not in the file.
        let text = json!({"jobs": [
            {"id": "a"}, {"id": "b", "on_success": ["a"]},
            {"id": "d", "on_failure": ["c"]}, {"id": "c", "on_success": ["e"]}, {"id": "e"},
            {"id": "f", "on_success": ["f"]},
            {"id": "h", "on_success": ["elsewhere"]},
        ]})
        .to_string();
        let specs = specs_of(&text);
        let ids: Vec<String> = send_order(&specs)?
            .into_iter()
            .map(|i| text_of_id(&specs[i]))
            .collect();
        assert_eq!(ids, ["a", "b", "e", "c", "d", "f", "h"]);
        // A cycle is named with the file's positions.
        let text = json!({"jobs": [
            {"id": "x"}, {"id": "f", "on_success": ["g"]}, {"id": "g", "on_failure": ["f"]},
        ]})
        .to_string();
        let err = send_order(&specs_of(&text)).map(|o| o.len());
        assert!(
            err.as_ref().is_err_and(|e| e
                .to_string()
                .contains("cycle (2 jobs): 'f' (job 2) → 'g' (job 3) → 'f' (job 2)")),
            "{err:?}"
        );
        // A chain as long as a big file: no recursion to overflow.
        let long: Vec<Value> = (0..200_000)
            .map(|i| json!({"id": format!("j{i}"), "on_success": [format!("j{}", i + 1)]}))
            .collect();
        let text = json!({ "jobs": long }).to_string();
        let order = send_order(&specs_of(&text))?;
        assert_eq!(order.len(), 200_000);
        assert_eq!((order[0], order[199_999]), (199_999, 0));
        // A ring of them: the message stays short.
        let ring: Vec<Value> = (0..3_000)
            .map(
                |i| json!({"id": format!("r{i}"), "on_success": [format!("r{}", (i + 1) % 3_000)]}),
            )
            .collect();
        let text = json!({ "jobs": ring }).to_string();
        let err = send_order(&specs_of(&text)).map(|o| o.len());
        assert!(
            err.as_ref().is_err_and(|e| {
                let m = e.to_string();
                m.contains("cycle (3000 jobs): 'r0' (job 1) → 'r1' (job 2)")
                    && m.contains("… 2990 more … → 'r0' (job 1)")
                    && m.len() < 600
            }),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_files_jobs() {
        assert_eq!(ranges(&[0, 1, 2, 4, 9, 10]), "1-3, 5, 10-11");
        assert_eq!(ranges(&[]), "");
        let many: Vec<usize> = (0..40).map(|i| i * 2).collect();
        assert!(ranges(&many).ends_with("and 32 more ranges"));
        assert_eq!(
            failing_spec("jobs[12].trigger: bad (field jobs[12].trigger; HTTP 422)"),
            Some(12)
        );
        assert_eq!(failing_spec("the store is down (HTTP 503)"), None);
    }
}
