//! The scheduler's in-memory job table: each job's next fire, pause,
//! runs in flight and queued catch-up runs, and the due-queue. The store
//! holds the same facts durably; this is what the timer decides from.

use super::queue::{Due, DueQueue};
use crate::job::Job;
use crate::store::{BrokenJob, RunRecord};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct JobEntry {
    pub(super) job: Arc<Job>,
    /// The job's life under this id (see [`JobInfo::incarnation`]).
    pub(super) incarnation: super::incarnation::Incarnation,
    pub(super) next_run: Option<DateTime<Utc>>,
    pub(super) paused: bool,
    /// Taken off the queue at a fire because its plugin was missing;
    /// requeued at `next_run` when the plugin is loaded.
    pub(super) held: bool,
    pub(super) generation: u64,
    pub(super) in_flight: u32,
    /// How many of `in_flight` are backfill runs: a live fire that finds
    /// the job at its `max_instances` because of them waits for them
    /// rather than being skipped or stopping them (backfill.rs).
    pub(super) backfilling: u32,
    /// Catch-up runs (fires missed while down, with `coalesce = false`)
    /// recorded pending and waiting for a slot under `max_instances`: they
    /// run one after another instead of being skipped as overlapping.
    pub(super) queued: Queued,
    pub(super) finished_since_prune: u32,
    /// Its last run's guest took under [`super::QUICK_RUN`]: its next run
    /// may be recorded running further ahead of the workers (fire.rs).
    pub(super) quick: bool,
    /// Its last run was a runaway (demoted, or started slow and as hot or
    /// long): its next run starts in the slow lane (lane.rs).
    pub(super) slow_start: bool,
}

/// A job's queued catch-up runs: none for nearly every job, so it takes
/// one pointer until it holds some (a `VecDeque` took 32 bytes of every
/// job's entry, and the job table holds about two entries' room per job).
#[derive(Debug, Default)]
#[expect(
    clippy::box_collection,
    reason = "the box is the point: one pointer in every entry, the deque only for the few jobs with queued runs"
)]
pub(crate) struct Queued(Option<Box<VecDeque<RunRecord>>>);

impl Queued {
    pub(crate) fn push_back(&mut self, run: RunRecord) {
        self.0.get_or_insert_default().push_back(run);
    }

    pub(crate) fn pop_front(&mut self) -> Option<RunRecord> {
        let queue = self.0.as_mut()?;
        let run = queue.pop_front();
        if queue.is_empty() {
            self.0 = None;
        }
        run
    }

