//! Persona state folded from `persona.runtime.events`, and the status snapshot
//! a persona reports (every field of the seed's `PersonaStatus`).
//!
//! [`PersonaState::apply`] is the only way persona state changes. The runtime
//! applies each event as it emits it, and [`PersonaState::rebuild`] applies a
//! whole log, so incremental status and a rebuild agree by construction.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget::{self, BudgetStatus, SpendWindows};
use crate::clock::format_ms;
use crate::config::PersonaSpec;
use crate::lease::Lease;
use crate::log::StoredEvent;
use crate::schedule::Schedule;
use crate::workkey::Envelope;

/// The topic every persona event is written to.
pub const PERSONA_TOPIC: &str = "persona.runtime.events";

/// The policy for triggers that arrive while a persona is paused.
pub const PAUSED_EVENT_POLICY: &str = "queue_then_drain_on_resume";

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

/// What a run spends, in the seed's `PersonaRunCost` shape (as logged).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCost {
    pub cost_usd: f64,
    pub tokens: u64,
    #[serde(default)]
    pub avoided_cost_usd: f64,
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
    pub reason: String,
}

/// Queued work as status reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueuedWork {
    pub work_key: String,
    pub provider: String,
    pub kind: String,
    pub queued_at: String,
    pub reason: String,
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
    pub reason: String,
}

/// A value event as status reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValueReceipt {
    pub kind: String,
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

/// A persona's status snapshot, field for field the seed's `PersonaStatus`.
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
    pub paused_event_policy: String,
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
    pub queued: BTreeMap<String, QueuedItem>,
    pub completed: BTreeSet<String>,
    pub disabled_events: usize,
    pub last_receipt_id: Option<String>,
    pub exhaustion_reason: Option<String>,
    pub spend: SpendWindows,
    pub value_receipts: Vec<ValueReceipt>,
    /// Repair-worker reports seen, by worker id and lifecycle.
    pub repair_reports: BTreeSet<(String, String)>,
    /// Acknowledged checkpoint restores, by checkpoint id.
    pub checkpoint_acks: BTreeMap<String, Value>,
}

fn str_field<'a>(payload: &'a Value, name: &str) -> Option<&'a str> {
    payload.get(name).and_then(Value::as_str)
}

