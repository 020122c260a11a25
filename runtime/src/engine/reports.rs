//! Reports from outside the runtime: repair-worker status and checkpoint
//! restores, each recorded once with its supervision mirror.

use crate::op::{RepairWorkerOp, RestoreCheckpointOp};

use super::{OpResult, Runtime};

impl Runtime {
    /// Records a repair worker's report; `unchanged` when the worker already
    /// reported this lifecycle.
    pub(super) fn repair_worker(&mut self, report: &RepairWorkerOp, now_ms: i64) -> OpResult {
        let persona = report.persona.as_str();
        let events = self.personas[persona].decide_repair_worker(report, now_ms);
        if events.is_empty() {
            return OpResult::receipt("unchanged");
        }
        self.record_all(persona, &events, now_ms);
        OpResult::receipt("recorded")
    }

    /// Acknowledges a checkpoint restore once; a repeat gets the first
    /// acknowledgement back as `already_acked`.
    pub(super) fn restore_checkpoint(
        &mut self,
        request: &RestoreCheckpointOp,
        now_ms: i64,
    ) -> OpResult {
        let persona = request.persona.as_str();
        match self.personas[persona].decide_restore_checkpoint(request, now_ms) {
            Err(prior) => OpResult {
                detail: Some(serde_json::to_value(prior).expect("an acknowledgement serialises")),
                ..OpResult::receipt("already_acked")
            },
            Ok(events) => {
                self.record_all(persona, &events, now_ms);
                OpResult::receipt("acked")
            }
        }
    }
}
