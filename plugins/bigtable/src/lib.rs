//! `bigtable`: a job whose function table starts with more than 50,000
//! elements (see `build.rs`), which calls through it. A test plugin for the
//! table limit: the host documents 100,000 elements, so this must load and
//! run.

use wasmcron_guest::{Context, JobError, job};

fn double(x: u64) -> u64 {
    x * 2
}

fn triple(x: u64) -> u64 {
    x * 3
}

#[job]
fn bigtable(ctx: Context) -> Result<String, JobError> {
    // Indirect calls, so the functions are in the table.
    let ops: [fn(u64) -> u64; 2] = std::hint::black_box([double, triple]);
    let n = u64::from(ctx.attempt());
    Ok(format!("{}", ops[0](n) + ops[1](n)))
}
