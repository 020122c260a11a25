//! Run records: every persona run of the log, folded from the same typed
//! events as persona state, whole ([`Runtime::run_records`]) or as a run
//! goes ([`RunLedger`], over a log that keeps no history).

use std::collections::BTreeMap;

use crate::log::StoredEvent;
use crate::persona::{persona_events, PersonaEvent};
use crate::run_record::{RunFacts, RunRecord, RunStatus};

use super::Runtime;

/// Where a run stands in start order: its start time, then how many runs
/// started before it.
type StartKey = (i64, usize);

/// The runs of a log, folded event by event: open runs by run id, finished
/// runs by start order. A run ends up in the records when it is drained
/// ([`RunLedger::drain_settled`]) or at the end ([`RunLedger::into_records`]),
/// so a long run keeps only the runs still open and the finished runs that
/// wait for an earlier open one.
#[derive(Clone, Debug, Default)]
pub struct RunLedger {
    open: BTreeMap<String, (StartKey, RunFacts)>,
    done: BTreeMap<StartKey, RunFacts>,
    /// Runs started so far.
    started: usize,
    /// The latest start time of a drained run: no later run may start
    /// before it, or the drained records would be out of order.
    drained_until_ms: Option<i64>,
}

impl RunLedger {
    /// Folds `events`, appended by `runtime` after every event folded so far.
    pub fn fold(&mut self, runtime: &Runtime, events: &[StoredEvent]) {
        for decoded in persona_events(events) {
            // The log folded when the runtime opened it, and every later
            // event was written by this runtime.
            let (stored, persona, event) = decoded.expect("the log folded when it was opened");
            self.fold_event(runtime, persona, &event, stored.occurred_at_ms);
        }
    }

    /// Folds one decoded persona event of `persona`, appended by `runtime`
    /// at `at_ms` after every event folded so far: what [`RunLedger::fold`]
    /// does for each, for a caller that has decoded the events already.
    pub fn fold_event(
        &mut self,
        runtime: &Runtime,
        persona: &str,
        event: &PersonaEvent,
        at_ms: i64,
    ) {
        match event {
            PersonaEvent::RunStarted(started) => {
                assert!(
                    self.drained_until_ms.is_none_or(|drained| at_ms >= drained),
                    "a run started at {at_ms} ms, before runs already drained in start order"
                );
                let entry_workflow = runtime
                    .persona(persona)
                    .map(|p| p.spec.entry_workflow.clone())
                    .unwrap_or_default();
                let facts = RunFacts {
                    run_id: started.run.run_id.to_string(),
                    persona: persona.to_string(),
                    work_key: started.run.work_key.to_string(),
                    entry_workflow,
                    status: RunStatus::Crashed,
                    started_at_ms: at_ms,
                    finished_at_ms: None,
                    stage_metadata: BTreeMap::new(),
                    error: None,
                };
                let key = (at_ms, self.started);
                self.started += 1;
                self.open
                    .insert(started.run.run_id.to_string(), (key, facts));
            }
            PersonaEvent::ValueRunStarted(value) => {
                let stages = value
                    .metadata
                    .get("stage_metadata")
                    .and_then(|v| serde_json::from_value(v.clone()).ok());
                if let (Some((_, facts)), Some(stages)) =
                    (self.open.get_mut(&*value.run_id), stages)
                {
                    facts.stage_metadata = stages;
                }
            }
            PersonaEvent::RunCompleted(done) => {
                self.finish(&done.run.run_id, at_ms, RunStatus::Completed, None);
            }
            PersonaEvent::RunFailed(failed) => {
                let error = Some(failed.error.as_str().to_string());
                self.finish(&failed.run.run_id, at_ms, RunStatus::Failed, error);
            }
            _ => {}
        }
    }

    fn finish(&mut self, run_id: &str, at_ms: i64, status: RunStatus, error: Option<String>) {
        if let Some((key, mut facts)) = self.open.remove(run_id) {
            facts.finished_at_ms = Some(at_ms);
            facts.status = status;
            facts.error = error;
            self.done.insert(key, facts);
        }
    }

    /// Takes the records of the finished runs that start before every open
    /// run, in start order: no run folded later can come before them, as
    /// runs start in time order (a run that starts earlier than one drained
    /// panics).
    pub fn drain_settled(&mut self, runtime: &Runtime) -> Vec<RunRecord> {
        let first_open = self.open.values().map(|(key, _)| *key).min();
        let mut settled = Vec::new();
        while let Some(entry) = self.done.first_entry() {
            if first_open.is_some_and(|open| *entry.key() > open) {
                break;
            }
            let ((started_at_ms, _), facts) = entry.remove_entry();
            self.drained_until_ms = Some(started_at_ms);
            settled.push(record(runtime, facts));
        }
        settled
    }

    /// The records of every run not drained, finished or not (a run that
    /// never finished crashed), in start order.
    pub fn into_records(self, runtime: &Runtime) -> Vec<RunRecord> {
        let mut runs: Vec<(StartKey, RunFacts)> = self.done.into_iter().collect();
        runs.extend(self.open.into_values());
        runs.sort_by_key(|(key, _)| *key);
        runs.into_iter()
            .map(|(_, facts)| record(runtime, facts))
            .collect()
    }
}

/// The record of a run, with its persona's declared stages.
fn record(runtime: &Runtime, facts: RunFacts) -> RunRecord {
    let stages = runtime
        .personas
        .get(&facts.persona)
        .map(|p| p.spec.stages.as_slice())
        .unwrap_or_default();
    RunRecord::from_run(facts, stages)
}

impl Runtime {
    /// A run record for every persona run in the log, in start order: a run
    /// that started and never finished crashed. It folds the whole log, so
    /// it needs a log that keeps its history; a run over one that does not
    /// keeps a [`RunLedger`] instead.
    pub fn run_records(&self) -> Vec<RunRecord> {
        debug_assert!(
            self.log.keeps_history(),
            "run records fold the whole log, which this log does not keep"
        );
        let mut ledger = RunLedger::default();
        ledger.fold(self, self.log.all());
        ledger.into_records(self)
    }
}
