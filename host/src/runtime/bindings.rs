//! Host-side bindings of `wit/wasmcron.wit`, generated at compile time.

wasmtime::component::bindgen!({
    world: "job",
    path: "../wit",
    exports: { default: async },
});
