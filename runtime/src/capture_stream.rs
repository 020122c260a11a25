//! Version 3 capture bundles as JSON Lines, written as a run goes: a header
//! line, then each external event's line followed by its decision's line,
//! then the seal line. `docs/FORMATS.md` describes every field.
//!
//! The seal is the count of event and decision lines and the sha256 of
//! every byte before the seal line (newlines included), so a writer hashes
//! what it writes and a reader hashes what it reads, neither holding more
//! than one line.

use std::fmt;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::capture::{CaptureBundle, CapturedDecision, CapturedEvent};
use crate::config::RuntimeConfig;
use crate::json_out;
use crate::log::{Payload, StoredEvent};
use crate::seal::Seal;
use crate::supervisor::Decision;

/// The first line of a version 3 capture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureHeader {
    pub capture_version: String,
    /// The scenario the capture came from.
    pub scenario: String,
    pub config: RuntimeConfig,
    pub runtime_provenance: String,
    /// Whether the capture ran on the durable file log (its scenario
    /// restarts): replay then needs that backend too.
    pub durable_log: bool,
}

/// One line after the header, as written.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LineRef<'a> {
    Decision(&'a CapturedDecision),
    Seal(&'a Seal),
}

/// Writes a version 3 capture line by line into `W`, hashing every byte
/// for the seal. Nothing is held but the line being written.
pub struct CaptureWriter<W: Write> {
    out: W,
    hasher: Sha256,
    events: u64,
    decisions: u64,
    line: Vec<u8>,
}

impl<W: Write> fmt::Debug for CaptureWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureWriter")
            .field("events", &self.events)
            .field("decisions", &self.decisions)
            .finish_non_exhaustive()
    }
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture in `out` with its header line.
    pub fn new(out: W, header: &CaptureHeader) -> io::Result<Self> {
        let mut writer = Self {
            out,
            hasher: Sha256::new(),
            events: 0,
            decisions: 0,
            line: Vec::with_capacity(1024),
        };
        writer.write_line(header, true)?;
        Ok(writer)
    }

    /// Appends one external event's line: its fields in key order, the
    /// payload's canonical text spliced in as it is kept.
    pub fn event(&mut self, event: &CapturedEvent) -> io::Result<()> {
        use std::io::Write as _;
        let line = &mut self.line;
        line.clear();
        write!(
            line,
            "{{\"event\":{{\"at_ms\":{},\"event_id\":",
            event.at_ms
        )?;
        serde_json::to_writer(&mut *line, &event.event_id)?;
        line.extend_from_slice(b",\"payload\":");
        line.extend_from_slice(event.payload.json().as_bytes());
        line.extend_from_slice(b",\"payload_hash\":");
        serde_json::to_writer(&mut *line, &event.payload_hash)?;
        line.extend_from_slice(b"}}\n");
        self.hasher.update(&self.line);
        self.out.write_all(&self.line)?;
        self.events += 1;
        Ok(())
    }

    /// Appends one external event's line and its decision's line, written
    /// from what the session handled: the event's payload hash and each
    /// effect's hash (the digest of `effects[i]`, the events its episode
    /// appended) are computed here, hex straight into the line. The same
    /// bytes as [`CaptureWriter::event`] and [`CaptureWriter::decision`]
    /// of the [`CapturedEvent`] and [`CapturedDecision`] a bundle keeps.
    pub fn episode(
        &mut self,
        event_id: &str,
        at_ms: i64,
        payload: &Payload,
        decision: &Decision,
        effects: &[StoredEvent],
    ) -> io::Result<()> {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"event\":{\"at_ms\":");
        scalar(line, &at_ms)?;
        line.extend_from_slice(b",\"event_id\":");
        json_out::string(line, event_id);
        line.extend_from_slice(b",\"payload\":");
        line.extend_from_slice(payload.json().as_bytes());
        line.extend_from_slice(b",\"payload_hash\":");
        write_hex(line, &Sha256::digest(payload.json().as_bytes()).into());
        line.extend_from_slice(b"}}\n");
        self.events += 1;
        write_decision_line(line, decision, effects)?;
        self.decisions += 1;
        self.hasher.update(&self.line);
        self.out.write_all(&self.line)
    }

    /// Appends one decision's line (after its event's line).
    pub fn decision(&mut self, decision: &CapturedDecision) -> io::Result<()> {
        self.write_line(&LineRef::Decision(decision), true)?;
        self.decisions += 1;
        Ok(())
    }

    /// Writes the seal line, flushes and hands the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        let seal = Seal {
            events: self.events,
            decisions: self.decisions,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
        };
        self.write_line(&LineRef::Seal(&seal), false)?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes `value` as one line of canonical JSON (compact, keys sorted
    /// at every depth), so a line read into any JSON value and written
    /// back is the same bytes.
    fn write_line<T: Serialize>(&mut self, value: &T, sealed: bool) -> io::Result<()> {
        self.line.clear();
        crate::canonical::write(value, &mut self.line)?;
        self.line.push(b'\n');
        if sealed {
            self.hasher.update(&self.line);
        }
        self.out.write_all(&self.line)
    }
}

