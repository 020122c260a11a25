//! The runtime proper: personas over an event log. Each operation stages its
//! events, folds them into persona state as it goes (later decisions of the
//! same operation see earlier ones), and commits them as one batch.
//!
//! A failed commit (an injected storage fault or a backend error) discards
//! the staged events and rebuilds state from the log, so nothing of a failed
//! operation is visible anywhere afterwards.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::Value;

use crate::config::RuntimeConfig;
use crate::event::DecodeError;
use crate::ids::IdGen;
use crate::log::{EventLog, Headers, Kind, LogError, LogEvent, Payload, StoredEvent, Topic};
use crate::op::{AttemptOutcome, Cost, FailKind, Op};
use crate::persona::{rebuild_states, Persona, PersonaEvent, PersonaStatus, PERSONA_TOPIC};
use crate::pipeline::{Pipeline, PipelineError, QueuedTrigger, UnsettledSnapshot};
use crate::process::{ProcessError, ProcessRegistry};
use crate::workkey::Envelope;

mod admission;
mod controls;
mod faults;
mod records;
mod reports;
mod subsystems;

pub use crate::persona::{ReceiptStatus, RunReceipt};
#[cfg(feature = "test-hooks")]
pub use faults::Hooks;
pub use records::RunLedger;

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    #[error("unknown persona `{0}`")]
    UnknownPersona(String),
    #[error(transparent)]
    Binding(#[from] crate::persona::BindingError),
    #[error("append failed: injected storage fault")]
    InjectedFault,
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("invalid trigger: {0}")]
    InvalidTrigger(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("the event log is corrupt: {0}")]
    CorruptLog(String),
}

impl From<DecodeError> for RuntimeError {
    fn from(error: DecodeError) -> Self {
        Self::CorruptLog(error.to_string())
    }
}

impl RuntimeError {
    /// How the supervisor classifies this failure: a storage failure is a
    /// mechanical `runtime_error` (a retry may succeed); anything else is a
    /// refusal of the request itself, `validation_failed`, never retried.
    pub fn fail_kind(&self) -> FailKind {
        match self {
            Self::InjectedFault | Self::Log(_) => FailKind::RuntimeError,
            _ => FailKind::ValidationFailed,
        }
    }
}

/// What one operation did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpResult {
    /// The step's receipt string (`completed`, `queued`, `ok`, `recorded`, ...).
    pub receipt: String,
    /// For `resume`: one receipt per drained item, in drain order.
    pub receipts: Vec<String>,
    /// The error message when the step failed or was refused.
    pub error: Option<String>,
    /// The run receipt, for triggers and ticks.
    pub run: Option<RunReceipt>,
    /// Extra detail for the report (process listings, handoff ids, ...).
    pub detail: Option<Value>,
}

impl OpResult {
    fn receipt(receipt: &str) -> Self {
        Self {
            receipt: receipt.to_string(),
            ..Self::default()
        }
    }
}

/// How one run attempt is scripted to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunPlan {
    pub outcome: AttemptOutcome,
}

impl RunPlan {
    pub const COMPLETE: Self = Self {
        outcome: AttemptOutcome::Completed,
    };
}

/// The reference runtime over one event log.
#[derive(Debug)]
pub struct Runtime {
    config: RuntimeConfig,
    log: Box<dyn EventLog>,
    ids: IdGen,
    personas: BTreeMap<String, Persona>,
    /// Each persona's headers (`persona=<name>`), shared by its events.
    headers: BTreeMap<String, Headers>,
    topic: Topic,
    /// The events the current operation has staged, in order.
    pending: Vec<Staged>,
    /// The payload text of the staged persona events, one after another:
    /// shared by their payloads once committed.
    staged_text: Vec<u8>,
    faults_remaining: u64,
    pipeline: Pipeline,
    pipeline_id: Option<String>,
    processes: ProcessRegistry,
    /// The state before the current operation, kept only when an armed
    /// fault will fail its commit and the log cannot be folded again.
    snapshot: Option<Box<Snapshot>>,
    /// Whether the personas keep the value receipts their status lists
    /// (see [`Runtime::skip_value_receipts`]).
    value_receipts: bool,
    #[cfg(feature = "test-hooks")]
    hooks: Hooks,
}