    pub(crate) fn retain(&mut self, keep: impl FnMut(&RunRecord) -> bool) {
        if let Some(queue) = &mut self.0 {
            queue.retain(keep);
            if queue.is_empty() {
                self.0 = None;
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len())
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Keyed by a shared id: the queue's entries point at the same bytes.
    /// Entries are boxed: the table keeps room for up to twice its jobs
    /// (its capacity is a power of two, at most 7/8 full), and an empty
    /// slot then costs a pointer rather than a whole entry (at a million
    /// jobs, about 55 bytes per job less).
    pub(super) jobs: HashMap<Arc<str>, Box<JobEntry>>,
    pub(super) queue: DueQueue,
    pub(super) broken: Vec<BrokenJob>,
    /// On a shared store, runs this host claimed ahead of a free worker
    /// (claim.rs).
    pub(super) ahead: super::claim::Ahead,
    /// On a shared store, the ids of the runs this host claimed and has
    /// not finished (started or claimed ahead): a run recorded running on
    /// this host but not here was claimed by a claim whose answer was
    /// lost, and is given back (claim.rs).
    pub(super) mine: std::collections::HashSet<String>,
    /// Every run going on this host, by run id, with its stop token: a
    /// fire of an `overlap = "cancel-other"` job at its `max_instances`
    /// stops the oldest of that job's (execute.rs), and a stop by request
    /// stops one by id (stop.rs).
    pub(super) cancellable: HashMap<String, Cancellable>,
}

/// A run going on this host, which a later fire (`overlap =
/// "cancel-other"`) or a request may stop.
#[derive(Debug)]
pub(crate) struct Cancellable {
    pub(super) job_id: String,
    pub(super) incarnation: String,
    /// Stops the guest (a child of the host's guest-stop token).
    pub(super) token: tokio_util::sync::CancellationToken,
    /// Set when stopped: the note its run is recorded with.
    pub(super) note: Option<String>,
    /// A backfill run: live fires wait for it rather than stop it.
    pub(super) backfill: bool,
    /// What the guest printed and logged so far.
    pub(super) capture: crate::runtime::Capture,
}

impl State {
    /// The job `run` belongs to: the same id *and* incarnation, so a run
    /// of a deleted job never acts on a new job that took its id.
    pub(crate) fn entry_for(&mut self, run: &RunRecord) -> Option<&mut JobEntry> {
        self.jobs
            .get_mut(run.job_id.as_str())
            .filter(|e| e.incarnation == *run.incarnation)
            .map(|e| &mut **e)
    }

    /// `run` no longer holds one of its job's `max_instances` slots (it
    /// ended, or will not start).
    pub(crate) fn run_ended(&mut self, run: &RunRecord) {
        if let Some(entry) = self.entry_for(run) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if run.origin == crate::store::RunOrigin::Backfill {
                entry.backfilling = entry.backfilling.saturating_sub(1);
            }
        }
    }

    /// Stops the oldest run going of the job `job_id` (of `incarnation`)
    /// that can be stopped and is not stopping already, for the fire at
    /// `fire` (`overlap = "cancel-other"`). False when there was none (a
    /// run between retries, or one that is ending): the fire then waits
    /// for it as under `buffer-one`.
    pub(crate) fn cancel_oldest(
        &mut self,
        job_id: &str,
        incarnation: &str,
        fire: DateTime<Utc>,
    ) -> bool {
        // Run ids are UUID v7: in the order the runs were recorded.
        let oldest = self
            .cancellable
            .iter_mut()
            .filter(|(_, c)| {
                c.job_id == job_id
                    && c.incarnation == incarnation
                    && c.note.is_none()
                    && !c.backfill
            })
            .min_by(|a, b| a.0.cmp(b.0));
        let Some((run_id, c)) = oldest else {
            return false;
        };
        stop_for(run_id, c, fire);
        true
    }

    /// Stops the run `run_id` for the fire at `fire`, if it goes on this
    /// host and can be stopped (a claim on a shared store chose it).
    pub(crate) fn cancel_run(&mut self, run_id: &str, fire: DateTime<Utc>) {
        if let Some(c) = self.cancellable.get_mut(run_id)
            && c.note.is_none()
        {
            stop_for(run_id, c, fire);
        }
    }

    /// Stops the run `run_id` by request, recording it with `note`. False
    /// when it does not go on this host or is stopping already.
    pub(crate) fn stop_by_request(&mut self, run_id: &str, note: &str) -> bool {
        match self.cancellable.get_mut(run_id) {
            Some(c) if c.note.is_none() => {
                tracing::info!(job = %c.job_id, run = %run_id, "{note}");
                c.note = Some(note.to_owned());
                c.token.cancel();
                true
            }
            _ => false,
        }
    }

    /// If `run`'s job has a free slot and catch-up runs queued, puts the
    /// next on the due-queue. True when it did (the caller wakes the
    /// timer). Called once the run before it is recorded and announced,
    /// so catch-up runs follow each other in the history and the events.
    pub(crate) fn start_queued(&mut self, run: &RunRecord) -> bool {
        let State { jobs, queue, .. } = self;
        let Some(entry) = jobs
            .get_mut(run.job_id.as_str())
            .filter(|e| e.incarnation == *run.incarnation)
        else {
            return false;
        };
        if entry.in_flight >= entry.job.spec.max_instances {
            return false;
        }
        let Some(next) = entry.queued.pop_front() else {
            return false;
        };
        entry.in_flight += 1;
        queue.push(next.due_at, Due::Run(Box::new(next)));
        true
    }
}

fn stop_for(run_id: &str, c: &mut Cancellable, fire: DateTime<Utc>) {
    let note = crate::job::cancelled_note(fire);
    tracing::info!(job = %c.job_id, run = %run_id, "{note}");
    c.note = Some(note);
    c.token.cancel();
}
