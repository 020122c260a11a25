//! External events: the operations a scenario step asks of the runtime.
//!
//! These types are the bodies of scenario steps (their field names are the
//! scenario format's) and the payloads of a capture bundle's events, so a
//! bundle can be re-driven without the scenario file.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};

use crate::duration::Millis;
use crate::single_entry::one_entry_enum;

/// One external event. It reads and writes as a map with exactly one key,
/// the step kind: `{trigger: {...}}`, `{pause: name}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Trigger(TriggerOp),
    Tick(TickOp),
    Pause(String),
    Resume(String),
    Disable(String),
    Spend(SpendOp),
    Pump(PumpOp),
    RepairWorker(RepairWorkerOp),
    RestoreCheckpoint(RestoreCheckpointOp),
    Process(crate::process::ProcessOp),
    Audit(AuditOp),
    Handoff(HandoffOp),
    AckHandoff(AckHandoffOp),
    Finalize(FinalizeOp),
    Fault(FaultOp),
    Restart(RestartOp),
}

/// Calls `$mac!` with `$args` and then the table of step kinds, in the
/// order the format lists them: `Variant(Body) = "name",`.
macro_rules! op_variants {
    ($mac:ident { $($args:tt)* }) => {
        $mac! {
            $($args)*
            Trigger(TriggerOp) = "trigger",
            Tick(TickOp) = "tick",
            Pause(String) = "pause",
            Resume(String) = "resume",
            Disable(String) = "disable",
            Spend(SpendOp) = "spend",
            Pump(PumpOp) = "pump",
            RepairWorker(RepairWorkerOp) = "repair_worker",
            RestoreCheckpoint(RestoreCheckpointOp) = "restore_checkpoint",
            Process(crate::process::ProcessOp) = "process",
            Audit(AuditOp) = "audit",
            Handoff(HandoffOp) = "handoff",
            AckHandoff(AckHandoffOp) = "ack_handoff",
            Finalize(FinalizeOp) = "finalize",
            Fault(FaultOp) = "fault",
            Restart(RestartOp) = "restart",
        }
    };
}

op_variants!(one_entry_enum { Op, OP_KINDS, expected_kinds, "step kind"; });

macro_rules! op_schema {
    ($($variant:ident($ty:ty) = $name:literal,)*) => {
        impl Op {
            /// The JSON Schema of each step kind's body, in the order of [`OP_KINDS`].
            pub fn body_schemas(generator: &mut SchemaGenerator) -> Vec<(&'static str, Schema)> {
                vec![$(($name, generator.subschema_for::<$ty>()),)*]
            }
        }
    };
}

op_variants!(op_schema {});

impl JsonSchema for Op {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Op".into()
    }

    /// A map with exactly one key, the step kind, whose value is that kind's body.
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let variants: Vec<serde_json::Value> = Op::body_schemas(generator)
            .into_iter()
            .map(|(kind, body)| {
                serde_json::json!({
                    "type": "object",
                    "properties": { kind: body },
                    "required": [kind],
                    "additionalProperties": false,
                })
            })
            .collect();
        json_schema!({
            "description": "One operation: a map with exactly one step kind.",
            "oneOf": variants,
        })
    }
}

impl Op {
    /// The persona this operation names, if it names one.
    pub fn persona(&self) -> Option<&str> {
        match self {
            Self::Trigger(op) => Some(&op.persona),
            Self::Tick(op) => Some(&op.persona),
            Self::Pause(name) | Self::Resume(name) | Self::Disable(name) => Some(name),
            Self::Spend(op) => Some(&op.persona),
            Self::RepairWorker(op) => Some(&op.persona),
            Self::RestoreCheckpoint(op) => Some(&op.persona),
            _ => None,
        }
    }
}

/// What a run spends, as the modelled runtime's `PersonaRunCost`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a cost such as `{usd: 0.01, tokens: 10}`"
)]
pub struct Cost {
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub usd: f64,
    #[serde(default)]
    pub tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    #[schemars(range(min = 0))]
    pub avoided_usd: f64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    #[schemars(range(min = 0))]
    pub deterministic_steps: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    #[schemars(range(min = 0))]
    pub llm_steps: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    #[schemars(range(min = 0))]
    pub frontier_escalations: i64,
    /// Merged into the run's value-event metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": "\\S" }))]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

/// How a run ends: `completed`, `crash`, `{fail: KIND}` or
/// `{attempts: [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    /// The run completes and spends its cost.
    #[default]
    Completed,
    /// The holder dies after `persona.run.started`; the lease stays until its TTL.
    Crash,
    /// The run fails with this kind.
    Fail(FailKind),
    /// One outcome per attempt; attempts past the end of the list complete.
    Attempts(Vec<Attempt>),
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Completed => serializer.serialize_str("completed"),
            Self::Crash => serializer.serialize_str("crash"),
            Self::Fail(kind) => crate::single_entry::serialize(serializer, "fail", kind),
            Self::Attempts(list) => crate::single_entry::serialize(serializer, "attempts", list),
        }
    }
}

