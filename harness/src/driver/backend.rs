//! What the driver drives: a [`Backend`] runs one external event and
//! answers the queries expectations make. [`Local`] is the reference
//! runtime in this process (a capture session, with the invariant checker
//! and an observer); `certify`'s protocol client is the other backend, so
//! both go through one step driver.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;

use rehearse_runtime::capture::Session;
use rehearse_runtime::engine::RunLedger;
use rehearse_runtime::engine::{OpResult, Runtime, RuntimeError};
use rehearse_runtime::log::{EventLog, MemoryLog, StoredEvent, WindowLog};
use rehearse_runtime::op::Op;
use rehearse_runtime::persona::RunReceipt;
use rehearse_runtime::run_record::RunRecord;
use rehearse_runtime::supervisor::{Decision, DecisionKind, Handled};
use serde_json::Value;

use super::handoff::{Handoff, Streams};
use super::{DriverError, StepObserver};
use crate::explore::{Checker, ReadEvent, StepContext, Violation};
use crate::protocol::QueryKind;
use crate::report::InvariantViolation;

/// Why an operation failed: the reference runtime's refusal, or the
/// message an implementation under test answered with (certify), which
/// reaches the harness as text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Runtime(#[from] rehearse_runtime::engine::RuntimeError),
    #[error("{0}")]
    Implementation(String),
}

/// What handling one external event gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Answered {
    /// The supervisor's decision; `None` from a backend that has none.
    pub decision: Option<Decision>,
    /// The outcome; an `Err` is why the operation failed.
    pub result: Result<OpResult, StepError>,
    /// The run receipt, when the event has one.
    pub run: RunAnswer,
    /// The positions in [`Backend::events`] the event appended.
    pub events: Range<usize>,
}

/// The run receipt an external event returned, turned into JSON only when
/// an expectation reads it: most events of a load scenario's `repeat` step
/// are never read so.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RunAnswer {
    #[default]
    None,
    /// As an implementation under test answered it (certify).
    Json(Value),
    /// As the reference runtime returned it.
    Receipt(Box<RunReceipt>),
}

impl RunAnswer {
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None | Self::Json(Value::Null))
    }

    /// The receipt as JSON, `null` when there is none.
    pub fn into_value(self) -> Value {
        match self {
            Self::None => Value::Null,
            Self::Json(value) => value,
            Self::Receipt(receipt) => {
                serde_json::to_value(receipt).expect("a run receipt serialises")
            }
        }
    }
}

/// A runtime the driver can drive.
pub trait Backend {
    /// Handles external event `event_id` of step `index` (0-based) at `at_ms`.
    fn handle(
        &mut self,
        index: usize,
        event_id: &str,
        at_ms: i64,
        op: &Op,
    ) -> Result<Answered, DriverError>;

    /// How many events have been appended so far, released ones included.
    fn event_count(&self) -> usize;

    /// The events appended from position `first` (0-based, in append
    /// order) on. A backend that keeps no history holds only the events
    /// since its last [`Backend::release`] and panics for earlier ones.
    fn events_from(&self, first: usize) -> &[StoredEvent];

    /// Tells the backend that the driver has read every event appended so
    /// far: one that keeps no history drops them (or hands them to its
    /// writer, see [`Local::handing_off`]). The others keep them.
    fn release(&mut self) {}

    /// The records of the runs that no later event can change or precede,
    /// in start order, each given once, from a backend that folds run
    /// records as the run goes and was asked to hand them over
    /// ([`Local::drain_runs`]) and that does not write them itself
    /// ([`Local::handing_off`]); the others give none.
    fn settled_runs(&mut self) -> Vec<RunRecord> {
        Vec::new()
    }

    /// The answer to `query` (about `persona`, at `now_ms`); `null` when
    /// there is none or the backend does not answer such queries.
    fn query(
        &mut self,
        query: QueryKind,
        persona: Option<&str>,
        now_ms: i64,
    ) -> Result<Value, DriverError>;
}

/// The answer to a query, read from the reference runtime.
pub fn runtime_query(
    runtime: &Runtime,
    query: QueryKind,
    persona: Option<&str>,
    now_ms: i64,
) -> Value {
    let value = match query {
        QueryKind::Status => {
            let status = persona.and_then(|name| runtime.status(name, now_ms));
            serde_json::to_value(status)
        }
        QueryKind::Records => serde_json::to_value(runtime.run_records()),
        QueryKind::Processes => Ok(runtime.processes().snapshot()),
        QueryKind::Pipeline => Ok(runtime.pipeline().snapshot()),
        QueryKind::Unsettled => serde_json::to_value(runtime.unsettled(now_ms).counts()),
    };
    value.expect("runtime state serialises")
}

