//! The report of one scenario run: each step's receipt or error, its
//! decision and expectations, the episodes left deferred, and the final
//! state of every persona. Serialised as `report.json`, versioned.

use std::collections::BTreeMap;
use std::io::{self, Write};

use rehearse_runtime::budget::BudgetStatus;
use rehearse_runtime::lease::Lease;
use rehearse_runtime::persona::{
    Assignment, HandoffInboxItem, Lifecycle, PausedEventPolicy, PersonaStatus, QueuedWork,
};
use rehearse_runtime::supervisor::Decision;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The report format version: 3 dropped `runs`, the run records, which
/// `runs.jsonl` holds, and each final persona status's `value_receipts`,
/// which `events.jsonl` holds; 2 added each step's `events` range (and dropped
/// `appended`, its count).
pub const REPORT_VERSION: u32 = 3;

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
    /// Each persona's status, less its `value_receipts`: they grow by two a
    /// run and `events.jsonl` holds every one as its `persona.value.*` event.
    #[serde(
        serialize_with = "without_value_receipts",
        deserialize_with = "with_no_value_receipts"
    )]
    pub personas: BTreeMap<String, PersonaStatus>,
    /// Every process record, by id.
    pub processes: Value,
    /// The pipeline lifecycle: audit entries, partial handoffs, disposition.
    pub pipeline: Value,
    pub unsettled: Unsettled,
}

/// The key of a persona status the report leaves out.
const VALUE_RECEIPTS: &str = "value_receipts";

/// A persona status as the report writes it: every field in the status's
/// order but `value_receipts`.
#[derive(Serialize)]
struct ReportedStatus<'a> {
    name: &'a str,
    template_ref: &'a Option<String>,
    state: Lifecycle,
    entry_workflow: &'a str,
    role: &'a str,
    current_assignment: &'a Option<Assignment>,
    last_run: &'a Option<String>,
    next_scheduled_run: &'a Option<String>,
    active_lease: &'a Option<Lease>,
    budget: &'a BudgetStatus,
    last_error: &'a Option<String>,
    queued_events: usize,
    queued_work: &'a [QueuedWork],
    handoff_inbox: &'a [HandoffInboxItem],
    disabled_events: usize,
    paused_event_policy: PausedEventPolicy,
}

impl<'a> ReportedStatus<'a> {
    fn of(status: &'a PersonaStatus) -> Self {
        // Naming every field makes a field added to the status fail to
        // compile here until the report says whether it writes it.
        let PersonaStatus {
            name,
            template_ref,
            state,
            entry_workflow,
            role,
            current_assignment,
            last_run,
            next_scheduled_run,
            active_lease,
            budget,
            last_error,
            queued_events,
            queued_work,
            handoff_inbox,
            value_receipts: _,
            disabled_events,
            paused_event_policy,
        } = status;
        Self {
            name,
            template_ref,
            state: *state,
            entry_workflow,
            role,
            current_assignment,
            last_run,
            next_scheduled_run,
            active_lease,
            budget,
            last_error,
            queued_events: *queued_events,
            queued_work,
            handoff_inbox,
            disabled_events: *disabled_events,
            paused_event_policy: *paused_event_policy,
        }
    }
}

fn without_value_receipts<S: serde::Serializer>(
    personas: &BTreeMap<String, PersonaStatus>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(
        personas
            .iter()
            .map(|(name, status)| (name, ReportedStatus::of(status))),
    )
}

/// Reads statuses as [`without_value_receipts`] writes them: with none.
fn with_no_value_receipts<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, PersonaStatus>, D::Error> {
    use serde::de::Error;
    let values = BTreeMap::<String, Value>::deserialize(deserializer)?;
    values
        .into_iter()
        .map(|(name, mut value)| {
            if let Some(fields) = value.as_object_mut() {
                if fields.contains_key(VALUE_RECEIPTS) {
                    return Err(D::Error::unknown_field(VALUE_RECEIPTS, &[]));
                }
                fields.insert(VALUE_RECEIPTS.to_string(), Value::Array(Vec::new()));
            }
            let status = serde_json::from_value(value).map_err(D::Error::custom)?;
            Ok((name, status))
        })
        .collect()
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
    /// Whether every expectation and every invariant held.
    pub fn passed(&self) -> bool {
        self.summary.failed_expectations == 0 && self.invariant_violations.is_empty()
    }

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

/// The fields of a report before its `steps`, in the report's order: what
/// is known when a run starts.
#[derive(Debug, Serialize)]
pub struct ReportHead<'a> {
    pub report_version: u32,
    pub scenario: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub source: &'a str,
    pub seed: u64,
    pub start: &'a str,
    pub backend: &'a str,
}

