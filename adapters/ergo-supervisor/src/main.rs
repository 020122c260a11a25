//! Ergo's supervisor (crates.io `ergo-supervisor =0.1.0-alpha.1`) behind
//! rehearse's certification protocol (`rehearse-protocol/1`,
//! docs/PROTOCOL.md): JSON Lines requests on standard input, one answer
//! line each on standard output.
//!
//! It answers supervisor decisions only (`answers: ["decisions"]`). Every
//! operation becomes one `ExternalEvent` (a `pump` a `Pump` event, anything
//! else a `Command`) at the operation's scenario time, handed to
//! `Supervisor::on_event` with the scenario's constraints; the decision it
//! logs for that event is the answer. The runtime the supervisor invokes is
//! a script: each attempt of a trigger or tick ends as the operation's
//! `outcome` says (attempt N takes entry N of `attempts`, later ones
//! complete; `crash` is `Aborted`; `{fail: timed_out}` and an attempt whose
//! `duration` exceeds the deadline are `TimedOut`; any other failure kind is
//! `Failed` with that kind), and every other operation completes. The step
//! kinds declared are those whose decision depends on nothing but the
//! operation and the constraints: `trigger`, `tick`, `pump`, the controls,
//! `spend`, `repair_worker`, `restore_checkpoint`, `audit` and `handoff`
//! (reference decisions for these fail only under an injected storage fault,
//! and `fault` is not declared). `process`, `ack_handoff` and `finalize` are
//! refused by the reference depending on registry and pipeline state, which
//! a supervisor alone does not hold, so they are not declared.
//!
//! Usage: `ergo-protocol` (no arguments).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use ergo_adapter::{
    ErrKind, EventId, EventTime, ExecutionContext, ExternalEvent, ExternalEventKind, GraphId,
    RunTermination, RuntimeInvoker,
};
use ergo_supervisor::{Constraints, Decision, DecisionLog, DecisionLogEntry, Supervisor};
use rehearse_adapter_common::{duration_ms, Request};
use serde_json::{json, Value};

/// How one attempt of a scripted run ends.
#[derive(Clone, Debug, PartialEq)]
enum Attempt {
    Completed,
    Crash,
    Fail(ErrKind),
    TimedOut,
}

/// The attempts of one trigger or tick, and how long each runs.
#[derive(Clone, Debug, Default)]
struct Script {
    /// Attempt N ends as entry N; attempts past the end complete. A single
    /// `fail` or `crash` outcome is every attempt.
    attempts: Vec<Attempt>,
    every: Option<Attempt>,
    duration_ms: u64,
}

/// The runtime the supervisor invokes: plays each event's script.
#[derive(Clone, Default)]
struct Scripted {
    scripts: Rc<RefCell<BTreeMap<String, Script>>>,
    runs: Rc<RefCell<BTreeMap<String, usize>>>,
}

impl RuntimeInvoker for Scripted {
    fn run(
        &self,
        _graph_id: &GraphId,
        event_id: &EventId,
        _ctx: &ExecutionContext,
        deadline: Option<Duration>,
    ) -> RunTermination {
        let mut runs = self.runs.borrow_mut();
        let n = runs.entry(event_id.as_str().to_string()).or_insert(0);
        let index = *n;
        *n += 1;
        let script = self
            .scripts
            .borrow()
            .get(event_id.as_str())
            .cloned()
            .unwrap_or_default();
        let attempt = script
            .every
            .clone()
            .or_else(|| script.attempts.get(index).cloned())
            .unwrap_or(Attempt::Completed);
        let overran =
            deadline.is_some_and(|deadline| Duration::from_millis(script.duration_ms) > deadline);
        match attempt {
            Attempt::Crash => RunTermination::Aborted,
            Attempt::Fail(kind) => RunTermination::Failed(kind),
            Attempt::TimedOut => RunTermination::TimedOut,
            Attempt::Completed if overran => RunTermination::TimedOut,
            Attempt::Completed => RunTermination::Completed,
        }
    }
}

/// Keeps every decision the supervisor logs.
#[derive(Clone, Default)]
struct Kept(Rc<RefCell<Vec<DecisionLogEntry>>>);

impl DecisionLog for Kept {
    fn log(&self, entry: DecisionLogEntry) {
        self.0.borrow_mut().push(entry);
    }
}

/// A failure kind as rehearse names it (`docs/SCENARIOS.md`, "Outcomes").
fn attempt(name: &str) -> Result<Attempt, String> {
    Ok(match name {
        "completed" => Attempt::Completed,
        "crash" => Attempt::Crash,
        "timed_out" => Attempt::TimedOut,
        "network_timeout" => Attempt::Fail(ErrKind::NetworkTimeout),
        "adapter_unavailable" => Attempt::Fail(ErrKind::AdapterUnavailable),
        "runtime_error" => Attempt::Fail(ErrKind::RuntimeError),
        "semantic_error" => Attempt::Fail(ErrKind::SemanticError),
        "validation_failed" => Attempt::Fail(ErrKind::ValidationFailed),
        "deadline_exceeded" => Attempt::Fail(ErrKind::DeadlineExceeded),
        "cancelled" => Attempt::Fail(ErrKind::Cancelled),
        other => return Err(format!("unknown outcome `{other}`")),
    })
}

