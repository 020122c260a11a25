//! Reading an event log line by line: the project's own `events.jsonl` and
//! the upstream persona runtime's JSON Lines, into stored events.
//!
//! One line is one event: `topic`, `id`, `kind`, `headers` (optional),
//! `payload` and its time as `occurred_at` (an RFC 3339 string, or the
//! `time` crate's compact tuple `[year, ordinal day, hour, minute, second,
//! nanosecond, offset hours, offset minutes, offset seconds]`) or
//! `occurred_at_ms`. Unknown top-level fields and extra headers (such as
//! `harn.provenance.*`) are accepted and ignored by the checks. Each line is
//! read with a size limit and the whole log with a total limit, and nothing
//! but the current line is held: memory does not grow with the log.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use rehearse_runtime::clock::tuple_ms;
use rehearse_runtime::event::DecodeError;
use rehearse_runtime::persona::{PersonaEvent, PERSONA_TOPIC};
use rehearse_runtime::pipeline::LIFECYCLE_AUDIT_TOPIC;
use rehearse_runtime::process::PROCESS_TOPIC;
use rehearse_runtime::{
    format_ms, parse_rfc3339_ms, LogEvent, StoredEvent, TimeError, TimeTuple, Topic,
};
use serde::Deserialize;
use serde_json::Value;

use crate::scenario::{MAX_TIME_MS, MIN_TIME_MS};

/// The longest line read: 1 MiB. An event of the vocabulary is a few
/// hundred bytes.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The most bytes read from one log: 64 GiB.
pub const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024 * 1024;

/// Why a log could not be read: the file, the line (0 when the file itself
/// could not be opened) and what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct ReadError {
    pub file: String,
    pub line: usize,
    pub problem: LogProblem,
}

/// What was wrong with a log file or with the reading of it.
#[derive(Debug, thiserror::Error)]
pub enum LogProblem {
    #[error("cannot open: {0}")]
    Open(io::Error),
    #[error("it is {0}, expected a regular file holding a JSON Lines event log")]
    NotAFile(&'static str),
    #[error("cannot read: {0}")]
    Read(io::Error),
    #[error("the log is longer than {MAX_LOG_BYTES} bytes (64 GiB), the most read")]
    TooLong,
    #[error("line is longer than {MAX_LINE_BYTES} bytes (1 MiB), the longest event read")]
    LineTooLong,
    #[error(
        "event id {id} of topic `{topic}` does not follow id {last}: ids must grow within a topic"
    )]
    IdOrder { id: u64, topic: Topic, last: u64 },
    #[error(transparent)]
    Line(#[from] LineError),
}

/// What is wrong with one line of a log.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("invalid UTF-8 at byte {0}, expected a JSON object per line")]
    NotUtf8(usize),
    #[error("empty line, expected a JSON object per line")]
    Empty,
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("missing field `topic` (a file of one topic's events must be named `...<topic>.jsonl` for a topic the runtime writes)")]
    NoTopic,
    #[error("both `event` and a top-level `kind` or `payload`, expected one")]
    EventAndBody,
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("empty `kind`, expected an event kind")]
    EmptyKind,
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error("both `occurred_at` and `occurred_at_ms`, expected one")]
    BothTimes,
    #[error(
        "`occurred_at` is out of range, expected a time from {} to {}",
        format_ms(MIN_TIME_MS),
        format_ms(MAX_TIME_MS)
    )]
    TimeOutOfRange,
    #[error(transparent)]
    Event(#[from] DecodeError),
}

/// A log read one event at a time.
#[derive(Debug)]
pub struct LogReader<R> {
    file: String,
    input: R,
    line: usize,
    bytes: u64,
    buffer: Vec<u8>,
    /// The last id seen on each topic; ids must grow within a topic.
    last_ids: BTreeMap<Topic, u64>,
    /// The topic of lines that do not name one (a one-topic file).
    topic: Option<Topic>,
}

