//! Capture bundles: a versioned record of every external event (with the
//! sha256 of its payload) and of every decision (with the sha256 of each log
//! event its episode appended), and the session that records one while it
//! drives the supervisor and the runtime.
//!
//! A bundle carries the runtime configuration, so it replays with no scenario
//! file (see `replay.rs`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::RuntimeConfig;
use crate::engine::{effect_hash, Runtime, RuntimeError};
use crate::log::EventLog;
use crate::op::Op;
use crate::supervisor::{Decision, DecisionKind, DeferredEpisode, Handled, Supervisor};

/// The capture format this runtime writes and reads.
pub const CAPTURE_VERSION: &str = "rehearse-capture/2";

/// Who produced a bundle: the runtime crate and its version.
pub fn runtime_provenance() -> String {
    format!("rehearse-runtime/{}", env!("CARGO_PKG_VERSION"))
}

/// A capture bundle. It is written with its seal last and read only when
/// the seal matches (see `seal.rs`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "crate::seal::SealedBundle")]
pub struct CaptureBundle {
    pub capture_version: String,
    /// The scenario the capture came from.
    pub scenario: String,
    pub config: RuntimeConfig,
    pub events: Vec<CapturedEvent>,
    pub decisions: Vec<CapturedDecision>,
    pub runtime_provenance: String,
}

/// One external event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturedEvent {
    pub event_id: String,
    pub at_ms: i64,
    /// The operation, as JSON.
    pub payload: Value,
    /// sha256 hex of the payload's canonical JSON.
    pub payload_hash: String,
}

/// One decision and the effects of the episode it ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturedDecision {
    pub event_id: String,
    pub decision: DecisionKind,
    pub schedule_at_ms: Option<i64>,
    pub episode_id: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub termination: Option<String>,
    pub retry_count: u64,
    pub effects: Vec<Effect>,
}

impl CapturedDecision {
    /// The decision without its effects.
    pub fn decision(&self) -> Decision {
        Decision {
            event_id: self.event_id.clone(),
            decision: self.decision,
            schedule_at_ms: self.schedule_at_ms,
            episode_id: self.episode_id,
            deadline_ms: self.deadline_ms,
            termination: self.termination.clone(),
            retry_count: self.retry_count,
        }
    }
}

/// One log event an episode appended: its kind and the hash of the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effect {
    pub kind: String,
    pub effect_hash: String,
}

/// The canonical JSON of `value`: object keys sorted (serde_json's map is
/// ordered by key), no insignificant whitespace.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serialises")
}

/// sha256 hex of `value`'s canonical JSON.
pub fn payload_hash(value: &Value) -> String {
    to_hex(&json_digest(value))
}

/// The sha256 of `value`'s compact JSON, serialised into a buffer this
/// thread reuses: hashing every effect of a long capture then allocates
/// nothing.
pub(crate) fn json_digest<T: Serialize + ?Sized>(value: &T) -> [u8; 32] {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| {
        // A nested call (none exists today) gets a buffer of its own rather
        // than a second borrow.
        let mut fresh = Vec::new();
        let mut borrowed = buffer.try_borrow_mut();
        let bytes = match borrowed.as_deref_mut() {
            Ok(bytes) => bytes,
            Err(_) => &mut fresh,
        };
        bytes.clear();
        serde_json::to_writer(&mut *bytes, value).expect("a JSON value serialises");
        Sha256::digest(bytes.as_slice()).into()
    })
}

/// Lowercase hex, as `hex::encode` writes it.
pub(crate) fn to_hex(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for byte in digest {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// Whether `text` is exactly the lowercase hex of `digest`: the same answer
/// as comparing it with [`to_hex`], without building the string.
pub(crate) fn hex_matches(digest: &[u8; 32], text: &str) -> bool {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let text = text.as_bytes();
    text.len() == 64
        && digest.iter().zip(text.chunks_exact(2)).all(|(byte, pair)| {
            pair[0] == DIGITS[usize::from(byte >> 4)] && pair[1] == DIGITS[usize::from(byte & 0xf)]
        })
}

/// A supervisor and a runtime driven together, recording a capture bundle.
#[derive(Debug)]
pub struct Session {
    runtime: Runtime,
    supervisor: Supervisor,
    bundle: CaptureBundle,
    /// Off while replaying: replay compares against the bundle it was given
    /// and has no use for a second copy.
    record: bool,
}

impl Session {
    /// A session over `log` for the scenario named `scenario`.
    pub fn new(
        scenario: &str,
        config: &RuntimeConfig,
        log: Box<dyn EventLog>,
    ) -> Result<Self, RuntimeError> {
        Ok(Self {
            runtime: Runtime::named(Some(scenario.to_string()), config, log)?,
            supervisor: Supervisor::new(config.supervisor.clone()),
            bundle: CaptureBundle {
                capture_version: CAPTURE_VERSION.to_string(),
                scenario: scenario.to_string(),
                config: config.clone(),
                events: Vec::new(),
                decisions: Vec::new(),
                runtime_provenance: runtime_provenance(),
            },
            record: true,
        })
    }

    /// A session that drives the runtime exactly as [`Session::new`] does
    /// but records nothing: its bundle stays empty.
    pub(crate) fn unrecorded(
        scenario: &str,
        config: &RuntimeConfig,
        log: Box<dyn EventLog>,
    ) -> Result<Self, RuntimeError> {
        let mut session = Self::new(scenario, config, log)?;
        session.record = false;
        Ok(session)
    }

    /// Handles one external event and records it with its decision.
    pub fn handle(&mut self, event_id: &str, at_ms: i64, op: &Op) -> Handled {
        if !self.record {
            return self
                .supervisor
                .handle(&mut self.runtime, event_id, op, at_ms);
        }
        let payload = serde_json::to_value(op).expect("an operation serialises");
        let handled = self
            .supervisor
            .handle(&mut self.runtime, event_id, op, at_ms);
        let effects = self.runtime.log().all()[handled.events.clone()]
            .iter()
            .map(|event| Effect {
                kind: event.kind.clone(),
                effect_hash: effect_hash(event),
            })
            .collect();
        self.bundle.events.push(CapturedEvent {
            event_id: event_id.to_string(),
            at_ms,
            payload_hash: payload_hash(&payload),
            payload,
        });
        let d = &handled.decision;
        self.bundle.decisions.push(CapturedDecision {
            event_id: d.event_id.clone(),
            decision: d.decision,
            schedule_at_ms: d.schedule_at_ms,
            episode_id: d.episode_id,
            deadline_ms: d.deadline_ms,
            termination: d.termination.clone(),
            retry_count: d.retry_count,
            effects,
        });
        handled
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The runtime, for setting it up before the first event.
    pub fn runtime_mut(&mut self) -> &mut Runtime {
        &mut self.runtime
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Episodes still deferred, earliest first.
    pub fn deferred(&self) -> Vec<DeferredEpisode> {
        self.supervisor.deferred().cloned().collect()
    }

    /// The bundle recorded so far.
    pub fn bundle(&self) -> &CaptureBundle {
        &self.bundle
    }

    /// Ends the session, keeping the bundle and the runtime.
    pub fn finish(self) -> (CaptureBundle, Runtime) {
        (self.bundle, self.runtime)
    }
}
