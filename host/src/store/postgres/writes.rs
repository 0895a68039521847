//! The statements the writer runs, and what each command turns into: a
//! few single statements with their parameters, so a group of commands
//! can be sent to the server back to back (pipelined) in one transaction.

use super::conn::classify;
use super::sets::{RUNS_SET_INSERT, fire_set};
pub(super) use crate::store::prepared::Prepared;
use crate::store::{JobRecord, KvError, RunRecord, StoreError, Write, Written};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

/// The answer to an async caller.
pub(super) type Reply = oneshot::Sender<Result<Written, StoreError>>;

/// The answer to a kv call (a guest's host import, which is synchronous).
pub(super) type KvReply = std::sync::mpsc::SyncSender<Result<(), KvError>>;

/// A change for the writer task.
pub(super) enum Cmd {
    Insert(Box<JobRecord>, bool, Reply),
    Update(Box<JobRecord>, Reply),
    Delete(String, Reply),
    Batch(Vec<Prepared>, Reply),
    /// Set a kv entry unless the job's quota would be passed.
    KvSet {
        job: String,
        key: String,
        value: Vec<u8>,
        quota: u64,
        reply: KvReply,
    },
    /// Remove a kv entry.
    KvDelete {
        job: String,
        key: String,
        reply: KvReply,
    },
}

/// What a command that did not fail did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Done {
    /// It was applied.
    Applied,
    /// A batch was applied; what its fires did.
    Wrote(Written),
    /// A kv set refused: the job's data would pass its quota.
    OverQuota,
}

/// A time as the store keeps it: whole milliseconds, as SQLite's integer
/// columns do, so a time reads back the same from either backend.
pub(super) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The writer's statements, prepared once per connection.
#[derive(Clone)]
pub(super) struct Statements {
    insert_job: Statement,
    replace_job: Statement,
    update_job: Statement,
    delete_job: Statement,
    run: Statement,
    run_end: Statement,
    retry_after: Statement,
    fire_cas: Statement,
    fire_run: Statement,
    pub(super) fire_cas_set: Statement,
    pub(super) fire_runs_set: Statement,
    pub(super) run_end_set: Statement,
    next_run: Statement,
    paused: Statement,
    pause_note: Statement,
    auto_pause: Statement,
    prune: Statement,
    kv_set: Statement,
    kv_delete: Statement,
    fence: Statement,
    pub(super) probe: Statement,
}

/// A run row's insert, up to its `WHERE` ($1 to $20; `fire_run` and
/// `retry_after` add $21).
const RUN_INSERT: &str = "INSERT INTO runs (run_id, job_id, attempt, scheduled_at, due_at, status,
      started_at, ended_at, outcome_kind, outcome, fuel, logs, plugin_hash, note, args, log_count,
      incarnation, origin, host, parent_run_id)
    SELECT $1::text, $2::text, $3::bigint, $4::timestamptz, $5::timestamptz, $6::text,
      $7::timestamptz, $8::timestamptz, $9::text, $10::text::json, $11::bigint, $12::text::json,
      $13::text, $14::text, $15::text, $16::bigint, $17::text, $18::text, $19::text, $20::text";

/// What a run's end ([`Write::End`]) does to an existing row: replaces
/// its outcome only while it is running on the end's host.
const END_UPSERT: &str = "ON CONFLICT (run_id) DO UPDATE SET
      status = excluded.status, started_at = excluded.started_at,
      ended_at = excluded.ended_at, outcome_kind = excluded.outcome_kind,
      outcome = excluded.outcome, fuel = excluded.fuel, logs = excluded.logs,
      plugin_hash = excluded.plugin_hash, note = excluded.note,
      args = excluded.args, log_count = excluded.log_count
    WHERE runs.status = 'running' AND runs.host IS NOT DISTINCT FROM excluded.host";

