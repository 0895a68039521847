//! Per-job error listeners: listener plugins and webhooks.
//!
//! One task reads the event bus; each delivery runs in its own task under
//! a bound, with a timeout, so a listener that fails or hangs is logged
//! and contained: it never blocks the scheduler or other listeners.
//! Listener plugins run in the slow lane (`lane.rs`), at most
//! `MAX_LISTENER_RUNS` at once, outside the workers' bound and CPU: a
//! listener that computes for its whole timeout delays other deliveries,
//! never a run. Webhooks only wait on the network; they run on the
//! scheduler's runtime, 64 at once. Deliveries are best effort: they are
//! not persisted, and a host that stops mid-delivery does not redeliver.

use super::Inner;
use crate::event::{Event, RunEvent};
use crate::job::Listener;
use crate::plugin::World;
use crate::runtime::{EventKind, JobEvent, Limits, Outcome, timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, broadcast};

/// Webhook deliveries in progress at once.
const MAX_WEBHOOKS: usize = 64;
/// How long a listener plugin may run for one event.
const LISTENER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one webhook attempt may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Webhook attempts per event, with 0.5 s then 1 s between them.
const WEBHOOK_ATTEMPTS: u32 = 3;

pub(super) async fn dispatch(inner: Arc<Inner>, mut rx: broadcast::Receiver<Event>) {
    let http = match reqwest::Client::builder().timeout(WEBHOOK_TIMEOUT).build() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; webhook listeners are disabled");
            None
        }
    };
    let webhooks = Arc::new(Semaphore::new(MAX_WEBHOOKS));
    loop {
        let event = tokio::select! {
            r = rx.recv() => r,
            () = inner.stop_runs.cancelled() => return,
        };
        let event = match event {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "error listeners fell behind; {n} events were not delivered"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let (kind, run) = match &event {
            Event::RunFailed(e) => (EventKind::RunFailed, e),
            Event::RunMissed(e) => (EventKind::RunMissed, e),
            _ => continue,
        };
        let listeners = inner
            .lock()
            .jobs
            .get(run.job_id.as_str())
            .map(|e| e.job.listeners.clone())
            .unwrap_or_default();
        for listener in listeners {
            match listener {
                Listener::Plugin(name) => {
                    let inner2 = inner.clone();
                    let run = run.clone();
                    let deliver = async move { deliver_plugin(&inner2, &name, kind, &run).await };
                    // Waiting for a slot holds the bus back; past its
                    // capacity events are dropped and counted (above).
                    let Some((lane, permit)) = inner.lanes.listener_slot().await else {
                        return;
                    };
                    lane.spawn(async move {
                        deliver.await;
                        drop(permit);
                    });
                }
                Listener::Webhook(url) => {
                    let Ok(permit) = webhooks.clone().acquire_owned().await else {
                        return;
                    };
                    let http = http.clone();
                    let event = event.clone();
                    tokio::spawn(async move {
                        match http {
                            Some(http) => deliver_webhook(&http, &url, &event).await,
                            None => tracing::warn!(url, "webhook listener skipped: no HTTP client"),
                        }
                        drop(permit);
                    });
                }
            }
        }
    }
}

async fn deliver_plugin(inner: &Inner, name: &str, kind: EventKind, run: &RunEvent) {
    let Some(plugin) = inner.plugins.get(name) else {
        tracing::warn!(listener = name, job = %run.job_id, "listener plugin is not loaded; event not delivered");
        return;
    };
    if plugin.world() != World::Listener {
        tracing::warn!(
            listener = name,
            "plugin does not implement world `listener`; event not delivered"
        );
        return;
    }
    let event = JobEvent {
        kind,
        job_id: run.job_id.clone(),
        run_id: Some(run.run_id.clone()),
        scheduled_at: timestamp(run.scheduled_at),
        attempt: run.attempt,
        outcome: run.outcome.clone().unwrap_or_else(|| "missed".into()),
        message: run.message.clone(),
    };
    let limits = Limits {
        timeout: LISTENER_TIMEOUT,
        ..inner.config.default_limits
    };
    let report = inner.runtime.deliver(&plugin, event, &limits).await;
    match report.outcome {
        Outcome::Succeeded { .. } => {
            tracing::info!(listener = name, job = %run.job_id, run = %run.run_id, "listener notified");
        }
        other => tracing::warn!(
            listener = name,
            job = %run.job_id,
            run = %run.run_id,
            outcome = %other.kind(),
            detail = ?other,
            "listener plugin failed"
        ),
    }
}

async fn deliver_webhook(http: &reqwest::Client, url: &str, event: &Event) {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=WEBHOOK_ATTEMPTS {
        match http.post(url).json(event).send().await {
            Ok(resp) if resp.status().is_success() => {
                tracing::info!(
                    url,
                    job = event.job_id().unwrap_or_default(),
                    "webhook notified"
                );
                return;
            }
            Ok(resp) => {
                tracing::warn!(url, attempt, status = %resp.status(), "webhook refused the event")
            }
            Err(e) => tracing::warn!(url, attempt, error = %e, "webhook delivery failed"),
        }
        if attempt < WEBHOOK_ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    tracing::error!(
        url,
        job = event.job_id().unwrap_or_default(),
        "webhook gave up after {WEBHOOK_ATTEMPTS} attempts"
    );
}
