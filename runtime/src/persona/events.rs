//! The events of topic [`PERSONA_TOPIC`], each with header `persona=<name>`:
//! [`PersonaEvent`], one variant per kind, each with its payload struct.
//!
//! The runtime decides with `&self` state and returns these values; the
//! one fold, [`super::PersonaState::apply`], reads them back, and so do run
//! records and the harness's invariant model. Payload field names and JSON
//! types are the log's contract (docs/EVENTS.md lists them, and
//! docs/events.schema.json is generated from these types).

use std::sync::Arc;

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
            | Self::ValueRunCompleted(value) => return value.template_ref.as_deref(),
            Self::RepairWorkerStatus(report) => &report.template_ref,
            Self::SupervisionRepairWorkerStatus(report) => &report.update.template_ref,
            Self::CheckpointRestoreAcked(ack) => &ack.template_ref,
            Self::SupervisionCheckpoint(ack) => &ack.update.template_ref,
            Self::SupervisionQueuePosition(position) => &position.update.template_ref,
            Self::SupervisionReceipt(receipt) => return receipt.update.template_ref.as_deref(),
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
    pub id: Arc<str>,
    pub work_key: Arc<str>,
    pub expired_at_ms: i64,
}

/// `persona.lease.released`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaseReleased {
    pub id: Arc<str>,
    pub work_key: Arc<str>,
    pub released_at_ms: i64,
}

/// The fields every run event carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunRef {
    pub work_key: Arc<str>,
    pub run_id: Arc<str>,
    pub entry_workflow: Arc<str>,
    pub lease_id: Arc<str>,
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
    pub receipt_id: Arc<str>,
    pub persona: Arc<str>,
    pub cost_usd: Usd,
    pub tokens: u64,
    /// The run's lease; `null` for spend recorded outside a run.
    pub lease_id: Option<Arc<str>>,
}

/// `persona.budget.exhausted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetExhausted {
    pub receipt_id: Arc<str>,
    /// The limit the spend would break: `run_usd`, `daily_usd`,
    /// `hourly_usd` or `max_tokens`.
    pub reason: BudgetLimit,
    pub attempted_cost_usd: Usd,
    pub attempted_tokens: u64,
    pub persona: Arc<str>,
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

impl ValueKind {
    /// The kind as the event writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunStarted => "run_started",
            Self::DeterministicExecution => "deterministic_execution",
            Self::FrontierEscalation => "frontier_escalation",
            Self::RunCompleted => "run_completed",
        }
    }
}

/// `persona.value.*`: value accounting of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValueEvent {
    pub persona_id: Arc<str>,
    pub template_ref: Option<Arc<str>>,
    pub run_id: Arc<str>,
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
    pub persona_id: Arc<str>,
    pub template_ref: Option<Arc<str>>,
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

impl SupervisionKind {
    /// The kind as the event's `update_kind` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RepairWorkerStatus => "repair_worker_status",
            Self::Checkpoint => "checkpoint",
            Self::QueuePosition => "queue_position",
            Self::Receipt => "receipt",
        }
    }
}

/// `persona.supervision.*`: an update with its `update_kind`.
// Read in one pass (module `supervised`) rather than by a derived
// `flatten`, which would first copy the whole object into serde's generic
// buffer.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Supervised<T> {
    #[serde(flatten)]
    pub update: T,
    pub update_kind: SupervisionKind,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Supervised<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(supervised::Visitor(std::marker::PhantomData))
    }
}

/// Reading a [`Supervised`] update in one pass: the update's own reader
/// is handed the object's entries with `update_kind` taken out on the way.
mod supervised {
    use std::borrow::Cow;
    use std::marker::PhantomData;

