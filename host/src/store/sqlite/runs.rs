//! Run rows: writing them, and reading them back whole, as summaries
//! (without the logs column) or a page of their logs.

use super::backend;
use super::writer::ms;
use crate::runtime::{LogRecord, Outcome};
use crate::store::records::{log_page, page_of_summaries};
use crate::store::{
    LATENESS_SAMPLES, LOG_PAGE_BYTES, LogPage, RunCounts, RunFilter, RunList, RunRecord, RunStatus,
    RunSummary, RunsFrom, StoreError,
};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::LazyLock;

pub(super) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// Inserts or replaces a run row, only for its job's live incarnation: a
/// run of a deleted job that finishes later must not reappear under a new
/// job with its id (it is dropped and logged).
pub(super) fn insert(
    conn: &Connection,
    r: &RunRecord,
    outcome: Option<&str>,
    logs: &str,
) -> Result<(), StoreError> {
    if r.status == RunStatus::Running && start(conn, r, outcome, logs)? {
        return Ok(());
    }
    // An upsert on the run id, not INSERT OR REPLACE: that would also
    // delete another run's row holding the same fire key, where this must
    // fail instead (one run per fire).
    if write_row(conn, &UPSERT_ROW, r, outcome, logs)? == 0 {
        crate::store::memory::dropped_run(r);
    }
    Ok(())
}

/// A pending run's start, the write before each run that waited for a
/// worker beyond those recorded running with their fire: an update of the
/// four columns a start sets, done only where the stored row is that run,
/// pending, and equal to `r` in every other column (so the row ends up as
/// the upsert would leave it), for a live incarnation. It leaves every
/// index but the unfinished runs' alone, where the upsert rewrites all
/// four (profiled: the start upserts were a fifth of the SQLite writer's
/// time in a 1,000-job burst). False when nothing matched: the caller
/// upserts.
fn start(
    conn: &Connection,
    r: &RunRecord,
    outcome: Option<&str>,
    logs: &str,
) -> Result<bool, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE runs SET status = 'running', started_at = ?2, plugin_hash = ?3, host = ?4
             WHERE run_id = ?1 AND status = 'pending' AND job_id = ?5 AND attempt = ?6
               AND scheduled_at = ?7 AND due_at = ?8 AND incarnation = ?9 AND origin = ?10
               AND args IS ?11 AND note IS ?12 AND fuel = ?13 AND logs = ?14
               AND log_count = ?15 AND ended_at IS ?16 AND outcome IS ?17
               AND outcome_kind IS ?18 AND parent_run_id IS ?19
               AND EXISTS (SELECT 1 FROM jobs WHERE id = ?5 AND incarnation = ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                r.run_id,
                r.started_at.map(ms),
                r.plugin_hash,
                r.host,
                r.job_id,
                r.attempt,
                ms(r.scheduled_at),
                ms(r.due_at),
                r.incarnation,
                r.origin.as_str(),
                r.args,
                r.note,
                i64::try_from(r.fuel).unwrap_or(i64::MAX),
                logs,
                i64::try_from(r.logs.len()).unwrap_or(i64::MAX),
                r.ended_at.map(ms),
                outcome,
                r.outcome.as_ref().map(|o| o.kind().as_str()),
                r.parent_run_id,
            ])
        })
        .map_err(backend)?;
    Ok(updated == 1)
}

/// Inserts a new row of a fire; false when it was not inserted because
/// its fire key (or its id) is already taken, or its incarnation is gone.
pub(super) fn insert_fire(
    conn: &Connection,
    r: &RunRecord,
    outcome: Option<&str>,
    logs: &str,
) -> Result<bool, StoreError> {
    Ok(write_row(conn, &INSERT_ROW, r, outcome, logs)? == 1)
}

