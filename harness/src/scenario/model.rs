//! The scenario model: what a scenario file says, with its times resolved
//! and the source position of every step and persona.

use std::collections::BTreeMap;
use std::fmt;

use rehearse_runtime::op::Op;
use rehearse_runtime::{format_ms, Constraints, PersonaSpec, RuntimeConfig};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::at::At;
use super::expect_keys::{EventMatch, ProcessExpect};
use super::sequence::{Sequence, SequenceBody};
use rehearse_runtime::Millis;

/// The supervisor's decision and an invocation's end, as the runtime types them.
pub use rehearse_runtime::supervisor::{DecisionKind as Decision, Termination};

/// The only scenario format version this harness reads.
pub const FORMAT_VERSION: u32 = 1;

/// A line and column in a scenario file, both counted from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One scenario: personas, supervisor constraints and timed steps.
///
/// Equality ignores source positions: two scenarios are equal when they say
/// the same thing, wherever it was written.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// `[a-z0-9_-]+`; the file stem when the file gives no `name`.
    pub name: String,
    pub description: Option<String>,
    /// The scenario clock's origin, in milliseconds since the epoch.
    pub start_ms: i64,
    /// The source of every generated id.
    pub seed: u64,
    pub personas: BTreeMap<String, PersonaSpec>,
    /// Absent means no limits and no retries.
    pub supervisor: Option<Constraints>,
    pub steps: Vec<Step>,
    /// Where each persona's name is written in the file.
    pub persona_positions: BTreeMap<String, Position>,
}

impl PartialEq for Scenario {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.name == other.name
            && self.description == other.description
            && self.start_ms == other.start_ms
            && self.seed == other.seed
            && self.personas == other.personas
            && self.supervisor == other.supervisor
            && self.steps == other.steps
    }
}

impl Scenario {
    /// What the runtime is built from: the start, the seed, the personas and
    /// the supervisor's constraints (default: none).
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            start_ms: self.start_ms,
            seed: self.seed,
            personas: self.personas.clone(),
            supervisor: self.supervisor.clone().unwrap_or_default(),
        }
    }

    /// Whether any step restarts the runtime, which needs the file backend
    /// from the first step on.
    pub fn has_restart(&self) -> bool {
        self.steps
            .iter()
            .any(|step| matches!(step.op, Some(Op::Restart(_))))
    }

    /// The scenario as readable YAML that parses back to an equal scenario.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|error| {
            // Every field serializes to plain YAML (maps, strings, numbers),
            // so a failure here is a bug in the model, not bad input.
            panic!("scenario `{}` failed to serialize: {error}", self.name)
        })
    }
}

impl Serialize for Scenario {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("version", &self.version)?;
        map.serialize_entry("name", &self.name)?;
        if let Some(description) = &self.description {
            map.serialize_entry("description", description)?;
        }
        map.serialize_entry("start", &format_ms(self.start_ms))?;
        map.serialize_entry("seed", &self.seed)?;
        map.serialize_entry("personas", &self.personas)?;
        if let Some(supervisor) = &self.supervisor {
            map.serialize_entry("supervisor", supervisor)?;
        }
        map.serialize_entry("steps", &self.steps)?;
        map.end()
    }
}

/// One timed step: an operation, an expectation, or both.
///
/// Equality ignores the source position.
#[derive(Clone, Debug)]
pub struct Step {
    /// When the step happens, in milliseconds since the epoch.
    pub at_ms: i64,
    /// When the step happens, as written.
    pub at: At,
    /// `None` for a step that only checks expectations or that expands
    /// into many events.
    pub op: Option<Op>,
    /// An `advance` or `repeat` step: many external events.
    pub sequence: Option<Sequence>,
    pub expect: Option<Expect>,
    /// Where the step starts in the file (its first key, or its `{`).
    pub line: usize,
    pub column: usize,
}

impl PartialEq for Step {
    fn eq(&self, other: &Self) -> bool {
        self.at_ms == other.at_ms
            && self.at == other.at
            && self.op == other.op
            && self.sequence == other.sequence
            && self.expect == other.expect
    }
}

impl Step {
    /// The step kind (`trigger`, `advance`, ...), or `expect` for a step
    /// that only checks.
    pub fn kind(&self) -> &'static str {
        match (&self.op, &self.sequence) {
            (Some(op), _) => op.kind(),
            (None, Some(sequence)) => sequence.kind(),
            (None, None) => "expect",
        }
    }

    /// When the step's last event happens: its `at`, or a `repeat`'s last
    /// repetition.
    pub fn end_ms(&self) -> i64 {
        self.sequence
            .as_ref()
            .map_or(self.at_ms, |sequence| sequence.end_ms(self.at_ms))
    }

    /// Where the step starts in the file.
    pub fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("at", &self.at)?;
        if let Some(op) = &self.op {
            map.serialize_entry(op.kind(), &OpBody(op))?;
        }
        if let Some(sequence) = &self.sequence {
            map.serialize_entry(sequence.kind(), &SequenceBody(sequence))?;
        }
        if let Some(expect) = &self.expect {
            map.serialize_entry("expect", expect)?;
        }
        map.end()
    }
}

