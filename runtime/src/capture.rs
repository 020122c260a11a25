//! Capture bundles: a versioned record of every external event (with the
//! sha256 of its payload) and of every decision (with the sha256 of each log
//! event its episode appended), and the session that records one while it
//! drives the supervisor and the runtime.
//!
//! A bundle carries the runtime configuration, so it replays with no scenario
//! file (see `replay.rs`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::RuntimeConfig;
use crate::engine::{Runtime, RuntimeError};
use crate::hash::{effect_hash, payload_hash};
use crate::log::EventLog;
use crate::op::Op;
use crate::supervisor::{DecisionKind, DeferredEpisode, Handled, Supervisor};

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
    /// The termination as recorded; replay compares it as written, so a
    /// value no runtime writes reads as a mismatch, not a malformed bundle.
    pub termination: Option<String>,
    pub retry_count: u64,
    pub effects: Vec<Effect>,
}

/// One log event an episode appended: its kind and the hash of the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effect {
    pub kind: String,
    pub effect_hash: String,
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
            termination: d.termination.map(String::from),
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
