//! `explain` agrees with the runtime: on every step of every library
//! scenario, the receipt, decision and drain receipts the rules predict are
//! the ones the step got, and every step kind whose outcome the rules
//! decide gets a prediction.

use std::path::{Path, PathBuf};

use rehearse::explain::{self, Wanted};
use rehearse::scenario;
use rehearse::suite;

/// Step kinds whose receipt the rules predict; process and pipeline steps
/// are described from their events instead.
const PREDICTED_KINDS: [&str; 11] = [
    "trigger",
    "tick",
    "pump",
    "pause",
    "resume",
    "disable",
    "spend",
    "repair_worker",
    "restore_checkpoint",
    "fault",
    "restart",
];

fn library() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness sits in the workspace")
        .join("scenarios");
    suite::discover(&[root])
        .expect("the library is readable")
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == suite::INVALID_DIR))
        .collect()
}

#[test]
fn the_rules_agree_with_every_step_of_the_library() {
    let mut explained = 0;
    let mut disagreements = Vec::new();
    for path in library() {
        let scenario = scenario::parse_scenario(&path).expect("library scenarios parse");
        let source = path.display().to_string();
        let (output, explanations) =
            explain::explain(&scenario, &source, Wanted::All).expect("library scenarios run");
        assert_eq!(explanations.len(), output.report.steps.len(), "{source}");
        for (explanation, step) in explanations.iter().zip(&output.report.steps) {
            assert_eq!(explanation.step, step.step, "{source}");
            assert_eq!(
                explanation.events, step.events,
                "{source} step {}",
                step.step
            );
            assert_eq!(
                explanation.actual.receipt, step.receipt,
                "{source} step {}",
                step.step
            );
            if PREDICTED_KINDS.contains(&step.kind.as_str()) {
                assert!(
                    explanation.predicted.receipt.is_some(),
                    "{source} step {} ({}) has no predicted receipt",
                    step.step,
                    step.kind
                );
            }
            if !explanation.agrees() {
                disagreements.push(format!("{source}:\n{}", explain::render(explanation)));
            }
            explained += 1;
        }
    }
    assert!(explained > 300, "only {explained} steps explained");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn a_step_is_found_by_its_line() {
    let path = library()
        .into_iter()
        .find(|p| p.ends_with("supervisor/spec-example.yaml"))
        .expect("the spec example is in the library");
    let scenario = scenario::parse_scenario(&path).unwrap();
    let second = scenario.steps[1].line;
    assert_eq!(explain::step_at_line(&scenario, second), Some(2));
    assert_eq!(explain::step_at_line(&scenario, second + 1), Some(2));
    assert_eq!(explain::step_at_line(&scenario, 1), None);
}
