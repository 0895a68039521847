//! The one writer thread: every change to the file goes through it, grouped
//! into few transactions, and it keeps the WAL bounded.
//!
//! Whatever is queued is applied in one transaction (each command in its
//! own savepoint only when one fails, so one failing command does not undo
//! the others) and each caller is answered once the transaction is
//! committed. A caller never waits longer than one commit, and under load
//! one fsync-free commit carries hundreds of writes.
//!
//! ## The WAL
//! SQLite appends every commit to the `-wal` file and only starts it over
//! when a checkpoint has copied *all* of it into the database and no reader
//! still uses it; the file is never shrunk unless `journal_size_limit` says
//! so. Checkpoints running beside a busy writer never catch up (the writer
//! appends while they copy), and readers pin frames, so with only those
//! the WAL grew to 622 MB in a minute at 1,000 runs/s, and to 6 GB with
//! the API being read (issue 10). Here:
//! - a background connection copies frames with PASSIVE checkpoints
//!   (never blocking anyone), so what is left to copy stays small;
//! - the writer itself runs a PASSIVE checkpoint between groups at most
//!   every [`CHECKPOINT_EVERY`], right after a background pass has ended
//!   ([`Passes`]): no write is in flight then, so it completes, and the
//!   next commit starts the WAL over and cuts the file to [`WAL_LIMIT`]
//!   (`journal_size_limit`). Every write waits while it runs, so it must
//!   find little to do: a checkpoint syncs the WAL, copies and syncs the
//!   database, and what it syncs is everything written since the last
//!   sync. Once a second and on its own clock it took 55-340 ms at 1,000
//!   runs/s spread over the second (and the WAL passed [`WAL_LIMIT`]
//!   between, so most were TRUNCATE checkpoints), which was the whole
//!   lateness tail of the spread-phase bench (p99 95-343 ms at 1,000/s,
//!   378-472 ms at 10,000/s); every 100 ms right after a background pass
//!   it takes 1-5 ms at 1,000/s and 8-35 ms at 10,000/s (docs/BENCHMARKS.md,
//!   "The writer's checkpoints"). While writes queue up for the writer (a
//!   burst) it checkpoints only every [`BACKLOG_CHECKPOINT_EVERY`];
//! - when the file still passes [`WAL_LIMIT`] (readers kept it from
//!   starting over), the writer runs a TRUNCATE checkpoint, waiting at
//!   most [`CHECKPOINT_WAIT`] for readers (API reads are single short
//!   statements);
//! - after [`IDLE_AFTER`] without writes, and at [`Cmd::Close`], a TRUNCATE
//!   checkpoint empties the file.
//!
//! ## Storage failures
//! A group that fails because of the storage (disk full, read-only file
//! system: [`StoreError::Unwritable`]) marks the store unwritable in its
//! [`HealthCell`]. While it is unwritable the writer probes every
//! [`IDLE_AFTER`] (free space, a one-row write and a checkpoint), and only
//! the probe marks it writable again, so the outage ends by itself once
//! space returns and does not flap while the disk stays nearly full. SQLite rolls a failed commit back whole,
//! so nothing half-written is left in the file.

use super::{backend, kv, runs};
pub(super) use crate::store::prepared::Prepared;
use crate::store::{HealthCell, JobRecord, KvError, StoreError, Write, Written};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Most commands grouped into one transaction.
const MAX_GROUP: usize = 1024;

/// How often the writer checkpoints while writes come in: often, so each
/// finds little to copy and sync, and the WAL starts over before it grows
/// past [`WAL_LIMIT`] (at 10,000 runs/s spread over the second the file
/// stayed at 17 MB; see the module docs).
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// How often the writer checkpoints while writes queue up for it (groups
/// of [`BACKLOG_GROUP`] or more, as in a burst of fires): rarely, since
/// every queued write waits for the checkpoint, and once the backlog is
/// gone the background passes have left little to sync.
const BACKLOG_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A group of this many writes means writes are queueing up for the writer
/// (a fire, a start or an end is one write; a burst's chunk of fires alone
/// is up to 256).
const BACKLOG_GROUP: usize = 128;

