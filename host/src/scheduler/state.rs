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
    pub(super) incarnation: Arc<str>,
    pub(super) next_run: Option<DateTime<Utc>>,
    pub(super) paused: bool,
    /// Taken off the queue at a fire because its plugin was missing;
    /// requeued at `next_run` when the plugin is loaded.
    pub(super) held: bool,
    pub(super) generation: u64,
    pub(super) in_flight: u32,
    /// Catch-up runs (fires missed while down, with `coalesce = false`)
    /// recorded pending and waiting for a slot under `max_instances`: they
    /// run one after another instead of being skipped as overlapping.
    pub(super) queued: VecDeque<RunRecord>,
    pub(super) finished_since_prune: u32,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Keyed by a shared id: the queue's entries point at the same bytes.
    pub(super) jobs: HashMap<Arc<str>, JobEntry>,
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
}

impl State {
    /// The job `run` belongs to: the same id *and* incarnation, so a run
    /// of a deleted job never acts on a new job that took its id.
    pub(crate) fn entry_for(&mut self, run: &RunRecord) -> Option<&mut JobEntry> {
        self.jobs
            .get_mut(run.job_id.as_str())
            .filter(|e| *e.incarnation == *run.incarnation)
    }

    /// `run` no longer holds one of its job's `max_instances` slots (it
    /// ended, or will not start).
    pub(crate) fn run_ended(&mut self, run: &RunRecord) {
        if let Some(entry) = self.entry_for(run) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
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
            .filter(|e| *e.incarnation == *run.incarnation)
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
