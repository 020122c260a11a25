//! The pipeline lifecycle and the process registry: each decides its events
//! from its own state; the runtime stages them for their topic and folds
//! them once they are committed.

use serde_json::Value;

use crate::log::{LogEvent, Topic};
use crate::op::Op;
use crate::pipeline::lifecycle_topic;
use crate::process::{process_topic, ProcessOp};

use super::{OpResult, Runtime, RuntimeError};

impl Runtime {
    pub(super) fn stage_pipeline(
        &mut self,
        op: &Op,
        now_ms: i64,
    ) -> Result<OpResult, RuntimeError> {
        let outcome = match op {
            Op::Audit(audit) => self.pipeline.audit(audit, now_ms),
            Op::Handoff(handoff) => self.pipeline.handoff(handoff, now_ms),
            Op::AckHandoff(ack) => self.pipeline.ack_handoff(ack, now_ms),
            Op::Finalize(finalize) => self.pipeline.finalize(finalize, now_ms),
            _ => unreachable!("only pipeline steps reach the pipeline"),
        }?;
        Ok(self.stage_subsystem(
            lifecycle_topic(),
            outcome.events,
            outcome.receipt,
            outcome.result,
        ))
    }

    pub(super) fn stage_process(
        &mut self,
        process: &ProcessOp,
        now_ms: i64,
    ) -> Result<OpResult, RuntimeError> {
        let outcome = self.processes.execute(process, now_ms, &mut self.ids)?;
        Ok(self.stage_subsystem(
            process_topic(),
            outcome.events,
            outcome.receipt,
            outcome.result,
        ))
    }

    /// Stages the events a subsystem returned for its topic.
    fn stage_subsystem(
        &mut self,
        topic: Topic,
        events: Vec<LogEvent>,
        receipt: String,
        detail: Option<Value>,
    ) -> OpResult {
        self.pending.extend(
            events
                .into_iter()
                .map(|event| super::Staged::Event(topic.clone(), event)),
        );
        OpResult {
            receipt,
            detail,
            ..OpResult::default()
        }
    }
}
