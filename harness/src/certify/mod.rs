//! `rehearse certify`: runs scenarios against another implementation of
//! the runtime over the certification protocol (docs/PROTOCOL.md) and
//! gives each a verdict. Both sides go through the one step driver
//! (`driver::drive`): the reference as the in-process [`Local`] backend,
//! the implementation as the protocol [`client::Client`].

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::driver::{self, Backend, DriverError, Local, Storage};
use crate::protocol::{AnswerKind, Capabilities, OutcomeKind, QueryKind};
use crate::report::Expectation;
use crate::scenario::{Repeated, Scenario, Sequence};

pub mod child;
pub mod client;
pub mod compare;
pub mod manifest;

pub use child::Failure;
use client::{Client, Hello};
pub use compare::{Difference, Transcript};
pub use manifest::{Class, Manifest};

/// The version of the JSON Lines records of `certify --format json`.
pub const CERTIFY_REPORT_VERSION: u32 = 1;

/// How to reach the implementation.
#[derive(Clone, Debug)]
pub struct Target {
    /// The command line, split.
    pub argv: Vec<String>,
    /// How long each answer may take.
    pub timeout: Duration,
}

/// A scenario's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Verdict {
    Pass,
    /// Uses a capability the implementation does not declare, or the
    /// implementation said it cannot play it.
    Unsupported {
        reason: String,
    },
    /// Failed (or broke) as the manifest says it does.
    ExpectedFailure {
        class: Class,
        reason: String,
    },
    /// Passed although the manifest lists it.
    UnexpectedPass {
        class: Class,
        reason: String,
    },
    /// A behaviour difference the manifest does not list.
    Fail,
    /// Timeout, crash, malformed answer or protocol error.
    Broken {
        failure: String,
        message: String,
    },
    /// The scenario could not be read or run on the reference: bad input.
    Error {
        message: String,
    },
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Unsupported { .. } => "unsupported",
            Self::ExpectedFailure { .. } => "expected-failure",
            Self::UnexpectedPass { .. } => "unexpected-pass",
            Self::Fail => "fail",
            Self::Broken { .. } => "broken",
            Self::Error { .. } => "error",
        }
    }

    /// Whether this verdict fails the run.
    pub fn fails_run(&self) -> bool {
        matches!(
            self,
            Self::UnexpectedPass { .. } | Self::Fail | Self::Broken { .. }
        )
    }
}

/// One scenario's certification.
#[derive(Clone, Debug, Serialize)]
pub struct Certified {
    /// The scenario's path under `scenarios/`.
    pub scenario: String,
    /// The scenario file, relative to the project root.
    pub source: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The first difference from the reference, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<Difference>,
    /// Inline expectations that did not hold on the implementation, with
    /// their step's line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_expectations: Vec<(usize, Expectation)>,
    /// Inline expectations not checked: they read answers not declared.
    pub skipped_expectations: usize,
}

/// The step kinds and outcomes a scenario needs, as the implementation
/// would be sent them.
pub fn requirements(scenario: &Scenario) -> (BTreeSet<String>, BTreeSet<OutcomeKind>) {
    let mut steps = BTreeSet::new();
    let mut outcomes = BTreeSet::new();
    let mut note = |kind: &str, outcome: Option<(&rehearse_runtime::op::Outcome, u64)>| {
        steps.insert(kind.to_string());
        if let Some((outcome, duration_ms)) = outcome {
            use rehearse_runtime::op::Outcome;
            outcomes.insert(match outcome {
                Outcome::Completed => OutcomeKind::Completed,
                Outcome::Crash => OutcomeKind::Crash,
                Outcome::Fail(_) => OutcomeKind::Fail,
                Outcome::Attempts(_) => OutcomeKind::Attempts,
            });
            if duration_ms > 0 {
                outcomes.insert(OutcomeKind::Duration);
            }
        }
    };
    for step in &scenario.steps {
        if let Some(op) = &step.op {
            note(op.kind(), op_outcome(op));
        }
        match &step.sequence {
            Some(Sequence::Advance(advance)) => {
                note("tick", Some((&advance.outcome, advance.duration.0)));
            }
            Some(Sequence::Repeat(repeat)) => match &repeat.body {
                Repeated::Trigger(t) => note("trigger", Some((&t.outcome, t.duration.0))),
                Repeated::Tick(t) => note("tick", Some((&t.outcome, t.duration.0))),
            },
            None => {}
        }
    }
    (steps, outcomes)
}

