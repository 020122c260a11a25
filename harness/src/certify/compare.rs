//! Compares what an implementation answered with what the reference did,
//! step by step: the events each step appended, its receipts and its
//! decision, then the final statuses, run records, processes and pipeline.
//! Only declared answers are compared. Generated ids are renamed by order
//! of first appearance on each side (the same walk on both sides), headers
//! the manifest names are dropped, and numbers compare by value.

use std::collections::BTreeSet;

use rehearse_runtime::{format_ms, StoredEvent};
use serde::Serialize;
use serde_json::{json, Value};

use super::manifest::HeaderFilter;
use crate::audit::diverge::{first_difference, Ids};
use crate::protocol::AnswerKind;
use crate::report::StepReport;

/// Everything one side of a certification produced.
#[derive(Debug, Default)]
pub struct Transcript {
    pub steps: Vec<StepReport>,
    pub events: Vec<StoredEvent>,
    /// The final answers: `status.NAME`, `records`, `processes`,
    /// `pipeline`, in that order, each with the answer kind it needs.
    pub finals: Vec<(String, AnswerKind, Value)>,
}

/// The first difference between the implementation and the reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The 1-based step, or `None` in the final state.
    pub step: Option<usize>,
    /// The step's line in the scenario file.
    pub line: Option<usize>,
    /// The event's 1-based index in the reference's log (or where it would
    /// be), when the difference is in an event.
    pub event: Option<usize>,
    /// The event's kind (the implementation's, else the reference's).
    pub kind: Option<String>,
    /// `kind`, `topic`, `occurred_at`, `headers.NAME`, `payload.a.b`,
    /// `event` (one side has no event there), `receipt`, `run.a`,
    /// `decision.episode_id`, `status.NAME.a`, ...
    pub field: String,
    pub implementation: String,
    pub reference: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.step, self.line) {
            (Some(step), Some(line)) => write!(f, "step {step} (line {line})")?,
            (Some(step), None) => write!(f, "step {step}")?,
            _ => f.write_str("final state")?,
        }
        if let (Some(index), Some(kind)) = (self.event, &self.kind) {
            write!(f, ", event {index} ({kind})")?;
        }
        write!(
            f,
            ": `{}` is {} in the implementation and {} in the reference",
            self.field, self.implementation, self.reference
        )
    }
}

/// One side's normaliser: ids by first appearance, filtered headers.
struct Side<'a> {
    ids: Ids,
    headers: &'a HeaderFilter,
}

impl Side<'_> {
    fn event(&mut self, event: &StoredEvent) -> Value {
        let headers: serde_json::Map<String, Value> = event
            .headers
            .iter()
            .filter(|(name, _)| !self.headers.drops(name))
            .map(|(name, value)| (name.clone(), Value::String(self.ids.text(value))))
            .collect();
        json!({
            "kind": event.kind,
            "topic": event.topic.as_str(),
            "occurred_at": format_ms(event.occurred_at_ms),
            "headers": headers,
            "payload": self.ids.value(&event.payload),
        })
    }
}

/// The first difference between `implementation` and `reference` in what
/// `answers` declares.
pub fn first_difference_of(
    implementation: &Transcript,
    reference: &Transcript,
    answers: &BTreeSet<AnswerKind>,
    headers: &HeaderFilter,
) -> Option<Difference> {
    let mut ours = Side {
        ids: Ids::default(),
        headers,
    };
    let mut theirs = Side {
        ids: Ids::default(),
        headers,
    };
    for (mine, other) in implementation.steps.iter().zip(&reference.steps) {
        let at = |field: (String, String, String)| Difference {
            step: Some(other.step),
            line: Some(other.line),
            event: None,
            kind: None,
            field: field.0,
            implementation: field.1,
            reference: field.2,
        };
        if answers.contains(&AnswerKind::Events) {
            let events = step_events(
                implementation,
                reference,
                mine,
                other,
                &mut ours,
                &mut theirs,
            );
            if let Some(mut difference) = events {
                difference.step = Some(other.step);
                difference.line = Some(other.line);
                return Some(difference);
            }
        }
        if answers.contains(&AnswerKind::Receipts) {
            let a = ours.ids.value(&receipts_value(mine));
            let b = theirs.ids.value(&receipts_value(other));
            if let Some(field) = first_difference("", &a, &b) {
                return Some(at(trim(field)));
            }
        }
        if answers.contains(&AnswerKind::Decisions) {
            let a = json!({ "decision": mine.decision });
            let b = json!({ "decision": other.decision });
            if let Some(field) = first_difference("", &a, &b) {
                return Some(at(trim(field)));
            }
        }
    }
    final_difference(implementation, reference, answers, &mut ours, &mut theirs)
}

/// The first difference in the final answers.
fn final_difference(
    implementation: &Transcript,
    reference: &Transcript,
    answers: &BTreeSet<AnswerKind>,
    ours: &mut Side<'_>,
    theirs: &mut Side<'_>,
) -> Option<Difference> {
    for ((name, kind, mine), (_, _, other)) in implementation.finals.iter().zip(&reference.finals) {
        if !answers.contains(kind) {
            continue;
        }
        let a = ours.ids.value(mine);
        let b = theirs.ids.value(other);
        if let Some((field, x, y)) = first_difference(name, &a, &b) {
            return Some(Difference {
                step: None,
                line: None,
                event: None,
                kind: None,
                field,
                implementation: x,
                reference: y,
            });
        }
    }
    None
}

