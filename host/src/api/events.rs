//! `GET /events`: the event bus as server-sent events.
//!
//! Each SSE event's `event:` is the event's name (`run-succeeded`, …) and
//! its `data:` the event as JSON. A client that falls behind the bus
//! (4,096 events) gets a `lagged` event saying how many it missed, then
//! carries on; it never slows the scheduler down.

use super::ApiState;
use super::extract::Query;
use crate::event::Event;
use axum::extract::State;
use axum::response::sse::{self, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

/// Filters for the stream.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only events of this job (plugin events are left out then).
    pub job: Option<String>,
}

/// Server-sent events of jobs, runs and plugins. Each event's JSON names
/// the host it happened on (`host`, `host_id`); on a store several hosts
/// share, the stream carries every host's events (passed on through the
/// database, best effort).
#[utoipa::path(get, path = "/events", tag = "events", params(EventFilter),
    responses((status = 200, description = "An endless text/event-stream; `event:` is the event name, `data:` its JSON", content_type = "text/event-stream", body = String)))]
pub(super) async fn stream(
    State(state): State<ApiState>,
    Query(filter): Query<EventFilter>,
) -> Sse<impl Stream<Item = Result<sse::Event, Infallible>>> {
    let host = state.cluster.host.clone();
    let local = {
        let host = host.clone();
        let job = filter.job.clone();
        futures_util::stream::unfold(state.scheduler.subscribe(), move |mut rx| {
            let (host, job) = (host.clone(), job.clone());
            async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            if job.as_deref().is_some_and(|j| event.job_id() != Some(j)) {
                                continue;
                            }
                            let data = tagged(&event, &host).to_string();
                            let sse = sse::Event::default().event(event.name()).data(data);
                            return Some((Ok(sse), rx));
                        }
                        Err(RecvError::Lagged(n)) => return Some((Ok(lagged(n)), rx)),
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        })
    };
    let remote = state.scheduler.store().shared_events().map(|rx| {
        let job = filter.job.clone();
        let own = host.id.clone();
        futures_util::stream::unfold(rx, move |mut rx| {
            let (job, own) = (job.clone(), own.clone());
            async move {
                loop {
                    match rx.recv().await {
                        Ok(json) => {
                            let Ok(value) = serde_json::from_str::<serde_json::Value>(&json) else {
                                continue;
                            };
                            // This host's own come from its bus, at once.
                            if value["host_id"].as_str() == Some(own.as_str()) {
                                continue;
                            }
                            if job
                                .as_deref()
                                .is_some_and(|j| value["job_id"].as_str() != Some(j))
                            {
                                continue;
                            }
                            let name = value["event"].as_str().unwrap_or("event").to_owned();
                            let sse = sse::Event::default().event(name).data(json);
                            return Some((Ok(sse), rx));
                        }
                        Err(RecvError::Lagged(n)) => return Some((Ok(lagged(n)), rx)),
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        })
    });
    let merged = match remote {
        Some(remote) => futures_util::stream::select(local, remote).left_stream(),
        None => local.right_stream(),
    };
    let stop = state.stop.clone().cancelled_owned();
    Sse::new(futures_util::StreamExt::take_until(merged, stop))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn lagged(n: u64) -> sse::Event {
    sse::Event::default()
        .event("lagged")
        .data(format!("{{\"missed\":{n}}}"))
}

/// An event's JSON with the host it happened on (`host`: its name,
/// `host_id`), a run event's `message` cut to 4 KiB so it fits a
/// database notification when passed to other hosts.
pub fn tagged(event: &Event, host: &super::HostIdentity) -> serde_json::Value {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("host".into(), host.name.clone().into());
        map.insert("host_id".into(), host.id.clone().into());
        if let Some(serde_json::Value::String(m)) = map.get_mut("message")
            && m.len() > 4096
        {
            let mut cut = 4096;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
            m.push('…');
        }
    }
    value
}