fn op_outcome(op: &rehearse_runtime::op::Op) -> Option<(&rehearse_runtime::op::Outcome, u64)> {
    use rehearse_runtime::op::Op;
    match op {
        Op::Trigger(t) => Some((&t.outcome, t.duration.0)),
        Op::Tick(t) => Some((&t.outcome, t.duration.0)),
        _ => None,
    }
}

/// Why `capabilities` cannot play `scenario`, if it cannot.
pub fn unsupported(scenario: &Scenario, capabilities: &Capabilities) -> Option<String> {
    let (steps, outcomes) = requirements(scenario);
    let declared: BTreeSet<&str> = capabilities.steps.iter().map(|k| k.0.as_str()).collect();
    if let Some(kind) = steps.iter().find(|k| !declared.contains(k.as_str())) {
        return Some(format!("step kind `{kind}` is not declared"));
    }
    outcomes
        .iter()
        .find(|o| !capabilities.outcomes.contains(o))
        .map(|o| {
            let name = serde_json::to_value(o).expect("an outcome kind serialises");
            format!(
                "outcome `{}` is not declared",
                name.as_str().unwrap_or_default()
            )
        })
}

/// Runs `scenario` on `backend` to the end and asks the final questions.
pub fn transcript<B: Backend>(
    scenario: &Scenario,
    backend: B,
) -> Result<(B, Transcript), DriverError> {
    let (mut backend, steps, _summary, last_ms) = driver::drive(scenario, backend)?;
    let mut finals = Vec::new();
    for name in scenario.personas.keys() {
        let status = backend.query(QueryKind::Status, Some(name), last_ms)?;
        finals.push((format!("status.{name}"), AnswerKind::Status, status));
    }
    for (name, query) in [
        ("records", QueryKind::Records),
        ("processes", QueryKind::Processes),
        ("pipeline", QueryKind::Pipeline),
    ] {
        let value = backend.query(query, None, last_ms)?;
        finals.push((name.to_string(), query.answer(), value));
    }
    let events = backend.events_from(0).to_vec();
    Ok((
        backend,
        Transcript {
            steps,
            events,
            finals,
        },
    ))
}

/// The reference's transcript of `scenario`.
pub fn reference(scenario: &Scenario, source: &str) -> Result<Transcript, DriverError> {
    let storage = if scenario.has_restart() {
        Storage::scratch(source)?
    } else {
        Storage::Memory
    };
    let config = scenario.runtime_config();
    let local = Local::new(&scenario.name, &config, source, storage, None)?;
    transcript(scenario, local).map(|(_, transcript)| transcript)
}

/// Starts the implementation and says `hello`.
pub fn probe(target: &Target) -> Result<(child::Child, Hello), ProbeError> {
    let mut child =
        child::Child::spawn(&target.argv, target.timeout).map_err(|error| ProbeError::Spawn {
            command: target.argv.join(" "),
            message: error.to_string(),
        })?;
    let hello = client::hello(&mut child).map_err(ProbeError::Hello)?;
    Ok((child, hello))
}

/// Why the implementation could not be reached at all.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("certify: cannot start `{command}`: {message}")]
    Spawn { command: String, message: String },
    #[error("certify: the implementation did not say hello: {0}")]
    Hello(Failure),
}

