//! Which dotted expectation paths exist: each shape an expectation reads
//! (a persona's status, a run receipt, the run records, a process record,
//! the pipeline state) is walked in the JSON Schema that schemars derives
//! from the very type the runtime serialises, so the paths lint accepts and
//! the fields the outputs hold cannot drift apart.
//!
//! A number segment indexes a list; a map with free keys (`metadata`) and a
//! free JSON value (`payload`) accept any path below them.

use std::sync::OnceLock;

use rehearse_runtime::engine::RunReceipt;
use rehearse_runtime::persona::PersonaStatus;
use rehearse_runtime::pipeline::PipelineSnapshot;
use rehearse_runtime::process::ProcessRecord;
use rehearse_runtime::RunRecord;
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::Value;

/// The typed output an expectation key reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `expect.status`: a persona's status.
    Status,
    /// `expect.run`: the step's run receipt.
    Receipt,
    /// `expect.records`: the list of run records, plus `count`.
    Records,
    /// `expect.process`: one process record.
    Process,
    /// `expect.pipeline`: the pipeline state.
    Pipeline,
}

impl Shape {
    /// The expectation key that reads this shape.
    pub fn key(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Receipt => "run",
            Self::Records => "records",
            Self::Process => "process",
            Self::Pipeline => "pipeline",
        }
    }

    fn schema(self) -> &'static Value {
        static SCHEMAS: [OnceLock<Value>; 5] = [const { OnceLock::new() }; 5];
        let (slot, build): (usize, fn() -> Value) = match self {
            Self::Status => (0, schema_of::<PersonaStatus>),
            Self::Receipt => (1, schema_of::<RunReceipt>),
            Self::Records => (2, schema_of::<Vec<RunRecord>>),
            Self::Process => (3, schema_of::<ProcessRecord>),
            Self::Pipeline => (4, schema_of::<PipelineSnapshot>),
        };
        SCHEMAS[slot].get_or_init(build)
    }
}

fn schema_of<T: JsonSchema>() -> Value {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.to_value()
}

/// Why a path does not exist, with the nearest one that does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPath {
    pub suggestion: String,
}

/// Checks that `path` exists in `shape`.
pub fn check_path(shape: Shape, path: &str) -> Result<(), UnknownPath> {
    if shape == Shape::Records && path == "count" {
        return Ok(());
    }
    let root = shape.schema();
    let segments: Vec<&str> = path.split('.').collect();
    match walk(root, root, &segments) {
        Ok(()) => Ok(()),
        Err(depth) => Err(UnknownPath {
            suggestion: suggest(shape, root, &segments, depth),
        }),
    }
}

/// Walks `segments` from `node`; on failure, the index of the first segment
/// no alternative accepts.
fn walk(root: &Value, node: &Value, segments: &[&str]) -> Result<(), usize> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(());
    };
    let mut deepest = 0;
    for alternative in alternatives(root, node) {
        if is_free(alternative) {
            return Ok(());
        }
        for child in children(alternative, first) {
            match walk(root, child, rest) {
                Ok(()) => return Ok(()),
                Err(depth) => deepest = deepest.max(depth + 1),
            }
        }
    }
    Err(deepest)
}

/// The node with `$ref`s followed and `anyOf`/`oneOf`/`allOf` flattened
/// into its alternatives.
fn alternatives<'a>(root: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(node) = stack.pop() {
        let node = resolve(root, node);
        let mut combined = false;
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(Value::Array(items)) = node.get(key) {
                stack.extend(items.iter().rev());
                combined = true;
            }
        }
        let structural = ["properties", "items", "additionalProperties", "type"]
            .iter()
            .any(|key| node.get(key).is_some());
        if !combined || structural {
            out.push(node);
        }
    }
    out
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    // References are followed a bounded number of times: a schema that
    // refers to itself ends here rather than looping.
    for _ in 0..32 {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let found = reference
            .strip_prefix("#/definitions/")
            .or_else(|| reference.strip_prefix("#/$defs/"))
            .and_then(|name| {
                root.get("definitions")
                    .or_else(|| root.get("$defs"))
                    .and_then(|defs| defs.get(name))
            });
        match found {
            Some(target) => node = target,
            None => break,
        }
    }
    node
}

/// Whether any path below the node exists: a free JSON value.
fn is_free(node: &Value) -> bool {
    match node {
        Value::Bool(true) => true,
        Value::Object(map) => map.keys().all(|key| {
            matches!(
                key.as_str(),
                "description" | "title" | "default" | "examples"
            )
        }),
        _ => false,
    }
}

/// The schemas `segment` leads to from one alternative.
fn children<'a>(node: &'a Value, segment: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    if let Some(child) = node.get("properties").and_then(|p| p.get(segment)) {
        out.push(child);
    }
    match node.get("additionalProperties") {
        Some(Value::Bool(false)) | None => {}
        Some(extra) => out.push(extra),
    }
    if segment.parse::<usize>().is_ok() {
        match node.get("items") {
            Some(Value::Array(tuple)) => out.extend(tuple.iter()),
            Some(items) => out.push(items),
            None => {}
        }
    }
    out
}

