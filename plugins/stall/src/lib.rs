//! `stall`: an error listener that never returns. Every event it is given
//! keeps a CPU busy until the delivery's timeout stops it. A test plugin
//! for the bound on listener deliveries (they must never starve runs).

use wasmcron_guest::{Event, JobError, listener};

#[listener]
fn stall(_event: Event) -> Result<(), JobError> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}