/// Appends a decision's line to `line`: [`CapturedDecision`]'s fields in
/// key order, as the canonical JSON of `{"decision": ...}` writes them.
fn write_decision_line(
    line: &mut Vec<u8>,
    decision: &Decision,
    effects: &[StoredEvent],
) -> serde_json::Result<()> {
    line.extend_from_slice(b"{\"decision\":{\"deadline_ms\":");
    scalar(line, &decision.deadline_ms)?;
    line.extend_from_slice(b",\"decision\":\"");
    line.extend_from_slice(decision.decision.as_str().as_bytes());
    line.extend_from_slice(b"\",\"effects\":[");
    for (index, effect) in effects.iter().enumerate() {
        if index > 0 {
            line.push(b',');
        }
        line.extend_from_slice(b"{\"effect_hash\":");
        write_hex(line, effect.digest());
        line.extend_from_slice(b",\"kind\":");
        json_out::string(line, &effect.kind);
        line.push(b'}');
    }
    line.extend_from_slice(b"],\"episode_id\":");
    scalar(line, &decision.episode_id)?;
    line.extend_from_slice(b",\"event_id\":");
    json_out::string(line, &decision.event_id);
    line.extend_from_slice(b",\"retry_count\":");
    scalar(line, &decision.retry_count)?;
    line.extend_from_slice(b",\"schedule_at_ms\":");
    scalar(line, &decision.schedule_at_ms)?;
    line.extend_from_slice(b",\"termination\":");
    scalar(line, &decision.termination)?;
    line.extend_from_slice(b"}}\n");
    Ok(())
}

/// Appends a number, a string or `null` (an absent option) as JSON.
fn scalar<T: Serialize + ?Sized>(line: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    serde_json::to_writer(line, value)
}

/// Appends a digest as a JSON string of lowercase hex.
fn write_hex(line: &mut Vec<u8>, digest: &[u8; 32]) {
    let mut hex = [0u8; 64];
    hex::encode_to_slice(digest, &mut hex).expect("64 hex digits hold 32 bytes");
    line.push(b'"');
    line.extend_from_slice(&hex);
    line.push(b'"');
}

impl CaptureBundle {
    /// The bundle's header line: `durable_log` is whether an event
    /// restarts (a run that restarts uses the durable file log).
    pub fn header(&self) -> CaptureHeader {
        CaptureHeader {
            capture_version: self.capture_version.clone(),
            scenario: self.scenario.clone(),
            config: self.config.clone(),
            runtime_provenance: self.runtime_provenance.clone(),
            durable_log: self.restarts(),
        }
    }

