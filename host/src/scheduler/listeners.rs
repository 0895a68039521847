//! Per-job listeners: listener plugins and webhooks.
//!
//! Each listener hears what its `on` names (by default failed and missed
//! runs; also succeeded runs, recoveries and auto-pauses, issue 13), and a
//! failed run only from its `after_failures`th in a row. A webhook's JSON
//! is the event with `"on"` added, naming which of those it is; a listener
//! plugin gets the WIT `job-event`: a recovery as `run-recovered` with
//! outcome `recovered`, an auto-pause as `job-paused` (about the last
//! failed run) with outcome `paused` and the reason as message. A 0.1.0
//! listener, whose `kind` enum has no case for either, gets them as
//! `run-succeeded` and `run-failed` with the same outcomes (the runtime
//! maps the kinds, `Runtime::deliver`).
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
use crate::event::Event;
use crate::job::{ListenFor, Listener, ListenerTarget};
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

pub(super) async fn dispatch(inner: Arc<Inner>, mut rx: crate::event::EventReceiver) {
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
        let Some(job_id) = event.job_id() else {
            continue;
        };
        if !matches!(
            *event,
            Event::RunFailed(_)
                | Event::RunMissed(_)
                | Event::RunSucceeded(_)
                | Event::JobPaused(_)
        ) {
            continue;
        }
        let listeners = inner
            .lock()
            .jobs
            .get(job_id)
            .map(|e| e.job.listeners.clone())
            .unwrap_or_default();
        for listener in listeners {
            let Some(kind) = heard_as(&listener, &event) else {
                continue;
            };
            match listener.target {
                ListenerTarget::Plugin(name) => {
                    let Some(payload) = wit_event(kind, &event) else {
                        continue;
                    };
                    let inner2 = inner.clone();
                    let deliver = async move { deliver_plugin(&inner2, &name, payload).await };
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
                ListenerTarget::Webhook(url) => {
                    let Ok(permit) = webhooks.clone().acquire_owned().await else {
                        return;
                    };
                    let http = http.clone();
                    let body = webhook_body(kind, &event);
                    let job = job_id.to_owned();
                    tokio::spawn(async move {
                        match http {
                            Some(http) => deliver_webhook(&http, &url, &job, &body).await,
                            None => tracing::warn!(url, "webhook listener skipped: no HTTP client"),
                        }
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// What `listener` hears `event` as, if anything: a failed run (from its
/// `after_failures`th in a row), a missed fire, a success or a recovery
/// (a listener hearing both gets a recovery once, as `recovered`), an
/// auto-pause (a person's pause is not heard).
fn heard_as(listener: &Listener, event: &Event) -> Option<ListenFor> {
    match event {
        Event::RunFailed(e) => {
            let enough = match listener.after_failures {
                None => true,
                Some(n) => e.failures_in_a_row.is_some_and(|c| c >= n),
            };
            (listener.hears(ListenFor::Failed) && enough).then_some(ListenFor::Failed)
        }
        Event::RunMissed(_) => listener
            .hears(ListenFor::Missed)
            .then_some(ListenFor::Missed),
        Event::RunSucceeded(e) => {
            if e.recovered_after.is_some() && listener.hears(ListenFor::Recovered) {
                Some(ListenFor::Recovered)
            } else {
                listener
                    .hears(ListenFor::Succeeded)
                    .then_some(ListenFor::Succeeded)
            }
        }
        Event::JobPaused(e) if e.reason.is_some() => listener
            .hears(ListenFor::Paused)
            .then_some(ListenFor::Paused),
        _ => None,
    }
}

/// The event as a webhook gets it: its JSON with `"on"` naming what the
/// listener heard (`failed`, `missed`, `succeeded`, `recovered`, `paused`).
fn webhook_body(kind: ListenFor, event: &Event) -> serde_json::Value {
    let mut body = serde_json::to_value(event).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.insert("on".into(), kind.as_str().into());
    }
    body
}

/// The event as a listener plugin gets it (see the module docs).
fn wit_event(kind: ListenFor, event: &Event) -> Option<JobEvent> {
    match event {
        Event::RunFailed(run) | Event::RunMissed(run) | Event::RunSucceeded(run) => {
            let (wit_kind, outcome, message) = match kind {
                ListenFor::Missed => (
                    EventKind::RunMissed,
                    "missed".to_owned(),
                    run.message.clone(),
                ),
                ListenFor::Recovered => (
                    EventKind::RunRecovered,
                    "recovered".to_owned(),
                    Some(format!(
                        "succeeded after {} failed runs in a row",
                        run.recovered_after.unwrap_or(0)
                    )),
                ),
                ListenFor::Succeeded => (
                    EventKind::RunSucceeded,
                    run.outcome.clone().unwrap_or_else(|| "succeeded".into()),
                    None,
                ),
                ListenFor::Failed | ListenFor::Paused => (
                    EventKind::RunFailed,
                    run.outcome.clone().unwrap_or_else(|| "failed".into()),
                    run.message.clone(),
                ),
            };
            Some(JobEvent {
                kind: wit_kind,
                job_id: run.job_id.clone(),
                run_id: Some(run.run_id.clone()),
                scheduled_at: timestamp(run.scheduled_at),
                attempt: run.attempt,
                outcome,
                message,
            })
        }
        Event::JobPaused(job) => Some(JobEvent {
            kind: EventKind::JobPaused,
            job_id: job.job_id.clone(),
            run_id: job.run_id.clone(),
            // The WIT's time of the fire; here, when the job paused.
            scheduled_at: timestamp(job.at),
            attempt: 1,
            outcome: "paused".into(),
            message: job.reason.clone(),
        }),
        _ => None,
    }
}

async fn deliver_plugin(inner: &Inner, name: &str, event: JobEvent) {
    let Some(plugin) = inner.plugins.get(name) else {
        tracing::warn!(listener = name, job = %event.job_id, "listener plugin is not loaded; event not delivered");
        return;
    };
    if plugin.world() != World::Listener {
        tracing::warn!(
            listener = name,
            "plugin does not implement world `listener`; event not delivered"
        );
        return;
    }
    let job_id = event.job_id.clone();
    let run_id = event.run_id.clone().unwrap_or_default();
    let limits = Limits {
        timeout: LISTENER_TIMEOUT,
        ..inner.config.default_limits
    };
    let report = inner.runtime.deliver(&plugin, event, &limits).await;
    match report.outcome {
        Outcome::Succeeded { .. } => {
            tracing::info!(listener = name, job = %job_id, run = %run_id, "listener notified");
        }
        other => tracing::warn!(
            listener = name,
            job = %job_id,
            run = %run_id,
            outcome = %other.kind(),
            detail = ?other,
            "listener plugin failed"
        ),
    }
}

async fn deliver_webhook(http: &reqwest::Client, url: &str, job: &str, event: &serde_json::Value) {
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=WEBHOOK_ATTEMPTS {
        match http.post(url).json(event).send().await {
            Ok(resp) if resp.status().is_success() => {
                tracing::info!(url, job, "webhook notified");
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
        job,
        "webhook gave up after {WEBHOOK_ATTEMPTS} attempts"
    );
}
