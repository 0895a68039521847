//! What a plugin declares about itself besides its code: today the JSON
//! Schema of its job's `args`.
//!
//! A declaration travels in the component as a custom section named
//! [`ARGS_SCHEMA_SECTION`], whose payload is the schema as UTF-8 JSON. The
//! section may sit at the top level of the component (where `wasmcron
//! plugin build` puts a Python or JavaScript project's `args.schema.json`)
//! or inside one of its core modules (where the Rust SDK's
//! `#[job(args = T)]` puts the schema derived from `T`: rustc places a
//! `#[link_section]` static there). Reading it walks the section headers
//! only and never runs guest code, so a plugin cannot make loading slow or
//! unsafe through it.
//!
//! A plugin that declares nothing accepts any `args`, as before this
//! existed; one that declares a schema has every job's `args` checked
//! against it when the job is added or modified (the API answers 422
//! naming the path of the field, e.g. `args.count`).

use std::sync::Arc;

/// The name of the custom section that carries a job plugin's args schema.
pub const ARGS_SCHEMA_SECTION: &str = "wasmcron:args-schema";

/// The largest schema accepted, in bytes. A schema is a page of JSON; a
/// larger one is a mistake (or an attempt to make every check slow).
pub const MAX_SCHEMA_BYTES: usize = 64 << 10;

/// Why a declared schema was refused (the plugin is not loaded).
#[derive(Debug, thiserror::Error)]
pub enum DeclaredError {
    /// Two sections declare a schema: which one would the author mean?
    #[error(
        "the component carries {count} `{ARGS_SCHEMA_SECTION}` sections; declare the \
         args schema once"
    )]
    Repeated {
        /// How many sections were found.
        count: usize,
    },
    /// The section is larger than [`MAX_SCHEMA_BYTES`].
    #[error(
        "the `{ARGS_SCHEMA_SECTION}` section is {size} bytes; an args schema may be at most \
         {MAX_SCHEMA_BYTES}"
    )]
    TooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// The payload is not a JSON document.
    #[error("the `{ARGS_SCHEMA_SECTION}` section is not JSON: {detail}")]
    NotJson {
        /// The parser's message.
        detail: String,
    },
    /// The document is not a JSON Schema this host can use (invalid, or it
    /// refers to a document elsewhere, which the host never fetches).
    #[error("the `{ARGS_SCHEMA_SECTION}` section is not a usable JSON Schema: {detail}")]
    Invalid {
        /// The validator's message.
        detail: String,
    },
}

/// A job plugin's declared args schema, compiled once at load.
pub struct ArgsSchema {
    document: serde_json::Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for ArgsSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgsSchema")
            .field("document", &self.document)
            .finish_non_exhaustive()
    }
}

/// One way `args` break a plugin's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsViolation {
    /// Where, as the API names fields: `args`, `args.name`,
    /// `args.items[2]`.
    pub field: String,
    /// What is wrong, in the validator's words.
    pub message: String,
}

impl std::fmt::Display for ArgsViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl ArgsSchema {
    /// Compiles a schema document (draft detected from `$schema`, 2020-12
    /// when absent).
    ///
    /// # Errors
    /// [`DeclaredError::Invalid`] when it is not a valid schema or refers
    /// to another document.
    pub fn new(document: serde_json::Value) -> Result<Self, DeclaredError> {
        let validator =
            jsonschema::validator_for(&document).map_err(|e| DeclaredError::Invalid {
                detail: e.to_string(),
            })?;
        Ok(Self {
            document,
            validator,
        })
    }

    /// The schema as declared.
    pub fn document(&self) -> &serde_json::Value {
        &self.document
    }

    /// Checks `args`; every violation found, in the validator's order, at
    /// most 10.
    ///
    /// # Errors
    /// The violations, each naming the field's path.
    pub fn check(&self, args: &serde_json::Value) -> Result<(), Vec<ArgsViolation>> {
        let violations: Vec<ArgsViolation> = self
            .validator
            .iter_errors(args)
            .flat_map(|e| violations_of(&e))
            .take(10)
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

/// Reads the args schema a component declares, if any.
///
/// Malformed framing is not reported here: the compiler reports it in its
/// own words, so this answers `None` for what it cannot walk.
///
/// # Errors
/// See [`DeclaredError`].
pub fn read_args_schema(bytes: &[u8]) -> Result<Option<Arc<ArgsSchema>>, DeclaredError> {
    let payloads = section_payloads(bytes, ARGS_SCHEMA_SECTION);
    let payload = match payloads.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        more => return Err(DeclaredError::Repeated { count: more.len() }),
    };
    if payload.len() > MAX_SCHEMA_BYTES {
        return Err(DeclaredError::TooLarge {
            size: payload.len(),
        });
    }
    // rustc pads nothing, but a C string written by hand may end in NUL.
    let payload = payload.strip_suffix(&[0]).unwrap_or(payload);
    let document: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| DeclaredError::NotJson {
            detail: e.to_string(),
        })?;
    ArgsSchema::new(document).map(|s| Some(Arc::new(s)))
}

