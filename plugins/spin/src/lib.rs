//! `spin`: never returns. A test plugin for the fuel and timeout limits.

use wasmcron_guest::{Context, JobError, job};

#[job]
fn spin(_ctx: Context) -> Result<(), JobError> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}
