//! A bound on what checking args against a declared schema may cost.
//!
//! A validator follows a schema's `$ref`s and tries every branch of an
//! `anyOf`/`oneOf`/`allOf`, so a schema of a few KB whose branches all
//! refer to the next level (`a0 = anyOf[a1, a1]`, `a1 = anyOf[a2, a2]`,
//! ...) doubles the work at each level: 40 levels are 2^40 steps, and one
//! job with bad args would hold a thread of the API for hours. Such a
//! schema is refused when the plugin loads, by counting the nodes a full
//! expansion of its local `$ref`s visits (memoised, so counting is linear
//! in the schema's size even when the count is astronomical).
//!
//! A `$ref` back into a schema being expanded (a recursive schema, such as
//! a tree) counts once: the validator follows it only as deep as the
//! document it checks goes, which the API's body limit bounds.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The most schema nodes checking one document may visit before counting
/// the document's own size: 100,000, far above any hand-written schema (a
/// 64 KiB schema without `$ref`s has fewer nodes than that) and far below
/// what takes a noticeable time to check.
pub const MAX_EXPANSION: u64 = 100_000;

/// How many schema nodes a full expansion of `document`'s local `$ref`s
/// visits (saturating at `u64::MAX`).
pub fn expansion(document: &Value) -> u64 {
    let mut walk = Walk {
        root: document,
        memo: HashMap::new(),
        open: HashSet::new(),
    };
    walk.node(document)
}

struct Walk<'a> {
    root: &'a Value,
    memo: HashMap<&'a str, u64>,
    open: HashSet<&'a str>,
}

/// Keywords whose values are data, not schemas, or that are reached only
/// through a `$ref`.
const NOT_SCHEMAS: &[&str] = &[
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "$defs",
    "definitions",
    "enum",
    "const",
    "default",
    "examples",
    "required",
];

impl<'a> Walk<'a> {
    fn node(&mut self, node: &'a Value) -> u64 {
        match node {
            Value::Object(map) => {
                let mut cost: u64 = 1;
                for key in ["$ref", "$dynamicRef", "$recursiveRef"] {
                    if let Some(Value::String(target)) = map.get(key) {
                        cost = cost.saturating_add(self.reference(target));
                    }
                }
                for (key, value) in map {
                    if !NOT_SCHEMAS.contains(&key.as_str()) {
                        cost = cost.saturating_add(self.node(value));
                    }
                }
                cost
            }
            Value::Array(items) => items
                .iter()
                .fold(0, |cost: u64, v| cost.saturating_add(self.node(v))),
            _ => 0,
        }
    }

    fn reference(&mut self, target: &'a str) -> u64 {
        // Only local references resolve here; anything else was refused
        // when the schema compiled, or names an anchor (counted once).
        let Some(pointer) = target.strip_prefix('#') else {
            return 1;
        };
        if let Some(cost) = self.memo.get(pointer) {
            return *cost;
        }
        if !self.open.insert(pointer) {
            return 1;
        }
        let cost = match self.root.pointer(pointer) {
            Some(node) => self.node(node),
            None => 1,
        };
        self.open.remove(pointer);
        self.memo.insert(pointer, cost);
        cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `a0 = anyOf[a1, a1]`, ..., `a{levels} = string`.
    fn doubling(levels: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..levels {
            let next = format!("#/$defs/a{}", i + 1);
            defs.insert(
                format!("a{i}"),
                json!({"anyOf": [{"$ref": next}, {"$ref": next}]}),
            );
        }
        defs.insert(format!("a{levels}"), json!({"type": "string"}));
        json!({"$defs": defs, "type": "object", "properties": {"name": {"$ref": "#/$defs/a0"}}})
    }

    #[test]
    fn a_schema_whose_branches_double_at_each_level_is_counted_as_such() {
        assert!(expansion(&doubling(10)) < MAX_EXPANSION);
        assert!(expansion(&doubling(20)) > MAX_EXPANSION);
        assert_eq!(expansion(&doubling(200)), u64::MAX);
    }

    #[test]
    fn ordinary_and_recursive_schemas_cost_their_size() {
        let flat = json!({"type": "object", "properties": {"name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["name"]});
        assert!(expansion(&flat) < 10);
        let tree = json!({"$defs": {"node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
            "$ref": "#/$defs/node"});
        assert!(expansion(&tree) < 20);
        assert!(expansion(&json!({"$ref": "#"})) < 5);
        assert_eq!(expansion(&json!(true)), 0);
    }
}
