//! Pipeline lifecycle: audit entries with a per-run sequence number, partial
//! handoffs awaiting acknowledgement, the finalised disposition, and the
//! snapshot of work that is still unsettled when a pipeline finishes.
//!
//! Every event goes to topic [`LIFECYCLE_AUDIT_TOPIC`]. One counter numbers
//! both audit entries and handoff envelopes, so envelope ids
//! (`envelope_{seq}`) and audit sequence numbers never collide and replay can
//! match entries by shape rather than by time.
//!
//! Event kinds on the topic:
//! - `lifecycle_audit`: an `audit` step; payload is an [`AuditEntry`];
//! - `partial_handoff_recorded`: a `handoff` step; payload is a
//!   [`PartialHandoff`] (a handoff takes a sequence number but is not an audit
//!   entry, as in the modelled pipeline);
//! - `handoff_acknowledged`: an `ack_handoff` step; payload is the audit
//!   entry of kind `handoff_acknowledged` with `{envelope_id, decision}`;
//! - `pipeline_finalized`: a `finalize` step; payload is the audit entry of
//!   kind `pipeline_finalized` with `{disposition}`.
//!
//! Acknowledgement and finalisation have event kinds of their own so that a
//! user `audit` step that happens to use the kind `handoff_acknowledged`
//! cannot settle a handoff as a side effect.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{event_enum, serde_payloads};
use crate::log::{LogEvent, StoredEvent, Topic};
use crate::op::{AckHandoffOp, AuditOp, FinalizeOp, HandoffOp};

/// The topic every pipeline lifecycle event is written to.
pub const LIFECYCLE_AUDIT_TOPIC: &str = "pipeline.lifecycle.audit";

/// Event kind of an `audit` step.
pub const AUDIT_EVENT: &str = "lifecycle_audit";
/// Event kind of a `handoff` step.
pub const HANDOFF_EVENT: &str = "partial_handoff_recorded";
/// Event kind (and audit kind) of an `ack_handoff` step.
pub const ACK_EVENT: &str = "handoff_acknowledged";
/// Event kind (and audit kind) of a `finalize` step.
pub const FINALIZE_EVENT: &str = "pipeline_finalized";

event_enum! {
    /// One event on [`LIFECYCLE_AUDIT_TOPIC`].
    pub enum PipelineEvent {
        /// An `audit` step's entry.
        Audit(AuditEntry) = AUDIT_EVENT,
        /// A `handoff` step's envelope, awaiting acknowledgement.
        HandoffRecorded(PartialHandoff) = HANDOFF_EVENT,
        /// An `ack_handoff` step's audit entry.
        HandoffAcknowledged(AuditEntry<Acknowledgement>) = ACK_EVENT,
        /// A `finalize` step's audit entry.
        Finalized(AuditEntry<Disposition>) = FINALIZE_EVENT,
    }
}

serde_payloads!(
    AuditEntry,
    PartialHandoff,
    AuditEntry<Acknowledgement>,
    AuditEntry<Disposition>,
);

impl PipelineEvent {
    /// The event as it is appended at `now_ms`: audit entries carry headers
    /// `kind`, `seq` and `pipeline_id`; a handoff `envelope_id`, `seq` and
    /// `pipeline_id` (`pipeline_id` only when the pipeline has an id).
    pub fn to_log_event(&self, now_ms: i64) -> LogEvent {
        let (first, seq, pipeline_id) = match self {
            Self::Audit(entry) => (("kind", entry.kind.clone()), entry.seq, &entry.pipeline_id),
            Self::HandoffAcknowledged(entry) => {
                (("kind", entry.kind.clone()), entry.seq, &entry.pipeline_id)
            }
            Self::Finalized(entry) => (("kind", entry.kind.clone()), entry.seq, &entry.pipeline_id),
            Self::HandoffRecorded(handoff) => (
                ("envelope_id", handoff.envelope_id.clone()),
                handoff.seq,
                &handoff.from,
            ),
        };
        let mut headers = BTreeMap::from([
            (first.0.to_string(), first.1),
            ("seq".to_string(), seq.to_string()),
        ]);
        if let Some(id) = pipeline_id {
            headers.insert("pipeline_id".to_string(), id.clone());
        }
        LogEvent {
            kind: self.kind().into(),
            payload: self.payload(),
            headers: headers.into(),
            occurred_at_ms: now_ms,
        }
    }
}

/// The lifecycle topic as a validated [`Topic`].
pub fn lifecycle_topic() -> Topic {
    Topic::new(LIFECYCLE_AUDIT_TOPIC).expect("the lifecycle topic name is a valid topic")
}

