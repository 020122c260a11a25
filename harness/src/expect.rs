//! Inline expectations: what a step's `expect` asks, checked against what the
//! step returned, its decision, and the persona status right after it.

use std::collections::BTreeMap;

use rehearse_runtime::supervisor::Decision;
use serde_json::{json, Value};

use crate::report::Expectation;
use crate::scenario::EventMatch;

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

/// Whether `actual` holds `expected` as a subset: maps compare key by key
/// (keys `expected` does not name are ignored, and a key it names as `null`
/// may be absent), lists element by element with equal lengths, numbers
/// within [`FLOAT_TOLERANCE`], everything else exactly.
pub fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| subset(v, a.get(k).unwrap_or(&Value::Null))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| subset(e, a))
        }
        _ => matches(expected, actual),
    }
}

/// Whether the event (as one line of `events.jsonl`) is the one `item`
/// describes.
pub fn event_matches(item: &EventMatch, event: &Value) -> bool {
    let field = |name: &str| event.get(name).unwrap_or(&Value::Null);
    match item {
        EventMatch::Kind(kind) => field("kind").as_str() == Some(kind.as_str()),
        EventMatch::Full(pattern) => {
            field("kind").as_str() == Some(pattern.kind.as_str())
                && pattern
                    .topic
                    .as_ref()
                    .is_none_or(|topic| field("topic").as_str() == Some(topic.as_str()))
                && pattern
                    .headers
                    .as_ref()
                    .is_none_or(|headers| subset(&json!(headers), field("headers")))
                && pattern
                    .payload
                    .as_ref()
                    .is_none_or(|payload| subset(payload, field("payload")))
        }
    }
}

fn kinds(events: &[Value]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|event| event.get("kind").cloned().unwrap_or(Value::Null))
            .collect(),
    )
}

fn items_json(items: &[EventMatch]) -> Value {
    Value::Array(items.iter().map(EventMatch::to_json).collect())
}

fn record(out: &mut Vec<Expectation>, path: String, expected: Value, actual: Value, ok: bool) {
    out.push(Expectation {
        path,
        expected,
        actual,
        ok,
    });
}

/// `events`: the step's events, in order and in number. A failure names the
/// first item that differs, with the whole event it was compared with.
pub fn check_events(out: &mut Vec<Expectation>, items: &[EventMatch], events: &[Value]) {
    if items.len() != events.len() {
        let expected = Value::Array(items.iter().map(|i| json!(i.kind())).collect());
        record(out, "events".into(), expected, kinds(events), false);
        return;
    }
    let differing = items
        .iter()
        .zip(events)
        .position(|(item, event)| !event_matches(item, event));
    match differing {
        Some(index) => record(
            out,
            format!("events.{index}"),
            items[index].to_json(),
            events[index].clone(),
            false,
        ),
        None => record(out, "events".into(), items_json(items), kinds(events), true),
    }
}

/// `events_include`: the items as an ordered subsequence of the step's
/// events. A failure names the first item not found after the ones before it.
pub fn check_events_include(out: &mut Vec<Expectation>, items: &[EventMatch], events: &[Value]) {
    let mut next = 0;
    for (index, item) in items.iter().enumerate() {
        match events[next..]
            .iter()
            .position(|event| event_matches(item, event))
        {
            Some(offset) => next += offset + 1,
            None => {
                let expected = item.to_json();
                let actual = kinds(&events[next..]);
                record(
                    out,
                    format!("events_include.{index}"),
                    expected,
                    actual,
                    false,
                );
                return;
            }
        }
    }
    record(
        out,
        "events_include".into(),
        items_json(items),
        kinds(events),
        true,
    );
}

/// `receipt_counts`: each named status's count among `receipts`; a status
/// not named is not checked.
pub fn check_receipt_counts(
    out: &mut Vec<Expectation>,
    expected: &BTreeMap<String, u64>,
    receipts: &[String],
) {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for receipt in receipts {
        *counts.entry(receipt.as_str()).or_default() += 1;
    }
    for (status, count) in expected {
        let actual = counts.get(status.as_str()).copied().unwrap_or(0);
        check(
            out,
            format!("receipt_counts.{status}"),
            json!(count),
            json!(actual),
        );
    }
}

/// Checks each dotted path of `paths` in `root`, reported as `prefix.path`.
pub fn check_paths(
    out: &mut Vec<Expectation>,
    prefix: &str,
    paths: &BTreeMap<String, Value>,
    root: &Value,
) {
    for (path, expected) in paths {
        check(
            out,
            format!("{prefix}.{path}"),
            expected.clone(),
            lookup(root, path),
        );
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
    fn subsets_ignore_unnamed_keys_but_not_list_lengths() {
        let actual = json!({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}, "f": 0.3});
        assert!(subset(&json!({"b": {"c": [1, {"d": 2}]}}), &actual));
        assert!(subset(&json!({"f": 0.1 + 0.2, "g": null}), &actual));
        assert!(!subset(&json!({"b": {"c": [1]}}), &actual));
        assert!(!subset(&json!({"a": 2}), &actual));
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
