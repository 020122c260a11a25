//! The certification protocol, `rehearse-protocol/1`: the messages `rehearse
//! certify` and an implementation under test exchange as JSON Lines over
//! the child's standard input and output (docs/PROTOCOL.md). The JSON Schema
//! of every message, `docs/protocol.schema.json`, is generated from these
//! types (`rehearse schema --protocol`).

use std::collections::{BTreeMap, BTreeSet};

use rehearse_runtime::config::RuntimeConfig;
use rehearse_runtime::op::{Op, OP_KINDS};
use rehearse_runtime::supervisor::Decision;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this harness speaks.
pub const PROTOCOL_VERSION: &str = "rehearse-protocol/1";

/// The longest line either side may write: 16 MiB.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// What the harness sends, one JSON object a line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The first request: the protocol the harness speaks and its name.
    Hello {
        /// `rehearse-protocol/1`.
        protocol: String,
        /// The harness's name and version (`rehearse/0.1.0`).
        harness: String,
    },
    /// The scenario's runtime configuration, as a capture bundle carries it.
    Configure {
        /// The scenario's `name`.
        scenario: String,
        config: RuntimeConfig,
    },
    /// One external event.
    Op {
        /// `step-N`, or `step-N.K` for the K-th event of an `advance` or `repeat`.
        event_id: String,
        /// Scenario time, milliseconds since the Unix epoch.
        at_ms: i64,
        /// The same instant in RFC 3339 UTC.
        at: String,
        op: Op,
    },
    /// A question an expectation or the final comparison asks.
    Query(Query),
    /// The last request: answer `bye` and exit with status 0.
    End {},
}

/// A query: what it asks for and, for some, of whom and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub query: QueryKind,
    /// The persona a `status` query is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    /// When a `status` or `unsettled` query is asked, in scenario time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
    /// `at_ms` in RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// What a query asks for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// A persona's status (`report.json`'s `final_state.personas.NAME`).
    Status,
    /// Every run record, in start order.
    Records,
    /// Every process record, by process id.
    Processes,
    /// The pipeline state.
    Pipeline,
    /// The unsettled counts, by name.
    Unsettled,
}

impl QueryKind {
    /// The answer kind a query of this kind needs declared.
    pub fn answer(self) -> AnswerKind {
        match self {
            Self::Status => AnswerKind::Status,
            Self::Records => AnswerKind::Records,
            Self::Processes => AnswerKind::Processes,
            Self::Pipeline => AnswerKind::Pipeline,
            Self::Unsettled => AnswerKind::Unsettled,
        }
    }
}

/// What the implementation answers, one JSON object a line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Answer {
    /// The answer to `hello`.
    Hello {
        /// The protocol version the implementation speaks.
        protocol: String,
        implementation: Implementation,
        capabilities: Capabilities,
    },
    /// The answer to `configure`.
    Configured {},
    /// The answer to `op`.
    Result(OpAnswer),
    /// The answer to `query`.
    Answer {
        /// The status, records, processes, pipeline or counts asked for.
        value: Value,
    },
    /// The implementation cannot play this configuration or operation.
    Unsupported { message: String },
    /// The implementation failed internally.
    Error { message: String },
    /// The answer to `end`.
    Bye {},
}

/// Who answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Implementation {
    /// Its name (`harn-vm`); names its manifest `conformance/<name>.toml`.
    pub name: String,
    /// Its version (`0.10.185`).
    pub version: String,
}

/// What an implementation declares it can be sent and answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// The step kinds it can be sent.
    pub steps: BTreeSet<StepKind>,
    /// The trigger and tick outcomes it can play.
    pub outcomes: BTreeSet<OutcomeKind>,
    /// What it answers, and so what certify compares.
    pub answers: BTreeSet<AnswerKind>,
}

impl Capabilities {
    /// Everything: what the reference runtime declares.
    pub fn all() -> Self {
        Self {
            steps: OP_KINDS
                .iter()
                .map(|kind| StepKind(kind.to_string()))
                .collect(),
            outcomes: OutcomeKind::ALL.into_iter().collect(),
            answers: AnswerKind::ALL.into_iter().collect(),
        }
    }
}

/// A step kind (`trigger`, `pause`, ...), one of the scenario format's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StepKind(pub String);

/// A step kind the scenario format does not have.
#[derive(Debug, thiserror::Error)]
#[error("unknown step kind `{0}`, expected one of {kinds}", kinds = rehearse_runtime::op::expected_kinds())]
pub struct UnknownStepKind(pub String);

impl TryFrom<String> for StepKind {
    type Error = UnknownStepKind;
    fn try_from(kind: String) -> Result<Self, UnknownStepKind> {
        if OP_KINDS.contains(&kind.as_str()) {
            Ok(Self(kind))
        } else {
            Err(UnknownStepKind(kind))
        }
    }
}

impl From<StepKind> for String {
    fn from(kind: StepKind) -> Self {
        kind.0
    }
}

impl JsonSchema for StepKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepKind".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A step kind of the scenario format.",
            "type": "string",
            "enum": OP_KINDS,
        })
    }
}

/// How a trigger or tick may be scripted to end.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// `outcome: completed` (the default).
    Completed,
    /// `outcome: crash`.
    Crash,
    /// `outcome: {fail: KIND}`.
    Fail,
    /// `outcome: {attempts: [...]}`.
    Attempts,
    /// A run with a non-zero `duration`.
    Duration,
}

impl OutcomeKind {
    pub const ALL: [Self; 5] = [
        Self::Completed,
        Self::Crash,
        Self::Fail,
        Self::Attempts,
        Self::Duration,
    ];
}

