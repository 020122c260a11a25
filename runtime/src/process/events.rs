//! The events of the process registry, on topic `process.registry.events`,
//! each with header `process=<id>`: their kinds and payload shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::{ProcessLease, ProcessRegistration};
use crate::event::{event_enum, serde_payloads};
use crate::log::{LogEvent, StoredEvent, Topic};

/// The registry's topic name.
pub const PROCESS_TOPIC: &str = "process.registry.events";

/// The registry's topic.
pub fn process_topic() -> Topic {
    Topic::new(PROCESS_TOPIC).expect("the process topic name is valid")
}

event_enum! {
    /// One registry event, as folded by [`super::ProcessRegistry::apply`].
    pub enum ProcessEvent {
        /// A process was registered.
        Started(Started) = "process.started",
        /// An expired lease was replaced by a new claim.
        LeaseExpired(LeaseExpired) = "process.lease.expired",
        /// An owner took the lease.
        Claimed(Claimed) = "process.lease.claimed",
        /// The holder's heartbeat moved the expiry.
        Renewed(Renewed) = "process.lease.renewed",
        /// The holder parked the process on a signal.
        Waiting(Waiting) = "process.waiting",
        /// The awaited signal arrived.
        Signalled(Signalled) = "process.signalled",
        /// The holder completed the process.
        Completed(Ended) = "process.completed",
        /// The holder failed the process.
        Failed(Ended) = "process.failed",
        /// The process was cancelled.
        Cancelled(Ended) = "process.cancelled",
        /// Abandonment waits for the live lease to lapse.
        AbandonRequested(AbandonRequested) = "process.abandon_requested",
        /// The process was abandoned.
        Abandoned(Ended) = "process.abandoned",
    }
}

serde_payloads!(
    Started,
    LeaseExpired,
    Claimed,
    Renewed,
    Waiting,
    Signalled,
    Ended,
    AbandonRequested,
);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Started {
    pub process_id: String,
    pub registration_hash: String,
    pub registration: ProcessRegistration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaseExpired {
    pub process_id: String,
    pub owner: String,
    pub lease_token: String,
    pub fencing_token: u64,
    pub expired_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Claimed {
    pub process_id: String,
    #[serde(flatten)]
    pub lease: ProcessLease,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Renewed {
    pub process_id: String,
    pub lease_token: String,
    pub fencing_token: u64,
    pub ttl_ms: u64,
    pub expires_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Waiting {
    pub process_id: String,
    pub lease_token: String,
    pub fencing_token: u64,
    pub signal: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Signalled {
    pub process_id: String,
    pub signal: String,
}

/// The payload of every terminal event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ended {
    pub process_id: String,
    /// The lease owner for `completed` and `failed`; who asked otherwise.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AbandonRequested {
    pub process_id: String,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ProcessEvent {
    /// The process the event is about.
    pub fn process_id(&self) -> &str {
        match self {
            Self::Started(e) => &e.process_id,
            Self::LeaseExpired(e) => &e.process_id,
            Self::Claimed(e) => &e.process_id,
            Self::Renewed(e) => &e.process_id,
            Self::Waiting(e) => &e.process_id,
            Self::Signalled(e) => &e.process_id,
            Self::Completed(e) | Self::Failed(e) | Self::Cancelled(e) | Self::Abandoned(e) => {
                &e.process_id
            }
            Self::AbandonRequested(e) => &e.process_id,
        }
    }

    /// The event as it is appended, at `now_ms`, with header `process=<id>`.
    pub fn to_log_event(&self, now_ms: i64) -> LogEvent {
        LogEvent {
            kind: self.kind().into(),
            payload: self.payload(),
            headers: crate::log::Headers::one("process", self.process_id()),
            occurred_at_ms: now_ms,
        }
    }

    /// Reads a stored event of the registry's topic; `None` for another
    /// topic, an unknown kind or a payload of the wrong shape.
    pub fn from_stored(event: &StoredEvent) -> Option<Self> {
        if event.topic.as_str() != PROCESS_TOPIC {
            return None;
        }
        Self::decode(&event.kind, &event.payload)?.ok()
    }
}
