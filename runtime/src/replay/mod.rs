//! Replay: re-drive a fresh runtime from a capture bundle alone and compare
//! it decision by decision and effect by effect. Every failure is a typed
//! error that names the event.
//!
//! A version 3 capture (JSON Lines) is read in one typed streaming pass,
//! parsed and hashed on a second thread (`stream.rs`); a version 2 bundle
//! (one JSON document, `legacy.rs`) is read whole and replayed from memory.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::capture::{
    CaptureBundle, CapturedDecision, Session, CAPTURE_VERSION, CAPTURE_VERSION_2,
};
use crate::config::RuntimeConfig;
use crate::engine::Runtime;
use crate::hash::{effect_hash, hex_matches};
use crate::log::{EventLog, StoredEvent};
use crate::op::Op;

mod legacy;
mod recorded;
mod stream;

use recorded::{ExpectedDecision, RecordedEffect};

pub use stream::{open_capture, replay_stream, CaptureStream, OpenedCapture, MAX_LINE_BYTES};

/// How strictly to replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Refuse duplicate event ids and a bundle from another runtime version.
    pub strict: bool,
}

/// What a successful replay covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplaySummary {
    pub events: usize,
    pub decisions: usize,
    pub effects: usize,
}

/// Why a bundle did not replay.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("malformed capture bundle at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("unsupported capture version `{found}`, expected `{CAPTURE_VERSION}` or `{CAPTURE_VERSION_2}`")]
    UnsupportedVersion { found: String },
    #[error("provenance mismatch: the bundle was captured by `{captured}`, this is `{current}`")]
    ProvenanceMismatch { captured: String, current: String },
    #[error("event `{event_id}`: duplicate event id")]
    DuplicateEventId { event_id: String },
    #[error("event `{event_id}`: payload hash mismatch: recorded {recorded}, payload hashes to {actual}")]
    PayloadHashMismatch {
        event_id: String,
        recorded: String,
        actual: String,
    },
    #[error("event `{event_id}`: invalid payload: {message}")]
    InvalidPayload { event_id: String, message: String },
    #[error("event `{event_id}`: {count} events but {decisions} decisions")]
    DecisionCount {
        event_id: String,
        count: usize,
        decisions: usize,
    },
    #[error(
        "event `{event_id}`: decision mismatch in `{field}`: expected {expected}, actual {actual}"
    )]
    DecisionMismatch {
        event_id: String,
        field: &'static str,
        expected: String,
        actual: String,
    },
    #[error("event `{event_id}`: effect mismatch at index {index}: expected {expected}, actual {actual}")]
    EffectMismatch {
        event_id: String,
        index: usize,
        expected: String,
        actual: String,
    },
    #[error("invalid runtime configuration in the bundle: {0}")]
    InvalidConfig(String),
    #[error("broken seal: {message}")]
    Seal { message: String },
}

/// The largest version 2 capture bundle read: 256 MiB of JSON. A version 3
/// capture is read line by line, each line at most [`MAX_LINE_BYTES`].
pub const MAX_BUNDLE_BYTES: u64 = 256 * 1024 * 1024;

impl ReplayError {
    /// Whether the bundle itself is unusable (malformed, inconsistent,
    /// invalid): an input error, as opposed to a bundle that is well formed
    /// but does not reproduce.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Self::Malformed { .. }
                | Self::UnsupportedVersion { .. }
                | Self::InvalidPayload { .. }
                | Self::DecisionCount { .. }
                | Self::InvalidConfig(_)
                | Self::Seal { .. }
        )
    }

    /// What to do about it, in one sentence.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => {
                "the file is not a whole capture bundle: was it truncated or edited by hand?"
            }
            Self::UnsupportedVersion { .. } => "capture it again with this version of rehearse",
            Self::ProvenanceMismatch { .. } => {
                "replay without --strict to compare across runtime versions, or capture it again"
            }
            Self::DuplicateEventId { .. } => {
                "every event needs its own id; replay without --strict to allow repeats"
            }
            Self::PayloadHashMismatch { .. } => "the payload or its hash was changed after capture",
            Self::InvalidPayload { .. } => "the payload is not an operation this runtime knows",
            Self::DecisionCount { .. } => {
                "every event yields exactly one decision: an entry was added or removed"
            }
            Self::DecisionMismatch { .. } | Self::EffectMismatch { .. } => {
                "the runtime no longer behaves as it did when captured, or the bundle was edited"
            }
            Self::InvalidConfig(_) => "the bundle's `config` does not describe a valid runtime",
            Self::Seal { .. } => {
                "the bundle was cut short or edited after capture: capture it again"
            }
        }
    }
}

