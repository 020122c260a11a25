//! Inline expectations: what a step's `expect` asks, checked against what the
//! step returned, its decision, and the persona status right after it.

use rehearse_runtime::supervisor::Decision;
use serde_json::{json, Value};

use crate::report::Expectation;

/// How close two floats must be to be equal.
pub const FLOAT_TOLERANCE: f64 = 1e-9;

/// What a step produced, for checking.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    pub receipt: Option<&'a str>,
    pub receipts: &'a [String],
    pub error: Option<&'a str>,
    pub decision: Option<&'a Decision>,
}

/// Whether `actual` equals `expected`: numbers within [`FLOAT_TOLERANCE`],
/// everything else exactly, lists and maps element by element.
pub fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => match (e.as_f64(), a.as_f64()) {
            (Some(e), Some(a)) => (e - a).abs() <= FLOAT_TOLERANCE,
            _ => e == a,
        },
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a))
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|w| matches(v, w)))
        }
        _ => expected == actual,
    }
}

/// The value at a dotted `path` in `root`; a number segment indexes a list.
/// Absent values are `null`.
pub fn lookup(root: &Value, path: &str) -> Value {
    let mut current = root;
    for segment in path.split('.') {
        let next = match current {
            Value::Object(map) => map.get(segment),
            Value::Array(list) => segment.parse::<usize>().ok().and_then(|i| list.get(i)),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return Value::Null,
        }
    }
    current.clone()
}

/// Records one check.
pub fn check(out: &mut Vec<Expectation>, path: impl Into<String>, expected: Value, actual: Value) {
    let ok = matches(&expected, &actual);
    out.push(Expectation {
        path: path.into(),
        expected,
        actual,
        ok,
    });
}

/// Checks an expected error substring.
pub fn check_error(out: &mut Vec<Expectation>, expected: &str, actual: Option<&str>) {
    let ok = actual.is_some_and(|message| message.contains(expected));
    out.push(Expectation {
        path: "error".to_string(),
        expected: json!(expected),
        actual: json!(actual),
        ok,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_walks_maps_and_lists() {
        let root = json!({"budget": {"spent": 0.5}, "queued_work": [{"work_key": "k"}]});
        assert_eq!(lookup(&root, "budget.spent"), json!(0.5));
        assert_eq!(lookup(&root, "queued_work.0.work_key"), json!("k"));
        assert_eq!(lookup(&root, "queued_work.1.work_key"), Value::Null);
        assert_eq!(lookup(&root, "nope.deeper"), Value::Null);
    }

    #[test]
    fn floats_match_within_tolerance_and_types_must_agree() {
        assert!(matches(&json!(0.015), &json!(0.01 + 0.005)));
        assert!(!matches(&json!(0.015), &json!(0.0151)));
        assert!(matches(&json!(1), &json!(1.0)));
        assert!(!matches(&json!("1"), &json!(1)));
        assert!(matches(&json!(null), &Value::Null));
        assert!(matches(&json!(["a", 0.3]), &json!(["a", 0.1 + 0.2])));
    }
}
