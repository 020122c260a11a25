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
use rehearse_runtime::op::{Attempt, Cost, Outcome, RepairWorkerOp, RestoreCheckpointOp};
use rehearse_runtime::op::{SpendOp, TickOp, TriggerOp};
use rehearse_runtime::persona::{PersonaEvent, RunCost, PERSONA_TOPIC};
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

    /// Reads what `typed` (the decoded `event`, if its kind is in the
    /// vocabulary) says of the operation's cost and outcome, and keeps the
    /// event.
    fn absorb(&mut self, typed: Option<&PersonaEvent>, event: &StoredEvent) {
        match typed {
            Some(PersonaEvent::TriggerQueued(queued)) => self.queued_cost(&queued.cost),
            Some(PersonaEvent::BudgetRecorded(recorded)) => {
                self.cost.usd = recorded.cost_usd;
                self.cost.tokens = recorded.tokens;
            }
            Some(PersonaEvent::BudgetExhausted(exhausted)) => {
                self.exhausted = true;
                self.cost.usd = exhausted.attempted_cost_usd;
                self.cost.tokens = exhausted.attempted_tokens;
            }
            Some(PersonaEvent::RunStarted(_)) => self.running = true,
            Some(PersonaEvent::SupervisionReceipt(_)) => {
                self.closed = matches!(self.step.op, Op::Trigger(_) | Op::Tick(_));
            }
            Some(PersonaEvent::RunCompleted(_)) => {
                self.running = false;
                self.attempts.push(Attempt::Completed);
            }
            Some(PersonaEvent::RunFailed(failed)) => {
                self.running = false;
                self.attempts.push(Attempt::Fail(failed.error));
            }
            Some(PersonaEvent::ValueRunStarted(value)) => self.value_metadata(&value.metadata),
            Some(PersonaEvent::ValueDeterministicExecution(value)) => {
                self.cost.avoided_usd = value.avoided_cost_usd;
                self.cost.deterministic_steps = value.deterministic_steps;
            }
            Some(PersonaEvent::ValueFrontierEscalation(value)) => {
                self.cost.llm_steps = value.llm_steps;
            }
            Some(PersonaEvent::ValueRunCompleted(value)) if self.cost.frontier_escalations == 0 => {
                self.cost.llm_steps = value.llm_steps;
            }
            _ => {}
        }
        self.step.events.push(event.clone());
    }

    /// A queued item keeps the whole cost the run will have.
    fn queued_cost(&mut self, cost: &RunCost) {
        self.cost.usd = cost.cost_usd;
        self.cost.tokens = cost.tokens;
        self.cost.avoided_usd = cost.avoided_cost_usd;
        self.cost.deterministic_steps = cost.deterministic_steps;
        self.cost.llm_steps = cost.llm_steps;
        self.cost.frontier_escalations = cost.frontier_escalations;
        if let Some(metadata) = cost.metadata.as_object() {
            self.cost.metadata = metadata.clone().into_iter().collect();
        }
    }

    fn value_metadata(&mut self, metadata: &Value) {
        let Some(metadata) = metadata.as_object() else {
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

/// The operation `typed` (the decoded `event`) starts, if it is a head
/// while `current` is open.
fn head(typed: &PersonaEvent, event: &StoredEvent, current: Option<&Segment>) -> Option<Op> {
    let persona = event.header("persona")?.to_string();
    match typed {
        PersonaEvent::TriggerReceived(arrived) => Some(Op::Trigger(TriggerOp {
            persona,
            provider: arrived.envelope.provider.clone(),
            kind: arrived.envelope.kind.clone(),
            metadata: std::sync::Arc::clone(&arrived.envelope.metadata),
            cost: Cost::default(),
            outcome: Outcome::Completed,
            duration: Millis(0),
        })),
        PersonaEvent::ScheduleFired(_) => Some(Op::Tick(TickOp {
            persona,
            cost: Cost::default(),
            outcome: Outcome::Completed,
            duration: Millis(0),
        })),
        PersonaEvent::ControlPaused(_) => Some(Op::Pause(persona)),
        PersonaEvent::ControlResumed(_) => Some(Op::Resume(persona)),
        PersonaEvent::ControlDisabled(_) => Some(Op::Disable(persona)),
        PersonaEvent::BudgetRecorded(recorded) if recorded.lease_id.is_none() => {
            Some(Op::Spend(SpendOp {
                persona,
                usd: recorded.cost_usd,
                tokens: recorded.tokens,
            }))
        }
        PersonaEvent::BudgetExhausted(exhausted) if !current.is_some_and(|s| s.refuses(event)) => {
            Some(Op::Spend(SpendOp {
                persona,
                usd: exhausted.attempted_cost_usd,
                tokens: exhausted.attempted_tokens,
            }))
        }
        PersonaEvent::RepairWorkerStatus(report) => Some(Op::RepairWorker(RepairWorkerOp {
            persona,
            id: report.repair_worker_id.clone(),
            lifecycle: report.lifecycle,
            work_key: report.work_key.clone(),
            lease_id: report.lease_id.clone(),
            scratchpad_url: report.scratchpad_url.clone(),
        })),
        PersonaEvent::CheckpointRestoreAcked(ack) => {
            Some(Op::RestoreCheckpoint(RestoreCheckpointOp {
                persona,
                checkpoint_id: ack.checkpoint_id.clone(),
                work_key: ack.work_key.clone(),
            }))
        }
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
        // The reader refuses a vocabulary kind whose payload does not
        // decode; any other kind decodes to nothing and starts nothing.
        let typed = PersonaEvent::from_stored(&event).and_then(Result::ok);
        let typed = typed.as_ref().map(|(_, typed)| typed);
        if let Some(typed) = typed {
            inferred.learn(typed, &event);
        }
        if let Some(op) = typed.and_then(|typed| head(typed, &event, current.as_ref())) {
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
            segment.absorb(typed, &event);
            current = Some(segment);
        } else if let Some(segment) = current.as_mut().filter(|s| s.owns(&event)) {
            segment.absorb(typed, &event);
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
    fn learn(&mut self, typed: &PersonaEvent, event: &StoredEvent) {
        let Some(name) = event.header("persona") else {
            return;
        };
        let spec = self.personas.entry(name.to_string()).or_default();
        if spec.template_ref.is_none() {
            spec.template_ref = typed.template_ref().map(str::to_string);
        }
        match typed {
            PersonaEvent::RunStarted(started) if spec.entry_workflow.is_empty() => {
                spec.entry_workflow = started.run.entry_workflow.to_string();
            }
            PersonaEvent::LeaseAcquired(lease) if spec.lease_ttl.is_none() => {
                let ttl = lease.expires_at_ms.checked_sub(lease.acquired_at_ms);
                let ttl = ttl.and_then(|ttl| u64::try_from(ttl).ok());
                spec.lease_ttl = ttl.filter(|ttl| *ttl > 0).map(Millis);
            }
            PersonaEvent::ScheduleFired(fired) if spec.schedules.is_empty() => {
                let schedule = fired.envelope.metadata.get("schedule");
                let schedule = schedule.filter(|schedule| *schedule != "manual");
                spec.schedules.extend(schedule.cloned());
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