/// Certifies one scenario file (`name` under `scenarios/`).
pub fn certify_one(path: &Path, name: &str, target: &Target, manifest: &Manifest) -> Certified {
    let source = path.to_string_lossy().replace('\\', "/");
    let mut certified = Certified {
        scenario: name.to_string(),
        source: source.clone(),
        verdict: Verdict::Pass,
        difference: None,
        failed_expectations: Vec::new(),
        skipped_expectations: 0,
    };
    let scenario = match crate::scenario::parse_scenario(path) {
        Ok(scenario) => scenario,
        Err(error) => {
            certified.verdict = Verdict::Error {
                message: error.to_string(),
            };
            return certified;
        }
    };
    let reference = match reference(&scenario, &source) {
        Ok(reference) => reference,
        Err(error) => {
            certified.verdict = Verdict::Error {
                message: error.to_string(),
            };
            return certified;
        }
    };
    let outcome = implementation(&scenario, target);
    certified.verdict = judge(&mut certified, outcome, &reference, manifest);
    certified
}

/// What running the scenario on the implementation gave.
enum Outcome {
    Ran(Transcript, BTreeSet<AnswerKind>),
    Unsupported(String),
    Broken(Failure),
    Input(String),
}

fn implementation(scenario: &Scenario, target: &Target) -> Outcome {
    let (child, hello) = match probe(target) {
        Ok(found) => found,
        Err(ProbeError::Hello(failure)) => return Outcome::Broken(failure),
        Err(error) => return Outcome::Input(error.to_string()),
    };
    if let Some(reason) = unsupported(scenario, &hello.capabilities) {
        let _ = child.finish();
        return Outcome::Unsupported(reason);
    }
    let answers = hello.capabilities.answers.clone();
    let config = scenario.runtime_config();
    let ran = Client::configure(child, answers.clone(), &scenario.name, &config)
        .map_err(DriverError::from)
        .and_then(|client| transcript(scenario, client));
    let failure = match ran {
        Ok((client, transcript)) => match client.finish() {
            Ok(()) => return Outcome::Ran(transcript, answers),
            Err(failure) => failure,
        },
        Err(DriverError::Implementation(failure)) => failure,
        Err(other) => return Outcome::Input(other.to_string()),
    };
    match failure {
        Failure::Unsupported { message } => Outcome::Unsupported(message),
        failure => Outcome::Broken(failure),
    }
}

/// The verdict, with the manifest's ratchet.
fn judge(
    certified: &mut Certified,
    outcome: Outcome,
    reference: &Transcript,
    manifest: &Manifest,
) -> Verdict {
    let listed = manifest.expected.get(&certified.scenario);
    let failed = match outcome {
        Outcome::Unsupported(reason) => return Verdict::Unsupported { reason },
        Outcome::Input(message) => return Verdict::Error { message },
        Outcome::Broken(failure) => {
            let broken = Verdict::Broken {
                failure: failure.kind().to_string(),
                message: failure.to_string(),
            };
            return match listed {
                Some(entry) => expected(entry),
                None => broken,
            };
        }
        Outcome::Ran(transcript, answers) => {
            let (failed, skipped) = expectations(&transcript, &answers);
            certified.failed_expectations = failed;
            certified.skipped_expectations = skipped;
            certified.difference =
                compare::first_difference_of(&transcript, reference, &answers, &manifest.headers);
            certified.difference.is_some() || !certified.failed_expectations.is_empty()
        }
    };
    match (failed, listed) {
        (false, None) => Verdict::Pass,
        (false, Some(entry)) => Verdict::UnexpectedPass {
            class: entry.class,
            reason: entry.reason.clone(),
        },
        (true, Some(entry)) => expected(entry),
        (true, None) => Verdict::Fail,
    }
}

fn expected(entry: &manifest::Entry) -> Verdict {
    Verdict::ExpectedFailure {
        class: entry.class,
        reason: entry.reason.clone(),
    }
}

/// The failed expectations among those the declared answers cover, with
/// their step's line, and how many were skipped.
fn expectations(
    transcript: &Transcript,
    answers: &BTreeSet<AnswerKind>,
) -> (Vec<(usize, Expectation)>, usize) {
    let mut failed = Vec::new();
    let mut skipped = 0;
    for step in &transcript.steps {
        for expectation in &step.expectations {
            if !answers.contains(&AnswerKind::of_expectation(&expectation.path)) {
                skipped += 1;
            } else if !expectation.ok {
                failed.push((step.line, expectation.clone()));
            }
        }
    }
    (failed, skipped)
}
