//! The events of topic [`PERSONA_TOPIC`], each with header `persona=<name>`:
//! [`PersonaEvent`], one variant per kind, each with its payload struct.
//!
//! The runtime decides with `&self` state and returns these values; the
//! one fold, [`super::PersonaState::apply`], reads them back, and so do run
//! records and the harness's invariant model. Payload field names and JSON
//! types are the log's contract (docs/EVENTS.md lists them, and
//! docs/events.schema.json is generated from these types).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget::{BudgetLimit, Usd};
use crate::clock::TimeTuple;
use crate::event::{event_enum, DecodeError};
use crate::lease::Lease;
use crate::log::StoredEvent;
use crate::op::{FailKind, RepairWorkerLifecycle};
use crate::workkey::Envelope;

use super::RunCost;

/// The topic every persona event is written to.
pub const PERSONA_TOPIC: &str = "persona.runtime.events";

event_enum! {
    /// One event on [`PERSONA_TOPIC`].
    pub enum PersonaEvent {
        /// A provider trigger arrived for the persona.
        TriggerReceived(Arrived) = "persona.trigger.received",
        /// A schedule tick fired for the persona.
        ScheduleFired(Arrived) = "persona.schedule.fired",
        /// A trigger was queued because the persona is paused.
        TriggerQueued(TriggerQueued) = "persona.trigger.queued",
        /// A trigger was refused because the persona is disabled.
        TriggerDeadLettered(TriggerRefused) = "persona.trigger.dead_lettered",
        /// A trigger was refused because its work key already completed.
        TriggerDuplicate(TriggerRefused) = "persona.trigger.duplicate",
        /// A run was refused because another run holds a live lease.
        LeaseConflict(LeaseConflict) = "persona.lease.conflict",
        /// A lapsed lease was cleared before a new one was acquired.
        LeaseExpired(LeaseExpired) = "persona.lease.expired",
        /// A run took the persona's lease.
        LeaseAcquired(Lease) = "persona.lease.acquired",
        /// A run gave the lease back.
        LeaseReleased(LeaseReleased) = "persona.lease.released",
        /// A run started under its lease.
        RunStarted(RunStarted) = "persona.run.started",
        /// A run completed its work key.
        RunCompleted(RunCompleted) = "persona.run.completed",
        /// A run failed.
        RunFailed(RunFailed) = "persona.run.failed",
        /// The persona was paused.
        ControlPaused(Paused) = "persona.control.paused",
        /// The persona was resumed; its queue drains.
        ControlResumed(Resumed) = "persona.control.resumed",
        /// The persona was disabled.
        ControlDisabled(Disabled) = "persona.control.disabled",
        /// Spend was recorded against the budget.
        BudgetRecorded(BudgetRecorded) = "persona.budget.recorded",
        /// Spend was refused by the budget.
        BudgetExhausted(BudgetExhausted) = "persona.budget.exhausted",
        /// Value accounting: a run started.
        ValueRunStarted(ValueEvent) = "persona.value.run_started",
        /// Value accounting: work done deterministically, cost avoided.
        ValueDeterministicExecution(ValueEvent) = "persona.value.deterministic_execution",
        /// Value accounting: the run escalated to a frontier model.
        ValueFrontierEscalation(ValueEvent) = "persona.value.frontier_escalation",
        /// Value accounting: a run completed.
        ValueRunCompleted(ValueEvent) = "persona.value.run_completed",
        /// A repair worker reported its status.
        RepairWorkerStatus(RepairWorkerStatus) = "persona.repair_worker.status",
        /// A checkpoint restore was acknowledged.
        CheckpointRestoreAcked(RestoreAcked) = "persona.checkpoint.restore_acked",
        /// Supervision mirror of a repair-worker report.
        SupervisionRepairWorkerStatus(Supervised<RepairWorkerStatus>) = "persona.supervision.repair_worker_status",
        /// Supervision mirror of a checkpoint acknowledgement.
        SupervisionCheckpoint(Supervised<RestoreAcked>) = "persona.supervision.checkpoint",
        /// A work key entered or left the persona's queue.
        SupervisionQueuePosition(Supervised<QueuePosition>) = "persona.supervision.queue_position",
        /// The receipt of a run attempt.
        SupervisionReceipt(Supervised<ReceiptUpdate>) = "persona.supervision.receipt",
    }
}

impl PersonaEvent {
    /// Reads a stored event of [`PERSONA_TOPIC`] as `(persona, event)`:
    /// `None` for another topic or a kind this vocabulary does not hold.
    pub fn from_stored(event: &StoredEvent) -> Option<Result<(&str, Self), DecodeError>> {
        if event.topic.as_str() != PERSONA_TOPIC {
            return None;
        }
        let persona = event.header("persona").unwrap_or_default();
        Self::decode(&event.kind, &event.payload).map(|decoded| decoded.map(|e| (persona, e)))
    }