/// Records a run's end with its retry ([`crate::store::Write::End`]);
/// false when the stored row was no longer running on the run's host
/// (someone recorded its end first), when nothing was written.
pub(super) fn end(
    conn: &Connection,
    r: &RunRecord,
    outcome: Option<&str>,
    logs: &str,
    retry: Option<&RunRecord>,
) -> Result<bool, StoreError> {
    // The common case, the row there and running on this host: an update
    // of the columns an end sets, which leaves every index but the
    // unfinished runs' alone (the upsert's update rewrites all four).
    // Anything else takes the upsert, which says what happened.
    let ended = conn
        .prepare_cached(
            "UPDATE runs SET status = ?2, started_at = ?3, ended_at = ?4, outcome_kind = ?5,
               outcome = ?6, fuel = ?7, logs = ?8, plugin_hash = ?9, note = ?10, args = ?11,
               log_count = ?12
             WHERE run_id = ?1 AND status = 'running' AND host IS ?13 AND incarnation = ?14
               AND EXISTS (SELECT 1 FROM jobs WHERE id = ?15 AND incarnation = ?14)",
        )
        .and_then(|mut s| {
            s.execute(params![
                r.run_id,
                r.status.as_str(),
                r.started_at.map(ms),
                r.ended_at.map(ms),
                r.outcome.as_ref().map(|o| o.kind().as_str()),
                outcome,
                i64::try_from(r.fuel).unwrap_or(i64::MAX),
                logs,
                r.plugin_hash,
                r.note,
                r.args,
                i64::try_from(r.logs.len()).unwrap_or(i64::MAX),
                r.host,
                r.incarnation,
                r.job_id,
            ])
        })
        .map_err(backend)?;
    if ended == 0 && write_row(conn, &END_ROW, r, outcome, logs)? == 0 {
        let live = conn
            .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1 AND incarnation = ?2")
            .and_then(|mut s| {
                s.query_row(params![r.job_id, r.incarnation], |_| Ok(()))
                    .optional()
            })
            .map_err(backend)?
            .is_some();
        if live {
            return Ok(false);
        }
        crate::store::memory::dropped_run(r);
        return Ok(true);
    }
    if let Some(retry) = retry {
        let (outcome, logs) = crate::store::prepared::encode(retry)?;
        // A taken id or fire key: that attempt is already recorded.
        write_row(conn, &INSERT_ROW, retry, outcome.as_deref(), &logs)?;
    }
    Ok(true)
}

/// What a run row's upsert changes when its run id is there.
const UPSERT: &str = "ON CONFLICT (run_id) DO UPDATE SET
    job_id = excluded.job_id, attempt = excluded.attempt, scheduled_at = excluded.scheduled_at,
    due_at = excluded.due_at, status = excluded.status, started_at = excluded.started_at,
    ended_at = excluded.ended_at, outcome_kind = excluded.outcome_kind,
    outcome = excluded.outcome, fuel = excluded.fuel, logs = excluded.logs,
    plugin_hash = excluded.plugin_hash, note = excluded.note, args = excluded.args,
    log_count = excluded.log_count, incarnation = excluded.incarnation,
    origin = excluded.origin, host = excluded.host, parent_run_id = excluded.parent_run_id";

/// The statement writing one run row, for its job's live incarnation
/// only, with `verb` (`INSERT` or `INSERT OR IGNORE`) and `tail` (an
/// upsert clause or nothing).
fn row_statement(verb: &str, tail: &str) -> String {
    format!(
        "{verb} INTO runs (run_id, job_id, attempt, scheduled_at, due_at, status,
           started_at, ended_at, outcome_kind, outcome, fuel, logs, plugin_hash, note, args,
           log_count, incarnation, origin, host, parent_run_id)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
           ?18, ?19, ?20
         WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?2 AND incarnation = ?17) {tail}"
    )
}

// Built once: a run row is written two or three times per run, and
// formatting the statement each time (then hashing and comparing its
// 600 bytes to find it in the statement cache) showed in profiles.
/// A run row inserted or updated whole ([`insert`]).
static UPSERT_ROW: LazyLock<String> = LazyLock::new(|| row_statement("INSERT", UPSERT));
/// A new row, ignored when its id or fire key is taken.
static INSERT_ROW: LazyLock<String> = LazyLock::new(|| row_statement("INSERT OR IGNORE", ""));
/// A run's end, only over its row while running on the same host ([`end`]).
static END_ROW: LazyLock<String> = LazyLock::new(|| {
    row_statement(
        "INSERT",
        &format!("{UPSERT} WHERE runs.status = 'running' AND runs.host IS excluded.host"),
    )
});

fn write_row(
    conn: &Connection,
    sql: &str,
    r: &RunRecord,
    outcome: Option<&str>,
    logs: &str,
) -> Result<usize, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    stmt.execute(params![
        r.run_id,
        r.job_id,
        r.attempt,
        ms(r.scheduled_at),
        ms(r.due_at),
        r.status.as_str(),
        r.started_at.map(ms),
        r.ended_at.map(ms),
        r.outcome.as_ref().map(|o| o.kind().as_str()),
        outcome,
        i64::try_from(r.fuel).unwrap_or(i64::MAX),
        logs,
        r.plugin_hash,
        r.note,
        r.args,
        i64::try_from(r.logs.len()).unwrap_or(i64::MAX),
        r.incarnation,
        r.origin.as_str(),
        r.host,
        r.parent_run_id,
    ])
    .map_err(backend)
}