/// Reads a bundle from its text, either version: a version 3 capture line
/// by line (its seal checked), a version 2 document whole.
pub fn parse_bundle(text: &str) -> Result<CaptureBundle, ReplayError> {
    match open_capture(text.as_bytes())? {
        OpenedCapture::Legacy(bundle) => Ok(*bundle),
        OpenedCapture::Stream(stream) => (*stream).collect_bundle(),
    }
}

/// The error of a JSON parse, its position kept apart from its message.
pub(crate) fn malformed(error: &serde_json::Error) -> ReplayError {
    let message = error.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    ReplayError::Malformed {
        line: error.line(),
        column: error.column(),
        message,
    }
}

/// The keys of the event ids seen, for the strict duplicate check.
pub(crate) type KeySet = BTreeSet<u128>;

/// A key standing for an event id in the strict duplicate check: the first
/// 16 bytes of its sha256, so a long capture's ids are not all kept.
pub(crate) fn event_key(event_id: &str) -> u128 {
    let digest = Sha256::digest(event_id.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(key)
}

/// Checks a bundle's version and provenance before anything replays.
fn check_header(
    capture_version: &str,
    provenance: &str,
    options: ReplayOptions,
) -> Result<(), ReplayError> {
    if capture_version != CAPTURE_VERSION && capture_version != CAPTURE_VERSION_2 {
        return Err(ReplayError::UnsupportedVersion {
            found: capture_version.to_string(),
        });
    }
    let current = crate::capture::runtime_provenance();
    if options.strict && provenance != current {
        return Err(ReplayError::ProvenanceMismatch {
            captured: provenance.to_string(),
            current,
        });
    }
    Ok(())
}

/// The event-level checks every version shares: an event's time is within
/// the outputs' range and never goes back (as a scenario's steps), and its
/// operation is held to the scenario limits.
#[derive(Debug)]
pub(crate) struct EventChecks {
    previous_ms: i64,
}

impl EventChecks {
    pub(crate) fn new(config: &RuntimeConfig) -> Self {
        Self {
            previous_ms: config.start_ms,
        }
    }

    pub(crate) fn at_ms(&mut self, event_id: &str, at_ms: i64) -> Result<(), ReplayError> {
        let previous = self.previous_ms;
        if at_ms < previous || at_ms > crate::config::MAX_START_MS {
            return Err(ReplayError::InvalidPayload {
                event_id: event_id.to_string(),
                message: format!(
                    "`at_ms` {at_ms} is out of order or range, expected {previous} to {}",
                    crate::config::MAX_START_MS
                ),
            });
        }
        self.previous_ms = at_ms;
        Ok(())
    }

    pub(crate) fn op(event_id: &str, op: &Op) -> Result<(), ReplayError> {
        match crate::config::op_issues(op).into_iter().next() {
            Some(found) => Err(ReplayError::InvalidPayload {
                event_id: event_id.to_string(),
                message: found.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// A fresh session re-driven episode by episode and compared with what was
/// recorded.
#[derive(Debug)]
pub(crate) struct Replayer {
    session: Session,
    strict: bool,
    seen: KeySet,
    summary: ReplaySummary,
}

impl Replayer {
    /// A session for `config` (checked by the scenario limits first) over
    /// `log`, an empty log.
    pub(crate) fn new(
        scenario: &str,
        config: &RuntimeConfig,
        options: ReplayOptions,
        log: Box<dyn EventLog>,
    ) -> Result<Self, ReplayError> {
        if let Some(found) = config.validate().into_iter().next() {
            return Err(ReplayError::InvalidConfig(found.to_string()));
        }
        let mut session = Session::unrecorded(scenario, config, log)
            .map_err(|e| ReplayError::InvalidConfig(e.to_string()))?;
        session.runtime_mut().skip_value_receipts();
        Ok(Self {
            session,
            strict: options.strict,
            seen: KeySet::default(),
            summary: ReplaySummary::default(),
        })
    }

    /// Refuses a repeated event id when strict.
    pub(crate) fn check_duplicate(&mut self, event_id: &str, key: u128) -> Result<(), ReplayError> {
        if self.strict && !self.seen.insert(key) {
            return Err(ReplayError::DuplicateEventId {
                event_id: event_id.to_string(),
            });
        }
        Ok(())
    }

    /// Handles one event and compares its decision and effects.
    pub(crate) fn episode(
        &mut self,
        event_id: &str,
        at_ms: i64,
        op: &Op,
        recorded: &CapturedDecision,
    ) -> Result<(), ReplayError> {
        let handled = self.session.handle(event_id, at_ms, op);
        compare_decision(event_id, recorded.into(), &handled.decision)?;
        let appended = self.session.runtime().log().slice(handled.events.clone());
        compare_effects(event_id, &recorded.effects, appended)?;
        self.summary.events += 1;
        self.summary.decisions += 1;
        self.summary.effects += appended.len();
        self.session.runtime_mut().release_log();
        Ok(())
    }

    /// Handles one event and moves the events it appended onto the end of
    /// `events` (copies, from a log that keeps its history); its decision
    /// and events are compared on another thread (`stream.rs`).
    pub(crate) fn decide(
        &mut self,
        event_id: &str,
        at_ms: i64,
        op: &Op,
        events: &mut Vec<StoredEvent>,
    ) -> crate::supervisor::Decision {
        let handled = self.session.handle(event_id, at_ms, op);
        let from = events.len();
        take_events(self.session.runtime_mut(), handled.events, events);
        self.summary.events += 1;
        self.summary.decisions += 1;
        self.summary.effects += events.len() - from;
        handled.decision
    }

    pub(crate) fn summary(&self) -> ReplaySummary {
        self.summary
    }
}

/// Releases the runtime's log, moving the events at positions `range`
/// onto the end of `events`: out of a log that keeps no history (its
/// window may also hold events from before `range`, the runtime's own at
/// its start, which are dropped), copied from one that keeps it.
fn take_events(runtime: &mut Runtime, range: Range<usize>, events: &mut Vec<StoredEvent>) {
    let from = events.len();
    let end = usize::try_from(runtime.log().len()).expect("a log position fits in memory");
    runtime.release_log_into(events);
    let moved = events.len() - from;
    if moved == 0 {
        events.extend(runtime.log().slice(range).iter().cloned());
        return;
    }
    let first = end - moved;
    events.truncate(from + (range.end - first));
    events.drain(from..from + (range.start - first));
}

/// Replays `bundle`, held in memory, on a fresh runtime over `log` (an
/// empty log).
pub fn replay(
    bundle: &CaptureBundle,
    options: ReplayOptions,
    log: Box<dyn EventLog>,
) -> Result<ReplaySummary, ReplayError> {
    check_header(&bundle.capture_version, &bundle.runtime_provenance, options)?;
    check_shape(bundle)?;
    let mut replayer = Replayer::new(&bundle.scenario, &bundle.config, options, log)?;
    for (event, recorded) in bundle.events.iter().zip(&bundle.decisions) {
        let event_id = &event.event_id;
        replayer.check_duplicate(event_id, event_key(event_id))?;
        let actual: [u8; 32] = Sha256::digest(event.payload.json().as_bytes()).into();
        if !hex_matches(&actual, &event.payload_hash) {
            return Err(ReplayError::PayloadHashMismatch {
                event_id: event_id.clone(),
                recorded: event.payload_hash.clone(),
                actual: hex::encode(actual),
            });
        }
        let op =
            Op::deserialize(event.payload.value()).map_err(|e| ReplayError::InvalidPayload {
                event_id: event_id.clone(),
                message: e.to_string(),
            })?;
        EventChecks::op(event_id, &op)?;
        replayer.episode(event_id, event.at_ms, &op, recorded)?;
    }
    Ok(replayer.summary())
}

/// Checks what can be checked before anything runs: the configuration by
/// the scenario limits, one decision per event, and event times within the
/// outputs' range and never decreasing (as a scenario's steps are).
fn check_shape(bundle: &CaptureBundle) -> Result<(), ReplayError> {
    if let Some(found) = bundle.config.validate().into_iter().next() {
        return Err(ReplayError::InvalidConfig(found.to_string()));
    }
    if bundle.decisions.len() != bundle.events.len() {
        let index = bundle.events.len().min(bundle.decisions.len());
        let event_id = bundle
            .events
            .get(index)
            .map(|e| e.event_id.clone())
            .or_else(|| bundle.decisions.get(index).map(|d| d.event_id.clone()))
            .unwrap_or_default();
        return Err(ReplayError::DecisionCount {
            event_id,
            count: bundle.events.len(),
            decisions: bundle.decisions.len(),
        });
    }
    let mut checks = EventChecks::new(&bundle.config);
    for event in &bundle.events {
        checks.at_ms(&event.event_id, event.at_ms)?;
    }
    Ok(())
}

/// Compares the events an episode appended with the recorded effects.
pub(crate) fn compare_effects<E: RecordedEffect>(
    event_id: &str,
    recorded: &[E],
    appended: &[StoredEvent],
) -> Result<(), ReplayError> {
    for (i, expected) in recorded.iter().enumerate() {
        // The common case, a match, is decided without building the
        // texts; anything else is decided by the texts, as it always was.
        if appended
            .get(i)
            .is_some_and(|e| e.kind == expected.kind() && expected.matches(e.digest()))
        {
            continue;
        }
        let actual = appended
            .get(i)
            .map(|e| format!("{} {}", e.kind, effect_hash(e)));
        let expected_text = format!("{} {}", expected.kind(), expected.hash_text());
        if actual.as_deref() != Some(expected_text.as_str()) {
            return Err(ReplayError::EffectMismatch {
                event_id: event_id.to_string(),
                index: i,
                expected: expected_text,
                actual: actual.unwrap_or_else(|| "no effect".to_string()),
            });
        }
    }
    if let Some(extra) = appended.get(recorded.len()) {
        return Err(ReplayError::EffectMismatch {
            event_id: event_id.to_string(),
            index: recorded.len(),
            expected: "no effect".to_string(),
            actual: format!("{} {}", extra.kind, effect_hash(extra)),
        });
    }
    Ok(())
}

pub(crate) fn compare_decision(
    event_id: &str,
    expected: ExpectedDecision<'_>,
    actual: &crate::supervisor::Decision,
) -> Result<(), ReplayError> {
    fn show<T: serde::Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("a decision field serialises")
    }
    // Equal decisions serialise to equal fields; only a mismatch needs the
    // texts, to name the field and show both values.
    let same_termination = match (expected.termination, actual.termination) {
        (Some(text), Some(termination)) => termination.is_written(text),
        (None, None) => true,
        _ => false,
    };
    if same_termination
        && expected.event_id == actual.event_id
        && expected.decision == actual.decision
        && expected.schedule_at_ms == actual.schedule_at_ms
        && expected.episode_id == actual.episode_id
        && expected.deadline_ms == actual.deadline_ms
        && expected.retry_count == actual.retry_count
    {
        return Ok(());
    }
    let fields: [(&'static str, String, String); 7] = [
        ("event_id", show(&expected.event_id), show(&actual.event_id)),
        ("decision", show(&expected.decision), show(&actual.decision)),
        (
            "schedule_at_ms",
            show(&expected.schedule_at_ms),
            show(&actual.schedule_at_ms),
        ),
        (
            "episode_id",
            show(&expected.episode_id),
            show(&actual.episode_id),
        ),
        (
            "deadline_ms",
            show(&expected.deadline_ms),
            show(&actual.deadline_ms),
        ),
        (
            "termination",
            show(&expected.termination),
            show(&actual.termination),
        ),
        (
            "retry_count",
            show(&expected.retry_count),
            show(&actual.retry_count),
        ),
    ];
    for (field, expected, actual) in fields {
        if expected != actual {
            return Err(ReplayError::DecisionMismatch {
                event_id: event_id.to_string(),
                field,
                expected,
                actual,
            });
        }
    }
    Ok(())
}
