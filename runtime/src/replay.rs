//! Replay: re-drive a fresh runtime from a capture bundle alone and compare
//! it decision by decision and effect by effect. Every failure is a typed
//! error that names the event.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::capture::{CaptureBundle, Session, CAPTURE_VERSION};
use crate::hash::{effect_hash, hex_matches, json_digest};
use crate::log::EventLog;
use crate::op::Op;

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
    #[error("unsupported capture version `{found}`, expected `{CAPTURE_VERSION}`")]
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

/// The largest capture bundle read: 256 MiB of JSON.
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

/// Visitor methods that accept every JSON scalar, as `Value` does.
macro_rules! scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// Reads a bundle from JSON text, checking its version before anything else.
pub fn parse_bundle(text: &str) -> Result<CaptureBundle, ReplayError> {
    if text.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(ReplayError::Malformed {
            line: 1,
            column: 1,
            message: format!(
                "the bundle is {} bytes, expected at most {MAX_BUNDLE_BYTES}",
                text.len()
            ),
        });
    }
    let probe: VersionProbe = serde_json::from_str(text).map_err(|e| malformed(&e))?;
    if let Some(found) = probe.0 {
        if found.as_str() != Some(CAPTURE_VERSION) {
            let found = found
                .as_str()
                .map_or_else(|| found.to_string(), str::to_string);
            return Err(ReplayError::UnsupportedVersion { found });
        }
    }
    let sealed: crate::seal::SealedBundle =
        serde_json::from_str(text).map_err(|e| malformed(&e))?;
    CaptureBundle::try_from(sealed).map_err(|message| ReplayError::Seal { message })
}

/// The top-level `capture_version` member of a JSON text (the last one, as
/// in a `serde_json::Value`), read without building anything else.
///
/// It walks the text with the same parser calls a `Value` would make
/// (`deserialize_any` for values, `deserialize_str` for keys), so a text
/// fails here exactly where and how it would fail to become a `Value`:
/// syntax, nesting depth, numbers out of range, trailing characters.
struct VersionProbe(Option<serde_json::Value>);

impl<'de> Deserialize<'de> for VersionProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = VersionProbe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VersionProbe, A::Error> {
                let mut found = None;
                while let Some(IsVersionKey(is_version)) = map.next_key()? {
                    if is_version {
                        found = Some(map.next_value()?);
                    } else {
                        map.next_value::<Skim>()?;
                    }
                }
                Ok(VersionProbe(found))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<VersionProbe, A::Error> {
                skim_seq(seq).map(|()| VersionProbe(None))
            }
            scalars!(VersionProbe(None));
        }
        deserializer.deserialize_any(Top)
    }
}

/// Whether a map key is `capture_version`.
struct IsVersionKey(bool);

impl<'de> Deserialize<'de> for IsVersionKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = IsVersionKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<IsVersionKey, E> {
                Ok(IsVersionKey(key == "capture_version"))
            }
        }
        deserializer.deserialize_str(Key)
    }
}

/// Any JSON value, checked and dropped as it is read.
struct Skim;

impl<'de> Deserialize<'de> for Skim {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Skim;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skim, A::Error> {
                while map.next_key::<IsVersionKey>()?.is_some() {
                    map.next_value::<Skim>()?;
                }
                Ok(Skim)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skim, A::Error> {
                skim_seq(seq).map(|()| Skim)
            }
            scalars!(Skim);
        }
        deserializer.deserialize_any(Any)
    }
}

fn skim_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skim>()?.is_some() {}
    Ok(())
}

