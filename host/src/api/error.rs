//! The one error shape every route answers with:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.
//!
//! Codes are stable (clients match on them); messages are for people and
//! say what to change. No input maps to a 500: store failures are the only
//! 5xx, and they say the store failed.

use crate::scheduler::SchedulerError;
use crate::store::StoreError;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `validation`, `not_found`, `conflict`,
    /// `malformed_json`, `bad_query`, `too_large`, `unsupported_media_type`,
    /// `unauthorized`, `forbidden`, `method_not_allowed`, `unavailable`, `internal`.
    pub code: String,
    /// For people: what is wrong and how to fix it.
    pub message: String,
    /// The offending field's path, e.g. `trigger.expr`, for validation
    /// errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 422: the request is well-formed but a field's value is not.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
        }
    }

    /// 400 for a bad query parameter.
    pub fn bad_query(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "bad_query", message)
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this route needs `Authorization: Bearer TOKEN` with one of the host's tokens \
             (--token, or a secret of --tokens)",
        )
    }

    /// 403: the token is known but its role is below what the route needs.
    pub fn forbidden(needed: super::Role, name: &str, has: super::Role) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this route needs the `{needed}` role; token `{name}` has `{has}` \
                 (ask an admin for a token with the `{needed}` role)"
            ),
        )
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Its message and field (for the extractors' tests).
    #[cfg(test)]
    pub(super) fn detail(&self) -> (&str, Option<&str>) {
        (&self.message, self.field.as_deref())
    }

    /// The same error about one element of a list: its field under
    /// `prefix` (`trigger.expr` becomes `jobs[3].trigger.expr`) and its
    /// message led by the element and its id.
    pub(super) fn within(self, prefix: &str, id: &str) -> Self {
        Self {
            field: Some(match self.field {
                Some(field) => format!("{prefix}.{field}"),
                None => prefix.to_owned(),
            }),
            message: format!("{prefix} (job '{id}'): {}", self.message),
            ..self
        }
    }

    /// The same error with `note` appended to its message.
    pub(super) fn noting(mut self, note: &str) -> Self {
        self.message.push_str(note);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: the connection cannot be
            // reused, and a client must not try.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<SchedulerError> for ApiError {
    fn from(e: SchedulerError) -> Self {
        match &e {
            SchedulerError::JobNotFound(_)
            | SchedulerError::RunNotFound(_)
            | SchedulerError::CalendarNotFound(_) => Self::not_found(e.to_string()),
            SchedulerError::Duplicate(_)
            | SchedulerError::MaxInstances { .. }
            | SchedulerError::PluginNotLoaded { .. }
            | SchedulerError::CannotReplay(_)
            | SchedulerError::CannotStop(_)
            | SchedulerError::CalendarInUse { .. } => Self::conflict(e.to_string()),
            SchedulerError::Invalid(j) => Self::validation(j.field(), j.to_string()),
            SchedulerError::BadRequest { field, problem } => Self::validation(field, problem),
            SchedulerError::NotRunning => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the scheduler is shutting down",
            ),
            SchedulerError::Store(StoreError::Unwritable(reason)) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unwritable",
                format!(
                    "the job store cannot be written ({reason}); nothing was changed. \
                     Try again once the host's /healthz answers 200 (free disk space or make \
                     the database writable)"
                ),
            ),
            SchedulerError::Store(_) => {
                // The cause is for the operator's log, not for clients.
                tracing::error!(error = %e, "store failure behind an API call");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error: the job store failed; the host's log has the cause",
                )
            }
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_query", rejection.body_text())
    }
}
