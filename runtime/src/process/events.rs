//! The events of the process registry, on topic `process.registry.events`,
//! each with header `process=<id>`: their kinds and payload shapes.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::record::{ProcessLease, ProcessRegistration};
use crate::log::{LogEvent, StoredEvent, Topic};

/// The registry's topic name.
pub const PROCESS_TOPIC: &str = "process.registry.events";

/// The registry's topic.
pub fn process_topic() -> Topic {
    Topic::new(PROCESS_TOPIC).expect("the process topic name is valid")
}

/// One registry event, as folded by [`super::ProcessRegistry::apply`].
#[derive(Clone, Debug, PartialEq)]
pub enum ProcessEvent {
    /// `process.started`: a process was registered.
    Started(Started),
    /// `process.lease.expired`: an expired lease was replaced by a new claim.
    LeaseExpired(LeaseExpired),
    /// `process.lease.claimed`: an owner took the lease.
    Claimed(Claimed),
    /// `process.lease.renewed`: the holder's heartbeat moved the expiry.
    Renewed(Renewed),
    /// `process.waiting`: the holder parked the process on a signal.
    Waiting(Waiting),
    /// `process.signalled`: the awaited signal arrived.
    Signalled(Signalled),
    /// `process.completed`.
    Completed(Ended),
    /// `process.failed`.
    Failed(Ended),
    /// `process.cancelled`.
    Cancelled(Ended),
    /// `process.abandon_requested`: abandonment waits for the live lease.
    AbandonRequested(AbandonRequested),
    /// `process.abandoned`.
    Abandoned(Ended),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Started {
    pub process_id: String,
    pub registration_hash: String,
    pub registration: ProcessRegistration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseExpired {
    pub process_id: String,
    pub owner: String,
    pub lease_token: String,
    pub fencing_token: u64,
    pub expired_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claimed {
    pub process_id: String,
    #[serde(flatten)]
    pub lease: ProcessLease,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renewed {
    pub process_id: String,
    pub lease_token: String,
    pub fencing_token: u64,
    pub ttl_ms: u64,
    pub expires_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub process_id: String,
    pub lease_token: String,
    pub fencing_token: u64,
    pub signal: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signalled {
    pub process_id: String,
    pub signal: String,
}

/// The payload of every terminal event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbandonRequested {
    pub process_id: String,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ProcessEvent {
    /// The event's kind on the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Started(_) => "process.started",
            Self::LeaseExpired(_) => "process.lease.expired",
            Self::Claimed(_) => "process.lease.claimed",
            Self::Renewed(_) => "process.lease.renewed",
            Self::Waiting(_) => "process.waiting",
            Self::Signalled(_) => "process.signalled",
            Self::Completed(_) => "process.completed",
            Self::Failed(_) => "process.failed",
            Self::Cancelled(_) => "process.cancelled",
            Self::AbandonRequested(_) => "process.abandon_requested",
            Self::Abandoned(_) => "process.abandoned",
        }
    }

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

    fn payload(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Self::Started(e) => serde_json::to_value(e),
            Self::LeaseExpired(e) => serde_json::to_value(e),
            Self::Claimed(e) => serde_json::to_value(e),
            Self::Renewed(e) => serde_json::to_value(e),
            Self::Waiting(e) => serde_json::to_value(e),
            Self::Signalled(e) => serde_json::to_value(e),
            Self::Completed(e) | Self::Failed(e) | Self::Cancelled(e) | Self::Abandoned(e) => {
                serde_json::to_value(e)
            }
            Self::AbandonRequested(e) => serde_json::to_value(e),
        }
    }

    /// The event as it is appended, at `now_ms`, with header `process=<id>`.
    pub fn to_log_event(&self, now_ms: i64) -> Result<LogEvent, serde_json::Error> {
        Ok(LogEvent {
            kind: self.kind().to_string(),
            payload: self.payload()?,
            headers: BTreeMap::from([("process".to_string(), self.process_id().to_string())]),
            occurred_at_ms: now_ms,
        })
    }

    /// Reads a stored event of the registry's topic; `None` for another
    /// topic, an unknown kind or a payload of the wrong shape.
    pub fn from_stored(event: &StoredEvent) -> Option<Self> {
        if event.topic.as_str() != PROCESS_TOPIC {
            return None;
        }
        fn body<T: DeserializeOwned>(event: &StoredEvent) -> Option<T> {
            T::deserialize(&event.payload).ok()
        }
        Some(match event.kind.as_str() {
            "process.started" => Self::Started(body(event)?),
            "process.lease.expired" => Self::LeaseExpired(body(event)?),
            "process.lease.claimed" => Self::Claimed(body(event)?),
            "process.lease.renewed" => Self::Renewed(body(event)?),
            "process.waiting" => Self::Waiting(body(event)?),
            "process.signalled" => Self::Signalled(body(event)?),
            "process.completed" => Self::Completed(body(event)?),
            "process.failed" => Self::Failed(body(event)?),
            "process.cancelled" => Self::Cancelled(body(event)?),
            "process.abandon_requested" => Self::AbandonRequested(body(event)?),
            "process.abandoned" => Self::Abandoned(body(event)?),
            _ => return None,
        })
    }
}
