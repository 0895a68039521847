//! What one run's `wasmtime::Store` holds. A fresh one per run: runs share
//! nothing but the kv store.

use super::capture::{Capture, LogLevel, LogSource};
use super::grants::{Grants, SECRET_ENV_PREFIX};
use super::http::{BODY_CHUNK, HttpBudget, MAX_RESOURCES};
use super::kv::KvStore;
use super::limits::MemoryLimiter;
use super::policy::GrantPolicy;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Per-run store data.
pub struct RunState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: HttpGate,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) capture: Capture,
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) job_id: String,
    /// Set by the epoch callback when it stops the guest for time.
    pub(crate) timed_out: bool,
    /// Secret names and values, scrubbed from what the run reports.
    pub(crate) secrets: Vec<(String, String)>,
    /// What the run has created of `wasi:http` resources.
    pub(crate) http_budget: HttpBudget,
    /// Bytes one `fields` resource may hold (0 without an http grant).
    pub(crate) http_field_limit: usize,
}

/// Bytes of headers one `fields` resource of a job with an http grant may
/// hold (wasmtime-wasi-http's default, which counts the in-memory form).
const HTTP_FIELD_LIMIT: usize = 128 << 10;

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("job_id", &self.job_id)
            .finish_non_exhaustive()
    }
}

/// A capability that could not be granted to this run (a missing
/// directory, an unset secret). The run fails with this message.
#[derive(Debug, thiserror::Error)]
#[error("cannot grant the job's capabilities: {0}")]
pub(crate) struct GrantError(String);

impl RunState {
    /// A sandbox with only what `grants` allows: by default no files, no
    /// environment, no network (sockets are off; `wasi:http` refuses every
    /// host), stdin closed, stdout and stderr captured.
    pub(crate) fn new(
        job_id: String,
        memory_limit: u64,
        capture: Capture,
        kv: Arc<dyn KvStore>,
        grants: &Arc<Grants>,
        policy: &Arc<GrantPolicy>,
    ) -> Result<Self, GrantError> {
        // Checked when the job was added too; again here because the job
        // may have been stored under a wider policy, or a symlink under an
        // allowed directory changed since.
        policy
            .check(grants)
            .map_err(|e| GrantError(e.to_string()))?;
        let mut builder = WasiCtx::builder();
        builder
            .stdout(capture.stream(LogSource::Stdout))
            .stderr(capture.stream(LogSource::Stderr))
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false);
        let mut secrets = Vec::new();
        if !grants.is_empty() {
            for dir in &grants.dirs {
                let perms = if dir.writable {
                    FsPerms::ReadWrite
                } else {
                    FsPerms::ReadOnly
                };
                // The path the policy checked, symlinks resolved, is the
                // one opened.
                let host = policy.resolve_dir(&dir.host).ok_or_else(|| {
                    GrantError(format!(
                        "directory {} is outside the operator's --allow-dirs",
                        dir.host.display()
                    ))
                })?;
                builder
                    .preopened_dir(&host, &dir.guest, perms)
                    .map_err(|e| {
                        GrantError(format!(
                            "directory {} (granted as {}): {e:#}",
                            dir.host.display(),
                            dir.guest
                        ))
                    })?;
            }
            for name in &grants.env {
                if let Ok(value) = std::env::var(name) {
                    builder.env(name, value);
                }
            }
            for name in &grants.secrets {
                let var = format!("{SECRET_ENV_PREFIX}{name}");
                let value = std::env::var(&var).map_err(|_| {
                    GrantError(format!(
                        "secret {name}: set {var} in the host's environment"
                    ))
                })?;
                builder.env(name, &value);
                secrets.push((name.clone(), value));
            }
        }
        let http_granted = !grants.http.is_empty();
        let http_field_limit = if http_granted { HTTP_FIELD_LIMIT } else { 0 };
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(http_field_limit);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Ok(Self {
            wasi: builder.build(),
            http,
            hooks: HttpGate {
                grants: grants.clone(),
                capture: capture.clone(),
                allow_private: policy.allow_private_http,
            },
            table,
            limiter: MemoryLimiter::new(memory_limit),
            capture,
            kv,
            job_id,
            timed_out: false,
            secrets,
            http_budget: HttpBudget::new(http_granted),
            http_field_limit,
        })
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Lets a `wasi:http` request out only to a host on the job's allowlist,
/// and then only to an address it may reach ([`super::egress`]); a
/// refusal is noted in the run's logs and reaches the guest as
/// `HTTP-request-denied` before any connection is made.
struct HttpGate {
    grants: Arc<Grants>,
    capture: Capture,
    /// `--allow-private-http`: names may resolve to internal addresses.
    allow_private: bool,
}

type SendResult = wasmtime_wasi_http::Result<super::egress::Sent>;

impl wasmtime_wasi_http::WasiHttpHooks for HttpGate {
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        // Bounds what each outgoing body buffers on the host; charged per
        // request by `runtime::http`.
        BODY_CHUNK
    }

    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_owned();
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        if !self.grants.allows_http(&scheme, &host, port) {
            let allowed: Vec<String> = self.grants.http.iter().map(ToString::to_string).collect();
            self.capture.note(
                LogLevel::Warn,
                format!(
                    "[wasmcron] HTTP request to {scheme}://{host}:{port} denied: not on the job's \
                     capabilities.http allowlist ({})",
                    if allowed.is_empty() {
                        "empty".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let grants = self.grants.clone();
        let capture = self.capture.clone();
        let allow_private = self.allow_private;
        Box::new(async move {
            let resolved = super::egress::resolve(&host, port).await?;
            let (allowed, refused): (Vec<_>, Vec<_>) = resolved.into_iter().partition(|addr| {
                allow_private
                    || !super::egress::is_internal(addr.ip())
                    || grants.allows_http(&scheme, &super::egress::literal(addr.ip()), port)
            });
            if allowed.is_empty() {
                let addrs: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                capture.note(
                    LogLevel::Warn,
                    format!(
                        "[wasmcron] HTTP request to {scheme}://{host}:{port} denied: it resolves \
                         to {}, a loopback, link-local or private address; a job reaches one \
                         only when its capabilities.http names that address (e.g. \
                         {scheme}://{}:{port}) or the host runs with --allow-private-http",
                        if addrs.is_empty() {
                            "no address".to_owned()
                        } else {
                            addrs.join(", ")
                        },
                        refused
                            .first()
                            .map_or_else(|| host.clone(), |a| super::egress::literal(a.ip())),
                    ),
                );
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            super::egress::send(request, options, allowed).await
        })
    }
}
