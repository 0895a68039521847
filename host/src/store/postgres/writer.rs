//! The one writer task: every change goes through it, grouped into few
//! transactions on one connection.
//!
//! Whatever is queued (up to [`MAX_GROUP`] commands) is applied in one
//! transaction whose statements are sent back to back without waiting for
//! each answer (the driver pipelines requests polled together, in the
//! order first polled), so a group of a thousand run rows costs a few
//! round trips, not a thousand. If a statement fails for the data's sake
//! the transaction is rolled back and the group replayed with a savepoint
//! per command, so only the failing commands fail (as SQLite's writer
//! does). Each caller is answered once the transaction is committed.
//!
//! ## Outages
//! A group that fails because the database is unreachable or cannot
//! write ([`StoreError::Unwritable`]: connection lost, server shutting
//! down, disk full, no answer within [`ANSWER_TIMEOUT`]) is not applied at
//! all (one transaction) and marks the store unwritable in its
//! [`HealthCell`]; the scheduler then holds its fires. While unwritable
//! the writer reconnects with a backoff (from [`BACKOFF_MIN`] to
//! [`BACKOFF_MAX`]) and probes every [`TICK`] with a one-row write; the
//! first that works ends the outage. While writable and idle it checks
//! its connection every [`TICK`], so an outage shows in `/healthz` even
//! when nothing is being written.
//!
//! One ambiguity remains, as with any client-server database: a commit
//! whose answer is lost (connection cut after the server received it) is
//! reported as failed though it may have been applied. The scheduler then
//! holds and retakes the fires of that group; the unique fire key of the
//! cluster step (issue 11) makes such a retake a no-op.

use super::conn::{ANSWER_TIMEOUT, classify, connect, mask_password};
use super::sets::{end_set, lone_end};
use super::writes::{Cmd, Done, Expect, Prepared, Statements, Step, steps};
use crate::store::{HealthCell, KvError, StoreError, Written};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config};

/// Most commands grouped into one transaction.
const MAX_GROUP: usize = 1024;

/// How often the idle writer checks its connection, and probes while the
/// store is unwritable.
pub(super) const TICK: Duration = Duration::from_secs(1);

/// First wait before reconnecting after a failed attempt; doubles up to
/// [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A live connection and its prepared statements.
struct Conn {
    client: Client,
    st: Statements,
}

/// The writer's state: its connection (none while the database is
/// unreachable) and the reconnect backoff.
pub(super) struct Writer {
    config: Config,
    url: String,
    conn: Option<Conn>,
    health: HealthCell,
    backoff: Duration,
    next_attempt: Option<Instant>,
    last_error: String,
    fence: std::sync::Arc<super::lease::Fence>,
}

impl Writer {
    /// A writer that connects on first use.
    pub(super) fn new(
        config: Config,
        url: &str,
        health: HealthCell,
        fence: std::sync::Arc<super::lease::Fence>,
    ) -> Self {
        Self {
            fence,
            config,
            url: mask_password(url),
            conn: None,
            health,
            backoff: BACKOFF_MIN,
            next_attempt: None,
            last_error: String::new(),
        }
    }