/// How recent a background pass must be for the writer's checkpoint to
/// follow it (see [`Passes`]).
const JUST_ENDED: Duration = Duration::from_millis(20);

/// The WAL file's size past which the writer insists on a truncating
/// checkpoint; also `journal_size_limit`, the size the file is cut to
/// whenever the WAL starts over.
pub(super) const WAL_LIMIT: u64 = 32 << 20;

/// How long a truncating checkpoint waits for readers before giving up
/// until the next try (writes queue meanwhile, so this stays short).
const CHECKPOINT_WAIT: Duration = Duration::from_millis(100);

/// How long a TRUNCATE checkpoint that met another checkpoint sleeps before
/// trying again (see [`Checkpoints::truncate`]).
const TRUNCATE_RETRY_AFTER: Duration = Duration::from_millis(2);

/// Without writes for this long, the WAL is emptied.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// How long the closing checkpoint may wait for readers.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The answer to an async caller.
pub(super) type Reply = oneshot::Sender<Result<Written, StoreError>>;

/// The answer to a kv call (a guest's host import, which is synchronous).
pub(super) type KvReply = mpsc::SyncSender<Result<(), KvError>>;

/// A change for the writer thread.
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
    /// Store a calendar (its spec JSON), or remove it (`None`).
    Calendar(String, Option<String>, Reply),
    /// Append rows to the audit log.
    Audit(Vec<crate::store::AuditRecord>, Reply),
    /// Remove audit rows made before this instant (ms).
    PruneAudit(i64, Reply),
    /// Empty the WAL now (clean shutdown).
    Close(Reply),
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

/// When the background checkpointer last finished a pass: the writer
/// checkpoints right after one, when little is left to copy and sync (the
/// pass synced the rest), and only when none ended lately for four
/// [`CHECKPOINT_EVERY`] (the pass failing, or hardly any writes) whatever
/// is left.
#[derive(Debug)]
pub(super) struct Passes {
    origin: Instant,
    /// Microseconds from `origin` to the end of the last pass; 0 for none.
    ended_us: AtomicU64,
}

impl Passes {
    pub(super) fn new() -> Self {
        Self {
            origin: Instant::now(),
            ended_us: AtomicU64::new(0),
        }
    }

    /// Called by the background checkpointer after each pass.
    pub(super) fn ended(&self) {
        let us = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.ended_us.store(us.max(1), Ordering::Release);
    }

    /// Whether a pass ended within `within` of now.
    fn just_ended(&self, within: Duration) -> bool {
        let us = self.ended_us.load(Ordering::Acquire);
        us != 0
            && self
                .origin
                .elapsed()
                .saturating_sub(Duration::from_micros(us))
                <= within
    }
}

/// Keeps the WAL bounded (see the module docs).
struct Checkpoints {
    wal: PathBuf,
    last: Instant,
    /// Writes since the WAL was last emptied.
    dirty: bool,
    passes: Arc<Passes>,
}

impl Checkpoints {
    fn wal_size(&self) -> u64 {
        std::fs::metadata(&self.wal).map_or(0, |m| m.len())
    }

    /// After a commit: a PASSIVE checkpoint every [`CHECKPOINT_EVERY`] once
    /// a background pass has just ended (see [`Passes`]), a TRUNCATE one
    /// when the file has passed [`WAL_LIMIT`].
    fn after_commit(&mut self, conn: &Connection, backlog: bool) {
        self.dirty = true;
        let since = self.last.elapsed();
        if since < CHECKPOINT_EVERY
            || (backlog && since < BACKLOG_CHECKPOINT_EVERY)
            || (!self.passes.just_ended(JUST_ENDED) && since < CHECKPOINT_EVERY * 4)
        {
            return;
        }
        self.last = Instant::now();
        if self.wal_size() > WAL_LIMIT {
            if self.truncate(conn, CHECKPOINT_WAIT) {
                return;
            }
            tracing::debug!(
                wal_bytes = self.wal_size(),
                "readers kept the WAL from being truncated; retrying in a second"
            );
        }
        checkpoint(conn, "PASSIVE");
    }

