//! Set statements: many rows in one statement (`unnest` of one array per
//! column), for the two writes a burst repeats a thousand times: a batch's
//! fires and a writer group's run ends. A statement per row cost the
//! server more than the runs themselves (docs/BENCHMARKS.md, "The fire
//! path on PostgreSQL").

use super::writes::{Cmd, Expect, Params, Prepared, Statements, Step, clamp, ms, text};
use crate::store::{RunRecord, StoreError, Write};
use chrono::{DateTime, Utc};

/// Many run rows' insert from arrays ($1 to $20 as in `writes::RUN_INSERT`, each
/// an array, and $21 the fire's next time), up to its `WHERE`.
pub(super) const RUNS_SET_INSERT: &str =
    "INSERT INTO runs (run_id, job_id, attempt, scheduled_at, due_at,
      status, started_at, ended_at, outcome_kind, outcome, fuel, logs, plugin_hash, note, args,
      log_count, incarnation, origin, host, parent_run_id)
    SELECT r.run_id, r.job_id, r.attempt, r.scheduled_at, r.due_at, r.status, r.started_at,
      r.ended_at, r.outcome_kind, r.outcome::json, r.fuel, r.logs::json, r.plugin_hash, r.note,
      r.args, r.log_count, r.inc, r.origin, r.host, r.parent
      FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[],
                  $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[],
                  $11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[],
                  $16::bigint[], $17::text[], $18::text[], $19::text[], $20::text[],
                  $21::timestamptz[])
        AS r(run_id, job_id, attempt, scheduled_at, due_at, status, started_at, ended_at,
             outcome_kind, outcome, fuel, logs, plugin_hash, note, args, log_count, inc,
             origin, host, parent, next)";

/// A batch's fires as two set statements ([`Statements::fire_cas_set`]
/// and its rows'), for batches of fires (and run rows) only, the common
/// timer batch: a statement per fire cost the server more than the rest
/// of a burst together. Only a job's first fire in the batch goes in the
/// set (one UPDATE can move a row once); later fires of it, and batches
/// with other writes whose order matters, keep a statement per write.
/// Returns the steps and the indexes of the writes they cover.
pub(super) fn fire_set(
    st: &Statements,
    writes: &[Prepared],
) -> Result<(Vec<Step>, std::collections::HashSet<usize>), StoreError> {
    let mut covered = std::collections::HashSet::new();
    let only_fires_and_runs = writes.iter().all(|w| {
        matches!(
            w,
            Prepared::Run { .. } | Prepared::Other(Write::Fire { .. } | Write::Run(_))
        )
    });
    if !only_fires_and_runs {
        return Ok((Vec::new(), covered));
    }
    let mut jobs = std::collections::HashSet::new();
    let (mut ids, mut incs, mut nexts, mut prevs) = (vec![], vec![], vec![], vec![]);
    let mut fires: Vec<(String, Vec<String>)> = Vec::new();
    let mut rows = RowArrays::default();
    for (i, w) in writes.iter().enumerate() {
        let Prepared::Other(Write::Fire {
            job_id,
            incarnation,
            from,
            next,
            runs,
        }) = w
        else {
            continue;
        };
        if !jobs.insert(job_id.as_str()) {
            continue;
        }
        covered.insert(i);
        ids.push(job_id.clone());
        incs.push(incarnation.clone());
        nexts.push(next.map(ms));
        prevs.push(ms(*from));
        fires.push((
            job_id.clone(),
            runs.iter().map(|r| r.run_id.clone()).collect(),
        ));
        for run in runs {
            rows.push(run, next.map(ms))?;
        }
    }
    if fires.len() < 2 {
        // One fire: the plain statements are as good.
        return Ok((Vec::new(), std::collections::HashSet::new()));
    }
    let run_ids = rows.run_id.clone();
    let mut steps = vec![Step {
        statement: st.fire_cas_set.clone(),
        params: vec![
            Box::new(ids),
            Box::new(incs),
            Box::new(nexts),
            Box::new(prevs),
        ],
        expect: Expect::FireCasSet(fires),
    }];
    if !run_ids.is_empty() {
        steps.push(Step {
            statement: st.fire_runs_set.clone(),
            params: rows.into_params(),
            expect: Expect::FireRunsSet(run_ids),
        });
    }
    Ok((steps, covered))
}

