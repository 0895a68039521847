//! Bearer-token auth by role: each route needs a [`Role`] (reads need
//! `read` only with `--auth-reads`); a request without a known token is
//! answered 401, one whose token's role is too low 403 naming both roles.
//! Every request that passes carries an [`Actor`] (who, from where) for
//! the audit log.

use super::tokens::{Role, Tokens};
use super::{ApiError, ApiState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use crate::audit::Actor;

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

/// What a request's token makes of it.
enum Caller<'a> {
    /// The host has no tokens: everything is allowed.
    Open,
    /// A known token.
    Known(&'a super::tokens::Credential),
    /// A token the host does not know.
    Unknown,
    /// No token.
    Missing,
}

fn caller<'a>(tokens: Option<&'a Tokens>, headers: &axum::http::HeaderMap) -> Caller<'a> {
    let Some(tokens) = tokens else {
        return Caller::Open;
    };
    match presented(headers) {
        None => Caller::Missing,
        Some(p) => tokens.find(p).map_or(Caller::Unknown, Caller::Known),
    }
}

/// `GET /auth`'s answer: what this host asks of a caller, and what the
/// token the request presented may do. Clients (the dashboard) ask once to
/// know whether to ask for a token and which actions to offer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuthInfo {
    /// Reads (`GET` routes) need a token (`--auth-reads`).
    pub reads_need_token: bool,
    /// State-changing routes need a token (the host has `--token` or
    /// `--tokens`).
    pub writes_need_token: bool,
    /// The token this request presented: `none`, `valid` or `invalid`
    /// (a token presented to a host without one is `valid`: nothing is
    /// refused).
    pub token: String,
    /// The presented token's name (`token` for the single `--token`);
    /// absent without a valid token or on a host without tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The role this request has: the token's, `admin` on a host without
    /// tokens; absent without a valid token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Whether this request's reads would be answered.
    pub can_read: bool,
    /// Whether this request's operating writes would be accepted: pause,
    /// resume, run now, backfill, replay, stop (role `operate` or `admin`).
    pub can_write: bool,
    /// Whether every write would be accepted: jobs, plugins, calendars
    /// (role `admin`).
    pub can_admin: bool,
}

/// What the host requires and what the presented token may do. Never
/// needs a token and never answers 401, so a client can learn whether to
/// ask for one; it tells a valid token its own name and role, nothing
/// about other tokens.
#[utoipa::path(get, path = "/auth", tag = "health",
    responses((status = 200, description = "What needs a token, and what this request's token may do", body = AuthInfo)))]
pub(super) async fn info(
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
) -> axum::Json<AuthInfo> {
    let who = caller(state.tokens.as_deref(), &headers);
    let (name, role) = match &who {
        Caller::Open => (None, Some(Role::Admin)),
        Caller::Known(c) => (Some(c.name().to_owned()), Some(c.role())),
        Caller::Unknown | Caller::Missing => (None, None),
    };
    let token = match (&who, presented(&headers)) {
        (_, None) => "none",
        (Caller::Unknown, Some(_)) => "invalid",
        (_, Some(_)) => "valid",
    };
    let writes_need_token = state.tokens.is_some();
    let reads_need_token = writes_need_token && state.auth_reads;
    axum::Json(AuthInfo {
        reads_need_token,
        writes_need_token,
        token: token.into(),
        name,
        role,
        can_read: !reads_need_token || role.is_some(),
        can_write: role >= Some(Role::Operate),
        can_admin: role == Some(Role::Admin),
    })
}

/// The role a group of routes needs, and whether reads are open (then a
/// `read` route lets anyone through).
#[derive(Debug, Clone)]
pub(super) struct Needs {
    pub(super) state: ApiState,
    pub(super) role: Role,
}

/// Lets a request through when its token's role is at least `needs.role`
/// (a `read` route without `--auth-reads` lets anyone through), and puts
/// the [`Actor`] on it.
pub(super) async fn require(
    State(needs): State<Needs>,
    mut request: Request,
    next: Next,
) -> Result<Response, Response> {
    let state = &needs.state;
    let open_read = needs.role == Role::Read && !state.auth_reads;
    let name = match caller(state.tokens.as_deref(), request.headers()) {
        Caller::Open => "anonymous".to_owned(),
        Caller::Known(c) if c.role() >= needs.role => c.name().to_owned(),
        Caller::Known(_) | Caller::Unknown | Caller::Missing if open_read => "anonymous".to_owned(),
        Caller::Known(c) => {
            return Err(close_if_body(
                &request,
                ApiError::forbidden(needs.role, c.name(), c.role()).into_response(),
            ));
        }
        Caller::Unknown | Caller::Missing => {
            return Err(close_if_body(
                &request,
                ApiError::unauthorized().into_response(),
            ));
        }
    };
    let client = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string());
    request.extensions_mut().insert(Actor { name, client });
    Ok(next.run(request).await)
}

/// A refused request's answer. Its body is never read, and hyper closes
/// a connection with an unread body after answering; without
/// `Connection: close` a client that pools connections (reqwest, the CLI)
/// would send its next request on that closed socket and fail with a
/// transport error instead of an answer (seen as a flaky DELETE after a
/// refused 180 KB `PUT /plugins`).
fn close_if_body(request: &Request, mut response: Response) -> Response {
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