fn malformed(error: &serde_json::Error) -> ReplayError {
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

/// Replays `bundle` on a fresh runtime over `log` (an empty log).
pub fn replay(
    bundle: &CaptureBundle,
    options: ReplayOptions,
    log: Box<dyn EventLog>,
) -> Result<ReplaySummary, ReplayError> {
    if bundle.capture_version != CAPTURE_VERSION {
        return Err(ReplayError::UnsupportedVersion {
            found: bundle.capture_version.clone(),
        });
    }
    let current = crate::capture::runtime_provenance();
    if options.strict && bundle.runtime_provenance != current {
        return Err(ReplayError::ProvenanceMismatch {
            captured: bundle.runtime_provenance.clone(),
            current,
        });
    }
    check_shape(bundle)?;
    let mut session = Session::unrecorded(&bundle.scenario, &bundle.config, log)
        .map_err(|e| ReplayError::InvalidConfig(e.to_string()))?;
    let mut seen = BTreeSet::new();
    let mut summary = ReplaySummary::default();
    for (index, event) in bundle.events.iter().enumerate() {
        let event_id = &event.event_id;
        if !seen.insert(event_id.as_str()) && options.strict {
            return Err(ReplayError::DuplicateEventId {
                event_id: event_id.clone(),
            });
        }
        let actual = json_digest(&event.payload);
        if !hex_matches(&actual, &event.payload_hash) {
            return Err(ReplayError::PayloadHashMismatch {
                event_id: event_id.clone(),
                recorded: event.payload_hash.clone(),
                actual: hex::encode(actual),
            });
        }
        let op = Op::deserialize(&event.payload).map_err(|e| ReplayError::InvalidPayload {
            event_id: event_id.clone(),
            message: e.to_string(),
        })?;
        if let Some(found) = crate::config::op_issues(&op).into_iter().next() {
            return Err(ReplayError::InvalidPayload {
                event_id: event_id.clone(),
                message: found.to_string(),
            });
        }
        let Some(recorded) = bundle.decisions.get(index) else {
            return Err(ReplayError::DecisionCount {
                event_id: event_id.clone(),
                count: bundle.events.len(),
                decisions: bundle.decisions.len(),
            });
        };
        let handled = session.handle(event_id, event.at_ms, &op);
        compare_decision(event_id, recorded, &handled.decision)?;
        let appended = &session.runtime().log().all()[handled.events.clone()];
        for (i, expected) in recorded.effects.iter().enumerate() {
            // The common case, a match, is decided without building the
            // texts; anything else is decided by the texts, as it always was.
            if appended.get(i).is_some_and(|e| {
                e.kind == expected.kind && hex_matches(&json_digest(e), &expected.effect_hash)
            }) {
                continue;
            }
            let actual = appended
                .get(i)
                .map(|e| format!("{} {}", e.kind, effect_hash(e)));
            let expected_text = format!("{} {}", expected.kind, expected.effect_hash);
            if actual.as_deref() != Some(expected_text.as_str()) {
                return Err(ReplayError::EffectMismatch {
                    event_id: event_id.clone(),
                    index: i,
                    expected: expected_text,
                    actual: actual.unwrap_or_else(|| "no effect".to_string()),
                });
            }
        }
        if let Some(extra) = appended.get(recorded.effects.len()) {
            return Err(ReplayError::EffectMismatch {
                event_id: event_id.clone(),
                index: recorded.effects.len(),
                expected: "no effect".to_string(),
                actual: format!("{} {}", extra.kind, effect_hash(extra)),
            });
        }
        summary.events += 1;
        summary.decisions += 1;
        summary.effects += appended.len();
    }
    if bundle.decisions.len() != bundle.events.len() {
        let event_id = bundle
            .decisions
            .get(bundle.events.len())
            .map_or_else(String::new, |d| d.event_id.clone());
        return Err(ReplayError::DecisionCount {
            event_id,
            count: bundle.events.len(),
            decisions: bundle.decisions.len(),
        });
    }
    Ok(summary)
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
    let mut previous = bundle.config.start_ms;
    for event in &bundle.events {
        if event.at_ms < previous || event.at_ms > crate::config::MAX_START_MS {
            return Err(ReplayError::InvalidPayload {
                event_id: event.event_id.clone(),
                message: format!(
                    "`at_ms` {} is out of order or range, expected {previous} to {}",
                    event.at_ms,
                    crate::config::MAX_START_MS
                ),
            });
        }
        previous = event.at_ms;
    }
    Ok(())
}

fn compare_decision(
    event_id: &str,
    expected: &crate::capture::CapturedDecision,
    actual: &crate::supervisor::Decision,
) -> Result<(), ReplayError> {
    fn show<T: serde::Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("a decision field serialises")
    }
    // Equal decisions serialise to equal fields; only a mismatch needs the
    // texts, to name the field and show both values.
    let same_termination = match (&expected.termination, actual.termination) {
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
