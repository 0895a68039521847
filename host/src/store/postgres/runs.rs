//! Reading run rows back: whole, as summaries (without the logs column),
//! or a page of their logs. Pages are fetched from a portal a few rows at
//! a time and stop as soon as they are full, so neither memory nor the
//! answer grows with a job's history or a run's logs.

use super::conn::classify;
use crate::runtime::{LogLevel, LogRecord, LogSource, Outcome};
use crate::store::records::{log_page, page_of_summaries};
use crate::store::{
    BrokenJob, JobRecord, LATENESS_SAMPLES, LOG_PAGE_BYTES, LogPage, RUN_PAGE_BYTES, RunCounts,
    RunFilter, RunList, RunRecord, RunStatus, RunSummary, RunsFrom, Snapshot, StoreError,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::Row;

/// Rows fetched from a portal at a time.
const CHUNK: i32 = 64;

/// Every column of a run but its logs; [`summary_from_row`] reads them.
const SUMMARY_COLUMNS: &str = "run_id, job_id, attempt, scheduled_at, due_at, status, \
                               started_at, ended_at, outcome::text, fuel, plugin_hash, note, \
                               args, log_count, origin, host, parent_run_id";

/// [`SUMMARY_COLUMNS`] and then the logs and incarnation.
pub(super) const RUN_COLUMNS: &str = "run_id, job_id, attempt, scheduled_at, due_at, status, started_at, \
                           ended_at, outcome::text, fuel, plugin_hash, note, args, log_count, \
                           origin, host, parent_run_id, logs::text, incarnation";

fn summary_from_row(row: &Row) -> Result<RunSummary, tokio_postgres::Error> {
    let status: String = row.try_get(5)?;
    let outcome: Option<String> = row.try_get(8)?;
    let attempt: i64 = row.try_get(2)?;
    let fuel: i64 = row.try_get(9)?;
    let log_count: i64 = row.try_get(13)?;
    Ok(RunSummary {
        run_id: row.try_get(0)?,
        job_id: row.try_get(1)?,
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        scheduled_at: row.try_get(3)?,
        due_at: row.try_get(4)?,
        // An unknown status can only come from a newer version; treat the
        // run as interrupted rather than lose the row.
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Interrupted),
        started_at: row.try_get::<_, Option<DateTime<Utc>>>(6)?,
        ended_at: row.try_get::<_, Option<DateTime<Utc>>>(7)?,
        outcome: outcome.and_then(|o| serde_json::from_str::<Outcome>(&o).ok()),
        fuel: u64::try_from(fuel).unwrap_or(0),
        plugin_hash: row.try_get(10)?,
        note: row.try_get(11)?,
        args: row.try_get(12)?,
        log_count: u64::try_from(log_count).unwrap_or(0),
        origin: crate::store::RunOrigin::parse(&row.try_get::<_, String>(14)?),
        cause: crate::store::RunCause::default(),
        host: row.try_get(15)?,
        parent_run_id: row.try_get(16)?,
    }
    .with_cause())
}

