//! Bearer-token auth: required for state-changing routes when the host has
//! a token, and for reads too with `--auth-reads`.

use super::{ApiError, ApiState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
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
) -> Result<Response, ApiError> {
    if authorized(&state, &request) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::unauthorized())
    }
}

pub(super) async fn require_for_reads(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !state.auth_reads || authorized(&state, &request) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::unauthorized())
    }
}