    /// The persona's template, as the events that carry it say.
    pub fn template_ref(&self) -> Option<&str> {
        let template_ref = match self {
            Self::ValueRunStarted(value)
            | Self::ValueDeterministicExecution(value)
            | Self::ValueFrontierEscalation(value)
            | Self::ValueRunCompleted(value) => &value.template_ref,
            Self::RepairWorkerStatus(report) => &report.template_ref,
            Self::SupervisionRepairWorkerStatus(report) => &report.update.template_ref,
            Self::CheckpointRestoreAcked(ack) => &ack.template_ref,
            Self::SupervisionCheckpoint(ack) => &ack.update.template_ref,
            Self::SupervisionQueuePosition(position) => &position.update.template_ref,
            Self::SupervisionReceipt(receipt) => &receipt.update.template_ref,
            _ => return None,
        };
        template_ref.as_deref()
    }

    /// Whether this is a value event (`persona.value.*`).
    pub fn is_value(&self) -> bool {
        matches!(
            self,
            Self::ValueRunStarted(_)
                | Self::ValueDeterministicExecution(_)
                | Self::ValueFrontierEscalation(_)
                | Self::ValueRunCompleted(_)
        )
    }

    /// The value event of `body.kind`.
    pub fn value(body: ValueEvent) -> Self {
        match body.kind {
            ValueKind::RunStarted => Self::ValueRunStarted(body),
            ValueKind::DeterministicExecution => Self::ValueDeterministicExecution(body),
            ValueKind::FrontierEscalation => Self::ValueFrontierEscalation(body),
            ValueKind::RunCompleted => Self::ValueRunCompleted(body),
        }
    }
}

/// `persona.trigger.received` and `persona.schedule.fired`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Arrived {
    pub persona: String,
    pub envelope: Envelope,
}

/// Why a trigger was queued rather than run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueReason {
    Paused,
}

/// `persona.trigger.queued`: the work, with the cost it will be admitted
/// with when the queue drains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriggerQueued {
    pub work_key: String,
    pub envelope: Envelope,
    pub cost: RunCost,
    pub reason: QueueReason,
}

/// Why a trigger was refused without a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The persona is disabled (dead-lettered).
    Disabled,
    /// The work key already completed (duplicate).
    AlreadyCompleted,
}

/// `persona.trigger.dead_lettered` and `persona.trigger.duplicate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TriggerRefused {
    pub work_key: String,
    pub envelope: Envelope,
    pub reason: RefusalReason,
}

/// `persona.lease.conflict`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaseConflict {
    /// The live lease that refused the run.
    pub active_lease: Lease,
    pub requested_work_key: String,
    pub at_ms: i64,
}

/// `persona.lease.expired`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaseExpired {
    /// The lapsed lease's id.
    pub id: String,
    pub work_key: String,
    pub expired_at_ms: i64,
}

/// `persona.lease.released`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaseReleased {
    pub id: String,
    pub work_key: String,
    pub released_at_ms: i64,
}

/// The fields every run event carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunRef {
    pub work_key: String,
    pub run_id: String,
    pub entry_workflow: String,
    pub lease_id: String,
}

/// `persona.run.started`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunStarted {
    #[serde(flatten)]
    pub run: RunRef,
    pub started_at_ms: i64,
}

/// `persona.run.completed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunCompleted {
    #[serde(flatten)]
    pub run: RunRef,
    pub completed_at_ms: i64,
}

/// `persona.run.failed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunFailed {
    #[serde(flatten)]
    pub run: RunRef,
    pub failed_at_ms: i64,
    pub error: FailKind,
}

/// `persona.control.paused`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Paused {
    pub paused_at_ms: i64,
    pub policy: super::PausedEventPolicy,
}

/// `persona.control.resumed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Resumed {
    pub resumed_at_ms: i64,
    /// Always `true`: a resume drains the queue.
    pub drain: bool,
}

/// `persona.control.disabled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Disabled {
    pub disabled_at_ms: i64,
}

/// `persona.budget.recorded`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetRecorded {
    pub receipt_id: String,
    pub persona: String,
    pub cost_usd: Usd,
    pub tokens: u64,
    /// The run's lease; `null` for spend recorded outside a run.
    pub lease_id: Option<String>,
}

/// `persona.budget.exhausted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetExhausted {
    pub receipt_id: String,
    /// The limit the spend would break: `run_usd`, `daily_usd`,
    /// `hourly_usd` or `max_tokens`.
    pub reason: BudgetLimit,
    pub attempted_cost_usd: Usd,
    pub attempted_tokens: u64,
    pub persona: String,
}

