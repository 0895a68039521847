//! What the cluster tests ask of the `runs` table: doubles, per-second
//! coverage, runs per host.

use crate::pg::TestDb;
use chrono::{DateTime, SubsecRound, Utc};
use std::fmt::Write as _;

/// `t` as a SQL timestamptz literal.
pub fn ts(t: DateTime<Utc>) -> String {
    format!(
        "'{}'::timestamptz",
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// `t` rounded down to a whole second.
pub fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}

/// Rows as one line each, for failure messages (at most 60).
pub fn show(rows: &[Vec<String>]) -> String {
    let mut out = format!("{} row(s)", rows.len());
    for row in rows.iter().take(60) {
        let _ = write!(out, "\n  {}", row.join(" | "));
    }
    if rows.len() > 60 {
        let _ = write!(out, "\n  …");
    }
    out
}

/// Fire rows sharing (job, scheduled_at, attempt): the property under test
/// is that there are none.
pub fn doubles(db: &TestDb) -> Vec<Vec<String>> {
    db.rows(
        "SELECT job_id, scheduled_at::text, attempt::text, count(*)::text,
                string_agg(coalesce(host, '-') || ':' || status, ', ')
           FROM runs WHERE origin = 'fire'
          GROUP BY job_id, scheduled_at, attempt HAVING count(*) > 1
          ORDER BY 1, 2, 3",
    )
}

/// `(job, second)` pairs in `[from, to]` (whole seconds) where a job whose
/// id starts with `prefix` has no finished, succeeded fire run.
pub fn seconds_without_success(
    db: &TestDb,
    prefix: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Vec<String>> {
    db.rows(&format!(
        "SELECT j.id, s::text FROM jobs j
           CROSS JOIN generate_series({}, {}, interval '1 second') s
          WHERE j.id LIKE '{prefix}%'
            AND NOT EXISTS (SELECT 1 FROM runs r
                             WHERE r.job_id = j.id AND r.origin = 'fire' AND r.scheduled_at = s
                               AND r.status = 'finished' AND r.outcome_kind = 'succeeded')
          ORDER BY 1, 2",
        ts(whole_second(from)),
        ts(whole_second(to))
    ))
}

/// For each job whose id starts with `prefix`, every whole second from its
/// first fire row to its last that does not have exactly one first-attempt
/// fire row (`job, second, rows`), and fire rows off whole seconds.
pub fn coverage_faults(db: &TestDb, prefix: &str) -> Vec<Vec<String>> {
    db.rows(&format!(
        "WITH span AS (SELECT job_id, min(scheduled_at) lo, max(scheduled_at) hi FROM runs
                        WHERE origin = 'fire' AND job_id LIKE '{prefix}%' GROUP BY job_id),
              secs AS (SELECT job_id, s FROM span, generate_series(lo, hi, interval '1 second') s)
         SELECT secs.job_id, secs.s::text, count(r.run_id)::text || ' row(s)'
           FROM secs LEFT JOIN runs r ON r.job_id = secs.job_id AND r.scheduled_at = secs.s
                                     AND r.origin = 'fire' AND r.attempt = 1
          GROUP BY 1, 2 HAVING count(r.run_id) <> 1
         UNION ALL
         SELECT job_id, scheduled_at::text, 'off a whole second' FROM runs
          WHERE origin = 'fire' AND job_id LIKE '{prefix}%'
            AND date_trunc('second', scheduled_at) <> scheduled_at
          ORDER BY 1, 2"
    ))
}

/// For jobs whose id starts with `prefix` (with `coalesce = true`): whole
/// seconds between a job's first and last fire row that have no fire row
/// and are not preceded by a `missed` row (the one that counts the fires
/// coalesced away): `job, second, the row before it`.
pub fn unexplained_gaps(db: &TestDb, prefix: &str) -> Vec<Vec<String>> {
    db.rows(&format!(
        "WITH span AS (SELECT job_id, min(scheduled_at) lo, max(scheduled_at) hi FROM runs
                        WHERE origin = 'fire' AND job_id LIKE '{prefix}%' GROUP BY job_id),
              secs AS (SELECT job_id, s FROM span, generate_series(lo, hi, interval '1 second') s),
              missing AS (SELECT job_id, s FROM secs WHERE NOT EXISTS
                            (SELECT 1 FROM runs r WHERE r.job_id = secs.job_id
                               AND r.scheduled_at = secs.s AND r.origin = 'fire'))
         SELECT m.job_id, m.s::text, coalesce(b.scheduled_at::text || ' ' || b.status || ' ' ||
                                               coalesce(b.note, ''), '(nothing before)')
           FROM missing m
           LEFT JOIN LATERAL (SELECT scheduled_at, status, note FROM runs r
                               WHERE r.job_id = m.job_id AND r.origin = 'fire'
                                 AND r.scheduled_at < m.s
                               ORDER BY r.scheduled_at DESC LIMIT 1) b ON true
          WHERE b.status IS DISTINCT FROM 'missed'
          ORDER BY 1, 2"
    ))
}

/// Fire rows per host (`-` for rows of fires that did not run) and status.
pub fn runs_per_host(db: &TestDb) -> Vec<Vec<String>> {
    db.rows(
        "SELECT coalesce(host, '-'), status, count(*)::text FROM runs WHERE origin = 'fire'
          GROUP BY 1, 2 ORDER BY 1, 2",
    )
}
