//! The value receipts a persona has earned, kept compactly.
//!
//! A persona earns two or more receipts a run and keeps every one (status
//! lists them all), so this list grows with the log. Held as
//! [`ValueReceipt`]s, each with its metadata as a `serde_json::Value` map,
//! they took about 950 bytes a receipt; here each is a fixed-size head of
//! numbers plus its run id and its metadata's compact JSON in one shared
//! buffer, and a receipt whose run id or metadata repeats the previous
//! receipt's (a run's own receipts usually do) shares its text. A
//! [`ValueReceipt`] is decoded only when a status asks for the list.

use serde_json::Value;

use super::{ValueEvent, ValueKind, ValueReceipt};
use crate::clock::format_ms;

/// Every value receipt of one persona, in log order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueReceipts {
    heads: Vec<Head>,
    /// The run ids and metadata texts the heads point into.
    text: Vec<u8>,
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
    /// The metadata as `serde_json` writes it, which reads back to the
    /// same value (the workspace enables `float_roundtrip`).
    metadata: Span,
}

/// A range of [`ValueReceipts::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl ValueReceipts {
    /// Appends the receipt of `value`.
    pub fn push(&mut self, value: &ValueEvent) {
        let previous = self.heads.last().copied();
        let start = self.text.len();
        self.text.extend_from_slice(value.run_id.as_bytes());
        let run_id = self.share(previous.map(|head| head.run_id), start);
        let start = self.text.len();
        crate::json_out::value(&mut self.text, &value.metadata);
        let metadata = self.share(previous.map(|head| head.metadata), start);
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

    /// The text just written from `start` on, or `previous` (dropping the
    /// new copy) when that holds the same bytes.
    fn share(&mut self, previous: Option<Span>, start: usize) -> Span {
        match previous {
            Some(span) if self.text[span.start..span.end] == self.text[start..] => {
                self.text.truncate(start);
                span
            }
            _ => Span {
                start,
                end: self.text.len(),
            },
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
        let text = |span: Span| &self.text[span.start..span.end];
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
            persona_id: "p".to_string(),
            template_ref: None,
            run_id: run_id.to_string(),
            kind,
            paid_cost_usd: 0.1 + 0.2,
            avoided_cost_usd: 1e-300,
            deterministic_steps: -3,
            llm_steps: i64::MAX,
            metadata,
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
}
