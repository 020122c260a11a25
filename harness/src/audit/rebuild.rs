//! Rebuilding the external operations behind a log: each trigger, tick,
//! control, spend, repair-worker report and checkpoint restore, with its
//! time, cost and outcome, as a scenario the reference runtime can run.
//!
//! An operation's events are one batch that starts with a head event
//! (`persona.trigger.received`, `persona.schedule.fired`, a control, a spend's
//! `persona.budget.recorded` without a lease, ...); everything up to the next
//! head belongs to it and tells its cost and how its run ended. Events of
//! other topics (processes, the pipeline) are not rebuilt; they are counted.

use std::collections::BTreeMap;
use std::io::BufRead;

use rehearse_runtime::config::DEFAULT_LEASE_TTL;
use rehearse_runtime::op::{Attempt, Cost, FailKind, Outcome, RepairWorkerOp, RestoreCheckpointOp};
use rehearse_runtime::op::{SpendOp, TickOp, TriggerOp};
use rehearse_runtime::persona::PERSONA_TOPIC;
use rehearse_runtime::{Millis, Op, PersonaSpec, StoredEvent};
use serde_json::Value;

use super::read::{LogReader, ReadError};
use super::Bindings;

/// One rebuilt operation: when, what, where it starts in the log, and
/// (when kept) the events it wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceStep {
    pub at_ms: i64,
    pub op: Op,
    /// The log line of its first event.
    pub line: usize,
    /// Its events, when the rebuild keeps them (for shrinking).
    pub events: Vec<StoredEvent>,
}

/// The operations behind a log, with the personas they name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub personas: BTreeMap<String, PersonaSpec>,
    pub steps: Vec<TraceStep>,
    /// Events not rebuilt into any operation, by topic.
    pub not_rebuilt: BTreeMap<String, usize>,
}

/// The value metadata keys the runtime writes itself; any other key came
/// from the run's `cost.metadata`.
const VALUE_METADATA: [&str; 6] = [
    "work_key",
    "trigger_provider",
    "trigger_kind",
    "lease_id",
    "tokens",
    "frontier_escalations",
];

/// An operation being read: its head and what its later events said.
#[derive(Debug)]
struct Segment {
    step: TraceStep,
    persona: String,
    cost: Cost,
    attempts: Vec<Attempt>,
    running: bool,
    exhausted: bool,
    /// A trigger or tick ends with its receipt.
    closed: bool,
}

impl Segment {
    /// Whether a `persona.budget.exhausted` event is this operation's own
    /// refusal (else it starts a refused spend): a trigger or tick refuses
    /// once, before its receipt; a resume refuses any drained item.
    fn refuses(&self, event: &StoredEvent) -> bool {
        let open = match self.step.op {
            Op::Trigger(_) | Op::Tick(_) => !self.exhausted && !self.closed,
            Op::Resume(_) => true,
            _ => false,
        };
        open && self.owns(event)
    }

    /// Whether `event` (not a head) belongs to this operation: same persona
    /// and time.
    fn owns(&self, event: &StoredEvent) -> bool {
        event.topic.as_str() == PERSONA_TOPIC
            && event.header("persona") == Some(self.persona.as_str())
            && event.occurred_at_ms == self.step.at_ms
    }

    fn absorb(&mut self, event: &StoredEvent) {
        let payload = &event.payload;
        match event.kind.as_str() {
            "persona.trigger.queued" => {
                if let Some(cost) = payload.get("cost") {
                    self.queued_cost(cost);
                }
            }
            "persona.budget.recorded" => {
                self.cost.usd = f64_at(payload, "cost_usd");
                self.cost.tokens = u64_at(payload, "tokens");
            }
            "persona.budget.exhausted" => {
                self.exhausted = true;
                self.cost.usd = f64_at(payload, "attempted_cost_usd");
                self.cost.tokens = u64_at(payload, "attempted_tokens");
            }
            "persona.run.started" => self.running = true,
            "persona.supervision.receipt" => {
                self.closed = matches!(self.step.op, Op::Trigger(_) | Op::Tick(_));
            }
            "persona.run.completed" => {
                self.running = false;
                self.attempts.push(Attempt::Completed);
            }
            "persona.run.failed" => {
                self.running = false;
                let kind = payload
                    .get("error")
                    .and_then(Value::as_str)
                    .and_then(FailKind::from_name)
                    .unwrap_or(FailKind::RuntimeError);
                self.attempts.push(Attempt::Fail(kind));
            }
            "persona.value.run_started" => self.value_metadata(payload),
            "persona.value.deterministic_execution" => {
                self.cost.avoided_usd = f64_at(payload, "avoided_cost_usd");
                self.cost.deterministic_steps = i64_at(payload, "deterministic_steps");
            }
            "persona.value.frontier_escalation" => {
                self.cost.llm_steps = i64_at(payload, "llm_steps");
            }
            "persona.value.run_completed" if self.cost.frontier_escalations == 0 => {
                self.cost.llm_steps = i64_at(payload, "llm_steps");
            }
            _ => {}
        }
        self.step.events.push(event.clone());
    }

