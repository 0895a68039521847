//! What one run's `wasmtime::Store` holds. A fresh one per run: runs share
//! nothing but the kv store.

use super::capture::{Capture, LogSource};
use super::limits::MemoryLimiter;
use crate::store::KvStore;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Per-run store data.
pub struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) capture: Capture,
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) job_id: String,
    /// Set by the epoch callback when it stops the guest for time.
    pub(crate) timed_out: bool,
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("job_id", &self.job_id)
            .finish_non_exhaustive()
    }
}

impl RunState {
    /// A sandbox with nothing granted: no files, no environment, no
    /// network (WasiCtxBuilder denies sockets by default), stdin closed,
    /// stdout and stderr captured.
    pub(crate) fn new(
        job_id: String,
        memory_limit: u64,
        capture: Capture,
        kv: Arc<dyn KvStore>,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(capture.stream(LogSource::Stdout))
            .stderr(capture.stream(LogSource::Stderr))
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            capture,
            kv,
            job_id,
            timed_out: false,
        }
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
