//! Every host executes (issue 11): on a store several hosts share, the
//! leader records fires as pending rows and each host claims what it has
//! workers and plugins for ([`crate::store::JobStore::claim`]); the leader
//! also records the runs of hosts that stopped as interrupted, so they are
//! retried per their job's policy on a host that is alive.

use super::{Inner, execute};
use crate::event::Event;
use crate::store::{RunRecord, RunStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// Most runs claimed in one round (one short transaction).
const MAX_CLAIM: usize = 256;

/// How often a host looks for runs to claim without being woken (NOTIFY
/// wakes it at once; this is the fallback, and what finds retries whose
/// delay has passed).
const CLAIM_POLL: Duration = Duration::from_secs(1);

/// How often the leader looks for runs of hosts that stopped.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Claims and starts runs while this host has free workers, until the
/// scheduler stops firing.
pub(super) async fn claim_loop(inner: Arc<Inner>) {
    let notices = inner.store.run_notices();
    let mut health = inner.store.health().subscribe();
    loop {
        let mut full = false;
        if health.borrow_and_update().is_writable() {
            full = claim_round(&inner).await;
        }
        if full {
            continue; // more may be waiting
        }
        let notified = async {
            match &notices {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = notified => {}
            () = inner.claim_wake.notified() => {}
            () = tokio::time::sleep(CLAIM_POLL) => {}
            () = inner.stop_firing.cancelled() => return,
        }
    }
}

/// One claim; true when it took as many runs as it had workers for.
async fn claim_round(inner: &Arc<Inner>) -> bool {
    let mut permits: Vec<OwnedSemaphorePermit> = Vec::new();
    while permits.len() < MAX_CLAIM {
        match inner.workers.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    if permits.is_empty() {
        return false;
    }
    let plugins: Vec<String> = inner
        .plugins
        .loaded()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    let wanted = permits.len();
    let claimed = match inner
        .store
        .claim(&inner.config.host_name, &plugins, wanted)
        .await
    {
        Ok(runs) => runs,
        Err(err) => {
            tracing::debug!(error = %err, "could not claim runs");
            return false;
        }
    };
    let (runs, skipped): (Vec<RunRecord>, Vec<RunRecord>) = claimed
        .into_iter()
        .partition(|r| r.status == RunStatus::Running);
    let now = inner.clock.now();
    for run in skipped {
        // Fires that found their job's max_instances runs going.
        let note = run.note.clone();
        tracing::warn!(job = %run.job_id, scheduled_at = %run.scheduled_at, status = "skipped", "{}", note.as_deref().unwrap_or(""));
        inner
            .events
            .publish(Event::RunSkipped(execute::run_event(&run, now, None, note)));
    }
    let full = runs.len() == wanted;
    for run in runs {
        let Some(permit) = permits.pop() else { break };
        start_claimed(inner, run, permit).await;
    }
    full
}

/// Starts a run this host claimed (recorded running on it by the claim).
async fn start_claimed(inner: &Arc<Inner>, mut run: RunRecord, permit: OwnedSemaphorePermit) {
    if inner.lock().entry_for(&run).is_none() {
        // A job another host added moments ago, not synced here yet.
        match inner.store.job(&run.job_id).await {
            Ok(record) => {
                let generation = inner
                    .lock()
                    .jobs
                    .get(run.job_id.as_str())
                    .map(|e| e.generation);
                super::reload::apply(inner, &run.job_id, record, generation);
            }
            Err(err) => {
                tracing::warn!(job = %run.job_id, error = %err, "could not read the job of a claimed run");
            }
        }
    }
    let plugin = inner
        .lock()
        .entry_for(&run)
        .and_then(|e| inner.plugins.get(&e.job.spec.plugin));
    if let Some(plugin) = &plugin {
        run.plugin_hash = Some(plugin.hash().as_str().to_owned());
    }
    let now = inner.clock.now();
    inner
        .events
        .publish(Event::RunStarted(execute::run_event(&run, now, None, None)));
    // With its job gone or its plugin unloaded since the claim, the run is
    // recorded (missed, or dropped with its job) by the executor's lookup.
    execute::spawn_started(inner.clone(), run, permit);
}

/// The leader's sweep: runs of hosts that stopped heartbeating are
/// recorded interrupted and retried per their job's policy.
pub(super) async fn sweep_loop(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = inner.stop_firing.cancelled() => return,
        }
        if !inner.store.leadership().get().is_leader() {
            continue;
        }
        let runs = match inner.store.sweep_stopped_hosts().await {
            Ok(runs) => runs,
            Err(err) => {
                tracing::debug!(error = %err, "could not look for runs of stopped hosts");
                continue;
            }
        };
        for run in runs {
            let Some(job) = inner.lock().entry_for(&run).map(|e| e.job.clone()) else {
                continue;
            };
            let note = run.note.clone();
            tracing::warn!(job = %run.job_id, run = %run.run_id, host = run.host.as_deref().unwrap_or(""), "{}", note.as_deref().unwrap_or("interrupted"));
            let now = inner.clock.now();
            execute::finish(&inner, &job, run, execute::End::Recorded, note, now).await;
        }
    }
}
