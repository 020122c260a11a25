//! Persona state folded from `persona.runtime.events`, and the status snapshot
//! a persona reports (every field of the modelled runtime's `PersonaStatus`).
//!
//! [`PersonaState::apply`] is the only way persona state changes. The runtime
//! applies each event as it emits it, and [`PersonaState::rebuild`] applies a
//! whole log, so incremental status and a rebuild agree by construction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget::{self, BudgetLimit, BudgetStatus, SpendWindows, Usd};
use crate::clock::format_ms;
use crate::config::PersonaSpec;
use crate::event::DecodeError;
use crate::lease::Lease;
use crate::log::StoredEvent;
use crate::op::RepairWorkerLifecycle;
use crate::schedule::Schedule;
use crate::workkey::Envelope;

mod decide;
mod encode;
mod events;
mod receipts;

pub use decide::{Admission, RunDecision, Supervision};
pub use events::*;
pub use receipts::ValueReceipts;

/// The policy for triggers that arrive while a persona is paused: the
/// modelled runtime has one, they are queued and drained on resume.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum PausedEventPolicy {
    #[default]
    #[serde(rename = "queue_then_drain_on_resume")]
    QueueThenDrainOnResume,
}

/// The lifecycle state of a persona.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Inactive,
    Starting,
    #[default]
    Idle,
    Running,
    Paused,
    Draining,
    Failed,
    Disabled,
}

impl Lifecycle {
    fn holds_through_runs(self) -> bool {
        matches!(self, Self::Paused | Self::Disabled)
    }
}

/// What a run spends, as logged in `persona.trigger.queued`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunCost {
    pub cost_usd: Usd,
    pub tokens: u64,
    #[serde(default)]
    pub avoided_cost_usd: Usd,
    #[serde(default)]
    pub deterministic_steps: i64,
    #[serde(default)]
    pub llm_steps: i64,
    #[serde(default)]
    pub frontier_escalations: i64,
    #[serde(default)]
    pub metadata: Value,
}

impl From<&crate::op::Cost> for RunCost {
    fn from(cost: &crate::op::Cost) -> Self {
        Self {
            cost_usd: cost.usd,
            tokens: cost.tokens,
            avoided_cost_usd: cost.avoided_usd,
            deterministic_steps: cost.deterministic_steps,
            llm_steps: cost.llm_steps,
            frontier_escalations: cost.frontier_escalations,
            metadata: if cost.metadata.is_empty() {
                Value::Null
            } else {
                Value::Object(cost.metadata.clone().into_iter().collect())
            },
        }
    }
}

/// A trigger waiting in a paused persona's queue.
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedItem {
    pub envelope: Envelope,
    pub cost: RunCost,
    pub queued_at_ms: i64,
    pub reason: QueueReason,
}

/// Queued work as status reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueuedWork {
    pub work_key: String,
    pub provider: String,
    pub kind: String,
    pub queued_at: String,
    pub reason: QueueReason,
    pub source_event_id: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A queued handoff as status reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandoffInboxItem {
    pub work_key: String,
    pub handoff_id: Option<String>,
    pub handoff_kind: Option<String>,
    pub source_persona: Option<String>,
    pub task: Option<String>,
    pub queued_at: String,
    pub reason: QueueReason,
}

/// A value event as status reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValueReceipt {
    pub kind: ValueKind,
    pub run_id: Option<String>,
    pub occurred_at: String,
    pub paid_cost_usd: f64,
    pub avoided_cost_usd: f64,
    pub deterministic_steps: i64,
    pub llm_steps: i64,
    pub metadata: Value,
}

/// The current assignment: the live lease, with readable times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    pub work_key: String,
    pub lease_id: String,
    pub holder: String,
    pub acquired_at: String,
    pub expires_at: String,
}

/// A persona's status snapshot, field for field the modelled runtime's `PersonaStatus`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PersonaStatus {
    pub name: String,
    pub template_ref: Option<String>,
    pub state: Lifecycle,
    pub entry_workflow: String,
    pub role: String,
    pub current_assignment: Option<Assignment>,
    pub last_run: Option<String>,
    pub next_scheduled_run: Option<String>,
    pub active_lease: Option<Lease>,
    pub budget: BudgetStatus,
    pub last_error: Option<String>,
    pub queued_events: usize,
    pub queued_work: Vec<QueuedWork>,
    pub handoff_inbox: Vec<HandoffInboxItem>,
    pub value_receipts: Vec<ValueReceipt>,
    pub disabled_events: usize,
    pub paused_event_policy: PausedEventPolicy,
}