/// What a value event accounts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    RunStarted,
    DeterministicExecution,
    FrontierEscalation,
    RunCompleted,
}

/// `persona.value.*`: value accounting of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValueEvent {
    pub persona_id: String,
    pub template_ref: Option<String>,
    pub run_id: String,
    pub kind: ValueKind,
    pub paid_cost_usd: Usd,
    pub avoided_cost_usd: Usd,
    pub deterministic_steps: i64,
    pub llm_steps: i64,
    /// The work key, trigger provider and kind, lease id, tokens, any
    /// frontier escalations, and the run cost's own metadata.
    // Kept as canonical text, written once a run: a run's value events
    // and receipts all share it, and read it as a value only on demand.
    #[schemars(with = "Value")]
    pub metadata: crate::log::Payload,
    /// The event time, written as the `time` crate's compact tuple (the form
    /// the modelled runtime's status fold reads), read in either form.
    pub occurred_at: TimeTuple,
}

/// `persona.repair_worker.status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RepairWorkerStatus {
    pub persona_id: String,
    pub template_ref: Option<String>,
    pub repair_worker_id: String,
    pub lifecycle: RepairWorkerLifecycle,
    pub work_key: Option<String>,
    pub lease_id: Option<String>,
    pub scratchpad_url: Option<String>,
    pub last_heartbeat_ms: i64,
    pub occurred_at_ms: i64,
}

/// What a restored checkpoint resumed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResumedFrom {
    /// Always `null`: restores are not tied to a run.
    pub run_id: Option<String>,
    /// The live lease at the restore, if any.
    pub lease_id: Option<String>,
    pub last_run_ms: Option<i64>,
    pub queued_work_keys: Vec<String>,
    /// Always `null`.
    pub note: Option<String>,
}

/// The only action a checkpoint event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointAction {
    RestoreAcked,
}

/// `persona.checkpoint.restore_acked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreAcked {
    pub persona_id: String,
    pub template_ref: Option<String>,
    pub action: CheckpointAction,
    pub checkpoint_id: String,
    pub work_key: Option<String>,
    pub resumed_from: ResumedFrom,
    pub occurred_at_ms: i64,
}

/// `persona.supervision.queue_position`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueuePosition {
    pub persona_id: String,
    pub template_ref: Option<String>,
    pub work_key: String,
    pub queue_depth: i64,
    /// 1-based position of the key in the queue; 0 when it left the queue.
    pub position: i64,
    pub queued_at_ms: i64,
    pub occurred_at_ms: i64,
}

/// `persona.supervision.receipt`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptUpdate {
    pub persona_id: String,
    pub template_ref: Option<String>,
    pub receipt: RunReceipt,
    pub occurred_at_ms: i64,
}

/// Which supervision update an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupervisionKind {
    RepairWorkerStatus,
    Checkpoint,
    QueuePosition,
    Receipt,
}

/// `persona.supervision.*`: an update with its `update_kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Supervised<T> {
    #[serde(flatten)]
    pub update: T,
    pub update_kind: SupervisionKind,
}

/// How one run attempt ended, as its receipt says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Completed,
    /// Queued while the persona is paused.
    Queued,
    /// Refused: the persona is disabled.
    DeadLettered,
    /// Refused by the budget.
    BudgetExhausted,
    /// Refused: the work key already completed.
    Duplicate,
    /// Refused: another run holds a live lease.
    LeaseBusy,
    /// Started and never finished: the lease holds until it expires.
    Crashed,
    Failed,
}

impl ReceiptStatus {
    /// The status as the receipt writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Queued => "queued",
            Self::DeadLettered => "dead_lettered",
            Self::BudgetExhausted => "budget_exhausted",
            Self::Duplicate => "duplicate",
            Self::LeaseBusy => "lease_busy",
            Self::Crashed => "crashed",
            Self::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The receipt of one run attempt (see docs/SCENARIOS.md, "Reference
/// behaviour", for the upstream receipt it models).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunReceipt {
    pub status: ReceiptStatus,
    pub persona: String,
    pub run_id: Option<String>,
    pub work_key: String,
    pub lease: Option<Lease>,
    pub queued: bool,
    pub error: Option<String>,
    pub budget_receipt_id: Option<String>,
    /// Why the run failed, for the supervisor; not part of the logged receipt.
    #[serde(skip)]
    pub failure: Option<FailKind>,
    /// The envelope that was run, so the supervisor can retry it.
    #[serde(skip)]
    pub envelope: Option<Envelope>,
}
