//! The rebuilt operations as a scenario, run on the reference runtime and
//! compared with the log.

use rehearse_runtime::{Millis, StoredEvent};

use super::bindings::ScenarioFrame;
use super::diverge::{first_divergence, Divergence};
use super::read::parse_line;
use super::rebuild::Trace;
use crate::driver::{run, DriverError, RunOutput};
use crate::scenario::{
    is_valid_name, parse_str, At, Expect, Scenario, ScenarioError, Step, FORMAT_VERSION,
};

/// The name a scenario rebuilt from the log at `path` gets:
/// `audit-<file stem>`, folded to `[a-z0-9_-]`.
pub fn scenario_name(path: &std::path::Path) -> String {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let folded: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(96)
        .collect();
    let name = format!("audit-{folded}");
    if is_valid_name(&name) {
        name
    } else {
        "audit".to_string()
    }
}

/// `trace` as a scenario named `name`: the frame's start, seed and
/// supervisor when bindings came from a scenario that starts no later than
/// the log, else the first operation's time, seed 0 and no supervisor.
/// `expect` is put on the step at its index.
pub fn to_scenario(
    trace: &Trace,
    name: &str,
    frame: Option<&ScenarioFrame>,
    description: Option<String>,
    expect: Option<(usize, Expect)>,
) -> Scenario {
    let first_ms = trace.steps.first().map(|step| step.at_ms);
    let start_ms = match (frame, first_ms) {
        (Some(frame), Some(first)) if frame.start_ms <= first => frame.start_ms,
        (Some(frame), None) => frame.start_ms,
        (_, first) => first.unwrap_or_default(),
    };
    let steps = trace
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| Step {
            at_ms: step.at_ms,
            at: At::Offset(Millis(
                u64::try_from(step.at_ms - start_ms).unwrap_or_default(),
            )),
            op: Some(step.op.clone()),
            sequence: None,
            expect: expect
                .as_ref()
                .filter(|(at, _)| *at == index)
                .map(|(_, expect)| expect.clone()),
            line: 0,
            column: 0,
        })
        .collect();
    Scenario {
        version: FORMAT_VERSION,
        name: name.to_string(),
        description,
        start_ms,
        seed: frame.map_or(0, |frame| frame.seed),
        personas: trace.personas.clone(),
        supervisor: frame.and_then(|frame| frame.supervisor.clone()),
        steps,
        persona_positions: std::collections::BTreeMap::new(),
    }
}

/// Writes `scenario` as YAML and reads it back strictly, so what runs is
/// exactly what a saved file says; the error is the parser's.
pub fn round_trip(scenario: &Scenario, display: &str) -> Result<(String, Scenario), ScenarioError> {
    let yaml = scenario.to_yaml();
    let parsed = parse_str(&yaml, display, &scenario.name)?;
    Ok((yaml, parsed))
}

/// Runs `scenario` on the reference runtime.
pub fn run_reference(scenario: &Scenario, display: &str) -> Result<RunOutput, DriverError> {
    run(scenario, display)
}

/// The events of a reference run, read back from its `events.jsonl`.
pub fn reference_events(output: &RunOutput) -> Vec<StoredEvent> {
    output
        .events_jsonl
        .lines()
        .map(|line| parse_line(line.as_bytes()).expect("the reference writes readable events"))
        .collect()
}

/// The first difference between the events of `trace` (kept by the
/// rebuild) and the reference's run of it.
pub fn trace_divergence(trace: &Trace, reference: &[StoredEvent]) -> Option<Divergence> {
    // An operation's events are one batch, on consecutive lines.
    let log = trace.steps.iter().flat_map(|step| {
        step.events.iter().enumerate().map(|(offset, event)| {
            Ok::<_, std::convert::Infallible>((step.line + offset, event.clone()))
        })
    });
    match first_divergence(log, reference.iter().cloned()) {
        Ok(found) => found,
        Err(never) => match never {},
    }
}