/// Everything an operation may change before it commits.
#[derive(Debug)]
struct Snapshot {
    personas: BTreeMap<String, Persona>,
    pipeline: Pipeline,
    processes: ProcessRegistry,
}

impl Runtime {
    /// Builds a runtime over `log`, folding whatever it already holds.
    pub fn new(config: &RuntimeConfig, log: Box<dyn EventLog>) -> Result<Self, RuntimeError> {
        Self::named(None, config, log)
    }

    /// Like [`Runtime::new`], naming the pipeline run (the scenario) that
    /// lifecycle audit entries and envelopes carry.
    pub fn named(
        pipeline_id: Option<String>,
        config: &RuntimeConfig,
        log: Box<dyn EventLog>,
    ) -> Result<Self, RuntimeError> {
        let mut personas = BTreeMap::new();
        let mut headers = BTreeMap::new();
        for (name, spec) in &config.personas {
            personas.insert(name.clone(), Persona::new(name, spec.clone())?);
            headers.insert(name.clone(), Headers::one("persona", name));
        }
        let mut runtime = Self {
            config: config.clone(),
            log,
            ids: IdGen::new(config.seed),
            personas,
            headers,
            topic: Topic::new(PERSONA_TOPIC)?,
            pending: Vec::new(),
            staged_text: Vec::new(),
            faults_remaining: 0,
            pipeline: Pipeline::new(pipeline_id.clone()),
            pipeline_id,
            processes: ProcessRegistry::default(),
            snapshot: None,
            value_receipts: true,
            #[cfg(feature = "test-hooks")]
            hooks: Hooks::default(),
        };
        runtime.rebuild()?;
        Ok(runtime)
    }

    /// Stops keeping the value receipts a persona's status lists: from now
    /// on its value events still decide, log and hash as ever, but status
    /// lists only the receipts kept before. For replay, which compares
    /// decisions and effects and never asks for a status: the receipts
    /// grow by two a run, the only persona state that grows with the log
    /// besides the completed work keys.
    pub fn skip_value_receipts(&mut self) {
        self.value_receipts = false;
    }

    /// The configuration this runtime was built from.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The event log.
    pub fn log(&self) -> &dyn EventLog {
        self.log.as_ref()
    }

    /// Hands the log back, consuming the runtime (for restarts).
    pub fn into_log(self) -> Box<dyn EventLog> {
        self.log
    }

    /// The persona named `name`.
    pub fn persona(&self, name: &str) -> Option<&Persona> {
        self.personas.get(name)
    }

    /// Every persona, by name.
    pub fn personas(&self) -> &BTreeMap<String, Persona> {
        &self.personas
    }

    /// The status of `name` at `now_ms`.
    pub fn status(&self, name: &str, now_ms: i64) -> Option<PersonaStatus> {
        self.personas.get(name).map(|p| p.status(now_ms))
    }

    /// Drops all in-memory state and reopens from the log, first cutting
    /// `torn_tail_bytes` off a durable log's end. Armed faults stay armed:
    /// they belong to the storage, not to the process.
    pub fn restart(&mut self, torn_tail_bytes: Option<u64>) -> Result<OpResult, RuntimeError> {
        debug_assert!(self.pending.is_empty());
        let recovery = self.log.reopen(torn_tail_bytes)?;
        self.rebuild()?;
        Ok(OpResult {
            receipt: "ok".to_string(),
            detail: Some(serde_json::to_value(recovery).expect("recovery serialises")),
            ..OpResult::default()
        })
    }

    /// Folds the whole log from scratch into fresh state. A persona event
    /// this runtime could not have written is an error: the log is corrupt,
    /// and so is a log that kept no history once it holds events.
    pub fn rebuild(&mut self) -> Result<(), RuntimeError> {
        if !self.log.keeps_history() && !self.log.is_empty() {
            return Err(RuntimeError::Unsupported(
                "the event log keeps no history to fold again".to_string(),
            ));
        }
        rebuild_states(&mut self.personas, self.log.read_from(0))?;
        self.pipeline = Pipeline::rebuild(self.pipeline_id.clone(), self.log.read_from(0));
        self.processes = ProcessRegistry::rebuild(self.log.read_from(0));
        Ok(())
    }

