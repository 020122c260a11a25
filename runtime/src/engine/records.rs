//! Run records: every persona run of the log, folded from the same typed
//! events as persona state.

use std::collections::BTreeMap;

use crate::persona::{persona_events, PersonaEvent};
use crate::run_record::{RunFacts, RunRecord, RunStatus};

use super::Runtime;

/// The runs of a log, folded event by event: open runs by run id, finished
/// runs in the order they finished, each with its start position.
#[derive(Debug, Default)]
struct RunLedger {
    open: BTreeMap<String, (usize, RunFacts)>,
    done: Vec<(usize, RunFacts)>,
}

impl RunLedger {
    fn apply(&mut self, runtime: &Runtime, persona: &str, event: &PersonaEvent, at_ms: i64) {
        match event {
            PersonaEvent::RunStarted(started) => {
                let entry_workflow = runtime
                    .persona(persona)
                    .map(|p| p.spec.entry_workflow.clone())
                    .unwrap_or_default();
                let facts = RunFacts {
                    run_id: started.run.run_id.clone(),
                    persona: persona.to_string(),
                    work_key: started.run.work_key.clone(),
                    entry_workflow,
                    status: RunStatus::Crashed,
                    started_at_ms: at_ms,
                    finished_at_ms: None,
                    stage_metadata: BTreeMap::new(),
                    error: None,
                };
                let order = self.done.len() + self.open.len();
                self.open.insert(started.run.run_id.clone(), (order, facts));
            }
            PersonaEvent::ValueRunStarted(value) => {
                let stages = value
                    .metadata
                    .get("stage_metadata")
                    .and_then(|v| serde_json::from_value(v.clone()).ok());
                if let (Some((_, facts)), Some(stages)) = (self.open.get_mut(&value.run_id), stages)
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
        if let Some((order, mut facts)) = self.open.remove(run_id) {
            facts.finished_at_ms = Some(at_ms);
            facts.status = status;
            facts.error = error;
            self.done.push((order, facts));
        }
    }

    /// Every run, finished or not (a run that never finished crashed), in
    /// start order.
    fn into_runs(mut self) -> Vec<RunFacts> {
        self.done.extend(self.open.into_values());
        self.done
            .sort_by_key(|(order, facts)| (facts.started_at_ms, *order));
        self.done.into_iter().map(|(_, facts)| facts).collect()
    }
}

impl Runtime {
    /// A run record for every persona run in the log, in start order: a run
    /// that started and never finished crashed.
    pub fn run_records(&self) -> Vec<RunRecord> {
        let mut ledger = RunLedger::default();
        for decoded in persona_events(self.log.all()) {
            // The log folded when the runtime opened it, and every later
            // event was written by this runtime.
            let (stored, persona, event) = decoded.expect("the log folded when it was opened");
            ledger.apply(self, persona, &event, stored.occurred_at_ms);
        }
        let records = ledger.into_runs().into_iter().map(|facts| {
            let stages = self
                .personas
                .get(&facts.persona)
                .map(|p| p.spec.stages.clone())
                .unwrap_or_default();
            RunRecord::from_run(facts, &stages)
        });
        records.collect()
    }
}