/// Why a pipeline lifecycle step was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("{field} is empty, expected a non-empty name")]
    Empty { field: &'static str },
    #[error("unknown partial handoff envelope `{envelope}`")]
    UnknownEnvelope { envelope: String },
    #[error(
        "partial handoff envelope `{envelope}` was already acknowledged with decision `{decision}`"
    )]
    AlreadyAcknowledged { envelope: String, decision: String },
    #[error("pipeline is already finalized with disposition `{disposition}`")]
    AlreadyFinalized { disposition: String },
}

/// One audit entry. `seq` counts from 1 per pipeline run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry<P = Value> {
    pub seq: u64,
    /// The audit kind: the `audit` step's own, or the event kind for an
    /// acknowledgement or a finalisation.
    pub kind: String,
    pub payload: P,
    pub pipeline_id: Option<String>,
}

impl<P: Serialize> AuditEntry<P> {
    /// The entry with its payload as JSON, as the audit trail keeps it.
    fn untyped(&self) -> AuditEntry {
        AuditEntry {
            seq: self.seq,
            kind: self.kind.clone(),
            payload: to_value(&self.payload),
            pipeline_id: self.pipeline_id.clone(),
        }
    }
}

/// The payload of a `handoff_acknowledged` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Acknowledgement {
    pub envelope_id: String,
    /// Any JSON value.
    pub decision: Value,
}

/// The payload of a `pipeline_finalized` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Disposition {
    /// Any JSON value.
    pub disposition: Value,
}

/// A handoff to another pipeline or persona that has not been acknowledged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartialHandoff {
    /// `envelope_{seq}`.
    pub envelope_id: String,
    pub seq: u64,
    /// The pipeline that handed off, when the pipeline has an id.
    pub from: Option<String>,
    pub to: String,
    pub payload: Value,
    pub queued_at_ms: i64,
}

impl PartialHandoff {
    /// The envelope as it appears in the unsettled snapshot at `now_ms`.
    fn unsettled_at(&self, now_ms: i64) -> UnsettledHandoff {
        UnsettledHandoff {
            envelope_id: self.envelope_id.clone(),
            seq: self.seq,
            from: self.from.clone(),
            to: self.to.clone(),
            payload_summary: payload_summary(&self.payload),
            payload: self.payload.clone(),
            queued_at_ms: self.queued_at_ms,
            age_ms: now_ms.saturating_sub(self.queued_at_ms).max(0),
        }
    }
}

/// What an operation produced: the events to append, the receipt for the
/// step report and, for some operations, a JSON result.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineOutcome {
    /// Events for [`LIFECYCLE_AUDIT_TOPIC`], in order.
    pub events: Vec<LogEvent>,
    /// `recorded` (audit), the new envelope id (handoff), `acked` or
    /// `finalized`.
    pub receipt: String,
    pub result: Option<Value>,
}

/// The result of `ack_handoff`: the envelope as it stood unsettled, and
/// the audit entry of the acknowledgement.
#[derive(Serialize)]
struct AckResult<'a> {
    envelope: UnsettledHandoff,
    entry: &'a AuditEntry<Acknowledgement>,
}

/// The result of `finalize`: status `finalized`, the disposition, and the
/// audit entry of the finalisation.
#[derive(Serialize)]
struct FinalizeResult<'a> {
    status: &'static str,
    disposition: &'a Value,
    entry: &'a AuditEntry<Disposition>,
}

/// The folded lifecycle state of one pipeline run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pipeline {
    /// Written into audit entries and envelopes; configuration, not state.
    pipeline_id: Option<String>,
    /// The last sequence number used.
    seq: u64,
    audit: Vec<AuditEntry>,
    /// Unacknowledged handoffs in the order they were recorded.
    partial_handoffs: Vec<PartialHandoff>,
    /// Envelope id to the decision it was acknowledged with (any JSON).
    acknowledged: BTreeMap<String, Value>,
    disposition: Option<Value>,
}

impl Pipeline {
    /// An empty pipeline run whose entries carry `pipeline_id`.
    pub fn new(pipeline_id: Option<String>) -> Self {
        Self {
            pipeline_id,
            ..Self::default()
        }
    }

