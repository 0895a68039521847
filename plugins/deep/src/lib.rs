//! `deep`: recurses without bound. A test plugin for stack overflow traps.

use wasmcron_guest::{Context, JobError, job};

#[inline(never)]
#[expect(
    unconditional_recursion,
    reason = "overflowing the stack is this plugin's purpose"
)]
fn down(n: u64) -> u64 {
    // Not a tail call, and small frames: the wasm call stack overflows
    // (a "call stack exhausted" trap) before Rust's shadow stack does.
    let below = down(std::hint::black_box(n.wrapping_mul(3).wrapping_add(1)));
    below.rotate_left(1) ^ n
}

#[job]
fn deep(_ctx: Context) -> Result<String, JobError> {
    Ok(down(0).to_string())
}