/// `(".receipt", ..)` as `("receipt", ..)`.
fn trim((field, a, b): (String, String, String)) -> (String, String, String) {
    (field.trim_start_matches('.').to_string(), a, b)
}

/// What a step's receipts answer holds; an error's text is compared only
/// through expectations, so only whether there is one counts here.
fn receipts_value(step: &StepReport) -> Value {
    json!({
        "receipt": step.receipt,
        "receipts": step.receipts,
        "error": step.error.as_ref().map(|_| "(an error)"),
        "detail": step.detail,
    })
}

/// The first difference among the events two steps appended.
fn step_events(
    implementation: &Transcript,
    reference: &Transcript,
    mine: &StepReport,
    other: &StepReport,
    ours: &mut Side<'_>,
    theirs: &mut Side<'_>,
) -> Option<Difference> {
    let slice = |t: &'_ Transcript, step: &StepReport| {
        let range = step.events.map_or(0..0, |r| r.indices());
        let end = range.end.min(t.events.len());
        range.start.min(end)..end
    };
    let (a_range, b_range) = (slice(implementation, mine), slice(reference, other));
    let a_events = &implementation.events[a_range];
    let b_events = &reference.events[b_range.clone()];
    for j in 0..a_events.len().max(b_events.len()) {
        let index = Some(b_range.start + j + 1);
        let (a, b) = (a_events.get(j), b_events.get(j));
        let kind = a.or(b).map(|e| e.kind.to_string());
        let (field, x, y) = match (a, b) {
            (Some(a), Some(b)) => {
                let (a, b) = (ours.event(a), theirs.event(b));
                match ["kind", "topic", "occurred_at", "headers", "payload"]
                    .iter()
                    .find_map(|key| first_difference(key, &a[key], &b[key]))
                {
                    Some(found) => found,
                    None => continue,
                }
            }
            (Some(a), None) => ("event".into(), format!("`{}`", a.kind), "absent".into()),
            (None, Some(b)) => ("event".into(), "absent".into(), format!("`{}`", b.kind)),
            (None, None) => unreachable!("j is below the longer length"),
        };
        return Some(Difference {
            step: None,
            line: None,
            event: index,
            kind,
            field,
            implementation: x,
            reference: y,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::EventRange;
    use rehearse_runtime::{LogEvent, Topic};

    fn event(id: u64, kind: &str, headers: &[(&str, &str)], payload: Value) -> StoredEvent {
        let event = LogEvent {
            kind: kind.to_string().into(),
            payload: payload.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            occurred_at_ms: 0,
        };
        StoredEvent::new(Topic::new("persona.runtime.events").unwrap(), id, event)
    }

    fn transcript(events: Vec<StoredEvent>) -> Transcript {
        let step = StepReport {
            step: 1,
            line: 7,
            at: format_ms(0),
            kind: "trigger".to_string(),
            event_id: Some("step-1".to_string()),
            receipt: Some("completed".to_string()),
            receipts: Vec::new(),
            error: None,
            decision: None,
            events: Some(EventRange {
                first: 0,
                count: events.len(),
            }),
            detail: None,
            expectations: Vec::new(),
        };
        Transcript {
            steps: vec![step],
            events,
            finals: Vec::new(),
        }
    }

    const A: &str = "019dbf5c-7200-7c15-b4ee-b8e99e0d2dfe";
    const B: &str = "019dbf61-05e0-7e65-8cd3-1859317e3dba";

    #[test]
    fn ids_in_the_same_order_and_filtered_headers_agree_and_the_first_field_is_named() {
        let answers: BTreeSet<AnswerKind> = AnswerKind::ALL.into_iter().collect();
        let filter = crate::certify::Manifest::parse(
            "manifest_version = 1\nimplementation = \"t\"\nignore_headers = [\"harn.*\"]",
        )
        .unwrap()
        .headers;
        let reference = transcript(vec![
            event(0, "persona.lease.acquired", &[], json!({"id": A, "ttl": 5})),
            event(1, "test.run.started", &[], json!({"lease": A, "n": 1})),
        ]);
        let same = transcript(vec![
            event(
                0,
                "persona.lease.acquired",
                &[("harn.provenance", "x")],
                json!({"id": B, "ttl": 5.0}),
            ),
            event(1, "test.run.started", &[], json!({"lease": B, "n": 1})),
        ]);
        assert_eq!(
            first_difference_of(&same, &reference, &answers, &filter),
            None
        );
        let unfiltered = HeaderFilter::default();
        let found = first_difference_of(&same, &reference, &answers, &unfiltered).unwrap();
        assert_eq!(found.field, "headers.harn.provenance");
        let other = transcript(vec![
            event(0, "persona.lease.acquired", &[], json!({"id": B, "ttl": 5})),
            event(1, "test.run.started", &[], json!({"lease": A, "n": 1})),
        ]);
        let found = first_difference_of(&other, &reference, &answers, &filter).unwrap();
        assert_eq!(
            (found.step, found.line, found.event, found.kind.as_deref()),
            (Some(1), Some(7), Some(2), Some("test.run.started"))
        );
        assert_eq!(found.field, "payload.lease");
        assert_eq!(
            (found.implementation.as_str(), found.reference.as_str()),
            ("`\"<id-2>\"`", "`\"<id-1>\"`")
        );
        // Events not declared: not compared.
        let receipts_only: BTreeSet<AnswerKind> = [AnswerKind::Receipts].into_iter().collect();
        assert_eq!(
            first_difference_of(&other, &reference, &receipts_only, &filter),
            None
        );
    }
}