/// Everything folded from one persona's events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PersonaState {
    pub lifecycle: Lifecycle,
    pub last_run_ms: Option<i64>,
    /// The last acquired lease not yet released or expired; it may have
    /// lapsed in time, which only [`Lease::is_live_at`] tells.
    pub lease: Option<Lease>,
    pub last_error: Option<String>,
    pub queued: BTreeMap<Arc<str>, QueuedItem>,
    pub completed: crate::keyset::KeySet,
    pub disabled_events: usize,
    pub last_receipt_id: Option<Arc<str>>,
    pub exhaustion_reason: Option<BudgetLimit>,
    pub spend: SpendWindows,
    /// Every value receipt, kept compactly: status decodes them.
    pub value_receipts: ValueReceipts,
    /// Repair-worker reports seen, by worker id and lifecycle.
    pub repair_reports: BTreeSet<(String, RepairWorkerLifecycle)>,
    /// Acknowledged checkpoint restores, by checkpoint id.
    pub checkpoint_acks: BTreeMap<String, RestoreAcked>,
}

impl PersonaState {
    /// The fold: applies one event of this persona, stamped `at_ms`.
    pub fn apply(&mut self, event: &PersonaEvent, at_ms: i64) {
        match event {
            PersonaEvent::ControlPaused(_) => self.lifecycle = Lifecycle::Paused,
            PersonaEvent::ControlResumed(_) => self.lifecycle = Lifecycle::Idle,
            PersonaEvent::ControlDisabled(_) => self.lifecycle = Lifecycle::Disabled,
            PersonaEvent::LeaseAcquired(lease) => {
                self.lease = Some(lease.clone());
                self.lifecycle = Lifecycle::Running;
            }
            PersonaEvent::LeaseReleased(_) | PersonaEvent::LeaseExpired(_) => {
                self.lease = None;
                self.settle();
            }
            PersonaEvent::RunStarted(_) => self.lifecycle = Lifecycle::Running,
            PersonaEvent::RunCompleted(done) => {
                self.last_run_ms = Some(done.completed_at_ms);
                self.queued.remove(&done.run.work_key);
                self.completed.insert(done.run.work_key.clone());
                self.settle();
            }
            PersonaEvent::RunFailed(failed) => {
                self.lifecycle = Lifecycle::Failed;
                self.last_error = Some(failed.error.as_str().to_string());
            }
            PersonaEvent::TriggerQueued(queued) => self.enqueue(queued, at_ms),
            PersonaEvent::TriggerDeadLettered(_) => self.disabled_events += 1,
            PersonaEvent::BudgetRecorded(recorded) => {
                self.last_receipt_id = Some(recorded.receipt_id.clone());
                self.spend.record(at_ms, recorded.cost_usd, recorded.tokens);
            }
            PersonaEvent::BudgetExhausted(exhausted) => {
                let reason = exhausted.reason;
                self.exhaustion_reason = Some(reason);
                self.last_error = Some(format!("persona budget exhausted: {reason}"));
                self.last_receipt_id = Some(exhausted.receipt_id.clone());
            }
            PersonaEvent::RepairWorkerStatus(report) => {
                self.repair_reports
                    .insert((report.repair_worker_id.clone(), report.lifecycle));
            }
            PersonaEvent::CheckpointRestoreAcked(ack) => {
                self.checkpoint_acks
                    .insert(ack.checkpoint_id.clone(), ack.clone());
            }
            PersonaEvent::ValueRunStarted(value)
            | PersonaEvent::ValueDeterministicExecution(value)
            | PersonaEvent::ValueFrontierEscalation(value)
            | PersonaEvent::ValueRunCompleted(value) => {
                self.value_receipts.push(value);
            }
            PersonaEvent::TriggerReceived(_)
            | PersonaEvent::ScheduleFired(_)
            | PersonaEvent::TriggerDuplicate(_)
            | PersonaEvent::LeaseConflict(_)
            | PersonaEvent::SupervisionRepairWorkerStatus(_)
            | PersonaEvent::SupervisionCheckpoint(_)
            | PersonaEvent::SupervisionQueuePosition(_)
            | PersonaEvent::SupervisionReceipt(_) => {}
        }
    }

    /// A run ended or its lease went: idle again, unless a control holds it.
    fn settle(&mut self) {
        if !self.lifecycle.holds_through_runs() {
            self.lifecycle = Lifecycle::Idle;
        }
    }

