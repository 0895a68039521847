//! `wasmcron plugin check` and `wasmcron plugin run`, through the binary;
//! and how the API client (`wasmcron jobs|runs|plugins|cluster`) behaves
//! at a closed pipe and a 401.

use std::process::{Command, Output, Stdio};
use wasmcron_tests::host::{Host, setup};
use wasmcron_tests::pg::TestDb;
use wasmcron_tests::plugins;

fn wasmcron(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_wasmcron"))
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cannot run wasmcron: {e}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_prints_world_exports_and_imports() {
    let out = wasmcron(&["plugin", "check", plugins::HELLO]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    // The SDK targets 0.2.0.
    assert!(
        stdout.contains("world:   wasmcron:plugin/job@0.2.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("exports: wasmcron:plugin/runner@0.2.0"),
        "{stdout}"
    );
    assert!(stdout.contains("wasmcron:plugin/log@0.2.0"), "{stdout}");
    assert!(stdout.contains("hash:    sha256:"), "{stdout}");
}

#[test]
fn check_names_the_version_a_component_targets() {
    for (plugin, world) in [
        (plugins::LEGACY, "wasmcron:plugin/job@0.1.0"),
        (plugins::LEGACY_ALERT, "wasmcron:plugin/listener@0.1.0"),
        (plugins::LINEAGE, "wasmcron:plugin/job@0.2.0"),
        (plugins::ALERT, "wasmcron:plugin/listener@0.2.0"),
    ] {
        let out = wasmcron(&["plugin", "check", "--json", plugin]);
        assert!(out.status.success(), "{plugin}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(v["world"], world, "{plugin}");
    }
}

#[test]
fn check_json_is_machine_readable() {
    let out = wasmcron(&["plugin", "check", "--json", plugins::COUNTER]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["ok"], true);
    assert_eq!(v["name"], "counter");
    assert!(
        v["imports"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i == "wasmcron:plugin/kv@0.2.0"))
    );
}

/// hello declares its args (`#[job(args = Args)]`): `plugin check` shows
/// the schema, `plugin run` refuses args that break it before running;
/// counter declares none and says so.
#[test]
fn check_shows_a_declared_args_schema_and_run_holds_args_to_it() {
    let out = wasmcron(&["plugin", "check", "--json", plugins::HELLO]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["args_schema"]["type"], "object", "{v}");
    assert_eq!(v["args_schema"]["additionalProperties"], false, "{v}");
    assert!(v["args_schema"]["properties"]["name"].is_object(), "{v}");
    let out = wasmcron(&["plugin", "check", plugins::HELLO]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("args schema (jobs' args are checked against it):"),
        "{stdout}"
    );
    assert!(stdout.contains("Who to greet"), "{stdout}");

    let out = wasmcron(&["plugin", "check", "--json", plugins::COUNTER]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["args_schema"], serde_json::Value::Null, "{v}");
    let out = wasmcron(&["plugin", "check", plugins::COUNTER]);
    assert!(
        text(&out.stdout).contains("args schema: none declared (any args are accepted)"),
        "{}",
        text(&out.stdout)
    );

    let out = wasmcron(&["plugin", "run", plugins::HELLO, "--args", r#"{"name": 7}"#]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--args: args.name:"), "{stderr}");
    assert!(stderr.contains("plugin 'hello'"), "{stderr}");
    let out = wasmcron(&[
        "plugin",
        "run",
        plugins::HELLO,
        "--args",
        r#"{"nmae": "x"}"#,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nmae"), "{stderr}");
    let out = wasmcron(&[
        "plugin",
        "run",
        plugins::HELLO,
        "--args",
        r#"{"name": "Ada"}"#,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Hello, Ada!"));
}

/// A declared schema whose branches double at each level (40 levels: 2^40
/// steps to check one bad document) is refused at load, naming the limit,
/// rather than holding a thread of the host when a job is checked.
#[test]
fn a_schema_too_costly_to_check_is_refused_at_load() {
    let mut defs = serde_json::Map::new();
    for i in 0..40 {
        let next = format!("#/$defs/a{}", i + 1);
        defs.insert(
            format!("a{i}"),
            serde_json::json!({"anyOf": [{"$ref": next}, {"$ref": next}]}),
        );
    }
    defs.insert("a40".into(), serde_json::json!({"type": "string"}));
    let schema = serde_json::json!({"$defs": defs, "type": "object",
        "properties": {"name": {"$ref": "#/$defs/a0"}}});
    let bytes = std::fs::read(plugins::COUNTER).expect("counter");
    let bytes = wasmcron::plugin::declared::append_custom_section(
        &bytes,
        wasmcron::plugin::declared::ARGS_SCHEMA_SECTION,
        schema.to_string().as_bytes(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("expo.wasm");
    std::fs::write(&file, bytes).expect("write");
    let out = wasmcron(&["plugin", "check", &file.to_string_lossy()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the limit is 100000"), "{stderr}");
    assert!(stderr.contains("anyOf"), "{stderr}");
}

/// A missing file is reported once, with the OS's reason once.
#[test]
fn a_missing_file_is_named_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("nope.wasm");
    let file = file.to_string_lossy();
    for cmd in ["check", "run"] {
        let out = wasmcron(&["plugin", cmd, &file]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.matches("No such file").count(), 1, "{cmd}: {stderr}");
        assert!(stderr.contains("cannot read"), "{cmd}: {stderr}");
    }
}

#[test]
fn check_refuses_bad_files_with_non_zero_exit_and_a_reason() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"this is not wasm").unwrap_or_else(|e| panic!("{e}"));
    let garbage = garbage.display().to_string();
    let cases = [
        (garbage.as_str(), "not a WebAssembly file"),
        (plugins::WRONG_WORLD, "does not implement world `job`"),
        (plugins::UNKNOWN_IMPORT, "imports `acme:secrets/vault`"),
        ("/no/such/plugin.wasm", "cannot read"),
    ];
    for (file, reason) in cases {
        let out = wasmcron(&["plugin", "check", file]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(reason), "{file}: {stderr}");
    }
}

#[test]
fn run_prints_the_outcome_and_exits_by_it() {
    let out = wasmcron(&[
        "plugin",
        "run",
        plugins::HELLO,
        "--args",
        r#"{"name":"CLI"}"#,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("outcome:  succeeded"), "{stdout}");
    assert!(stdout.contains("output:   Hello, CLI!"), "{stdout}");

    let out = wasmcron(&["plugin", "run", plugins::SPIN, "--fuel", "1000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("outcome:  out-of-fuel"));
}

/// `--cache-dir`: the first run compiles and fills the cache, a later one
/// loads from it (the entry is used, not rewritten) and runs the same; a
/// cache entry that is damaged is discarded and the file compiled again.
#[test]
fn run_with_a_cache_dir_fills_it_and_loads_from_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("compiled");
    let cache_arg = cache.display().to_string();
    let run = || wasmcron(&["plugin", "run", plugins::HELLO, "--cache-dir", &cache_arg]);
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect()
    };
    let first = run();
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stored = entries();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let written = std::fs::read(&stored[0]).expect("entry");
    let second = run();
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("Hello, world!"),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(std::fs::read(&stored[0]).expect("entry"), written);
    std::fs::write(&stored[0], b"not a compiled component").expect("damage");
    let third = run();
    assert!(third.status.success(), "{}", text(&third.stderr));
    let again = std::fs::read(&stored[0]).expect("recompiled and stored again");
    assert_ne!(again, b"not a compiled component".to_vec());
    assert_eq!(again.len(), written.len(), "a whole entry stored again");
}

#[test]
fn run_json_reports_outcome_fuel_and_logs() {
    let out = wasmcron(&["plugin", "run", "--json", plugins::PANIC]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["outcome"]["kind"], "trapped");
    assert!(v["fuel_consumed"].as_u64().is_some_and(|f| f > 0));
    assert!(v["logs"].as_array().is_some_and(|l| !l.is_empty()));
}

#[test]
fn run_rejects_bad_arguments_before_running() {
    let out = wasmcron(&["plugin", "run", plugins::HELLO, "--args", "{not json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--args is not valid JSON"));
    let out = wasmcron(&["plugin", "run", plugins::HELLO, "--timeout", "30"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("has no unit"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_and_run_compile_under_bounds_and_refuse_a_file_over_them() {
    // A component shaped to take far longer than a second to compile
    // (17 s of CPU in the debug build, whose cranelift is optimised):
    // compiled in a child process under the bound, refused with the
    // reason, the CLI itself unharmed.
    let dir = tempfile::tempdir().expect("tempdir");
    let heavy = dir.path().join("heavy.wasm");
    std::fs::write(&heavy, wasmcron_tests::slow::slow_component(8, 9000, 7)).expect("heavy");
    let heavy = heavy.to_str().expect("utf-8 path");
    for cmd in ["check", "run"] {
        let out = wasmcron(&["plugin", cmd, "--compile-timeout", "1s", heavy]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "{cmd}: {all}");
        assert!(
            all.contains("compile time limit (1s, --compile-timeout)"),
            "{cmd}: {all}"
        );
    }
}

/// `wasmcron ARGS --url URL` with no token from the environment, its
/// stdout going to `stdout`.
fn client(args: &[&str], url: &str, stdout: Stdio) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_wasmcron"))
        .args(args)
        .args(["--url", url])
        .env_remove("WASMCRON_TOKEN")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cannot run wasmcron: {e}"),
    }
}

#[test]
fn the_cli_client_ends_quietly_when_its_reader_goes_away() {
    // `wasmcron cluster status | head -1`, where head has read its line
    // and gone before the rest is written: the write fails with EPIPE,
    // which must end the command with success and no panic. The reader
    // here is closed before the command starts, so every write fails.
    let db = TestDb::create();
    let dir = setup("version = 1\n", &[]);
    let host = Host::start_with_db_url(env!("CARGO_BIN_EXE_wasmcron"), dir.path(), db.url(), &[]);
    let url = host.api_url();
    let commands: [&[&str]; 5] = [
        &["cluster", "status"],
        &["cluster", "status", "--json"],
        &["jobs", "list"],
        &["plugins", "list"],
        &["jobs", "list", "--json"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = client(args, &url, Stdio::from(writer));
        let stderr = text(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "wasmcron {args:?} into a closed pipe: {} {stderr}",
            out.status
        );
    }
    // Into a reader that stays, the same commands print (the test above
    // is not passing because nothing was written).
    let out = client(&["cluster", "status"], &url, Stdio::piped());
    assert!(
        out.status.success() && text(&out.stdout).starts_with("leader: "),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_cli_client_says_how_to_pass_the_token_on_a_401() {
    let dir = setup("version = 1\n", &[]);
    let token = "a-token-of-at-least-16-characters";
    let host = Host::start(
        env!("CARGO_BIN_EXE_wasmcron"),
        dir.path(),
        &["--token", token],
    );
    let url = host.api_url();
    let out = client(&["jobs", "rm", "nope"], &url, Stdio::piped());
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("401")
            && stderr.contains("--token TOKEN")
            && stderr.contains("WASMCRON_TOKEN"),
        "without a token: {stderr}"
    );
    let out = client(
        &["jobs", "rm", "nope", "--token", "not-the-right-one-at-all"],
        &url,
        Stdio::piped(),
    );
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("refused the API token given")
            && stderr.contains("WASMCRON_TOKEN"),
        "with a wrong token: {stderr}"
    );
    // With the right one the request goes through (a 404: no such job).
    let out = client(
        &["jobs", "rm", "nope", "--token", token],
        &url,
        Stdio::piped(),
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("404"),
        "with the token: {}",
        text(&out.stderr)
    );
}
