//! Where a log and the reference runtime's run of the rebuilt scenario part:
//! the first persona event that differs, with the field and both values.
//!
//! Generated ids (UUIDs, alone or inside lease, budget and run ids) differ
//! between any two runtimes; each side's are renamed `<id-N>` by order of
//! first appearance before comparing, so only the order in which ids are
//! used has to agree. Headers the reference does not write (provenance and
//! the like) are ignored, and numbers compare by value (`1` equals `1.0`).

use std::collections::BTreeMap;

use rehearse_runtime::persona::PERSONA_TOPIC;
use rehearse_runtime::{format_ms, StoredEvent};
use serde::Serialize;
use serde_json::Value;

use super::read::time_value_ms;

/// The first difference between a log and the reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// The 1-based index of the event among the compared (persona) events.
    pub index: usize,
    /// The log line of the log's event, when the log has one there.
    pub line: Option<usize>,
    /// The log's event kind there, else the reference's.
    pub kind: String,
    /// The differing field: `kind`, `occurred_at`, `headers.NAME`,
    /// `payload.a.b`, or `event` when one side has no event there.
    pub field: String,
    pub log: String,
    pub reference: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = self
            .line
            .map_or_else(String::new, |line| format!(" (log line {line})"));
        write!(
            f,
            "event {}{line}, {}: `{}` is {} in the log and {} in the reference",
            self.index, self.kind, self.field, self.log, self.reference
        )
    }
}

/// Renames generated ids by order of first appearance.
#[derive(Debug, Default)]
pub struct Ids {
    seen: BTreeMap<String, usize>,
}

impl Ids {
    fn name(&mut self, id: &str) -> String {
        let next = self.seen.len() + 1;
        let n = *self.seen.entry(id.to_string()).or_insert(next);
        format!("<id-{n}>")
    }

    /// `text` with every UUID in it renamed.
    pub fn text(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut copied = 0;
        while at + 36 <= bytes.len() {
            if is_uuid(&bytes[at..at + 36]) {
                out.push_str(&text[copied..at]);
                out.push_str(&self.name(&text[at..at + 36]));
                at += 36;
                copied = at;
            } else {
                at += 1;
            }
        }
        out.push_str(&text[copied..]);
        out
    }

    /// `value` with every UUID in its strings renamed.
    pub fn value(&mut self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.text(text)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), self.value(value)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(index, byte)| match index {
        8 | 13 | 18 | 23 => *byte == b'-',
        _ => byte.is_ascii_hexdigit(),
    })
}

/// One side of the comparison: its persona events, normalised as they come.
#[derive(Debug, Default)]
pub struct Side {
    ids: Ids,
    compared: usize,
}

/// An event as compared: kind, time, headers and payload, ids renamed.
#[derive(Debug)]
pub struct Normal {
    kind: String,
    occurred_at_ms: i64,
    headers: BTreeMap<String, String>,
    payload: Value,
}

impl Side {
    /// The event normalised, or `None` for an event of another topic.
    pub fn take(&mut self, event: &StoredEvent) -> Option<Normal> {
        if event.topic.as_str() != PERSONA_TOPIC {
            return None;
        }
        self.compared += 1;
        Some(Normal {
            kind: event.kind.to_string(),
            occurred_at_ms: event.occurred_at_ms,
            headers: event
                .headers
                .iter()
                .map(|(key, value)| (key.clone(), self.ids.text(value)))
                .collect(),
            payload: self.ids.value(&event.payload),
        })
    }
}

/// The first field where `log` and `reference` differ: `(field, log value,
/// reference value)`.
pub fn compare(log: &Normal, reference: &Normal) -> Option<(String, String, String)> {
    if log.kind != reference.kind {
        return Some(("kind".to_string(), log.kind.clone(), reference.kind.clone()));
    }
    if log.occurred_at_ms != reference.occurred_at_ms {
        return Some((
            "occurred_at".to_string(),
            format_ms(log.occurred_at_ms),
            format_ms(reference.occurred_at_ms),
        ));
    }
    for (name, value) in &reference.headers {
        if log.headers.get(name) != Some(value) {
            let theirs = log
                .headers
                .get(name)
                .map_or_else(|| "absent".to_string(), |v| format!("`{v}`"));
            return Some((format!("headers.{name}"), theirs, format!("`{value}`")));
        }
    }
    first_difference("payload", &log.payload, &reference.payload)
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "absent".to_string(), |v| format!("`{v}`"))
}