/// Every column of a run but its logs; [`summary_from_row`] reads them.
const SUMMARY_COLUMNS: &str = "run_id, job_id, attempt, scheduled_at, due_at, status, started_at, \
                               ended_at, outcome, fuel, plugin_hash, note, args, log_count, origin, host, \
                               parent_run_id";

/// [`SUMMARY_COLUMNS`] and then the logs.
pub(super) const RUN_COLUMNS: &str = "run_id, job_id, attempt, scheduled_at, due_at, status, \
                                      started_at, ended_at, outcome, fuel, plugin_hash, note, \
                                      args, log_count, origin, host, parent_run_id, logs, \
                                      incarnation";

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<RunSummary> {
    let status: String = row.get(5)?;
    let outcome: Option<String> = row.get(8)?;
    let fuel: i64 = row.get(9)?;
    let log_count: i64 = row.get(13)?;
    Ok(RunSummary {
        run_id: row.get(0)?,
        job_id: row.get(1)?,
        attempt: row.get(2)?,
        scheduled_at: from_ms(row.get(3)?),
        due_at: from_ms(row.get(4)?),
        // An unknown status can only come from a newer version; treat the
        // run as interrupted rather than lose the row.
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Interrupted),
        started_at: row.get::<_, Option<i64>>(6)?.map(from_ms),
        ended_at: row.get::<_, Option<i64>>(7)?.map(from_ms),
        outcome: outcome.and_then(|o| serde_json::from_str::<Outcome>(&o).ok()),
        fuel: u64::try_from(fuel).unwrap_or(0),
        plugin_hash: row.get(10)?,
        note: row.get(11)?,
        args: row.get(12)?,
        log_count: u64::try_from(log_count).unwrap_or(0),
        origin: crate::store::RunOrigin::parse(&row.get::<_, String>(14)?),
        cause: crate::store::RunCause::default(),
        host: row.get(15)?,
        parent_run_id: row.get(16)?,
    }
    .with_cause())
}

/// A whole run, from a row of [`RUN_COLUMNS`].
pub(super) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let s = summary_from_row(row)?;
    let logs: String = row.get(17)?;
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
        incarnation: row.get(18)?,
        origin: s.origin,
        host: s.host,
        parent_run_id: s.parent_run_id,
    })
}

/// A page of a job's run summaries; rows are read one at a time and the
/// statement ends as soon as the page is full, so neither memory nor the
/// read transaction grows with the history.
pub(super) fn summaries(
    conn: &Connection,
    job_id: &str,
    limit: usize,
    from: &RunsFrom,
) -> Result<RunList, StoreError> {
    let cursor = match from {
        RunsFrom::Offset(offset) => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM runs WHERE job_id = ?1
                       AND incarnation = (SELECT incarnation FROM jobs WHERE id = ?1)
                     ORDER BY scheduled_at DESC, run_id DESC LIMIT -1 OFFSET ?2"
                ))
                .map_err(backend)?;
            let offset = i64::try_from(*offset).unwrap_or(i64::MAX);
            return page_from(&mut stmt, params![job_id, offset], limit);
        }
        RunsFrom::Before(cursor) => cursor,
    };
    // The cursor's place in the (scheduled_at, run_id) order; a run of
    // another job, or one no longer stored, matches nothing.
    let Some(at) = conn
        .prepare_cached("SELECT scheduled_at FROM runs WHERE run_id = ?1 AND job_id = ?2")
        .and_then(|mut s| {
            s.query_row(params![cursor, job_id], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map_err(backend)?
    else {
        return Ok(RunList::default());
    };
    // `scheduled_at <= ?2` bounds the walk of `runs_by_job`; the OR then
    // drops the cursor and the runs before it on the same instant.
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE job_id = ?1
               AND incarnation = (SELECT incarnation FROM jobs WHERE id = ?1)
               AND scheduled_at <= ?2 AND (scheduled_at < ?2 OR run_id < ?3)
             ORDER BY scheduled_at DESC, run_id DESC"
        ))
        .map_err(backend)?;
    page_from(&mut stmt, params![job_id, at, cursor], limit)
}

/// Reads `stmt`'s summaries one row at a time until the page is full
/// (the statement ends there), keeping the first row error.
fn page_from(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    limit: usize,
) -> Result<RunList, StoreError> {
    let mut failed = None;
    let page = {
        let rows = stmt.query_map(params, summary_from_row).map_err(backend)?;
        page_of_summaries(
            rows.map_while(|r| r.map_err(|e| failed = Some(e)).ok()),
            limit,
        )
    };
    match failed {
        Some(e) => Err(backend(e)),
        None => Ok(page),
    }
}

