//! Every host executes (issue 11): claiming pending runs, finding the runs
//! of hosts that stopped, and waking on new runs.
//!
//! A claim is one short transaction on a pool connection:
//! 1. lock due pending runs of the host's plugins **and their jobs' rows**,
//!    skipping rows another host has locked (`FOR UPDATE SKIP LOCKED`, the
//!    queue pattern of Oban, River and Que). Locking the job row too means
//!    one host at a time claims a given job's runs;
//! 2. count, in a fresh statement (read committed: it sees every claim
//!    committed so far), the runs of those jobs running anywhere;
//! 3. mark running those that fit under each job's `max_instances`.
//!
//! Step 1 leaves out runs that would only wait (retries, manual and
//! catch-up runs of jobs at their `max_instances`, by the snapshot's
//! count), so it can lock just a little more than it will take: every
//! row it locks is a tuple written, and a claim locking four times its
//! take cost a burst more than the runs themselves.
//!
//! So `max_instances` holds across hosts: no two claims of one job
//! overlap, and each sees all the runs claimed before it.

use super::conn::classify;
use crate::store::{RunRecord, StoreError};
use deadpool_postgres::Object;
use std::collections::HashMap;
use std::time::Duration;

/// Claims up to `limit` due pending runs of jobs whose plugin is in
/// `plugins`, for host `host`: they are returned marked running on it.
///
/// # Errors
/// As [`classify`] says.
pub(super) async fn claim(
    client: &mut Object,
    host: &str,
    plugins: &[String],
    limit: usize,
) -> Result<Vec<RunRecord>, StoreError> {
    if limit == 0 || plugins.is_empty() {
        return Ok(Vec::new());
    }
    let limit_i = i64::try_from(limit).unwrap_or(i64::MAX);
    let tx = client.transaction().await.map_err(classify)?;
    let due = tx
        .query(
            "SELECT r.run_id, r.job_id, j.max_instances,
                    r.attempt = 1 AND r.origin = 'fire'
                      AND coalesce(r.note, '') NOT LIKE 'catch-up%'
                      AND coalesce(r.note, '') NOT LIKE 'buffered%'
               FROM runs r JOIN jobs j ON j.id = r.job_id AND j.incarnation = r.incarnation
              WHERE r.status = 'pending' AND r.due_at <= clock_timestamp()
                AND j.plugin = ANY($1::text[])
                AND ((r.attempt = 1 AND r.origin = 'fire'
                        AND coalesce(r.note, '') NOT LIKE 'catch-up%'
                        AND coalesce(r.note, '') NOT LIKE 'buffered%')
                     OR (SELECT count(*) FROM runs x
                          WHERE x.job_id = r.job_id AND x.status = 'running') < j.max_instances)
              ORDER BY r.due_at, r.run_id
              LIMIT $2::bigint
                FOR UPDATE OF r, j SKIP LOCKED",
            &[&plugins, &limit_i.saturating_add(limit_i / 4 + 8)],
        )
        .await
        .map_err(classify)?;
    if due.is_empty() {
        tx.commit().await.map_err(classify)?;
        return Ok(Vec::new());
    }
    let mut jobs: Vec<String> = Vec::new();
    let mut candidates = Vec::with_capacity(due.len());
    for row in &due {
        let run_id: String = row.try_get(0).map_err(classify)?;
        let job_id: String = row.try_get(1).map_err(classify)?;
        let max: i32 = row.try_get(2).map_err(classify)?;
        let skippable: bool = row.try_get(3).map_err(classify)?;
        if !jobs.contains(&job_id) {
            jobs.push(job_id.clone());
        }
        candidates.push((run_id, job_id, i64::from(max), skippable));
    }
    let mut running: HashMap<String, i64> = HashMap::new();
    for row in tx
        .query(
            "SELECT job_id, count(*) FROM runs
              WHERE job_id = ANY($1::text[]) AND status = 'running' GROUP BY job_id",
            &[&jobs],
        )
        .await
        .map_err(classify)?
    {
        running.insert(
            row.try_get(0).map_err(classify)?,
            row.try_get(1).map_err(classify)?,
        );
    }
    // A fire that finds its job's max_instances runs going follows the
    // job's overlap policy, as on one host: it waits while the buffer has
    // room, else it is skipped (APScheduler's rule, and `skip`'s);
    // retries, manual runs, catch-up runs and fires already buffered wait
    // for a free instance.
    let at_cap: Vec<String> = candidates
        .iter()
        .filter(|(_, job_id, max, skippable)| {
            *skippable && running.get(job_id).copied().unwrap_or(0) >= *max
        })
        .map(|(_, job_id, _, _)| job_id.clone())
        .collect();
    let mut overlap = if at_cap.is_empty() {
        HashMap::new()
    } else {
        overlap_of(&tx, &at_cap).await?
    };
    let mut chosen: Vec<String> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut buffered: Vec<String> = Vec::new();
    let mut buffered_notes: Vec<String> = Vec::new();
    let mut cancel_for: Vec<(String, String)> = Vec::new();
    for (run_id, job_id, max, skippable) in candidates {
        let going = running.entry(job_id.clone()).or_insert(0);
        if *going < max {
            if chosen.len() < limit {
                *going += 1;
                chosen.push(run_id);
            }
        } else if skippable {
            let max32 = u32::try_from(max).unwrap_or(u32::MAX);
            let going32 = u32::try_from(*going).unwrap_or(u32::MAX);
            let policy = overlap.get_mut(&job_id);
            match policy {
                Some(p) if p.waiting < p.policy.buffer(p.max_buffered) => {
                    p.waiting += 1;
                    buffered_notes.push(crate::job::buffered_note(p.policy, going32, max32));
                    if p.policy == crate::job::Overlap::CancelOther {
                        cancel_for.push((job_id, run_id.clone()));
                    }
                    buffered.push(run_id);
                }
                Some(p) if p.policy.buffer(p.max_buffered) > 0 => {
                    notes.push(crate::job::buffer_full_note(
                        p.policy, p.waiting, going32, max32,
                    ));
                    skipped.push(run_id);
                }
                _ => {
                    notes.push(format!(
                        "{going} run(s) already in flight (max_instances {max})"
                    ));
                    skipped.push(run_id);
                }
            }
        }
    }
    if !buffered.is_empty() {
        tx.execute(
            "UPDATE runs SET note = n.note
               FROM unnest($1::text[], $2::text[]) AS n(run_id, note)
              WHERE runs.run_id = n.run_id",
            &[&buffered, &buffered_notes],
        )
        .await
        .map_err(classify)?;
    }
    for (job_id, fire_run) in &cancel_for {
        // The job's oldest run going stops for the buffered fire,
        // wherever it runs: its host hears it (`cancel_requests`).
        tx.execute(
            "SELECT pg_notify($3::text, r.run_id || ' ' || f.scheduled_at_ms::text)
               FROM (SELECT run_id FROM runs
                      WHERE job_id = $1::text AND status = 'running'
                      ORDER BY run_id LIMIT 1) r,
                    (SELECT (extract(epoch FROM scheduled_at) * 1000)::bigint AS scheduled_at_ms
                       FROM runs WHERE run_id = $2::text) f",
            &[job_id, fire_run, &super::notices::CANCELS],
        )
        .await
        .map_err(classify)?;
    }
    let mut out = Vec::new();
    if !skipped.is_empty() {
        let rows = tx
            .query(
                &format!(
                    "UPDATE runs SET status = 'skipped', note = n.note,
                            ended_at = date_trunc('milliseconds', clock_timestamp())
                       FROM unnest($1::text[], $2::text[]) AS n(run_id, note)
                      WHERE runs.run_id = n.run_id
                  RETURNING {}",
                    super::runs::RUN_COLUMNS
                        .split(", ")
                        .map(|c| format!("runs.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                &[&skipped, &notes],
            )
            .await
            .map_err(classify)?;
        for r in &rows {
            out.push(super::runs::run_from_row(r).map_err(classify)?);
        }
    }
    let rows = if chosen.is_empty() {
        Vec::new()
    } else {
        tx.query(
            &format!(
                "UPDATE runs SET status = 'running', host = $2::text,
                        started_at = date_trunc('milliseconds', clock_timestamp())
                  WHERE run_id = ANY($1::text[])
              RETURNING {}",
                super::runs::RUN_COLUMNS
            ),
            &[&chosen, &host],
        )
        .await
        .map_err(classify)?
    };
    tx.commit().await.map_err(classify)?;
    for r in &rows {
        out.push(super::runs::run_from_row(r).map_err(classify)?);
    }
    Ok(out)
}

/// Ids of the runs recorded running on `host`.
///
/// # Errors
/// As [`classify`] says.
pub(super) async fn running_on(client: &Object, host: &str) -> Result<Vec<String>, StoreError> {
    client
        .query(
            "SELECT run_id FROM runs WHERE status = 'running' AND host = $1::text",
            &[&host],
        )
        .await
        .map_err(classify)?
        .iter()
        .map(|r| r.try_get(0).map_err(classify))
        .collect()
}

/// Puts those of `ids` still running on `host` back to pending; returns
/// how many.
///
/// # Errors
/// As [`classify`] says.
pub(super) async fn give_back(
    client: &Object,
    host: &str,
    ids: &[String],
) -> Result<u64, StoreError> {
    client
        .execute(
            "UPDATE runs SET status = 'pending', host = NULL, started_at = NULL
              WHERE run_id = ANY($1::text[]) AND status = 'running' AND host = $2::text",
            &[&ids, &host],
        )
        .await
        .map_err(classify)
}

/// Drops host rows silent for an hour, and records as interrupted the
/// running runs whose host has not heartbeaten
/// for `timeout` (or never had a host row: a host of an older version, or
/// one that stopped before this), and returns them for their retries.
///
/// # Errors
/// As [`classify`] says.
pub(super) async fn sweep(
    client: &Object,
    timeout: Duration,
) -> Result<Vec<RunRecord>, StoreError> {
    let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    // Rows of hosts that stopped without leaving (killed, cut off) stay
    // listed as stopped for an hour, then go.
    client
        .execute(
            "DELETE FROM hosts WHERE heartbeat_at < clock_timestamp() - interval '1 hour'",
            &[],
        )
        .await
        .map_err(classify)?;
    let rows = client
        .query(
            &format!(
                "UPDATE runs SET status = 'interrupted',
                        ended_at = date_trunc('milliseconds', clock_timestamp()),
                        note = 'its host (' || coalesce(host, 'unknown') || ') stopped: no \
                                heartbeat for ' || ($1::bigint / 1000) || 's'
                  WHERE status = 'running'
                    AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.name = runs.host
                                      AND h.heartbeat_at > clock_timestamp()
                                          - $1::bigint * interval '1 millisecond')
              RETURNING {}",
                super::runs::RUN_COLUMNS
            ),
            &[&ms],
        )
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|r| super::runs::run_from_row(r).map_err(classify))
        .collect()
}

/// Keeps one's own host row fresh (the heartbeat other hosts judge this
/// host's runs by, and what `GET /cluster` lists): called at each lease
/// round. Returns how many other hosts are alive (heartbeat within the
/// TTL), which decides whether events are relayed at all.
pub(super) async fn heartbeat(
    client: &tokio_postgres::Client,
    s: &super::LeaseSettings,
) -> Result<u64, StoreError> {
    let report = s
        .report
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let plugins = serde_json::to_string(&report.plugins).unwrap_or_else(|_| "[]".into());
    let in_flight = i32::try_from(report.in_flight).unwrap_or(i32::MAX);
    let ttl = i64::try_from(s.ttl.as_millis()).unwrap_or(i64::MAX);
    let row = client
        .query_one(
            "WITH beat AS (
               INSERT INTO hosts (id, name, address, version, started_at, heartbeat_at, plugins,
                                  in_flight)
               VALUES ($1::text, $2::text, $3::text, $4::text, clock_timestamp(),
                       clock_timestamp(), $5::text, $6::integer)
               ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                   address = excluded.address, plugins = excluded.plugins,
                   in_flight = excluded.in_flight)
             SELECT count(*) FROM hosts WHERE id <> $1::text
                AND heartbeat_at > clock_timestamp() - $7::bigint * interval '1 millisecond'",
            &[
                &s.host_id,
                &s.host_name,
                &s.address,
                &env!("CARGO_PKG_VERSION"),
                &plugins,
                &in_flight,
                &ttl,
            ],
        )
        .await
        .map_err(classify)?;
    let others: i64 = row.try_get(0).map_err(classify)?;
    Ok(u64::try_from(others).unwrap_or(0))
}