    /// Rebuilds after a failed operation: the log holds only what earlier
    /// operations committed, which folded cleanly when they did.
    fn rebuild_committed(&mut self) {
        if let Some(snapshot) = self.snapshot.take() {
            let Snapshot {
                personas,
                pipeline,
                processes,
            } = *snapshot;
            (self.personas, self.pipeline, self.processes) = (personas, pipeline, processes);
            return;
        }
        self.rebuild()
            .expect("the committed log folded when it was written");
    }

    /// Lets a log that keeps no history drop what was appended so far: the
    /// caller has read it (see [`EventLog::release`]).
    pub fn release_log(&mut self) {
        self.log.release();
    }

    /// [`Runtime::release_log`], moving the events a log that keeps no
    /// history drops onto the end of `out` (see `EventLog::release_into`).
    pub fn release_log_into(&mut self, out: &mut Vec<StoredEvent>) {
        self.log.release_into(out);
    }

    /// The process registry.
    pub fn processes(&self) -> &ProcessRegistry {
        &self.processes
    }

    /// The pipeline lifecycle state.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The unsettled-state snapshot at `now_ms`: every persona's queued
    /// triggers (by persona, then work key) and the partial handoffs.
    pub fn unsettled(&self, now_ms: i64) -> UnsettledSnapshot {
        let queued: Vec<QueuedTrigger> = self
            .personas
            .values()
            .flat_map(|p| {
                p.state.queued.values().map(|item| QueuedTrigger {
                    persona: p.name.to_string(),
                    work_key: item.envelope.subject_key.to_string(),
                    queued_at_ms: item.queued_at_ms,
                })
            })
            .collect();
        self.pipeline.unsettled(&queued, now_ms)
    }

    /// Runs `op` as one operation. Pumps and restarts belong to the
    /// supervisor and the driver; they are refused here.
    pub fn execute(
        &mut self,
        op: &Op,
        plan: RunPlan,
        now_ms: i64,
    ) -> Result<(OpResult, Range<usize>), RuntimeError> {
        self.begin();
        let result = self.stage(op, plan, now_ms);
        self.finish(result)
    }

    /// Runs a further attempt of a trigger or tick whose first attempt was
    /// committed: admission and the run again, without a second
    /// `trigger.received`.
    pub fn retry(
        &mut self,
        persona: &str,
        envelope: &Envelope,
        cost: &Cost,
        plan: RunPlan,
        now_ms: i64,
    ) -> Result<(OpResult, Range<usize>), RuntimeError> {
        self.begin();
        let result = self.known_persona(persona).map(|()| {
            let receipt =
                self.run_for_envelope(persona, envelope.clone(), cost.into(), plan, now_ms);
            run_result(receipt)
        });
        self.finish(result)
    }

    fn begin(&mut self) {
        debug_assert!(
            self.pending.is_empty(),
            "an operation began with staged events"
        );
        self.ids.begin_op(self.log.len());
        // Without history, a failed commit cannot be undone by folding the
        // log again: keep the state it would restore.
        self.snapshot = (self.faults_remaining > 0 && !self.log.keeps_history()).then(|| {
            Box::new(Snapshot {
                personas: self.personas.clone(),
                pipeline: self.pipeline.clone(),
                processes: self.processes.clone(),
            })
        });
    }

    fn finish(
        &mut self,
        result: Result<OpResult, RuntimeError>,
    ) -> Result<(OpResult, Range<usize>), RuntimeError> {
        match result {
            Ok(result) => {
                let range = self.commit()?;
                Ok((result, range))
            }
            Err(error) => {
                self.discard();
                Err(error)
            }
        }
    }