impl crate::single_entry::StringOrEntry for Outcome {
    const NOUN: &'static str = "outcome";
    const BESIDE: &'static str = "the outcome";
    const EXPECTED: &'static str =
        "expected `completed`, `crash`, `{fail: KIND}` or `{attempts: [...]}`";

    fn from_str(value: &str) -> Option<Self> {
        match value {
            "completed" => Some(Self::Completed),
            "crash" => Some(Self::Crash),
            _ => None,
        }
    }

    fn from_entry<'de, A: serde::de::MapAccess<'de>>(
        key: &str,
        map: &mut A,
    ) -> Result<Option<Self>, A::Error> {
        Ok(match key {
            "fail" => Some(Self::Fail(map.next_value()?)),
            "attempts" => Some(Self::Attempts(map.next_value()?)),
            _ => None,
        })
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::single_entry::deserialize(deserializer)
    }
}

impl JsonSchema for Outcome {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Outcome".into()
    }

    /// `completed`, `crash`, `{fail: KIND}` or `{attempts: [...]}`, as the
    /// hand-written serde impls read them.
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let fail = generator.subschema_for::<FailKind>();
        let attempt = generator.subschema_for::<Attempt>();
        json_schema!({
            "description": "How a run ends: `completed` (default), `crash`, `{fail: KIND}` or `{attempts: [KIND or completed, ...]}`.",
            "oneOf": [
                { "type": "string", "enum": ["completed", "crash"] },
                {
                    "type": "object",
                    "properties": { "fail": fail },
                    "required": ["fail"],
                    "additionalProperties": false,
                },
                {
                    "type": "object",
                    "properties": { "attempts": { "type": "array", "items": attempt } },
                    "required": ["attempts"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

impl Outcome {
    /// The outcome of attempt `index` (0-based).
    pub fn attempt(&self, index: usize) -> AttemptOutcome {
        match self {
            Self::Completed => AttemptOutcome::Completed,
            Self::Crash => AttemptOutcome::Crash,
            Self::Fail(kind) => AttemptOutcome::Fail(*kind),
            Self::Attempts(list) => match list.get(index) {
                None | Some(Attempt::Completed) => AttemptOutcome::Completed,
                Some(Attempt::Crash) => AttemptOutcome::Crash,
                Some(Attempt::Fail(kind)) => AttemptOutcome::Fail(*kind),
            },
        }
    }
}

/// How one attempt ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Completed,
    Crash,
    Fail(FailKind),
}

/// One entry of `attempts`: `completed`, `crash` or a failure kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Completed,
    Crash,
    Fail(FailKind),
}

impl Serialize for Attempt {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Completed => serializer.serialize_str("completed"),
            Self::Crash => serializer.serialize_str("crash"),
            Self::Fail(kind) => serializer.serialize_str(kind.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for Attempt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "completed" => Ok(Self::Completed),
            "crash" => Ok(Self::Crash),
            other => FailKind::from_name(other).map(Self::Fail).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown attempt outcome `{other}`, expected `completed`, `crash` or one of {}",
                    FailKind::expected_list()
                ))
            }),
        }
    }
}

impl JsonSchema for Attempt {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Attempt".into()
    }

    /// A plain string: `completed`, `crash` or a failure kind.
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        let mut names = vec!["completed", "crash"];
        names.extend(FailKind::ALL.iter().map(|kind| kind.as_str()));
        json_schema!({
            "description": "One attempt's outcome: `completed`, `crash` or a failure kind.",
            "type": "string",
            "enum": names,
        })
    }
}

/// Why a run failed.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    NetworkTimeout,
    AdapterUnavailable,
    RuntimeError,
    TimedOut,
    SemanticError,
    ValidationFailed,
    DeadlineExceeded,
    Cancelled,
}

impl FailKind {
    pub const ALL: [FailKind; 8] = [
        Self::NetworkTimeout,
        Self::AdapterUnavailable,
        Self::RuntimeError,
        Self::TimedOut,
        Self::SemanticError,
        Self::ValidationFailed,
        Self::DeadlineExceeded,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NetworkTimeout => "network_timeout",
            Self::AdapterUnavailable => "adapter_unavailable",
            Self::RuntimeError => "runtime_error",
            Self::TimedOut => "timed_out",
            Self::SemanticError => "semantic_error",
            Self::ValidationFailed => "validation_failed",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Mechanical failures are retried by the supervisor; semantic ones never.
    pub fn is_mechanical(self) -> bool {
        matches!(
            self,
            Self::NetworkTimeout | Self::AdapterUnavailable | Self::RuntimeError | Self::TimedOut
        )
    }

    fn expected_list() -> String {
        Self::ALL
            .iter()
            .map(|kind| format!("`{}`", kind.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for FailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider event addressed to a persona.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a trigger such as `{persona: NAME, provider: github, kind: pull_request}`"
)]
pub struct TriggerOp {
    pub persona: String,
    pub provider: String,
    pub kind: String,
    /// Scalar values are accepted and kept as their text (`number: 462` is `"462"`).
    #[schemars(schema_with = "TriggerOp::metadata_schema")]
    #[serde(
        default,
        deserialize_with = "scalar_map",
        skip_serializing_if = "no_metadata"
    )]
    // Shared with the envelope the runtime makes of the trigger.
    pub metadata: Arc<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "is_zero_cost")]
    pub cost: Cost,
    #[serde(default, skip_serializing_if = "is_completed")]
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "is_zero_millis")]
    pub duration: Millis,
}

