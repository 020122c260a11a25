//! `rehearse audit --shrink`: the operations rebuilt from a failing log,
//! shrunk to the fewest, earliest and cheapest that still fail the same
//! way, with `explore`'s shrinking loop ([`crate::explore::shrink`]).
//!
//! A log that breaks an invariant is shrunk on the log itself: a candidate
//! keeps the events of the operations it keeps (times and costs moved with
//! them) and fails when auditing those events breaks the same invariant
//! first. A log that audits clean but diverges from the reference is shrunk
//! by running each candidate on the reference: it fails when the first
//! difference is in the same event kind and field.

use proptest::strategy::ValueTree;
use rehearse_runtime::{format_ms, parse_rfc3339_ms, Op, RuntimeConfig, StoredEvent};
use serde_json::Value;

use super::bindings::{Bindings, ScenarioFrame};
use super::diverge::Divergence;
use super::rebuild::{Trace, TraceStep};
use super::reference::{reference_events, run_reference, to_scenario, trace_divergence};
use crate::explore::{shrink, Checker, Invariant};

/// How the log failed, which a shrunk trace must still do.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The first violation in the log is of this invariant.
    Violation(Invariant),
    /// The first difference from the reference is in this kind and field.
    Divergence { kind: String, field: String },
}

/// How a candidate failed: at which of its steps (0-based), and what was seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub step: usize,
    pub message: String,
}

/// What shrinking needs besides the trace.
#[derive(Debug)]
pub struct Shrink<'a> {
    pub target: Target,
    pub bindings: Option<&'a Bindings>,
    pub frame: Option<&'a ScenarioFrame>,
    pub name: &'a str,
}

/// A shrunk trace and how it fails.
#[derive(Debug)]
pub struct Shrunk {
    pub trace: Trace,
    pub failure: Failure,
    pub original_steps: usize,
    pub iterations: usize,
}

impl Shrink<'_> {
    /// How `trace` fails the target way, if it does.
    pub fn fails(&self, trace: &Trace) -> Option<Failure> {
        match &self.target {
            Target::Violation(invariant) => self.violation(trace, *invariant),
            Target::Divergence { kind, field } => self.divergence(trace, kind, field),
        }
    }

    fn violation(&self, trace: &Trace, target: Invariant) -> Option<Failure> {
        let config = RuntimeConfig {
            personas: self
                .bindings
                .map(|b| b.personas.clone())
                .unwrap_or_default(),
            ..RuntimeConfig::default()
        };
        let mut checker = Checker::for_log(&config);
        let mut position = 0;
        for (index, event) in renumbered(trace) {
            position += 1;
            if let Err(violation) = checker.check_event(position, &event) {
                return (violation.invariant == target).then(|| Failure {
                    step: index,
                    message: format!("{}: {}", violation.invariant, violation.message),
                });
            }
        }
        None
    }

    fn divergence(&self, trace: &Trace, kind: &str, field: &str) -> Option<Failure> {
        let scenario = to_scenario(trace, self.name, self.frame, None, None);
        let output = run_reference(&scenario, self.name).ok()?;
        let found = trace_divergence(trace, &reference_events(&output))?;
        (found.kind == kind && found.field == field).then(|| Failure {
            step: step_of_persona_event(trace, found.index),
            message: found.to_string(),
        })
    }

    /// Shrinks `trace`, which fails as `failure`, cutting it after the
    /// failing step first.
    pub fn run(&self, mut trace: Trace, failure: Failure) -> Shrunk {
        let original_steps = trace.steps.len();
        trace.steps.truncate(failure.step + 1);
        let focus = trace.steps[failure.step].op.persona().map(str::to_string);
        let mut tree = TraceTree {
            accepted: trace.clone(),
            current: trace.clone(),
            cursor: 0,
            focus,
        };
        let (trace, failure, iterations) =
            shrink(&mut tree, trace, failure, |candidate| self.fails(candidate));
        Shrunk {
            trace,
            failure,
            original_steps,
            iterations,
        }
    }
}

/// The step holding the `index`-th (1-based) persona event of `trace`.
fn step_of_persona_event(trace: &Trace, index: usize) -> usize {
    let mut seen = 0;
    for (step, events) in trace.steps.iter().map(|s| &s.events).enumerate() {
        seen += events
            .iter()
            .filter(|e| e.topic.as_str() == rehearse_runtime::persona::PERSONA_TOPIC)
            .count();
        if seen >= index {
            return step;
        }
    }
    trace.steps.len().saturating_sub(1)
}

/// The events of `trace` with each topic's ids counted again from 1, each
/// with the index of its step.
fn renumbered(trace: &Trace) -> impl Iterator<Item = (usize, StoredEvent)> + '_ {
    let mut next: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    trace
        .steps
        .iter()
        .enumerate()
        .flat_map(move |(index, step)| {
            step.events
                .iter()
                .map(|event| {
                    let id = next.entry(event.topic.to_string()).or_default();
                    *id += 1;
                    (index, event.renumbered(*id))
                })
                .collect::<Vec<_>>()
        })
}

/// One simplification of a trace.
#[derive(Clone, Debug, PartialEq)]
enum Change {
    /// Keep only the steps of this persona.
    Focus(String),
    /// Drop `len` steps from `start`.
    Drop { start: usize, len: usize },
    /// Move step `index` to the time of the step before it.
    Merge(usize),
    /// Set step `index`'s cost.
    Cost { index: usize, usd: f64, tokens: u64 },
}

/// The trace being shrunk as a proptest value tree: `simplify` accepts the
/// current trace and tries the first change to it, `complicate` rejects the
/// current one and tries the next change to the last accepted.
#[derive(Debug)]
struct TraceTree {
    accepted: Trace,
    current: Trace,
    cursor: usize,
    focus: Option<String>,
}