const JOB_COLUMNS: &str = "(id, spec, created_at, next_run_time, paused, incarnation, plugin,
    max_instances)
    VALUES ($1::text, $2::text, $3::timestamptz, $4::timestamptz, $5::boolean, $6::text, $7::text,
      $8::integer)";

impl Statements {
    /// Prepares them on `client`.
    ///
    /// # Errors
    /// As [`classify`] says, when the server refuses one.
    pub(super) async fn prepare(client: &Client) -> Result<Self, StoreError> {
        let p = |sql: String| async move { client.prepare(&sql).await.map_err(classify) };
        Ok(Self {
            insert_job: p(format!(
                "INSERT INTO jobs {JOB_COLUMNS} ON CONFLICT (id) DO NOTHING"
            ))
            .await?,
            replace_job: p(format!(
                "INSERT INTO jobs {JOB_COLUMNS} ON CONFLICT (id) DO UPDATE SET
                   spec = excluded.spec, created_at = excluded.created_at,
                   next_run_time = excluded.next_run_time, paused = excluded.paused,
                   incarnation = excluded.incarnation, plugin = excluded.plugin,
                   max_instances = excluded.max_instances,
                   paused_reason = $9::text,
                   failures_from = coalesce($10::timestamptz, jobs.failures_from)"
            ))
            .await?,
            update_job: p("UPDATE jobs SET spec = $2::text, created_at = $3::timestamptz,
                             next_run_time = $4::timestamptz, paused = $5::boolean,
                             incarnation = $6::text, plugin = $7::text,
                             max_instances = $8::integer,
                             paused_reason = CASE WHEN $5::boolean THEN paused_reason ELSE NULL END
                           WHERE id = $1::text"
                .into())
            .await?,
            // One statement, so the job's row decides for all: runs and kv
            // go only when the job was there (as SQLite's NotFound returns
            // before touching them).
            delete_job: p("WITH here AS (SELECT 1 FROM jobs WHERE id = $1::text),
                                r AS (DELETE FROM runs WHERE job_id = $1::text
                                        AND EXISTS (SELECT 1 FROM here)),
                                k AS (DELETE FROM kv WHERE job_id = $1::text
                                        AND EXISTS (SELECT 1 FROM here)),
                                u AS (DELETE FROM kv_usage WHERE job_id = $1::text
                                        AND EXISTS (SELECT 1 FROM here))
                           DELETE FROM jobs WHERE id = $1::text"
                .into())
            .await?,
            // Insert or replace, only while the run's incarnation is its
            // job's live one (see Write::Run).
            run: p(format!(
                "{RUN_INSERT}
                    WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $2::text AND incarnation = $17::text)
                    ON CONFLICT (run_id) DO UPDATE SET
                      job_id = excluded.job_id, attempt = excluded.attempt,
                      scheduled_at = excluded.scheduled_at, due_at = excluded.due_at,
                      status = excluded.status, started_at = excluded.started_at,
                      ended_at = excluded.ended_at, outcome_kind = excluded.outcome_kind,
                      outcome = excluded.outcome, fuel = excluded.fuel, logs = excluded.logs,
                      plugin_hash = excluded.plugin_hash, note = excluded.note,
                      args = excluded.args, log_count = excluded.log_count,
                      incarnation = excluded.incarnation, origin = excluded.origin,
                      host = excluded.host, parent_run_id = excluded.parent_run_id"
            ))
            .await?,
            // A run's end (Write::End): as `run`, but an existing row is
            // replaced only while it is running on the run's host.
            run_end: p(format!(
                "{RUN_INSERT}
                    WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $2::text AND incarnation = $17::text)
                    {END_UPSERT}"
            ))
            .await?,
            // The retry of an end: only if this transaction wrote that end
            // (the ended run's row version, $21, is this transaction's),
            // and never over a taken run id or fire key.
            retry_after: p(format!(
                "{RUN_INSERT}
                    WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $2::text AND incarnation = $17::text)
                      AND EXISTS (SELECT 1 FROM runs WHERE run_id = $21::text
                                    AND xmin = xid(pg_current_xact_id()))
                    ON CONFLICT DO NOTHING"
            ))
            .await?,
            // A fire's compare-and-set (Write::Fire), marking the job as
            // fired by this transaction.
            fire_cas: p("UPDATE jobs SET next_run_time = $3::timestamptz,
                           fired_by = pg_current_xact_id()
                         WHERE id = $1::text AND incarnation = $2::text
                           AND next_run_time IS NOT DISTINCT FROM $4::timestamptz"
                .into())
            .await?,
            // A fire's row: only if this transaction's compare-and-set for
            // the fire moved the job to the fire's next time ($21), and
            // never a second row for a fire key (nor a second run id).
            fire_run: p(format!(
                "{RUN_INSERT}
                    WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $2::text AND incarnation = $17::text
                                    AND fired_by = pg_current_xact_id()
                                    AND next_run_time IS NOT DISTINCT FROM $21::timestamptz)
                    ON CONFLICT DO NOTHING"
            ))
            .await?,
            // A batch's fires at once (one statement, not one per fire):
            // the compare-and-sets of jobs that appear once in the batch,
            // returning the jobs moved.
            fire_cas_set: p("UPDATE jobs SET next_run_time = f.next, fired_by = pg_current_xact_id()
                               FROM unnest($1::text[], $2::text[], $3::timestamptz[],
                                           $4::timestamptz[]) AS f(id, inc, next, prev)
                              WHERE jobs.id = f.id AND jobs.incarnation = f.inc
                                AND jobs.next_run_time IS NOT DISTINCT FROM f.prev
                          RETURNING jobs.id"
                .into())
            .await?,
            // ... and their rows, as fire_run does one, returning those
            // inserted.
            fire_runs_set: p(format!(
                "{RUNS_SET_INSERT}
                    WHERE EXISTS (SELECT 1 FROM jobs WHERE id = r.job_id AND incarnation = r.inc
                                    AND fired_by = pg_current_xact_id()
                                    AND next_run_time IS NOT DISTINCT FROM r.next)
                    ON CONFLICT DO NOTHING
                 RETURNING run_id"
            ))
            .await?,
            // Many runs' ends at once (as run_end does one; $21 unused),
            // returning those recorded.
            run_end_set: p(format!(
                "{RUNS_SET_INSERT}
                    WHERE EXISTS (SELECT 1 FROM jobs WHERE id = r.job_id AND incarnation = r.inc)
                    {END_UPSERT}
                 RETURNING run_id"
            ))
            .await?,
            next_run: p(
                "UPDATE jobs SET next_run_time = $2::timestamptz WHERE id = $1::text".into(),
            )
            .await?,
            paused: p("UPDATE jobs SET paused = $2::boolean WHERE id = $1::text".into()).await?,
            auto_pause: p("UPDATE jobs SET paused = true, next_run_time = NULL,
                             paused_reason = $3::text
                           WHERE id = $1::text AND incarnation = $2::text AND NOT paused"
                .into())
            .await?,
            pause_note: p("UPDATE jobs SET paused_reason = $2::text,
                             failures_from = coalesce($3::timestamptz, failures_from)
                           WHERE id = $1::text"
                .into())
            .await?,
            prune: p("DELETE FROM runs WHERE job_id = $1::text
                        AND status NOT IN ('pending', 'running')
                        AND (coalesce(ended_at, scheduled_at) < $3::timestamptz
                             OR run_id NOT IN (SELECT run_id FROM runs WHERE job_id = $1::text
                                               ORDER BY run_id DESC
                                               LIMIT $2::bigint))"
                .into())
            .await?,
            // The quota check reads the job's running total (locked, for
            // when several hosts share the database) and the size of the
            // entry being replaced; the trigger keeps the total.
            kv_set: p("WITH usage AS (SELECT bytes FROM kv_usage WHERE job_id = $1::text FOR UPDATE),
                            old AS (SELECT octet_length(key) + octet_length(value) AS size
                                    FROM kv WHERE job_id = $1::text AND key = $2::bytea)
                       INSERT INTO kv (job_id, key, value)
                       SELECT $1::text, $2::bytea, $3::bytea
                       WHERE coalesce((SELECT bytes FROM usage), 0)
                             - coalesce((SELECT size FROM old), 0)
                             + octet_length($2::bytea) + octet_length($3::bytea) <= $4::bigint
                       ON CONFLICT (job_id, key) DO UPDATE SET value = excluded.value"
                .into())
            .await?,
            kv_delete: p("DELETE FROM kv WHERE job_id = $1::text AND key = $2::bytea".into())
                .await?,
            fence: p(super::lease::FENCE_SQL.into()).await?,
            probe: p("INSERT INTO store_probe (id, at) VALUES (1, now())
                      ON CONFLICT (id) DO UPDATE SET at = excluded.at"
                .into())
            .await?,
        })
    }
}

