//! Any bytes as a trigger spec (the API's and the jobs file's `trigger`):
//! refused with an error naming the field, or built into a trigger whose
//! fires are strictly increasing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmcron::trigger::TriggerSpec;
use wasmcron_fuzz::{now, walk_all};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<TriggerSpec>(data) else {
        return;
    };
    // The seed comes from the job id in the host; any value will do here,
    // and one from the input lets the fuzzer vary the jitter.
    let seed = data
        .iter()
        .fold(0u64, |h, &b| h.rotate_left(5) ^ u64::from(b));
    match spec.build(now(), seed) {
        Ok(trigger) => walk_all(&trigger),
        Err(e) => {
            let _ = (e.to_string(), e.field());
        }
    }
});
