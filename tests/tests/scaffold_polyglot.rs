//! Issue 16, items 1 and 2 for Python and JavaScript: `wasmcron new --lang
//! python|js` writes a project that `wasmcron plugin build` builds (with
//! componentize-py / componentize-js) into a component carrying its
//! `args.schema.json`, which `plugin run` runs and `plugin check` shows;
//! args that break the schema are refused naming the field.
//!
//! Without the toolchains the build tests print `SKIPPED` and pass, unless
//! `WASMCRON_REQUIRE_POLYGLOT=1` (CI sets it, after `.ci/polyglot` installs
//! them), as in `polyglot.rs`.
//!
//! Cost: a debug build of wasmcron takes minutes to compile one of these
//! 12-19 MB components, and neither componentize tool builds the same bytes
//! twice (so the compile cache, keyed by content, never hits on a rebuild).
//! Each test therefore keeps its built project under `CARGO_TARGET_TMPDIR`
//! with a stamp of what made it (the files `new` writes, the scaffold's
//! build code, the toolchain variables) and builds again only when that
//! changes; `plugin run` and `plugin check` always run, through the tests'
//! shared compile cache. A cold run compiles each component once (the
//! build's check fills the cache); a warm one takes seconds.

use serde_json::Value;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wasmcron");

/// A debug build of cranelift on a loaded 2-core machine takes minutes for
/// one of these components, far past the 60 s default.
const COMPILE_TIMEOUT: &str = "900s";

const PY_INSTALL: &str = "python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1";

fn cache_dir() -> String {
    wasmcron_tests::test_cache_dir().display().to_string()
}

/// Runs the binary in `cwd` with `env` set: (success, stdout, stderr).
fn wasmcron_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wasmcron(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    wasmcron_env(cwd, args, &[])
}

/// Every file under `dir`, sorted, as (relative path, contents).
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                out.push((rel, bytes));
            }
        }
    }
    out.sort();
    out
}

/// What a built project depends on: the files `new` wrote, the code that
/// builds and embeds the schema, and the toolchain the build would find.
fn stamp(fresh: &Path) -> String {
    let mut h = DefaultHasher::new();
    tree(fresh).hash(&mut h);
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
    for file in [
        "scaffold/mod.rs",
        "scaffold/polyglot.rs",
        "scaffold/python.rs",
        "scaffold/js.rs",
        "scaffold/toolchain.rs",
        "plugin/declared.rs",
    ] {
        std::fs::read(host.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .hash(&mut h);
    }
    // The variables that pick the toolchain (.ci/polyglot exports the
    // first two), not the whole PATH: a CI runner's PATH differs from a
    // shell's for the same toolchain, and would rebuild every project.
    for var in [
        "WASMCRON_COMPONENTIZE_PY",
        "WASMCRON_COMPONENTIZE_JS",
        "WASMCRON_POLYGLOT_DIR",
    ] {
        std::env::var_os(var).hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// A project `new` wrote and `plugin build` built.
struct Built {
    /// Its `NAME.wasm`, as `plugin build` printed it.
    wasm: String,
    /// What `plugin build` printed (its check of the component).
    build_out: String,
}

/// `wasmcron new NAME --lang LANG [--listener]`, then `wasmcron plugin
/// build` (unless the same inputs were built before, see the module's
/// documentation). `None` after a `SKIPPED` line when the toolchain is
/// missing.
///
/// # Panics
/// When a step fails, or the toolchain is missing and
/// `WASMCRON_REQUIRE_POLYGLOT=1`.
fn new_and_build(name: &str, lang: &str, listener: bool) -> Option<Built> {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scaffold-polyglot")
        .join(name);
    let fresh = work.join("new");
    let project = work.join(name);
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&work).expect("work dir");
    let mut args = vec!["new", name, "--lang", lang, "--dir", "new"];
    if listener {
        args.push("--listener");
    }
    let (ok, out, err) = wasmcron(&work, &args);
    assert!(ok, "{out}{err}");
    assert!(out.contains("wasmcron plugin build"), "{out}");
    let key = stamp(&fresh);
    let stamp_file = work.join("stamp");
    let out_file = work.join("build.out");
    let reusable = std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == key)
        && project.join(format!("{name}.wasm")).is_file()
        && out_file.is_file();
    if reusable {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{name}: inputs unchanged since {} was built; not building again",
            project.display()
        );
    } else {
        let _ = std::fs::remove_file(&stamp_file);
        let _ = std::fs::remove_dir_all(&project);
        std::fs::rename(&fresh, &project).expect("move the project");
        let (ok, out, err) = wasmcron(
            &work,
            &[
                "plugin",
                "build",
                name,
                "--compile-timeout",
                COMPILE_TIMEOUT,
                "--cache-dir",
                &cache_dir(),
            ],
        );
        if !ok && (err.contains(" not found (looked at") || err.contains(" does not run: ")) {
            let why = err.trim();
            assert!(
                std::env::var("WASMCRON_REQUIRE_POLYGLOT").as_deref() != Ok("1"),
                "{name} was not built and WASMCRON_REQUIRE_POLYGLOT=1: {why}"
            );
            // Straight to stderr: the harness swallows a passing test's
            // `eprintln!`, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n******** SKIPPED: {name} was not built: {why}. Set WASMCRON_REQUIRE_POLYGLOT=1 to fail instead. ********\n"
            );
            return None;
        }
        assert!(ok, "plugin build {name}:\n{out}{err}");
        std::fs::write(&out_file, &out).expect("keep the build's output");
        std::fs::write(&stamp_file, &key).expect("stamp");
    }
    let build_out = std::fs::read_to_string(&out_file).expect("the build's output");
    let wasm = build_out
        .lines()
        .find_map(|l| l.strip_prefix("built: "))
        .unwrap_or_else(|| panic!("no `built:` line in {build_out}"))
        .trim()
        .to_owned();
    let wasm = work.join(wasm).display().to_string();
    Some(Built { wasm, build_out })
}