/// A statement's parameters, owned so a whole group's can live while its
/// statements are in flight together.
pub(super) type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// What a statement's row count means for its command.
#[derive(Debug)]
pub(super) enum Expect {
    /// Nothing: any count is fine.
    Any,
    /// 0 rows: the job exists ([`StoreError::Duplicate`]).
    Inserted(String),
    /// 0 rows: no such job ([`StoreError::NotFound`]).
    Found(String),
    /// 0 rows: the run's job incarnation is gone; the run is dropped (and
    /// logged), not an error.
    Run(usize),
    /// 0 rows: over the quota ([`Done::OverQuota`]).
    UnderQuota,
    /// A fire's compare-and-set: 0 rows, the fire is stale (its job and
    /// run ids go to [`crate::store::Written`]).
    FireCas { job: String, runs: Vec<String> },
    /// A run's end: 0 rows, its row was no longer running on its host
    /// (or its job is gone); reported refused.
    End(String),
    /// A batch's compare-and-sets at once ([`Statements::fire_cas_set`]):
    /// the fires (job, its rows' ids) whose job is not among the ids
    /// returned are stale.
    FireCasSet(Vec<(String, Vec<String>)>),
    /// A batch's fire rows at once: those whose id is not returned were
    /// not inserted.
    FireRunsSet(Vec<String>),
    /// Runs' ends of several commands at once ([`super::sets::end_set`]): read by the
    /// writer itself.
    EndSet,
    /// A fire's row: 0 rows, it was not inserted (its fire key was taken,
    /// or its fire was stale).
    FireRun(String),
}

