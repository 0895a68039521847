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

/// The bearer token a request presents, if any.
fn presented(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

fn authorized(state: &ApiState, request: &Request) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    presented(request.headers()).is_some_and(|p| token.matches(p))
}

/// `GET /auth`'s answer: what this host asks of a caller, and what the
/// token the request presented may do. Clients (the dashboard) ask once to
/// know whether to ask for a token and which actions to offer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuthInfo {
    /// Reads (`GET` routes) need the token (`--auth-reads`).
    pub reads_need_token: bool,
    /// State-changing routes need the token (the host has `--token`).
    pub writes_need_token: bool,
    /// The token this request presented: `none`, `valid` or `invalid`
    /// (a token presented to a host without one is `valid`: nothing is
    /// refused).
    pub token: String,
    /// Whether this request's reads would be answered.
    pub can_read: bool,
    /// Whether this request's writes would be accepted.
    pub can_write: bool,
}

/// What the host requires and what the presented token may do. Never
/// needs a token and never answers 401, so a client can learn whether to
/// ask for one; it says nothing about the token but whether it matches.
#[utoipa::path(get, path = "/auth", tag = "health",
    responses((status = 200, description = "What needs a token, and what this request's token may do", body = AuthInfo)))]
pub(super) async fn info(
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
) -> axum::Json<AuthInfo> {
    let given = presented(&headers);
    let valid = match (&state.token, given) {
        (None, _) => true,
        (Some(t), Some(p)) => t.matches(p),
        (Some(_), None) => false,
    };
    let token = match given {
        None => "none",
        Some(_) if valid => "valid",
        Some(_) => "invalid",
    };
    let writes_need_token = state.token.is_some();
    let reads_need_token = writes_need_token && state.auth_reads;
    axum::Json(AuthInfo {
        reads_need_token,
        writes_need_token,
        token: token.into(),
        can_read: !reads_need_token || valid,
        can_write: !writes_need_token || valid,
    })
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
