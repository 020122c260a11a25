//! The seal of a capture bundle: how many events and decisions it holds and
//! the sha256 of everything else, written last (`"seal"`) and checked when a
//! bundle is read. A bundle cut short (trailing events and decisions
//! dropped), or edited (budgets raised, constraints loosened) without
//! resealing, is refused as malformed before anything replays.
//!
//! The seal has no key: it catches truncation and edits, not a forger who
//! recomputes it. A resealed forgery is then held to every other check:
//! its configuration and payloads to the scenario limits, its decisions and
//! effects to what the runtime does.

use serde::{Deserialize, Serialize, Serializer};

use crate::capture::{CaptureBundle, CapturedDecision, CapturedEvent};
use crate::config::RuntimeConfig;
use crate::hash::json_digest;

/// The seal itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    pub events: u64,
    pub decisions: u64,
    /// sha256 hex of the compact JSON of the bundle's other fields, in the
    /// order they are written.
    pub sha256: String,
}

/// The bundle's fields other than the seal, in the order they are written.
#[derive(Serialize)]
struct Contents<'a> {
    capture_version: &'a str,
    scenario: &'a str,
    config: &'a RuntimeConfig,
    events: &'a [CapturedEvent],
    decisions: &'a [CapturedDecision],
    runtime_provenance: &'a str,
}

/// A bundle as written: its contents, then its seal.
#[derive(Serialize)]
struct Written<'a> {
    #[serde(flatten)]
    contents: Contents<'a>,
    seal: Seal,
}

fn contents(bundle: &CaptureBundle) -> Contents<'_> {
    Contents {
        capture_version: &bundle.capture_version,
        scenario: &bundle.scenario,
        config: &bundle.config,
        events: &bundle.events,
        decisions: &bundle.decisions,
        runtime_provenance: &bundle.runtime_provenance,
    }
}

impl CaptureBundle {
    /// The seal of the bundle as it is now.
    pub fn seal(&self) -> Seal {
        Seal {
            events: self.events.len() as u64,
            decisions: self.decisions.len() as u64,
            sha256: hex::encode(json_digest(&contents(self))),
        }
    }
}

impl Serialize for CaptureBundle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Written {
            contents: contents(self),
            seal: self.seal(),
        }
        .serialize(serializer)
    }
}

/// A bundle as read, seal unchecked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SealedBundle {
    capture_version: String,
    scenario: String,
    config: RuntimeConfig,
    events: Vec<CapturedEvent>,
    decisions: Vec<CapturedDecision>,
    runtime_provenance: String,
    seal: Seal,
}

/// A seal that does not match the bundle it closes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the seal records {sealed_events} events and {sealed_decisions} decisions, the bundle holds {found_events} and {found_decisions}")]
    Counts {
        sealed_events: u64,
        sealed_decisions: u64,
        found_events: u64,
        found_decisions: u64,
    },
    #[error("the seal's sha256 {sealed} does not match the bundle's contents ({found})")]
    Digest { sealed: String, found: String },
}

impl TryFrom<SealedBundle> for CaptureBundle {
    type Error = SealError;

    fn try_from(raw: SealedBundle) -> Result<Self, SealError> {
        let bundle = CaptureBundle {
            capture_version: raw.capture_version,
            scenario: raw.scenario,
            config: raw.config,
            events: raw.events,
            decisions: raw.decisions,
            runtime_provenance: raw.runtime_provenance,
        };
        let found = bundle.seal();
        let sealed = raw.seal;
        if (found.events, found.decisions) != (sealed.events, sealed.decisions) {
            return Err(SealError::Counts {
                sealed_events: sealed.events,
                sealed_decisions: sealed.decisions,
                found_events: found.events,
                found_decisions: found.decisions,
            });
        }
        if found.sha256 != sealed.sha256 {
            return Err(SealError::Digest {
                sealed: sealed.sha256,
                found: found.sha256,
            });
        }
        Ok(bundle)
    }
}

impl CaptureBundle {
    /// Whether an event of the bundle restarts the runtime: it then
    /// replays on the durable file log.
    pub fn restarts(&self) -> bool {
        self.events
            .iter()
            .any(|event| event.payload.get("restart").is_some())
    }
}

/// Reads a bundle held as JSON without checking its seal (any `seal` is
/// dropped), for tests that edit bundles on purpose: written again, it
/// carries a seal over the edit, so a later check catches the edit itself.
pub fn read_unsealed(mut value: serde_json::Value) -> Result<CaptureBundle, serde_json::Error> {
    if let Some(object) = value.as_object_mut() {
        object.remove("seal");
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Unsealed {
        capture_version: String,
        scenario: String,
        config: RuntimeConfig,
        events: Vec<CapturedEvent>,
        decisions: Vec<CapturedDecision>,
        runtime_provenance: String,
    }
    let raw: Unsealed = serde_json::from_value(value)?;
    Ok(CaptureBundle {
        capture_version: raw.capture_version,
        scenario: raw.scenario,
        config: raw.config,
        events: raw.events,
        decisions: raw.decisions,
        runtime_provenance: raw.runtime_provenance,
    })
}