fn err_name(kind: &ErrKind) -> &'static str {
    match kind {
        ErrKind::NetworkTimeout => "network_timeout",
        ErrKind::AdapterUnavailable => "adapter_unavailable",
        ErrKind::ValidationFailed => "validation_failed",
        ErrKind::RuntimeError => "runtime_error",
        ErrKind::SemanticError => "semantic_error",
        ErrKind::DeadlineExceeded => "deadline_exceeded",
        ErrKind::Cancelled => "cancelled",
    }
}

/// The script of a trigger's or tick's body (`outcome`, `duration`).
fn script(body: &Value) -> Result<Script, String> {
    let mut script = Script {
        duration_ms: match body.get("duration") {
            None | Some(Value::Null) => 0,
            Some(value) => duration_ms(value)?,
        },
        ..Script::default()
    };
    match body.get("outcome") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => script.every = Some(attempt(name)?),
        Some(Value::Object(map)) => {
            if let Some(kind) = map.get("fail").and_then(Value::as_str) {
                script.every = Some(match attempt(kind)? {
                    Attempt::Completed | Attempt::Crash => {
                        return Err(format!("`fail: {kind}` is not a failure kind"))
                    }
                    failure => failure,
                });
            } else if let Some(list) = map.get("attempts").and_then(Value::as_array) {
                script.attempts = list
                    .iter()
                    .map(|entry| {
                        entry
                            .as_str()
                            .ok_or("an attempt is a string".to_string())
                            .and_then(attempt)
                    })
                    .collect::<Result<_, _>>()?;
            } else {
                return Err(format!("unknown outcome {}", Value::Object(map.clone())));
            }
        }
        Some(other) => return Err(format!("unknown outcome {other}")),
    }
    Ok(script)
}

/// Ergo's constraints from rehearse's `config.supervisor`.
fn constraints(config: &Value) -> Result<Constraints, String> {
    let supervisor = config.get("supervisor").cloned().unwrap_or(Value::Null);
    let count = |key: &str| {
        supervisor
            .get(key)
            .and_then(Value::as_u64)
            .map(|n| n as usize)
    };
    let span = |key: &str| -> Result<Option<Duration>, String> {
        match supervisor.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => duration_ms(value).map(|ms| Some(Duration::from_millis(ms))),
        }
    };
    Ok(Constraints {
        max_in_flight: count("max_in_flight"),
        max_per_window: count("max_per_window"),
        rate_window: span("rate_window")?,
        deadline: span("deadline")?,
        max_retries: count("max_retries").unwrap_or(0),
    })
}

/// One scenario's supervisor.
struct Adapter {
    supervisor: Supervisor<Kept, Scripted>,
    kept: Kept,
    scripts: Rc<RefCell<BTreeMap<String, Script>>>,
}

impl Adapter {
    fn new(config: &Value) -> Result<Self, String> {
        let kept = Kept::default();
        let runtime = Scripted::default();
        let scripts = runtime.scripts.clone();
        let supervisor = Supervisor::with_runtime(
            GraphId::new("rehearse"),
            constraints(config)?,
            kept.clone(),
            runtime,
        );
        Ok(Self {
            supervisor,
            kept,
            scripts,
        })
    }

