//! The API's accept loop: HTTP/1 connections served with the limits a
//! server facing untrusted clients needs.
//!
//! `axum::serve` has no knobs for these, and a scheduler's API must not be
//! held by its clients: a client that opens a connection and sends its
//! headers one byte a minute (slowloris), thousands of idle connections, or
//! a 300 KiB header block would otherwise keep tasks, sockets and buffers
//! for as long as it likes. So connections are accepted here and handed to
//! hyper directly:
//!
//! ```text
//! accept ──▶ over max_connections? ──yes──▶ 503, close
//!        ──▶ hyper http1 (header_read_timeout, max header bytes → 431)
//!        ──▶ request deadline (408 if the body has not arrived by then;
//!            a request received in full runs to its end on its own task)
//!        ──▶ router
//! ```
//!
//! hyper (1.6 and later) restarts the header-read timer whenever a kept-alive
//! connection goes idle, so the same timeout also closes idle connections.

use super::{ApiError, ApiState, router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits on what one client may hold of the API.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A request's headers must arrive within this long of the connection
    /// opening or going idle; else the connection is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// A request's body must arrive in full within this long of its headers
    /// arriving; else `408` (nothing was done). A request received in full
    /// is run to its end however long it takes, even if its client goes
    /// away. Default 30 s.
    pub request_timeout: Duration,
    /// Connections served at once; beyond this a connection gets a `503`
    /// and is closed. Default 1,024.
    pub max_connections: usize,
    /// Largest request head (request line and headers), in bytes; a larger
    /// one is answered `431` and the connection closed. Default 64 KiB.
    pub max_header_bytes: usize,
    /// How long shutdown waits for open connections to finish their request.
    /// Default 5 s.
    pub shutdown_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// What an over-capacity connection is told before it is closed, in the
/// API's one error shape.
const BUSY_BODY: &str = r#"{"error":{"code":"too_many_connections","message":"the API is serving its connection limit; retry later"}}"#;

/// The whole `503` answer to an over-capacity connection.
fn busy() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         connection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    )
}

/// Serves `router(state)` on `listener` with `limits` until `shutdown`
/// resolves, then lets open connections finish their request for up to
/// `limits.shutdown_timeout`.
///
/// # Errors
/// Never for bad clients (their connections are answered or closed); only
/// when accepting fails in a way that is not about one connection.
pub async fn serve_with(
    listener: TcpListener,
    state: ApiState,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let request_timeout = limits.request_timeout;
    let app = router(state).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            deadline(request_timeout, req, next).await
        },
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of
                    // spinning, the condition may pass as connections close.
                    tracing::warn!(error = %e, "the HTTP API cannot accept connections");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The client's address, for the audit log (as axum's own
        // `into_make_service_with_connect_info` would give it).
        let service = tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away or times out ends its connection
            // with an error; that is the client's business, not a fault.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "API connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP API connections still open at shutdown were closed");
    }
    Ok(())
}

/// Accept errors that concern one connection (it was reset before we took
/// it), not the listener.
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// Tells an over-capacity client to come back later, without reading
/// anything from it; gives up after a second so a client that does not
/// read cannot hold this task either.
async fn refuse(mut stream: tokio::net::TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(busy().as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Bounds the time to receive a request, and runs each request to its
/// end once it is received.
///
/// - A request whose body has not arrived in full within `limit` of its
///   headers is answered `408` (a body trickling in). Its handler has done
///   nothing yet: handlers take their body before they act.
/// - A request received in full is not cut, by the deadline or by its
///   client going away: its handler runs on a task of its own. A `PUT
///   /jobs` that outlasted the deadline used to be dropped between
///   writing a batch of jobs to the store and scheduling them (the jobs
///   then waited for the next restart); the same for a client that
///   disconnected part way (hyper drops a request's future when its
///   connection closes). A handler waiting on an unreachable PostgreSQL
///   is bounded by the store's answer timeout (then 503); SQLite is a
///   local file written by one thread of this process.
async fn deadline(
    limit: Duration,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http_body::Body as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (parts, body) = req.into_parts();
    let received = Arc::new(AtomicBool::new(body.is_end_stream()));
    let body = axum::body::Body::new(Watched {
        inner: body,
        received: received.clone(),
    });
    let mut handler = tokio::spawn(next.run(axum::extract::Request::from_parts(parts, body)));
    let joined = match tokio::time::timeout(limit, &mut handler).await {
        Ok(joined) => joined,
        Err(_) if received.load(Ordering::Acquire) => handler.await,
        Err(_) => {
            handler.abort();
            let mut response = ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request's body did not arrive within {} s; send the body promptly",
                    limit.as_secs_f64()
                ),
            )
            .into_response();
            // The body may be half read: the connection cannot be reused.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return response;
        }
    };
    match joined {
        Ok(response) => response,
        Err(e) => {
            // A panicking handler, or the runtime shutting down under it:
            // the connection stays up and the client hears of it.
            tracing::error!(error = %e, "an API handler did not finish");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request failed inside the host; the host's log says why",
            )
            .into_response()
        }
    }
}

/// A request body that notes when it has been read to its end.
struct Watched {
    inner: axum::body::Body,
    received: Arc<std::sync::atomic::AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || this.inner.is_end_stream() {
            this.received
                .store(true, std::sync::atomic::Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = super::busy();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 503 "));
        let length = format!("content-length: {}", body.len());
        assert!(head.split("\r\n").any(|line| line == length), "{head}");
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(parsed["error"]["code"], "too_many_connections");
    }
}