/// Every host row, newest heartbeat first; `alive` when within `ttl`.
///
/// # Errors
/// As [`classify`] says.
pub(super) async fn hosts(
    client: &Object,
    ttl: Duration,
) -> Result<Vec<crate::store::HostRow>, StoreError> {
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT id, name, address, version, started_at, heartbeat_at,
                    heartbeat_at > clock_timestamp() - $1::bigint * interval '1 millisecond',
                    plugins, in_flight
               FROM hosts ORDER BY name, heartbeat_at DESC",
            &[&ms],
        )
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|r| {
            let plugins: String = r.try_get(7).map_err(classify)?;
            let in_flight: i32 = r.try_get(8).map_err(classify)?;
            Ok(crate::store::HostRow {
                id: r.try_get(0).map_err(classify)?,
                name: r.try_get(1).map_err(classify)?,
                address: r.try_get(2).map_err(classify)?,
                version: r.try_get(3).map_err(classify)?,
                started_at: r.try_get(4).map_err(classify)?,
                last_heartbeat: r.try_get(5).map_err(classify)?,
                alive: r.try_get(6).map_err(classify)?,
                plugins: serde_json::from_str(&plugins).unwrap_or_default(),
                runs_in_flight: u64::try_from(in_flight).unwrap_or(0),
            })
        })
        .collect()
}

