//! Why a step got its receipt: the admission rules of docs/SCENARIOS.md
//! ("Reference behaviour") evaluated in order with their inputs, the
//! supervisor's constraints with their arithmetic ("Supervisor and
//! capture"), the retry walk, and the events the step appended.
//!
//! An [`Explainer`] watches a run through the driver's [`StepObserver`]
//! hook: before a step it reads the runtime's and the supervisor's state
//! and evaluates the rules with the runtime's own functions
//! (`budget::checks`, `Lease::is_live_at`, `Supervisor::rate_delay_at`, ...);
//! after the step it folds the appended events with `PersonaState::apply`
//! to evaluate each further admission (retries, a resume's drain) in the
//! state it met. Each explanation carries the receipt the rules predict and
//! the receipt the step got, so a disagreement shows.

mod rules;
mod text;
mod walk;

use std::collections::{BTreeMap, BTreeSet};

use rehearse_runtime::capture::Session;
use rehearse_runtime::op::Op;
use rehearse_runtime::supervisor::Handled;
use serde::Serialize;

use crate::driver::{self, DriverError, RunOptions, RunOutput, StepObserver};
use crate::report::{EventRange, Report};
use crate::scenario::Scenario;

pub use text::{render, render_events};

/// The explanation of one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Explanation {
    /// 1-based position in `steps`.
    pub step: usize,
    pub line: usize,
    pub at: String,
    pub kind: String,
    /// What the step asked for, in a sentence.
    pub summary: String,
    /// The rules in the order they were evaluated, grouped.
    pub sections: Vec<Section>,
    /// What the rules say the step returns.
    pub predicted: Outcome,
    /// What it returned.
    pub actual: Outcome,
    /// The events it appended (for a pump, its episode's).
    pub events: Option<EventRange>,
}

/// A group of rules: the supervisor, one admission, a budget.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Section {
    pub title: String,
    pub rules: Vec<Rule>,
}

/// One rule evaluated: what it checks, its inputs, its outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rule {
    pub check: String,
    pub inputs: String,
    pub outcome: String,
    /// Whether this rule decided the section's result.
    pub decides: bool,
}

/// A step's result as the rules predict it or as it came out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `invoke` or `defer`; absent for a step without an operation.
    pub decision: Option<String>,
    /// When a deferred episode falls due.
    pub schedule_at: Option<String>,
    /// The step's receipt; absent when the rules do not predict one.
    pub receipt: Option<String>,
    /// A resume's receipts, one per drained item.
    pub receipts: Option<Vec<String>>,
}

impl Explanation {
    /// Whether every prediction the rules make matches the step's result.
    pub fn agrees(&self) -> bool {
        let (p, a) = (&self.predicted, &self.actual);
        let same = |predicted: &Option<String>, actual: &Option<String>| {
            predicted.is_none() || predicted == actual
        };
        same(&p.decision, &a.decision)
            && same(&p.schedule_at, &a.schedule_at)
            && same(&p.receipt, &a.receipt)
            && (p.receipts.is_none() || p.receipts == a.receipts)
    }
}

/// Which steps to explain.
#[derive(Clone, Debug)]
pub enum Wanted {
    All,
    Steps(BTreeSet<usize>),
}

impl Wanted {
    fn contains(&self, index: usize) -> bool {
        match self {
            Self::All => true,
            Self::Steps(steps) => steps.contains(&(index + 1)),
        }
    }
}

/// Watches a run and explains the wanted steps.
#[derive(Debug)]
pub struct Explainer<'a> {
    scenario: &'a Scenario,
    wanted: Wanted,
    pending: Option<walk::Before>,
    /// Explanations by step index (0-based); `None` for steps not wanted.
    explanations: Vec<Option<Explanation>>,
}

impl<'a> Explainer<'a> {
    pub fn new(scenario: &'a Scenario, wanted: Wanted) -> Self {
        Self {
            scenario,
            wanted,
            pending: None,
            explanations: vec![None; scenario.steps.len()],
        }
    }

    /// The explanations of the wanted steps, in step order. A step with no
    /// operation is explained as a check only.
    pub fn finish(self) -> Vec<Explanation> {
        let scenario = self.scenario;
        self.explanations
            .into_iter()
            .enumerate()
            .filter(|(index, _)| self.wanted.contains(*index))
            .map(|(index, explanation)| {
                let step = &scenario.steps[index];
                explanation.unwrap_or_else(|| match step.sequence {
                    // An `advance` or `repeat` that stood for no event.
                    Some(_) => Explanation {
                        summary: format!("{}: it stands for no event here", step.kind()),
                        ..sequence_start(step.kind(), index, step)
                    },
                    None => walk::expect_only(scenario, index),
                })
            })
            .collect()
    }
}

impl StepObserver for Explainer<'_> {
    fn before(&mut self, index: usize, op: &Op, at_ms: i64, session: &Session) {
        self.pending = self
            .wanted
            .contains(index)
            .then(|| walk::Before::read(op, at_ms, session));
    }

    fn after(&mut self, index: usize, op: &Op, at_ms: i64, session: &Session, handled: &Handled) {
        if let Some(before) = self.pending.take() {
            let step = &self.scenario.steps[index];
            let mut explanation = before.explain(op, at_ms, session, handled);
            explanation.step = index + 1;
            explanation.line = step.line;
            explanation.at = rehearse_runtime::format_ms(at_ms);
            explanation.kind = op.kind().to_string();
            let slot = &mut self.explanations[index];
            if step.sequence.is_some() {
                let merged = slot.get_or_insert_with(|| sequence_start(step.kind(), index, step));
                add_to_sequence(merged, explanation, handled);
            } else {
                *slot = Some(explanation);
            }
        }
    }
}

