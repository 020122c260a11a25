//! Capture bundles: a versioned record of every external event (with the
//! sha256 of its payload) and of every decision (with the sha256 of each log
//! event its episode appended), and the session that records one while it
//! drives the supervisor and the runtime.
//!
//! A bundle carries the runtime configuration, so it replays with no scenario
//! file (see `replay.rs`). Version 3 is JSON Lines, written line by line as
//! the session goes (`capture_stream.rs`); version 2, one JSON document with
//! its seal last (`seal.rs`), is still read.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::capture_stream::CaptureWriter;
use crate::config::RuntimeConfig;
use crate::engine::{Runtime, RuntimeError};
use crate::hash::{effect_hash, sha256_hex};
use crate::log::{EventLog, Payload, StoredEvent};
use crate::op::Op;
use crate::supervisor::{Decision, DecisionKind, DeferredEpisode, Handled, Supervisor};

/// The capture format this runtime writes: JSON Lines (`capture_stream.rs`).
pub const CAPTURE_VERSION: &str = "rehearse-capture/3";

/// The earlier format, one sealed JSON document, which replay still reads.
pub const CAPTURE_VERSION_2: &str = "rehearse-capture/2";

/// Who produced a bundle: the runtime crate and its version.
pub fn runtime_provenance() -> String {
    format!("rehearse-runtime/{}", env!("CARGO_PKG_VERSION"))
}

/// A capture bundle held whole in memory. Version 2 is read from one JSON
/// document only when its seal matches (see `seal.rs`); version 3 is read
/// and written line by line (`capture_stream.rs`, `replay/stream.rs`).
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
    /// The operation, as canonical JSON.
    pub payload: Payload,
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

impl CapturedDecision {
    /// The record of `decision`, whose episode appended `effects`.
    pub fn of(decision: &Decision, effects: &[StoredEvent]) -> Self {
        Self {
            event_id: decision.event_id.clone(),
            decision: decision.decision,
            schedule_at_ms: decision.schedule_at_ms,
            episode_id: decision.episode_id,
            deadline_ms: decision.deadline_ms,
            termination: decision.termination.map(String::from),
            retry_count: decision.retry_count,
            effects: effects
                .iter()
                .map(|event| Effect {
                    kind: event.kind.to_string(),
                    effect_hash: effect_hash(event),
                })
                .collect(),
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

/// A supervisor and a runtime driven together, recording a capture bundle.
#[derive(Debug)]
pub struct Session {
    runtime: Runtime,
    supervisor: Supervisor,
    bundle: CaptureBundle,
    /// Off while replaying: replay compares against the bundle it was given
    /// and has no use for a second copy.
    record: bool,
    /// Where a streaming session writes its lines instead of keeping them.
    stream: Option<CaptureWriter<Box<dyn Write + Send>>>,
    /// The first write error of the stream, reported by `finish_stream`.
    stream_error: Option<io::Error>,
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
            stream: None,
            stream_error: None,
        })
    }

    /// A session that writes its capture to `out` as it goes (a version 3
    /// capture, see `capture_stream.rs`) and keeps none of it: its
    /// [`Session::bundle`] holds the header fields only. A write error is
    /// kept and returned by [`Session::finish_stream`]; the session runs on.
    pub fn streaming(
        scenario: &str,
        config: &RuntimeConfig,
        log: Box<dyn EventLog>,
        out: Box<dyn Write + Send>,
    ) -> Result<Self, RuntimeError> {
        let durable_log = log.is_durable();
        let mut session = Self::new(scenario, config, log)?;
        let mut header = session.bundle.header();
        header.durable_log = durable_log;
        match CaptureWriter::new(out, &header) {
            Ok(writer) => session.stream = Some(writer),
            Err(error) => session.stream_error = Some(error),
        }
        Ok(session)
    }

    /// A session that drives the runtime exactly as [`Session::new`] does
    /// but records nothing: its bundle stays empty.
    pub fn unrecorded(
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
        let payload = Payload::encode(op);
        let handled = self
            .supervisor
            .handle(&mut self.runtime, event_id, op, at_ms);
        let effects = self.runtime.log().slice(handled.events.clone());
        match self.stream.as_mut() {
            Some(_) if self.stream_error.is_some() => {}
            Some(stream) => {
                let decision = &handled.decision;
                if let Err(error) = stream.episode(event_id, at_ms, &payload, decision, effects) {
                    self.stream_error = Some(error);
                }
            }
            None => {
                let event = CapturedEvent {
                    event_id: event_id.to_string(),
                    at_ms,
                    payload_hash: sha256_hex(payload.json().as_bytes()),
                    payload,
                };
                let decision = CapturedDecision::of(&handled.decision, effects);
                self.bundle.events.push(event);
                self.bundle.decisions.push(decision);
            }
        }
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

    /// Ends a streaming session: writes the seal line and hands back the
    /// output with the runtime, or the first write error (also for a
    /// session made by [`Session::new`], which has no stream).
    pub fn finish_stream(self) -> (io::Result<Box<dyn Write + Send>>, Runtime) {
        let result = match (self.stream_error, self.stream) {
            (Some(error), _) => Err(error),
            (None, Some(stream)) => stream.finish(),
            (None, None) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the session does not stream its capture",
            )),
        };
        (result, self.runtime)
    }
}
