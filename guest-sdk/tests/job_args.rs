//! `#[derive(JobArgs)]` against serde itself: for each type, documents
//! serde accepts must fit the derived schema (the host refuses jobs whose
//! args do not, so a schema stricter than serde would refuse good jobs),
//! and the usual mistakes (a misspelt field, a wrong type, a missing
//! required field, an integer out of range) must not.

#![allow(dead_code, reason = "the types exist to be deserialized and described")]

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use wasmcron_guest::JobArgs;

/// A report.
#[derive(Deserialize, JobArgs)]
#[serde(deny_unknown_fields)]
struct Report {
    /// Who gets it.
    recipient: String,
    copies: u8,
    #[serde(default)]
    dry_run: bool,
    format: Option<Format>,
    tags: Vec<String>,
    limits: BTreeMap<String, f64>,
    window: [i32; 2],
    #[serde(rename = "from")]
    since: Option<String>,
    nested: Option<Inner>,
    #[args(any)]
    extra: Option<Value>,
    #[serde(skip)]
    cache: Option<u32>,
}

#[derive(Deserialize, JobArgs)]
#[serde(rename_all = "kebab-case")]
enum Format {
    PlainText,
    Html,
    #[serde(rename = "md")]
    Markdown,
}

#[derive(Deserialize, JobArgs)]
#[serde(rename_all = "camelCase", default)]
struct Inner {
    max_items: u32,
    #[serde(alias = "who")]
    owner: String,
    ids: HashSet<u16>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            max_items: 10,
            owner: String::new(),
            ids: HashSet::new(),
        }
    }
}

/// Open to unknown fields (no deny_unknown_fields), a flattened part, and a
/// field read with a function of its own.
#[derive(Deserialize, JobArgs)]
struct Loose {
    name: String,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

#[derive(Deserialize, JobArgs)]
struct Custom {
    #[serde(deserialize_with = "any_string")]
    when: String,
    count: i64,
}

fn any_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Value::deserialize(d)?.to_string())
}

#[derive(Deserialize, JobArgs)]
struct Id(u64);

#[derive(Deserialize, JobArgs)]
#[serde(tag = "kind")]
enum Tagged {
    A { x: u8 },
    B,
}

fn schema<T: JobArgs>() -> Value {
    serde_json::from_str(T::SCHEMA).unwrap_or_else(|e| panic!("{}: {e}", T::SCHEMA))
}

/// Checks each document against serde and the schema: they must agree,
/// except that the schema may accept what serde refuses when `looser`.
fn agree<T: JobArgs + DeserializeOwned>(docs: &[(Value, bool)]) {
    let doc = schema::<T>();
    let validator = jsonschema::validator_for(&doc).expect("a valid schema");
    for (value, looser_ok) in docs {
        let serde_ok = serde_json::from_value::<T>(value.clone()).is_ok();
        let schema_ok = validator.is_valid(value);
        if serde_ok {
            assert!(
                schema_ok,
                "serde accepts {value} but the schema refuses it: {doc}"
            );
        } else if !looser_ok {
            assert!(
                !schema_ok,
                "serde refuses {value} but the schema accepts it: {doc}"
            );
        }
    }
}

#[test]
fn a_struct_with_every_kind_of_field_agrees_with_serde() {
    let good = json!({"recipient": "ops", "copies": 2, "tags": [], "limits": {"a": 1.5},
                      "window": [1, 2]});
    let with = |patch: Value| {
        let mut v = good.clone();
        json_patch(&mut v, patch);
        v
    };
    agree::<Report>(&[
        (good.clone(), false),
        (
            with(json!({"dry_run": true, "format": "plain-text", "from": "2030-01-01"})),
            false,
        ),
        (
            with(json!({"format": "md", "nested": {"maxItems": 3, "who": "me", "ids": [1, 2]}})),
            false,
        ),
        (
            with(json!({"nested": {}, "extra": {"anything": [1, "two"]}})),
            false,
        ),
        (with(json!({"format": null, "from": null})), false),
        // The mistakes a schema is for:
        (with(json!({"recipent": "typo"})), false),
        (with(json!({"copies": 256})), false),
        (with(json!({"copies": -1})), false),
        (with(json!({"copies": "2"})), false),
        (with(json!({"format": "Markdown"})), false),
        (with(json!({"format": "html", "window": [1]})), false),
        (with(json!({"nested": {"maxItems": -3}})), false),
        (with(json!({"nested": {"max_items": 3}})), true),
        (with(json!({"tags": [1]})), false),
        (with(json!({"since": "renamed away"})), false),
        (with(json!({"cache": 3})), false),
        (
            json!({"copies": 1, "tags": [], "limits": {}, "window": [0, 0]}),
            false,
        ),
        (json!([]), false),
        (json!("text"), false),
    ]);
    let doc = schema::<Report>();
    assert_eq!(
        doc["properties"]["recipient"]["description"],
        "Who gets it."
    );
    assert_eq!(
        doc["required"],
        json!(["recipient", "copies", "tags", "limits", "window"])
    );
}

#[test]
fn open_structs_and_opaque_fields_are_never_stricter_than_serde() {
    agree::<Loose>(&[
        (json!({"name": "a"}), false),
        (json!({"name": "a", "other": 1}), false),
        (json!({"other": 1}), false),
        (json!({"name": 3}), false),
    ]);
    agree::<Custom>(&[
        (json!({"when": 3, "count": 1}), false),
        (json!({"when": "x", "count": 1}), false),
        (json!({"count": 1}), true),
        (json!({"when": "x", "count": 1.5}), false),
    ]);
    agree::<Id>(&[(json!(3), false), (json!(-3), false), (json!("3"), false)]);
    agree::<Tagged>(&[
        (json!({"kind": "A", "x": 1}), true),
        (json!({"kind": "B"}), true),
        (json!({"kind": "C"}), true),
    ]);
    assert_eq!(schema::<Tagged>(), json!({}));
}

/// RFC 7396, enough for the tests' patches.
fn json_patch(target: &mut Value, patch: Value) {
    if let (Some(t), Value::Object(p)) = (target.as_object_mut(), patch) {
        for (k, v) in p {
            t.insert(k, v);
        }
    }
}