/// The field names one level below `node` (list items show as `0`).
fn names_at(root: &Value, node: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for alternative in alternatives(root, node) {
        if let Some(Value::Object(properties)) = alternative.get("properties") {
            names.extend(properties.keys().cloned());
        }
        if alternative.get("items").is_some() {
            names.push("0".to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The nearest valid path: the accepted prefix, then the closest name at
/// the first unknown segment, then as much of the rest as still exists.
fn suggest(shape: Shape, root: &Value, segments: &[&str], depth: usize) -> String {
    let mut node = root;
    let mut accepted: Vec<String> = Vec::new();
    for segment in &segments[..depth] {
        let next = alternatives(root, node)
            .into_iter()
            .flat_map(|alt| children(alt, segment))
            .find(|child| walk(root, child, &[]).is_ok());
        match next {
            Some(child) => {
                node = child;
                accepted.push((*segment).to_owned());
            }
            None => break,
        }
    }
    let wrong = segments.get(accepted.len()).copied().unwrap_or_default();
    let mut names = names_at(root, node);
    if shape == Shape::Records && accepted.is_empty() {
        names.push("count".to_owned());
    }
    let rest = &segments[(accepted.len() + 1).min(segments.len())..];
    // A name under which the rest of the path exists wins; then the closest.
    let Some(best) = names.iter().min_by_key(|name| {
        let mut candidate = accepted.clone();
        candidate.push((*name).clone());
        let rest_fits = rest.is_empty() || check_segments(root, &candidate, rest);
        (!rest_fits, likeness(wrong, name), name.len())
    }) else {
        return accepted.join(".");
    };
    accepted.push(best.clone());
    if !rest.is_empty() && check_segments(root, &accepted, rest) {
        accepted.extend(rest.iter().map(|s| (*s).to_owned()));
    }
    accepted.join(".")
}

/// How far `wrong` is from `name`: the edit distance, or less when `wrong`
/// is close to the start of `name` or written inside it (`fence` for
/// `fencing_token`, `handoffs` for `partial_handoffs`).
fn likeness(wrong: &str, name: &str) -> usize {
    let full = edit_distance(wrong, name);
    let length = wrong.chars().count();
    if length < 3 {
        return full;
    }
    let head: String = name.chars().take(length).collect();
    let mut best = full.min(edit_distance(wrong, &head) + 1);
    if name.contains(wrong) {
        best = best.min(1);
    }
    best
}

/// The name of `names` nearest to `wrong` (by [`likeness`], then the
/// shorter, then the first), for "did you mean" messages.
pub(crate) fn nearest<'a>(
    wrong: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    names
        .into_iter()
        .min_by_key(|name| (likeness(wrong, name), name.len()))
}

fn check_segments(root: &Value, prefix: &[String], rest: &[&str]) -> bool {
    let all: Vec<&str> = prefix
        .iter()
        .map(String::as_str)
        .chain(rest.iter().copied())
        .collect();
    walk(root, root, &all).is_ok()
}

/// The edit distance between two names, by characters, counting a swap of
/// two neighbours as one edit (optimal string alignment).
/// Names are compared on their first 64 characters: a hostile key of a
/// million characters costs no more than a long field name.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

/// Every path of `shape` down to `depth` segments, list items as `0`: for
/// tests and documentation.
pub fn known_paths(shape: Shape, depth: usize) -> Vec<String> {
    let root = shape.schema();
    let mut out = Vec::new();
    collect(root, root, String::new(), depth, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect(root: &Value, node: &Value, prefix: String, depth: usize, out: &mut Vec<String>) {
    if depth == 0 {
        return;
    }
    for name in names_at(root, node) {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.push(path.clone());
        for alternative in alternatives(root, node) {
            for child in children(alternative, &name) {
                collect(root, child, path.clone(), depth - 1, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_paths_exist_and_typos_name_the_nearest() {
        for path in [
            "state",
            "budget.reason",
            "budget.spent_today_usd",
            "queued_work.0.work_key",
            "queued_work.3.metadata.anything",
            "active_lease.id",
            "value_receipts.0.metadata.free.below",
        ] {
            assert_eq!(check_path(Shape::Status, path), Ok(()), "{path}");
        }
        assert_eq!(
            check_path(Shape::Status, "budgte.reason")
                .unwrap_err()
                .suggestion,
            "budget.reason"
        );
        assert_eq!(
            check_path(Shape::Status, "budget.reasn")
                .unwrap_err()
                .suggestion,
            "budget.reason"
        );
        assert!(check_path(Shape::Status, "nonexistent.deep").is_err());
        assert!(check_path(Shape::Status, "state.deeper").is_err());
        assert!(check_path(Shape::Status, "queued_work.first").is_err());
    }

    #[test]
    fn other_shapes() {
        for (shape, path) in [
            (Shape::Receipt, "lease.id"),
            (Shape::Receipt, "budget_receipt_id"),
            (Shape::Records, "count"),
            (Shape::Records, "0.status"),
            (Shape::Records, "1.stages.0.name"),
            (Shape::Process, "status"),
            (Shape::Process, "lease.fencing_token"),
            (Shape::Pipeline, "audit.0.payload.anything"),
            (Shape::Pipeline, "disposition"),
        ] {
            assert_eq!(check_path(shape, path), Ok(()), "{path}");
        }
        assert_eq!(
            check_path(Shape::Records, "0.stauts")
                .unwrap_err()
                .suggestion,
            "0.status"
        );
        assert_eq!(
            check_path(Shape::Records, "cont").unwrap_err().suggestion,
            "count"
        );
        assert!(check_path(Shape::Receipt, "failure").is_err());
    }

    #[test]
    fn known_paths_list_the_fields() {
        let paths = known_paths(Shape::Receipt, 2);
        assert!(
            paths.contains(&"lease.expires_at_ms".to_owned()),
            "{paths:?}"
        );
        assert!(
            !paths.iter().any(|p| p.starts_with("envelope")),
            "{paths:?}"
        );
    }
}
