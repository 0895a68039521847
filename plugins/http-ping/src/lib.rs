//! `http-ping`: GETs a URL and returns its status.
//!
//! Args: `{"url": "https://example.com/health", "expect": 200}`; `expect`
//! is optional (default: any 2xx). The job must be granted the URL's host:
//! `capabilities.http = ["https://example.com"]`.
//!
//! Output: `{"url": ..., "status": N, "bytes": N, "ms": N}`. A status other
//! than the expected one is a retryable failure (the endpoint may recover);
//! a host the job was not granted is a permanent one.

use serde::Deserialize;
use serde_json::json;
use std::time::Instant;
use wasmcron_guest::http::{self, HttpError};
use wasmcron_guest::{Context, JobError, job, log};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    url: String,
    #[serde(default)]
    expect: Option<u16>,
}

#[job]
fn ping(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    let started = Instant::now();
    let response = match http::get(&args.url) {
        Ok(response) => response,
        Err(e @ (HttpError::Denied(_) | HttpError::InvalidUrl(_))) => {
            return Err(JobError::permanent(e.to_string()));
        }
        Err(e) => return Err(JobError::retryable(e.to_string())),
    };
    let ms = started.elapsed().as_millis();
    let ok = match args.expect {
        Some(code) => response.status == code,
        None => (200..300).contains(&response.status),
    };
    log::info!("GET {} -> {} in {ms} ms", args.url, response.status);
    let report = json!({
        "url": args.url,
        "status": response.status,
        "bytes": response.body.len(),
        "ms": ms,
    })
    .to_string();
    if ok {
        Ok(report)
    } else {
        Err(JobError::retryable(format!("unexpected status: {report}")))
    }
}
