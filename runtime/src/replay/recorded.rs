//! What a capture recorded of an episode, as replay compares it: its
//! decision's fields and its effects. A version 3 decision line is read
//! straight from its text ([`RawDecision`], borrowing it) into a compact
//! [`Recorded`]: each effect's kind as the vocabulary's own text and its
//! hash as the 32 bytes its hex stands for, so the effects of a long
//! capture cost no allocation each. Any text that is not what the runtime
//! writes is kept as written, so a mismatch shows it as it was.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::capture::{CapturedDecision, Effect};
use crate::hash::hex_matches;
use crate::supervisor::DecisionKind;

/// A decision line's decision as read, borrowing the line's text; read as
/// [`CapturedDecision`] reads (the same fields, names and messages).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "CapturedDecision")]
pub(crate) struct RawDecision<'a> {
    #[serde(borrow)]
    pub(crate) event_id: Cow<'a, str>,
    decision: DecisionKind,
    schedule_at_ms: Option<i64>,
    episode_id: Option<u64>,
    deadline_ms: Option<u64>,
    #[serde(borrow)]
    termination: Option<Cow<'a, str>>,
    retry_count: u64,
    #[serde(borrow)]
    effects: Vec<RawEffect<'a>>,
}

/// An effect as read, borrowing its text; read as [`Effect`] reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Effect")]
struct RawEffect<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    effect_hash: Cow<'a, str>,
}

impl RawDecision<'_> {
    /// The decision as a bundle holds it.
    pub(crate) fn into_captured(self) -> CapturedDecision {
        CapturedDecision {
            event_id: self.event_id.into_owned(),
            decision: self.decision,
            schedule_at_ms: self.schedule_at_ms,
            episode_id: self.episode_id,
            deadline_ms: self.deadline_ms,
            termination: self.termination.map(Cow::into_owned),
            retry_count: self.retry_count,
            effects: self
                .effects
                .into_iter()
                .map(|effect| Effect {
                    kind: effect.kind.into_owned(),
                    effect_hash: effect.effect_hash.into_owned(),
                })
                .collect(),
        }
    }

    /// The decision in its compact form (its event id is the event's).
    pub(crate) fn compact(&self) -> Recorded {
        Recorded {
            decision: self.decision,
            schedule_at_ms: self.schedule_at_ms,
            episode_id: self.episode_id,
            deadline_ms: self.deadline_ms,
            termination: self.termination.as_deref().map(termination),
            retry_count: self.retry_count,
            effects: self
                .effects
                .iter()
                .map(|effect| CompactEffect {
                    kind: kind(&effect.kind),
                    hash: EffectHash::read(&effect.effect_hash),
                })
                .collect(),
        }
    }
}

/// A recorded decision and its effects, compact; its event id is the
/// event's own (the decision line names it, checked as it is read).
#[derive(Debug)]
pub(crate) struct Recorded {
    decision: DecisionKind,
    schedule_at_ms: Option<i64>,
    episode_id: Option<u64>,
    deadline_ms: Option<u64>,
    termination: Option<Cow<'static, str>>,
    retry_count: u64,
    pub(crate) effects: Vec<CompactEffect>,
}

impl Recorded {
    /// The decision's fields, for [`super::compare_decision`].
    pub(crate) fn expected<'a>(&'a self, event_id: &'a str) -> ExpectedDecision<'a> {
        ExpectedDecision {
            event_id,
            decision: self.decision,
            schedule_at_ms: self.schedule_at_ms,
            episode_id: self.episode_id,
            deadline_ms: self.deadline_ms,
            termination: self.termination.as_deref(),
            retry_count: self.retry_count,
        }
    }
}

/// The fields of a recorded decision that replay compares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpectedDecision<'a> {
    pub(crate) event_id: &'a str,
    pub(crate) decision: DecisionKind,
    pub(crate) schedule_at_ms: Option<i64>,
    pub(crate) episode_id: Option<u64>,
    pub(crate) deadline_ms: Option<u64>,
    pub(crate) termination: Option<&'a str>,
    pub(crate) retry_count: u64,
}

impl<'a> From<&'a CapturedDecision> for ExpectedDecision<'a> {
    fn from(decision: &'a CapturedDecision) -> Self {
        Self {
            event_id: &decision.event_id,
            decision: decision.decision,
            schedule_at_ms: decision.schedule_at_ms,
            episode_id: decision.episode_id,
            deadline_ms: decision.deadline_ms,
            termination: decision.termination.as_deref(),
            retry_count: decision.retry_count,
        }
    }
}

