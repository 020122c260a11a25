//! Explanations as text: what `rehearse explain` prints, and what `run` and
//! `check` print under a failed expectation.

use std::fmt::Write;

use super::{Explanation, Outcome};
use crate::report::EventRange;

/// The explanation as indented text, ending with a newline.
pub fn render(explanation: &Explanation) -> String {
    let e = explanation;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "step {} (line {}, {}): {}",
        e.step, e.line, e.at, e.kind
    );
    let _ = writeln!(out, "  {}", e.summary);
    for section in &e.sections {
        let _ = writeln!(out, "  {}", section.title);
        let width = section
            .rules
            .iter()
            .map(|r| r.check.chars().count())
            .max()
            .unwrap_or(0);
        for rule in &section.rules {
            let marker = if rule.decides { "  <- decides" } else { "" };
            let inputs = if rule.inputs.is_empty() {
                String::new()
            } else {
                format!("{}: ", rule.inputs)
            };
            let _ = writeln!(
                out,
                "    {:<width$}  {inputs}{}{marker}",
                rule.check, rule.outcome
            );
        }
    }
    if e.actual.decision.is_some() {
        let verdict = if e.agrees() {
            "the rules agree with the step"
        } else {
            "THE RULES DISAGREE WITH THE STEP"
        };
        let _ = writeln!(out, "  result: {verdict}");
        let _ = writeln!(out, "    rules predict  {}", outcome_text(&e.predicted));
        let _ = writeln!(out, "    step returned  {}", outcome_text(&e.actual));
    }
    out
}

fn outcome_text(outcome: &Outcome) -> String {
    let mut parts = Vec::new();
    if let Some(decision) = &outcome.decision {
        parts.push(decision.clone());
    }
    if let Some(at) = &outcome.schedule_at {
        parts.push(format!("schedule_at {at}"));
    }
    match &outcome.receipt {
        Some(receipt) => parts.push(format!("receipt {receipt}")),
        None => parts.push("receipt not predicted".to_string()),
    }
    if let Some(receipts) = outcome.receipts.as_ref().filter(|r| !r.is_empty()) {
        parts.push(format!("receipts [{}]", receipts.join(", ")));
    }
    parts.join(", ")
}

/// The events of `range`, given the lines of `events.jsonl`: a header,
/// then each event's line number, kind and JSON.
pub fn render_events(range: Option<EventRange>, lines: &[&str]) -> String {
    let Some(range) = range else {
        return String::new();
    };
    let mut out = String::new();
    if range.count == 0 {
        let _ = writeln!(out, "  events: none appended");
        return out;
    }
    let _ = writeln!(
        out,
        "  events: {} appended (events.jsonl lines {}-{})",
        range.count,
        range.first + 1,
        range.first + range.count
    );
    for index in range.indices() {
        let Some(line) = lines.get(index) else {
            break;
        };
        let kind = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "    {:>5}  {kind}", index + 1);
        let _ = writeln!(out, "           {line}");
    }
    out
}