/// The explanation of an `advance` or `repeat` before its first event.
fn sequence_start(kind: &str, index: usize, step: &crate::scenario::Step) -> Explanation {
    Explanation {
        step: index + 1,
        line: step.line,
        at: rehearse_runtime::format_ms(step.at_ms),
        kind: kind.to_string(),
        summary: format!("{kind}: each event it stands for is explained in turn"),
        predicted: Outcome {
            receipts: Some(Vec::new()),
            ..Outcome::default()
        },
        actual: Outcome {
            receipts: Some(Vec::new()),
            ..Outcome::default()
        },
        ..Explanation::default()
    }
}

/// Adds one event of an `advance` or `repeat` to its step's explanation:
/// its sections under a heading, its receipts to the step's lists; the
/// step's decision is the last event's.
fn add_to_sequence(merged: &mut Explanation, event: Explanation, handled: &Handled) {
    let heading = Section {
        title: format!(
            "event {} at {}: {}",
            handled.decision.event_id, event.at, event.summary
        ),
        rules: Vec::new(),
    };
    merged.sections.push(heading);
    merged.sections.extend(event.sections);
    let (p, a) = (&mut merged.predicted, &mut merged.actual);
    match (p.receipts.as_mut(), event.predicted.receipt) {
        (Some(list), Some(receipt)) => list.push(receipt),
        // One event the rules do not predict: no list for the step.
        _ => p.receipts = None,
    }
    if let (Some(list), Some(receipt)) = (a.receipts.as_mut(), event.actual.receipt) {
        list.push(receipt);
    }
    p.decision = event.predicted.decision;
    p.schedule_at = event.predicted.schedule_at;
    a.decision = event.actual.decision;
    a.schedule_at = event.actual.schedule_at;
    let failed = |o: &Outcome| o.receipts.as_ref().map(|l| l.iter().any(|r| r == "error"));
    p.receipt = failed(p).map(|f| if f { "error" } else { "ok" }.to_string());
    a.receipt = failed(a).map(|f| if f { "error" } else { "ok" }.to_string());
}

/// Runs `scenario` and explains the `wanted` steps; the run's output comes
/// back too, so callers can show the events.
pub fn explain(
    scenario: &Scenario,
    source: &str,
    wanted: Wanted,
) -> Result<(RunOutput, Vec<Explanation>), DriverError> {
    let mut explainer = Explainer::new(scenario, wanted);
    let output = driver::run_observed(scenario, source, RunOptions::default(), &mut explainer)?;
    let mut explanations = explainer.finish();
    settle(&mut explanations, &output.report);
    Ok((output, explanations))
}

/// Takes from the report what only the whole step knows: the final event
/// ranges (a restart that cut a torn tail shortens earlier ones) and an
/// `advance`'s or `repeat`'s own receipt.
pub fn settle(explanations: &mut [Explanation], report: &Report) {
    for explanation in explanations {
        let Some(step) = report.steps.get(explanation.step - 1) else {
            continue;
        };
        explanation.events = step.events;
        if matches!(step.kind.as_str(), "advance" | "repeat") {
            explanation.actual.receipt.clone_from(&step.receipt);
            explanation.actual.receipts = Some(step.receipts.clone());
        }
    }
}

/// The step an explanation is asked for by scenario line: the step whose
/// entry starts at or before `line`, the last such.
pub fn step_at_line(scenario: &Scenario, line: usize) -> Option<usize> {
    scenario
        .steps
        .iter()
        .rposition(|step| step.line <= line)
        .map(|index| index + 1)
}

/// The explanations of `steps` (1-based), rendered as text with their
/// events and indented by `indent`: what `run` and `check` print under a
/// failed expectation. Empty when the scenario cannot run.
pub fn explain_steps(
    scenario: &Scenario,
    source: &str,
    steps: BTreeSet<usize>,
    indent: &str,
) -> BTreeMap<usize, String> {
    if steps.is_empty() {
        return BTreeMap::new();
    }
    let Ok((output, explanations)) = explain(scenario, source, Wanted::Steps(steps)) else {
        return BTreeMap::new();
    };
    let lines: Vec<&str> = output.events_jsonl.lines().collect();
    explanations
        .iter()
        .map(|e| {
            let text = render(e) + &render_events(e.events, &lines);
            let indented = text
                .lines()
                .map(|line| format!("{indent}{line}\n"))
                .collect();
            (e.step, indented)
        })
        .collect()
}

/// [`explain_steps`] for the steps of `report` with a failed expectation.
pub fn explain_failures(
    scenario: &Scenario,
    report: &Report,
    indent: &str,
) -> BTreeMap<usize, String> {
    let steps = report.failures().map(|(step, _)| step.step).collect();
    explain_steps(scenario, &report.source, steps, indent)
}

/// [`explain_steps`] for a scenario file, read again (for `check`, which
/// keeps only outputs).
pub fn explain_file_steps(
    source: &str,
    steps: BTreeSet<usize>,
    indent: &str,
) -> BTreeMap<usize, String> {
    match crate::scenario::parse_scenario(std::path::Path::new(source)) {
        Ok(scenario) => explain_steps(&scenario, source, steps, indent),
        Err(_) => BTreeMap::new(),
    }
}
