//! Any bytes as a plugin file, through the loader `plugin check` and
//! `plugin run` use: header checks, wasmtime's validation and compilation,
//! linking and the world check. The answer is a plugin or an error, never
//! a panic or an abort.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use wasmcron::plugin::Plugin;
use wasmcron::runtime::{Runtime, RuntimeConfig};
use wasmcron::store::MemoryKv;

/// One engine and linker for the whole run, as in the host: building one
/// per input would cost more than most inputs.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig::default(), Arc::new(MemoryKv::default()))
            .unwrap_or_else(|e| panic!("cannot build the runtime: {e:#}"))
    })
}

fuzz_target!(|data: &[u8]| {
    match Plugin::load_bytes(runtime(), "fuzz".to_owned(), data) {
        Ok(plugin) => {
            let _ = (plugin.world(), plugin.imports(), plugin.exports());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
