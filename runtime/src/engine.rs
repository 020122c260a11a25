//! The runtime proper: personas over an event log. Each operation stages its
//! events, folds them into persona state as it goes (later decisions of the
//! same operation see earlier ones), and commits them as one batch.
//!
//! A failed commit (an injected storage fault or a backend error) discards
//! the staged events and rebuilds state from the log, so nothing of a failed
//! operation is visible anywhere afterwards.

use std::collections::BTreeMap;
use std::ops::Range;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::budget;
use crate::clock::format_ms;
use crate::config::RuntimeConfig;
use crate::ids::IdGen;
use crate::lease::{Lease, RUNTIME_HOLDER};
use crate::log::{EventLog, LogError, LogEvent, StoredEvent, Topic};
use crate::op::{AttemptOutcome, Cost, FailKind, Op, RepairWorkerOp, RestoreCheckpointOp, SpendOp};
use crate::persona::{rebuild_states, Persona, PersonaStatus, RunCost, PERSONA_TOPIC};
use crate::pipeline::{
    lifecycle_topic, Pipeline, PipelineError, PipelineOutcome, QueuedTrigger, UnsettledSnapshot,
};
use crate::process::{process_topic, ProcessError, ProcessRegistry};
use crate::run_record::{RunFacts, RunRecord, RunStatus};
#[cfg(feature = "test-hooks")]
use crate::test_hooks::Bug;
use crate::workkey::{self, Envelope};

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

