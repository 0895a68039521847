//! Outbound HTTP through `wasi:http` (feature `http`).
//!
//! A job reaches only the hosts its `capabilities.http` allowlist grants;
//! anything else fails with [`HttpError::Denied`] before a connection is
//! made. The call blocks the guest, not the host: the host keeps running
//! other jobs while this one waits, and the run's timeout still applies.
//!
//! ```no_run
//! # fn main() -> Result<(), wasmcron_guest::http::HttpError> {
//! let response = wasmcron_guest::http::get("https://example.com/health")?;
//! assert_eq!(response.status, 200);
//! # Ok(()) }
//! ```

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Largest response body [`request`] reads; the rest is an error rather than
/// a guest running out of memory.
pub const MAX_BODY: usize = 16 << 20;

/// A response, read completely.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values, in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum HttpError {
    /// The URL could not be understood.
    InvalidUrl(String),
    /// The host refused the request: the URL is not on the job's
    /// `capabilities.http` allowlist, or its name resolves to a loopback,
    /// private or link-local address the allowlist does not name (the
    /// host's SSRF check; the run's log says which).
    Denied(String),
    /// The request was sent but failed (DNS, connection, TLS, protocol).
    Failed(String),
    /// The response body is larger than [`MAX_BODY`].
    TooLarge,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            Self::Denied(url) => write!(
                f,
                "request to {url} denied by the host: either its scheme://host:port is not on \
                 the job's capabilities.http allowlist, or its name resolves to a loopback or \
                 private address that the allowlist does not name literally (the run's log \
                 says which, and how to allow it)"
            ),
            Self::Failed(m) => write!(f, "HTTP request failed: {m}"),
            Self::TooLarge => write!(f, "response body larger than {MAX_BODY} bytes"),
        }
    }
}

impl std::error::Error for HttpError {}

/// `GET url`.
///
/// # Errors
/// See [`HttpError`].
pub fn get(url: &str) -> Result<Response, HttpError> {
    request("GET", url, &[], &[])
}

/// Sends one request and reads the whole response.
///
/// # Errors
/// See [`HttpError`].
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<Response, HttpError> {
    let parts = Url::parse(url)?;
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value)
            .map_err(|e| HttpError::InvalidUrl(format!("header {name}: {e:?}")))?;
    }
    let req = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    };
    let bad = |what: &str| HttpError::InvalidUrl(format!("{what} rejected: {url}"));
    req.set_method(&method).map_err(|()| bad("method"))?;
    req.set_scheme(Some(&parts.scheme))
        .map_err(|()| bad("scheme"))?;
    req.set_authority(Some(&parts.authority))
        .map_err(|()| bad("authority"))?;
    req.set_path_with_query(Some(&parts.path))
        .map_err(|()| bad("path"))?;
    let outgoing = req
        .body()
        .map_err(|()| HttpError::Failed("request body unavailable".into()))?;
    if !body.is_empty() {
        let stream = outgoing
            .write()
            .map_err(|()| HttpError::Failed("request body stream unavailable".into()))?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Failed(format!("writing the body: {e:?}")))?;
        }
    }
    let future = outgoing_handler::handle(req, None).map_err(|e| error(url, e))?;
    OutgoingBody::finish(outgoing, None).map_err(|e| error(url, e))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(error(url, e)),
        Some(Err(())) | None => return Err(HttpError::Failed("response already taken".into())),
    };
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| HttpError::Failed("response body unavailable".into()))?;
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::Failed("response body stream unavailable".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(HttpError::TooLarge);
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(HttpError::Failed(e.to_debug_string()));
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn error(url: &str, e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::HttpRequestDenied => HttpError::Denied(url.to_owned()),
        other => HttpError::Failed(format!("{other:?}")),
    }
}

/// `scheme://authority/path?query`, split the way wasi:http wants it.
struct Url {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Url {
    fn parse(url: &str) -> Result<Self, HttpError> {
        let invalid = || {
            HttpError::InvalidUrl(format!(
                "{url} (expected http://host[:port]/path or https://…)"
            ))
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(invalid()),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(invalid());
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self {
            scheme,
            authority: authority.to_owned(),
            path,
        })
    }
}
