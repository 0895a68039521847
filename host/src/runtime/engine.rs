//! The wasmtime engine configuration every run shares.
//!
//! Measured on this project's 2-core Linux 6.18 machine with wasmtime 48
//! (docs/BENCHMARKS.md has the command): a fresh store + instantiate + call
//! of a trivial component cost ~33 µs with the default on-demand allocator,
//! ~19 µs pooled, and less again pooled with resident linear memory reset by
//! the `pagemap_scan` ioctl. So: pooling allocator, copy-on-write memory
//! images, a few MiB kept resident per slot, and `pagemap_scan` on `Auto`
//! (used when the kernel has it, Linux 6.7+, silently not otherwise). Fuel
//! and epoch checks cost nothing measurable and give us the instruction and
//! time limits, so both are always on.
//!
//! The pool reserves address space for every slot up front. Where that
//! reservation fails (a `ulimit -v`, a small 32-bit address space) we fall
//! back to the on-demand allocator instead of refusing to start.

use super::limits::{MAX_MEMORY_LIMIT, MAX_TABLE_ELEMENTS};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Whether this kernel offers `pagemap_scan`, for reports.
pub fn pagemap_scan_available() -> bool {
    PoolingAllocationConfig::is_pagemap_scan_available()
}

/// How instances get their memory; reported by `plugin check` and benches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Pre-reserved slots, reused between runs.
    Pooling,
    /// mmap per instance: slower, but needs no up-front reservation.
    OnDemand,
}

/// Engine settings a host may change.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Use the pooling allocator (falling back when it cannot be set up).
    pub pooling: bool,
    /// Runs that may be instantiated at once; sizes the pool. The
    /// scheduler's worker count must stay below it.
    pub max_concurrent_runs: u32,
    /// Bytes of each slot's linear memory reset in place rather than
    /// returned to the kernel between runs.
    pub keep_resident: usize,
    /// Use the `pagemap_scan` ioctl (Linux 6.7+) to reset only the pages a
    /// run dirtied; ignored where the kernel lacks it.
    pub pagemap_scan: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            pooling: true,
            max_concurrent_runs: 256,
            keep_resident: 4 << 20,
            pagemap_scan: true,
        }
    }
}

/// Builds the engine, returning which allocator it ended up with.
///
/// # Errors
/// When even the on-demand configuration cannot be built (an unsupported
/// platform).
pub fn build(options: &EngineOptions) -> wasmtime::Result<(Engine, Allocator)> {
    if options.pooling {
        let mut config = base_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(options)));
        match Engine::new(&config) {
            Ok(engine) => return Ok((engine, Allocator::Pooling)),
            Err(err) => tracing::warn!(
                error = %format!("{err:#}"),
                "pooling allocator unavailable, falling back to on-demand allocation"
            ),
        }
    }
    Ok((Engine::new(&base_config())?, Allocator::OnDemand))
}

/// An engine that only compiles, for the plugin compiler process
/// (`wasmcron __compile`): the same code-generation settings as
/// [`build`], so its output loads into the runtime's engine (the pooling
/// allocator does not change compiled code), but no pool reserved up
/// front (the process runs under an address-space limit) and no compile
/// threads (one compile uses one core; the folder runs several at once).
///
/// # Errors
/// When the configuration cannot be built (an unsupported platform).
pub fn compiler() -> wasmtime::Result<Engine> {
    let mut config = base_config();
    config.parallel_compilation(false);
    Engine::new(&config)
}

fn base_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        // Deep recursion traps as a stack overflow well before the host's
        // fiber stack (2 MiB by default) is at risk.
        .max_wasm_stack(1 << 20);
    config
}

fn pooling(options: &EngineOptions) -> PoolingAllocationConfig {
    let n = options.max_concurrent_runs.max(1);
    let mut pool = PoolingAllocationConfig::default();
    // A Rust component has one memory and a handful of core instances
    // (the main module plus the component model's shims); leave headroom
    // for other toolchains (componentize-py builds several modules).
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(16))
        .total_memories(n.saturating_mul(4))
        // Each table slot reserves `MAX_TABLE_ELEMENTS` pointers (800 KB of
        // address space, touched only as far as a guest's table reaches);
        // four per run covers a Rust component's one or two.
        .total_tables(n.saturating_mul(4))
        .table_elements(MAX_TABLE_ELEMENTS)
        .total_stacks(n)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_memory_size(usize::try_from(MAX_MEMORY_LIMIT).unwrap_or(usize::MAX))
        .linear_memory_keep_resident(options.keep_resident)
        .table_keep_resident(64 << 10)
        .pagemap_scan(if options.pagemap_scan {
            Enabled::Auto
        } else {
            Enabled::No
        });
    pool
}