/// A kind of answer an implementation gives.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// `receipt`, `receipts`, `error`, `run` and `detail` of each operation.
    Receipts,
    /// The events each operation appended.
    Events,
    /// The supervisor's decision on each operation.
    Decisions,
    /// `status` queries.
    Status,
    /// `records` queries.
    Records,
    /// `processes` queries.
    Processes,
    /// `pipeline` queries.
    Pipeline,
    /// `unsettled` queries.
    Unsettled,
}

impl AnswerKind {
    pub const ALL: [Self; 8] = [
        Self::Receipts,
        Self::Events,
        Self::Decisions,
        Self::Status,
        Self::Records,
        Self::Processes,
        Self::Pipeline,
        Self::Unsettled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipts => "receipts",
            Self::Events => "events",
            Self::Decisions => "decisions",
            Self::Status => "status",
            Self::Records => "records",
            Self::Processes => "processes",
            Self::Pipeline => "pipeline",
            Self::Unsettled => "unsettled",
        }
    }

    /// The answer an inline expectation's `path` reads (`receipt`,
    /// `status.budget.spent_today_usd`, `events.1.kind`, ...).
    pub fn of_expectation(path: &str) -> Self {
        let root = path.split('.').next().unwrap_or(path);
        match root {
            "decision" | "schedule_at" | "retry_count" | "termination" | "episode_id"
            | "deadline" => Self::Decisions,
            "events" | "events_include" => Self::Events,
            "status" => Self::Status,
            "records" => Self::Records,
            "process" => Self::Processes,
            "pipeline" => Self::Pipeline,
            "unsettled" => Self::Unsettled,
            _ => Self::Receipts,
        }
    }
}

/// The answer to one operation. Answers the implementation does not
/// declare may be omitted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpAnswer {
    /// The receipt (`completed`, `queued`, `ok`, ...), or `error`.
    #[serde(default)]
    pub receipt: Option<String>,
    /// For `resume`: one receipt per drained item, in drain order.
    #[serde(default)]
    pub receipts: Option<Vec<String>>,
    /// The error message of a refused or failed operation.
    #[serde(default)]
    pub error: Option<String>,
    /// The run receipt of a trigger or tick.
    #[serde(default)]
    pub run: Option<Value>,
    /// Operation-specific values (`report.json`'s `detail`).
    #[serde(default)]
    pub detail: Option<Value>,
    /// The supervisor's decision.
    #[serde(default)]
    #[schemars(with = "Option<WireDecision>")]
    pub decision: Option<Decision>,
    /// Every event the operation appended, in append order.
    #[serde(default)]
    pub events: Option<Vec<WireEvent>>,
    /// How many events a `restart` dropped from the end of the log (a torn
    /// tail) before this operation's events; `0` or absent otherwise.
    #[serde(default)]
    pub dropped_events: Option<u64>,
}

/// A decision as `report.json` writes it (the schema's view of the
/// runtime's `Decision`).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct WireDecision {
    event_id: String,
    /// `invoke` or `defer`.
    #[schemars(regex(pattern = r"^(invoke|defer)$"))]
    decision: String,
    schedule_at_ms: Option<i64>,
    episode_id: Option<u64>,
    deadline_ms: Option<u64>,
    /// `completed`, `timed_out`, `aborted` or `failed:<kind>`.
    termination: Option<String>,
    retry_count: u64,
}

/// One appended event, as a line of `events.jsonl` writes it; its payload
/// is in the event vocabulary of docs/events.schema.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    pub topic: String,
    /// The event's position in its topic; allowed, never compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub kind: String,
    /// RFC 3339 UTC.
    pub occurred_at: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub payload: Value,
}

/// Every message of the protocol, for the schema: a request or an answer.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum Message {
    Request(Request),
    Answer(Answer),
}

/// The JSON Schema of the protocol (`docs/protocol.schema.json`), pretty,
/// with a trailing newline.
pub fn protocol_schema_text() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<Message>();
    schema.insert(
        "title".to_string(),
        Value::String(format!("{PROTOCOL_VERSION} messages")),
    );
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_read_back_and_refuse_unknown_fields() {
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION.to_string(),
            harness: "rehearse/0".to_string(),
        };
        let line = serde_json::to_string(&hello).unwrap();
        assert_eq!(
            line,
            r#"{"type":"hello","protocol":"rehearse-protocol/1","harness":"rehearse/0"}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), hello);
        let bad = r#"{"type":"configured","extra":1}"#;
        assert!(serde_json::from_str::<Answer>(bad).is_err());
        let bad = r#"{"type":"result","receipt":"ok","surprise":true}"#;
        assert!(serde_json::from_str::<Answer>(bad).is_err());
        let bad = r#"{"type":"hello","protocol":"p","implementation":{"name":"x","version":"1"},"capabilities":{"steps":["teleport"],"outcomes":[],"answers":[]}}"#;
        assert!(serde_json::from_str::<Answer>(bad).is_err());
    }

    #[test]
    fn expectation_paths_map_to_the_answer_they_read() {
        let cases = [
            ("receipt", AnswerKind::Receipts),
            ("run.status", AnswerKind::Receipts),
            ("decision", AnswerKind::Decisions),
            ("status.budget.spent_today_usd", AnswerKind::Status),
            ("events.0.kind", AnswerKind::Events),
            ("process.p-1.state", AnswerKind::Processes),
        ];
        for (path, kind) in cases {
            assert_eq!(AnswerKind::of_expectation(path), kind, "{path}");
        }
    }
}
