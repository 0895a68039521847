//! Issue 16, items 1 and 2: `wasmcron new` writes a plugin project that
//! `wasmcron plugin build` builds into a component `wasmcron plugin run`
//! runs, outside this repository (a temporary folder, the SDK vendored).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

/// Runs the binary in `cwd`; cargo builds of generated projects share one
/// target directory under this test's own tmp dir (kept between runs, so
/// only the first run compiles serde and wit-bindgen for wasm32).
fn wasmcron(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let target: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run wasmcron");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn built(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("built: "))
        .unwrap_or_else(|| panic!("no `built:` line in {stdout}"))
        .trim()
        .to_owned()
}

#[test]
fn a_new_rust_job_builds_and_runs_with_its_template_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = wasmcron(dir.path(), &["new", "nightly-report", "--lang", "rust"]);
    assert!(ok, "{out}{err}");
    let project = dir.path().join("nightly-report");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "README.md",
        "wit/v0.2/wasmcron.wit",
        "wasmcron-guest/src/lib.rs",
    ] {
        assert!(project.join(file).is_file(), "{file} not written");
    }
    assert!(out.contains("wasmcron plugin build"), "{out}");
    let readme = std::fs::read_to_string(project.join("README.md")).expect("readme");
    assert!(
        readme.contains("wasmcron plugin run") && readme.contains("rustup target add"),
        "{readme}"
    );

    let (ok, out, err) = wasmcron(&project, &["plugin", "build"]);
    assert!(ok, "{out}{err}");
    let wasm = built(&out);
    assert!(wasm.ends_with("nightly_report.wasm"), "{wasm}");
    assert!(out.contains("world:   wasmcron:plugin/job@0.2.0"), "{out}");

    let (ok, out, err) = wasmcron(
        dir.path(),
        &["plugin", "run", &wasm, "--args", r#"{"name": "Ada"}"#],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("Hello, Ada! (run 1)"), "{out}");
    assert!(
        out.contains("greeting Ada"),
        "the template's log line: {out}"
    );
    // Its args type declares its schema (`#[job(args = Args)]`): a
    // misspelt field is refused before anything runs, naming it, as a
    // host refuses such a job when it is added.
    let (ok, out, err) = wasmcron(
        dir.path(),
        &["plugin", "run", &wasm, "--args", r#"{"nam": "Ada"}"#],
    );
    assert!(
        !ok && err.contains("--args: args.") && err.contains("args.nam: "),
        "{out}{err}"
    );
    let (ok, out, err) = wasmcron(dir.path(), &["plugin", "check", "--json", &wasm]);
    assert!(ok, "{out}{err}");
    let check: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(
        check["args_schema"]["properties"]["name"]["description"],
        "Who to greet; \"world\" when not given.",
        "{out}"
    );
    let (ok, out, _) = wasmcron(
        dir.path(),
        &["plugin", "run", &wasm, "--args", r#"{"name": ""}"#],
    );
    assert!(!ok && out.contains("args.name is empty"), "{out}");
}

#[test]
fn a_new_listener_builds_as_world_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = wasmcron(
        dir.path(),
        &["new", "pager", "--listener", "--dir", "hooks/pager"],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = wasmcron(dir.path(), &["plugin", "build", "hooks/pager"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("world:   wasmcron:plugin/listener@0.2.0"),
        "{out}"
    );
    let wasm = built(&out);
    assert!(wasm.ends_with("pager.wasm"), "{out}");
    // `plugin run` says a listener is not a job, before running anything.
    let (ok, out, err) = wasmcron(dir.path(), &["plugin", "run", &wasm]);
    assert!(
        !ok && err.contains("is a listener") && !out.contains("trapped"),
        "{out}{err}"
    );
}

#[test]
fn new_and_build_refuse_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) = wasmcron(dir.path(), &["new", "Bad Name"]);
    assert!(!ok && err.contains("lowercase letters"), "{err}");
    std::fs::create_dir(dir.path().join("taken")).expect("mkdir");
    std::fs::write(dir.path().join("taken/x"), "x").expect("write");
    let (ok, _, err) = wasmcron(dir.path(), &["new", "taken"]);
    assert!(!ok && err.contains("not empty"), "{err}");
    let (ok, _, err) = wasmcron(dir.path(), &["new", "x", "--lang", "cobol"]);
    assert!(!ok && err.contains("rust"), "{err}");
    let (ok, _, err) = wasmcron(dir.path(), &["plugin", "build", "taken"]);
    assert!(!ok && err.contains("wasmcron new"), "{err}");
}