/// The receipt of one run attempt, as the seed's `PersonaRunReceipt`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunReceipt {
    pub status: String,
    pub persona: String,
    pub run_id: Option<String>,
    pub work_key: String,
    pub lease: Option<Lease>,
    pub queued: bool,
    pub error: Option<String>,
    pub budget_receipt_id: Option<String>,
    /// Why the run failed, for the supervisor; not part of the logged receipt.
    #[serde(skip)]
    pub failure: Option<FailKind>,
    /// The envelope that was run, so the supervisor can retry it.
    #[serde(skip)]
    pub envelope: Option<Envelope>,
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
    topic: Topic,
    pending: Vec<(Topic, LogEvent)>,
    faults_remaining: u64,
    pipeline: Pipeline,
    pipeline_id: Option<String>,
    processes: ProcessRegistry,
    #[cfg(feature = "test-hooks")]
    bug: Option<Bug>,
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
        for (name, spec) in &config.personas {
            personas.insert(name.clone(), Persona::new(name, spec.clone())?);
        }
        let mut runtime = Self {
            config: config.clone(),
            log,
            ids: IdGen::new(config.seed),
            personas,
            topic: Topic::new(PERSONA_TOPIC)?,
            pending: Vec::new(),
            faults_remaining: 0,
            pipeline: Pipeline::new(pipeline_id.clone()),
            pipeline_id,
            processes: ProcessRegistry::default(),
            #[cfg(feature = "test-hooks")]
            bug: None,
        };
        runtime.rebuild();
        Ok(runtime)
    }

    /// Switches on a deliberate bug, so a test can prove the harness's
    /// invariant checker notices it.
    #[cfg(feature = "test-hooks")]
    pub fn set_deliberate_bug(&mut self, bug: Bug) {
        self.bug = Some(bug);
    }

    #[cfg(feature = "test-hooks")]
    fn has_bug(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
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

    /// Makes the next `count` operations that append fail.
    pub fn inject_append_faults(&mut self, count: u64) {
        self.faults_remaining = self.faults_remaining.saturating_add(count);
    }

    /// How many injected append faults are still armed.
    pub fn faults_remaining(&self) -> u64 {
        self.faults_remaining
    }

    /// Drops all in-memory state and reopens from the log, first cutting
    /// `torn_tail_bytes` off a durable log's end. Armed faults stay armed:
    /// they belong to the storage, not to the process.
    pub fn restart(&mut self, torn_tail_bytes: Option<u64>) -> Result<OpResult, RuntimeError> {
        debug_assert!(self.pending.is_empty());
        let recovery = self.log.reopen(torn_tail_bytes)?;
        self.rebuild();
        Ok(OpResult {
            receipt: "ok".to_string(),
            detail: Some(serde_json::to_value(recovery).expect("recovery serialises")),
            ..OpResult::default()
        })
    }

    /// Folds the whole log from scratch into fresh state.
    pub fn rebuild(&mut self) {
        rebuild_states(&mut self.personas, self.log.all());
        self.pipeline = Pipeline::rebuild(self.pipeline_id.clone(), self.log.all());
        self.processes = ProcessRegistry::rebuild(self.log.all());
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
                    persona: p.name.clone(),
                    work_key: item.envelope.subject_key.clone(),
                    queued_at_ms: item.queued_at_ms,
                })
            })
            .collect();
        self.pipeline.unsettled(&queued, now_ms)
    }

    /// A run record for every persona run in the log, in start order: a run
    /// that started and never finished crashed.
    pub fn run_records(&self) -> Vec<RunRecord> {
        let mut open: BTreeMap<String, (usize, RunFacts)> = BTreeMap::new();
        let mut done: Vec<(usize, RunFacts)> = Vec::new();
        for event in self.log.all() {
            if event.topic.as_str() != PERSONA_TOPIC {
                continue;
            }
            let payload = &event.payload;
            let run_id = payload
                .get("run_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            match event.kind.as_str() {
                "persona.run.started" => {
                    let persona = event.header("persona").unwrap_or_default().to_string();
                    let entry_workflow = self
                        .personas
                        .get(&persona)
                        .map(|p| p.spec.entry_workflow.clone())
                        .unwrap_or_default();
                    let facts = RunFacts {
                        run_id: run_id.clone(),
                        persona,
                        work_key: payload
                            .get("work_key")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        entry_workflow,
                        status: RunStatus::Crashed,
                        started_at_ms: event.occurred_at_ms,
                        finished_at_ms: None,
                        stage_metadata: BTreeMap::new(),
                        error: None,
                    };
                    open.insert(run_id, (done.len() + open.len(), facts));
                }
                "persona.value.run_started" => {
                    let stages = payload
                        .pointer("/metadata/stage_metadata")
                        .and_then(|v| serde_json::from_value(v.clone()).ok());
                    if let (Some((_, facts)), Some(stages)) = (open.get_mut(&run_id), stages) {
                        facts.stage_metadata = stages;
                    }
                }
                "persona.run.completed" | "persona.run.failed" => {
                    if let Some((order, mut facts)) = open.remove(&run_id) {
                        facts.finished_at_ms = Some(event.occurred_at_ms);
                        if event.kind == "persona.run.failed" {
                            facts.status = RunStatus::Failed;
                            facts.error = payload
                                .get("error")
                                .and_then(Value::as_str)
                                .map(str::to_string);
                        } else {
                            facts.status = RunStatus::Completed;
                        }
                        done.push((order, facts));
                    }
                }
                _ => {}
            }
        }
        done.extend(open.into_values());
        done.sort_by_key(|(order, facts)| (facts.started_at_ms, *order));
        done.into_iter()
            .map(|(_, facts)| {
                let stages = self
                    .personas
                    .get(&facts.persona)
                    .map(|p| p.spec.stages.clone())
                    .unwrap_or_default();
                RunRecord::from_run(facts, &stages)
            })
            .collect()
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
                self.run_for_envelope(persona, envelope.clone(), RunCost::from(cost), plan, now_ms);
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

    /// Appends the staged events as one batch.
    fn commit(&mut self) -> Result<Range<usize>, RuntimeError> {
        let start = self.log.all().len();
        if self.pending.is_empty() {
            return Ok(start..start);
        }
        if self.faults_remaining > 0 {
            self.faults_remaining -= 1;
            self.discard();
            return Err(RuntimeError::InjectedFault);
        }
        let batch = std::mem::take(&mut self.pending);
        if let Err(error) = self.log.append(batch) {
            self.rebuild();
            return Err(error.into());
        }
        // Persona events were folded as they were staged; the other
        // subsystems fold what was committed, read back in place.
        let committed = &self.log.all()[start..];
        for event in committed {
            self.pipeline.apply(event);
            self.processes.apply(event);
        }
        Ok(start..self.log.all().len())
    }

    fn discard(&mut self) {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.rebuild();
        }
    }

    fn known_persona(&self, name: &str) -> Result<(), RuntimeError> {
        if self.personas.contains_key(name) {
            Ok(())
        } else {
            Err(RuntimeError::UnknownPersona(name.to_string()))
        }
    }

    fn stage(&mut self, op: &Op, plan: RunPlan, now_ms: i64) -> Result<OpResult, RuntimeError> {
        if let Some(name) = op.persona() {
            self.known_persona(name)?;
        }
        match op {
            Op::Trigger(trigger) => {
                if let Some(key) = trigger.metadata.keys().find(|key| key.trim().is_empty()) {
                    return Err(RuntimeError::InvalidTrigger(format!(
                        "metadata key `{key}` is empty"
                    )));
                }
                if trigger.provider.trim().is_empty() {
                    return Err(RuntimeError::InvalidTrigger(
                        "provider is empty".to_string(),
                    ));
                }
                Ok(self.fire(
                    op,
                    &trigger.persona,
                    "persona.trigger.received",
                    &trigger.cost,
                    plan,
                    now_ms,
                ))
            }
            Op::Tick(tick) => Ok(self.fire(
                op,
                &tick.persona,
                "persona.schedule.fired",
                &tick.cost,
                plan,
                now_ms,
            )),
            Op::Pause(name) => {
                self.emit(
                    name,
                    "persona.control.paused",
                    json!({"paused_at_ms": now_ms, "policy": crate::persona::PAUSED_EVENT_POLICY}),
                    now_ms,
                );
                Ok(OpResult::receipt("ok"))
            }
            Op::Disable(name) => {
                self.emit(
                    name,
                    "persona.control.disabled",
                    json!({"disabled_at_ms": now_ms}),
                    now_ms,
                );
                Ok(OpResult::receipt("ok"))
            }
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
            Op::Audit(audit) => self.stage_pipeline(self.pipeline.audit(audit, now_ms)),
            Op::Handoff(handoff) => self.stage_pipeline(self.pipeline.handoff(handoff, now_ms)),
            Op::AckHandoff(ack) => self.stage_pipeline(self.pipeline.ack_handoff(ack, now_ms)),
            Op::Finalize(finalize) => self.stage_pipeline(self.pipeline.finalize(finalize, now_ms)),
            Op::Process(process) => {
                let outcome = self.processes.execute(process, now_ms, &mut self.ids)?;
                Ok(self.stage_subsystem(
                    process_topic(),
                    outcome.events,
                    outcome.receipt,
                    outcome.result,
                ))
            }
        }
    }

    fn stage_pipeline(
        &mut self,
        outcome: Result<PipelineOutcome, PipelineError>,
    ) -> Result<OpResult, RuntimeError> {
        let outcome = outcome?;
        Ok(self.stage_subsystem(
            lifecycle_topic(),
            outcome.events,
            outcome.receipt,
            outcome.result,
        ))
    }

    /// Stages the events a subsystem (the pipeline, the process registry)
    /// returned for its topic; it folds them once they are committed.
    fn stage_subsystem(
        &mut self,
        topic: Topic,
        events: Vec<LogEvent>,
        receipt: String,
        detail: Option<Value>,
    ) -> OpResult {
        self.pending
            .extend(events.into_iter().map(|event| (topic.clone(), event)));
        OpResult {
            receipt,
            detail,
            ..OpResult::default()
        }
    }

    /// Records that a trigger arrived (or a schedule fired) and runs its
    /// envelope: the first attempt of a trigger or tick.
    fn fire(
        &mut self,
        op: &Op,
        persona: &str,
        kind: &str,
        cost: &Cost,
        plan: RunPlan,
        now_ms: i64,
    ) -> OpResult {
        let envelope = self
            .envelope_for(op, now_ms)
            .expect("a trigger or tick has an envelope");
        self.emit(
            persona,
            kind,
            json!({"persona": persona, "envelope": envelope}),
            now_ms,
        );
        run_result(self.run_for_envelope(persona, envelope, RunCost::from(cost), plan, now_ms))
    }

    /// The envelope a trigger or tick stands for at `now_ms` (generated work
    /// keys draw from the id stream of the current operation).
    pub fn envelope_for(&mut self, op: &Op, now_ms: i64) -> Option<Envelope> {
        match op {
            Op::Trigger(trigger) => {
                let ids = &mut self.ids;
                Some(workkey::normalize(
                    &trigger.provider,
                    &trigger.kind,
                    trigger.metadata.clone(),
                    now_ms,
                    || ids.uuid_v7(now_ms).to_string(),
                ))
            }
            Op::Tick(tick) => {
                let persona = self.personas.get(&tick.persona)?;
                let schedule = persona
                    .spec
                    .schedules
                    .first()
                    .map_or("manual", String::as_str);
                Some(workkey::schedule_envelope(&tick.persona, schedule, now_ms))
            }
            _ => None,
        }
    }

    /// Stages one event of `persona` and folds it into that persona's state.
    fn emit(&mut self, persona: &str, kind: &str, payload: Value, now_ms: i64) {
        if let Some(state) = self.personas.get_mut(persona) {
            state.state.apply(kind, &payload, now_ms);
        }
        let mut headers = BTreeMap::new();
        headers.insert("persona".to_string(), persona.to_string());
        let event = LogEvent {
            kind: kind.to_string(),
            payload,
            headers,
            occurred_at_ms: now_ms,
        };
        self.pending.push((self.topic.clone(), event));
    }

    fn emit_supervision(
        &mut self,
        persona: &str,
        update_kind: &str,
        mut update: Value,
        now_ms: i64,
    ) {
        if let Value::Object(map) = &mut update {
            map.insert("update_kind".to_string(), json!(update_kind));
        }
        self.emit(
            persona,
            &format!("persona.supervision.{update_kind}"),
            update,
            now_ms,
        );
    }

    fn template_ref(&self, persona: &str) -> Option<String> {
        self.personas
            .get(persona)
            .and_then(|p| p.spec.template_ref.clone())
    }

    /// Admission and the run, then the queue-position and receipt
    /// supervision events.
    fn run_for_envelope(
        &mut self,
        persona: &str,
        envelope: Envelope,
        cost: RunCost,
        plan: RunPlan,
        now_ms: i64,
    ) -> RunReceipt {
        let work_key = envelope.subject_key.clone();
        // A key leaving the queue reports when it was queued, as the seed's
        // before-snapshot does; a key entering reports its new entry.
        let queued_before = self.personas[persona]
            .state
            .queued
            .get(&work_key)
            .map(|item| item.queued_at_ms);
        let was_queued = queued_before.is_some();
        let receipt = self.admit_and_run(persona, envelope, cost, plan, now_ms);
        let is_queued = self.queue_has(persona, &work_key);
        if was_queued != is_queued {
            let (depth, position, queued_at_ms) = {
                let queue = &self.personas[persona].state.queued;
                let position = if is_queued {
                    queue.range::<String, _>(..&work_key).count() as i64 + 1
                } else {
                    0
                };
                let queued_at_ms = queue
                    .get(&work_key)
                    .map(|item| item.queued_at_ms)
                    .or(queued_before)
                    .unwrap_or(now_ms);
                (queue.len() as i64, position, queued_at_ms)
            };
            let update = json!({
                "persona_id": persona,
                "template_ref": self.template_ref(persona),
                "work_key": work_key,
                "queue_depth": depth,
                "position": position,
                "queued_at_ms": queued_at_ms,
                "occurred_at_ms": now_ms,
            });
            self.emit_supervision(persona, "queue_position", update, now_ms);
        }
        let update = json!({
            "persona_id": persona,
            "template_ref": self.template_ref(persona),
            "receipt": receipt,
            "occurred_at_ms": now_ms,
        });
        self.emit_supervision(persona, "receipt", update, now_ms);
        receipt
    }

    fn queue_has(&self, persona: &str, work_key: &str) -> bool {
        self.personas[persona].state.queued.contains_key(work_key)
    }

    fn admit_and_run(
        &mut self,
        persona: &str,
        envelope: Envelope,
        cost: RunCost,
        plan: RunPlan,
        now_ms: i64,
    ) -> RunReceipt {
        let work_key = envelope.subject_key.clone();
        let mut receipt = RunReceipt {
            status: String::new(),
            persona: persona.to_string(),
            run_id: None,
            work_key: work_key.clone(),
            lease: None,
            queued: false,
            error: None,
            budget_receipt_id: None,
            failure: None,
            envelope: Some(envelope.clone()),
        };
        // Only what the run writes is copied out of the binding.
        let (lifecycle, budget, lease_ttl_ms, entry_workflow, template_ref) = {
            let p = &self.personas[persona];
            (
                p.state.lifecycle,
                p.spec.budget.clone(),
                p.spec.lease_ttl().as_i64(),
                p.spec.entry_workflow.clone(),
                p.spec.template_ref.clone(),
            )
        };
        match lifecycle {
            crate::persona::Lifecycle::Paused => {
                self.emit(persona, "persona.trigger.queued", json!({"work_key": work_key, "envelope": envelope, "cost": cost, "reason": "paused"}), now_ms);
                receipt.status = "queued".to_string();
                receipt.queued = true;
                return receipt;
            }
            crate::persona::Lifecycle::Disabled => {
                self.emit(
                    persona,
                    "persona.trigger.dead_lettered",
                    json!({"work_key": work_key, "envelope": envelope, "reason": "disabled"}),
                    now_ms,
                );
                receipt.status = "dead_lettered".to_string();
                receipt.error = Some("persona is disabled".to_string());
                return receipt;
            }
            _ => {}
        }
        let refusal = budget::refusal(
            &budget,
            &self.personas[persona].state.spend,
            cost.cost_usd,
            cost.tokens,
            now_ms,
        );
        #[cfg(feature = "test-hooks")]
        let refusal =
            refusal.filter(|r| !(*r == "run_usd" && self.has_bug(Bug::AdmitOverRunLimit)));
        if let Some(reason) = refusal {
            self.emit_exhausted(persona, reason, cost.cost_usd, cost.tokens, now_ms);
            receipt.status = "budget_exhausted".to_string();
            receipt.error = Some(format!("persona budget exhausted: {reason}"));
            return receipt;
        }
        let duplicate = self.personas[persona].state.completed.contains(&work_key);
        #[cfg(feature = "test-hooks")]
        let duplicate = duplicate && !self.has_bug(Bug::CompleteDuplicates);
        if duplicate {
            self.emit(
                persona,
                "persona.trigger.duplicate",
                json!({"work_key": work_key, "envelope": envelope, "reason": "already_completed"}),
                now_ms,
            );
            receipt.status = "duplicate".to_string();
            return receipt;
        }
        let held = self.personas[persona].state.lease.clone();
        let live = held.as_ref().filter(|lease| lease.is_live_at(now_ms));
        #[cfg(feature = "test-hooks")]
        let live = live.filter(|_| !self.has_bug(Bug::SkipLeaseCheck));
        if let Some(active) = live {
            self.emit(
                persona,
                "persona.lease.conflict",
                json!({"active_lease": active, "requested_work_key": work_key, "at_ms": now_ms}),
                now_ms,
            );
            receipt.status = "lease_busy".to_string();
            receipt.lease = Some(active.clone());
            receipt.error = Some("active lease already owns persona work".to_string());
            return receipt;
        }
        if let Some(expired) = held {
            self.emit(
                persona,
                "persona.lease.expired",
                json!({"id": expired.id, "work_key": expired.work_key, "expired_at_ms": now_ms}),
                now_ms,
            );
        }
        let lease = Lease {
            id: format!("persona_lease_{}", self.ids.uuid_v7(now_ms)),
            holder: RUNTIME_HOLDER.to_string(),
            work_key: work_key.clone(),
            acquired_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(lease_ttl_ms),
        };
        self.emit(
            persona,
            "persona.lease.acquired",
            serde_json::to_value(&lease).expect("a lease serialises"),
            now_ms,
        );
        let run_id = self.ids.uuid_v7(now_ms).to_string();
        receipt.run_id = Some(run_id.clone());
        receipt.lease = Some(lease.clone());
        let run_fields = json!({"work_key": work_key, "run_id": run_id, "entry_workflow": entry_workflow, "lease_id": lease.id});
        self.emit(
            persona,
            "persona.run.started",
            with(&run_fields, "started_at_ms", now_ms),
            now_ms,
        );
        if plan.outcome == AttemptOutcome::Crash {
            receipt.status = "crashed".to_string();
            receipt.error =
                Some("run crashed after start: the lease holds until it expires".to_string());
            return receipt;
        }
        let metadata = value_metadata(&envelope, &lease, &cost);
        let value = ValueCtx {
            persona,
            template_ref,
            run_id: &run_id,
            metadata,
            now_ms,
            occurred_at: format_ms(now_ms),
        };
        self.emit_value(&value, "run_started", 0.0, 0.0, 0, 0);
        let receipt_id = format!("persona_budget_{}", self.ids.uuid_v7(now_ms));
        self.emit(
            persona,
            "persona.budget.recorded",
            json!({"receipt_id": receipt_id, "persona": persona, "cost_usd": cost.cost_usd, "tokens": cost.tokens, "lease_id": lease.id}),
            now_ms,
        );
        receipt.budget_receipt_id = Some(receipt_id);
        let released = json!({"id": lease.id, "work_key": work_key, "released_at_ms": now_ms});
        if let AttemptOutcome::Fail(kind) = plan.outcome {
            self.emit(persona, "persona.lease.released", released, now_ms);
            let mut failed = with(&run_fields, "failed_at_ms", now_ms);
            failed["error"] = json!(kind.as_str());
            self.emit(persona, "persona.run.failed", failed, now_ms);
            receipt.status = "failed".to_string();
            receipt.error = Some(format!("run failed: {kind}"));
            receipt.failure = Some(kind);
            return receipt;
        }
        if cost.avoided_cost_usd > 0.0 || cost.deterministic_steps > 0 {
            self.emit_value(
                &value,
                "deterministic_execution",
                0.0,
                cost.avoided_cost_usd,
                cost.deterministic_steps.max(1),
                0,
            );
        }
        let escalated = cost.frontier_escalations > 0;
        if escalated {
            self.emit_value(
                &value,
                "frontier_escalation",
                cost.cost_usd,
                0.0,
                0,
                cost.llm_steps.max(cost.frontier_escalations),
            );
        }
        let (paid, llm) = if escalated {
            (0.0, 0)
        } else {
            (cost.cost_usd, cost.llm_steps)
        };
        self.emit_value(&value, "run_completed", paid, 0.0, 0, llm);
        self.emit(
            persona,
            "persona.run.completed",
            with(&run_fields, "completed_at_ms", now_ms),
            now_ms,
        );
        self.emit(persona, "persona.lease.released", released, now_ms);
        receipt.status = "completed".to_string();
        receipt
    }

    fn emit_exhausted(&mut self, persona: &str, reason: &str, usd: f64, tokens: u64, now_ms: i64) {
        let receipt_id = format!("persona_budget_{}", self.ids.uuid_v7(now_ms));
        self.emit(
            persona,
            "persona.budget.exhausted",
            json!({"receipt_id": receipt_id, "reason": reason, "attempted_cost_usd": usd, "attempted_tokens": tokens, "persona": persona}),
            now_ms,
        );
    }

    fn emit_value(
        &mut self,
        ctx: &ValueCtx<'_>,
        kind: &str,
        paid: f64,
        avoided: f64,
        deterministic_steps: i64,
        llm_steps: i64,
    ) {
        let payload = json!({
            "persona_id": ctx.persona,
            "template_ref": ctx.template_ref,
            "run_id": ctx.run_id,
            "kind": kind,
            "paid_cost_usd": paid.max(0.0),
            "avoided_cost_usd": avoided.max(0.0),
            "deterministic_steps": deterministic_steps.max(0),
            "llm_steps": llm_steps.max(0),
            "metadata": ctx.metadata,
            "occurred_at": ctx.occurred_at,
        });
        self.emit(
            ctx.persona,
            &format!("persona.value.{kind}"),
            payload,
            ctx.now_ms,
        );
    }

    fn resume(&mut self, persona: &str, now_ms: i64) -> OpResult {
        self.emit(
            persona,
            "persona.control.resumed",
            json!({"resumed_at_ms": now_ms, "drain": true}),
            now_ms,
        );
        let queued: Vec<_> = self.personas[persona]
            .state
            .queued
            .values()
            .cloned()
            .collect();
        let mut receipts = Vec::with_capacity(queued.len());
        for item in queued {
            let receipt =
                self.run_for_envelope(persona, item.envelope, item.cost, RunPlan::COMPLETE, now_ms);
            receipts.push(receipt.status);
        }
        OpResult {
            receipt: "ok".to_string(),
            receipts,
            ..OpResult::default()
        }
    }

    fn spend(&mut self, spend: &SpendOp, now_ms: i64) -> OpResult {
        let persona = spend.persona.as_str();
        let state = &self.personas[persona];
        if let Some(reason) = budget::refusal(
            &state.spec.budget,
            &state.state.spend,
            spend.usd,
            spend.tokens,
            now_ms,
        ) {
            self.emit_exhausted(persona, reason, spend.usd, spend.tokens, now_ms);
            return OpResult {
                receipt: "error".to_string(),
                error: Some(format!("persona budget exhausted: {reason}")),
                ..OpResult::default()
            };
        }
        let receipt_id = format!("persona_budget_{}", self.ids.uuid_v7(now_ms));
        self.emit(
            persona,
            "persona.budget.recorded",
            json!({"receipt_id": receipt_id, "persona": persona, "cost_usd": spend.usd, "tokens": spend.tokens, "lease_id": null}),
            now_ms,
        );
        OpResult::receipt("ok")
    }

    fn repair_worker(&mut self, report: &RepairWorkerOp, now_ms: i64) -> OpResult {
        let persona = report.persona.as_str();
        let seen = (report.id.clone(), report.lifecycle.as_str().to_string());
        if self.personas[persona].state.repair_reports.contains(&seen) {
            return OpResult::receipt("unchanged");
        }
        let update = json!({
            "persona_id": persona,
            "template_ref": self.template_ref(persona),
            "repair_worker_id": report.id,
            "lifecycle": report.lifecycle.as_str(),
            "work_key": report.work_key,
            "lease_id": report.lease_id,
            "scratchpad_url": report.scratchpad_url,
            "last_heartbeat_ms": now_ms,
            "occurred_at_ms": now_ms,
        });
        self.emit(
            persona,
            "persona.repair_worker.status",
            update.clone(),
            now_ms,
        );
        self.emit_supervision(persona, "repair_worker_status", update, now_ms);
        OpResult::receipt("recorded")
    }

    fn restore_checkpoint(&mut self, request: &RestoreCheckpointOp, now_ms: i64) -> OpResult {
        let persona = request.persona.as_str();
        let state = &self.personas[persona].state;
        if let Some(prior) = state.checkpoint_acks.get(&request.checkpoint_id) {
            return OpResult {
                detail: Some(prior.clone()),
                ..OpResult::receipt("already_acked")
            };
        }
        let resumed_from = json!({
            "run_id": null,
            "lease_id": state.live_lease(now_ms).map(|lease| lease.id.clone()),
            "last_run_ms": state.last_run_ms,
            "queued_work_keys": state.queued.keys().collect::<Vec<_>>(),
            "note": null,
        });
        let update = json!({
            "persona_id": persona,
            "template_ref": self.template_ref(persona),
            "action": "restore_acked",
            "checkpoint_id": request.checkpoint_id,
            "work_key": request.work_key,
            "resumed_from": resumed_from,
            "occurred_at_ms": now_ms,
        });
        self.emit(
            persona,
            "persona.checkpoint.restore_acked",
            update.clone(),
            now_ms,
        );
        self.emit_supervision(persona, "checkpoint", update, now_ms);
        OpResult::receipt("acked")
    }
}