    /// Hands one operation to the supervisor; the decision it logged.
    fn decide(&mut self, event_id: &str, at_ms: u64, op: &Value) -> Result<Value, String> {
        let op = op
            .as_object()
            .filter(|op| op.len() == 1)
            .ok_or("`op` has not exactly one step kind")?;
        let (kind, body) = op.iter().next().ok_or("`op` is empty")?;
        if matches!(kind.as_str(), "trigger" | "tick") {
            self.scripts
                .borrow_mut()
                .insert(event_id.to_string(), script(body)?);
        }
        let event_kind = if kind == "pump" {
            ExternalEventKind::Pump
        } else {
            ExternalEventKind::Command
        };
        let at = EventTime::from_duration(Duration::from_millis(at_ms));
        let before = self.kept.0.borrow().len();
        self.supervisor.on_event(ExternalEvent::mechanical_at(
            EventId::new(event_id),
            event_kind,
            at,
        ));
        let kept = self.kept.0.borrow();
        match &kept[before..] {
            [entry] => Ok(decision_json(entry)),
            other => Err(format!(
                "the supervisor logged {} decisions for one event",
                other.len()
            )),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A decision as `report.json`'s `decision` writes it.
fn decision_json(entry: &DecisionLogEntry) -> Value {
    let termination = entry
        .termination
        .as_ref()
        .map(|termination| match termination {
            RunTermination::Completed => "completed".to_string(),
            RunTermination::TimedOut => "timed_out".to_string(),
            RunTermination::Aborted => "aborted".to_string(),
            RunTermination::Failed(kind) => format!("failed:{}", err_name(kind)),
        });
    json!({
        "event_id": entry.event_id.as_str(),
        "decision": match entry.decision {
            Decision::Invoke => "invoke",
            Decision::Defer => "defer",
            Decision::Skip => "skip",
        },
        "schedule_at_ms": entry.schedule_at.map(|at| millis(at.as_duration())),
        "episode_id": entry.episode_id.as_u64(),
        "deadline_ms": entry.deadline.map(millis),
        "termination": termination,
        "retry_count": entry.retry_count,
    })
}

fn hello() -> Value {
    rehearse_adapter_common::hello(
        "ergo-supervisor",
        "0.1.0-alpha.1",
        json!({
            "steps": [
                "trigger", "tick", "pump", "pause", "resume", "disable", "spend",
                "repair_worker", "restore_checkpoint", "audit", "handoff",
            ],
            "outcomes": ["completed", "crash", "fail", "attempts", "duration"],
            "answers": ["decisions"],
        }),
    )
}

/// The answer to one request; `None` after `end`.
fn answer(adapter: &mut Option<Adapter>, request: &Value) -> Result<Option<Value>, String> {
    let answer = match (Request::of(request)?, adapter.as_mut()) {
        (Request::Hello, _) => hello(),
        (Request::Configure(config), _) => {
            *adapter = Some(Adapter::new(config)?);
            json!({"type": "configured"})
        }
        (Request::Op, Some(adapter)) => {
            let event_id = request
                .get("event_id")
                .and_then(Value::as_str)
                .ok_or("`op` without `event_id`")?;
            let at_ms = request
                .get("at_ms")
                .and_then(Value::as_u64)
                .ok_or("`op` without `at_ms`")?;
            let decision =
                adapter.decide(event_id, at_ms, request.get("op").unwrap_or(&Value::Null))?;
            json!({"type": "result", "decision": decision})
        }
        (Request::End, _) => return Ok(None),
        (other, _) => return Err(other.unexpected()),
    };
    Ok(Some(answer))
}

fn main() -> std::process::ExitCode {
    let mut adapter = None;
    let served = rehearse_adapter_common::serve_stdio(|request| answer(&mut adapter, request));
    rehearse_adapter_common::exit("ergo-protocol", served)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(supervisor: Value) -> Adapter {
        Adapter::new(&json!({"personas": {}, "supervisor": supervisor})).unwrap()
    }

    #[test]
    fn retries_follow_the_scripted_attempts() {
        let mut a = adapter(json!({"max_retries": 2}));
        let op = json!({"trigger": {"persona": "p", "outcome": {"attempts": ["network_timeout", "completed"]}}});
        let decision = a.decide("step-1", 1_000, &op).unwrap();
        assert_eq!(decision["termination"], "completed");
        assert_eq!(decision["retry_count"], 1);
        let op = json!({"trigger": {"persona": "p", "outcome": {"fail": "semantic_error"}}});
        let decision = a.decide("step-2", 2_000, &op).unwrap();
        assert_eq!(decision["termination"], "failed:semantic_error");
        assert_eq!(decision["retry_count"], 0);
        assert_eq!(decision["episode_id"], 1);
    }

    #[test]
    fn a_rate_limited_event_is_deferred_and_a_pump_runs_it() {
        let mut a = adapter(json!({"max_per_window": 1, "rate_window": "10s", "max_retries": 0}));
        let trigger = json!({"trigger": {"persona": "p"}});
        assert_eq!(
            a.decide("step-1", 0, &trigger).unwrap()["decision"],
            "invoke"
        );
        let deferred = a.decide("step-2", 4_000, &trigger).unwrap();
        assert_eq!(deferred["decision"], "defer");
        assert_eq!(deferred["schedule_at_ms"], 10_000);
        let pumped = a.decide("step-3", 10_000, &json!({"pump": {}})).unwrap();
        assert_eq!(
            (pumped["decision"].as_str(), pumped["episode_id"].as_u64()),
            (Some("invoke"), Some(1))
        );
        assert_eq!(pumped["event_id"], "step-3");
    }

    #[test]
    fn garbage_outcomes_and_durations_are_refused() {
        for body in [
            json!({"outcome": "exploded"}),
            json!({"outcome": {"fail": "completed"}}),
            json!({"outcome": {"attempts": [7]}}),
            json!({"outcome": 3}),
            json!({"duration": "5x"}),
        ] {
            assert!(script(&body).is_err(), "{body}");
        }
        assert!(Adapter::new(&json!({"supervisor": {"deadline": "soon"}})).is_err());
        let mut a = adapter(json!({}));
        assert!(a
            .decide("step-1", 0, &json!({"pause": "p", "resume": "p"}))
            .is_err());
    }
}