impl Expect {
    /// Whether the statement returns the ids it wrote (read as rows).
    pub(super) fn returns_ids(&self) -> bool {
        matches!(
            self,
            Self::FireCasSet(_) | Self::FireRunsSet(_) | Self::EndSet
        )
    }
}

/// One statement of a command.
pub(super) struct Step {
    pub(super) statement: Statement,
    pub(super) params: Params,
    pub(super) expect: Expect,
}

/// Text for a `text` column: PostgreSQL's text cannot hold NUL, which
/// SQLite's can. Only free-form notes could carry one (JSON columns
/// escape it); it is shown as U+FFFD rather than failing the write.
pub(super) fn text(s: Option<&String>) -> Option<String> {
    s.map(|s| s.replace('\0', "\u{fffd}"))
}

fn job_params(job: &JobRecord) -> Result<Params, StoreError> {
    let spec = serde_json::to_string(&job.spec).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(vec![
        Box::new(job.spec.id.clone()),
        Box::new(spec),
        Box::new(ms(job.created_at)),
        Box::new(job.next_run_time.map(ms)),
        Box::new(job.paused),
        Box::new(job.incarnation.clone()),
        Box::new(job.spec.plugin.clone()),
        Box::new(i32::try_from(job.spec.max_instances).unwrap_or(i32::MAX)),
    ])
}