struct ValueCtx<'a> {
    persona: &'a str,
    template_ref: Option<String>,
    run_id: &'a str,
    metadata: Value,
    now_ms: i64,
    /// `now_ms` as RFC 3339, formatted once for all the run's value events.
    occurred_at: String,
}

/// `fields` with one more field.
fn with(fields: &Value, name: &str, value: i64) -> Value {
    let mut out = fields.clone();
    out[name] = json!(value);
    out
}

fn run_result(receipt: RunReceipt) -> OpResult {
    OpResult {
        receipt: receipt.status.clone(),
        error: receipt.error.clone(),
        run: Some(receipt),
        ..OpResult::default()
    }
}

fn value_metadata(envelope: &Envelope, lease: &Lease, cost: &RunCost) -> Value {
    let mut metadata = serde_json::Map::new();
    metadata.insert("work_key".to_string(), json!(envelope.subject_key));
    metadata.insert("trigger_provider".to_string(), json!(envelope.provider));
    metadata.insert("trigger_kind".to_string(), json!(envelope.kind));
    metadata.insert("lease_id".to_string(), json!(lease.id));
    metadata.insert("tokens".to_string(), json!(cost.tokens));
    if cost.frontier_escalations > 0 {
        metadata.insert(
            "frontier_escalations".to_string(),
            json!(cost.frontier_escalations),
        );
    }
    match &cost.metadata {
        Value::Null => {}
        Value::Object(extra) => metadata.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone()))),
        extra => {
            metadata.insert("run_cost_metadata".to_string(), extra.clone());
        }
    }
    Value::Object(metadata)
}

/// The sha256 hex of an event's canonical JSON (sorted keys, no spaces):
/// the effect hash a capture bundle records.
pub fn effect_hash(event: &StoredEvent) -> String {
    crate::capture::to_hex(&crate::capture::json_digest(event))
}
