//! `rehearse audit`: the invariant model of `explore` and `run`, over an
//! event log read on its own (docs/SCENARIOS.md, "audit").
//!
//! The log is streamed one line at a time through [`Checker::check_event`];
//! only the checker's model is kept (leases, spend per day and hour, queued
//! and completed work keys), so memory grows with the number of distinct
//! work keys, never with the length of the log.

mod bindings;
pub mod diverge;
mod read;
mod rebuild;
mod reference;
mod shrink;

use std::path::Path;

use rehearse_runtime::RuntimeConfig;
use serde::Serialize;

use crate::explore::{Checker, Invariant, Violation};

pub use bindings::{
    load as load_bindings, Bindings, BindingsError, ReadReason, ScenarioFrame, BINDINGS_VERSION,
};
pub use diverge::{first_divergence, Divergence};
pub use read::{
    parse_line, LineError, LogProblem, LogReader, ReadError, MAX_LINE_BYTES, MAX_LOG_BYTES,
};
pub use rebuild::{rebuild, Trace, TraceStep};
pub use reference::{
    reference_events, round_trip, run_reference, scenario_name, to_scenario, trace_divergence,
};
pub use shrink::{divergence_target, Failure, Shrink, Shrunk, Target};

/// Why `rehearse audit` could not read a log or its bindings, or could not
/// rebuild, compare or save the log as a scenario.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Bindings(#[from] BindingsError),
    /// The rebuilt scenario did not read back (the parser's error).
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// The reference runtime could not run the rebuilt scenario.
    #[error(transparent)]
    Driver(#[from] crate::driver::DriverError),
    #[error("{file}: cannot write: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: the shrunk scenario does not pass on the reference runtime")]
    ShrunkFails { file: String },
}

/// The most violations an audit keeps to report; later ones are counted.
pub const MAX_REPORTED: usize = 1_000;

/// What an audit can say about one invariant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// Checked on every event of the log.
    Checked,
    /// Needs each persona's binding (its lease TTL or budget); skipped for
    /// personas without one.
    NeedsBindings,
    /// Needs the runtime that wrote the log or the operations behind it
    /// (statuses, a rebuild, a second run, a capture bundle); see
    /// `--to-scenario`.
    NeedsRuntime,
}

/// What auditing a log can check of `invariant`.
pub fn coverage(invariant: Invariant) -> Coverage {
    match invariant {
        Invariant::LeaseExpiry
        | Invariant::RunLimit
        | Invariant::DailyLimit
        | Invariant::HourlyLimit
        | Invariant::TokenLimit
        | Invariant::BudgetRefusalExact => Coverage::NeedsBindings,
        Invariant::StatusMatchesLog
        | Invariant::RebuildMatchesIncremental
        | Invariant::SameBytesTwice
        | Invariant::CaptureReplays => Coverage::NeedsRuntime,
        _ => Coverage::Checked,
    }
}

/// One broken invariant in a log: the line and event it was found at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub line: usize,
    /// `topic#id`.
    pub event: String,
    pub kind: String,
    pub invariant: Invariant,
    /// The facts that break it.
    pub message: String,
    /// The events that show it (`topic#id`), the first one first.
    pub evidence: Vec<String>,
}

/// What an audit found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub events: usize,
    /// The first [`MAX_REPORTED`] violations, in log order.
    pub findings: Vec<Finding>,
    /// Every violation, including those past [`MAX_REPORTED`].
    pub violations: usize,
    /// Personas the log names that the bindings do not hold.
    pub unbound_personas: Vec<String>,
    /// Whether bindings were given at all.
    pub bound: bool,
}

impl AuditReport {
    /// The invariants with `coverage` for this audit: without bindings, the
    /// ones that need them are skipped.
    pub fn invariants(&self, wanted: Coverage) -> Vec<Invariant> {
        Invariant::ALL
            .into_iter()
            .filter(|invariant| {
                let have = match coverage(*invariant) {
                    Coverage::NeedsBindings if self.bound => Coverage::Checked,
                    other => other,
                };
                have == wanted
            })
            .collect()
    }
}

/// The runtime configuration a checker is built from: the bound personas.
fn checker_config(bindings: Option<&Bindings>) -> RuntimeConfig {
    RuntimeConfig {
        personas: bindings.map(|b| b.personas.clone()).unwrap_or_default(),
        ..RuntimeConfig::default()
    }
}

/// Audits the log at `path` against `bindings`, one event at a time.
/// Every violation is reported; the model is not folded past the event that
/// broke it, so a violation can bring others that follow from it.
pub fn audit(path: &Path, bindings: Option<&Bindings>) -> Result<AuditReport, ReadError> {
    let mut reader = LogReader::open(path)?;
    audit_reader(&mut reader, bindings)
}

/// [`audit`] over any reader.
pub fn audit_reader<R: std::io::BufRead>(
    reader: &mut LogReader<R>,
    bindings: Option<&Bindings>,
) -> Result<AuditReport, ReadError> {
    let mut checker = Checker::for_log(&checker_config(bindings));
    let mut report = AuditReport {
        bound: bindings.is_some(),
        ..AuditReport::default()
    };
    let mut unbound = std::collections::BTreeSet::new();
    while let Some((line, event)) = reader.next_event()? {
        report.events += 1;
        if let Some(persona) = event.header("persona") {
            if bindings.is_some_and(|b| !b.personas.contains_key(persona))
                && !unbound.contains(persona)
            {
                unbound.insert(persona.to_string());
            }
        }
        if let Err(violation) = checker.check_event(line, &event) {
            report.violations += 1;
            if report.findings.len() < MAX_REPORTED {
                report.findings.push(finding(line, &event, violation));
            }
        }
    }
    report.unbound_personas = unbound.into_iter().collect();
    Ok(report)
}

fn finding(line: usize, event: &rehearse_runtime::StoredEvent, violation: Violation) -> Finding {
    Finding {
        line,
        event: crate::explore::event_ref(event),
        kind: event.kind.to_string(),
        invariant: violation.invariant,
        message: violation.message,
        evidence: violation.evidence,
    }
}