/// A whole run, from a row of [`RUN_COLUMNS`].
pub(super) fn run_from_row(row: &Row) -> Result<RunRecord, tokio_postgres::Error> {
    let s = summary_from_row(row)?;
    let logs: String = row.try_get(17)?;
    Ok(RunRecord {
        run_id: s.run_id,
        job_id: s.job_id,
        attempt: s.attempt,
        scheduled_at: s.scheduled_at,
        due_at: s.due_at,
        status: s.status,
        started_at: s.started_at,
        ended_at: s.ended_at,
        outcome: s.outcome,
        fuel: s.fuel,
        logs: serde_json::from_str(&logs).unwrap_or_default(),
        plugin_hash: s.plugin_hash,
        note: s.note,
        args: s.args,
        incarnation: row.try_get(18)?,
        origin: s.origin,
        host: s.host,
        parent_run_id: s.parent_run_id,
    })
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One job's row, or `None` when there is no such job.
pub(super) async fn job(client: &Object, id: &str) -> Result<Option<JobRecord>, StoreError> {
    let Some(row) = client
        .query_opt(
            "SELECT spec, created_at, next_run_time, paused, incarnation, paused_reason, failures_from
               FROM jobs WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(classify)?
    else {
        return Ok(None);
    };
    let spec: String = row.try_get(0).map_err(classify)?;
    let spec = serde_json::from_str(&spec)
        .map_err(|e| StoreError::Backend(format!("job '{id}': stored spec: {e}")))?;
    Ok(Some(JobRecord {
        spec,
        created_at: row.try_get(1).map_err(classify)?,
        next_run_time: row.try_get(2).map_err(classify)?,
        paused: row.try_get(3).map_err(classify)?,
        incarnation: row.try_get(4).map_err(classify)?,
        paused_reason: row.try_get(5).map_err(classify)?,
        failures_from: row.try_get(6).map_err(classify)?,
    }))
}

/// Every job and every unfinished run, from one snapshot.
pub(super) async fn load(client: &mut Object) -> Result<Snapshot, StoreError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(classify)?;
    let mut snap = Snapshot::default();
    let jobs = tx
        .query(
            "SELECT id, spec, created_at, next_run_time, paused, incarnation, paused_reason,
                    failures_from FROM jobs ORDER BY id",
            &[],
        )
        .await
        .map_err(classify)?;
    for row in jobs {
        let id: String = row.try_get(0).map_err(classify)?;
        let spec: String = row.try_get(1).map_err(classify)?;
        match serde_json::from_str(&spec) {
            Ok(spec) => snap.jobs.push(JobRecord {
                spec,
                created_at: row.try_get(2).map_err(classify)?,
                next_run_time: row.try_get(3).map_err(classify)?,
                paused: row.try_get(4).map_err(classify)?,
                incarnation: row.try_get(5).map_err(classify)?,
                paused_reason: row.try_get(6).map_err(classify)?,
                failures_from: row.try_get(7).map_err(classify)?,
            }),
            Err(e) => snap.broken.push(BrokenJob {
                id,
                error: format!("stored spec does not parse: {e}"),
            }),
        }
    }
    let runs = tx
        .query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('pending', 'running') \
                 ORDER BY run_id"
            ),
            &[],
        )
        .await
        .map_err(classify)?;
    snap.unfinished = runs
        .iter()
        .map(run_from_row)
        .collect::<Result<_, _>>()
        .map_err(classify)?;
    tx.commit().await.map_err(classify)?;
    Ok(snap)
}

/// A job's runs of its live incarnation, newest first.
pub(super) async fn runs(
    client: &Object,
    job_id: &str,
    limit: usize,
    offset: usize,
) -> Result<Vec<RunRecord>, StoreError> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE job_id = $1::text
               AND incarnation = (SELECT incarnation FROM jobs WHERE id = $1::text)
             ORDER BY scheduled_at DESC, run_id DESC LIMIT $2::bigint OFFSET $3::bigint"
        ))
        .await
        .map_err(classify)?;
    client
        .query(&stmt, &[&job_id, &clamp(limit), &clamp(offset)])
        .await
        .map_err(classify)?
        .iter()
        .map(run_from_row)
        .collect::<Result<_, _>>()
        .map_err(classify)
}

/// One whole run.
pub(super) async fn run(client: &Object, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1::text"
        ))
        .await
        .map_err(classify)?;
    client
        .query_opt(&stmt, &[&run_id])
        .await
        .map_err(classify)?
        .as_ref()
        .map(run_from_row)
        .transpose()
        .map_err(classify)
}

/// One run without its logs.
pub(super) async fn summary(
    client: &Object,
    run_id: &str,
) -> Result<Option<RunSummary>, StoreError> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE run_id = $1::text"
        ))
        .await
        .map_err(classify)?;
    client
        .query_opt(&stmt, &[&run_id])
        .await
        .map_err(classify)?
        .as_ref()
        .map(summary_from_row)
        .transpose()
        .map_err(classify)
}