    /// The connection, (re)opened if needed, unless the last attempt
    /// failed less than the backoff ago (then its error at once, so
    /// commands during an outage fail fast).
    async fn conn(&mut self) -> Result<&mut Conn, StoreError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            if self.next_attempt.is_some_and(|at| Instant::now() < at) {
                return Err(StoreError::Unwritable(self.last_error.clone()));
            }
            let opened = async {
                let client = connect(&self.config).await?;
                let st = tokio::time::timeout(ANSWER_TIMEOUT, Statements::prepare(&client))
                    .await
                    .map_err(|_| timed_out())??;
                Ok::<_, StoreError>(Conn { client, st })
            }
            .await;
            match opened {
                Ok(conn) => {
                    self.backoff = BACKOFF_MIN;
                    self.next_attempt = None;
                    self.conn = Some(conn);
                }
                Err(e) => {
                    let reason = match &e {
                        StoreError::Unwritable(r) | StoreError::Backend(r) => r.clone(),
                        other => other.to_string(),
                    };
                    self.last_error = format!("cannot reach the database {}: {reason}", self.url);
                    self.next_attempt = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    return Err(StoreError::Unwritable(self.last_error.clone()));
                }
            }
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Unwritable(self.last_error.clone()))
    }

    /// After a failure that says the connection is unusable: drop it, so
    /// the next use reconnects.
    fn lost(&mut self, e: &StoreError) {
        if matches!(e, StoreError::Unwritable(_)) {
            self.conn = None;
        }
    }

    /// Applies a group in one transaction; one result per command.
    async fn apply_group(&mut self, cmds: &[Cmd]) -> Vec<Result<Done, StoreError>> {
        let fail_all = |e: &StoreError| cmds.iter().map(|_| Err(e.clone())).collect();
        let st = match self.conn().await {
            Ok(c) => c.st.clone(),
            Err(e) => return fail_all(&e),
        };
        let plans: Vec<Result<Vec<Step>, StoreError>> = cmds
            .iter()
            .map(|cmd| steps(&st, cmd, &self.fence))
            .collect();
        let Some(conn) = self.conn.as_mut() else {
            return fail_all(&StoreError::Unwritable(self.last_error.clone()));
        };
        let fast = tokio::time::timeout(
            ANSWER_TIMEOUT,
            fast_path(&mut conn.client, &st, cmds, &plans),
        )
        .await
        .unwrap_or_else(|_| Err(timed_out()));
        match fast {
            Ok(results) => results,
            Err(e @ StoreError::Unwritable(_)) => {
                self.lost(&e);
                fail_all(&e)
            }
            Err(_) => {
                let slow = tokio::time::timeout(
                    ANSWER_TIMEOUT * 2,
                    slow_path(&mut conn.client, cmds, &plans),
                )
                .await
                .unwrap_or_else(|_| Err(timed_out()));
                match slow {
                    Ok(results) => results,
                    Err(e) => {
                        self.lost(&e);
                        fail_all(&e)
                    }
                }
            }
        }
    }

    /// When nothing came for a [`TICK`]: while writable, check the
    /// connection (a lost one makes the store unwritable at once); while
    /// unwritable, reconnect if due and write the probe row.
    async fn idle(&mut self) {
        let writable = self.health.get().is_writable();
        if writable && self.conn.as_ref().is_some_and(|c| !c.client.is_closed()) {
            let Some(conn) = self.conn.as_ref() else {
                return;
            };
            let ping = tokio::time::timeout(ANSWER_TIMEOUT, conn.client.simple_query("SELECT 1"))
                .await
                .map_err(|_| timed_out())
                .and_then(|r| r.map(|_| ()).map_err(classify));
            if let Err(e @ StoreError::Unwritable(_)) = ping {
                self.lost(&e);
                self.health.unwritable(&unwritable_reason(&e));
            }
            return;
        }
        let probe = async {
            let conn = self.conn().await?;
            let probe = conn.st.probe.clone();
            tokio::time::timeout(ANSWER_TIMEOUT, conn.client.execute(&probe, &[]))
                .await
                .map_err(|_| timed_out())?
                .map_err(classify)
        }
        .await;
        match probe {
            Ok(_) => self.health.writable(),
            Err(e @ StoreError::Unwritable(_)) => {
                self.lost(&e);
                self.health.unwritable(&unwritable_reason(&e));
            }
            Err(e) => tracing::warn!(error = %e, "store probe failed"),
        }
    }
}

fn unwritable_reason(e: &StoreError) -> String {
    match e {
        StoreError::Unwritable(r) => r.clone(),
        other => other.to_string(),
    }
}

fn timed_out() -> StoreError {
    StoreError::Unwritable(format!(
        "no answer from the database within {}s",
        ANSWER_TIMEOUT.as_secs()
    ))
}

/// The writer task: takes what is queued, applies it as one group,
/// answers, and keeps the store's health.
pub(super) async fn writer_loop(mut w: Writer, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    loop {
        let first = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => cmd,
                None => break,
            },
            () = tokio::time::sleep(TICK) => {
                w.idle().await;
                continue;
            }
        };
        let mut cmds = vec![first];
        while cmds.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(cmd) => cmds.push(cmd),
                Err(_) => break,
            }
        }
        let results = w.apply_group(&cmds).await;
        note_health(&w.health, &results);
        for (cmd, result) in cmds.into_iter().zip(results) {
            answer(cmd, result);
        }
    }
}

/// Updates the store's health from a group's results: a storage failure
/// makes it unwritable, any applied command writable.
fn note_health(health: &HealthCell, results: &[Result<Done, StoreError>]) {
    let unwritable = results.iter().find_map(|r| match r {
        Err(StoreError::Unwritable(reason)) => Some(reason),
        _ => None,
    });
    if let Some(reason) = unwritable {
        health.unwritable(reason);
    } else if results.iter().any(Result::is_ok) {
        health.writable();
    }
}

/// What a statement answered: its row count, and the ids it returned
/// when it returns some ([`Expect::returns_ids`]).
struct Answer {
    count: u64,
    ids: Vec<String>,
}

type Pending<'a> = Pin<Box<dyn Future<Output = Result<Answer, tokio_postgres::Error>> + Send + 'a>>;

