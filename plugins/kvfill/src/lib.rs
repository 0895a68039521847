//! `kvfill`: a hostile guest that fills its kv store until the host says
//! no, with keys a character count would under-count (issue 10, items 4
//! and 5): led by NUL, or made of 4-byte characters.
//!
//! Args (all optional):
//! - `prefix`: what every key starts with (default `"\u0000"`);
//! - `key_bytes`: each key's length in bytes, padded after the prefix with
//!   the prefix's last character and then a 6-digit counter (default 200);
//! - `value_bytes`: each value's length (default 2000);
//! - `max_keys`: stop after this many keys (default 1,000,000).
//!
//! Output: `{"stored": N, "bytes": B, "error": E}`: how many sets
//! succeeded, their keys' and values' bytes, and the error that stopped it
//! (`null` when `max_keys` did).

use serde::Deserialize;
use serde_json::json;
use wasmcron_guest::{Context, JobError, job, kv};

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Args {
    prefix: String,
    key_bytes: usize,
    value_bytes: usize,
    max_keys: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            prefix: "\0".into(),
            key_bytes: 200,
            value_bytes: 2000,
            max_keys: 1_000_000,
        }
    }
}

/// Key `i`: the prefix, padded with its last character, then `i` in six
/// digits, `bytes` long (or as close as whole characters allow).
fn key(args: &Args, i: u64) -> String {
    let pad = args.prefix.chars().last().unwrap_or('\0');
    let mut key = args.prefix.clone();
    while key.len() + pad.len_utf8() + 6 <= args.key_bytes {
        key.push(pad);
    }
    key.push_str(&format!("{i:06}"));
    key
}

#[job]
fn fill(ctx: Context) -> Result<serde_json::Value, JobError> {
    let args: Args = ctx.args()?;
    let value = vec![0xA5u8; args.value_bytes];
    let (mut stored, mut bytes) = (0u64, 0u64);
    let mut error = None;
    while stored < args.max_keys {
        let key = key(&args, stored);
        match kv::set(&key, &value) {
            Ok(()) => {
                stored += 1;
                bytes += (key.len() + value.len()) as u64;
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    // Read one back, to show the NUL-led key was stored as given.
    let first_ok = stored == 0 || kv::get(&key(&args, 0))?.as_deref() == Some(&value[..]);
    Ok(json!({ "stored": stored, "bytes": bytes, "error": error, "first_read_back": first_ok }))
}