    use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess};
    use serde::Deserialize;

    use super::{Supervised, SupervisionKind};

    const KIND: &str = "update_kind";

    pub(super) struct Visitor<T>(pub(super) PhantomData<T>);

    impl<'de, T: Deserialize<'de>> de::Visitor<'de> for Visitor<T> {
        type Value = Supervised<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // As the derived reader said it.
            f.write_str("struct Supervised")
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Supervised<T>, A::Error> {
            let mut kind = None;
            let entries = WithoutKind {
                map,
                kind: &mut kind,
            };
            let update = T::deserialize(de::value::MapAccessDeserializer::new(entries))?;
            let update_kind = kind.ok_or_else(|| de::Error::missing_field(KIND))?;
            Ok(Supervised {
                update,
                update_kind,
            })
        }
    }

    /// The entries of a map but `update_kind`, whose value is kept aside.
    struct WithoutKind<'k, A> {
        map: A,
        kind: &'k mut Option<SupervisionKind>,
    }

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutKind<'_, A> {
        type Error = A::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, A::Error> {
            while let Some(Key(name)) = self.map.next_key::<Key<'de>>()? {
                if name != KIND {
                    return seed.deserialize(name.into_deserializer()).map(Some);
                }
                if self.kind.is_some() {
                    return Err(de::Error::duplicate_field(KIND));
                }
                *self.kind = Some(self.map.next_value()?);
            }
            Ok(None)
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(
            &mut self,
            seed: V,
        ) -> Result<V::Value, A::Error> {
            self.map.next_value_seed(seed)
        }
    }

    /// A key, borrowed from the input when it can be.
    struct Key<'de>(Cow<'de, str>);

    impl<'de> Deserialize<'de> for Key<'de> {
        fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct KeyVisitor;
            impl<'de> de::Visitor<'de> for KeyVisitor {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a field name")
                }
                fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(name)))
                }
                fn visit_str<E: de::Error>(self, name: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(name.to_owned())))
                }
                fn visit_string<E: de::Error>(self, name: String) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(name)))
                }
            }
            deserializer.deserialize_str(KeyVisitor)
        }
    }
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
    pub persona: Arc<str>,
    pub run_id: Option<Arc<str>>,
    pub work_key: Arc<str>,
    pub lease: Option<Lease>,
    pub queued: bool,
    pub error: Option<String>,
    pub budget_receipt_id: Option<Arc<str>>,
    /// Why the run failed, for the supervisor; not part of the logged receipt.
    #[serde(skip)]
    pub failure: Option<FailKind>,
    /// The envelope that was run, so the supervisor can retry it.
    // Boxed: a receipt travels inside an event, and every event of a run
    // is as large as the largest kind.
    #[serde(skip)]
    pub envelope: Option<Box<Envelope>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names the payload writers use are the names serde writes.
    #[test]
    fn enum_names_are_their_serde_names() {
        fn check<T: Serialize + Copy>(values: &[T], name: fn(T) -> &'static str) {
            for &value in values {
                let written = serde_json::to_value(value).unwrap();
                assert_eq!(written.as_str(), Some(name(value)));
            }
        }
        use ReceiptStatus as R;
        use SupervisionKind as S;
        use ValueKind as V;
        let kinds = [
            V::RunStarted,
            V::DeterministicExecution,
            V::FrontierEscalation,
            V::RunCompleted,
        ];
        check(&kinds, V::as_str);
        let kinds = [
            S::RepairWorkerStatus,
            S::Checkpoint,
            S::QueuePosition,
            S::Receipt,
        ];
        check(&kinds, S::as_str);
        let statuses = [
            R::Completed,
            R::Queued,
            R::DeadLettered,
            R::BudgetExhausted,
            R::Duplicate,
            R::LeaseBusy,
            R::Crashed,
            R::Failed,
        ];
        check(&statuses, R::as_str);
    }

    /// What the derived reader with `flatten` made of the same text.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Flattened<T> {
        #[serde(flatten)]
        update: T,
        update_kind: SupervisionKind,
    }

    /// The one-pass reader reads what `flatten` read, and refuses what it
    /// refused with the same message, wherever `update_kind` stands.
    #[test]
    fn supervised_updates_read_as_flatten_read_them() {
        let position = r#""persona_id":"p","template_ref":null,"work_key":"k\"1","queue_depth":2,"position":1,"queued_at_ms":5,"occurred_at_ms":6"#;
        let kind = r#""update_kind":"queue_position""#;
        let texts = [
            format!("{{{position},{kind}}}"),
            format!("{{{kind},{position}}}"),
            format!(
                r#"{{"persona_id":"p",{kind},"template_ref":"t@1","work_key":"k","queue_depth":2,"position":1,"queued_at_ms":5,"occurred_at_ms":6}}"#
            ),
            format!(r#"{{{position},{kind},"extra":[1,{{"a":null}}]}}"#),
            format!("{{{position}}}"),
            format!("{{{position},{kind},{kind}}}"),
            format!(r#"{{{position},"update_kind":"nonsense"}}"#),
            format!(r#"{{{position},"update_kind":7}}"#),
            format!(r#"{{"persona_id":"p",{kind}}}"#),
            format!(r#"{{"persona_id":5,{kind}}}"#),
            "[]".to_string(),
            "null".to_string(),
            r#""text""#.to_string(),
        ];
        for text in &texts {
            let ours = serde_json::from_str::<Supervised<QueuePosition>>(text)
                .map(|s| (s.update, s.update_kind))
                .map_err(|e| e.to_string());
            let derived = serde_json::from_str::<Flattened<QueuePosition>>(text)
                .map(|s| (s.update, s.update_kind))
                .map_err(|e| e.to_string());
            match (&ours, &derived) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => {
                    let message = |e: &str| e.split(" at line ").next().unwrap().to_string();
                    let derived = message(b).replace("struct Flattened", "struct Supervised");
                    assert_eq!(message(a), derived, "{text}");
                }
                _ => panic!("{text}: ours {ours:?}, derived {derived:?}"),
            }
        }
    }
}