    /// When no write came for [`IDLE_AFTER`].
    fn idle(&mut self, conn: &Connection) {
        if self.dirty && self.truncate(conn, CHECKPOINT_WAIT) {
            self.dirty = false;
        }
    }

    /// A TRUNCATE checkpoint, waiting up to `wait` for readers; whether it
    /// emptied the WAL.
    ///
    /// SQLite runs one checkpoint at a time and does not wait for another
    /// (the background pass) with the busy handler: a checkpoint that meets
    /// one gives up at once, saying busy. Passes take milliseconds, so the
    /// TRUNCATE is tried again until `wait` is spent; without that, a clean
    /// stop that met a pass would leave the WAL behind, blaming readers.
    fn truncate(&mut self, conn: &Connection, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let done = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = conn.busy_timeout(left);
            if checkpoint(conn, "TRUNCATE") {
                break true;
            }
            if Instant::now() + TRUNCATE_RETRY_AFTER >= deadline {
                break false;
            }
            std::thread::sleep(TRUNCATE_RETRY_AFTER);
        };
        let _ = conn.busy_timeout(super::BUSY_TIMEOUT);
        self.last = Instant::now();
        if done {
            self.dirty = false;
        }
        done
    }
}

/// Runs `PRAGMA wal_checkpoint(MODE)`; whether every frame was copied
/// (and, for TRUNCATE, the file emptied).
fn checkpoint(conn: &Connection, mode: &str) -> bool {
    match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    }) {
        Ok((busy, log, copied)) => busy == 0 && log == copied,
        Err(e) => {
            tracing::warn!(error = %e, mode, "WAL checkpoint failed; will retry");
            false
        }
    }
}

