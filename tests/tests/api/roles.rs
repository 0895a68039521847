//! Named tokens with roles (issue 15, item 1), through the real binary:
//! `wasmcron token new` makes the secrets and the tokens file's entries,
//! and each role meets each class of route.

use super::{Api, BIN, TOKEN, assert_error, greet};
use serde_json::{Value, json};
use wasmcron_tests::backends;
use wasmcron_tests::host::{Host, setup};
use wasmcron_tests::stores::TestStore;

/// `wasmcron token new NAME --role ROLE`: the secret (first line) and the
/// entry it printed for the tokens file.
pub(super) fn new_token(name: &str, role: &str) -> (String, String) {
    let out = std::process::Command::new(BIN)
        .args(["token", "new", name, "--role", role])
        .output()
        .expect("wasmcron token new");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let secret = text.lines().next().unwrap_or_default().to_owned();
    assert_eq!(secret.len(), 64, "{text}");
    let entry = text
        .lines()
        .skip_while(|l| !l.starts_with("[[tokens]]"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(entry.contains(&format!("role = \"{role}\"")), "{text}");
    assert!(
        !entry.contains(&secret),
        "the entry holds the secret: {text}"
    );
    (secret, entry)
}

/// A tokens file with a `read`, an `operate` and an `admin` token, in
/// `dir`; their secrets.
pub(super) fn tokens_file(dir: &std::path::Path) -> (String, String, String, std::path::PathBuf) {
    let (viewer, a) = new_token("viewer", "read");
    let (ops, b) = new_token("ops", "operate");
    let (boss, c) = new_token("boss", "admin");
    let path = dir.join("tokens.toml");
    std::fs::write(&path, format!("{a}\n\n{b}\n\n{c}\n")).expect("tokens file");
    (viewer, ops, boss, path)
}

async fn each_role_is_allowed_its_routes_and_refused_the_others_with_403(db: TestStore) {
    let dir = setup("version = 1\n", &["hello"]);
    let (viewer, ops, boss, file) = tokens_file(dir.path());
    let file = file.display().to_string();
    let host = Host::start_with_db_url(
        BIN,
        dir.path(),
        &db.db_arg(),
        &["--tokens", &file, "--token", TOKEN, "--auth-reads"],
    );
    let single = Api::new(&host).with_token(TOKEN);
    single.plugins_ready().await;
    // The single --token is still an admin.
    assert_eq!(single.post("/jobs", greet()).await.0, 201);

    // Without a token, or with one the host does not know: 401 everywhere.
    let anonymous = Api::new(&host);
    let stranger = Api::new(&host).with_token("0123456789abcdef-unknown-token");
    for api in [&anonymous, &stranger] {
        assert_error(&api.get("/jobs").await, 401, "unauthorized", None);
        assert_error(
            &api.post("/jobs/greet/pause", json!({})).await,
            401,
            "unauthorized",
            None,
        );
        assert_error(&api.post("/jobs", greet()).await, 401, "unauthorized", None);
    }

    for (name, secret, role) in [
        ("viewer", &viewer, "read"),
        ("ops", &ops, "operate"),
        ("boss", &boss, "admin"),
    ] {
        let api = Api::new(&host).with_token(secret);
        let rank = ["read", "operate", "admin"]
            .iter()
            .position(|r| *r == role)
            .unwrap_or_default();
        let (_, auth) = api.get("/auth").await;
        assert_eq!(auth["name"], name, "{auth}");
        assert_eq!(auth["role"], role, "{auth}");
        assert_eq!(auth["can_read"], true, "{auth}");
        assert_eq!(auth["can_write"], rank >= 1, "{auth}");
        assert_eq!(auth["can_admin"], rank >= 2, "{auth}");

        // Reads: every role.
        assert_eq!(api.get("/jobs").await.0, 200, "{name}");
        assert_eq!(api.get("/jobs/greet/runs").await.0, 200, "{name}");

        // Operating: operate and admin.
        let refused = |needed: &str| {
            format!("this route needs the `{needed}` role; token `{name}` has `{role}`")
        };
        let pause = api
            .post("/jobs/greet/pause", json!({"note": format!("by {name}")}))
            .await;
        let resume = api.post("/jobs/greet/resume", json!({})).await;
        for answer in [&pause, &resume] {
            if rank >= 1 {
                assert_eq!(answer.0, 200, "{name}: {answer:?}");
            } else {
                assert_forbidden(answer, &refused("operate"));
            }
        }

        // Defining: admin only.
        let mut job = greet();
        job["id"] = json!(format!("{name}-job"));
        let create = api.post("/jobs", job).await;
        let calendar = api
            .send(
                reqwest::Method::PUT,
                &format!("/calendars/{name}-days"),
                Some(json!({"dates": ["2030-01-01"]})),
            )
            .await;
        let patch = api
            .send(
                reqwest::Method::PATCH,
                "/jobs/greet",
                Some(json!({"args": {"name": name}})),
            )
            .await;
        let plugin_delete = api
            .send(reqwest::Method::DELETE, "/plugins/absent", None)
            .await;
        if rank >= 2 {
            assert_eq!(create.0, 201, "{create:?}");
            assert_eq!(calendar.0, 201, "{calendar:?}");
            assert_eq!(patch.0, 200, "{patch:?}");
            // Let through to the handler, which finds no such file.
            assert_eq!(plugin_delete.0, 404, "{plugin_delete:?}");
        } else {
            for answer in [&create, &calendar, &patch, &plugin_delete] {
                assert_forbidden(answer, &refused("admin"));
            }
        }
    }
    // Only the admins' jobs were created.
    let (_, jobs) = single.get("/jobs").await;
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .map(|l| l.iter().filter_map(|j| j["spec"]["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["boss-job", "greet"], "{jobs}");
}
backends!(each_role_is_allowed_its_routes_and_refused_the_others_with_403: sqlite, postgres);

fn assert_forbidden(answer: &(u16, Value), says: &str) {
    assert_error(answer, 403, "forbidden", None);
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message} does not say {says}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_auth_reads_reads_are_open_and_writes_still_need_a_role() {
    let dir = setup("version = 1\n", &["hello"]);
    let (viewer, ops, _, file) = tokens_file(dir.path());
    let host = Host::start(BIN, dir.path(), &["--tokens", &file.display().to_string()]);
    let anonymous = Api::new(&host);
    assert_eq!(anonymous.get("/jobs").await.0, 200);
    let (_, auth) = anonymous.get("/auth").await;
    assert_eq!(auth["reads_need_token"], false, "{auth}");
    assert_eq!(auth["writes_need_token"], true, "{auth}");
    assert_eq!(auth["can_write"], false, "{auth}");
    assert_error(
        &anonymous.post("/jobs/x/run", json!({})).await,
        401,
        "unauthorized",
        None,
    );
    // A read token presented to an open read is fine; to a write, 403.
    let viewer = Api::new(&host).with_token(&viewer);
    assert_eq!(viewer.get("/jobs").await.0, 200);
    assert_forbidden(
        &viewer.post("/jobs/x/run", json!({})).await,
        "needs the `operate` role; token `viewer` has `read`",
    );
    // Operate reaches the handler (which knows no job x).
    let ops = Api::new(&host).with_token(&ops);
    assert_error(
        &ops.post("/jobs/x/run", json!({})).await,
        404,
        "not_found",
        None,
    );
}

/// A bad tokens file stops the start, naming the entry and the fix.
#[test]
fn a_bad_tokens_file_stops_the_start_naming_the_entry() {
    let dir = setup("version = 1\n", &[]);
    let (_, good) = new_token("ci-bot", "operate");
    let hash = "a".repeat(64);
    for (text, says) in [
        (
            format!("{good}\n[[tokens]]\nname = \"x\"\nrole = \"root\"\nsha256 = \"{hash}\"\n"),
            "tokens[1] ('x'): unknown role 'root'; the roles are `read`, `operate` and `admin`",
        ),
        (
            format!("{good}\n{good}\n"),
            "tokens[1] ('ci-bot'): the name is used by an earlier token",
        ),
        (
            format!("{good}\n{}\n", good.replace("\"ci-bot\"", "\"other\"")),
            "tokens[1] ('other'): the same secret (sha256) as token 'ci-bot'",
        ),
        (
            "[[tokens]]\nname = \"x\"\nrole = \"read\"\nsha256 = \"not-a-hash\"\n".into(),
            "tokens[0] ('x'): `sha256` must be the 64 hex digits",
        ),
        (
            format!("[[tokens]]\nname = \"x\"\nsha256 = \"{hash}\"\n"),
            "tokens[0] ('x'): no `role`",
        ),
    ] {
        let file = dir.path().join("tokens.toml");
        std::fs::write(&file, &text).expect("tokens file");
        let out = std::process::Command::new(BIN)
            .args([
                "run",
                "--db",
                "memory",
                "--listen",
                "127.0.0.1:0",
                "--plugins",
            ])
            .arg(dir.path().join("plugins"))
            .arg("--tokens")
            .arg(&file)
            .env_remove("WASMCRON_TOKEN")
            .output()
            .expect("wasmcron run");
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr} does not say {says}");
        assert!(stderr.contains("tokens.toml"), "{stderr}");
    }
}
