//! The HTTP side of the CLI client: one request, the API's error shape
//! turned into a message.

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::Remote;

/// A host's API.
pub(super) struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub(super) fn new(remote: &Remote) -> Self {
        Self {
            base: remote.url.trim_end_matches('/').to_owned(),
            token: remote.token.clone(),
            http: reqwest::Client::new(),
        }
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(body);
        }
        self.send(req).await
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.base);
        let req = self.http.request(method, &url);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach wasmcron at {}: {e}; is `wasmcron run` running there (see --url)?",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.context("reading the answer")?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("{}", self.unauthorized());
        }
        let error = &value["error"];
        match (error["message"].as_str(), error["field"].as_str()) {
            (Some(m), Some(f)) => bail!("{m} (field {f}; HTTP {status})"),
            (Some(m), None) => bail!("{m} (HTTP {status})"),
            _ => bail!("HTTP {status}: {value}"),
        }
    }

    /// What to do about a 401: pass the host's token, or a right one.
    fn unauthorized(&self) -> String {
        if self.token.is_some() {
            format!(
                "{} refused the API token given (HTTP 401): pass a token that host accepts (its \
                 --token, or the secret of one of its --tokens entries), with --token TOKEN \
                 after the subcommand or in WASMCRON_TOKEN",
                self.base
            )
        } else {
            format!(
                "{} requires its API token for this (HTTP 401): pass it with --token TOKEN \
                 after the subcommand (e.g. `wasmcron jobs add job.toml --token TOKEN`) or \
                 set WASMCRON_TOKEN",
                self.base
            )
        }
    }

    pub(super) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(super) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// A `PUT` of raw bytes of `content_type` (a plugin file, a body
    /// encoded beforehand).
    pub(super) async fn put_bytes(
        &self,
        path: &str,
        content_type: &'static str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Value> {
        let req = self
            .request(reqwest::Method::PUT, path)
            .header("content-type", content_type)
            .body(bytes);
        self.send(req).await
    }

    /// A `GET` whose answer is kept as text, asking for `accept` (e.g.
    /// `application/toml`).
    pub(super) async fn get_text(&self, path: &str, accept: &str) -> anyhow::Result<String> {
        let req = self
            .request(reqwest::Method::GET, path)
            .header("accept", accept);
        match self.send(req).await? {
            Value::String(text) => Ok(text),
            value => Ok(serde_json::to_string_pretty(&value)? + "\n"),
        }
    }

    pub(super) async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

/// Encodes a path segment (ids are URL-safe by construction, but names
/// typed by people may not be).
pub(super) fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