/// Sends one step on `tx` (a transaction or savepoint): counted, or read
/// for the ids it returns.
fn send<'a>(tx: &'a tokio_postgres::Transaction<'_>, s: &'a Step) -> Pending<'a> {
    let params = s.params.iter().map(|p| &**p as &(dyn ToSql + Sync));
    if s.expect.returns_ids() {
        let rows = tx.query_raw(&s.statement, params);
        Box::pin(async move {
            use futures_util::TryStreamExt as _;
            let ids: Vec<String> = rows
                .await?
                .map_ok(|row| row.get::<_, String>(0))
                .try_collect()
                .await?;
            Ok(Answer {
                count: ids.len() as u64,
                ids,
            })
        })
    } else {
        let count = tx.execute_raw(&s.statement, params);
        Box::pin(async move {
            Ok(Answer {
                count: count.await?,
                ids: Vec::new(),
            })
        })
    }
}

/// Runs every step of every command in one transaction, all sent before
/// any answer is awaited. Fails as a whole on the first error (the
/// transaction is then aborted; the caller replays on the slow path).
///
/// The commands that each record one run's end ([`lone_end`]) share one
/// statement, sent last ([`end_set`]); on the slow path each has its own.
async fn fast_path(
    client: &mut Client,
    st: &Statements,
    cmds: &[Cmd],
    plans: &[Result<Vec<Step>, StoreError>],
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    if let Some(Err(e)) = plans.iter().find(|p| p.is_err()) {
        return Err(e.clone());
    }
    let mut seen = std::collections::HashSet::new();
    let mut merged: Vec<bool> = cmds
        .iter()
        .map(|c| lone_end(c).is_some_and(|r| seen.insert(r.run_id.as_str())))
        .collect();
    if seen.len() < 2 {
        merged.iter_mut().for_each(|m| *m = false);
    }
    let lone: Vec<&Cmd> = cmds
        .iter()
        .zip(&merged)
        .filter(|(_, m)| **m)
        .map(|(c, _)| c)
        .collect();
    let set = (!lone.is_empty()).then(|| end_set(st, &lone));
    let tx = client.transaction().await.map_err(classify)?;
    let all: Vec<&Step> = plans
        .iter()
        .zip(&merged)
        .filter(|(_, m)| !**m)
        .flat_map(|(p, _)| p.iter().flatten())
        .chain(set.iter())
        .collect();
    let mut pending: Vec<Option<Pending<'_>>> = all.iter().map(|s| Some(send(&tx, s))).collect();
    let mut counts: Vec<Option<Result<Answer, tokio_postgres::Error>>> =
        (0..all.len()).map(|_| None).collect();
    // Polled in order on the first pass: the driver sends each request
    // when its future is first polled, so the server runs them in the
    // commands' order. (join_all gives no such promise past 30 futures.)
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (slot, count) in pending.iter_mut().zip(counts.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(r) => {
                        *count = Some(r);
                        *slot = None;
                    }
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    drop(pending);
    let mut counts: Vec<Result<Answer, tokio_postgres::Error>> =
        counts.into_iter().flatten().collect();
    let ended: std::collections::HashSet<String> = match set {
        Some(_) => counts
            .pop()
            .ok_or_else(|| StoreError::Backend("a statement went unanswered".into()))?
            .map_err(classify)?
            .ids
            .into_iter()
            .collect(),
        None => std::collections::HashSet::new(),
    };
    let mut counts = counts.into_iter();
    let mut results = Vec::with_capacity(cmds.len());
    for ((cmd, plan), merged) in cmds.iter().zip(plans.iter().flatten()).zip(&merged) {
        if *merged {
            let mut written = Written::default();
            if let Some(run) = lone_end(cmd)
                && !ended.contains(&run.run_id)
            {
                // Its row no longer ran on its host, or its job is gone.
                written.refused.insert(run.run_id.clone());
            }
            results.push(Ok(Done::Wrote(written)));
            continue;
        }
        let mut done = Ok(Done::Applied);
        let mut written = Written::default();
        for step in plan {
            let answer = counts
                .next()
                .ok_or_else(|| StoreError::Backend("a statement went unanswered".into()))?
                .map_err(classify)?;
            let meant = meaning(cmd, step, &answer, &mut written);
            if done.is_ok() && !matches!(meant, Ok(Done::Applied)) {
                done = meant;
            }
        }
        results.push(batch_done(cmd, done, written));
    }
    tx.commit().await.map_err(classify)?;
    Ok(results)
}

/// Replays a group with a savepoint per command, so only the commands
/// that fail fail; one transaction all the same.
async fn slow_path(
    client: &mut Client,
    cmds: &[Cmd],
    plans: &[Result<Vec<Step>, StoreError>],
) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let mut tx = client.transaction().await.map_err(classify)?;
    let mut results = Vec::with_capacity(cmds.len());
    for (cmd, plan) in cmds.iter().zip(plans) {
        let plan = match plan {
            Ok(plan) => plan,
            Err(e) => {
                results.push(Err(e.clone()));
                continue;
            }
        };
        let sp = tx.savepoint("cmd").await.map_err(classify)?;
        let mut done = Ok(Done::Applied);
        let mut written = Written::default();
        for step in plan {
            match send(&sp, step).await {
                Ok(answer) => {
                    let meant = meaning(cmd, step, &answer, &mut written);
                    if done.is_ok() && !matches!(meant, Ok(Done::Applied)) {
                        done = meant;
                    }
                }
                Err(e) => {
                    done = Err(classify(e));
                    break;
                }
            }
        }
        match &done {
            Err(e @ StoreError::Unwritable(_)) => return Err(e.clone()),
            Err(_) => sp.rollback().await.map_err(classify)?,
            Ok(_) => sp.commit().await.map_err(classify)?,
        }
        results.push(batch_done(cmd, done, written));
    }
    tx.commit().await.map_err(classify)?;
    Ok(results)
}

