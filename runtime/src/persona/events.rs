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
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub id: Arc<str>,
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub work_key: Arc<str>,
    pub expired_at_ms: i64,
}

/// `persona.lease.released`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaseReleased {
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub id: Arc<str>,
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub work_key: Arc<str>,
    pub released_at_ms: i64,
}

/// The fields every run event carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunRef {
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub work_key: Arc<str>,
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub run_id: Arc<str>,
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub entry_workflow: Arc<str>,
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub lease_id: Arc<str>,
}

/// `persona.run.started`.
// Read in one pass (module `one_pass`), as [`Supervised`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RunStarted {
    #[serde(flatten)]
    pub run: RunRef,
    pub started_at_ms: i64,
}

/// `persona.run.completed`.
// Read in one pass (module `one_pass`), as [`Supervised`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RunCompleted {
    #[serde(flatten)]
    pub run: RunRef,
    pub completed_at_ms: i64,
}

/// `persona.run.failed`.
// Read in one pass (module `one_pass`), as [`Supervised`] is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
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
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub receipt_id: Arc<str>,
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub persona: Arc<str>,
    pub cost_usd: Usd,
    pub tokens: u64,
    /// The run's lease; `null` for spend recorded outside a run.
    pub lease_id: Option<Arc<str>>,
}

/// `persona.budget.exhausted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetExhausted {
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub receipt_id: Arc<str>,
    /// The limit the spend would break: `run_usd`, `daily_usd`,
    /// `hourly_usd` or `max_tokens`.
    pub reason: BudgetLimit,
    pub attempted_cost_usd: Usd,
    pub attempted_tokens: u64,
    #[serde(deserialize_with = "crate::event::shared_text")]
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
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub persona_id: Arc<str>,
    pub template_ref: Option<Arc<str>>,
    #[serde(deserialize_with = "crate::event::shared_text")]
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
    #[serde(deserialize_with = "crate::event::shared_text")]
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
// Read in one pass (module `one_pass`) rather than by a derived
// `flatten`, which would first copy the whole object into serde's generic
// buffer.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Supervised<T> {
    #[serde(flatten)]
    pub update: T,
    pub update_kind: SupervisionKind,
}

impl<'de, T: Deserialize<'de>> one_pass::Flat<'de> for Supervised<T> {
    const NAME: &'static str = "struct Supervised";

    fn read<A: serde::de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut update_kind = None;
        let update = one_pass::inner(map, ("update_kind", &mut update_kind));
        let (update, update_kind) = update.then(|| one_pass::taken(update_kind, "update_kind"))?;
        Ok(Self {
            update,
            update_kind,
        })
    }
}

/// `Flat` for a run event of [`RunRef`] and one time field.
macro_rules! run_at {
    ($($event:ident . $field:ident),*) => {$(
        impl<'de> one_pass::Flat<'de> for $event {
            const NAME: &'static str = concat!("struct ", stringify!($event));

            fn read<A: serde::de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
                let mut at = None;
                let run = one_pass::inner(map, (stringify!($field), &mut at));
                let (run, $field) = run.then(|| one_pass::taken(at, stringify!($field)))?;
                Ok(Self { run, $field })
            }
        }
    )*};
}

run_at!(RunStarted.started_at_ms, RunCompleted.completed_at_ms);

impl<'de> one_pass::Flat<'de> for RunFailed {
    const NAME: &'static str = "struct RunFailed";

    fn read<A: serde::de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let (mut at, mut error) = (None, None);
        let mut ended = false;
        let without_error = one_pass::Without {
            map,
            field: ("error", &mut error),
            ended: &mut ended,
        };
        let run = one_pass::inner(without_error, ("failed_at_ms", &mut at));
        let (run, (failed_at_ms, error)) = run.then(|| {
            let at = one_pass::taken(at, "failed_at_ms")?;
            Ok((at, one_pass::taken(error, "error")?))
        })?;
        Ok(Self {
            run,
            failed_at_ms,
            error,
        })
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Supervised<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_pass::read(deserializer)
    }
}

/// `Deserialize` through each type's one-pass reader.
macro_rules! read_in_one_pass {
    ($($event:ident),*) => {$(
        impl<'de> Deserialize<'de> for $event {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                one_pass::read(deserializer)
            }
        }
    )*};
}

read_in_one_pass!(RunStarted, RunCompleted, RunFailed);