    fn enqueue(&mut self, queued: &TriggerQueued, at_ms: i64) {
        let work_key = &queued.envelope.subject_key;
        if self.completed.contains(work_key) {
            return;
        }
        let item = QueuedItem {
            envelope: queued.envelope.clone(),
            cost: queued.cost.clone(),
            queued_at_ms: at_ms,
            reason: queued.reason,
        };
        self.queued.insert(work_key.clone(), item);
    }

    /// The lease that holds at `now_ms`, if any.
    pub fn live_lease(&self, now_ms: i64) -> Option<&Lease> {
        self.lease.as_ref().filter(|lease| lease.is_live_at(now_ms))
    }
}

impl From<&ValueEvent> for ValueReceipt {
    fn from(value: &ValueEvent) -> Self {
        Self {
            kind: value.kind,
            run_id: Some(value.run_id.to_string()),
            occurred_at: format_ms(value.occurred_at.ms()),
            paid_cost_usd: value.paid_cost_usd,
            avoided_cost_usd: value.avoided_cost_usd,
            deterministic_steps: value.deterministic_steps,
            llm_steps: value.llm_steps,
            metadata: value.metadata.value().clone(),
        }
    }
}

/// A persona: its binding, its parsed schedules and its folded state.
#[derive(Clone, Debug)]
pub struct Persona {
    /// Shared by every event and receipt that names the persona.
    pub name: Arc<str>,
    pub spec: PersonaSpec,
    pub schedules: Vec<Schedule>,
    pub state: PersonaState,
    // The spec's texts every run copies into its events, shared. Made from
    // `spec` by `Persona::new`; nothing changes a persona's spec after.
    entry_workflow: Arc<str>,
    template_ref: Option<Arc<str>>,
}

/// Why a persona binding was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("persona name is empty")]
    EmptyName,
    #[error("persona `{persona}`: {message}")]
    Invalid { persona: String, message: String },
}

