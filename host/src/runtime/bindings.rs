//! Host-side bindings of the WIT package `wasmcron:plugin`, generated at
//! compile time, one module per version the host serves:
//! [`v0_1`] from `wit/v0.1/wasmcron.wit` (0.1.0) and [`v0_2`] from
//! `wit/v0.2/wasmcron.wit` (0.2.0).
//!
//! Each version is bound on its own (its own directory, its own `bindgen!`),
//! so the generated names are the same in both (`wasmcron::plugin::types`,
//! ...) and the imports each links carry its version (`...@0.1.0`,
//! `...@0.2.0`). Both versions' imports live in one linker: a component's
//! imports pick theirs, and which world it exports says which it targets
//! (see `component.rs`). In each version, world `job` is at the top and
//! world `listener` in `listener`, sharing the import interfaces so one set
//! of host implementations per version serves both worlds.

/// `wasmcron:plugin@0.1.0`: the first contract, still loaded and run
/// unchanged.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "job",
        path: "../wit/v0.1",
        exports: { default: async },
    });

    /// World `listener` of 0.1.0.
    pub mod listener {
        wasmtime::component::bindgen!({
            world: "listener",
            path: "../wit/v0.1",
            exports: { default: async },
            with: {
                "wasmcron:plugin/types": super::wasmcron::plugin::types,
                "wasmcron:plugin/log": super::wasmcron::plugin::log,
                "wasmcron:plugin/kv": super::wasmcron::plugin::kv,
            },
        });
    }
}

/// `wasmcron:plugin@0.2.0`: the run context says why a run happened and
/// which run started a chained one; listeners hear recoveries and pauses
/// as kinds of their own.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        world: "job",
        path: "../wit/v0.2",
        exports: { default: async },
    });

    /// World `listener` of 0.2.0.
    pub mod listener {
        wasmtime::component::bindgen!({
            world: "listener",
            path: "../wit/v0.2",
            exports: { default: async },
            with: {
                "wasmcron:plugin/types": super::wasmcron::plugin::types,
                "wasmcron:plugin/log": super::wasmcron::plugin::log,
                "wasmcron:plugin/kv": super::wasmcron::plugin::kv,
            },
        });
    }
}
