//! The limits every run executes under, and the memory limiter that
//! enforces the memory one.
//!
//! Limits are always on: there is no "unlimited" value. Each one has a
//! negative test in `tests/tests/runtime.rs`.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use wasmtime::ResourceLimiter;

/// Largest memory limit a job may ask for. The pooling allocator reserves
/// address space for this much per slot, so it is a hard ceiling.
pub const MAX_MEMORY_LIMIT: u64 = 4 << 30;

/// Per-run resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Instruction budget, in wasmtime fuel units (roughly one per wasm
    /// instruction). Example: `10_000_000_000`.
    pub fuel: u64,
    /// Wall-clock time a run may take, including time the guest spends
    /// sleeping or waiting on host calls.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// Bytes of linear memory the guest may grow each memory to.
    pub memory_bytes: u64,
}

impl Default for Limits {
    /// Generous enough for real jobs, small enough that a runaway guest is
    /// stopped within seconds: 100 G fuel (measured: a tight loop burns
    /// 10 G in about a second here, so the 30 s timeout usually stops a
    /// runaway first), 30 s, 128 MiB.
    fn default() -> Self {
        Self {
            fuel: 100_000_000_000,
            timeout: Duration::from_secs(30),
            memory_bytes: 128 << 20,
        }
    }
}

impl Limits {
    /// Checks the limits can be enforced.
    ///
    /// # Errors
    /// A message naming the field when a limit is zero or above its ceiling.
    pub fn validate(&self) -> Result<(), String> {
        if self.fuel == 0 {
            return Err("limits.fuel: must be greater than 0".into());
        }
        if self.timeout.is_zero() {
            return Err("limits.timeout: must be greater than 0".into());
        }
        if self.memory_bytes < 64 * 1024 {
            return Err("limits.memory_mib: must be at least 1".into());
        }
        if self.memory_bytes > MAX_MEMORY_LIMIT {
            return Err(format!(
                "limits.memory_mib: {} bytes exceeds the host's ceiling of {MAX_MEMORY_LIMIT}",
                self.memory_bytes
            ));
        }
        Ok(())
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Enforces the memory limit and remembers whether it was hit, so the run
/// ends as "memory limit exceeded" rather than a generic trap.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max_memory: usize,
    max_table_elements: usize,
    pub(crate) hit: bool,
}

/// The most elements a guest's table may have, at instantiation or by
/// growing. Tables hold function references (one per address-taken
/// function); large toolchains' runtimes need tens of thousands. The
/// pooling allocator reserves this many per table slot, so the engine
/// (`engine.rs`) is configured with the same number: a larger table is
/// refused when the run instantiates it, whichever allocator is in use.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    pub(crate) fn new(max_memory: u64) -> Self {
        Self {
            max_memory: usize::try_from(max_memory).unwrap_or(usize::MAX),
            max_table_elements: MAX_TABLE_ELEMENTS,
            hit: false,
        }
    }
}

/// The error a refused growth traps with; `runtime::outcome` looks for it.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (the guest asked for {desired} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit: usize,
    pub(crate) desired: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.hit = true;
            // Trapping, rather than returning Ok(false), stops the guest at
            // once: a failed grow makes Rust guests abort with a misleading
            // "memory allocation failed" and others may spin retrying.
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.max_memory,
                desired,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Limits::default().validate(), Ok(()));
    }

    #[test]
    fn zero_and_oversized_limits_are_refused_by_name() {
        let l = Limits {
            fuel: 0,
            ..Limits::default()
        };
        assert!(l.validate().unwrap_err().contains("limits.fuel"));
        let l = Limits {
            memory_bytes: MAX_MEMORY_LIMIT + 1,
            ..Limits::default()
        };
        assert!(l.validate().unwrap_err().contains("limits.memory_mib"));
        let l = Limits {
            timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(l.validate().unwrap_err().contains("limits.timeout"));
    }

    #[test]
    fn limiter_refuses_growth_past_the_limit_and_remembers() {
        let mut l = MemoryLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 1 << 20, None).is_ok());
        assert!(!l.hit);
        assert!(l.memory_growing(1 << 20, (1 << 20) + 65536, None).is_err());
        assert!(l.hit);
    }
}