/// Fetches rows of `portal` a chunk at a time, giving each to `take`
/// until it says the page is full or the rows run out.
/// Reads summaries from `portal` a chunk at a time until the page is full
/// by count or size (the portal bound one more than `limit`, to know
/// whether more follow).
async fn page_from(
    tx: &Transaction<'_>,
    portal: &tokio_postgres::Portal,
    limit: usize,
) -> Result<RunList, StoreError> {
    let mut rows = Vec::new();
    let mut bytes = 0;
    fetch(tx, portal, |row| {
        let run = summary_from_row(row).map_err(classify)?;
        bytes += run.approx_json_len();
        rows.push(run);
        // Past the count or the size, page_of_summaries has what it needs.
        Ok(rows.len() <= limit && bytes <= RUN_PAGE_BYTES)
    })
    .await?;
    Ok(page_of_summaries(rows.into_iter(), limit))
}

async fn fetch(
    tx: &Transaction<'_>,
    portal: &tokio_postgres::Portal,
    mut take: impl FnMut(&Row) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    loop {
        let rows = tx.query_portal(portal, CHUNK).await.map_err(classify)?;
        for row in &rows {
            if !take(row)? {
                return Ok(());
            }
        }
        if rows.len() < CHUNK as usize {
            return Ok(());
        }
    }
}

/// A page of every job's run summaries, newest recorded first (see
/// `JobStore::all_runs`): the primary key's order, so the scan stops at
/// the page's end.
pub(super) async fn all_summaries(
    client: &mut Object,
    filter: RunFilter,
    limit: usize,
    from: &RunsFrom,
) -> Result<RunList, StoreError> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(classify)?;
    // A cursor is a bound of its own in the SQL (not `$5 IS NULL OR …`), so
    // the primary key's scan starts just below it instead of at the top.
    let bound = if from.before().is_some() {
        "AND run_id < $5::text"
    } else {
        "AND $5::text IS NULL"
    };
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs
              WHERE ($1::text IS NULL OR status = $1::text)
                AND ($2::text IS NULL OR outcome_kind = $2::text) {bound}
              ORDER BY run_id DESC LIMIT $3::bigint OFFSET $4::bigint"
        ))
        .await
        .map_err(classify)?;
    let status = filter.status.map(RunStatus::as_str);
    let outcome = filter.outcome.map(crate::runtime::OutcomeKind::as_str);
    let portal = tx
        .bind(
            &stmt,
            &[
                &status,
                &outcome,
                &clamp(limit.saturating_add(1)),
                &clamp(from.offset()),
                &from.before(),
            ],
        )
        .await
        .map_err(classify)?;
    let page = page_from(&tx, &portal, limit).await?;
    tx.commit().await.map_err(classify)?;
    Ok(page)
}

/// How many runs scheduled at or after `from` are in each status and
/// outcome kind.
pub(super) async fn counts(
    client: &mut Object,
    from: DateTime<Utc>,
) -> Result<RunCounts, StoreError> {
    let rows = client
        .query(
            "SELECT status, outcome_kind, count(*) FROM runs WHERE scheduled_at >= $1
              GROUP BY status, outcome_kind",
            &[&from],
        )
        .await
        .map_err(classify)?;
    let mut counts = RunCounts::default();
    for row in rows {
        let status: String = row.try_get(0).map_err(classify)?;
        let outcome: Option<String> = row.try_get(1).map_err(classify)?;
        let n: i64 = row.try_get(2).map_err(classify)?;
        counts.add(&status, outcome.as_deref(), u64::try_from(n).unwrap_or(0));
    }
    let samples = i64::try_from(LATENESS_SAMPLES).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT (extract(epoch FROM started_at - scheduled_at) * 1000)::bigint FROM runs
              WHERE scheduled_at >= $1 AND started_at IS NOT NULL
                AND origin = 'fire' AND attempt = 1
              ORDER BY run_id DESC LIMIT $2::bigint",
            &[&from, &samples],
        )
        .await
        .map_err(classify)?;
    for row in rows {
        counts.lateness_ms.push(row.try_get(0).map_err(classify)?);
    }
    Ok(counts)
}