/// A new job in `lang`: built, run with the template's output, its schema
/// shown by `plugin check`, args that break it refused naming the field.
fn a_new_job_builds_runs_and_declares_its_args(name: &str, lang: &str) {
    let Some(built) = new_and_build(name, lang, false) else {
        return;
    };
    assert!(
        built.wasm.ends_with(&format!("{name}/{name}.wasm")),
        "{}",
        built.wasm
    );
    assert!(
        built
            .build_out
            .contains("world:   wasmcron:plugin/job@0.2.0"),
        "{}",
        built.build_out
    );
    let here = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cache = cache_dir();
    let run = |args: &str| {
        wasmcron(
            here,
            &[
                "plugin",
                "run",
                &built.wasm,
                "--json",
                "--args",
                args,
                "--compile-timeout",
                COMPILE_TIMEOUT,
                "--cache-dir",
                &cache,
            ],
        )
    };

    let (ok, out, err) = run(r#"{"name": "Ada"}"#);
    assert!(ok, "{out}{err}");
    let report: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}{err}"));
    assert_eq!(report["outcome"]["kind"], "succeeded", "{report}");
    assert_eq!(
        report["outcome"]["output"], "Hello, Ada! (run 1)",
        "{report}"
    );
    let logs = report["logs"].to_string();
    assert!(
        logs.contains("greeting Ada (job cli, attempt 1)"),
        "the template's log line: {logs}"
    );
    // Without --json the log line carries its fields too (`cause=`).
    let (ok, out, err) = wasmcron(
        here,
        &[
            "plugin",
            "run",
            &built.wasm,
            "--args",
            r#"{"name": "Ada"}"#,
            "--compile-timeout",
            COMPILE_TIMEOUT,
            "--cache-dir",
            &cache,
        ],
    );
    assert!(
        ok && out.contains("greeting Ada (job cli, attempt 1) cause=manual"),
        "{out}{err}"
    );
    // The typed args the template reads: `shout` is a boolean.
    let (ok, out, err) = run(r#"{"name": "Ada", "shout": true}"#);
    assert!(ok && out.contains("Hello, ADA! (run 1)"), "{out}{err}");

    // `plugin check` shows the schema `args.schema.json` declared.
    let (ok, out, err) = wasmcron(
        here,
        &[
            "plugin",
            "check",
            &built.wasm,
            "--json",
            "--compile-timeout",
            COMPILE_TIMEOUT,
            "--cache-dir",
            &cache,
        ],
    );
    assert!(ok, "{out}{err}");
    let check: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        check["args_schema"]["properties"]["name"]["type"], "string",
        "{check}"
    );
    assert_eq!(
        check["args_schema"]["additionalProperties"], false,
        "{check}"
    );

    // Args that break it are refused before anything runs, naming the field.
    let (ok, out, err) = run(r#"{"name": 42}"#);
    assert!(
        !ok && err.contains("args.name") && !out.contains("outcome"),
        "{out}{err}"
    );
    let (ok, out, err) = run(r#"{"shout": "yes"}"#);
    assert!(!ok && err.contains("args.shout"), "{out}{err}");
}

/// A new listener in `lang`: built for world `listener` and checked.
fn a_new_listener_builds_and_checks(name: &str, lang: &str) {
    let Some(built) = new_and_build(name, lang, true) else {
        return;
    };
    assert!(
        built
            .build_out
            .contains("world:   wasmcron:plugin/listener@0.2.0"),
        "{}",
        built.build_out
    );
    let (ok, out, err) = wasmcron(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &[
            "plugin",
            "check",
            &built.wasm,
            "--json",
            "--compile-timeout",
            COMPILE_TIMEOUT,
            "--cache-dir",
            &cache_dir(),
        ],
    );
    assert!(ok, "{out}{err}");
    let check: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(check["world"], "wasmcron:plugin/listener@0.2.0", "{check}");
    assert!(check["args_schema"].is_null(), "{check}");
}

#[test]
fn a_new_python_job_builds_runs_and_declares_its_args() {
    a_new_job_builds_runs_and_declares_its_args("greet-py", "python");
}

#[test]
fn a_new_js_job_builds_runs_and_declares_its_args() {
    a_new_job_builds_runs_and_declares_its_args("greet-js", "js");
}

#[test]
fn a_new_python_listener_builds_and_checks() {
    a_new_listener_builds_and_checks("pager-py", "python");
}

#[test]
fn a_new_js_listener_builds_and_checks() {
    a_new_listener_builds_and_checks("pager-js", "js");
}

/// What a newcomer trips on first, without any toolchain: no project, a
/// missing toolchain, a schema that is not JSON.
#[test]
fn plugin_build_says_what_is_missing_and_how_to_install_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nothing = dir.path().join("nothing");
    std::fs::create_dir(&nothing).expect("mkdir");
    // A folder with no project: what was looked for.
    let (ok, _, err) = wasmcron(dir.path(), &["plugin", "build", "nothing"]);
    assert!(
        !ok && err.contains("Cargo.toml")
            && err.contains("pyproject.toml with a [tool.wasmcron] table")
            && err.contains("package.json with a \"wasmcron\" key")
            && err.contains("wasmcron new"),
        "{err}"
    );
    std::fs::write(nothing.join("package.json"), r#"{"name": "x"}"#).expect("write");
    let (ok, _, err) = wasmcron(dir.path(), &["plugin", "build", "nothing"]);
    assert!(
        !ok && err.contains("package.json has no \"wasmcron\" key"),
        "{err}"
    );

    let empty = dir.path().join("no-toolchains");
    std::fs::create_dir(&empty).expect("mkdir");
    let nowhere = empty.display().to_string();
    for (lang, var, install) in [
        ("python", "WASMCRON_COMPONENTIZE_PY", PY_INSTALL),
        ("js", "WASMCRON_COMPONENTIZE_JS", "npm install"),
    ] {
        let name = format!("{lang}-job");
        let (ok, out, err) = wasmcron(dir.path(), &["new", &name, "--lang", lang]);
        assert!(ok, "{out}{err}");
        assert!(
            out.contains(install.split(" && ").next().unwrap_or(install)),
            "{out}"
        );
        let readme =
            std::fs::read_to_string(dir.path().join(&name).join("README.md")).expect("README");
        assert!(
            readme.contains("wasmcron plugin build .") && readme.contains("wasmcron plugin run"),
            "{readme}"
        );
        // A variable naming nothing is an error saying so, not a fallback.
        let (ok, _, err) = wasmcron_env(
            dir.path(),
            &["plugin", "build", &name],
            &[(var, "/nonexistent/componentize")],
        );
        assert!(
            !ok && err.contains(&format!("{var}=/nonexistent/componentize does not run"))
                && err.contains(install),
            "{err}"
        );
        // Nothing on the PATH, nothing where .ci/polyglot installs.
        let mut cmd = Command::new(BIN);
        cmd.args(["plugin", "build", &name])
            .current_dir(dir.path())
            .env_remove(var)
            .env("WASMCRON_POLYGLOT_DIR", &nowhere)
            .env("PATH", "");
        let out = cmd.output().expect("run wasmcron");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("not found") && err.contains(install),
            "{err}"
        );

        // A schema that is not JSON is refused before any toolchain runs.
        std::fs::write(dir.path().join(&name).join("args.schema.json"), "{").expect("write");
        let (ok, _, err) = wasmcron(dir.path(), &["plugin", "build", &name]);
        assert!(!ok && err.contains("args.schema.json is not JSON"), "{err}");
    }
}
