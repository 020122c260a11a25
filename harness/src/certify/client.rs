//! The protocol client: an implementation under test as a driver
//! [`Backend`], so certify drives it with the same step driver as `run`.

use std::collections::BTreeSet;

use rehearse_runtime::engine::OpResult;
use rehearse_runtime::log::{LogEvent, StoredEvent, Topic};
use rehearse_runtime::op::Op;
use rehearse_runtime::{format_ms, parse_rfc3339_ms};
use serde_json::Value;

use super::child::{unexpected, Child, Failure};
use crate::driver::{Answered, Backend, DriverError, RunAnswer, StepError};
use crate::protocol::{
    Answer, AnswerKind, Capabilities, Implementation, OpAnswer, Query, QueryKind, Request,
    WireEvent, PROTOCOL_VERSION,
};

/// The implementation's `hello`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub implementation: Implementation,
    pub capabilities: Capabilities,
}

/// Says `hello` and checks the answer.
pub fn hello(child: &mut Child) -> Result<Hello, Failure> {
    let request = Request::Hello {
        protocol: PROTOCOL_VERSION.to_string(),
        harness: format!("rehearse/{}", env!("CARGO_PKG_VERSION")),
    };
    match child.request(&request)? {
        Answer::Hello {
            protocol,
            implementation,
            capabilities,
        } => {
            if protocol != PROTOCOL_VERSION {
                return Err(Failure::Protocol {
                    message: format!(
                        "the implementation speaks `{protocol}`, this harness `{PROTOCOL_VERSION}`"
                    ),
                });
            }
            Ok(Hello {
                implementation,
                capabilities,
            })
        }
        other => Err(unexpected("hello", &other)),
    }
}

/// A configured implementation, driven one operation at a time.
#[derive(Debug)]
pub struct Client {
    child: Child,
    answers: BTreeSet<AnswerKind>,
    /// The events its answers appended, as the driver reads a log.
    events: Vec<StoredEvent>,
}

impl Client {
    /// Sends the configuration; `child` has said `hello` with `answers`.
    pub fn configure(
        mut child: Child,
        answers: BTreeSet<AnswerKind>,
        scenario: &str,
        config: &rehearse_runtime::config::RuntimeConfig,
    ) -> Result<Self, Failure> {
        let request = Request::Configure {
            scenario: scenario.to_string(),
            config: config.clone(),
        };
        match child.request(&request)? {
            Answer::Configured {} => Ok(Self {
                child,
                answers,
                events: Vec::new(),
            }),
            other => Err(unexpected("configure", &other)),
        }
    }

    /// Ends the session.
    pub fn finish(self) -> Result<(), Failure> {
        self.child.finish()
    }

    fn declared(&self, kind: AnswerKind) -> bool {
        self.answers.contains(&kind)
    }

    /// The answer's events as stored events after the ones kept so far.
    fn append(&mut self, answer: &OpAnswer) -> Result<std::ops::Range<usize>, Failure> {
        let dropped = answer.dropped_events.unwrap_or(0);
        let keep = self
            .events
            .len()
            .saturating_sub(usize::try_from(dropped).unwrap_or(usize::MAX));
        self.events.truncate(keep);
        let start = self.events.len();
        for wire in answer.events.iter().flatten() {
            let id = self.events.len() as u64;
            self.events.push(stored(wire, id)?);
        }
        Ok(start..self.events.len())
    }

    /// Refuses an answer that leaves out something declared.
    fn check_declared(&self, answer: &OpAnswer) -> Result<(), Failure> {
        let missing = [
            (AnswerKind::Receipts, answer.receipt.is_none(), "receipt"),
            (AnswerKind::Events, answer.events.is_none(), "events"),
            (AnswerKind::Decisions, answer.decision.is_none(), "decision"),
        ]
        .into_iter()
        .find(|(kind, absent, _)| *absent && self.declared(*kind));
        match missing {
            Some((_, _, field)) => Err(Failure::Malformed {
                request: "op".to_string(),
                message: format!("`{field}` is declared but missing"),
            }),
            None => Ok(()),
        }
    }
}

/// A wire event as the driver stores it.
fn stored(wire: &WireEvent, id: u64) -> Result<StoredEvent, Failure> {
    let malformed = |message: String| Failure::Malformed {
        request: "op".to_string(),
        message,
    };
    let topic = Topic::new(wire.topic.clone())
        .map_err(|error| malformed(format!("event {}: {error}", id + 1)))?;
    let occurred_at_ms = parse_rfc3339_ms(&wire.occurred_at)
        .map_err(|error| malformed(format!("event {}: `occurred_at`: {error}", id + 1)))?;
    let event = LogEvent {
        kind: wire.kind.clone().into(),
        payload: wire.payload.clone().into(),
        headers: wire.headers.clone().into(),
        occurred_at_ms,
    };
    Ok(StoredEvent::new(topic, id, event))
}

impl Backend for Client {
    fn handle(
        &mut self,
        _index: usize,
        event_id: &str,
        at_ms: i64,
        op: &Op,
    ) -> Result<Answered, DriverError> {
        let request = Request::Op {
            event_id: event_id.to_string(),
            at_ms,
            at: format_ms(at_ms),
            op: op.clone(),
        };
        let answer = match self.child.request(&request)? {
            Answer::Result(answer) => answer,
            other => return Err(unexpected("op", &other).into()),
        };
        self.check_declared(&answer)?;
        let events = self.append(&answer)?;
        let result = if answer.receipt.as_deref() == Some("error") {
            Err(StepError::Implementation(
                answer.error.clone().unwrap_or_default(),
            ))
        } else {
            Ok(OpResult {
                receipt: answer.receipt.clone().unwrap_or_default(),
                receipts: answer.receipts.clone().unwrap_or_default(),
                error: answer.error.clone(),
                run: None,
                detail: answer.detail.clone(),
            })
        };
        Ok(Answered {
            decision: answer
                .decision
                .filter(|_| self.declared(AnswerKind::Decisions)),
            result,
            run: answer.run.map_or(RunAnswer::None, RunAnswer::Json),
            events,
        })
    }

    fn event_count(&self) -> usize {
        self.events.len()
    }

    fn events_from(&self, first: usize) -> &[StoredEvent] {
        &self.events[first..]
    }

    fn query(
        &mut self,
        query: QueryKind,
        persona: Option<&str>,
        now_ms: i64,
    ) -> Result<Value, DriverError> {
        if !self.declared(query.answer()) {
            return Ok(Value::Null);
        }
        let timed = matches!(query, QueryKind::Status | QueryKind::Unsettled);
        let request = Request::Query(Query {
            query,
            persona: persona.map(String::from),
            at_ms: timed.then_some(now_ms),
            at: timed.then(|| format_ms(now_ms)),
        });
        match self.child.request(&request)? {
            Answer::Answer { value } => Ok(value),
            other => Err(unexpected("query", &other).into()),
        }
    }
}
