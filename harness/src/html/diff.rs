//! A failed scenario's goldens, compared event by event: `events.jsonl`
//! lines are aligned with a line diff, and each changed event is shown
//! field by field with the changed fields highlighted; the other golden
//! files as a unified diff.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;
use similar::{DiffOp, TextDiff};

use super::escape::esc;

/// At most this many changed events are drawn; the rest are counted.
const MAX_CHANGED_EVENTS: usize = 300;

/// The fields of a JSON value by dotted path, scalars as JSON text.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, inner) in map {
                flatten(&join(key), inner, out);
            }
        }
        Value::Array(list) if !list.is_empty() => {
            for (index, inner) in list.iter().enumerate() {
                flatten(&join(&index.to_string()), inner, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn fields(line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match serde_json::from_str::<Value>(line) {
        Ok(value) => flatten("", &value, &mut out),
        Err(_) => {
            out.insert("(line)".to_string(), line.to_string());
        }
    }
    out
}

/// One event on one side only, or both sides field by field.
fn event_table(
    out: &mut String,
    golden: Option<(usize, &str)>,
    actual: Option<(usize, &str)>,
    step_of: &dyn Fn(usize) -> Option<usize>,
) {
    let old = golden.map(|(_, l)| fields(l)).unwrap_or_default();
    let new = actual.map(|(_, l)| fields(l)).unwrap_or_default();
    let kind = new
        .get("kind")
        .or(old.get("kind"))
        .cloned()
        .unwrap_or_default();
    let where_ = |side: &str, at: Option<(usize, &str)>| {
        at.map_or(format!("not in {side}"), |(i, _)| {
            format!("{side} line {}", i + 1)
        })
    };
    let step = actual
        .and_then(|(i, _)| step_of(i))
        .map_or(String::new(), |s| {
            format!(r##" <a href="#step-{s}">step {s}</a>"##)
        });
    let class = match (golden, actual) {
        (Some(_), Some(_)) => "changed",
        (Some(_), None) => "removed",
        _ => "added",
    };
    let _ = write!(
        out,
        r#"<div class="event-diff {class}"><div class="event-head">{} &middot; {} &middot; {}{step}</div><table><tr><th>field</th><th>golden</th><th>actual</th></tr>"#,
        esc(kind.trim_matches('"')),
        esc(&where_("golden", golden)),
        esc(&where_("actual", actual))
    );
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        let changed = a != b;
        // Unchanged fields of a changed event are context; keep them short.
        if !changed
            && golden.is_some()
            && actual.is_some()
            && !matches!(key.as_str(), "kind" | "id" | "topic" | "occurred_at")
        {
            continue;
        }
        let cell = |v: Option<&String>| v.map_or(String::new(), |v| esc(v));
        let mark = if changed {
            r#" class="field-changed""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<tr{mark}><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(key),
            cell(a),
            cell(b)
        );
    }
    out.push_str("</table></div>");
}

/// `events.jsonl` golden against actual, event by event. `step_of` maps an
/// actual event index to its step.
pub(super) fn events_html(
    golden: &str,
    actual: &str,
    step_of: &dyn Fn(usize) -> Option<usize>,
) -> String {
    let old: Vec<&str> = golden.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    let diff = TextDiff::from_lines(golden, actual);
    let mut out = String::new();
    let mut shown = 0usize;
    let mut hidden = 0usize;
    let mut show = |out: &mut String, g: Option<usize>, a: Option<usize>| {
        if shown >= MAX_CHANGED_EVENTS {
            hidden += 1;
            return;
        }
        shown += 1;
        event_table(out, g.map(|i| (i, old[i])), a.map(|i| (i, new[i])), step_of);
    };
    for op in diff.ops() {
        match *op {
            DiffOp::Equal { len, .. } => {
                let _ = write!(
                    out,
                    r#"<div class="event-same">{len} event(s) unchanged</div>"#
                );
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for i in old_index..old_index + old_len {
                    show(&mut out, Some(i), None);
                }
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for i in new_index..new_index + new_len {
                    show(&mut out, None, Some(i));
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                for k in 0..old_len.max(new_len) {
                    let g = (k < old_len).then_some(old_index + k);
                    let a = (k < new_len).then_some(new_index + k);
                    show(&mut out, g, a);
                }
            }
        }
    }
    if hidden > 0 {
        let _ = write!(
            out,
            r#"<div class="event-same">{hidden} more changed event(s) not shown</div>"#
        );
    }
    out
}

/// A unified diff with its added and removed lines marked.
pub(super) fn unified_html(diff: &str) -> String {
    let mut out = String::from(r#"<pre class="unified">"#);
    for line in diff.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") || line.starts_with("@@")
        {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            "ctx"
        };
        let _ = writeln!(out, r#"<span class="{class}">{}</span>"#, esc(line));
    }
    out.push_str("</pre>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_field_is_highlighted_and_escaped() {
        let golden = "{\"kind\":\"a\",\"payload\":{\"x\":1}}\n";
        let actual = "{\"kind\":\"a\",\"payload\":{\"x\":\"<b>\"}}\n";
        let html = events_html(golden, actual, &|_| Some(3));
        assert!(html.contains(r#"<tr class="field-changed"><td>payload.x</td><td>1</td><td>&quot;&lt;b&gt;&quot;</td></tr>"#), "{html}");
        assert!(html.contains("#step-3"));
    }
}
