//! On a store of its own, the starts of runs recorded pending are written
//! in batches.
//!
//! A run is recorded pending when no worker and no place ahead of one was
//! free at its fire (most runs of a big burst), or when it was asked for
//! (run now, retries, chains). It may start only once its start is on
//! record. One task takes as many waiting runs as places ahead of the
//! workers have freed ([`Inner::recorded_ahead`], and for runs of quick
//! jobs [`Inner::recorded_ahead_quick`]), records them running in
//! one write, and hands each to a task that waits for a worker. Before,
//! every such run had a task and a write of its own waiting for one place
//! (a third write per run in a burst, after its fire's and before its
//! end's; docs/BENCHMARKS.md, "Aligned bursts").

use super::Inner;
use super::execute;
use super::queue::Due;
use crate::store::{RunRecord, RunStatus, StoreError, Write};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// Runs recorded pending, oldest first, waiting for their start to be
/// written, each with whether its job's last run was quick (then it may
/// take one of [`Inner::recorded_ahead_quick`]'s places).
#[derive(Debug, Default)]
pub(super) struct Starts {
    waiting: Mutex<VecDeque<(RunRecord, bool)>>,
    wake: Notify,
}

impl Starts {
    /// Queues `run` (recorded pending) for a start.
    pub(super) fn push(&self, run: RunRecord, quick: bool) {
        self.lock().push_back((run, quick));
        self.wake.notify_one();
    }

    /// Whether no run waits for its start to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(RunRecord, bool)>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts waiting runs until the scheduler stops firing. Runs still
/// waiting then stay pending in the store and run after the next start.
pub(super) async fn start_loop(inner: Arc<Inner>) {
    loop {
        let woken = inner.starts.wake.notified();
        let Some(front_quick) = inner.starts.lock().front().map(|(_, quick)| *quick) else {
            tokio::select! {
                () = woken => continue,
                () = inner.stop_firing.cancelled() => return,
            }
        };
        let first = tokio::select! {
            p = inner.recorded_ahead.clone().acquire_owned() => p,
            p = inner.recorded_ahead_quick.clone().acquire_owned(), if front_quick => p,
            () = inner.stop_firing.cancelled() => return,
        };
        let Ok(first) = first else { return };
        // As many as have places, in order (only this task takes runs off
        // the list, so it still holds at least one).
        let (runs, places) = {
            let mut waiting = inner.starts.lock();
            let mut places = vec![first];
            while let Some((_, quick)) = waiting.get(places.len()) {
                match inner.place_ahead(*quick) {
                    Some(place) => places.push(place),
                    None => break,
                }
            }
            let runs: Vec<RunRecord> = waiting.drain(..places.len()).map(|(run, _)| run).collect();
            (runs, places)
        };
        start_batch(&inner, runs, places).await;
        // Places of runs that did not start (job gone, store unwritable)
        // were given back: the ends waiting for starts may go (ends.rs).
        inner.ends.maybe_quiet(&inner);
    }
}

/// Records `runs` running, each with its place ahead, in one write, then
/// starts each as a worker frees.
async fn start_batch(inner: &Arc<Inner>, runs: Vec<RunRecord>, places: Vec<OwnedSemaphorePermit>) {
    if inner.stop_firing.is_cancelled() {
        return;
    }
    let now = inner.clock.now();
    let mut ready = Vec::with_capacity(runs.len());
    for (mut run, place) in runs.into_iter().zip(places) {
        // Its job deleted, or its plugin gone (then recorded missed).
        let Some((_, plugin)) = execute::lookup(inner, &run).await else {
            continue;
        };
        run.status = RunStatus::Running;
        run.started_at = Some(now);
        run.plugin_hash = Some(plugin.hash().as_str().to_owned());
        run.host = Some(inner.config.host_name.clone());
        ready.push((run, place));
    }
    if ready.is_empty() {
        return;
    }
    let writes = ready
        .iter()
        .map(|(run, _)| Write::Run(run.clone()))
        .collect();
    match inner.store.write(writes).await {
        Ok(_) => {}
        Err(StoreError::Unwritable(reason)) => {
            // The storage failed: the runs go back on the timer's queue,
            // pending as their rows still say, keeping their slots; the
            // timer takes them again once the store can be written.
            tracing::warn!(
                runs = ready.len(),
                reason,
                "could not record runs' starts; they wait until the store can be written"
            );
            let mut state = inner.lock();
            for (mut run, place) in ready {
                drop(place);
                run.status = RunStatus::Pending;
                run.started_at = None;
                run.plugin_hash = None;
                run.host = None;
                state.queue.push(run.due_at, Due::Run(Box::new(run)));
            }
            return;
        }
        Err(err) => {
            tracing::error!(runs = ready.len(), error = %err, "could not record runs' starts; not running them");
            for (run, _) in &ready {
                execute::release(inner, run);
            }
            return;
        }
    }
    for (run, place) in ready {
        execute::spawn_ahead(inner.clone(), run, place);
    }
}