/// The one top-level key of a pretty report that starts its steps.
const STEPS_KEY: &str = "\n  \"steps\": [";

/// Writes `report.json` as a run goes: the head, then each step as it
/// ends, then the rest. The bytes are those of the whole [`Report`]
/// pretty-printed (as `driver::pretty` does), so a streamed report equals
/// its golden.
#[derive(Debug, Default)]
pub struct ReportWriter {
    steps: usize,
}

impl ReportWriter {
    /// Writes everything before the first step.
    pub fn begin(out: &mut dyn Write, head: &ReportHead<'_>) -> io::Result<Self> {
        let text = serde_json::to_string_pretty(head)?;
        let fields = text
            .strip_suffix("\n}")
            .expect("a pretty object ends its line");
        out.write_all(fields.as_bytes())?;
        out.write_all(b",")?;
        out.write_all(STEPS_KEY.as_bytes())?;
        Ok(Self::default())
    }

    /// Writes one step, indented as an element of `steps`.
    pub fn step(&mut self, out: &mut dyn Write, step: &StepReport) -> io::Result<()> {
        let text = serde_json::to_string_pretty(step)?;
        out.write_all(if self.steps == 0 {
            b"\n    "
        } else {
            b",\n    "
        })?;
        for (n, line) in text.split('\n').enumerate() {
            if n > 0 {
                out.write_all(b"\n    ")?;
            }
            out.write_all(line.as_bytes())?;
        }
        self.steps += 1;
        Ok(())
    }

    /// Writes everything after the last step from `report`, whose own
    /// `steps` are not written again (they are set aside meanwhile).
    pub fn end(self, out: &mut dyn Write, report: &mut Report) -> io::Result<()> {
        let steps = std::mem::take(&mut report.steps);
        let text = serde_json::to_string_pretty(report);
        report.steps = steps;
        let text = text?;
        let at = text.find(STEPS_KEY).expect("a report has steps") + STEPS_KEY.len();
        if self.steps > 0 {
            out.write_all(b"\n  ")?;
        }
        out.write_all(&text.as_bytes()[at..])?;
        out.write_all(b"\n")
    }
}

impl Report {
    /// The fields before `steps`.
    pub fn head(&self) -> ReportHead<'_> {
        ReportHead {
            report_version: self.report_version,
            scenario: &self.scenario,
            description: self.description.as_deref(),
            source: &self.source,
            seed: self.seed,
            start: &self.start,
            backend: &self.backend,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::pretty;

    fn streamed(report: &Report) -> String {
        let mut out = Vec::new();
        let mut writer = ReportWriter::begin(&mut out, &report.head()).unwrap();
        for step in &report.steps {
            writer.step(&mut out, step).unwrap();
        }
        writer.end(&mut out, &mut report.clone()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_streamed_report_is_the_whole_report_pretty_printed() {
        let output = crate::suite::tests::twice_with_a_bug();
        assert!(output.report.steps.len() >= 2);
        assert!(!output.report.invariant_violations.is_empty());
        assert_eq!(output.report_json, pretty(&output.report));
        let mut report = output.report;
        // Text that reads like the steps key stays inside its string.
        report.description = Some("x\n  \"steps\": [],\n".to_string());
        report.steps[0].error = Some("\n  \"steps\": [".to_string());
        assert_eq!(streamed(&report), pretty(&report));
        report.description = None;
        report.steps.clear();
        assert_eq!(streamed(&report), pretty(&report));
    }
}