    /// Folds `events` from scratch, ignoring events of other topics.
    pub fn rebuild<'a>(
        pipeline_id: Option<String>,
        events: impl IntoIterator<Item = &'a StoredEvent>,
    ) -> Self {
        let mut pipeline = Self::new(pipeline_id);
        for event in events {
            pipeline.apply(event);
        }
        pipeline
    }

    /// The fold over the log: applies one stored event, ignoring other
    /// topics and kinds this version does not know.
    ///
    /// # Panics
    /// When an event of a known kind on the lifecycle topic has a payload
    /// this module did not write: the log is corrupt, which is a broken
    /// invariant rather than an expected failure.
    pub fn apply(&mut self, event: &StoredEvent) {
        if event.topic.as_str() != LIFECYCLE_AUDIT_TOPIC {
            return;
        }
        if let Some(decoded) = PipelineEvent::decode(&event.kind, &event.payload) {
            let decoded = decoded.unwrap_or_else(|error| {
                panic!("event {} on topic `{}`: {error}", event.id, event.topic)
            });
            self.apply_event(&decoded);
        }
    }

    /// The fold: applies one lifecycle event.
    pub fn apply_event(&mut self, event: &PipelineEvent) {
        match event {
            PipelineEvent::Audit(entry) => self.record_entry(entry.clone()),
            PipelineEvent::HandoffRecorded(handoff) => {
                self.seq = self.seq.max(handoff.seq);
                self.partial_handoffs.push(handoff.clone());
            }
            PipelineEvent::HandoffAcknowledged(entry) => {
                let ack = &entry.payload;
                self.partial_handoffs
                    .retain(|handoff| handoff.envelope_id != ack.envelope_id);
                self.acknowledged
                    .insert(ack.envelope_id.clone(), ack.decision.clone());
                self.record_entry(entry.untyped());
            }
            PipelineEvent::Finalized(entry) => {
                self.disposition = Some(entry.payload.disposition.clone());
                self.record_entry(entry.untyped());
            }
        }
    }

    fn record_entry(&mut self, entry: AuditEntry) {
        self.seq = self.seq.max(entry.seq);
        self.audit.push(entry);
    }

    /// Records an audit entry; receipt `recorded`, result the entry.
    pub fn audit(&self, op: &AuditOp, now_ms: i64) -> Result<PipelineOutcome, PipelineError> {
        if op.kind.is_empty() {
            return Err(PipelineError::Empty {
                field: "audit `kind`",
            });
        }
        let entry = self.entry(op.kind.clone(), op.payload.clone());
        let result = to_value(&entry);
        Ok(PipelineOutcome {
            events: vec![PipelineEvent::Audit(entry).to_log_event(now_ms)],
            receipt: "recorded".to_string(),
            result: Some(result),
        })
    }

    /// Records a partial handoff; receipt the new envelope id, result the
    /// envelope as the unsettled snapshot shows it.
    pub fn handoff(&self, op: &HandoffOp, now_ms: i64) -> Result<PipelineOutcome, PipelineError> {
        if op.to.is_empty() {
            return Err(PipelineError::Empty {
                field: "handoff `to`",
            });
        }
        let seq = self.seq + 1;
        let handoff = PartialHandoff {
            envelope_id: format!("envelope_{seq}"),
            seq,
            from: self.pipeline_id.clone(),
            to: op.to.clone(),
            payload: op.payload.clone(),
            queued_at_ms: now_ms,
        };
        Ok(PipelineOutcome {
            receipt: handoff.envelope_id.clone(),
            result: Some(to_value(&handoff.unsettled_at(now_ms))),
            events: vec![PipelineEvent::HandoffRecorded(handoff).to_log_event(now_ms)],
        })
    }

    /// Settles a partial handoff and audits the decision; receipt `acked`,
    /// result `{envelope, entry}`. An unknown or already acknowledged
    /// envelope is an error.
    pub fn ack_handoff(
        &self,
        op: &AckHandoffOp,
        now_ms: i64,
    ) -> Result<PipelineOutcome, PipelineError> {
        if let Some(decision) = self.acknowledged.get(&op.envelope) {
            return Err(PipelineError::AlreadyAcknowledged {
                envelope: op.envelope.clone(),
                decision: text_of(decision),
            });
        }
        let Some(handoff) = self
            .partial_handoffs
            .iter()
            .find(|handoff| handoff.envelope_id == op.envelope)
        else {
            return Err(PipelineError::UnknownEnvelope {
                envelope: op.envelope.clone(),
            });
        };
        if op.decision.as_str() == Some("") {
            return Err(PipelineError::Empty {
                field: "ack_handoff `decision`",
            });
        }
        let entry = self.entry(
            ACK_EVENT.to_string(),
            Acknowledgement {
                envelope_id: op.envelope.clone(),
                decision: op.decision.clone(),
            },
        );
        let result = to_value(&AckResult {
            envelope: handoff.unsettled_at(now_ms),
            entry: &entry,
        });
        Ok(PipelineOutcome {
            events: vec![PipelineEvent::HandoffAcknowledged(entry).to_log_event(now_ms)],
            receipt: "acked".to_string(),
            result: Some(result),
        })
    }

    /// Records the pipeline's disposition; receipt `finalized`, result
    /// `{status, disposition, entry}`. A pipeline is finalised once: a second
    /// `finalize` is an error (the modelled pipeline silently overwrote the first).
    pub fn finalize(&self, op: &FinalizeOp, now_ms: i64) -> Result<PipelineOutcome, PipelineError> {
        if let Some(disposition) = &self.disposition {
            return Err(PipelineError::AlreadyFinalized {
                disposition: text_of(disposition),
            });
        }
        if op.disposition.as_str() == Some("") {
            return Err(PipelineError::Empty {
                field: "finalize `disposition`",
            });
        }
        let entry = self.entry(
            FINALIZE_EVENT.to_string(),
            Disposition {
                disposition: op.disposition.clone(),
            },
        );
        let result = to_value(&FinalizeResult {
            status: "finalized",
            disposition: &op.disposition,
            entry: &entry,
        });
        Ok(PipelineOutcome {
            events: vec![PipelineEvent::Finalized(entry).to_log_event(now_ms)],
            receipt: "finalized".to_string(),
            result: Some(result),
        })
    }

    /// The next audit entry of this run.
    fn entry<P>(&self, kind: String, payload: P) -> AuditEntry<P> {
        AuditEntry {
            seq: self.seq + 1,
            kind,
            payload,
            pipeline_id: self.pipeline_id.clone(),
        }
    }

    /// The last sequence number used in this run (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Every audit entry in sequence order.
    pub fn audit_entries(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// Unacknowledged handoffs in the order they were recorded.
    pub fn partial_handoffs(&self) -> &[PartialHandoff] {
        &self.partial_handoffs
    }

    /// The finalised disposition, if any.
    pub fn disposition(&self) -> Option<&Value> {
        self.disposition.as_ref()
    }

    /// The unsettled-state snapshot at `now_ms`. Queued triggers belong to
    /// the persona runtime, so the caller passes them in; they are listed by
    /// queue time, then id. This runtime has no subagents, LLM calls or
    /// worker pools, so those buckets are always empty lists.
    pub fn unsettled(&self, queued_triggers: &[QueuedTrigger], now_ms: i64) -> UnsettledSnapshot {
        let mut triggers: Vec<UnsettledTrigger> = queued_triggers
            .iter()
            .map(|trigger| trigger.unsettled_at(now_ms))
            .collect();
        triggers.sort_by(|a, b| (a.queued_at_ms, &a.id).cmp(&(b.queued_at_ms, &b.id)));
        UnsettledSnapshot {
            suspended_subagents: Vec::new(),
            queued_triggers: triggers,
            partial_handoffs: self
                .partial_handoffs
                .iter()
                .map(|handoff| handoff.unsettled_at(now_ms))
                .collect(),
            in_flight_llm_calls: Vec::new(),
            pool_pending_tasks: Vec::new(),
        }
    }

    /// The state for the final report and for `expect.pipeline`.
    pub fn state(&self) -> PipelineSnapshot {
        PipelineSnapshot {
            pipeline_id: self.pipeline_id.clone(),
            seq: self.seq,
            audit: self.audit.clone(),
            partial_handoffs: self.partial_handoffs.clone(),
            acknowledged: self.acknowledged.clone(),
            disposition: self.disposition.clone(),
        }
    }

    /// [`Pipeline::state`] as JSON (keys sorted, as every output's are).
    pub fn snapshot(&self) -> Value {
        serde_json::to_value(self.state()).expect("a pipeline snapshot serialises")
    }
}

