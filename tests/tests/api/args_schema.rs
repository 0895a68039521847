//! Arguments a plugin declares (issue 16 item 6): hello declares its args'
//! JSON Schema in the component (`#[job(args = Args)]`), so a job whose
//! args break it is refused when it is added, replaced, patched, imported
//! or run now with args of its own, with a 422 naming the field; `GET /plugins/hello` shows the
//! schema. counter declares nothing and accepts any args, as before.

use super::{Api, BIN, assert_error};
use serde_json::json;
use wasmcron_tests::host::{Host, setup};

fn job(id: &str, plugin: &str, args: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "plugin": plugin, "args": args,
           "trigger": {"type": "interval", "every": "1h"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn args_that_break_a_plugins_declared_schema_are_refused_naming_the_field() {
    let dir = setup("version = 1\n", &["hello", "counter"]);
    let host = Host::start(BIN, dir.path(), &[]);
    let api = Api::new(&host);
    api.plugins_ready().await;

    let (status, hello) = api.get("/plugins/hello").await;
    assert_eq!(status, 200, "{hello}");
    let schema = &hello["args_schema"];
    assert_eq!(schema["type"], "object", "{hello}");
    assert_eq!(schema["additionalProperties"], false, "{hello}");
    assert_eq!(
        schema["properties"]["name"]["description"], "Who to greet (\"world\" when absent).",
        "{hello}"
    );
    let (_, counter) = api.get("/plugins/counter").await;
    assert!(counter.get("args_schema").is_none(), "{counter}");

    // Add: a wrong type names the field; a misspelt field names it too.
    let resp = api
        .post("/jobs", job("bad", "hello", json!({"name": 42})))
        .await;
    assert_error(&resp, 422, "validation", Some("args.name"));
    let message = resp.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("plugin 'hello'"), "{message}");
    assert!(message.contains("GET /plugins/hello"), "{message}");
    let resp = api
        .post("/jobs", job("bad", "hello", json!({"nmae": "x"})))
        .await;
    assert_error(&resp, 422, "validation", Some("args.nmae"));
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nmae"),
        "{resp:?}"
    );
    // Nothing was stored by either.
    assert_eq!(api.get("/jobs/bad").await.0, 404);

    // Args that fit, and any args for a plugin that declares nothing.
    let resp = api
        .post("/jobs", job("ok", "hello", json!({"name": "Ada"})))
        .await;
    assert_eq!(resp.0, 201, "{resp:?}");
    let resp = api
        .post(
            "/jobs",
            job("free", "counter", json!({"anything": [1, {"goes": true}]})),
        )
        .await;
    assert_eq!(resp.0, 201, "{resp:?}");

    // Replace and patch are held to it too; the job keeps its args.
    let mut replace = job("ok", "hello", json!({"name": ["Ada"]}));
    replace["replace_existing"] = json!(true);
    let resp = api.post("/jobs", replace).await;
    assert_error(&resp, 422, "validation", Some("args.name"));
    let resp = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/ok",
            Some(json!({"args": {"name": null, "greeting": "hi"}})),
        )
        .await;
    assert_error(&resp, 422, "validation", Some("args.greeting"));
    assert_eq!(
        api.get("/jobs/ok").await.1["spec"]["args"],
        json!({"name": "Ada"})
    );
    // Switching a job to a plugin whose schema its args break is refused.
    let resp = api
        .send(
            reqwest::Method::PATCH,
            "/jobs/free",
            Some(json!({"plugin": "hello"})),
        )
        .await;
    assert_error(&resp, 422, "validation", Some("args.anything"));

    // Import and apply say which job.
    let resp = api
        .post(
            "/jobs/import",
            json!({"version": 1, "jobs": [job("imp", "hello", json!({"name": false}))]}),
        )
        .await;
    assert_eq!(resp.0, 422, "{resp:?}");
    assert!(
        resp.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("imp"),
        "{resp:?}"
    );
    assert_eq!(api.get("/jobs/imp").await.0, 404);

    // A run now with args of its own is held to the schema too; with
    // args that fit it runs, and the plugin agrees with its schema.
    let resp = api.post("/jobs/ok/run", json!({"args": {"name": 1}})).await;
    assert_error(&resp, 422, "validation", Some("args.name"));
    let (status, run) = api
        .post("/jobs/ok/run", json!({"args": {"name": "Grace"}}))
        .await;
    assert_eq!(status, 202, "{run}");
    let run_id = run["run_id"].as_str().unwrap_or_default().to_owned();
    let done = api
        .until(&format!("/runs/{run_id}"), |r| r["status"] == "finished")
        .await;
    assert_eq!(done["outcome"]["kind"], "succeeded", "{done}");
    assert_eq!(done["outcome"]["output"], "Hello, Grace!", "{done}");
}