/// Run rows as column arrays, for [`RUNS_SET_INSERT`].
#[derive(Default)]
struct RowArrays {
    run_id: Vec<String>,
    job_id: Vec<String>,
    attempt: Vec<i64>,
    scheduled_at: Vec<DateTime<Utc>>,
    due_at: Vec<DateTime<Utc>>,
    status: Vec<&'static str>,
    started_at: Vec<Option<DateTime<Utc>>>,
    ended_at: Vec<Option<DateTime<Utc>>>,
    outcome_kind: Vec<Option<&'static str>>,
    outcome: Vec<Option<String>>,
    fuel: Vec<i64>,
    logs: Vec<String>,
    plugin_hash: Vec<Option<String>>,
    note: Vec<Option<String>>,
    args: Vec<Option<String>>,
    log_count: Vec<i64>,
    incarnation: Vec<String>,
    origin: Vec<&'static str>,
    host: Vec<Option<String>>,
    parent_run_id: Vec<Option<String>>,
    next: Vec<Option<DateTime<Utc>>>,
}

/// The run whose end a command records alone (one [`Write::End`] without
/// a retry), which may share one statement with others' ([`end_set`]).
pub(super) fn lone_end(cmd: &Cmd) -> Option<&RunRecord> {
    match cmd {
        Cmd::Batch(writes, _) => match writes.as_slice() {
            [
                Prepared::End {
                    run, retry: None, ..
                },
            ] => Some(run),
            _ => None,
        },
        _ => None,
    }
}

/// One statement for the ends of `cmds` (each a [`lone_end`]): a group of
/// finished runs costs the server one statement instead of one each.
pub(super) fn end_set(st: &Statements, cmds: &[&Cmd]) -> Step {
    let mut rows = RowArrays::default();
    for cmd in cmds {
        if let Cmd::Batch(writes, _) = cmd
            && let [
                Prepared::End {
                    run, outcome, logs, ..
                },
            ] = writes.as_slice()
        {
            rows.push_encoded(run, outcome.clone(), logs.clone(), None);
        }
    }
    Step {
        statement: st.run_end_set.clone(),
        params: rows.into_params(),
        expect: Expect::EndSet,
    }
}

impl RowArrays {
    fn push(&mut self, r: &RunRecord, next: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let (outcome, logs) = crate::store::prepared::encode(r)?;
        self.push_encoded(r, outcome, logs, next);
        Ok(())
    }

    fn push_encoded(
        &mut self,
        r: &RunRecord,
        outcome: Option<String>,
        logs: String,
        next: Option<DateTime<Utc>>,
    ) {
        self.run_id.push(r.run_id.clone());
        self.job_id.push(r.job_id.clone());
        self.attempt.push(i64::from(r.attempt));
        self.scheduled_at.push(ms(r.scheduled_at));
        self.due_at.push(ms(r.due_at));
        self.status.push(r.status.as_str());
        self.started_at.push(r.started_at.map(ms));
        self.ended_at.push(r.ended_at.map(ms));
        self.outcome_kind
            .push(r.outcome.as_ref().map(|o| o.kind().as_str()));
        self.outcome.push(outcome);
        self.fuel.push(clamp(r.fuel));
        self.logs.push(logs);
        self.plugin_hash.push(r.plugin_hash.clone());
        self.note.push(text(r.note.as_ref()));
        self.args.push(r.args.clone());
        self.log_count.push(clamp(r.logs.len() as u64));
        self.incarnation.push(r.incarnation.clone());
        self.origin.push(r.origin.as_str());
        self.host.push(text(r.host.as_ref()));
        self.parent_run_id.push(r.parent_run_id.clone());
        self.next.push(next);
    }

    fn into_params(self) -> Params {
        vec![
            Box::new(self.run_id),
            Box::new(self.job_id),
            Box::new(self.attempt),
            Box::new(self.scheduled_at),
            Box::new(self.due_at),
            Box::new(self.status),
            Box::new(self.started_at),
            Box::new(self.ended_at),
            Box::new(self.outcome_kind),
            Box::new(self.outcome),
            Box::new(self.fuel),
            Box::new(self.logs),
            Box::new(self.plugin_hash),
            Box::new(self.note),
            Box::new(self.args),
            Box::new(self.log_count),
            Box::new(self.incarnation),
            Box::new(self.origin),
            Box::new(self.host),
            Box::new(self.parent_run_id),
            Box::new(self.next),
        ]
    }
}
