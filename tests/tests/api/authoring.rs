//! Issue 15, item 5: the CLI for people. `jobs add ID --plugin P --cron
//! EXPR` (no spec file), `jobs edit ID` through a real `$EDITOR` (a shell
//! script here, as a person's editor would be: it gets the file's path,
//! changes it, exits), and shell completions, all through the binary
//! against a running host.

use super::{Api, BIN};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup_warm};
use wasmcron_tests::stores::TestStore;

/// Runs the CLI against `url` with `EDITOR` set to `editor` (and `VISUAL`
/// unset, which would win over it).
fn cli_with(args: &[&str], url: &str, editor: Option<&Path>) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--url", url])
        .env_remove("WASMCRON_TOKEN")
        .env_remove("VISUAL");
    match editor {
        Some(e) => cmd.env("EDITOR", e),
        None => cmd.env_remove("EDITOR"),
    };
    let out = cmd.output().expect("run the CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An "editor": a shell script that gets the file to edit as `$1`.
fn editor(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).expect("write editor");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    path
}

async fn spec(api: &Api, id: &str) -> Value {
    let (status, job) = api.get(&format!("/jobs/{id}")).await;
    assert_eq!(status, 200, "{job}");
    job["spec"].clone()
}

async fn jobs_are_added_from_flags_and_edited_in_an_editor(db: TestStore) {
    let dir = setup_warm("version = 1\n", &["hello"]);
    let host = Host::start_with_db_url(BIN, dir.path(), &db.db_arg(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let url = host.api_url();

    // `jobs add` from flags: cron with a zone and args, interval, one-off.
    let (ok, out, err) = cli_with(
        &[
            "jobs",
            "add",
            "nightly",
            "--plugin",
            "hello",
            "--cron",
            "0 3 * * *",
            "--tz",
            "Asia/Shanghai",
            "--args",
            r#"{"name": "Ada"}"#,
        ],
        &url,
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("nightly"), "{out}");
    let nightly = spec(&api, "nightly").await;
    assert_eq!(nightly["plugin"], "hello");
    assert_eq!(nightly["trigger"]["type"], "cron");
    assert_eq!(nightly["trigger"]["expr"], "0 3 * * *");
    assert_eq!(nightly["trigger"]["tz"], "Asia/Shanghai");
    assert_eq!(nightly["args"]["name"], "Ada");
    // Tables show a cron job's zone beside its expression.
    let (ok, out, err) = cli_with(&["jobs", "list"], &url, None);
    assert!(ok, "{err}");
    assert!(out.contains("cron 0 3 * * * (Asia/Shanghai)"), "{out}");
    let (ok, out, err) = cli_with(&["jobs", "show", "nightly"], &url, None);
    assert!(
        ok && out.contains("schedule: ") && out.contains("Asia/Shanghai"),
        "{out}{err}"
    );

    let (ok, out, err) = cli_with(
        &["jobs", "add", "tick", "--plugin", "hello", "--every", "1s"],
        &url,
        None,
    );
    assert!(ok, "{out}{err}");
    api.until("/jobs/tick/runs", |p| {
        p["runs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["outcome"]["kind"] == "succeeded"))
    })
    .await;

    let (ok, out, err) = cli_with(
        &[
            "jobs",
            "add",
            "once",
            "--plugin",
            "hello",
            "--at",
            "2030-01-01T09:00:00",
            "--tz",
            "Europe/Berlin",
            "--paused",
        ],
        &url,
        None,
    );
    assert!(ok, "{out}{err}");
    let (_, once) = api.get("/jobs/once").await;
    assert_eq!(once["paused"], true, "{once}");
    assert_eq!(once["spec"]["trigger"]["type"], "date");
    assert_eq!(once["spec"]["trigger"]["at"], "2030-01-01T09:00:00");

    // Mistakes get a message that says what to do; nothing is added.
    let refusals: &[(&[&str], &str)] = &[
        (
            &[
                "jobs",
                "add",
                "bad",
                "--plugin",
                "hello",
                "--cron",
                "61 * * * *",
            ],
            "trigger.expr",
        ),
        (
            &["jobs", "add", "bad", "--plugin", "hello"],
            "needs a schedule",
        ),
        (&["jobs", "add", "bad", "--cron", "* * * * *"], "--plugin"),
        (
            &[
                "jobs",
                "add",
                "bad",
                "--plugin",
                "hello",
                "--cron",
                "* * * * *",
                "--every",
                "1m",
            ],
            "--every",
        ),
        (
            &[
                "jobs", "add", "bad", "--plugin", "hello", "--every", "1m", "--args", "{name",
            ],
            "--args is not JSON",
        ),
        (
            &[
                "jobs",
                "add",
                "bad",
                "--plugin",
                "hello",
                "--every",
                "1m",
                "--tz",
                "Europe/Berlin",
            ],
            "--tz",
        ),
        (&["jobs", "add", "no-such-spec.toml"], "--plugin PLUGIN"),
    ];
    for (args, says) in refusals {
        let (ok, out, err) = cli_with(args, &url, None);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(
            err.contains(says),
            "{args:?}: {err:?} does not say {says:?}"
        );
    }
    let (status, _) = api.get("/jobs/bad").await;
    assert_eq!(status, 404);

    // `jobs edit`: the editor changes the cron line. Meanwhile (the
    // editor being open) someone pauses the job: the edit sends only what
    // it changed, so the job stays paused.
    let edit_expr = editor(
        dir.path(),
        "edit-expr.sh",
        &format!(
            "grep -q '^# Job \"nightly\"' \"$1\"\n\
             if grep -q '^paused' \"$1\"; then exit 3; fi\n\
             {BIN} jobs pause nightly --url {url} >/dev/null\n\
             sed -i 's/^expr = .*/expr = \"30 4 * * *\"/' \"$1\""
        ),
    );
    let (ok, out, err) = cli_with(&["jobs", "edit", "nightly"], &url, Some(&edit_expr));
    assert!(ok, "{out}{err}");
    let (_, job) = api.get("/jobs/nightly").await;
    assert_eq!(job["spec"]["trigger"]["expr"], "30 4 * * *", "{job}");
    assert_eq!(job["spec"]["trigger"]["tz"], "Asia/Shanghai", "{job}");
    assert_eq!(job["spec"]["args"]["name"], "Ada", "{job}");
    assert_eq!(
        job["paused"], true,
        "the pause made meanwhile was kept: {job}"
    );
    let (_, audit) = api.get("/audit?job=nightly").await;
    let modified = audit["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "job_modified"))
        .cloned()
        .unwrap_or_else(|| panic!("no job_modified entry: {audit}"));
    assert_eq!(modified["actor"], "anonymous", "{modified}");
    assert!(
        modified["detail"].to_string().contains("30 4 * * *"),
        "{modified}"
    );

    // Removing a line removes the field (a merge patch's null).
    let drop_tz = editor(dir.path(), "drop-tz.sh", "sed -i '/^tz = /d' \"$1\"");
    let (ok, out, err) = cli_with(&["jobs", "edit", "nightly"], &url, Some(&drop_tz));
    assert!(ok, "{out}{err}");
    assert!(spec(&api, "nightly").await["trigger"].get("tz").is_none());

    // As JSON, changing the args.
    let json_args = editor(
        dir.path(),
        "json-args.sh",
        "grep -q '\"plugin\": \"hello\"' \"$1\"\nsed -i 's/\"Ada\"/\"Grace\"/' \"$1\"",
    );
    let (ok, out, err) = cli_with(
        &["jobs", "edit", "nightly", "--format", "json"],
        &url,
        Some(&json_args),
    );
    assert!(ok, "{out}{err}");
    assert_eq!(spec(&api, "nightly").await["args"]["name"], "Grace");

    // Nothing changed, nothing sent; an editor that fails sends nothing.
    let before = spec(&api, "nightly").await;
    let (ok, out, err) = cli_with(&["jobs", "edit", "nightly"], &url, Some(Path::new("true")));
    assert!(ok && out.contains("no change"), "{out}{err}");
    let (ok, _, err) = cli_with(&["jobs", "edit", "nightly"], &url, Some(Path::new("false")));
    assert!(!ok && err.contains("nothing sent"), "{err}");
    assert_eq!(spec(&api, "nightly").await, before);

    // A change the host refuses: the error, and the edit kept in a file.
    let bad = editor(
        dir.path(),
        "bad.sh",
        "sed -i 's/^expr = .*/expr = \"99 * * * *\"/' \"$1\"",
    );
    let (ok, out, err) = cli_with(&["jobs", "edit", "nightly"], &url, Some(&bad));
    assert!(!ok, "{out}");
    assert!(err.contains("trigger.expr"), "{err}");
    let kept = err
        .split("your edit is kept in ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no kept file named: {err}"));
    let kept_text = std::fs::read_to_string(kept).expect("the kept edit");
    assert!(kept_text.contains("99 * * * *"), "{kept_text}");
    let _ = std::fs::remove_file(kept);
    assert_eq!(spec(&api, "nightly").await, before);
    // An unknown job: the host's 404, before any editor opens.
    let (ok, _, err) = cli_with(&["jobs", "edit", "nope"], &url, Some(Path::new("false")));
    assert!(
        !ok && err.contains("nope") && !err.contains("editor"),
        "{err}"
    );
}
backends!(jobs_are_added_from_flags_and_edited_in_an_editor: sqlite);

/// Runs the CLI against `url` with `input` on its stdin.
fn cli_stdin(args: &[&str], url: &str, input: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--url", url])
        .env_remove("WASMCRON_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the CLI");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("the CLI's output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `jobs add -` takes a spec on stdin as a person pipes it: TOML (as the
/// spec files are written) or JSON (as `jobs show --json` prints it);
/// a broken one is refused naming the format it was read as.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_spec_on_stdin_is_toml_or_json() {
    let dir = setup_warm("version = 1\n", &["hello"]);
    let host = Host::start(BIN, dir.path(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;
    let url = host.api_url();

    let toml = "id = \"piped-toml\"\nplugin = \"hello\"\n\
                trigger = { type = \"cron\", expr = \"0 9 * * *\", tz = \"Europe/Berlin\" }\n\
                args = { name = \"toml\" }\n";
    let (ok, out, err) = cli_stdin(&["jobs", "add", "-"], &url, toml);
    assert!(ok && out.contains("piped-toml"), "{out}{err}");
    let got = spec(&api, "piped-toml").await;
    assert_eq!(got["trigger"]["tz"], "Europe/Berlin", "{got}");
    assert_eq!(got["args"]["name"], "toml", "{got}");

    let json = r#"  {"id": "piped-json", "plugin": "hello",
                     "trigger": {"type": "interval", "every": "1h"}}"#;
    let (ok, out, err) = cli_stdin(&["jobs", "add", "-"], &url, json);
    assert!(ok && out.contains("piped-json"), "{out}{err}");
    assert_eq!(spec(&api, "piped-json").await["trigger"]["every"], "1h");

    let (ok, _, err) = cli_stdin(&["jobs", "add", "-"], &url, "id = \"x\"\nplugin = \n");
    assert!(
        !ok && err.contains("stdin") && err.contains("TOML"),
        "{err}"
    );
    let (ok, _, err) = cli_stdin(&["jobs", "add", "-"], &url, "{\"id\": ");
    assert!(
        !ok && err.contains("stdin") && err.contains("JSON"),
        "{err}"
    );
    let (status, page) = api.get("/jobs").await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 2, "{page}");
}

/// `wasmcron completions bash`, loaded into a real bash: completing
/// `wasmcron jobs ed` offers `edit`, and `wasmcron jobs add x --pl` offers
/// `--plugin`. The other shells' scripts name the same commands.
#[test]
fn shell_completions_complete_the_commands() {
    let script = |shell: &str| {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .expect("completions");
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for shell in ["zsh", "fish"] {
        let text = script(shell);
        assert!(
            text.contains("jobs") && text.contains("completions") && text.contains("plugin"),
            "{shell}: {text}"
        );
    }
    let bash = script("bash");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("wasmcron.bash");
    std::fs::write(&file, bash).expect("write");
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let probe = format!(
            "source {file}\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT={point}\n\
             _wasmcron wasmcron '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file = file.display(),
            words = words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            cword = words.len() - 1,
            point = line.len(),
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&probe)
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{probe}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let offered = complete("wasmcron jobs ed");
    assert!(offered.iter().any(|w| w == "edit"), "{offered:?}");
    let offered = complete("wasmcron jobs add x --pl");
    assert!(offered.iter().any(|w| w == "--plugin"), "{offered:?}");
    let offered = complete("wasmcron compl");
    assert!(offered.iter().any(|w| w == "completions"), "{offered:?}");
}