/// The reference runtime in this process: a capture session over its
/// storage, checked against the invariants after every event and shown to
/// an optional observer.
pub struct Local<'o> {
    pub(super) source: String,
    pub(super) session: Session,
    pub(super) storage: Storage,
    pub(super) checker: Option<Checker>,
    /// Each step's line in the scenario file, for violations.
    pub(super) lines: Vec<usize>,
    pub(super) deferred_ops: BTreeMap<u64, Op>,
    pub(super) violations: Vec<InvariantViolation>,
    pub(super) observer: Option<&'o mut dyn StepObserver>,
    /// The run records folded as the run goes, over a log that keeps no
    /// history (`Storage::Window`).
    pub(super) ledger: Option<RunLedger>,
    /// How many log events the ledger and the checker have read.
    pub(super) read: usize,
    /// Whether [`Backend::settled_runs`] hands the ledger's settled runs
    /// over (and forgets them): only when nothing queries the records.
    pub(super) drain_runs: bool,
    /// Where the capture records, the released events and the settled run
    /// records go to be written on a second thread
    /// ([`Local::handing_off`]).
    pub(super) handoff: Option<Handoff>,
}

impl std::fmt::Debug for Local<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<'o> Local<'o> {
    /// A session for `scenario` (named `source` in errors) over `storage`,
    /// recording its capture bundle in memory.
    pub fn new(
        scenario: &str,
        config: &rehearse_runtime::config::RuntimeConfig,
        source: &str,
        storage: Storage,
        observer: Option<&'o mut dyn StepObserver>,
    ) -> Result<Self, DriverError> {
        let log = storage.open(source)?;
        let session = Session::new(scenario, config, log);
        Self::over(session, source, storage, observer)
    }

    /// A session like [`Local::new`]'s that writes its capture to `capture`
    /// as it goes (see `Session::streaming`) instead of keeping it.
    pub fn streaming(
        scenario: &str,
        config: &rehearse_runtime::config::RuntimeConfig,
        source: &str,
        storage: Storage,
        observer: Option<&'o mut dyn StepObserver>,
        capture: Box<dyn Write + Send>,
    ) -> Result<Self, DriverError> {
        let log = storage.open(source)?;
        let session = Session::streaming(scenario, config, log, capture);
        Self::over(session, source, storage, observer)
    }

    /// A session over `storage` (a log that keeps no history,
    /// `Storage::Window`) that records nothing itself: what each external
    /// event produces is handed to a second thread, which writes the
    /// capture, the events and the settled run records to `streams` (see
    /// `handoff.rs`).
    pub fn handing_off(
        scenario: &str,
        config: &rehearse_runtime::config::RuntimeConfig,
        source: &str,
        storage: Storage,
        observer: Option<&'o mut dyn StepObserver>,
        streams: Streams,
    ) -> Result<Self, DriverError> {
        let log = storage.open(source)?;
        let durable_log = log.is_durable();
        let session = Session::unrecorded(scenario, config, log);
        let mut local = Self::over(session, source, storage, observer)?;
        let mut header = local.session.bundle().header();
        header.durable_log = durable_log;
        let next = local.event_count();
        let handoff = Handoff::start(streams, header, next)
            .map_err(|error| super::output_error(source, &error))?;
        local.handoff = Some(handoff);
        Ok(local)
    }

    /// Whether this backend writes its events, capture and settled run
    /// records itself ([`Local::handing_off`]).
    pub fn hands_off(&self) -> bool {
        self.handoff.is_some()
    }

    fn over(
        session: Result<Session, RuntimeError>,
        source: &str,
        storage: Storage,
        observer: Option<&'o mut dyn StepObserver>,
    ) -> Result<Self, DriverError> {
        let session = session.map_err(|error| DriverError::Runtime {
            file: source.to_string(),
            error,
        })?;
        let ledger = matches!(storage, Storage::Window).then(RunLedger::default);
        Ok(Self {
            source: source.to_string(),
            session,
            storage,
            checker: None,
            lines: Vec::new(),
            deferred_ops: BTreeMap::new(),
            violations: Vec::new(),
            observer,
            ledger,
            read: 0,
            drain_runs: false,
            handoff: None,
        })
    }

