//! `httpres`: a hostile guest that makes the host hold memory through
//! `wasi:http` resources, without sending a single request. A test plugin
//! for the per-run bound on HTTP resources.
//!
//! Args:
//! - `fields`: how many `fields` resources to create and keep alive;
//! - `value_bytes`: the size of the one header each gets (0: none);
//! - `from_list`: build each with `fields.from-list` rather than the
//!   constructor and `append`.
//!
//! Returns `created=N` when every resource was created; the host is
//! expected to stop it first.

use serde::Deserialize;
use wasip2::http::types::Fields;
use wasmcron_guest::{Context, JobError, job};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Args {
    fields: usize,
    value_bytes: usize,
    from_list: bool,
}

#[job]
fn httpres(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    let value = vec![b'a'; args.value_bytes];
    let mut held = Vec::with_capacity(args.fields);
    for i in 0..args.fields {
        let fields = if args.from_list {
            let entries = if value.is_empty() {
                Vec::new()
            } else {
                vec![("x-pad".to_owned(), value.clone())]
            };
            Fields::from_list(&entries)
                .map_err(|e| JobError::permanent(format!("from-list {i}: {e:?}")))?
        } else {
            let fields = Fields::new();
            if !value.is_empty() {
                fields
                    .append("x-pad", &value)
                    .map_err(|e| JobError::permanent(format!("append {i}: {e:?}")))?;
            }
            fields
        };
        held.push(fields);
    }
    Ok(format!("created={}", held.len()))
}