/// A page of every job's run summaries, newest recorded first (see
/// `JobStore::all_runs`). `run_id` is the primary key, so the walk in its
/// order stops as soon as the page is full; a status filter of pending or
/// running reads the partial index of unfinished runs instead.
pub(super) fn all_summaries(
    conn: &Connection,
    filter: RunFilter,
    limit: usize,
    from: &RunsFrom,
) -> Result<RunList, StoreError> {
    // A cursor is a bound of its own in the SQL (not `?4 IS NULL OR …`),
    // so the primary key's walk starts just below it instead of at the top.
    let bound = if from.before().is_some() {
        "AND run_id < ?4"
    } else {
        "AND ?4 IS NULL"
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs
              WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR outcome_kind = ?2) {bound}
              ORDER BY run_id DESC LIMIT -1 OFFSET ?3"
        ))
        .map_err(backend)?;
    let offset = i64::try_from(from.offset()).unwrap_or(i64::MAX);
    let status = filter.status.map(RunStatus::as_str);
    let outcome = filter.outcome.map(crate::runtime::OutcomeKind::as_str);
    page_from(
        &mut stmt,
        params![status, outcome, offset, from.before()],
        limit,
    )
}

/// How many runs scheduled at or after `from` are in each status and
/// outcome kind.
pub(super) fn counts(conn: &Connection, from: DateTime<Utc>) -> Result<RunCounts, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT status, outcome_kind, count(*) FROM runs WHERE scheduled_at >= ?1
              GROUP BY status, outcome_kind",
        )
        .map_err(backend)?;
    let mut counts = RunCounts::default();
    let rows = stmt
        .query_map(params![ms(from)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend)?;
    for row in rows {
        let (status, outcome, n) = row.map_err(backend)?;
        counts.add(&status, outcome.as_deref(), u64::try_from(n).unwrap_or(0));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT started_at - scheduled_at FROM runs
              WHERE scheduled_at >= ?1 AND started_at IS NOT NULL
                AND origin = 'fire' AND attempt = 1
              ORDER BY run_id DESC LIMIT ?2",
        )
        .map_err(backend)?;
    let samples = i64::try_from(LATENESS_SAMPLES).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![ms(from), samples], |r| r.get::<_, i64>(0))
        .map_err(backend)?;
    for row in rows {
        counts.lateness_ms.push(row.map_err(backend)?);
    }
    Ok(counts)
}

/// One run without its logs.
pub(super) fn summary(conn: &Connection, run_id: &str) -> Result<Option<RunSummary>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM runs WHERE run_id = ?1"
    ))
    .and_then(|mut s| s.query_row(params![run_id], summary_from_row).optional())
    .map_err(backend)
}

/// A page of one run's log records. SQLite walks the stored JSON array
/// (`json_each`) and only this page's records come out of it.
pub(super) fn logs(
    conn: &Connection,
    run_id: &str,
    offset: usize,
    limit: usize,
) -> Result<Option<LogPage>, StoreError> {
    let total: Option<i64> = conn
        .prepare_cached("SELECT log_count FROM runs WHERE run_id = ?1")
        .and_then(|mut s| s.query_row(params![run_id], |r| r.get(0)).optional())
        .map_err(backend)?;
    let Some(total) = total else {
        return Ok(None);
    };
    let total = u64::try_from(total).unwrap_or(0);
    if offset as u64 >= total {
        return Ok(Some(log_page(Vec::new(), offset, total)));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT j.value FROM runs, json_each(runs.logs) AS j
             WHERE runs.run_id = ?1 AND json_valid(runs.logs) LIMIT ?2 OFFSET ?3",
        )
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![
            run_id,
            i64::try_from(limit).unwrap_or(i64::MAX),
            i64::try_from(offset).unwrap_or(i64::MAX)
        ])
        .map_err(backend)?;
    let mut records = Vec::new();
    let mut bytes = 0;
    while let Some(row) = rows.next().map_err(backend)? {
        let json: String = row.get(0).map_err(backend)?;
        if !records.is_empty() && bytes + json.len() > LOG_PAGE_BYTES {
            break;
        }
        bytes += json.len();
        // A record that does not parse (written by a newer version) is
        // shown as its JSON rather than dropped, so offsets stay right.
        records.push(
            serde_json::from_str::<LogRecord>(&json).unwrap_or_else(|_| LogRecord {
                source: crate::runtime::LogSource::Host,
                level: crate::runtime::LogLevel::Warn,
                message: json,
                fields: Vec::new(),
            }),
        );
    }
    Ok(Some(log_page(records, offset, total)))
}