impl LogReader<BufReader<File>> {
    /// Opens the log at `path`; errors name it as given.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let file = path.display().to_string();
        let fail = |problem: LogProblem| ReadError {
            file: file.clone(),
            line: 0,
            problem,
        };
        // A FIFO or device is refused before it is opened (opening one can
        // block, and reading one need never end).
        let metadata = std::fs::metadata(path).map_err(|error| fail(LogProblem::Open(error)))?;
        if !metadata.is_file() {
            return Err(fail(LogProblem::NotAFile(crate::atomic::describe(
                &metadata.file_type(),
            ))));
        }
        let handle = File::open(path).map_err(|error| fail(LogProblem::Open(error)))?;
        let topic = topic_of_file(path);
        Ok(Self::new(file, BufReader::new(handle)).with_topic(topic))
    }
}

impl<R: BufRead> LogReader<R> {
    /// Reads the log from `input`, naming it `file` in errors.
    pub fn new(file: String, input: R) -> Self {
        Self {
            file,
            input,
            line: 0,
            bytes: 0,
            buffer: Vec::new(),
            last_ids: BTreeMap::new(),
            topic: None,
        }
    }

    /// Lines that name no topic are of `topic` (when given).
    pub fn with_topic(mut self, topic: Option<Topic>) -> Self {
        if topic.is_some() {
            self.topic = topic;
        }
        self
    }

    /// The next event with its line number, `None` at the end of the log.
    pub fn next_event(&mut self) -> Result<Option<(usize, StoredEvent)>, ReadError> {
        if !self.next_line()? {
            return Ok(None);
        }
        let event = parse_line_of(&self.buffer, self.topic.as_ref())
            .map_err(|error| self.error(error.into()))?;
        let last = self.last_ids.get(&event.topic).copied();
        if let Some(last) = last.filter(|last| event.id <= *last) {
            return Err(self.error(LogProblem::IdOrder {
                id: event.id,
                topic: event.topic.clone(),
                last,
            }));
        }
        self.last_ids.insert(event.topic.clone(), event.id);
        Ok(Some((self.line, event)))
    }

    /// Reads the next line into the buffer, without its line ending.
    fn next_line(&mut self) -> Result<bool, ReadError> {
        self.buffer.clear();
        self.line += 1;
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buffer)
            .map_err(|error: io::Error| self.error(LogProblem::Read(error)))?;
        if read == 0 {
            return Ok(false);
        }
        self.bytes += read as u64;
        if self.bytes > MAX_LOG_BYTES {
            return Err(self.error(LogProblem::TooLong));
        }
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
            if self.buffer.last() == Some(&b'\r') {
                self.buffer.pop();
            }
        } else if read as u64 == limit {
            return Err(self.error(LogProblem::LineTooLong));
        }
        Ok(true)
    }

    fn error(&self, problem: LogProblem) -> ReadError {
        ReadError {
            file: self.file.clone(),
            line: self.line,
            problem,
        }
    }
}

/// One line as written: the stored event's fields, either at the top level
/// (`events.jsonl`) or under `event` (the upstream's file event log, whose
/// lines name no topic: the file is one topic's).
#[derive(Deserialize)]
#[serde(expecting = "an event object with `topic`, `id`, `kind`, `payload` and `occurred_at`")]
struct Line {
    #[serde(default)]
    topic: Option<Topic>,
    id: u64,
    #[serde(default)]
    event: Option<Body>,
    #[serde(flatten)]
    body: MaybeBody,
}

/// An event's body: what happened, its headers and its time.
#[derive(Deserialize)]
#[serde(expecting = "an event body with `kind`, `payload` and `occurred_at`")]
struct Body {
    kind: String,
    #[serde(default)]
    headers: BTreeMap<String, HeaderValue>,
    payload: Value,
    #[serde(default)]
    occurred_at: Option<OccurredAt>,
    #[serde(default)]
    occurred_at_ms: Option<i64>,
}

/// The body's fields at the top level, each optional until it is known
/// which form the line has.
#[derive(Deserialize)]
struct MaybeBody {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, HeaderValue>,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    occurred_at: Option<OccurredAt>,
    #[serde(default)]
    occurred_at_ms: Option<i64>,
}

