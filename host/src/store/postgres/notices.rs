//! LISTEN/NOTIFY between the hosts sharing a database (issue 11): new run
//! rows wake the hosts waiting to claim, and each host's events reach
//! every other host's `GET /events`.
//!
//! Both are best effort: a claimer also polls every second, and events are
//! a live feed (the run history is the record). NOTIFY is delivered at
//! commit, in commit order, to every listening connection; a payload is
//! at most 8000 bytes, so an event's long message is cut to fit.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_postgres::{AsyncMessage, Config, NoTls};
use tokio_util::sync::CancellationToken;

/// New run rows (sent by a trigger on `runs`).
const RUNS: &str = "wasmcron_runs";
/// Hosts' events, as JSON.
const EVENTS: &str = "wasmcron_events";
/// Runs to stop for a fire under `overlap = "cancel-other"` (sent by a
/// claim): `RUN_ID FIRE_MS`, the run and the fire time (Unix ms) that
/// replaces it.
pub(super) const CANCELS: &str = "wasmcron_cancels";

/// Longest event payload sent, in bytes (NOTIFY's limit is 8000).
pub(super) const MAX_EVENT: usize = 7900;

/// Events waiting to be sent; more are dropped (and counted in the log).
pub(super) const RELAY_QUEUE: usize = 8192;

/// Most events sent in one statement.
const RELAY_BATCH: usize = 512;

/// Listens on a connection of its own until `stop`, waking `runs` on new
/// run rows and passing other hosts' events to `events` and requests to
/// stop runs to `cancels`; reconnects a second after the connection fails.
pub(super) async fn listen(
    config: Config,
    runs: Arc<Notify>,
    events: broadcast::Sender<String>,
    cancels: broadcast::Sender<String>,
    stop: CancellationToken,
) {
    loop {
        let connected = tokio::select! {
            c = tokio::time::timeout(super::conn::CONNECT_TIMEOUT, config.connect(NoTls)) => c,
            () = stop.cancelled() => return,
        };
        if let Ok(Ok((client, mut connection))) = connected {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                use futures_util::StreamExt as _;
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = messages.next().await {
                    match message {
                        Ok(AsyncMessage::Notification(n)) => {
                            let got = match n.channel() {
                                EVENTS => Some((false, n.payload().to_owned())),
                                CANCELS => Some((true, n.payload().to_owned())),
                                _ => None,
                            };
                            if tx.send(got).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            });
            let listening = client
                .batch_execute(&format!("LISTEN {RUNS}; LISTEN {EVENTS}; LISTEN {CANCELS}"))
                .await;
            if listening.is_ok() {
                loop {
                    tokio::select! {
                        got = rx.recv() => match got {
                            Some(Some((false, event))) => {
                                let _ = events.send(event);
                            }
                            Some(Some((true, cancel))) => {
                                let _ = cancels.send(cancel);
                            }
                            Some(None) => runs.notify_one(),
                            None => break,
                        },
                        () = stop.cancelled() => {
                            driver.abort();
                            return;
                        }
                    }
                }
            }
            driver.abort();
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Sends this host's events (JSON) to the others, batched: whatever is
/// queued (up to [`RELAY_BATCH`]) goes in one statement. A batch that
/// fails is dropped and the connection opened again.
pub(super) async fn relay(config: Config, mut rx: mpsc::Receiver<String>, stop: CancellationToken) {
    let mut client: Option<tokio_postgres::Client> = None;
    loop {
        let first = tokio::select! {
            e = rx.recv() => match e {
                Some(e) => e,
                None => return,
            },
            () = stop.cancelled() => return,
        };
        let mut batch = vec![first];
        while batch.len() < RELAY_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if client
            .as_ref()
            .is_none_or(tokio_postgres::Client::is_closed)
        {
            client = super::conn::connect(&config).await.ok();
        }
        let Some(c) = client.as_ref() else { continue };
        let sent = tokio::time::timeout(
            super::conn::ANSWER_TIMEOUT,
            c.execute(
                &format!("SELECT pg_notify('{EVENTS}', e) FROM unnest($1::text[]) AS e"),
                &[&batch],
            ),
        )
        .await;
        if !matches!(sent, Ok(Ok(_))) {
            tracing::debug!(
                events = batch.len(),
                "could not pass events to the other hosts"
            );
            client = None;
        }
    }
}
