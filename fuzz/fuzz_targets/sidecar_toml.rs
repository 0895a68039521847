//! Any text as a plugin's sidecar (`NAME.toml`): refused with an error
//! naming the file, or read into default grants and job specs that are
//! each accepted or refused like an API body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use wasmcron::plugin::Sidecar;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Sidecar::parse("cleanup", text, Path::new("/srv/plugins")) {
        Ok(sidecar) => {
            for spec in &sidecar.jobs {
                assert_eq!(
                    spec.plugin, "cleanup",
                    "a sidecar's job runs another plugin"
                );
                wasmcron_fuzz::check_job(spec);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