impl MaybeBody {
    fn into_body(self) -> Result<Body, LineError> {
        Ok(Body {
            kind: self.kind.ok_or(LineError::Missing("kind"))?,
            headers: self.headers,
            payload: self.payload.ok_or(LineError::Missing("payload"))?,
            occurred_at: self.occurred_at,
            occurred_at_ms: self.occurred_at_ms,
        })
    }
}

/// A header value: text, or a scalar kept as its JSON text.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a header value (a string, number or boolean)")]
enum HeaderValue {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl HeaderValue {
    fn into_text(self) -> String {
        match self {
            Self::Text(text) => text,
            Self::Number(number) => number.to_string(),
            Self::Bool(flag) => flag.to_string(),
        }
    }
}

/// `occurred_at` as the project writes it (RFC 3339) or as the `time`
/// crate's compact serde form writes an `OffsetDateTime`.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "an RFC 3339 timestamp or a tuple [year, ordinal day, hour, minute, second, nanosecond, offset hours, offset minutes, offset seconds]"
)]
enum OccurredAt {
    Text(String),
    Tuple([i64; 9]),
}

impl OccurredAt {
    fn to_ms(&self) -> Result<i64, TimeError> {
        match self {
            Self::Text(text) => parse_rfc3339_ms(text),
            Self::Tuple(parts) => tuple_ms(*parts),
        }
    }
}

/// The instant a JSON value writes, in either form `occurred_at` takes: an
/// RFC 3339 string or a compact `OffsetDateTime` tuple.
pub fn time_value_ms(value: &Value) -> Option<i64> {
    TimeTuple::from_value(value).ok().map(TimeTuple::ms)
}

/// The topic a one-topic file holds, from its name: a name ending in
/// `<topic>.jsonl` for a topic the runtime writes.
pub fn topic_of_file(path: &Path) -> Option<Topic> {
    let name = path.file_name()?.to_str()?;
    [PERSONA_TOPIC, PROCESS_TOPIC, LIFECYCLE_AUDIT_TOPIC]
        .into_iter()
        .find(|topic| name.ends_with(&format!("{topic}.jsonl")))
        .and_then(|topic| Topic::new(topic).ok())
}

/// Parses one line into a stored event; the error says what is wrong.
pub fn parse_line(bytes: &[u8]) -> Result<StoredEvent, LineError> {
    parse_line_of(bytes, None)
}

/// Parses one line; a line that names no topic is of `topic`.
fn parse_line_of(bytes: &[u8], topic: Option<&Topic>) -> Result<StoredEvent, LineError> {
    let text =
        std::str::from_utf8(bytes).map_err(|error| LineError::NotUtf8(error.valid_up_to()))?;
    if text.trim().is_empty() {
        return Err(LineError::Empty);
    }
    let line: Line = serde_json::from_str(text).map_err(LineError::Json)?;
    let topic = line
        .topic
        .or_else(|| topic.cloned())
        .ok_or(LineError::NoTopic)?;
    let body = match line.event {
        Some(body) if line.body.kind.is_none() && line.body.payload.is_none() => body,
        Some(_) => return Err(LineError::EventAndBody),
        None => line.body.into_body()?,
    };
    let occurred_at_ms = occurred_at_ms(&body)?;
    if body.kind.is_empty() {
        return Err(LineError::EmptyKind);
    }
    let mut payload = body.payload;
    // A value event's own `occurred_at` is read in either form and kept in
    // the vocabulary's, the tuple (docs/SCENARIOS.md, "Log interchange").
    let value_event = body.kind.starts_with("persona.value.");
    if let Some(at) = payload
        .get_mut("occurred_at")
        .filter(|at| value_event && at.is_string())
    {
        if let Some(tuple) = time_value_ms(at).and_then(|ms| TimeTuple(ms).parts()) {
            *at = Value::from(tuple.to_vec());
        }
    }
    let event = LogEvent {
        kind: body.kind.into(),
        payload: payload.into(),
        headers: body
            .headers
            .into_iter()
            .map(|(name, value)| (name, value.into_text()))
            .collect(),
        occurred_at_ms,
    };
    let event = StoredEvent::new(topic, line.id, event);
    // A persona event of a kind the vocabulary holds must read as its typed
    // payload; a kind it does not hold is kept and checked by nothing.
    if let Some(Err(error)) = PersonaEvent::from_stored(&event) {
        return Err(error.into());
    }
    Ok(event)
}

