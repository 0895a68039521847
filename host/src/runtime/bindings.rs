//! Host-side bindings of `wit/wasmcron.wit`, generated at compile time.
//!
//! World `job` at the top; world `listener` in [`listener`], sharing the
//! import interfaces so one set of host implementations serves both.

wasmtime::component::bindgen!({
    world: "job",
    path: "../wit",
    exports: { default: async },
});

/// World `listener`.
pub mod listener {
    wasmtime::component::bindgen!({
        world: "listener",
        path: "../wit",
        exports: { default: async },
        with: {
            "wasmcron:plugin/types": super::wasmcron::plugin::types,
            "wasmcron:plugin/log": super::wasmcron::plugin::log,
            "wasmcron:plugin/kv": super::wasmcron::plugin::kv,
        },
    });
}