/// A recorded effect as replay compares it with an appended event.
pub(crate) trait RecordedEffect {
    /// The kind as recorded.
    fn kind(&self) -> &str;
    /// Whether the recorded hash is the lowercase hex of `digest`.
    fn matches(&self, digest: &[u8; 32]) -> bool;
    /// The hash as recorded.
    fn hash_text(&self) -> Cow<'_, str>;
}

impl RecordedEffect for Effect {
    fn kind(&self) -> &str {
        &self.kind
    }
    fn matches(&self, digest: &[u8; 32]) -> bool {
        hex_matches(digest, &self.effect_hash)
    }
    fn hash_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.effect_hash)
    }
}

/// An effect, compact.
#[derive(Debug)]
pub(crate) struct CompactEffect {
    kind: Cow<'static, str>,
    hash: EffectHash,
}

/// An effect hash: the digest its lowercase hex stands for, or any other
/// text as written (which no digest matches).
#[derive(Debug)]
enum EffectHash {
    Digest([u8; 32]),
    Text(String),
}

impl EffectHash {
    fn read(text: &str) -> Self {
        match lowercase_hex(text.as_bytes()) {
            Some(digest) => Self::Digest(digest),
            None => Self::Text(text.to_string()),
        }
    }
}

/// The value of each lowercase hex digit; 0xff for every other byte.
static NIBBLES: [u8; 256] = {
    let mut nibbles = [0xff; 256];
    let mut digit = 0;
    while digit < 16 {
        let text = b"0123456789abcdef"[digit];
        nibbles[text as usize] = digit as u8;
        digit += 1;
    }
    nibbles
};

/// The 32 bytes that `text`, 64 lowercase hex digits, stands for (one
/// table look-up a digit: `hex::decode_to_slice` is far slower here).
fn lowercase_hex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in digest.iter_mut().zip(text.chunks_exact(2)) {
        let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    (invalid < 16).then_some(digest)
}

impl RecordedEffect for CompactEffect {
    fn kind(&self) -> &str {
        &self.kind
    }
    fn matches(&self, digest: &[u8; 32]) -> bool {
        matches!(&self.hash, EffectHash::Digest(recorded) if recorded == digest)
    }
    fn hash_text(&self) -> Cow<'_, str> {
        match &self.hash {
            EffectHash::Digest(digest) => Cow::Owned(hex::encode(digest)),
            EffectHash::Text(text) => Cow::Borrowed(text),
        }
    }
}

/// `text` as the vocabulary's own kind when it is one (no allocation),
/// else as written.
fn kind(text: &str) -> Cow<'static, str> {
    static KINDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    let kinds = KINDS.get_or_init(|| {
        let mut kinds: Vec<&'static str> = crate::event::vocabulary()
            .into_iter()
            .flat_map(|(_, kinds)| kinds.iter().copied())
            .collect();
        kinds.sort_unstable();
        kinds
    });
    match kinds.binary_search(&text) {
        Ok(index) => Cow::Borrowed(kinds[index]),
        Err(_) => Cow::Owned(text.to_string()),
    }
}

/// `text` as a fixed termination's own text when it is one, else as
/// written.
fn termination(text: &str) -> Cow<'static, str> {
    match ["completed", "timed_out", "aborted"]
        .into_iter()
        .find(|fixed| *fixed == text)
    {
        Some(fixed) => Cow::Borrowed(fixed),
        None => Cow::Owned(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lowercase_hex_of_64_digits_reads_as_a_digest() {
        let digest: [u8; 32] = std::array::from_fn(|i| (i * 37 + 11) as u8);
        let text = hex::encode(digest);
        assert_eq!(lowercase_hex(text.as_bytes()), Some(digest));
        assert_eq!(lowercase_hex(text.to_uppercase().as_bytes()), None);
        assert_eq!(lowercase_hex(&text.as_bytes()[..62]), None);
        let mut odd = text.clone().into_bytes();
        odd[17] = b'g';
        assert_eq!(lowercase_hex(&odd), None);
        let effect = CompactEffect {
            kind: kind("persona.run.started"),
            hash: EffectHash::read(&text),
        };
        assert!(effect.matches(&digest));
        assert_eq!(effect.hash_text(), text);
        let written = EffectHash::read("ABC");
        assert!(matches!(&written, EffectHash::Text(text) if text == "ABC"));
    }

    #[test]
    fn kinds_and_terminations_keep_their_text() {
        assert!(matches!(kind("persona.run.started"), Cow::Borrowed(_)));
        assert_eq!(kind("persona.run.started"), "persona.run.started");
        assert!(matches!(kind("made.up"), Cow::Owned(text) if text == "made.up"));
        assert!(matches!(
            termination("completed"),
            Cow::Borrowed("completed")
        ));
        assert_eq!(termination("failed:timeout"), "failed:timeout");
    }
}