/// A page of a job's run summaries (see `JobStore::run_summaries`).
pub(super) async fn summaries(
    client: &mut Object,
    job_id: &str,
    limit: usize,
    from: &RunsFrom,
) -> Result<RunList, StoreError> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(classify)?;
    // A cursor bounds the scan of `runs_by_job` by the cursor run's own
    // (scheduled_at, run_id); a run of another job, or one no longer
    // stored, makes the bound NULL and the page empty.
    let bound = if from.before().is_some() {
        "AND (scheduled_at, run_id) < (SELECT c.scheduled_at, c.run_id FROM runs c
                                        WHERE c.run_id = $4::text AND c.job_id = $1::text)"
    } else {
        "AND $4::text IS NULL"
    };
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE job_id = $1::text
               AND incarnation = (SELECT incarnation FROM jobs WHERE id = $1::text) {bound}
             ORDER BY scheduled_at DESC, run_id DESC LIMIT $2::bigint OFFSET $3::bigint"
        ))
        .await
        .map_err(classify)?;
    // One more than the page may hold, to know whether more follow.
    let portal = tx
        .bind(
            &stmt,
            &[
                &job_id,
                &clamp(limit.saturating_add(1)),
                &clamp(from.offset()),
                &from.before(),
            ],
        )
        .await
        .map_err(classify)?;
    let page = page_from(&tx, &portal, limit).await?;
    tx.commit().await.map_err(classify)?;
    Ok(page)
}

/// A page of one run's log records (see `JobStore::run_logs`). The stored
/// JSON array is walked by the server and only this page's records come
/// out of it.
pub(super) async fn logs(
    client: &mut Object,
    run_id: &str,
    offset: usize,
    limit: usize,
) -> Result<Option<LogPage>, StoreError> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(classify)?;
    let total: Option<i64> = tx
        .query_opt(
            "SELECT log_count FROM runs WHERE run_id = $1::text",
            &[&run_id],
        )
        .await
        .map_err(classify)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(classify)?;
    let Some(total) = total else {
        return Ok(None);
    };
    let total = u64::try_from(total).unwrap_or(0);
    if offset as u64 >= total {
        return Ok(Some(log_page(Vec::new(), offset, total)));
    }
    let stmt = tx
        .prepare_cached(
            "SELECT e.value::text FROM runs,
                    json_array_elements(runs.logs) WITH ORDINALITY AS e(value, n)
             WHERE runs.run_id = $1::text ORDER BY e.n LIMIT $2::bigint OFFSET $3::bigint",
        )
        .await
        .map_err(classify)?;
    let portal = tx
        .bind(&stmt, &[&run_id, &clamp(limit), &clamp(offset)])
        .await
        .map_err(classify)?;
    let mut records = Vec::new();
    let mut bytes = 0;
    fetch(&tx, &portal, |row| {
        let json: String = row.try_get(0).map_err(classify)?;
        if !records.is_empty() && bytes + json.len() > LOG_PAGE_BYTES {
            return Ok(false);
        }
        bytes += json.len();
        // A record that does not parse (written by a newer version) is
        // shown as its JSON rather than dropped, so offsets stay right.
        records.push(
            serde_json::from_str::<LogRecord>(&json).unwrap_or_else(|_| LogRecord {
                source: LogSource::Host,
                level: LogLevel::Warn,
                message: json,
                fields: Vec::new(),
            }),
        );
        Ok(true)
    })
    .await?;
    tx.commit().await.map_err(classify)?;
    Ok(Some(log_page(records, offset, total)))
}
