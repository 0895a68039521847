//! `flood`: a hostile guest that floods the host's log capture with records
//! that cost it nothing to make. A test plugin for the capture's budget.
//!
//! Args (all optional):
//! - `empty_logs`: call `log` this many times with an empty message;
//! - `empty_lines`: print this many empty lines to stdout;
//! - `fields` / `field_calls`: call `log` `field_calls` times (default 1),
//!   each time passing the same list of `fields` empty fields.
//!
//! Returns how many calls it made, as `calls=N`.

use serde::Deserialize;
use wasmcron_guest::bindings::wasmcron::plugin::log::{Level, log};
use wasmcron_guest::{Context, JobError, job};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Args {
    empty_logs: u64,
    empty_lines: u64,
    fields: usize,
    field_calls: Option<u64>,
}

#[job]
fn flood(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    let mut calls = 0u64;
    for _ in 0..args.empty_logs {
        log(Level::Info, "", &[]);
        calls += 1;
    }
    for _ in 0..args.empty_lines {
        println!();
        calls += 1;
    }
    if args.fields > 0 {
        // Built once and passed again and again: each call costs the guest
        // little more than the lowering of the list.
        let fields = vec![(String::new(), String::new()); args.fields];
        for _ in 0..args.field_calls.unwrap_or(1) {
            log(Level::Info, "fields", &fields);
            calls += 1;
        }
    }
    Ok(format!("calls={calls}"))
}