    /// Reads the events appended since the last read, each persona event
    /// decoded once: folds them into the run ledger, then checks the
    /// invariants over them.
    fn read_events(&mut self, index: usize, at_ms: i64, op: &Op, handled: &Handled) {
        let runtime = self.session.runtime();
        let len = runtime.log().len() as usize;
        let first = std::mem::replace(&mut self.read, len).min(len);
        if self.ledger.is_none() && self.checker.is_none() {
            return;
        }
        // The writer a run hands its outputs to checks that the kinds
        // nobody here reads read back.
        let read = match self.handoff {
            Some(_) => ReadEvent::of_read,
            None => ReadEvent::of,
        };
        let events: Vec<ReadEvent<'_>> = runtime.log().slice(first..len).iter().map(read).collect();
        if let Some(ledger) = self.ledger.as_mut() {
            fold_runs(ledger, runtime, &events);
        }
        let Some(active) = self.checker.as_mut() else {
            return;
        };
        let pumped = track_deferred(&mut self.deferred_ops, op, handled);
        let context = StepContext {
            index,
            at_ms,
            op,
            pumped: pumped.as_ref(),
            result: &handled.result,
        };
        if let Err(violation) = active.check_read(context, runtime, &events) {
            // The model is not trusted past its first violation.
            self.checker = None;
            let violation = self.violation(violation, index);
            self.violations.push(violation);
        }
    }

    /// `violation` as the report gives it, found at step `index` (0-based).
    fn violation(&self, violation: Violation, index: usize) -> InvariantViolation {
        let line = self
            .lines
            .get(violation.step.saturating_sub(1))
            .or(self.lines.get(index))
            .copied()
            .unwrap_or(0);
        InvariantViolation {
            step: violation.step,
            line,
            invariant: violation.invariant.name().to_string(),
            message: violation.to_string(),
            evidence: violation.evidence.clone(),
        }
    }

    /// Waits for the writer a run hands its outputs to (if it does) to
    /// finish them. An event it found not to read back is the run's first
    /// violation when its step comes before the checker's (on the same
    /// step the checker's stands): the checker would have stopped there.
    pub fn finish_handoff(&mut self) -> std::io::Result<()> {
        let Some(handoff) = self.handoff.take() else {
            return Ok(());
        };
        let Some(unread) = handoff.finish()? else {
            return Ok(());
        };
        if self.violations.first().is_none_or(|v| unread.step < v.step) {
            let index = unread.step.saturating_sub(1);
            self.violations = vec![self.violation(unread, index)];
        }
        Ok(())
    }

    /// Every run record so far not handed over by
    /// [`Backend::settled_runs`], in start order.
    pub fn run_records(&self) -> Vec<RunRecord> {
        let runtime = self.session.runtime();
        match &self.ledger {
            Some(ledger) => ledger.clone().into_records(runtime),
            None => runtime.run_records(),
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }
}

impl Backend for Local<'_> {
    /// Hands one external event to the session, shows it to the observer,
    /// and checks the invariants after it.
    fn handle(
        &mut self,
        index: usize,
        event_id: &str,
        at_ms: i64,
        op: &Op,
    ) -> Result<Answered, DriverError> {
        if let Some(observer) = self.observer.as_mut() {
            observer.before(index, op, at_ms, &self.session);
        }
        let handled = self.session.handle(event_id, at_ms, op);
        self.storage.check(&self.source)?;
        if let Some(observer) = self.observer.as_mut() {
            observer.after(index, op, at_ms, &self.session, &handled);
        }
        self.read_events(index, at_ms, op, &handled);
        if let Some(handoff) = self.handoff.as_mut() {
            let decision = handled.decision.clone();
            let events = handled.events.clone();
            handoff.episode(index + 1, event_id, at_ms, op.clone(), decision, events);
        }
        let mut result = handled.result.map_err(StepError::from);
        // The receipt moves to `run`: the driver reads only the outcome's
        // other fields.
        let run = match result.as_mut().map(|r| r.run.take()) {
            Ok(Some(receipt)) => RunAnswer::Receipt(Box::new(receipt)),
            _ => RunAnswer::None,
        };
        Ok(Answered {
            decision: Some(handled.decision),
            result,
            run,
            events: handled.events,
        })
    }

