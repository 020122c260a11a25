//! What the process registry knows about one process: its registration (the
//! input it runs, its recovery disposition, its identity), its lease, and
//! where it is in its lifecycle.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::hash::stable_json_sha256_hex;

/// What a process runs. Written `{type: tool | engine | session_turn |
/// external, ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProcessInput {
    /// A prepared tool call.
    Tool {
        tool_name: String,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        arguments: serde_json::Value,
    },
    /// Work of an engine-specific kind (`build`, `index`, ...).
    Engine {
        kind: String,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        payload: serde_json::Value,
    },
    /// One turn of a (sub)agent session.
    SessionTurn {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage_source: Option<String>,
        /// The capability of the subagent that runs the turn.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capability: Option<String>,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        turn: serde_json::Value,
    },
    /// Work owned by a system outside the runtime, known by its metadata.
    External {
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        metadata: serde_json::Value,
    },
}

impl ProcessInput {
    /// The input's kind as the registry reports it: `tool`, `engine`,
    /// `session_turn` or `external`.
    pub fn engine_kind(&self) -> &'static str {
        match self {
            Self::Tool { .. } => "tool",
            Self::Engine { .. } => "engine",
            Self::SessionTurn { .. } => "session_turn",
            Self::External { .. } => "external",
        }
    }
}

/// What recovery may do with a process whose owner went away.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryDisposition {
    /// Any owner may claim it again after its lease expires and run it anew.
    Rerunnable,
    /// Only the owner that first claimed it may claim it again.
    OwnerBound,
    /// A system outside the runtime runs it; the registry only tracks it.
    ExternallyOwned,
}

impl RecoveryDisposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rerunnable => "rerunnable",
            Self::OwnerBound => "owner_bound",
            Self::ExternallyOwned => "externally_owned",
        }
    }
}

/// How a process is named in listings: a kind, an optional label and an
/// optional definition that the `definition` list filter matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessIdentity {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
}

impl ProcessIdentity {
    /// The identity the modelled registry derives from an input: a tool call is kind
    /// `tool` labelled with the tool's name; an engine input is its own
    /// engine kind, unlabelled; a session turn is labelled with the
    /// subagent's capability, else the usage source, else the session id; an
    /// external input with the first of its metadata's `label`, `name` or
    /// `title` that is present, when that one is a string.
    pub fn from_input(input: &ProcessInput) -> Self {
        let (kind, label) = match input {
            ProcessInput::Tool { tool_name, .. } => ("tool".to_string(), Some(tool_name.clone())),
            ProcessInput::Engine { kind, .. } => (kind.clone(), None),
            ProcessInput::SessionTurn {
                session_id,
                usage_source,
                capability,
                ..
            } => (
                "session_turn".to_string(),
                capability
                    .clone()
                    .or_else(|| usage_source.clone())
                    .or_else(|| session_id.clone()),
            ),
            ProcessInput::External { metadata } => {
                // The first key present, then only if it is a string: a
                // non-string `label` hides a `name` (docs/SCENARIOS.md,
                // "Process registry").
                let label = metadata
                    .get("label")
                    .or_else(|| metadata.get("name"))
                    .or_else(|| metadata.get("title"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string);
                ("external".to_string(), label)
            }
        };
        Self {
            kind,
            label,
            definition: None,
        }
    }
}

/// Who started a process: the host, or a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProcessOriginator {
    Host,
    Session { session_id: String },
}

/// Where a process came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessProvenance {
    pub originator: ProcessOriginator,
}

/// The execution environment a process runs in, referred to by the hash of
/// its canonical JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessExecutionEnvSpec {
    #[serde(default = "empty_object")]
    pub plugin_options: serde_json::Value,
    #[serde(default = "empty_object")]
    pub policy: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl ProcessExecutionEnvSpec {
    /// `process-env:sha256:<hex>` of the spec's canonical JSON.
    pub fn stable_ref(&self) -> Result<String, serde_json::Error> {
        stable_json_sha256_hex(self).map(|hash| format!("process-env:sha256:{hash}"))
    }
}

/// Everything that defines a process, and nothing that changes as it runs:
/// the value its `registration_hash` is computed from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessRegistration {
    pub id: String,
    pub input: ProcessInput,
    pub disposition: RecoveryDisposition,
    pub identity: ProcessIdentity,
    pub provenance: ProcessProvenance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_ref: Option<String>,
}

impl ProcessRegistration {
    /// The sha256 hex of the registration's canonical JSON.
    pub fn hash(&self) -> Result<String, serde_json::Error> {
        stable_json_sha256_hex(self)
    }
}

/// Where a process is in its lifecycle. Every state but `running` is final.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProcessStatus {
    #[default]
    Running,
    Completed,
    Failed,
    Cancelled,
    Abandoned,
}

impl ProcessStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn is_terminal(self) -> bool {
        self != Self::Running
    }
}

impl fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A lease on a process: who holds it, the token that proves it, the fencing
/// token that orders it after every earlier lease, and when it lapses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessLease {
    pub owner: String,
    pub lease_token: String,
    pub fencing_token: u64,
    pub claimed_at_ms: i64,
    pub ttl_ms: u64,
    pub expires_at_ms: i64,
}

impl ProcessLease {
    /// A lease is live strictly before its expiry.
    pub fn is_live(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// The first claim of a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessStarted {
    pub owner: String,
    pub started_at_ms: i64,
}

/// A request to abandon a process, waiting for its live lease to end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AbandonRequest {
    pub requested_by: String,
    pub requested_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a running process waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WaitState {
    pub signal: String,
    pub since_ms: i64,
}

/// How a process ended: when, by whom, and what it left for its awaiters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessEnd {
    pub at_ms: i64,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One process as the registry holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessRecord {
    pub id: String,
    pub registration_hash: String,
    pub input: ProcessInput,
    pub disposition: RecoveryDisposition,
    pub identity: ProcessIdentity,
    pub provenance: ProcessProvenance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_ref: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub status: ProcessStatus,
    /// The highest fencing token issued for this process; 0 before any claim.
    pub fencing_token: u64,
    /// The current lease; cleared when the process ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<ProcessLease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_started: Option<ProcessStarted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandon_request: Option<AbandonRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<ProcessEnd>,
}

impl ProcessRecord {
    /// A running, never claimed record of `registration`.
    pub fn new(registration: ProcessRegistration, registration_hash: String, now_ms: i64) -> Self {
        Self {
            id: registration.id,
            registration_hash,
            input: registration.input,
            disposition: registration.disposition,
            identity: registration.identity,
            provenance: registration.provenance,
            env_ref: registration.env_ref,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            status: ProcessStatus::Running,
            fencing_token: 0,
            lease: None,
            first_started: None,
            abandon_request: None,
            wait: None,
            end: None,
        }
    }

    /// The live lease at `now_ms`, if any.
    pub fn live_lease(&self, now_ms: i64) -> Option<&ProcessLease> {
        self.lease.as_ref().filter(|lease| lease.is_live(now_ms))
    }
}