impl PersonaState {
    /// Folds one event of this persona.
    pub fn apply(&mut self, kind: &str, payload: &Value, at_ms: i64) {
        match kind {
            "persona.control.paused" => self.lifecycle = Lifecycle::Paused,
            "persona.control.resumed" => self.lifecycle = Lifecycle::Idle,
            "persona.control.disabled" => self.lifecycle = Lifecycle::Disabled,
            "persona.control.draining" => self.lifecycle = Lifecycle::Draining,
            "persona.lease.acquired" => {
                if let Ok(lease) = Lease::deserialize(payload) {
                    self.lease = Some(lease);
                    self.lifecycle = Lifecycle::Running;
                }
            }
            "persona.lease.released" | "persona.lease.expired" => {
                self.lease = None;
                if !self.lifecycle.holds_through_runs() {
                    self.lifecycle = Lifecycle::Idle;
                }
            }
            "persona.run.started" => self.lifecycle = Lifecycle::Running,
            "persona.run.completed" => {
                self.last_run_ms = Some(
                    payload
                        .get("completed_at_ms")
                        .and_then(Value::as_i64)
                        .unwrap_or(at_ms),
                );
                if let Some(work_key) = str_field(payload, "work_key") {
                    self.queued.remove(work_key);
                    self.completed.insert(work_key.to_string());
                }
                if !self.lifecycle.holds_through_runs() {
                    self.lifecycle = Lifecycle::Idle;
                }
            }
            "persona.run.failed" => {
                self.lifecycle = Lifecycle::Failed;
                self.last_error = str_field(payload, "error").map(str::to_string);
            }
            "persona.trigger.queued" => {
                let envelope = payload
                    .get("envelope")
                    .and_then(|value| Envelope::deserialize(value).ok());
                if let Some(envelope) = envelope {
                    if !self.completed.contains(&envelope.subject_key) {
                        let cost = payload
                            .get("cost")
                            .and_then(|value| RunCost::deserialize(value).ok())
                            .unwrap_or_default();
                        let reason = str_field(payload, "reason").unwrap_or("queued").to_string();
                        let item = QueuedItem {
                            envelope,
                            cost,
                            queued_at_ms: at_ms,
                            reason,
                        };
                        self.queued.insert(item.envelope.subject_key.clone(), item);
                    }
                }
            }
            "persona.trigger.dead_lettered" => self.disabled_events += 1,
            "persona.budget.recorded" => {
                self.last_receipt_id = str_field(payload, "receipt_id").map(str::to_string);
                let usd = payload
                    .get("cost_usd")
                    .and_then(Value::as_f64)
                    .unwrap_or_default();
                let tokens = payload
                    .get("tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or_default();
                self.spend.record(at_ms, usd, tokens);
            }
            "persona.budget.exhausted" => {
                if let Some(reason) = str_field(payload, "reason") {
                    self.exhaustion_reason = Some(reason.to_string());
                    self.last_error = Some(format!("persona budget exhausted: {reason}"));
                }
                self.last_receipt_id = str_field(payload, "receipt_id").map(str::to_string);
            }
            "persona.repair_worker.status" => {
                if let (Some(id), Some(lifecycle)) = (
                    str_field(payload, "repair_worker_id"),
                    str_field(payload, "lifecycle"),
                ) {
                    self.repair_reports
                        .insert((id.to_string(), lifecycle.to_string()));
                }
            }
            "persona.checkpoint.restore_acked" => {
                if let Some(id) = str_field(payload, "checkpoint_id") {
                    self.checkpoint_acks.insert(id.to_string(), payload.clone());
                }
            }
            kind if kind.starts_with("persona.value.") => {
                if let Some(receipt) = value_receipt(payload) {
                    self.value_receipts.push(receipt);
                }
            }
            _ => {}
        }
    }

    /// The lease that holds at `now_ms`, if any.
    pub fn live_lease(&self, now_ms: i64) -> Option<&Lease> {
        self.lease.as_ref().filter(|lease| lease.is_live_at(now_ms))
    }
}

fn value_receipt(payload: &Value) -> Option<ValueReceipt> {
    Some(ValueReceipt {
        kind: str_field(payload, "kind")?.to_string(),
        run_id: str_field(payload, "run_id").map(str::to_string),
        occurred_at: str_field(payload, "occurred_at")?.to_string(),
        paid_cost_usd: payload.get("paid_cost_usd")?.as_f64()?,
        avoided_cost_usd: payload.get("avoided_cost_usd")?.as_f64()?,
        deterministic_steps: payload.get("deterministic_steps")?.as_i64()?,
        llm_steps: payload.get("llm_steps")?.as_i64()?,
        metadata: payload.get("metadata").cloned().unwrap_or(Value::Null),
    })
}

/// A persona: its binding, its parsed schedules and its folded state.
#[derive(Clone, Debug)]
pub struct Persona {
    pub name: String,
    pub spec: PersonaSpec,
    pub schedules: Vec<Schedule>,
    pub state: PersonaState,
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
            .map(|expr| Schedule::parse(expr).map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: name.to_string(),
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
            self.state.exhaustion_reason.as_deref(),
            self.state.last_receipt_id.as_deref(),
            now_ms,
        )
    }

    /// The status snapshot at `now_ms`.
    pub fn status(&self, now_ms: i64) -> PersonaStatus {
        let state = &self.state;
        let active_lease = state.live_lease(now_ms).cloned();
        let lifecycle = self.lifecycle_at(now_ms);
        let queued_work: Vec<QueuedWork> = state
            .queued
            .values()
            .map(|item| QueuedWork {
                work_key: item.envelope.subject_key.clone(),
                provider: item.envelope.provider.clone(),
                kind: item.envelope.kind.clone(),
                queued_at: format_ms(item.queued_at_ms),
                reason: item.reason.clone(),
                source_event_id: item.envelope.source_event_id.clone(),
                metadata: item.envelope.metadata.clone(),
            })
            .collect();
        let handoff_inbox = queued_work.iter().filter_map(handoff_item).collect();
        PersonaStatus {
            name: self.name.clone(),
            template_ref: self.spec.template_ref.clone(),
            state: lifecycle,
            entry_workflow: self.spec.entry_workflow.clone(),
            role: self.name.clone(),
            current_assignment: active_lease.as_ref().map(|lease| Assignment {
                work_key: lease.work_key.clone(),
                lease_id: lease.id.clone(),
                holder: lease.holder.clone(),
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
            value_receipts: state.value_receipts.clone(),
            disabled_events: state.disabled_events,
            paused_event_policy: PAUSED_EVENT_POLICY.to_string(),
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
        reason: work.reason.clone(),
    })
}

/// Folds every persona event of `events` into fresh state for each persona
/// of `personas` (events of unknown personas are ignored).
pub fn rebuild_states(personas: &mut BTreeMap<String, Persona>, events: &[StoredEvent]) {
    for persona in personas.values_mut() {
        persona.state = PersonaState::default();
    }
    for event in events {
        if event.topic.as_str() != PERSONA_TOPIC {
            continue;
        }
        if let Some(persona) = event
            .header("persona")
            .and_then(|name| personas.get_mut(name))
        {
            persona
                .state
                .apply(&event.kind, &event.payload, event.occurred_at_ms);
        }
    }
}