    /// A queued item keeps the whole cost the run will have.
    fn queued_cost(&mut self, cost: &Value) {
        self.cost.usd = f64_at(cost, "cost_usd");
        self.cost.tokens = u64_at(cost, "tokens");
        self.cost.avoided_usd = f64_at(cost, "avoided_cost_usd");
        self.cost.deterministic_steps = i64_at(cost, "deterministic_steps");
        self.cost.llm_steps = i64_at(cost, "llm_steps");
        self.cost.frontier_escalations = i64_at(cost, "frontier_escalations");
        if let Some(metadata) = cost.get("metadata").and_then(Value::as_object) {
            self.cost.metadata = metadata.clone().into_iter().collect();
        }
    }

    fn value_metadata(&mut self, payload: &Value) {
        let Some(metadata) = payload.get("metadata").and_then(Value::as_object) else {
            return;
        };
        self.cost.frontier_escalations = metadata
            .get("frontier_escalations")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        self.cost.metadata = metadata
            .iter()
            .filter(|(key, _)| !VALUE_METADATA.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
    }

    /// The finished operation, its cost and outcome filled in.
    fn finish(mut self) -> TraceStep {
        if self.running {
            self.attempts.push(Attempt::Crash);
        }
        let outcome = match self.attempts.as_slice() {
            [] | [Attempt::Completed] => Outcome::Completed,
            [Attempt::Crash] => Outcome::Crash,
            [Attempt::Fail(kind)] => Outcome::Fail(*kind),
            more => Outcome::Attempts(more.to_vec()),
        };
        match &mut self.step.op {
            Op::Trigger(trigger) => {
                trigger.cost = self.cost;
                trigger.outcome = outcome;
            }
            Op::Tick(tick) => {
                tick.cost = self.cost;
                tick.outcome = outcome;
            }
            _ => {}
        }
        self.step
    }
}

fn f64_at(value: &Value, field: &str) -> f64 {
    value.get(field).and_then(Value::as_f64).unwrap_or_default()
}

fn u64_at(value: &Value, field: &str) -> u64 {
    value.get(field).and_then(Value::as_u64).unwrap_or_default()
}

fn i64_at(value: &Value, field: &str) -> i64 {
    value.get(field).and_then(Value::as_i64).unwrap_or_default()
}

fn str_at(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_string)
}