impl Persona {
    /// Validates a binding: a non-empty name, parseable crons, non-negative
    /// finite budget limits, a non-empty entry workflow.
    pub fn new(name: &str, spec: PersonaSpec) -> Result<Self, BindingError> {
        if name.is_empty() {
            return Err(BindingError::EmptyName);
        }
        let invalid = |message: String| BindingError::Invalid {
            persona: name.to_string(),
            message,
        };
        if spec.entry_workflow.trim().is_empty() {
            return Err(invalid("entry_workflow is empty".to_string()));
        }
        for (field, limit) in [
            ("daily_usd", spec.budget.daily_usd),
            ("hourly_usd", spec.budget.hourly_usd),
            ("run_usd", spec.budget.run_usd),
        ] {
            if let Some(limit) = limit {
                if !limit.is_finite() || limit < 0.0 {
                    return Err(invalid(format!(
                        "budget.{field} is {limit}, expected a non-negative amount"
                    )));
                }
            }
        }
        if spec.lease_ttl().0 == 0 {
            return Err(invalid(
                "lease_ttl is 0s, expected a positive duration".to_string(),
            ));
        }
        let schedules = spec
            .schedules
            .iter()
            .map(|expr| Schedule::parse(expr).map_err(|error| invalid(error.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.into(),
            entry_workflow: spec.entry_workflow.as_str().into(),
            template_ref: spec.template_ref.as_deref().map(Arc::from),
            spec,
            schedules,
            state: PersonaState::default(),
        })
    }

    /// The earliest next occurrence of any schedule strictly after the last
    /// run (or after `now_ms` when there was none).
    pub fn next_scheduled_run_ms(&self, now_ms: i64) -> Option<i64> {
        let after = self.state.last_run_ms.unwrap_or(now_ms);
        self.schedules
            .iter()
            .filter_map(|s| s.next_after(after))
            .min()
    }

    /// The lifecycle state status reports at `now_ms`: a lapsed lease no
    /// longer keeps a persona running.
    pub fn lifecycle_at(&self, now_ms: i64) -> Lifecycle {
        let state = &self.state;
        let lapsed = state.lease.is_some() && state.live_lease(now_ms).is_none();
        if lapsed && !state.lifecycle.holds_through_runs() {
            Lifecycle::Idle
        } else {
            state.lifecycle
        }
    }

    /// The budget part of status at `now_ms`, without building the rest
    /// (whose lists grow with the log).
    pub fn budget_status(&self, now_ms: i64) -> BudgetStatus {
        budget::status(
            &self.spec.budget,
            &self.state.spend,
            self.state.exhaustion_reason,
            self.state.last_receipt_id.as_deref(),
            now_ms,
        )
    }

    /// The status snapshot at `now_ms`.
    pub fn status(&self, now_ms: i64) -> PersonaStatus {
        PersonaStatus {
            value_receipts: self.state.value_receipts.iter().collect(),
            ..self.status_without_receipts(now_ms)
        }
    }

    /// The status snapshot at `now_ms` with its `value_receipts` left
    /// empty: every other field, without decoding the one list that grows
    /// with the log (by two receipts a run). For readers that never show
    /// the receipts, such as the report's final state.
    pub fn status_without_receipts(&self, now_ms: i64) -> PersonaStatus {
        let state = &self.state;
        let active_lease = state.live_lease(now_ms).cloned();
        let lifecycle = self.lifecycle_at(now_ms);
        let queued_work: Vec<QueuedWork> = state
            .queued
            .values()
            .map(|item| QueuedWork {
                work_key: item.envelope.subject_key.to_string(),
                provider: item.envelope.provider.clone(),
                kind: item.envelope.kind.clone(),
                queued_at: format_ms(item.queued_at_ms),
                reason: item.reason,
                source_event_id: item.envelope.source_event_id.clone(),
                metadata: BTreeMap::clone(&item.envelope.metadata),
            })
            .collect();
        let handoff_inbox = queued_work.iter().filter_map(handoff_item).collect();
        PersonaStatus {
            name: self.name.to_string(),
            template_ref: self.spec.template_ref.clone(),
            state: lifecycle,
            entry_workflow: self.spec.entry_workflow.clone(),
            role: self.name.to_string(),
            current_assignment: active_lease.as_ref().map(|lease| Assignment {
                work_key: lease.work_key.to_string(),
                lease_id: lease.id.to_string(),
                holder: lease.holder.to_string(),
                acquired_at: format_ms(lease.acquired_at_ms),
                expires_at: format_ms(lease.expires_at_ms),
            }),
            last_run: state.last_run_ms.map(format_ms),
            next_scheduled_run: self.next_scheduled_run_ms(now_ms).map(format_ms),
            active_lease,
            budget: self.budget_status(now_ms),
            last_error: state.last_error.clone(),
            queued_events: state.queued.len(),
            queued_work,
            handoff_inbox,
            value_receipts: Vec::new(),
            disabled_events: state.disabled_events,
            paused_event_policy: PausedEventPolicy::QueueThenDrainOnResume,
        }
    }
}

fn handoff_item(work: &QueuedWork) -> Option<HandoffInboxItem> {
    if work.provider != "handoff" && !work.metadata.contains_key("handoff_id") {
        return None;
    }
    let get = |key: &str| work.metadata.get(key).cloned();
    Some(HandoffInboxItem {
        work_key: work.work_key.clone(),
        handoff_id: get("handoff_id"),
        handoff_kind: get("handoff_kind").or_else(|| get("kind")),
        source_persona: get("source_persona"),
        task: get("task"),
        queued_at: work.queued_at.clone(),
        reason: work.reason,
    })
}

/// Folds every persona event of `events` into fresh state for each persona
/// of `personas` (events of unknown personas are ignored). A persona event
/// of a known kind whose payload this runtime did not write is an error: the
/// log is corrupt.
pub fn rebuild_states<'a>(
    personas: &mut BTreeMap<String, Persona>,
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> Result<(), DecodeError> {
    for persona in personas.values_mut() {
        persona.state = PersonaState::default();
    }
    for decoded in persona_events(events) {
        let (stored, persona, event) = decoded?;
        if let Some(persona) = personas.get_mut(persona) {
            persona.state.apply(&event, stored.occurred_at_ms);
        }
    }
    Ok(())
}

/// A decoded persona event: its stored form, its persona and the event.
pub type Decoded<'a> = (&'a StoredEvent, &'a str, PersonaEvent);

/// Every persona event of `events`, decoded, in log order; other topics and
/// kinds this vocabulary does not hold are skipped.
pub fn persona_events<'a>(
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> impl Iterator<Item = Result<Decoded<'a>, DecodeError>> {
    events.into_iter().filter_map(|stored| {
        let decoded = PersonaEvent::from_stored(stored)?;
        Some(decoded.map(|(persona, event)| (stored, persona, event)))
    })
}
