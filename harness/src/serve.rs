//! `rehearse serve`: the reference runtime behind the certification
//! protocol (docs/PROTOCOL.md), reading requests from a reader and writing
//! one answer line per request to a writer.
//!
//! Each `configure` starts a fresh runtime over a durable log in a private
//! scratch directory (so `restart` steps, torn tails included, play as in
//! the driver), driven by the same [`Local`] backend as `run` and `check`.

use std::io::{BufRead, Write};

use rehearse_runtime::config::RuntimeConfig;
use rehearse_runtime::format_ms;
use rehearse_runtime::op::Op;

use crate::driver::{Backend, DriverError, Local, Storage};
use crate::protocol::{
    Answer, Capabilities, Implementation, OpAnswer, Query, Request, WireEvent, MAX_LINE_BYTES,
    PROTOCOL_VERSION,
};

/// Why serving stopped early: the reader or the writer failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("serve: failed to read a request: {0}")]
    Read(std::io::Error),
    #[error("serve: failed to write an answer: {0}")]
    Write(std::io::Error),
}

/// Answers requests from `input` on `output` until `end` or the end of
/// the input.
pub fn serve(input: &mut dyn BufRead, output: &mut dyn Write) -> Result<(), ServeError> {
    let mut server = Server { local: None };
    while let Some(line) = read_line(input)? {
        let (answer, done) = match line {
            Ok(text) => server.answer(&text),
            Err(bad) => (
                Answer::Error {
                    message: bad.to_string(),
                },
                false,
            ),
        };
        let mut text = serde_json::to_string(&answer).expect("an answer serialises");
        text.push('\n');
        output
            .write_all(text.as_bytes())
            .and_then(|()| output.flush())
            .map_err(ServeError::Write)?;
        if done {
            break;
        }
    }
    Ok(())
}

/// A request line that cannot be read as one, answered with an error.
#[derive(Debug, thiserror::Error)]
enum BadLine {
    #[error("a request line is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("a request line is not UTF-8")]
    NotUtf8,
}

/// The next line without its end, or why it is not a request line, or
/// `None` at the end of the input.
fn read_line(input: &mut dyn BufRead) -> Result<Option<Result<String, BadLine>>, ServeError> {
    let mut bytes = Vec::new();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let read = std::io::Read::take(&mut *input, limit)
        .read_until(b'\n', &mut bytes)
        .map_err(ServeError::Read)?;
    if read == 0 {
        return Ok(None);
    }
    if bytes.last() != Some(&b'\n') && bytes.len() > MAX_LINE_BYTES {
        // Skip the rest of the overlong line.
        let mut rest = Vec::new();
        input
            .read_until(b'\n', &mut rest)
            .map_err(ServeError::Read)?;
        return Ok(Some(Err(BadLine::TooLong)));
    }
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    Ok(Some(String::from_utf8(bytes).map_err(|_| BadLine::NotUtf8)))
}

/// The runtime of the scenario being served, once configured.
struct Server {
    local: Option<Local<'static>>,
}

impl Server {
    /// The answer to one request line, and whether it ended the session.
    fn answer(&mut self, line: &str) -> (Answer, bool) {
        let request = match serde_json::from_str::<Request>(line) {
            Ok(request) => request,
            Err(error) => {
                return (
                    Answer::Error {
                        message: format!("malformed request: {error}"),
                    },
                    false,
                )
            }
        };
        match request {
            Request::Hello { .. } => (hello(), false),
            Request::Configure { scenario, config } => (self.configure(&scenario, &config), false),
            Request::Op {
                event_id,
                at_ms,
                op,
                ..
            } => (self.op(&event_id, at_ms, &op), false),
            Request::Query(query) => (self.query(&query), false),
            Request::End {} => (Answer::Bye {}, true),
        }
    }

    fn configure(&mut self, scenario: &str, config: &RuntimeConfig) -> Answer {
        self.local = None;
        let built = Storage::scratch(scenario)
            .and_then(|storage| Local::new(scenario, config, scenario, storage, None));
        match built {
            Ok(local) => {
                self.local = Some(local);
                Answer::Configured {}
            }
            Err(error) => Answer::Error {
                message: error.to_string(),
            },
        }
    }

    fn op(&mut self, event_id: &str, at_ms: i64, op: &Op) -> Answer {
        let Some(local) = self.local.as_mut() else {
            return not_configured();
        };
        let before = local.event_count();
        match local.handle(0, event_id, at_ms, op) {
            Ok(answered) => {
                let events = local.events_from(answered.events.start)[..answered.events.len()]
                    .iter()
                    .map(WireEvent::of)
                    .collect();
                let dropped = before.saturating_sub(answered.events.start);
                Answer::Result(OpAnswer::of(answered, events, dropped))
            }
            Err(error) => Answer::Error {
                message: environment(&error),
            },
        }
    }

    fn query(&mut self, query: &Query) -> Answer {
        let Some(local) = self.local.as_mut() else {
            return not_configured();
        };
        let at_ms = query.at_ms.unwrap_or(0);
        match local.query(query.query, query.persona.as_deref(), at_ms) {
            Ok(value) => Answer::Answer { value },
            Err(error) => Answer::Error {
                message: environment(&error),
            },
        }
    }
}

fn environment(error: &DriverError) -> String {
    error.to_string()
}

fn not_configured() -> Answer {
    Answer::Error {
        message: "no scenario is configured: send `configure` first".to_string(),
    }
}

/// The reference's `hello`: every step kind, outcome and answer.
fn hello() -> Answer {
    Answer::Hello {
        protocol: PROTOCOL_VERSION.to_string(),
        implementation: Implementation {
            name: "rehearse".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        capabilities: Capabilities::all(),
    }
}

impl OpAnswer {
    /// The answer to an operation the reference handled.
    fn of(answered: crate::driver::Answered, events: Vec<WireEvent>, dropped: usize) -> Self {
        let mut answer = OpAnswer {
            decision: answered.decision,
            run: Some(answered.run.into_value()),
            events: Some(events),
            dropped_events: Some(dropped as u64),
            ..OpAnswer::default()
        };
        match answered.result {
            Ok(result) => {
                answer.receipt = Some(result.receipt);
                answer.receipts = Some(result.receipts);
                answer.error = result.error;
                answer.detail = result.detail;
            }
            Err(error) => {
                answer.receipt = Some("error".to_string());
                answer.receipts = Some(Vec::new());
                answer.error = Some(error.to_string());
            }
        }
        answer
    }
}

impl WireEvent {
    /// An event as the protocol carries it.
    pub fn of(event: &rehearse_runtime::log::StoredEvent) -> Self {
        Self {
            topic: event.topic.as_str().to_string(),
            id: Some(event.id),
            kind: event.kind.to_string(),
            occurred_at: format_ms(event.occurred_at_ms),
            headers: (*event.headers).clone(),
            payload: event.payload.value().clone(),
        }
    }
}
