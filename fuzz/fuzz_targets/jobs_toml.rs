//! Any text as a jobs file (`wasmcron run --config`): refused with an
//! error, or read into job specs that are each accepted or refused like an
//! API body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmcron::app::ConfigFile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ConfigFile::parse(text) {
        Ok(config) => {
            for spec in &config.jobs {
                wasmcron_fuzz::check_job(spec);
            }
        }
        Err(e) => {
            let _ = format!("{e:#}");
        }
    }
});