/// The first path under `path` where `a` and `b` differ, keys in order:
/// `(path, a's value, b's value)`, each shown as `` `json` `` or `absent`.
pub fn first_difference(path: &str, a: &Value, b: &Value) -> Option<(String, String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|key| {
                let here = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(a), Some(b)) => first_difference(&here, a, b),
                    (a, b) => Some((here, show(a), show(b))),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            let common = x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (a, b))| first_difference(&format!("{path}.{i}"), a, b));
            common.or_else(|| {
                (x.len() != y.len()).then(|| {
                    let i = x.len().min(y.len());
                    (format!("{path}.{i}"), show(x.get(i)), show(y.get(i)))
                })
            })
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        (a, b) if a == b => None,
        // One instant written in the two forms (the upstream writes value
        // events' `occurred_at` as a tuple, the reference as RFC 3339).
        (a @ (Value::String(_) | Value::Array(_)), b @ (Value::String(_) | Value::Array(_)))
            if time_value_ms(a).is_some() && time_value_ms(a) == time_value_ms(b) =>
        {
            None
        }
        (a, b) => Some((path.to_string(), show(Some(a)), show(Some(b)))),
    }
}

/// Compares two streams of events, each `(log line, event)`; the first
/// difference among their persona events, if any.
pub fn first_divergence<E>(
    log: impl Iterator<Item = Result<(usize, StoredEvent), E>>,
    reference: impl Iterator<Item = StoredEvent>,
) -> Result<Option<Divergence>, E> {
    let (mut ours, mut theirs) = (Side::default(), Side::default());
    let mut reference = reference.filter_map(|event| theirs.take(&event));
    let mut log = log.filter_map(|item| match item {
        Ok((line, event)) => ours.take(&event).map(|normal| Ok((line, normal))),
        Err(error) => Some(Err(error)),
    });
    let mut index = 0;
    loop {
        index += 1;
        let mine = log.next().transpose()?;
        let other = reference.next();
        let (field, kind, line, log_value, reference_value) = match (mine, other) {
            (None, None) => return Ok(None),
            (Some((line, a)), Some(b)) => match compare(&a, &b) {
                None => continue,
                Some((field, x, y)) => (field, a.kind, Some(line), x, y),
            },
            (Some((line, a)), None) => {
                let kind = a.kind.clone();
                (
                    "event".to_string(),
                    a.kind,
                    Some(line),
                    format!("`{kind}`"),
                    "absent".to_string(),
                )
            }
            (None, Some(b)) => {
                let kind = b.kind.clone();
                (
                    "event".to_string(),
                    b.kind,
                    None,
                    "absent".to_string(),
                    format!("`{kind}`"),
                )
            }
        };
        return Ok(Some(Divergence {
            index,
            line,
            kind,
            field,
            log: log_value,
            reference: reference_value,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_renamed_by_first_appearance_inside_longer_strings() {
        let mut ids = Ids::default();
        let a = "persona_lease_019dbf5c-7200-7c15-b4ee-b8e99e0d2dfe";
        let b = "019dbf61-05e0-7e65-8cd3-1859317e3dba";
        assert_eq!(ids.text(a), "persona_lease_<id-1>");
        assert_eq!(ids.text(b), "<id-2>");
        assert_eq!(ids.text(&format!("{b}/{a}")), "<id-2>/persona_lease_<id-1>");
        assert_eq!(ids.text("not-an-id"), "not-an-id");
    }

    #[test]
    fn the_first_differing_field_is_named_with_both_values() {
        let a = serde_json::json!({"id": "x", "expires_at_ms": 5, "cost": 1.0, "list": [1, 2]});
        let b = serde_json::json!({"id": "x", "expires_at_ms": 6, "cost": 1, "list": [1]});
        assert_eq!(
            first_difference("payload", &a, &b),
            Some((
                "payload.expires_at_ms".to_string(),
                "`5`".to_string(),
                "`6`".to_string()
            ))
        );
        let a = serde_json::json!({"cost": 1.0, "list": [1, 2]});
        let b = serde_json::json!({"cost": 1, "list": [1]});
        assert_eq!(
            first_difference("payload", &a, &b),
            Some((
                "payload.list.1".to_string(),
                "`2`".to_string(),
                "absent".to_string()
            ))
        );
    }
}