/// A map of scalars as their text (`metadata` of an envelope).
fn text_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(key, value)| {
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string);
                    (key.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The operation `event` starts, if it is a head while `current` is open.
fn head(event: &StoredEvent, current: Option<&Segment>) -> Option<Op> {
    if event.topic.as_str() != PERSONA_TOPIC {
        return None;
    }
    let persona = event.header("persona")?.to_string();
    let payload = &event.payload;
    match event.kind.as_str() {
        "persona.trigger.received" => {
            let envelope = payload.get("envelope").unwrap_or(&Value::Null);
            Some(Op::Trigger(TriggerOp {
                persona,
                provider: str_at(envelope, "provider").unwrap_or_default(),
                kind: str_at(envelope, "kind").unwrap_or_default(),
                metadata: text_map(envelope.get("metadata")),
                cost: Cost::default(),
                outcome: Outcome::Completed,
                duration: Millis(0),
            }))
        }
        "persona.schedule.fired" => Some(Op::Tick(TickOp {
            persona,
            cost: Cost::default(),
            outcome: Outcome::Completed,
            duration: Millis(0),
        })),
        "persona.control.paused" => Some(Op::Pause(persona)),
        "persona.control.resumed" => Some(Op::Resume(persona)),
        "persona.control.disabled" => Some(Op::Disable(persona)),
        "persona.budget.recorded" if payload.get("lease_id").is_none_or(Value::is_null) => {
            Some(Op::Spend(SpendOp {
                persona,
                usd: f64_at(payload, "cost_usd"),
                tokens: u64_at(payload, "tokens"),
            }))
        }
        "persona.budget.exhausted" if !current.is_some_and(|s| s.refuses(event)) => {
            Some(Op::Spend(SpendOp {
                persona,
                usd: f64_at(payload, "attempted_cost_usd"),
                tokens: u64_at(payload, "attempted_tokens"),
            }))
        }
        "persona.repair_worker.status" => Some(Op::RepairWorker(RepairWorkerOp {
            persona,
            id: str_at(payload, "repair_worker_id").unwrap_or_default(),
            lifecycle: serde_json::from_value(payload.get("lifecycle")?.clone()).ok()?,
            work_key: str_at(payload, "work_key"),
            lease_id: str_at(payload, "lease_id"),
            scratchpad_url: str_at(payload, "scratchpad_url"),
        })),
        "persona.checkpoint.restore_acked" => Some(Op::RestoreCheckpoint(RestoreCheckpointOp {
            persona,
            checkpoint_id: str_at(payload, "checkpoint_id").unwrap_or_default(),
            work_key: str_at(payload, "work_key"),
        })),
        _ => None,
    }
}

/// Rebuilds the operations of the log `reader` reads; `keep_events` keeps
/// each operation's events (for shrinking), otherwise only the operations
/// are held.
pub fn rebuild<R: BufRead>(
    reader: &mut LogReader<R>,
    bindings: Option<&Bindings>,
    keep_events: bool,
) -> Result<Trace, ReadError> {
    let mut trace = Trace::default();
    let mut current: Option<Segment> = None;
    let mut inferred = Inferred::default();
    while let Some((line, event)) = reader.next_event()? {
        inferred.learn(&event);
        if let Some(op) = head(&event, current.as_ref()) {
            if let Some(done) = current.take() {
                trace.steps.push(done.finish());
            }
            let persona = event.header("persona").unwrap_or_default().to_string();
            let mut segment = Segment {
                step: TraceStep {
                    at_ms: event.occurred_at_ms,
                    op,
                    line,
                    events: Vec::new(),
                },
                persona,
                cost: Cost::default(),
                attempts: Vec::new(),
                running: false,
                exhausted: false,
                closed: false,
            };
            segment.absorb(&event);
            current = Some(segment);
        } else if let Some(segment) = current.as_mut().filter(|s| s.owns(&event)) {
            segment.absorb(&event);
        } else {
            *trace
                .not_rebuilt
                .entry(event.topic.to_string())
                .or_default() += 1;
        }
        if !keep_events {
            if let Some(segment) = current.as_mut() {
                segment.step.events.clear();
            }
        }
    }
    if let Some(done) = current.take() {
        trace.steps.push(done.finish());
    }
    trace.personas = inferred.personas(bindings);
    Ok(trace)
}

/// What the log says of personas it names without a binding.
#[derive(Debug, Default)]
struct Inferred {
    personas: BTreeMap<String, PersonaSpec>,
}

impl Inferred {
    fn learn(&mut self, event: &StoredEvent) {
        if event.topic.as_str() != PERSONA_TOPIC {
            return;
        }
        let Some(name) = event.header("persona") else {
            return;
        };
        let spec = self.personas.entry(name.to_string()).or_default();
        let payload = &event.payload;
        if spec.template_ref.is_none() {
            spec.template_ref = str_at(payload, "template_ref");
        }
        match event.kind.as_str() {
            "persona.run.started" if spec.entry_workflow.is_empty() => {
                spec.entry_workflow = str_at(payload, "entry_workflow").unwrap_or_default();
            }
            "persona.lease.acquired" if spec.lease_ttl.is_none() => {
                let ttl = i64_at(payload, "expires_at_ms") - i64_at(payload, "acquired_at_ms");
                spec.lease_ttl = u64::try_from(ttl).ok().filter(|ttl| *ttl > 0).map(Millis);
            }
            "persona.schedule.fired" if spec.schedules.is_empty() => {
                let schedule = payload
                    .pointer("/envelope/metadata/schedule")
                    .and_then(Value::as_str)
                    .filter(|schedule| *schedule != "manual");
                spec.schedules.extend(schedule.map(str::to_string));
            }
            _ => {}
        }
    }

    /// Every persona: its binding where there is one (an empty entry
    /// workflow or absent template filled in from the log), else what the
    /// log showed.
    fn personas(self, bindings: Option<&Bindings>) -> BTreeMap<String, PersonaSpec> {
        let mut personas = bindings.map(|b| b.personas.clone()).unwrap_or_default();
        for (name, seen) in self.personas {
            let spec = personas.entry(name).or_insert_with(|| PersonaSpec {
                lease_ttl: seen.lease_ttl.filter(|ttl| *ttl != DEFAULT_LEASE_TTL),
                schedules: seen.schedules.clone(),
                template_ref: seen.template_ref.clone(),
                ..PersonaSpec::default()
            });
            if spec.template_ref.is_none() {
                spec.template_ref = seen.template_ref.clone();
            }
            if spec.entry_workflow.is_empty() {
                spec.entry_workflow = if seen.entry_workflow.is_empty() {
                    "unknown".to_string()
                } else {
                    seen.entry_workflow
                };
            }
        }
        personas
    }
}