pub(super) fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The steps of one command.
///
/// # Errors
/// [`StoreError::Backend`] when a job's spec cannot be encoded.
pub(super) fn steps(
    st: &Statements,
    cmd: &Cmd,
    fence: &super::lease::Fence,
) -> Result<Vec<Step>, StoreError> {
    let step = |statement: &Statement, params: Params, expect| Step {
        statement: statement.clone(),
        params,
        expect,
    };
    Ok(match cmd {
        Cmd::Insert(job, replace, _) => {
            let mut params = job_params(job)?;
            let (statement, expect) = if *replace {
                // What the replaced row's pause note becomes (see
                // `JobStore::insert_job`).
                params.push(Box::new(text(job.paused_reason.as_ref())));
                params.push(Box::new(job.failures_from.map(ms)));
                (&st.replace_job, Expect::Any)
            } else {
                (&st.insert_job, Expect::Inserted(job.spec.id.clone()))
            };
            vec![step(statement, params, expect)]
        }
        Cmd::Update(job, _) => vec![step(
            &st.update_job,
            job_params(job)?,
            Expect::Found(job.spec.id.clone()),
        )],
        Cmd::Delete(id, _) => vec![step(
            &st.delete_job,
            vec![Box::new(id.clone())],
            Expect::Found(id.clone()),
        )],
        Cmd::Batch(writes, _) => {
            let mut all = Vec::with_capacity(writes.len() + 1);
            let fires = writes
                .iter()
                .any(|w| matches!(w, Prepared::Other(Write::Fire { .. })));
            if fires && let Some(term) = fence.term()? {
                // First, so nothing of a fenced batch is written.
                all.push(step(&st.fence, vec![Box::new(term)], Expect::Any));
            }
            let (set, in_set) = fire_set(st, writes)?;
            all.extend(set);
            for (i, w) in writes.iter().enumerate() {
                if in_set.contains(&i) {
                    continue;
                }
                match w {
                    Prepared::Run { run, outcome, logs } => all.push(step(
                        &st.run,
                        run_params(run, outcome.clone(), logs.clone()),
                        Expect::Run(i),
                    )),
                    Prepared::End {
                        run,
                        outcome,
                        logs,
                        retry,
                    } => end(
                        st,
                        run,
                        outcome.clone(),
                        logs.clone(),
                        retry.as_deref(),
                        &mut all,
                    )?,
                    Prepared::Other(w) => other(st, w, i, &mut all)?,
                }
            }
            all
        }
        Cmd::KvSet {
            job,
            key,
            value,
            quota,
            ..
        } => vec![step(
            &st.kv_set,
            vec![
                Box::new(job.clone()),
                Box::new(key.as_bytes().to_vec()),
                Box::new(value.clone()),
                Box::new(clamp(*quota)),
            ],
            Expect::UnderQuota,
        )],
        Cmd::KvDelete { job, key, .. } => vec![step(
            &st.kv_delete,
            vec![Box::new(job.clone()), Box::new(key.as_bytes().to_vec())],
            Expect::Any,
        )],
    })
}

fn run_params(r: &RunRecord, outcome: Option<String>, logs: String) -> Params {
    vec![
        Box::new(r.run_id.clone()),
        Box::new(r.job_id.clone()),
        Box::new(i64::from(r.attempt)),
        Box::new(ms(r.scheduled_at)),
        Box::new(ms(r.due_at)),
        Box::new(r.status.as_str()),
        Box::new(r.started_at.map(ms)),
        Box::new(r.ended_at.map(ms)),
        Box::new(r.outcome.as_ref().map(|o| o.kind().as_str())),
        Box::new(outcome),
        Box::new(clamp(r.fuel)),
        Box::new(logs),
        Box::new(r.plugin_hash.clone()),
        Box::new(text(r.note.as_ref())),
        Box::new(r.args.clone()),
        Box::new(clamp(r.logs.len() as u64)),
        Box::new(r.incarnation.clone()),
        Box::new(r.origin.as_str()),
        Box::new(text(r.host.as_ref())),
        Box::new(r.parent_run_id.clone()),
    ]
}

