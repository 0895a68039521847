//! Any bytes as a job spec, as the HTTP API receives it: refused with an
//! error naming the field, or validated into a job whose trigger fires in
//! order and whose spec reads back from the store unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmcron::job::JobSpec;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = serde_json::from_slice::<JobSpec>(data) {
        wasmcron_fuzz::check_job(&spec);
    }
});
