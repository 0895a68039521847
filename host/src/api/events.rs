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
use futures_util::Stream;
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

/// Server-sent events of jobs, runs and plugins.
#[utoipa::path(get, path = "/events", tag = "events", params(EventFilter),
    responses((status = 200, description = "An endless text/event-stream; `event:` is the event name, `data:` its JSON", content_type = "text/event-stream", body = String)))]
pub(super) async fn stream(
    State(state): State<ApiState>,
    Query(filter): Query<EventFilter>,
) -> Sse<impl Stream<Item = Result<sse::Event, Infallible>>> {
    let rx = state.scheduler.subscribe();
    let stream = futures_util::stream::unfold((rx, filter.job), |(mut rx, job)| async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if job.as_deref().is_some_and(|j| event.job_id() != Some(j)) {
                        continue;
                    }
                    return Some((Ok(to_sse(&event)), (rx, job)));
                }
                Err(RecvError::Lagged(n)) => {
                    let lagged = sse::Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{n}}}"));
                    return Some((Ok(lagged), (rx, job)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let stop = state.stop.clone().cancelled_owned();
    Sse::new(futures_util::StreamExt::take_until(stream, stop))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn to_sse(event: &Event) -> sse::Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    sse::Event::default().event(event.name()).data(data)
}