impl TriggerOp {
    /// The schema of `metadata`: a map whose values may be any scalar, since
    /// `scalar_map` keeps numbers and booleans as their text.
    fn metadata_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Provider metadata; scalar values are kept as their text.",
            "type": "object",
            "propertyNames": { "pattern": "\\S" },
            "additionalProperties": { "type": ["string", "number", "integer", "boolean"] },
        })
    }
}

/// Fires a persona's first schedule now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a tick such as `{persona: NAME}`")]
pub struct TickOp {
    pub persona: String,
    #[serde(default, skip_serializing_if = "is_zero_cost")]
    pub cost: Cost,
    #[serde(default, skip_serializing_if = "is_completed")]
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "is_zero_millis")]
    pub duration: Millis,
}

/// Whether a cost is the default (spends nothing): such a cost is left out
/// when a step is written back as YAML.
pub fn is_zero_cost(cost: &Cost) -> bool {
    *cost == Cost::default()
}

/// Whether an outcome is the default `completed`.
pub fn is_completed(outcome: &Outcome) -> bool {
    *outcome == Outcome::Completed
}

/// Whether a duration is the default `0s`.
pub fn is_zero_millis(value: &Millis) -> bool {
    value.0 == 0
}

/// Spend recorded outside a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a spend such as `{persona: NAME, usd: 0.01, tokens: 3}`"
)]
pub struct SpendOp {
    pub persona: String,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub usd: f64,
    #[serde(default)]
    pub tokens: u64,
}

/// A supervisor pump: run the earliest due deferred episode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "an empty map `{}`")]
pub struct PumpOp {}

/// The lifecycle of a repair worker.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RepairWorkerLifecycle {
    Pending,
    Running,
    Verifying,
    Pushing,
    Succeeded,
    Failed,
    Cancelled,
}

impl RepairWorkerLifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Verifying => "verifying",
            Self::Pushing => "pushing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A repair worker's status report; its heartbeat is the step's time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a repair-worker report such as `{persona: NAME, id: ID, lifecycle: running}`"
)]
pub struct RepairWorkerOp {
    pub persona: String,
    pub id: String,
    pub lifecycle: RepairWorkerLifecycle,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratchpad_url: Option<String>,
}

/// A checkpoint restore to acknowledge (once per checkpoint id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a checkpoint restore such as `{persona: NAME, checkpoint_id: ID}`"
)]
pub struct RestoreCheckpointOp {
    pub persona: String,
    pub checkpoint_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_key: Option<String>,
}

/// A pipeline lifecycle audit entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an audit entry such as `{kind: KIND, payload: {...}}`"
)]
pub struct AuditOp {
    pub kind: String,
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// A partial handoff to another stage or persona.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a handoff such as `{to: STAGE, payload: {...}}`"
)]
pub struct HandoffOp {
    pub to: String,
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// The acknowledgement of a partial handoff.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a handoff acknowledgement such as `{envelope: ID, decision: accepted}`"
)]
pub struct AckHandoffOp {
    pub envelope: String,
    /// Any JSON value, as the modelled pipeline takes it.
    pub decision: serde_json::Value,
}

/// The pipeline's finalised disposition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a disposition such as `{disposition: completed}`"
)]
pub struct FinalizeOp {
    /// Any JSON value, as the modelled pipeline takes it.
    pub disposition: serde_json::Value,
}

/// A storage fault: the next `count` operations' appends fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a storage fault such as `{append: fail, count: 1}`"
)]
pub struct FaultOp {
    pub append: FaultMode,
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub count: u64,
}

fn one() -> u64 {
    1
}

/// What a storage fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    Fail,
}

/// Drop all in-memory state and reopen from the durable log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "`{}` or `{torn_tail_bytes: N}`")]
pub struct RestartOp {
    /// Bytes cut off the end of the log file before reopening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_tail_bytes: Option<u64>,
}

/// Whether a trigger has no metadata, which it then does not write.
fn no_metadata(metadata: &Arc<BTreeMap<String, String>>) -> bool {
    metadata.is_empty()
}

/// Deserializes a map whose values may be any YAML/JSON scalar, keeping each
/// as its text.
fn scalar_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<BTreeMap<String, String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a string, number or boolean")]
    enum Scalar {
        Text(String),
        Int(i64),
        UInt(u64),
        Float(f64),
        Bool(bool),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(deserializer)?;
    Ok(Arc::new(
        raw.into_iter()
            .map(|(key, value)| {
                let text = match value {
                    Scalar::Text(text) => text,
                    Scalar::Int(n) => n.to_string(),
                    Scalar::UInt(n) => n.to_string(),
                    Scalar::Float(n) => n.to_string(),
                    Scalar::Bool(b) => b.to_string(),
                };
                (key, text)
            })
            .collect(),
    ))
}