/// A decision or disposition in a message: a string as its text, any other
/// value as its JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The pipeline's state as the report shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSnapshot {
    pub pipeline_id: Option<String>,
    /// The last sequence number used.
    pub seq: u64,
    pub audit: Vec<AuditEntry>,
    /// Unacknowledged handoffs in the order they were recorded.
    pub partial_handoffs: Vec<PartialHandoff>,
    /// Envelope id to the decision it was acknowledged with (any JSON).
    pub acknowledged: BTreeMap<String, Value>,
    pub disposition: Option<Value>,
}

/// A trigger the persona runtime holds in its queue (for example while the
/// persona is paused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedTrigger {
    pub persona: String,
    pub work_key: String,
    pub queued_at_ms: i64,
}

impl QueuedTrigger {
    fn unsettled_at(&self, now_ms: i64) -> UnsettledTrigger {
        UnsettledTrigger {
            id: format!("trigger://{}/{}", self.persona, self.work_key),
            persona: self.persona.clone(),
            work_key: self.work_key.clone(),
            queued_at_ms: self.queued_at_ms,
            age_ms: now_ms.saturating_sub(self.queued_at_ms).max(0),
        }
    }
}

/// A queued trigger as the unsettled snapshot lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsettledTrigger {
    /// `trigger://{persona}/{work_key}`.
    pub id: String,
    pub persona: String,
    pub work_key: String,
    pub queued_at_ms: i64,
    pub age_ms: i64,
}