/// An operation's body alone, for writing it beside `at` and `expect` in
/// one step map.
struct OpBody<'a>(&'a Op);

impl Serialize for OpBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Op::Trigger(body) => body.serialize(serializer),
            Op::Tick(body) => body.serialize(serializer),
            Op::Pause(name) | Op::Resume(name) | Op::Disable(name) => name.serialize(serializer),
            Op::Spend(body) => body.serialize(serializer),
            Op::Pump(body) => body.serialize(serializer),
            Op::RepairWorker(body) => body.serialize(serializer),
            Op::RestoreCheckpoint(body) => body.serialize(serializer),
            Op::Process(body) => body.serialize(serializer),
            Op::Audit(body) => body.serialize(serializer),
            Op::Handoff(body) => body.serialize(serializer),
            Op::AckHandoff(body) => body.serialize(serializer),
            Op::Finalize(body) => body.serialize(serializer),
            Op::Fault(body) => body.serialize(serializer),
            Op::Restart(body) => body.serialize(serializer),
        }
    }
}

/// The counts of the unsettled-state snapshot that `expect.unsettled` may name.
pub const UNSETTLED_COUNTS: [&str; 5] = [
    "suspended",
    "queued",
    "partial",
    "in_flight",
    "pool_pending",
];

/// What a step expects; every key is optional and each is checked on its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an expectation such as `{receipt: completed}`"
)]
#[schemars(extend("dependencies" = { "persona": ["status"], "status": ["persona"] }))]
pub struct Expect {
    /// The status string this step returned (`completed`, `queued`, `deferred`, `idle`, `ok`, `error`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// The receipts a `resume` produced, in drain order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipts: Option<Vec<String>>,
    /// A substring of this step's error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The supervisor's decision for this step's event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// When a deferred event is scheduled: an offset from `start` or an RFC 3339 UTC timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_at: Option<At>,
    /// How many times the supervisor retried this step's event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<u64>,
    /// How the supervisor's invocation ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination: Option<Termination>,
    /// The persona whose status `status` describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    /// Dotted paths into the persona's status JSON (`budget.spent_today_usd`, `queued_work.0.work_key`) and their values; `null` for an absent value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "path_map_schema")]
    pub status: BTreeMap<String, serde_json::Value>,
    /// Counts of the unsettled-state snapshot: `suspended`, `queued`, `partial`, `in_flight`, `pool_pending`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "unsettled_schema")]
    pub unsettled: BTreeMap<String, u64>,
    /// The events this step appended, in order and in number: kinds, or `{kind, topic?, headers?, payload?}` matched as subsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventMatch>>,
    /// Events this step appended, as an ordered subsequence (others may come between).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_include: Option<Vec<EventMatch>>,
    /// Dotted paths into the step's run receipt (`status`, `run_id`, `lease.id`, `budget_receipt_id`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "path_map_schema")]
    pub run: BTreeMap<String, serde_json::Value>,
    /// The episode id of the supervisor's decision for this step's event; `null` for a decision without one.
    #[serde(
        default,
        deserialize_with = "value_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub episode_id: Option<Option<u64>>,
    /// The deadline the supervisor's decision carries, as a duration such as `30s`; `null` for a decision without one.
    #[serde(
        default,
        deserialize_with = "value_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline: Option<Option<Millis>>,
    /// How many receipts of each status a `resume`, `advance` or `repeat` produced, such as `{completed: 95, budget_exhausted: 1}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_counts: Option<BTreeMap<String, u64>>,
    /// Dotted paths into the list of run records so far (`count`, `0.status`, `1.stages.0.name`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "path_map_schema")]
    pub records: BTreeMap<String, serde_json::Value>,
    /// One process record: `{id: ID, <path>: value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessExpect>,
    /// Dotted paths into the pipeline state (`seq`, `audit.0.kind`, `disposition`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "path_map_schema")]
    pub pipeline: BTreeMap<String, serde_json::Value>,
}

/// An expectation key that may be `null`: absent is `None` (not checked),
/// `null` is `Some(None)` (expected absent), a value is `Some(Some(value))`.
fn value_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A map of dotted paths to expected values; each path is one or more
/// non-empty segments separated by dots.
fn path_map_schema(_generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "propertyNames": { "pattern": PATH_PATTERN },
    })
}

/// What an expectation path looks like: non-empty segments separated by dots.
pub const PATH_PATTERN: &str = r"^[^.]*[^.\s][^.]*(\.[^.]*[^.\s][^.]*)*$";

impl Expect {
    /// `schedule_at` as an absolute time, resolved against `start_ms`.
    pub fn schedule_at_ms(&self, start_ms: i64) -> Option<i64> {
        self.schedule_at.and_then(|at| at.resolve(start_ms))
    }
}

fn unsettled_schema(_generator: &mut SchemaGenerator) -> Schema {
    let properties: serde_json::Map<String, serde_json::Value> = UNSETTLED_COUNTS
        .iter()
        .map(|name| {
            (
                (*name).to_owned(),
                serde_json::json!({ "type": "integer", "minimum": 0 }),
            )
        })
        .collect();
    json_schema!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    })
}