/// The steps of a run's end and its retry.
fn end(
    st: &Statements,
    run: &RunRecord,
    outcome: Option<String>,
    logs: String,
    retry: Option<&RunRecord>,
    out: &mut Vec<Step>,
) -> Result<(), StoreError> {
    out.push(Step {
        statement: st.run_end.clone(),
        params: run_params(run, outcome, logs),
        expect: Expect::End(run.run_id.clone()),
    });
    if let Some(retry) = retry {
        let (outcome, logs) = crate::store::prepared::encode(retry)?;
        let mut params = run_params(retry, outcome, logs);
        params.push(Box::new(run.run_id.clone()));
        out.push(Step {
            statement: st.retry_after.clone(),
            params,
            expect: Expect::Any,
        });
    }
    Ok(())
}

/// A write passed through unencoded, as steps added to `out`; `i` is its
/// place in its batch.
fn other(st: &Statements, w: &Write, i: usize, out: &mut Vec<Step>) -> Result<(), StoreError> {
    let (statement, params): (&Statement, Params) = match w {
        Write::Run(run) => {
            let (outcome, logs) = crate::store::prepared::encode(run)?;
            out.push(Step {
                statement: st.run.clone(),
                params: run_params(run, outcome, logs),
                expect: Expect::Run(i),
            });
            return Ok(());
        }
        Write::End { run, retry } => {
            let (outcome, logs) = crate::store::prepared::encode(run)?;
            return end(st, run, outcome, logs, retry.as_deref(), out);
        }
        Write::AutoPause {
            job_id,
            incarnation,
            reason,
            run_id,
        } => {
            out.push(Step {
                statement: st.auto_pause.clone(),
                params: vec![
                    Box::new(job_id.clone()),
                    Box::new(incarnation.clone()),
                    Box::new(reason.clone()),
                ],
                // 0 rows: paused already, reported refused as an end is.
                expect: Expect::End(run_id.clone()),
            });
            return Ok(());
        }
        Write::Fire {
            job_id,
            incarnation,
            from,
            next,
            runs,
        } => {
            out.push(Step {
                statement: st.fire_cas.clone(),
                params: vec![
                    Box::new(job_id.clone()),
                    Box::new(incarnation.clone()),
                    Box::new(next.map(ms)),
                    Box::new(ms(*from)),
                ],
                expect: Expect::FireCas {
                    job: job_id.clone(),
                    runs: runs.iter().map(|r| r.run_id.clone()).collect(),
                },
            });
            for run in runs {
                let (outcome, logs) = crate::store::prepared::encode(run)?;
                let mut params = run_params(run, outcome, logs);
                params.push(Box::new(next.map(ms)));
                out.push(Step {
                    statement: st.fire_run.clone(),
                    params,
                    expect: Expect::FireRun(run.run_id.clone()),
                });
            }
            return Ok(());
        }
        Write::NextRun { job_id, next } => (
            &st.next_run,
            vec![Box::new(job_id.clone()), Box::new(next.map(ms))],
        ),
        Write::Paused { job_id, paused } => (
            &st.paused,
            vec![Box::new(job_id.clone()), Box::new(*paused)],
        ),
        Write::PauseNote {
            job_id,
            reason,
            failures_from,
        } => (
            &st.pause_note,
            vec![
                Box::new(job_id.clone()),
                Box::new(text(reason.as_ref())),
                Box::new(failures_from.map(ms)),
            ],
        ),
        Write::Prune {
            job_id,
            keep,
            older_than,
        } => (
            &st.prune,
            vec![
                Box::new(job_id.clone()),
                Box::new(i64::from(*keep)),
                Box::new(older_than.map(ms)),
            ],
        ),
    };
    out.push(Step {
        statement: statement.clone(),
        params,
        expect: Expect::Any,
    });
    Ok(())
}