/// Reading in one pass a struct that flattens another (a supervision
/// update, a run event's [`RunRef`]): the inner struct's own reader is
/// handed the object's entries with the outer struct's fields taken out on
/// the way. A derived `flatten` would first copy the whole object into
/// serde's generic buffer, and read the inner struct from there.
mod one_pass {
    use std::borrow::Cow;

    use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess};
    use serde::Deserialize;

    /// A struct read in one pass.
    pub(super) trait Flat<'de>: Sized {
        /// What the derived reader said it expected.
        const NAME: &'static str;

        fn read<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
    }

    /// Reads a `T` through its [`Flat`] reader.
    pub(super) fn read<'de, D: de::Deserializer<'de>, T: Flat<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }

    struct Visitor<T>(std::marker::PhantomData<T>);

    impl<'de, T: Flat<'de>> de::Visitor<'de> for Visitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(T::NAME)
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::read(map)
        }
    }

    /// The inner struct, read from the entries of `map` but `field`.
    pub(super) fn inner<'de, T: Deserialize<'de>, A: MapAccess<'de>, F: Deserialize<'de>>(
        map: A,
        field: (&'static str, &mut Option<F>),
    ) -> Inner<T, A::Error> {
        let mut ended = false;
        let entries = Without {
            map,
            field,
            ended: &mut ended,
        };
        let value = T::deserialize(de::value::MapAccessDeserializer::new(entries));
        Inner { value, ended }
    }

    /// The inner struct as read, and whether its reader saw the whole
    /// object.
    pub(super) struct Inner<T, E> {
        value: Result<T, E>,
        ended: bool,
    }

    impl<T, E> Inner<T, E> {
        /// The inner struct and the outer fields (`outer` takes them), or
        /// the first error in the order the derived reader reports them:
        /// an error found reading an entry first, then a missing outer
        /// field, then what the inner struct found wrong once the whole
        /// object was read (a missing field of its own).
        pub(super) fn then<U>(self, outer: impl FnOnce() -> Result<U, E>) -> Result<(T, U), E> {
            if self.ended {
                let outer = outer()?;
                Ok((self.value?, outer))
            } else {
                let value = self.value?;
                Ok((value, outer()?))
            }
        }
    }

    /// The value of an outer field, which must have been there.
    pub(super) fn taken<F, E: de::Error>(value: Option<F>, name: &'static str) -> Result<F, E> {
        value.ok_or_else(|| de::Error::missing_field(name))
    }

    /// The entries of a map but the field named `field.0`, whose value is
    /// kept aside in `field.1`; `ended` is set once the map has no more.
    pub(super) struct Without<'k, A, F> {
        pub(super) map: A,
        pub(super) field: (&'static str, &'k mut Option<F>),
        pub(super) ended: &'k mut bool,
    }

    impl<'de, A: MapAccess<'de>, F: Deserialize<'de>> MapAccess<'de> for Without<'_, A, F> {
        type Error = A::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, A::Error> {
            let (name, value) = &mut self.field;
            while let Some(Key(key)) = self.map.next_key::<Key<'de>>()? {
                if key != *name {
                    return seed.deserialize(key.into_deserializer()).map(Some);
                }
                if value.is_some() {
                    return Err(de::Error::duplicate_field(name));
                }
                **value = Some(self.map.next_value()?);
            }
            *self.ended = true;
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
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub persona: Arc<str>,
    pub run_id: Option<Arc<str>>,
    #[serde(deserialize_with = "crate::event::shared_text")]
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
            same_as_derived(
                text,
                |s: Supervised<QueuePosition>| (s.update, s.update_kind),
                |s: Flattened<QueuePosition>| (s.update, s.update_kind),
                "Supervised",
            );
        }
    }

    /// `text` reads through the one-pass reader (`Ours`) as through the
    /// derived one with `flatten` (`Derived`, whose name in its messages
    /// stands for `name`): the same value, or an error with the same
    /// message but for where it was found.
    fn same_as_derived<Ours, Derived, T>(
        text: &str,
        ours: impl Fn(Ours) -> T,
        derived: impl Fn(Derived) -> T,
        name: &str,
    ) where
        Ours: serde::de::DeserializeOwned,
        Derived: serde::de::DeserializeOwned,
        T: PartialEq + std::fmt::Debug,
    {
        let read = serde_json::from_str::<Ours>(text)
            .map(ours)
            .map_err(|e| e.to_string());
        let expected = serde_json::from_str::<Derived>(text)
            .map(derived)
            .map_err(|e| e.to_string());
        match (&read, &expected) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Err(a), Err(b)) => {
                let message = |e: &str| e.split(" at line ").next().unwrap().to_string();
                let path = std::any::type_name::<Derived>();
                let path = path.split('<').next().unwrap();
                let derived_name = path.rsplit("::").next().unwrap();
                let expected = message(b)
                    .replace(&format!("struct {derived_name}"), &format!("struct {name}"));
                assert_eq!(message(a), expected, "{text}");
            }
            _ => panic!("{text}: ours {read:?}, derived {expected:?}"),
        }
    }

    /// The run events as the derived readers with `flatten` read them.
    #[derive(Debug, PartialEq, Deserialize)]
    struct DerivedStarted {
        #[serde(flatten)]
        run: RunRef,
        started_at_ms: i64,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct DerivedCompleted {
        #[serde(flatten)]
        run: RunRef,
        completed_at_ms: i64,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct DerivedFailed {
        #[serde(flatten)]
        run: RunRef,
        failed_at_ms: i64,
        error: FailKind,
    }

    /// Objects of a run event's fields and `own`, the event's own, in
    /// every order, with extra fields, repeats and faults.
    fn run_event_texts(own: &str) -> Vec<String> {
        let run = r#""work_key":"k\"1","run_id":"r","entry_workflow":"wf","lease_id":"l""#;
        vec![
            format!("{{{run},{own}}}"),
            format!("{{{own},{run}}}"),
            format!(
                r#"{{"work_key":"k",{own},"run_id":"r","entry_workflow":"wf","lease_id":"l"}}"#
            ),
            format!(r#"{{{run},{own},"extra":[1,{{"a":null}}]}}"#),
            format!("{{{run}}}"),
            format!("{{{own}}}"),
            format!("{{{run},{own},{own}}}"),
            format!(r#"{{{run},"work_key":"again",{own}}}"#),
            format!(r#"{{"work_key":5,"run_id":"r","entry_workflow":"wf","lease_id":"l",{own}}}"#),
            "{}".to_string(),
            "[]".to_string(),
            "null".to_string(),
            r#""text""#.to_string(),
        ]
    }

    /// Each of [`run_event_texts`] of `own` reads through the one-pass
    /// reader as through the derived one; but a text with a fault in the
    /// run's fields and another in the event's own (`own_fault`: a bad or
    /// missing value) is only refused by both, each reporting one fault or
    /// the other (the derived reader reads the run's fields last).
    fn run_event_reads_as_derived<Ours, Derived, T>(
        own: &str,
        own_fault: bool,
        ours: fn(Ours) -> T,
        derived: fn(Derived) -> T,
        name: &str,
    ) where
        Ours: serde::de::DeserializeOwned + std::fmt::Debug,
        Derived: serde::de::DeserializeOwned + std::fmt::Debug,
        T: PartialEq + std::fmt::Debug,
    {
        for text in &run_event_texts(own) {
            let run_fault = text.contains("again") || text.contains(":5,\"run_id");
            if own_fault && run_fault {
                let read = serde_json::from_str::<Ours>(text);
                let expected = serde_json::from_str::<Derived>(text);
                assert!(read.is_err() && expected.is_err(), "{text}");
            } else {
                same_as_derived(text, ours, derived, name);
            }
        }
    }

    /// The run events' one-pass readers read what `flatten` read, and
    /// refuse what it refused with the same message, wherever their own
    /// fields stand.
    #[test]
    fn run_events_read_as_flatten_read_them() {
        let started = |e: RunStarted| (e.run, e.started_at_ms);
        let derived_started = |e: DerivedStarted| (e.run, e.started_at_ms);
        for (own, fault) in [
            (r#""started_at_ms":5"#, false),
            (r#""started_at_ms":"5""#, true),
        ] {
            run_event_reads_as_derived(own, fault, started, derived_started, "RunStarted");
        }
        run_event_reads_as_derived(
            r#""completed_at_ms":-1"#,
            false,
            |e: RunCompleted| (e.run, e.completed_at_ms),
            |e: DerivedCompleted| (e.run, e.completed_at_ms),
            "RunCompleted",
        );
        for own in [
            r#""failed_at_ms":5,"error":"runtime_error""#,
            r#""error":"runtime_error","failed_at_ms":5"#,
            r#""failed_at_ms":5"#,
            r#""error":"runtime_error""#,
            r#""error":"nonsense","failed_at_ms":5"#,
        ] {
            let own_fault = own.contains("nonsense") || !own.contains(',');
            run_event_reads_as_derived(
                own,
                own_fault,
                |e: RunFailed| (e.run, e.failed_at_ms, e.error),
                |e: DerivedFailed| (e.run, e.failed_at_ms, e.error),
                "RunFailed",
            );
        }
    }
}