/// Removes one's host row at a clean stop (after its runs ended).
pub(super) async fn leave(client: &tokio_postgres::Client, id: &str) -> Result<(), StoreError> {
    client
        .execute("DELETE FROM hosts WHERE id = $1::text", &[&id])
        .await
        .map_err(classify)?;
    Ok(())
}

/// A job's overlap policy as a claim needs it, and how many of its fires
/// wait already.
struct Policy {
    policy: crate::job::Overlap,
    max_buffered: u32,
    waiting: usize,
}

/// The overlap policies of `jobs` (read from their specs: only jobs at
/// their `max_instances` with a fresh fire due need it, which is rare,
/// so no column of their own), with the fires of each already waiting.
/// A spec this version cannot read counts as `skip`.
async fn overlap_of(
    tx: &deadpool_postgres::Transaction<'_>,
    jobs: &[String],
) -> Result<HashMap<String, Policy>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Part {
        #[serde(default)]
        overlap: crate::job::Overlap,
        #[serde(default)]
        max_buffered: Option<u32>,
    }
    let mut out = HashMap::new();
    for row in tx
        .query(
            "SELECT id, spec FROM jobs WHERE id = ANY($1::text[])",
            &[&jobs],
        )
        .await
        .map_err(classify)?
    {
        let id: String = row.try_get(0).map_err(classify)?;
        let spec: String = row.try_get(1).map_err(classify)?;
        let part = serde_json::from_str::<Part>(&spec).unwrap_or(Part {
            overlap: crate::job::Overlap::Skip,
            max_buffered: None,
        });
        out.insert(
            id,
            Policy {
                policy: part.overlap,
                max_buffered: part
                    .max_buffered
                    .unwrap_or(crate::job::DEFAULT_MAX_BUFFERED),
                waiting: 0,
            },
        );
    }
    for row in tx
        .query(
            "SELECT job_id, count(*) FROM runs
              WHERE job_id = ANY($1::text[]) AND status = 'pending' AND attempt = 1
                AND origin = 'fire'
                AND (note LIKE 'buffered%' OR note LIKE 'catch-up%')
              GROUP BY job_id",
            &[&jobs],
        )
        .await
        .map_err(classify)?
    {
        let id: String = row.try_get(0).map_err(classify)?;
        let n: i64 = row.try_get(1).map_err(classify)?;
        if let Some(p) = out.get_mut(&id) {
            p.waiting = usize::try_from(n).unwrap_or(usize::MAX);
        }
    }
    Ok(out)
}
