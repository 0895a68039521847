//! `hog`: allocates and touches memory until something stops it. A test
//! plugin for the memory limit.

use wasmcron_guest::{Context, JobError, job};

#[job]
fn hog(_ctx: Context) -> Result<String, JobError> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // 1 MiB at a time, written so the pages are really used.
        chunks.push(vec![0xAB; 1 << 20]);
        std::hint::black_box(&chunks);
    }
}
