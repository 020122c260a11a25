//! The value receipts a persona has earned, kept compactly.
//!
//! A persona earns two or more receipts a run and keeps every one (status
//! lists them all), so this list grows with the log. Held as
//! [`ValueReceipt`]s, each with its metadata as a `serde_json::Value` map,
//! they took about 950 bytes a receipt; here each is a fixed-size head of
//! numbers plus its run id and its metadata's compact JSON in one shared
//! buffer, and a receipt whose run id or metadata repeats the previous
//! receipt's (a run's own receipts usually do) shares its text. A
//! [`ValueReceipt`] is decoded only when a status asks for the list. Heads
//! and text are kept in chunks that never move (`chunked.rs`).

use serde_json::Value;

use super::{ValueEvent, ValueKind, ValueReceipt};
use crate::chunked::{Chunks, Span, Text};
use crate::clock::format_ms;

/// Every value receipt of one persona, in log order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueReceipts {
    heads: Chunks<Head>,
    /// The run ids and metadata texts the heads point into.
    text: Text,
}

/// One receipt: its numbers, and where its texts are.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Head {
    kind: ValueKind,
    occurred_at_ms: i64,
    paid_cost_usd: f64,
    avoided_cost_usd: f64,
    deterministic_steps: i64,
    llm_steps: i64,
    run_id: Span,
    /// The metadata's canonical text (the event's own), which reads back
    /// to the same value (the workspace enables `float_roundtrip`).
    metadata: Span,
}

impl ValueReceipts {
    /// Appends the receipt of `value`.
    pub fn push(&mut self, value: &ValueEvent) {
        let previous = self.heads.last().copied();
        let run_id = self.share(previous.map(|head| head.run_id), value.run_id.as_bytes());
        let metadata = self.share(
            previous.map(|head| head.metadata),
            value.metadata.json().as_bytes(),
        );
        self.heads.push(Head {
            kind: value.kind,
            occurred_at_ms: value.occurred_at.ms(),
            paid_cost_usd: value.paid_cost_usd,
            avoided_cost_usd: value.avoided_cost_usd,
            deterministic_steps: value.deterministic_steps,
            llm_steps: value.llm_steps,
            run_id,
            metadata,
        });
    }

    /// `previous` when it holds the same bytes as `bytes`, or else where
    /// `bytes` are kept now.
    fn share(&mut self, previous: Option<Span>, bytes: &[u8]) -> Span {
        match previous {
            Some(span) if self.text.get(span) == bytes => span,
            _ => self.text.push(bytes),
        }
    }

    /// How many receipts there are.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Every receipt, decoded, in log order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ValueReceipt> + '_ {
        self.heads.iter().map(|head| self.decode(head))
    }

    fn decode(&self, head: &Head) -> ValueReceipt {
        let text = |span: Span| self.text.get(span);
        let run_id = std::str::from_utf8(text(head.run_id)).expect("a run id was a string");
        let metadata: Value =
            serde_json::from_slice(text(head.metadata)).expect("metadata reads as written");
        ValueReceipt {
            kind: head.kind,
            run_id: Some(run_id.to_string()),
            occurred_at: format_ms(head.occurred_at_ms),
            paid_cost_usd: head.paid_cost_usd,
            avoided_cost_usd: head.avoided_cost_usd,
            deterministic_steps: head.deterministic_steps,
            llm_steps: head.llm_steps,
            metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::TimeTuple;

    fn event(kind: ValueKind, run_id: &str, metadata: Value) -> ValueEvent {
        ValueEvent {
            persona_id: "p".into(),
            template_ref: None,
            run_id: run_id.into(),
            kind,
            paid_cost_usd: 0.1 + 0.2,
            avoided_cost_usd: 1e-300,
            deterministic_steps: -3,
            llm_steps: i64::MAX,
            metadata: metadata.into(),
            occurred_at: TimeTuple(1_777_000_123_456),
        }
    }

    /// Metadata whose text is easy to get wrong: shortest float forms,
    /// extreme integers, escapes, non-ASCII, nesting, an empty map.
    fn awkward_metadata() -> Value {
        json!({
            "float": 0.1, "tiny": 5e-324, "huge": 1.7976931348623157e308,
            "negative_zero": -0.0, "whole_float": 3.0,
            "u64": u64::MAX, "i64": i64::MIN,
            "text": "quote \" backslash \\ newline \n tab \t nul \u{0} é 🦀",
            "nested": {"list": [null, true, false, [], {}], "z": {"a": 1}},
            "": {}
        })
    }

    #[test]
    fn receipts_decode_to_what_the_events_say() {
        let events = vec![
            event(ValueKind::RunStarted, "run-1", awkward_metadata()),
            event(ValueKind::RunCompleted, "run-1", awkward_metadata()),
            event(ValueKind::FrontierEscalation, "run-2", Value::Null),
            event(ValueKind::DeterministicExecution, "", json!({"k": "v"})),
        ];
        let mut receipts = ValueReceipts::default();
        for event in &events {
            receipts.push(event);
        }
        assert_eq!(receipts.len(), events.len());
        let decoded: Vec<ValueReceipt> = receipts.iter().collect();
        let expected: Vec<ValueReceipt> = events.iter().map(ValueReceipt::from).collect();
        assert_eq!(decoded, expected);
        // Equal values can still print differently (-0.0 == 0.0): compare
        // the text status is written as, too.
        assert_eq!(
            serde_json::to_string(&decoded).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[test]
    fn a_receipt_repeating_the_previous_texts_adds_none() {
        let mut receipts = ValueReceipts::default();
        receipts.push(&event(ValueKind::RunStarted, "run-1", awkward_metadata()));
        let one = receipts.text.len();
        receipts.push(&event(ValueKind::RunCompleted, "run-1", awkward_metadata()));
        assert_eq!(receipts.text.len(), one);
        receipts.push(&event(ValueKind::RunStarted, "run-2", awkward_metadata()));
        assert_eq!(receipts.text.len(), one + "run-2".len());
        let kinds: Vec<ValueKind> = receipts.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                ValueKind::RunStarted,
                ValueKind::RunCompleted,
                ValueKind::RunStarted
            ]
        );
        assert!(receipts.iter().all(|r| r.metadata == awkward_metadata()));
    }

    /// A run's value events share one map: the second receipt takes the
    /// first's text unwritten, and a different map in between is never
    /// mistaken for it.
    #[test]
    fn a_shared_map_is_written_once_and_only_for_its_own_receipts() {
        let shared = event(ValueKind::RunStarted, "run-1", awkward_metadata());
        let other = event(ValueKind::RunStarted, "run-2", json!({"k": "v"}));
        let mut receipts = ValueReceipts::default();
        receipts.push(&shared);
        let one = receipts.text.len();
        receipts.push(&ValueEvent {
            kind: ValueKind::RunCompleted,
            ..shared.clone()
        });
        assert_eq!(receipts.text.len(), one);
        receipts.push(&other);
        receipts.push(&ValueEvent {
            kind: ValueKind::RunCompleted,
            ..shared.clone()
        });
        let metadata: Vec<Value> = receipts.iter().map(|r| r.metadata).collect();
        assert_eq!(
            metadata,
            [
                awkward_metadata(),
                awkward_metadata(),
                json!({"k": "v"}),
                awkward_metadata()
            ]
        );
    }
}