impl ValueTree for TraceTree {
    type Value = Trace;

    fn current(&self) -> Trace {
        self.current.clone()
    }

    fn simplify(&mut self) -> bool {
        self.accepted = self.current.clone();
        self.cursor = 0;
        self.advance()
    }

    fn complicate(&mut self) -> bool {
        self.cursor += 1;
        self.advance()
    }
}

impl TraceTree {
    /// Makes the change at the cursor (or the next one that changes
    /// anything) the current trace; false when none is left.
    fn advance(&mut self) -> bool {
        let changes = changes(&self.accepted, self.focus.as_deref());
        while let Some(change) = changes.get(self.cursor) {
            if let Some(trace) = apply(&self.accepted, change) {
                self.current = trace;
                return true;
            }
            self.cursor += 1;
        }
        false
    }
}

/// Every change to try on `trace`, the boldest first.
fn changes(trace: &Trace, focus: Option<&str>) -> Vec<Change> {
    let mut out = Vec::new();
    out.extend(focus.map(|persona| Change::Focus(persona.to_string())));
    let n = trace.steps.len();
    let mut len = n / 2;
    while len >= 1 {
        out.extend((0..n).step_by(len).map(|start| Change::Drop { start, len }));
        len /= 2;
    }
    out.extend((1..n).map(Change::Merge));
    for (index, step) in trace.steps.iter().enumerate() {
        if let Some((usd, tokens)) = cost_of(&step.op) {
            let cheaper = [
                (0.0, tokens),
                (usd / 2.0, tokens),
                (usd, 0),
                (usd, tokens / 2),
            ];
            out.extend(
                cheaper
                    .into_iter()
                    .filter(|candidate| *candidate != (usd, tokens))
                    .map(|(usd, tokens)| Change::Cost { index, usd, tokens }),
            );
        }
    }
    out
}

fn cost_of(op: &Op) -> Option<(f64, u64)> {
    match op {
        Op::Trigger(trigger) => Some((trigger.cost.usd, trigger.cost.tokens)),
        Op::Tick(tick) => Some((tick.cost.usd, tick.cost.tokens)),
        Op::Spend(spend) => Some((spend.usd, spend.tokens)),
        _ => None,
    }
}

/// `trace` with `change` made, or `None` when it changes nothing.
fn apply(trace: &Trace, change: &Change) -> Option<Trace> {
    let mut out = trace.clone();
    match change {
        Change::Focus(persona) => {
            out.steps
                .retain(|step| step.op.persona() == Some(persona.as_str()));
        }
        Change::Drop { start, len } => {
            let end = (start + len).min(out.steps.len());
            out.steps.drain(*start..end);
        }
        Change::Merge(index) => {
            let to = out.steps[index - 1].at_ms;
            let step = &mut out.steps[*index];
            let delta = to - step.at_ms;
            step.at_ms = to;
            for event in &mut step.events {
                event.occurred_at_ms += delta;
                event.edit_payload(|payload| shift(payload, delta, None));
            }
        }
        Change::Cost { index, usd, tokens } => recost(&mut out.steps[*index], *usd, *tokens),
    }
    (out != *trace && !out.steps.is_empty()).then_some(out)
}

/// Moves every time in `value` by `delta` ms: integers under keys ending in
/// `_at_ms` and RFC 3339 strings.
fn shift(value: &mut Value, delta: i64, key: Option<&str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                shift(value, delta, Some(key));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| shift(item, delta, None)),
        Value::Number(number) if key.is_some_and(|k| k.ends_with("_at_ms")) => {
            if let Some(ms) = number.as_i64() {
                *value = Value::from(ms + delta);
            }
        }
        Value::String(text) => {
            if let Ok(ms) = parse_rfc3339_ms(text) {
                *text = format_ms(ms + delta);
            }
        }
        _ => {}
    }
}

/// Sets a step's cost, in its operation and in the events that logged it.
fn recost(step: &mut TraceStep, usd: f64, tokens: u64) {
    let Some((old_usd, old_tokens)) = cost_of(&step.op) else {
        return;
    };
    match &mut step.op {
        Op::Trigger(trigger) => (trigger.cost.usd, trigger.cost.tokens) = (usd, tokens),
        Op::Tick(tick) => (tick.cost.usd, tick.cost.tokens) = (usd, tokens),
        Op::Spend(spend) => (spend.usd, spend.tokens) = (usd, tokens),
        _ => {}
    }
    for event in &mut step.events {
        event.edit_payload(|payload| {
            replace_amounts(payload, (old_usd, usd), (old_tokens, tokens), None);
        });
    }
}

const USD_KEYS: [&str; 3] = ["cost_usd", "attempted_cost_usd", "paid_cost_usd"];
const TOKEN_KEYS: [&str; 2] = ["tokens", "attempted_tokens"];

fn replace_amounts(value: &mut Value, usd: (f64, f64), tokens: (u64, u64), key: Option<&str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                replace_amounts(value, usd, tokens, Some(key));
            }
        }
        Value::Number(number) => {
            let key = key.unwrap_or_default();
            if USD_KEYS.contains(&key) && number.as_f64() == Some(usd.0) {
                *value = Value::from(usd.1);
            } else if TOKEN_KEYS.contains(&key) && number.as_u64() == Some(tokens.0) {
                *value = Value::from(tokens.1);
            }
        }
        _ => {}
    }
}

/// The target of a log that audits clean but differs from the reference:
/// the same event kind and field must differ first.
pub fn divergence_target(divergence: &Divergence) -> Target {
    Target::Divergence {
        kind: divergence.kind.clone(),
        field: divergence.field.clone(),
    }
}