pub(super) fn writer_loop(
    mut conn: Connection,
    rx: &mpsc::Receiver<Cmd>,
    wal: PathBuf,
    health: &HealthCell,
    passes: Arc<Passes>,
) {
    let dir = wal
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut last_probe = Instant::now();
    let mut checkpoints = Checkpoints {
        wal,
        last: Instant::now(),
        dirty: true,
        passes,
    };
    loop {
        let first = match rx.recv_timeout(IDLE_AFTER) {
            Ok(cmd) => cmd,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if health.get().is_writable() {
                    checkpoints.idle(&conn);
                } else {
                    probe(&mut conn, health, &dir);
                    last_probe = Instant::now();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut cmds = Vec::new();
        let mut close = None;
        let mut next = Some(first);
        while let Some(cmd) = next {
            match cmd {
                // Applied after the writes queued before it.
                Cmd::Close(reply) => {
                    close = Some(reply);
                    break;
                }
                cmd => cmds.push(cmd),
            }
            next = if cmds.len() < MAX_GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !cmds.is_empty() {
            // Writes, not commands: a burst's fires come in batches.
            let group: usize = cmds
                .iter()
                .map(|c| match c {
                    Cmd::Batch(writes, _) => writes.len(),
                    _ => 1,
                })
                .sum();
            let results = apply_group(&mut conn, &cmds);
            note_health(health, &results);
            // Writes that keep coming (kv, the API) must not keep the
            // probe from running: it alone ends an outage.
            if !health.get().is_writable() && last_probe.elapsed() >= IDLE_AFTER {
                probe(&mut conn, health, &dir);
                last_probe = Instant::now();
            }
            for (cmd, result) in cmds.into_iter().zip(results) {
                answer(cmd, result);
            }
            checkpoints.after_commit(&conn, group >= BACKLOG_GROUP);
        }
        if let Some(reply) = close {
            let result = if checkpoints.truncate(&conn, CLOSE_WAIT) {
                Ok(Written::default())
            } else {
                Err(StoreError::Backend(
                    "could not empty the WAL: readers still use it".into(),
                ))
            };
            let _ = reply.send(result);
        }
    }
    // Every handle is gone: leave no WAL behind.
    checkpoints.truncate(&conn, CLOSE_WAIT);
}

/// Updates the store's health from a group's results: a storage failure
/// makes it unwritable. Only the probe makes it writable again: on a full
/// disk a small write can still fit (into WAL or free pages the file
/// already has), and taking that for recovery would resume firing only to
/// fail again, flapping for as long as the disk stays full.
fn note_health(health: &HealthCell, results: &[Result<Done, StoreError>]) {
    let unwritable = results.iter().find_map(|r| match r {
        Err(StoreError::Unwritable(reason)) => Some(reason),
        _ => None,
    });
    if let Some(reason) = unwritable {
        health.unwritable(reason);
    }
}

/// Free space the database's file system must have before the store is
/// called writable again after an outage. The gap between failing (no
/// space) and resuming (this much) keeps the host from flapping between
/// the two on a disk that is nearly full: each resumption would start runs
/// whose results then wait for space.
pub(super) const RESUME_FREE_BYTES: u64 = 4 << 20;

/// While the store is unwritable: enough free space on the file system
/// (see [`RESUME_FREE_BYTES`]), one small write, and a checkpoint (which
/// must be able to grow the database file for the WAL to start over).
/// Success ends the outage.
fn probe(conn: &mut Connection, health: &HealthCell, dir: &Path) {
    if let Some(free) = free_bytes(dir).filter(|f| *f < RESUME_FREE_BYTES) {
        health.unwritable(&format!(
            "the file system holding the database has {free} bytes free; writing resumes \
             at {RESUME_FREE_BYTES}"
        ));
        return;
    }
    let result = (|| -> Result<(), StoreError> {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO store_probe (id, at) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            params![ms(Utc::now())],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(backend)
    })();
    match result {
        Ok(()) => health.writable(),
        Err(StoreError::Unwritable(reason)) => health.unwritable(&reason),
        Err(e) => tracing::warn!(error = %e, "store probe failed"),
    }
}

/// Bytes free to unprivileged writers on the file system holding `dir`;
/// `None` where that cannot be read (then only the probe's write decides).
fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let s = rustix::fs::statvfs(dir).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        None
    }
}

fn answer(cmd: Cmd, result: Result<Done, StoreError>) {
    // A caller may have given up (shutdown); nothing to tell.
    match cmd {
        Cmd::Insert(_, _, r)
        | Cmd::Update(_, r)
        | Cmd::Delete(_, r)
        | Cmd::Batch(_, r)
        | Cmd::Calendar(_, _, r)
        | Cmd::Audit(_, r)
        | Cmd::PruneAudit(_, r)
        | Cmd::Close(r) => {
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

/// Applies every command in one transaction. Optimistically without
/// savepoints (thousands a second cost real CPU on the one writer thread);
/// if any command fails, the transaction is rolled back and the group
/// replayed with a savepoint per command, so only the failing ones fail.
fn apply_group(conn: &mut Connection, cmds: &[Cmd]) -> Vec<Result<Done, StoreError>> {
    let fail_all = |e: StoreError| cmds.iter().map(|_| Err(e.clone())).collect();
    let fast = (|| -> Result<Vec<Done>, StoreError> {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let done = cmds
            .iter()
            .map(|cmd| apply(&tx, cmd))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(backend)?;
        Ok(done)
    })();
    if let Ok(done) = fast {
        return done.into_iter().map(Ok).collect();
    }
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(backend(e)),
    };
    let mut results = Vec::with_capacity(cmds.len());
    for cmd in cmds {
        let result = match tx.savepoint() {
            Ok(sp) => match apply(&sp, cmd) {
                Ok(done) => sp.commit().map(|()| done).map_err(backend),
                Err(e) => Err(e), // dropping the savepoint rolls it back
            },
            Err(e) => Err(backend(e)),
        };
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(backend(e)),
    }
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn apply(conn: &Connection, cmd: &Cmd) -> Result<Done, StoreError> {
    match cmd {
        Cmd::Insert(job, replace, _) => {
            let spec = serde_json::to_string(&job.spec).map_err(backend)?;
            let sql = if *replace {
                // The replaced row's pause note: the reason given, and its
                // `failures_from` unless a new one is given (see
                // `JobStore::insert_job`).
                "INSERT OR REPLACE INTO jobs (id, spec, created_at, next_run_time, paused, incarnation, paused_reason, failures_from) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT ?7 FROM jobs WHERE id = ?1), \
                 (SELECT coalesce(?8, failures_from) FROM jobs WHERE id = ?1))"
            } else {
                "INSERT INTO jobs (id, spec, created_at, next_run_time, paused, incarnation, paused_reason, failures_from) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            };
            // Cached: adding thousands of jobs at once (`PUT /jobs`, a jobs
            // file) prepared this statement for each (a tenth of the
            // host's time in a profile of 100,000 added).
            conn.prepare_cached(sql)
                .and_then(|mut s| {
                    s.execute(params![
                        job.spec.id,
                        spec,
                        ms(job.created_at),
                        job.next_run_time.map(ms),
                        job.paused,
                        job.incarnation,
                        job.paused_reason.as_ref().filter(|_| *replace),
                        job.failures_from.filter(|_| *replace).map(ms)
                    ])
                })
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::Duplicate(job.spec.id.clone())
                    }
                    e => backend(e),
                })?;
        }
        Cmd::Update(job, _) => {
            let spec = serde_json::to_string(&job.spec).map_err(backend)?;
            let n = conn
                .prepare_cached(
                    "UPDATE jobs SET spec = ?2, created_at = ?3, next_run_time = ?4, paused = ?5, incarnation = ?6, \
                     paused_reason = CASE WHEN ?5 THEN paused_reason ELSE NULL END WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![job.spec.id, spec, ms(job.created_at), job.next_run_time.map(ms), job.paused, job.incarnation])
                })
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(job.spec.id.clone()));
            }
        }
        Cmd::Calendar(name, spec, _) => {
            match spec {
                Some(spec) => conn.execute(
                    "INSERT OR REPLACE INTO calendars (name, spec, updated_at) VALUES (?1, ?2, ?3)",
                    params![name, spec, ms(Utc::now())],
                ),
                None => conn.execute("DELETE FROM calendars WHERE name = ?1", params![name]),
            }
            .map_err(backend)?;
        }
        Cmd::Delete(id, _) => {
            let n = conn
                .execute("DELETE FROM jobs WHERE id = ?1", params![id])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(id.clone()));
            }
            conn.execute("DELETE FROM runs WHERE job_id = ?1", params![id])
                .map_err(backend)?;
            kv::delete_job(conn, id)?;
        }
        Cmd::Batch(writes, _) => {
            let mut written = Written::default();
            for w in writes {
                match w {
                    Prepared::Run { run, outcome, logs } => {
                        runs::insert(conn, run, outcome.as_deref(), logs)?;
                    }
                    Prepared::End {
                        run,
                        outcome,
                        logs,
                        retry,
                    } => {
                        if !runs::end(conn, run, outcome.as_deref(), logs, retry.as_deref())? {
                            written.refused.insert(run.run_id.clone());
                        }
                    }
                    Prepared::Other(w) => apply_write(conn, w, &mut written)?,
                }
            }
            return Ok(Done::Wrote(written));
        }
        Cmd::KvSet {
            job,
            key,
            value,
            quota,
            ..
        } => return kv::set(conn, job, key, value, *quota),
        Cmd::KvDelete { job, key, .. } => kv::delete(conn, job, key)?,
        Cmd::Audit(records, _) => super::audit::insert(conn, records)?,
        Cmd::PruneAudit(cutoff, _) => super::audit::prune(conn, *cutoff)?,
        Cmd::Close(_) => {}
    }
    Ok(Done::Applied)
}