    fn discard(&mut self) {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.staged_text.clear();
            self.rebuild_committed();
        }
    }

    fn known_persona(&self, name: &str) -> Result<(), RuntimeError> {
        if self.personas.contains_key(name) {
            Ok(())
        } else {
            Err(RuntimeError::UnknownPersona(name.to_string()))
        }
    }

    /// Stages one operation: the dispatch to each concern's handler.
    fn stage(&mut self, op: &Op, plan: RunPlan, now_ms: i64) -> Result<OpResult, RuntimeError> {
        if let Some(name) = op.persona() {
            self.known_persona(name)?;
        }
        match op {
            Op::Trigger(_) | Op::Tick(_) => self.fire(op, plan, now_ms),
            Op::Pause(name) => Ok(self.pause(name, now_ms)),
            Op::Disable(name) => Ok(self.disable(name, now_ms)),
            Op::Resume(name) => Ok(self.resume(name, now_ms)),
            Op::Spend(spend) => Ok(self.spend(spend, now_ms)),
            Op::RepairWorker(report) => Ok(self.repair_worker(report, now_ms)),
            Op::RestoreCheckpoint(request) => Ok(self.restore_checkpoint(request, now_ms)),
            Op::Fault(fault) => {
                self.inject_append_faults(fault.count);
                Ok(OpResult::receipt("ok"))
            }
            Op::Pump(_) => Err(RuntimeError::Unsupported(
                "a pump is handled by the supervisor".to_string(),
            )),
            Op::Restart(_) => Err(RuntimeError::Unsupported(
                "a restart is handled by the driver".to_string(),
            )),
            Op::Audit(_) | Op::Handoff(_) | Op::AckHandoff(_) | Op::Finalize(_) => {
                self.stage_pipeline(op, now_ms)
            }
            Op::Process(process) => self.stage_process(process, now_ms),
        }
    }

    /// Applies one decided event of `persona` to its state (the one fold)
    /// and stages it, so later decisions of the operation see it.
    fn record(&mut self, persona: &str, event: PersonaEvent, now_ms: i64) {
        self.record_ref(persona, &event, now_ms);
    }

    /// [`Runtime::record`], leaving the event to the caller.
    fn record_ref(&mut self, persona: &str, event: &PersonaEvent, now_ms: i64) {
        self.record_all(persona, std::slice::from_ref(event), now_ms);
    }

    /// [`Runtime::record`] for each event, in order: the persona and its
    /// headers are looked up once for all of them.
    fn record_all(&mut self, persona: &str, events: &[PersonaEvent], now_ms: i64) {
        let headers = match self.headers.get(persona) {
            Some(headers) => headers.clone(),
            None => Headers::one("persona", persona),
        };
        let mut state = self.personas.get_mut(persona).map(|p| &mut p.state);
        for event in events {
            // A value event changes nothing in state but the receipts.
            if let Some(state) = state.as_deref_mut() {
                if self.value_receipts || !event.is_value() {
                    state.apply(event, now_ms);
                }
            }
            let start = self.staged_text.len();
            event.write_payload(&mut self.staged_text);
            self.pending.push(Staged::Persona {
                kind: event.kind().into(),
                headers: headers.clone(),
                occurred_at_ms: now_ms,
                text: start..self.staged_text.len(),
            });
        }
    }
}

/// An event staged for the operation's commit.
#[derive(Debug)]
enum Staged {
    /// An event of another subsystem, whole.
    Event(Topic, LogEvent),
    /// A persona event, its payload `Runtime::staged_text[text]`.
    Persona {
        kind: Kind,
        headers: Headers,
        occurred_at_ms: i64,
        text: Range<usize>,
    },
}

impl Staged {
    /// The event as appended: a persona event of `topic`, its payload
    /// within `text` (the staged payload text).
    fn into_event(self, topic: &Topic, text: &std::sync::Arc<str>) -> (Topic, LogEvent) {
        match self {
            Self::Event(topic, event) => (topic, event),
            Self::Persona {
                kind,
                headers,
                occurred_at_ms,
                text: range,
            } => {
                let event = LogEvent {
                    kind,
                    payload: Payload::within(text, range),
                    headers,
                    occurred_at_ms,
                };
                (topic.clone(), event)
            }
        }
    }
}

fn run_result(receipt: RunReceipt) -> OpResult {
    OpResult {
        receipt: receipt.status.as_str().to_string(),
        error: receipt.error.clone(),
        run: Some(receipt),
        ..OpResult::default()
    }
}