/// A batch's result carries what its fires did.
fn batch_done(
    cmd: &Cmd,
    done: Result<Done, StoreError>,
    written: Written,
) -> Result<Done, StoreError> {
    match (cmd, done) {
        (Cmd::Batch(..), Ok(Done::Applied)) => Ok(Done::Wrote(written)),
        (_, done) => done,
    }
}

/// What a statement's row count says about its command (a fire's goes
/// into `written`).
fn meaning(
    cmd: &Cmd,
    step: &Step,
    answer: &Answer,
    written: &mut Written,
) -> Result<Done, StoreError> {
    match &step.expect {
        Expect::FireCasSet(fires) => {
            let moved: std::collections::HashSet<&str> =
                answer.ids.iter().map(String::as_str).collect();
            for (job, runs) in fires {
                if !moved.contains(job.as_str()) {
                    written.stale.push(job.clone());
                    written.refused.extend(runs.iter().cloned());
                }
            }
            return Ok(Done::Applied);
        }
        Expect::FireRunsSet(runs) => {
            let inserted: std::collections::HashSet<&str> =
                answer.ids.iter().map(String::as_str).collect();
            written.refused.extend(
                runs.iter()
                    .filter(|r| !inserted.contains(r.as_str()))
                    .cloned(),
            );
            return Ok(Done::Applied);
        }
        _ => {}
    }
    if answer.count > 0 {
        return Ok(Done::Applied);
    }
    match &step.expect {
        Expect::FireCasSet(_) | Expect::FireRunsSet(_) | Expect::EndSet => Ok(Done::Applied),
        Expect::FireCas { job, runs } => {
            written.stale.push(job.clone());
            written.refused.extend(runs.iter().cloned());
            Ok(Done::Applied)
        }
        Expect::FireRun(run_id) | Expect::End(run_id) => {
            written.refused.insert(run_id.clone());
            Ok(Done::Applied)
        }
        Expect::Any => Ok(Done::Applied),
        Expect::Inserted(id) => Err(StoreError::Duplicate(id.clone())),
        Expect::Found(id) => Err(StoreError::NotFound(id.clone())),
        Expect::UnderQuota => Ok(Done::OverQuota),
        Expect::Run(i) => {
            // The run's job incarnation is gone: dropped, and logged.
            if let Cmd::Batch(writes, _) = cmd {
                match writes.get(*i) {
                    Some(Prepared::Run { run, .. }) => crate::store::memory::dropped_run(run),
                    Some(Prepared::Other(crate::store::Write::Run(run))) => {
                        crate::store::memory::dropped_run(run);
                    }
                    _ => {}
                }
            }
            Ok(Done::Applied)
        }
    }
}

fn answer(cmd: Cmd, result: Result<Done, StoreError>) {
    // A caller may have given up (shutdown); nothing to tell.
    match cmd {
        Cmd::Insert(_, _, r) | Cmd::Update(_, r) | Cmd::Delete(_, r) | Cmd::Batch(_, r) => {
            let _ = r.send(result.map(|done| match done {
                Done::Wrote(written) => written,
                _ => Written::default(),
            }));
        }
        Cmd::KvSet { quota, reply, .. } => {
            let _ = reply.send(match result {
                Ok(Done::Applied | Done::Wrote(_)) => Ok(()),
                Ok(Done::OverQuota) => Err(KvError::QuotaExceeded { quota }),
                Err(e) => Err(KvError::Unavailable(e.to_string())),
            });
        }
        Cmd::KvDelete { reply, .. } => {
            let _ = reply.send(
                result
                    .map(|_| ())
                    .map_err(|e| KvError::Unavailable(e.to_string())),
            );
        }
    }
}
