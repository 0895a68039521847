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
use tokio_util::sync::CancellationToken;

/// Most runs claimed in one round (one short transaction).
const MAX_CLAIM: usize = 256;

/// How often a host looks for runs to claim without being woken (NOTIFY
/// wakes it at once; this is the fallback, and what finds retries whose
/// delay has passed).
const CLAIM_POLL: Duration = Duration::from_secs(1);

/// How often a host looks for runs recorded running on it that it does
/// not know of (a claim whose answer was lost: timed out, or its
/// connection reset after the commit).
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// How often the leader looks for runs of hosts that stopped.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Runs claimed ahead of a free worker, in claim order, each with the
/// contact token that was current at its claim (see [`claim_round`]).
pub(super) type Ahead = std::collections::VecDeque<(RunRecord, CancellationToken)>;

/// Claims and starts runs while this host has free workers, until the
/// scheduler stops firing; then gives back the runs claimed ahead.
pub(super) async fn claim_loop(inner: Arc<Inner>) {
    let notices = inner.store.run_notices();
    let mut health = inner.store.health().subscribe();
    let mut reconciled = tokio::time::Instant::now();
    loop {
        if reconciled.elapsed() >= RECONCILE_EVERY {
            // Between rounds: no claim of this host is in flight.
            reconcile(&inner).await;
            reconciled = tokio::time::Instant::now();
        }
        let mut full = false;
        if health.borrow_and_update().is_writable() {
            full = claim_round(&inner).await;
        } else {
            start_ahead(&inner).await;
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
            () = inner.stop_firing.cancelled() => break,
        }
    }
    give_back(&inner).await;
}

/// Starts runs claimed ahead while workers are free.
async fn start_ahead(inner: &Arc<Inner>) {
    loop {
        let Ok(permit) = inner.workers.clone().try_acquire_owned() else {
            return;
        };
        let next = inner.lock().ahead.pop_front();
        let Some((run, claimed_under)) = next else {
            return;
        };
        if claimed_under.is_cancelled() {
            drop(permit);
            abandon(inner, run).await;
        } else {
            start_claimed(inner, run, permit).await;
        }
    }
}

/// One claim; true when it took as many runs as it asked for.
///
/// A host claims for its free workers and, beyond them, up to
/// [`Inner::ahead_limit`] runs to start the moment a worker frees: with
/// short runs a claim per freed worker made a burst of 1,000 fires cost
/// hundreds of claim transactions. Runs claimed ahead are recorded running
/// on this host; the other hosts leave them alone, and the sweep retries
/// them if this host stops.
async fn claim_round(inner: &Arc<Inner>) -> bool {
    start_ahead(inner).await;
    let mut permits: Vec<OwnedSemaphorePermit> = Vec::new();
    while permits.len() < MAX_CLAIM {
        match inner.workers.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    let ahead = inner.lock().ahead.len();
    let room = inner.ahead_limit().saturating_sub(ahead);
    // Claim ahead only in steps worth a transaction.
    let room = if room * 2 < inner.ahead_limit() {
        0
    } else {
        room
    };
    let wanted = (permits.len() + room).min(MAX_CLAIM);
    if wanted == 0 {
        return false;
    }
    let plugins: Vec<String> = inner
        .plugins
        .loaded()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    let under = super::contact::guest_stop(inner);
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
    inner
        .lock()
        .mine
        .extend(runs.iter().map(|r| r.run_id.clone()));
    for run in runs {
        match permits.pop() {
            // Contact lost since the claim was sent: the leader may
            // already have taken these runs for this host's and retried
            // them (a claim's answer held up by a partition).
            Some(_) if under.is_cancelled() => abandon(inner, run).await,
            Some(permit) => start_claimed(inner, run, permit).await,
            None => inner.lock().ahead.push_back((run, under.clone())),
        }
    }
    full
}

/// Gives back the runs recorded running on this host that it does not
/// know of: claimed by a claim whose answer never came (it timed out, or
/// the connection broke after the commit). They were never started.
async fn reconcile(inner: &Arc<Inner>) {
    let me = &inner.config.host_name;
    let recorded = match inner.store.running_on(me).await {
        Ok(ids) => ids,
        Err(err) => {
            tracing::debug!(error = %err, "could not list this host's runs");
            return;
        }
    };
    let orphans: Vec<String> = {
        let state = inner.lock();
        recorded
            .into_iter()
            .filter(|id| !state.mine.contains(id))
            .collect()
    };
    if orphans.is_empty() {
        return;
    }
    match inner.store.give_back(me, &orphans).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            runs = n,
            "runs recorded running on this host by a claim whose answer was lost were never started: given back to pending"
        ),
        Err(err) => tracing::debug!(error = %err, "could not give back orphaned runs"),
    }
}

/// A run claimed ahead whose host lost contact with the database before a
/// worker took it: recorded interrupted (unless the leader's sweep did so
/// first), never started.
async fn abandon(inner: &Arc<Inner>, mut run: RunRecord) {
    // The claim loop runs this: no reconcile can see it unlisted meanwhile.
    inner.lock().mine.remove(&run.run_id);
    let Some(job) = inner.lock().entry_for(&run).map(|e| e.job.clone()) else {
        return;
    };
    let now = inner.clock.now();
    run.status = RunStatus::Interrupted;
    run.ended_at = Some(now);
    run.note = Some(super::contact::NOTE.to_owned());
    let end = execute::End::Ran {
        kind: "interrupted",
        guest_retryable: true,
    };
    let note = run.note.clone();
    execute::finish(inner, &job, run, end, note, now).await;
}

/// At shutdown: the runs claimed ahead go back to pending, for any host.
async fn give_back(inner: &Arc<Inner>) {
    let ahead: Vec<String> = {
        let mut state = inner.lock();
        let ids: Vec<String> = state.ahead.drain(..).map(|(r, _)| r.run_id).collect();
        for id in &ids {
            state.mine.remove(id);
        }
        ids
    };
    if ahead.is_empty() {
        return;
    }
    if let Err(err) = inner.store.give_back(&inner.config.host_name, &ahead).await {
        tracing::warn!(error = %err, "could not give back the runs claimed ahead; the sweep retries them once this host's heartbeat stops");
    }
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
    // With its job gone or its plugin unloaded since the claim, the run is
    // recorded (missed, or dropped with its job) by the executor, which
    // announces its start otherwise.
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

/// Stops the runs of this host that other hosts' claims ask to stop for a
/// fire under `overlap = "cancel-other"` (`RUN_ID FIRE_MS`; requests for
/// runs going elsewhere are ignored), until the runs stop.
pub(super) async fn cancel_loop(
    inner: Arc<Inner>,
    mut requests: tokio::sync::broadcast::Receiver<String>,
) {
    loop {
        let request = tokio::select! {
            r = requests.recv() => r,
            () = inner.stop_runs.cancelled() => return,
        };
        let request = match request {
            Ok(r) => r,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "missed requests to stop runs for cancel-other fires"
                );
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some((run_id, fire)) = request.split_once(' ') else {
            continue;
        };
        if fire == super::stop::STOP_WORD {
            inner
                .lock()
                .stop_by_request(run_id, super::stop::STOPPED_NOTE);
            continue;
        }
        let Some(fire) = fire
            .parse::<i64>()
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
        else {
            continue;
        };
        inner.lock().cancel_run(run_id, fire);
    }
}
