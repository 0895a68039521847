//! `probe`: pokes at the sandbox's edges, as its args say, and reports what
//! happened as JSON. A test plugin for the host's limits and grants.
//!
//! Args (all optional):
//! - `print_lines`: print this many 100-byte lines to stdout;
//! - `output_bytes`: return an output this long;
//! - `kv_key_len` / `kv_value_len`: try a kv set of these sizes;
//! - `env`: list the environment variables the guest can see;
//! - `read_file`: try to read this path;
//! - `write_file`: try to write a few bytes to this path;
//! - `list_dir`: try to list this directory;
//! - `echo_env`: print `NAME=value` of these variables to stdout and
//!   return them in the output (to check secrets are scrubbed).

use serde::Deserialize;
use serde_json::{Value, json};
use wasmcron_guest::{Context, JobError, job, kv};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Args {
    print_lines: usize,
    output_bytes: usize,
    kv_key_len: Option<usize>,
    kv_value_len: Option<usize>,
    env: bool,
    read_file: Option<String>,
    write_file: Option<String>,
    list_dir: Option<String>,
    echo_env: Vec<String>,
}

#[job]
fn probe(ctx: Context) -> Result<String, JobError> {
    let args: Args = ctx.args()?;
    let mut report = serde_json::Map::new();
    for i in 0..args.print_lines {
        println!("{i:>6} {}", "x".repeat(93));
    }
    if args.kv_key_len.is_some() || args.kv_value_len.is_some() {
        let key = "k".repeat(args.kv_key_len.unwrap_or(3));
        let value = vec![7u8; args.kv_value_len.unwrap_or(1)];
        let result = match kv::set(&key, &value) {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        };
        report.insert("kv_set".into(), Value::String(result));
    }
    if args.env {
        let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        report.insert("env".into(), json!(vars));
    }
    if let Some(path) = &args.read_file {
        let result = match std::fs::read(path) {
            Ok(bytes) => format!("read {} bytes", bytes.len()),
            Err(e) => format!("error: {e}"),
        };
        report.insert("read_file".into(), Value::String(result));
    }
    if let Some(path) = &args.write_file {
        let result = match std::fs::write(path, b"probe") {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        report.insert("write_file".into(), Value::String(result));
    }
    if let Some(path) = &args.list_dir {
        let result = match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                json!(names)
            }
            Err(e) => Value::String(format!("error: {e}")),
        };
        report.insert("list_dir".into(), result);
    }
    if !args.echo_env.is_empty() {
        let mut seen = serde_json::Map::new();
        for name in &args.echo_env {
            let value = std::env::var(name).ok();
            println!("{name}={}", value.as_deref().unwrap_or("<unset>"));
            seen.insert(name.clone(), json!(value));
        }
        report.insert("echo_env".into(), Value::Object(seen));
    }
    if args.output_bytes > 0 {
        return Ok("o".repeat(args.output_bytes));
    }
    Ok(Value::Object(report).to_string())
}
