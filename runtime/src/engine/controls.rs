//! Controls (pause, disable, resume with its drain) and spend recorded
//! outside a run.

use crate::op::SpendOp;

use super::{OpResult, RunPlan, Runtime};

impl Runtime {
    pub(super) fn pause(&mut self, persona: &str, now_ms: i64) -> OpResult {
        let event = self.personas[persona].decide_pause(now_ms);
        self.record(persona, event, now_ms);
        OpResult::receipt("ok")
    }

    pub(super) fn disable(&mut self, persona: &str, now_ms: i64) -> OpResult {
        let event = self.personas[persona].decide_disable(now_ms);
        self.record(persona, event, now_ms);
        OpResult::receipt("ok")
    }

    /// Resumes and drains the queue in work-key order, each item a run of
    /// its own; the receipts are the drain's, in order.
    pub(super) fn resume(&mut self, persona: &str, now_ms: i64) -> OpResult {
        let event = self.personas[persona].decide_resume(now_ms);
        self.record(persona, event, now_ms);
        let queued: Vec<_> = self.personas[persona]
            .state
            .queued
            .values()
            .cloned()
            .collect();
        let receipts = queued
            .into_iter()
            .map(|item| {
                let receipt = self.run_for_envelope(
                    persona,
                    item.envelope,
                    item.cost,
                    RunPlan::COMPLETE,
                    now_ms,
                );
                receipt.status.as_str().to_string()
            })
            .collect();
        OpResult {
            receipt: "ok".to_string(),
            receipts,
            ..OpResult::default()
        }
    }

    /// Records spend against the budget, or refuses it with the limit it
    /// would break.
    pub(super) fn spend(&mut self, spend: &SpendOp, now_ms: i64) -> OpResult {
        let persona = spend.persona.as_str();
        let (event, refusal) = self.personas[persona].decide_spend(spend, now_ms, &mut self.ids);
        self.record(persona, event, now_ms);
        match refusal {
            Some(reason) => OpResult {
                receipt: "error".to_string(),
                error: Some(format!("persona budget exhausted: {reason}")),
                ..OpResult::default()
            },
            None => OpResult::receipt("ok"),
        }
    }
}
