//! Running one case against every invariant: drive it through the
//! supervisor with the checker after every step, fold its log from scratch,
//! run it a second time for identical bytes, and replay its capture bundle.

use std::collections::BTreeMap;

use rehearse_runtime::capture::Session;
use rehearse_runtime::engine::Runtime;
use rehearse_runtime::replay::{replay, ReplayError, ReplayOptions};
use rehearse_runtime::supervisor::{DecisionKind, Handled, Supervisor};
use rehearse_runtime::{MemoryLog, Op, StoredEvent};

use super::case::Case;
use super::invariants::{event_ref, Checker, Invariant, StepContext, Violation};

/// The scenario name the explorer's runtimes and captures carry.
pub const EXPLORE_SCENARIO: &str = "explore";

/// A function applied to every runtime the explorer builds before the first
/// step; tests use it to switch on a deliberate bug.
pub type RuntimeHook = fn(&mut Runtime);

/// What a case that held every invariant did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaseRun {
    pub steps: usize,
    pub events: usize,
}

/// Runs `case` against every invariant; the first one broken is the error.
///
/// With a `hook`, the second run for identical bytes drives a hooked
/// runtime too, and the capture replay is skipped: replay builds its own
/// runtime, which the hook cannot reach.
pub fn check_case(case: &Case, hook: Option<RuntimeHook>) -> Result<CaseRun, Violation> {
    let mut checker = Checker::new(&case.config);
    let mut step_of_event: Vec<usize> = Vec::new();
    let runtime = drive(case, hook, |index, handled, pumped, runtime| {
        step_of_event.resize(runtime.log().all().len(), index + 1);
        let (at_ms, op) = &case.steps[index];
        let step = StepContext {
            index,
            at_ms: *at_ms,
            op,
            pumped,
            result: &handled.result,
        };
        checker.check_step(step, runtime)
    })?;
    let last_step = case.steps.len();
    check_rebuild(case, &runtime, last_step)?;
    let first = log_lines(runtime.log().all());
    let second = if hook.is_some() {
        let again = drive(case, hook, |_, _, _, _| Ok(()))?;
        log_lines(again.log().all())
    } else {
        let mut session = Session::new(EXPLORE_SCENARIO, &case.config, Box::new(MemoryLog::new()))
            .expect("a generated configuration is valid");
        for (index, (at_ms, op)) in case.steps.iter().enumerate() {
            session.handle(&Case::event_id(index), *at_ms, op);
        }
        let (bundle, again) = session.finish();
        let lines = log_lines(again.log().all());
        if lines == first {
            let options = ReplayOptions { strict: true };
            if let Err(error) = replay(&bundle, options, Box::new(MemoryLog::new())) {
                return Err(Violation {
                    invariant: Invariant::CaptureReplays,
                    step: replay_step(&error).unwrap_or(last_step),
                    message: format!("the capture bundle did not replay: {error}"),
                    evidence: Vec::new(),
                });
            }
        }
        lines
    };
    if let Some(position) = first_difference(&first, &second) {
        let step = step_of_event.get(position).copied().unwrap_or(last_step);
        let evidence = runtime
            .log()
            .all()
            .get(position)
            .map(event_ref)
            .into_iter()
            .collect();
        return Err(Violation {
            invariant: Invariant::SameBytesTwice,
            step,
            message: format!(
                "the second run's log differs at event {}: {} against {}",
                position + 1,
                first.get(position).map_or("nothing", String::as_str),
                second.get(position).map_or("nothing", String::as_str)
            ),
            evidence,
        });
    }
    Ok(CaseRun {
        steps: case.steps.len(),
        events: first.len(),
    })
}

/// Drives `case` through a supervisor and a fresh runtime over an
/// in-memory log, calling `observe` after every step with the step's index,
/// what handling it did, and for a pump that invoked a deferred episode,
/// that episode's operation.
fn drive(
    case: &Case,
    hook: Option<RuntimeHook>,
    mut observe: impl FnMut(usize, &Handled, Option<&Op>, &Runtime) -> Result<(), Violation>,
) -> Result<Runtime, Violation> {
    let mut runtime = Runtime::named(
        Some(EXPLORE_SCENARIO.to_string()),
        &case.config,
        Box::new(MemoryLog::new()),
    )
    .expect("a generated configuration is valid");
    if let Some(hook) = hook {
        hook(&mut runtime);
    }
    let mut supervisor = Supervisor::new(case.config.supervisor.clone());
    let mut deferred: BTreeMap<u64, &Op> = BTreeMap::new();
    for (index, (at_ms, op)) in case.steps.iter().enumerate() {
        let handled = supervisor.handle(&mut runtime, &Case::event_id(index), op, *at_ms);
        let decision = &handled.decision;
        let mut pumped = None;
        if let Some(episode) = decision.episode_id {
            match (op, decision.decision) {
                (Op::Trigger(_) | Op::Tick(_), DecisionKind::Defer) => {
                    deferred.insert(episode, op);
                }
                (Op::Pump(_), DecisionKind::Invoke) => pumped = deferred.remove(&episode),
                _ => {}
            }
        }
        observe(index, &handled, pumped, &runtime)?;
    }
    Ok(runtime)
}

/// Folding the whole log from scratch gives the persona and process state
/// the runtime kept incrementally.
fn check_rebuild(case: &Case, runtime: &Runtime, step: usize) -> Result<(), Violation> {
    let log = MemoryLog::from_stored(runtime.log().all().to_vec())
        .expect("a log the runtime wrote has ids in sequence");
    let rebuilt = Runtime::named(
        Some(EXPLORE_SCENARIO.to_string()),
        &case.config,
        Box::new(log),
    )
    .expect("a generated configuration is valid");
    for (name, persona) in runtime.personas() {
        if rebuilt.persona(name).map(|p| &p.state) != Some(&persona.state) {
            return Err(Violation {
                invariant: Invariant::RebuildMatchesIncremental,
                step,
                message: format!(
                    "persona `{name}`: state folded from the log differs from the incremental state"
                ),
                evidence: Vec::new(),
            });
        }
    }
    if rebuilt.processes() != runtime.processes() {
        return Err(Violation {
            invariant: Invariant::RebuildMatchesIncremental,
            step,
            message: "the process registry folded from the log differs from the incremental one"
                .to_string(),
            evidence: Vec::new(),
        });
    }
    Ok(())
}

/// The log as JSON Lines, one string per event.
fn log_lines(events: &[StoredEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| serde_json::to_string(event).expect("a stored event serialises"))
        .collect()
}

fn first_difference(a: &[String], b: &[String]) -> Option<usize> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    common.or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// The step a replay error names (`step-N`), if it names one.
fn replay_step(error: &ReplayError) -> Option<usize> {
    let event_id = match error {
        ReplayError::DuplicateEventId { event_id }
        | ReplayError::PayloadHashMismatch { event_id, .. }
        | ReplayError::InvalidPayload { event_id, .. }
        | ReplayError::DecisionCount { event_id, .. }
        | ReplayError::DecisionMismatch { event_id, .. }
        | ReplayError::EffectMismatch { event_id, .. } => event_id,
        _ => return None,
    };
    event_id.strip_prefix("step-")?.parse().ok()
}
