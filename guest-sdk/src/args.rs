//! Declaring the JSON Schema of a job's arguments, so the host refuses a
//! job with bad `args` when it is added instead of the run failing hours
//! later.
//!
//! ```no_run
//! use serde::Deserialize;
//! use wasmcron_guest::{Context, JobArgs, JobError, job};
//!
//! #[derive(Deserialize, JobArgs)]
//! #[serde(deny_unknown_fields)]
//! struct Args {
//!     /// Who to greet.
//!     name: String,
//!     /// How many times (1 when absent).
//!     times: Option<u8>,
//! }
//!
//! #[job(args = Args)]
//! fn greet(ctx: Context) -> Result<String, JobError> {
//!     let args: Args = ctx.args()?;
//!     Ok(format!("Hello, {}!", args.name).repeat(usize::from(args.times.unwrap_or(1))))
//! }
//! # fn main() {}
//! ```
//!
//! `#[derive(JobArgs)]` writes the schema at compile time from the type's
//! fields, following serde's rules for what may be missing (`Option`
//! fields, `#[serde(default)]`) and what is refused
//! (`#[serde(deny_unknown_fields)]`); `#[job(args = Args)]` puts it in the
//! component as the custom section `wasmcron:args-schema`, where the host
//! reads it without running any code. Doc comments become `description`s,
//! which the dashboard shows beside each field.
//!
//! What the derive understands: `bool`, integers (with their ranges),
//! floats, `String`/`str`/`char`/`PathBuf`, `Option`, `Vec` and the other
//! sequences and sets, maps with string keys, `Box`/`Rc`/`Arc`, arrays,
//! `serde_json::Value`, and other types that derive `JobArgs` (structs
//! with named fields, newtypes, and enums of unit variants). serde
//! attributes it cannot follow (`flatten`, `deserialize_with`, `untagged`,
//! ...) make the part they touch accept anything, so the schema is never
//! stricter than serde. A field of a type it does not know is a compile
//! error naming `JobArgs`: mark it `#[args(any)]` to accept any JSON
//! there. Recursive types are not supported.

/// A type whose JSON Schema is known at compile time; derive it with
/// `#[derive(JobArgs)]`.
pub trait JobArgs {
    /// The JSON Schema (2020-12) of the type's serde representation, as
    /// JSON text.
    const SCHEMA: &'static str;
}

macro_rules! schema {
    ($($ty:ty => $schema:literal),* $(,)?) => {
        $(impl JobArgs for $ty {
            const SCHEMA: &'static str = $schema;
        })*
    };
}

schema! {
    bool => r#"{"type":"boolean"}"#,
    u8 => r#"{"type":"integer","minimum":0,"maximum":255}"#,
    u16 => r#"{"type":"integer","minimum":0,"maximum":65535}"#,
    u32 => r#"{"type":"integer","minimum":0,"maximum":4294967295}"#,
    u64 => r#"{"type":"integer","minimum":0}"#,
    u128 => r#"{"type":"integer","minimum":0}"#,
    usize => r#"{"type":"integer","minimum":0}"#,
    i8 => r#"{"type":"integer","minimum":-128,"maximum":127}"#,
    i16 => r#"{"type":"integer","minimum":-32768,"maximum":32767}"#,
    i32 => r#"{"type":"integer","minimum":-2147483648,"maximum":2147483647}"#,
    i64 => r#"{"type":"integer"}"#,
    i128 => r#"{"type":"integer"}"#,
    isize => r#"{"type":"integer"}"#,
    f32 => r#"{"type":"number"}"#,
    f64 => r#"{"type":"number"}"#,
    char => r#"{"type":"string","minLength":1,"maxLength":1}"#,
    str => r#"{"type":"string"}"#,
    String => r#"{"type":"string"}"#,
    std::path::PathBuf => r#"{"type":"string"}"#,
    serde_json::Value => "{}",
    () => r#"{"type":"null"}"#,
}

/// The total length of `parts`.
#[doc(hidden)]
pub const fn total_len(parts: &[&str]) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < parts.len() {
        len += parts[i].len();
        i += 1;
    }
    len
}

/// `parts` joined, as an array of exactly `N` bytes ([`total_len`]).
#[doc(hidden)]
pub const fn concat<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        let bytes = parts[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            out[at] = bytes[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(at == N, "concat: N is not the parts' total length");
    out
}

/// The bytes [`concat`] made, as text again.
#[doc(hidden)]
pub const fn as_str(bytes: &'static [u8]) -> &'static str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("an args schema is UTF-8 by construction"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_join_at_compile_time() {
        const PARTS: &[&str] = &["{\"a\":", <u8 as JobArgs>::SCHEMA, "}"];
        const LEN: usize = total_len(PARTS);
        const BYTES: [u8; LEN] = concat::<LEN>(PARTS);
        const TEXT: &str = as_str(&BYTES);
        assert_eq!(
            TEXT,
            r#"{"a":{"type":"integer","minimum":0,"maximum":255}}"#
        );
    }
}