    fn event_count(&self) -> usize {
        self.session.runtime().log().len() as usize
    }

    fn events_from(&self, first: usize) -> &[StoredEvent] {
        let log = self.session.runtime().log();
        log.slice(first..log.len() as usize)
    }

    fn release(&mut self) {
        let runtime = self.session.runtime_mut();
        match self.handoff.as_mut() {
            Some(handoff) => handoff.released(|out| runtime.release_log_into(out)),
            None => runtime.release_log(),
        }
    }

    /// Hands the settled runs to the writer instead, when handing off.
    fn settled_runs(&mut self) -> Vec<RunRecord> {
        let settled = match self.ledger.as_mut() {
            Some(ledger) if self.drain_runs => ledger.drain_settled(self.session.runtime()),
            _ => Vec::new(),
        };
        match self.handoff.as_mut() {
            Some(handoff) if !settled.is_empty() => {
                handoff.runs(settled);
                Vec::new()
            }
            _ => settled,
        }
    }

    fn query(
        &mut self,
        query: QueryKind,
        persona: Option<&str>,
        now_ms: i64,
    ) -> Result<Value, DriverError> {
        if query == QueryKind::Records && self.ledger.is_some() {
            let records = serde_json::to_value(self.run_records());
            return Ok(records.expect("run records serialise"));
        }
        Ok(runtime_query(
            self.session.runtime(),
            query,
            persona,
            now_ms,
        ))
    }
}

/// Folds the persona events of `events`, appended by `runtime` after every
/// event `ledger` folded so far, into it.
fn fold_runs(ledger: &mut RunLedger, runtime: &Runtime, events: &[ReadEvent<'_>]) {
    for event in events {
        let Some(decoded) = &event.persona else {
            continue;
        };
        // The log folded when the runtime opened it, and every later event
        // was written by this runtime.
        let (persona, typed) = decoded.as_ref().expect("the log folded when it was opened");
        ledger.fold_event(runtime, persona, typed, event.stored.occurred_at_ms);
    }
}

/// Keeps the operation of every deferred episode, and returns the one a
/// pump just invoked.
fn track_deferred(deferred: &mut BTreeMap<u64, Op>, op: &Op, handled: &Handled) -> Option<Op> {
    let decision = &handled.decision;
    let episode = decision.episode_id?;
    match (decision.decision, op) {
        (DecisionKind::Defer, Op::Pump(_)) => None,
        (DecisionKind::Defer, _) => {
            deferred.insert(episode, op.clone());
            None
        }
        (DecisionKind::Invoke, Op::Pump(_)) => deferred.remove(&episode),
        (DecisionKind::Invoke, _) => None,
    }
}

/// Where a run keeps its log.
#[derive(Debug)]
pub enum Storage {
    Memory,
    /// In memory, keeping only the events the driver has not read yet
    /// (`WindowLog`): for a run that writes its outputs as it goes and
    /// never restarts.
    Window,
    File(crate::storage::Scratch),
}

impl Storage {
    /// A durable log in a new scratch directory.
    pub fn scratch(source: &str) -> Result<Self, DriverError> {
        crate::storage::Scratch::new()
            .map(Self::File)
            .map_err(|error| DriverError::Environment {
                file: source.to_string(),
                error,
            })
    }

    fn open(&self, source: &str) -> Result<Box<dyn EventLog>, DriverError> {
        match self {
            Self::Memory => Ok(Box::new(MemoryLog::new())),
            Self::Window => Ok(Box::new(WindowLog::new())),
            Self::File(scratch) => scratch
                .open_log()
                .map_err(|error| DriverError::Environment {
                    file: source.to_string(),
                    error,
                }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            // Where the events live, as the report's `backend` says it.
            Self::Memory | Self::Window => "memory",
            Self::File(_) => "file",
        }
    }

    /// Fails the run when the durable log failed: such a step error is the
    /// machine's, not the runtime's.
    fn check(&self, source: &str) -> Result<(), DriverError> {
        match self {
            Self::File(scratch) => match scratch.failure() {
                Some(error) => Err(DriverError::Environment {
                    file: source.to_string(),
                    error,
                }),
                None => Ok(()),
            },
            Self::Memory | Self::Window => Ok(()),
        }
    }
}
