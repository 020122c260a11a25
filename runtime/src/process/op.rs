//! The `process:` scenario step: one registry operation per step, written as
//! a map with exactly one key, the operation (`{claim: {id: p1, owner: w1}}`).
//!
//! serde_yaml 0.9 reads externally tagged enums only from `!tags`, so the
//! single-key map is read and written by hand, through `single_entry` as `Op` is.

use serde::{Deserialize, Deserializer, Serialize};

use super::record::{ProcessExecutionEnvSpec, ProcessInput, RecoveryDisposition};
use crate::duration::Millis;

/// The default lease TTL of a claim, as for persona leases.
pub const DEFAULT_PROCESS_LEASE_TTL: Millis = Millis(300_000);

/// One process registry operation.
#[derive(Clone, Debug, PartialEq)]
pub enum ProcessOp {
    Start(StartOp),
    Claim(ClaimOp),
    Heartbeat(HeartbeatOp),
    Wait(WaitOp),
    Signal(SignalOp),
    Complete(CompleteOp),
    Fail(FailOp),
    Cancel(CancelOp),
    Abandon(AbandonOp),
    /// The raw filter record; it is decoded when the step runs, so that a
    /// scenario can expect the modelled runtime's messages for a bad filter.
    List(serde_json::Value),
}

crate::single_entry::one_entry_enum! {
    ProcessOp, PROCESS_OP_KINDS, expected_process_ops, "process operation";
    Start(StartOp) = "start",
    Claim(ClaimOp) = "claim",
    Heartbeat(HeartbeatOp) = "heartbeat",
    Wait(WaitOp) = "wait",
    Signal(SignalOp) = "signal",
    Complete(CompleteOp) = "complete",
    Fail(FailOp) = "fail",
    Cancel(CancelOp) = "cancel",
    Abandon(AbandonOp) = "abandon",
    List(serde_json::Value) = "list",
}

impl ProcessOp {
    /// The process this operation names; a listing or a start without an id
    /// names none.
    pub fn process_id(&self) -> Option<&str> {
        match self {
            Self::Start(op) => op.id.as_deref(),
            Self::Claim(ClaimOp { id, .. })
            | Self::Heartbeat(HeartbeatOp { id, .. })
            | Self::Wait(WaitOp { id, .. })
            | Self::Signal(SignalOp { id, .. })
            | Self::Complete(CompleteOp { id, .. })
            | Self::Fail(FailOp { id, .. })
            | Self::Cancel(CancelOp { id, .. })
            | Self::Abandon(AbandonOp { id, .. }) => Some(id),
            Self::List(_) => None,
        }
    }
}

/// Registers a process. Without `id`, the id is `process_<uuid>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartOp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub input: ProcessInput,
    pub recovery: RecoveryDisposition,
    /// The identity's definition, matched by the `definition` list filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
    /// The session that started the process; the host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The execution environment; its hash becomes the record's `env_ref`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<ProcessExecutionEnvSpec>,
}

/// Claims a process's lease for `owner` for `ttl` (default 5m).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimOp {
    pub id: String,
    pub owner: String,
    #[serde(default = "default_ttl", skip_serializing_if = "is_default_ttl")]
    pub ttl: Millis,
}

fn default_ttl() -> Millis {
    DEFAULT_PROCESS_LEASE_TTL
}

fn is_default_ttl(ttl: &Millis) -> bool {
    *ttl == DEFAULT_PROCESS_LEASE_TTL
}

/// Extends a live lease to now + `ttl` (default: the TTL it was claimed with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatOp {
    pub id: String,
    pub lease_token: LeaseTokenRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Millis>,
}

/// The lease holder parks the process until `signal` arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitOp {
    pub id: String,
    pub lease_token: LeaseTokenRef,
    pub signal: String,
}

/// Delivers signal `name` to a process waiting for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalOp {
    pub id: String,
    pub name: String,
}

/// The lease holder completes the process with an optional output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteOp {
    pub id: String,
    pub lease_token: LeaseTokenRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
}

/// The lease holder fails the process with an error message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailOp {
    pub id: String,
    pub lease_token: LeaseTokenRef,
    pub error: String,
}

/// Cancels a process; no lease is needed (`by` defaults to `host`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelOp {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Requests that a process be abandoned (`by` defaults to `host`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbandonOp {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which lease token an owner operation presents: `{of: OWNER}`, the latest
/// token the registry issued to that owner for the process (what a scenario
/// author writes, since generated tokens are not known in advance), or the
/// token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseTokenRef {
    Of(String),
    Token(String),
}

impl Serialize for LeaseTokenRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Token(token) => serializer.serialize_str(token),
            Self::Of(owner) => crate::single_entry::serialize(serializer, "of", owner),
        }
    }
}

impl crate::single_entry::StringOrEntry for LeaseTokenRef {
    const NOUN: &'static str = "lease token reference";
    const BESIDE: &'static str = "`of`";
    const EXPECTED: &'static str = "expected a lease token or `{of: OWNER}`";

    fn from_str(value: &str) -> Option<Self> {
        Some(Self::Token(value.to_string()))
    }

    fn from_entry<'de, A: serde::de::MapAccess<'de>>(
        key: &str,
        map: &mut A,
    ) -> Result<Option<Self>, A::Error> {
        Ok(match key {
            "of" => Some(Self::Of(map.next_value()?)),
            _ => None,
        })
    }
}

impl<'de> Deserialize<'de> for LeaseTokenRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::single_entry::deserialize(deserializer)
    }
}

impl schemars::JsonSchema for ProcessOp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProcessOp".into()
    }

    /// A map with exactly one key, the process operation, whose value is
    /// that operation's body (checked in full when the step runs).
    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let properties: serde_json::Map<String, serde_json::Value> = PROCESS_OP_KINDS
            .iter()
            .map(|kind| {
                // A listing takes any value: a malformed filter is refused
                // with the registry's own message when the step runs.
                let body = if *kind == "list" {
                    serde_json::json!({})
                } else {
                    serde_json::json!({"type": "object"})
                };
                (kind.to_string(), body)
            })
            .collect();
        schemars::json_schema!({
            "description": "One process registry operation: a map with exactly one of the operation names.",
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 1,
        })
    }
}
