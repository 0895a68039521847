//! Extractors whose rejections answer in the API's error shape.

use super::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body; malformed JSON is a 400, a wrong shape a 422 naming the
/// field, an oversized body a 413.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = is_json(&req);
        if !is_json {
            return Err(not_json());
        }
        let bytes = bytes(req, state).await?;
        parse(&bytes).map(Self)
    }
}

/// An optional JSON body: no body, an empty one (only white space) or
/// `null` is `None`; anything else is read as [`Body`] reads it (sent as
/// JSON, else 415; malformed, 400; a wrong shape, 422 naming the field;
/// too large, 413).
#[derive(Debug)]
pub struct OptionalBody<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = is_json(&req);
        let bytes = bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !is_json {
            return Err(not_json());
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(malformed)?;
        if value.is_null() {
            return Ok(Self(None));
        }
        from_value(value).map(|v| Self(Some(v)))
    }
}

/// Whether the request says its body is JSON.
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime == "application/json" || mime.ends_with("+json")
        })
}

fn not_json() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with `Content-Type: application/json`",
    )
}

fn malformed(e: serde_json::Error) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "malformed_json",
        format!("the body is not valid JSON: {e}"),
    )
}

/// The body's bytes, within [`super::MAX_BODY`] (413 beyond).
async fn bytes<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    e.status(),
                    "too_large",
                    format!(
                        "the body is larger than the {} KiB limit",
                        super::MAX_BODY / 1024
                    ),
                )
            } else {
                ApiError::new(e.status(), "bad_request", e.body_text())
            }
        })
}

/// Parses JSON, telling malformed JSON (400) from a wrong shape (422, with
/// the path of the offending field).
///
/// A well-formed object is read straight from the bytes, in one pass; only
/// a body that fails that is read again through a [`serde_json::Value`],
/// which tells the two kinds of error apart and names the field (the two
/// passes took 12 % of a host adding jobs with `PUT /jobs`). Both read the
/// same bodies the same way: a duplicate key, which the one pass refuses,
/// is read by the second as before (the last one wins).
pub(super) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if object && let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
    from_value(value)
}

/// Deserializes a JSON value, naming the offending field on failure.
///
/// Every body this API reads is a JSON object: anything else is refused
/// here (serde alone would read a struct from an array, by position).
pub(super) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::validation(
            "body",
            format!(
                "the body must be a JSON object with this route's fields (see /openapi.json), \
                 not {}",
                kind_of(&value)
            ),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = strip_position(&e.inner().to_string());
        // A missing field is reported at its parent (unknown fields and
        // variants already carry their own name in the path).
        let leaf = named_in(&message, "unknown field `")
            .or_else(|| named_in(&message, "missing field `"))
            .or_else(|| {
                message
                    .starts_with("unknown variant")
                    .then(|| "type".to_owned())
            });
        let field = match (leaf, path.as_str()) {
            (Some(leaf), p) if p == leaf || p.ends_with(&format!(".{leaf}")) => p.to_owned(),
            (Some(leaf), ".") => leaf,
            (Some(leaf), parent) => format!("{parent}.{leaf}"),
            (None, p) => p.to_owned(),
        };
        if field == "." || field.is_empty() {
            ApiError::validation("body", message)
        } else {
            ApiError::validation(field.clone(), format!("{field}: {message}"))
        }
    })
}

/// serde_json's " at line 1 column 73": noise in an API answer.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn named_in(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// Query parameters; a bad one is a 400 naming it.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A path parameter; one that does not decode is a 400 in the API's shape.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "bad_path",
                    format!("{}; percent-encode ids in paths as UTF-8", e.body_text()),
                )
            })?;
        Ok(Self(value))
    }
}

/// What a JSON value is, for messages ("an array", "a string", …).
fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::from_value;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only its shape is read")]
    struct Shape {
        from: String,
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_named_in_the_apis_words() {
        for (body, got) in [
            (json!([]), "not an array"),
            (json!("x"), "not a string"),
            (json!(7), "not a number"),
            // serde alone reads a struct from an array, by position.
            (json!(["2026-01-01T00:00:00Z"]), "not an array"),
        ] {
            let err = from_value::<Shape>(body.clone()).expect_err("wrong shape");
            let (text, field) = err.detail();
            assert_eq!(
                err.status(),
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "{body}"
            );
            assert!(
                text.contains("must be a JSON object") && text.contains(got),
                "{body}: {text}"
            );
            assert!(!text.contains("Shape"), "{text}");
            assert_eq!(field, Some("body"), "{body}");
        }
    }
}