/// A partial handoff as the unsettled snapshot lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsettledHandoff {
    pub envelope_id: String,
    pub seq: u64,
    pub from: Option<String>,
    pub to: String,
    /// A short, stable description of the payload; see [`payload_summary`].
    pub payload_summary: String,
    pub payload: Value,
    pub queued_at_ms: i64,
    pub age_ms: i64,
}

/// Work that can outlive the pipeline body, bucket by bucket. The field
/// names are the bucket names a scenario's `expect: {unsettled: ...}` uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsettledSnapshot {
    pub suspended_subagents: Vec<Value>,
    pub queued_triggers: Vec<UnsettledTrigger>,
    pub partial_handoffs: Vec<UnsettledHandoff>,
    pub in_flight_llm_calls: Vec<Value>,
    pub pool_pending_tasks: Vec<Value>,
}

impl UnsettledSnapshot {
    /// The bucket names, in the order the summary lists them.
    pub const BUCKETS: [&'static str; 5] = [
        "suspended_subagents",
        "queued_triggers",
        "partial_handoffs",
        "in_flight_llm_calls",
        "pool_pending_tasks",
    ];

    /// Whether every bucket is empty.
    pub fn is_empty(&self) -> bool {
        self.counts().values().all(|&count| count == 0)
    }

    /// The short names of the counts, as the modelled runtime's snapshot reports them
    /// (and as `expect: {unsettled: ...}` names them), in bucket order.
    pub const COUNT_NAMES: [&'static str; 5] = [
        "suspended",
        "queued",
        "partial",
        "in_flight",
        "pool_pending",
    ];

    /// The number of items in each bucket, keyed by the modelled runtime's count names:
    /// `suspended`, `queued`, `partial`, `in_flight`, `pool_pending`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let lengths = [
            self.suspended_subagents.len(),
            self.queued_triggers.len(),
            self.partial_handoffs.len(),
            self.in_flight_llm_calls.len(),
            self.pool_pending_tasks.len(),
        ];
        Self::COUNT_NAMES
            .iter()
            .zip(lengths)
            .map(|(name, len)| (name.to_string(), len as u64))
            .collect()
    }

    /// One sentence for people: `no unsettled work`, or every bucket's count.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "no unsettled work".to_string();
        }
        format!(
            "unsettled work: {} suspended subagents, {} queued triggers, {} partial handoffs, \
             {} in-flight llm calls, {} pool pending tasks",
            self.suspended_subagents.len(),
            self.queued_triggers.len(),
            self.partial_handoffs.len(),
            self.in_flight_llm_calls.len(),
            self.pool_pending_tasks.len(),
        )
    }
}

/// A short description of a handoff payload, as the modelled pipeline computes it:
/// `nil`, the boolean or number as written, a string cut to 80 characters
/// (with `...` when cut), `list(len=N)`, or `object(keys=a,b)` naming the
/// first six keys in sorted order (with `,...` when there are more).
pub fn payload_summary(payload: &Value) -> String {
    const MAX_CHARS: usize = 80;
    const MAX_KEYS: usize = 6;
    match payload {
        Value::Null => "nil".to_string(),
        Value::Bool(value) => value.to_string(),
        Value::Number(value) => value.to_string(),
        Value::String(text) => {
            let mut chars = text.chars();
            let preview: String = chars.by_ref().take(MAX_CHARS).collect();
            if chars.next().is_some() {
                format!("{preview}...")
            } else {
                preview
            }
        }
        Value::Array(items) => format!("list(len={})", items.len()),
        Value::Object(map) => {
            // Sorted explicitly so the summary does not depend on whether
            // serde_json's `preserve_order` feature is enabled somewhere in
            // the build.
            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
            keys.sort_unstable();
            let shown = keys[..keys.len().min(MAX_KEYS)].join(",");
            if keys.len() > MAX_KEYS {
                format!("object(keys={shown},...)")
            } else {
                format!("object(keys={shown})")
            }
        }
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("lifecycle records serialise to JSON")
}
