//! Bearer-token auth: required for state-changing routes when the host has
//! a token, and for reads too with `--auth-reads`.

use super::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The API token. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// Wraps a token.
    ///
    /// # Errors
    /// When it is too short to be worth anything (under 16 characters).
    pub fn new(token: String) -> Result<Self, String> {
        if token.trim().len() < 16 {
            return Err(
                "the API token must be at least 16 characters; generate one with \
                        `openssl rand -hex 32`"
                    .into(),
            );
        }
        Ok(Self(token))
    }

    /// Compares in constant time (for equal lengths; the length itself is
    /// not secret).
    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

fn authorized(state: &ApiState, request: &Request) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|presented| token.matches(presented.trim()))
}

pub(super) async fn require_for_writes(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    if authorized(&state, &request) {
        Ok(next.run(request).await)
    } else {
        Err(refuse(&request))
    }
}

pub(super) async fn require_for_reads(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    if !state.auth_reads || authorized(&state, &request) {
        Ok(next.run(request).await)
    } else {
        Err(refuse(&request))
    }
}

/// The 401 answer. A refused request's body is never read, and hyper closes
/// a connection with an unread body after answering; without
/// `Connection: close` a client that pools connections (reqwest, the CLI)
/// would send its next request on that closed socket and fail with a
/// transport error instead of an answer (seen as a flaky DELETE after a
/// refused 180 KB `PUT /plugins`).
fn refuse(request: &Request) -> Response {
    let mut response = ApiError::unauthorized().into_response();
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if has_body {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