    /// The bundle as a version 3 capture (JSON Lines), whatever version it
    /// was read as: each event's line is followed by its decision's.
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut header = self.header();
        header.capture_version = crate::capture::CAPTURE_VERSION.to_string();
        let mut writer =
            CaptureWriter::new(Vec::new(), &header).expect("writing to memory cannot fail");
        let longest = self.events.len().max(self.decisions.len());
        for index in 0..longest {
            if let Some(event) = self.events.get(index) {
                writer.event(event).expect("writing to memory cannot fail");
            }
            if let Some(decision) = self.decisions.get(index) {
                writer
                    .decision(decision)
                    .expect("writing to memory cannot fail");
            }
        }
        writer.finish().expect("writing to memory cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> CaptureHeader {
        CaptureHeader {
            capture_version: crate::capture::CAPTURE_VERSION.to_string(),
            scenario: "s".to_string(),
            config: RuntimeConfig::default(),
            runtime_provenance: crate::capture::runtime_provenance(),
            durable_log: false,
        }
    }

    #[test]
    fn an_event_line_is_the_canonical_json_of_the_event() {
        let event = CapturedEvent {
            event_id: "e \"1\"\u{1}é".to_string(),
            at_ms: -3,
            payload: serde_json::json!({"trigger": {"persona": "p", "cost": {"usd": 0.5}}}).into(),
            payload_hash: "ab".to_string(),
        };
        let header = header();
        let mut writer = CaptureWriter::new(Vec::new(), &header).unwrap();
        writer.event(&event).unwrap();
        let mut expected =
            crate::canonical::to_vec(&serde_json::json!({ "event": event })).unwrap();
        expected.push(b'\n');
        assert_eq!(writer.line, expected);
    }

    /// An episode's two lines, written from what the session handled, are
    /// the lines of the event and decision a bundle keeps for it.
    #[test]
    fn an_episode_is_its_event_line_and_decision_line() {
        use crate::log::{LogEvent, Topic};
        use crate::op::FailKind;
        use crate::supervisor::{DecisionKind, Termination};
        let effect = |id: u64, kind: &str| {
            let event = LogEvent {
                kind: kind.to_string().into(),
                payload: serde_json::json!({"z": 1, "a": ["\u{1}é"]}).into(),
                headers: [("persona".to_string(), "p".to_string())].into(),
                occurred_at_ms: 7,
            };
            StoredEvent::new(Topic::new("t").unwrap(), id, event)
        };
        let effects = [effect(1, "k.one"), effect(2, "k \"two\"")];
        let invoked = Decision {
            event_id: "e \"1\"\u{2}".to_string(),
            decision: DecisionKind::Invoke,
            schedule_at_ms: None,
            episode_id: Some(3),
            deadline_ms: Some(u64::MAX),
            termination: Some(Termination::Failed(FailKind::ALL[0])),
            retry_count: 2,
        };
        let deferred = Decision {
            decision: DecisionKind::Defer,
            schedule_at_ms: Some(-5),
            episode_id: None,
            deadline_ms: None,
            termination: None,
            ..invoked.clone()
        };
        let payload: Payload = serde_json::json!({"pump": {}}).into();
        for (decision, effects) in [(&invoked, &effects[..]), (&deferred, &[][..])] {
            let header = header();
            let mut kept = CaptureWriter::new(Vec::new(), &header).unwrap();
            let event = CapturedEvent {
                event_id: "e".to_string(),
                at_ms: -9,
                payload: payload.clone(),
                payload_hash: crate::hash::sha256_hex(payload.json().as_bytes()),
            };
            kept.event(&event).unwrap();
            kept.decision(&CapturedDecision::of(decision, effects))
                .unwrap();
            let mut handed = CaptureWriter::new(Vec::new(), &header).unwrap();
            handed
                .episode("e", -9, &payload, decision, effects)
                .unwrap();
            assert_eq!(
                String::from_utf8(handed.finish().unwrap()).unwrap(),
                String::from_utf8(kept.finish().unwrap()).unwrap()
            );
        }
    }
}