/// The body's time, from exactly one of its two fields, in range.
fn occurred_at_ms(body: &Body) -> Result<i64, LineError> {
    let ms = match (&body.occurred_at, body.occurred_at_ms) {
        (Some(at), None) => at.to_ms()?,
        (None, Some(ms)) => ms,
        (Some(_), Some(_)) => return Err(LineError::BothTimes),
        (None, None) => return Err(LineError::Missing("occurred_at")),
    };
    if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        return Err(LineError::TimeOutOfRange);
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<Vec<(usize, StoredEvent)>, ReadError> {
        let mut reader = LogReader::new("log.jsonl".to_string(), text.as_bytes());
        let mut events = Vec::new();
        while let Some(event) = reader.next_event()? {
            events.push(event);
        }
        Ok(events)
    }

    const RFC: &str = r#"{"topic":"persona.runtime.events","id":1,"kind":"upstream.note","occurred_at":"2026-04-24T12:00:00.25Z","headers":{"persona":"p"},"payload":{}}"#;
    const TUPLE: &str = r#"{"topic":"persona.runtime.events","id":1,"kind":"upstream.note","occurred_at":[2026,114,12,0,0,250000000,0,0,0],"headers":{"persona":"p","harn.provenance.run":"r-1","harn.provenance.seq":7},"payload":{}}"#;

    #[test]
    fn both_time_forms_read_the_same_instant() {
        let rfc = read_all(RFC).unwrap();
        let tuple = read_all(TUPLE).unwrap();
        assert_eq!(rfc[0].1.occurred_at_ms, tuple[0].1.occurred_at_ms);
        assert_eq!(
            rfc[0].1.occurred_at_ms,
            parse_rfc3339_ms("2026-04-24T12:00:00.25Z").unwrap()
        );
        assert_eq!(tuple[0].1.header("harn.provenance.seq"), Some("7"));
    }

    #[test]
    fn an_offset_in_the_tuple_is_applied() {
        let east = TUPLE.replace(
            "[2026,114,12,0,0,250000000,0,0,0]",
            "[2026,114,14,0,0,250000000,2,0,0]",
        );
        assert_eq!(
            read_all(&east).unwrap()[0].1.occurred_at_ms,
            read_all(RFC).unwrap()[0].1.occurred_at_ms
        );
    }

    #[test]
    fn garbage_names_its_line() {
        let cases = [
            (format!("{RFC}\nnot json\n"), 2, "expected"),
            (format!("{RFC}\n{RFC}\n"), 2, "does not follow id 1"),
            (RFC.replace("\"id\":1", "\"id\":\"one\""), 1, "invalid type"),
            (
                RFC.replace("2026-04-24T12:00:00.25Z", "yesterday"),
                1,
                "yesterday",
            ),
            (
                TUPLE.replace("[2026,114,", "[2026,400,"),
                1,
                "ordinal day 400",
            ),
            (
                RFC.replace("persona.runtime.events", "bad topic"),
                1,
                "invalid topic",
            ),
            (format!("{RFC}\n\n"), 2, "empty line"),
            (
                RFC.replace(",\"occurred_at\":\"2026-04-24T12:00:00.25Z\"", ""),
                1,
                "missing field `occurred_at`",
            ),
        ];
        for (text, line, needle) in cases {
            let error = read_all(&text).unwrap_err();
            assert_eq!(error.line, line, "{error}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("log.jsonl:{line}: ")),
                "{error}"
            );
            assert!(error.problem.to_string().contains(needle), "{error}");
        }
        let binary = [0xffu8, 0xfe, 0x00, b'\n'];
        let mut reader = LogReader::new("log.jsonl".to_string(), &binary[..]);
        assert!(reader
            .next_event()
            .unwrap_err()
            .problem
            .to_string()
            .contains("UTF-8"));
    }

    #[test]
    fn a_line_over_the_limit_is_refused_without_reading_it_all() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let error = read_all(&long).unwrap_err();
        assert_eq!(error.line, 1);
        assert!(error.problem.to_string().contains("longer than"), "{error}");
    }
}