fn apply_write(conn: &Connection, w: &Write, written: &mut Written) -> Result<(), StoreError> {
    match w {
        Write::Run(r) => {
            let (outcome, logs) = crate::store::prepared::encode(r)?;
            runs::insert(conn, r, outcome.as_deref(), &logs)?;
        }
        Write::End { run, retry } => {
            let (outcome, logs) = crate::store::prepared::encode(run)?;
            if !runs::end(conn, run, outcome.as_deref(), &logs, retry.as_deref())? {
                written.refused.insert(run.run_id.clone());
            }
        }
        Write::Fire {
            job_id,
            incarnation,
            from,
            next,
            runs: rows,
        } => {
            // The compare-and-set: the fire's rows go in only if the job
            // still had this fire next (nothing is written otherwise, so
            // no savepoint is needed).
            let moved = conn
                .prepare_cached(
                    "UPDATE jobs SET next_run_time = ?3
                     WHERE id = ?1 AND incarnation = ?2 AND next_run_time IS ?4",
                )
                .and_then(|mut s| s.execute(params![job_id, incarnation, next.map(ms), ms(*from)]))
                .map_err(backend)?;
            if moved == 0 {
                written.stale.push(job_id.clone());
                written
                    .refused
                    .extend(rows.iter().map(|r| r.run_id.clone()));
                return Ok(());
            }
            for r in rows {
                let (outcome, logs) = crate::store::prepared::encode(r)?;
                if !runs::insert_fire(conn, r, outcome.as_deref(), &logs)? {
                    written.refused.insert(r.run_id.clone());
                }
            }
        }
        Write::NextRun { job_id, next } => {
            conn.prepare_cached("UPDATE jobs SET next_run_time = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![job_id, next.map(ms)]))
                .map_err(backend)?;
        }
        Write::Paused { job_id, paused } => {
            conn.prepare_cached("UPDATE jobs SET paused = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![job_id, paused]))
                .map_err(backend)?;
        }
        Write::AutoPause {
            job_id,
            incarnation,
            reason,
            run_id,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE jobs SET paused = 1, next_run_time = NULL, paused_reason = ?3 \
                     WHERE id = ?1 AND incarnation = ?2 AND NOT paused",
                )
                .and_then(|mut s| s.execute(params![job_id, incarnation, reason]))
                .map_err(backend)?;
            if n == 0 {
                written.refused.insert(run_id.clone());
            }
        }
        Write::PauseNote {
            job_id,
            reason,
            failures_from,
        } => {
            conn.prepare_cached(
                "UPDATE jobs SET paused_reason = ?2, failures_from = coalesce(?3, failures_from) WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![job_id, reason, failures_from.map(ms)]))
            .map_err(backend)?;
        }
        Write::Prune {
            job_id,
            keep,
            older_than,
        } => {
            conn.prepare_cached(
                "DELETE FROM runs WHERE job_id = ?1 AND status NOT IN ('pending', 'running')
                   AND (coalesce(ended_at, scheduled_at) < ?3
                        OR run_id NOT IN (SELECT run_id FROM runs WHERE job_id = ?1
                                          ORDER BY run_id DESC LIMIT ?2))",
            )
            .and_then(|mut s| s.execute(params![job_id, keep, older_than.map_or(i64::MIN, ms)]))
            .map_err(backend)?;
        }
    }
    Ok(())
}