/// The payloads of every custom section called `name`, at the top level or
/// inside nested modules and components.
fn section_payloads<'a>(bytes: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    let mut found = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(reader)) if reader.name() == name => {
                found.push(reader.data());
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    found
}

/// `bytes` with a top-level custom section `name` holding `payload`
/// appended: how `wasmcron plugin build` attaches a Python or JavaScript
/// project's `args.schema.json` to the component its toolchain built (a
/// custom section may follow any other in a component).
pub fn append_custom_section(bytes: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(name.len() + payload.len() + 5);
    leb128(&mut body, name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = Vec::with_capacity(bytes.len() + body.len() + 6);
    out.extend_from_slice(bytes);
    out.push(0); // custom section id
    leb128(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The violations one validator error stands for. A missing field is
/// named itself (`args.name: is required`), not the object that lacks it,
/// and each field the schema does not allow is named on its own, without
/// the validator's dump of the whole object; anything else keeps the
/// validator's path and words.
fn violations_of(e: &jsonschema::ValidationError<'_>) -> Vec<ArgsViolation> {
    use jsonschema::error::ValidationErrorKind as Kind;
    let at = field_path(e.instance_path().as_str());
    match e.kind() {
        Kind::Required {
            property: serde_json::Value::String(name),
        } => vec![ArgsViolation {
            field: format!("{at}.{name}"),
            message: "is required by the plugin's args schema".to_owned(),
        }],
        Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected }
            if !unexpected.is_empty() =>
        {
            unexpected
                .iter()
                .map(|name| ArgsViolation {
                    field: format!("{at}.{name}"),
                    message: "is not a field the plugin's args schema allows (a typo?)".to_owned(),
                })
                .collect()
        }
        _ => vec![ArgsViolation {
            field: at,
            message: e.to_string(),
        }],
    }
}

/// A JSON Pointer into `args` (`/items/2/name`) as the API names fields
/// (`args.items[2].name`).
fn field_path(pointer: &str) -> String {
    let mut out = String::from("args");
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The smallest component: preamble only.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_component_without_the_section_declares_nothing() {
        assert!(read_args_schema(EMPTY_COMPONENT).unwrap().is_none());
    }

    #[test]
    fn an_appended_section_is_read_back_and_checks_args() {
        let schema = json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "items": {"type": "array", "items": {"type": "integer"}}},
            "required": ["name"],
            "additionalProperties": false
        });
        let bytes = append_custom_section(
            EMPTY_COMPONENT,
            ARGS_SCHEMA_SECTION,
            schema.to_string().as_bytes(),
        );
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&bytes)
            .expect("still a valid component");
        let declared = read_args_schema(&bytes).unwrap().expect("declared");
        assert_eq!(declared.document(), &schema);
        assert!(declared.check(&json!({"name": "x"})).is_ok());
        let errs = declared
            .check(&json!({"name": 3, "items": [1, "two"]}))
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"args.name"), "{errs:?}");
        assert!(fields.contains(&"args.items[1]"), "{errs:?}");
        let errs = declared.check(&json!({})).unwrap_err();
        assert_eq!(errs[0].field, "args.name", "{errs:?}");
        assert!(errs[0].message.contains("required"), "{errs:?}");
        // Each field the schema does not allow is named on its own, with
        // none of the object's other values in the message.
        let errs = declared
            .check(&json!({"name": "x", "nmae": "a long value not to repeat", "extra": 1}))
            .unwrap_err();
        let mut fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["args.extra", "args.nmae"], "{errs:?}");
        assert!(
            errs.iter().all(|e| !e.message.contains("long value")),
            "{errs:?}"
        );
    }

    #[test]
    fn bad_declarations_are_refused_with_the_reason() {
        let with = |payload: &[u8]| {
            read_args_schema(&append_custom_section(
                EMPTY_COMPONENT,
                ARGS_SCHEMA_SECTION,
                payload,
            ))
        };
        assert!(matches!(
            with(b"{not json"),
            Err(DeclaredError::NotJson { .. })
        ));
        assert!(matches!(
            with(br#"{"type": "no-such-type"}"#),
            Err(DeclaredError::Invalid { .. })
        ));
        let twice = append_custom_section(
            &append_custom_section(EMPTY_COMPONENT, ARGS_SCHEMA_SECTION, b"{}"),
            ARGS_SCHEMA_SECTION,
            b"{}",
        );
        assert!(matches!(
            read_args_schema(&twice),
            Err(DeclaredError::Repeated { count: 2 })
        ));
        let big = vec![b' '; MAX_SCHEMA_BYTES + 1];
        assert!(matches!(with(&big), Err(DeclaredError::TooLarge { .. })));
    }

    #[test]
    fn pointers_become_field_paths() {
        assert_eq!(field_path(""), "args");
        assert_eq!(field_path("/a/0/b~1c"), "args.a[0].b/c");
    }
}
