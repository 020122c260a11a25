//! The report of one scenario run: each step's receipt or error, its
//! decision and expectations, the episodes left deferred, and the final
//! state of every persona. Serialised as `report.json`, versioned.

use std::collections::BTreeMap;

use rehearse_runtime::persona::PersonaStatus;
use rehearse_runtime::run_record::RunRecord;
use rehearse_runtime::supervisor::Decision;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The report format version: 2 added each step's `events` range (and
/// dropped `appended`, its count).
pub const REPORT_VERSION: u32 = 2;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub report_version: u32,
    pub scenario: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The scenario file as the user named it.
    pub source: String,
    pub seed: u64,
    pub start: String,
    /// `memory`, or `file` for a scenario with a `restart`.
    pub backend: String,
    pub steps: Vec<StepReport>,
    pub deferred_at_end: Vec<DeferredReport>,
    /// The first broken runtime invariant, if any (checked after every step).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invariant_violations: Vec<InvariantViolation>,
    pub final_state: FinalState,
    /// A run record for every persona run, in start order.
    pub runs: Vec<RunRecord>,
    pub summary: Summary,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// 1-based position in `steps`.
    pub step: usize,
    /// The step's line in the scenario file.
    pub line: usize,
    pub at: String,
    /// The step kind, or `expect` for a step that only checks.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receipts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The events this step appended, as indices into `events.jsonl`; for
    /// a pump, the events of the episode it ran. Absent for a step that
    /// only checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<Expectation>,
}

/// A run of consecutive events: `first` is the 0-based line of
/// `events.jsonl`, `count` how many follow from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRange {
    pub first: usize,
    pub count: usize,
}

impl EventRange {
    /// The range as indices into the event list.
    pub fn indices(self) -> std::ops::Range<usize> {
        self.first..self.first + self.count
    }
}

/// A runtime invariant that did not hold after a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvariantViolation {
    pub step: usize,
    pub line: usize,
    pub invariant: String,
    pub message: String,
    /// The log events that show it, as `topic#id`.
    pub evidence: Vec<String>,
}

/// One checked expectation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// What was checked: `receipt`, `status.budget.spent_today_usd`, ...
    pub path: String,
    pub expected: Value,
    pub actual: Value,
    pub ok: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferredReport {
    pub episode_id: u64,
    pub event_id: String,
    pub schedule_at: String,
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalState {
    pub at: String,
    pub personas: BTreeMap<String, PersonaStatus>,
    /// Every process record, by id.
    pub processes: Value,
    /// The pipeline lifecycle: audit entries, partial handoffs, disposition.
    pub pipeline: Value,
    pub unsettled: Unsettled,
}

/// The unsettled-state snapshot: its counts and summary sentence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsettled {
    pub counts: BTreeMap<String, u64>,
    pub summary: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub steps: usize,
    pub events: usize,
    pub episodes: usize,
    pub expectations: usize,
    pub failed_expectations: usize,
    pub step_errors: usize,
}

impl StepReport {
    /// How many events the step appended.
    pub fn appended(&self) -> usize {
        self.events.map_or(0, |range| range.count)
    }
}

impl Report {
    /// The expectations that did not hold, with their steps.
    pub fn failures(&self) -> impl Iterator<Item = (&StepReport, &Expectation)> {
        self.steps.iter().flat_map(|step| {
            step.expectations
                .iter()
                .filter(|e| !e.ok)
                .map(move |e| (step, e))
        })
    }
}
