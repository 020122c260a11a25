//! Admission and runs: a trigger or tick is recorded, its envelope admitted
//! (or refused, queued, dead-lettered) and run, and the run's supervision
//! events follow. The decisions are the persona's (`persona/decide.rs`);
//! this handler lends them the id stream and applies what they return.

use std::sync::Arc;

use crate::op::Op;
use crate::persona::{Arrived, PersonaEvent, RunCost, RunReceipt};
use crate::workkey::{self, Envelope};

use super::{run_result, OpResult, RunPlan, Runtime, RuntimeError};

impl Runtime {
    /// Records that a trigger arrived (or a schedule fired) and runs its
    /// envelope: the first attempt of a trigger or tick.
    pub(super) fn fire(
        &mut self,
        op: &Op,
        plan: RunPlan,
        now_ms: i64,
    ) -> Result<OpResult, RuntimeError> {
        let (persona, cost) = match op {
            Op::Trigger(trigger) => {
                validate_trigger(trigger)?;
                (&trigger.persona, &trigger.cost)
            }
            Op::Tick(tick) => (&tick.persona, &tick.cost),
            _ => unreachable!("only triggers and ticks fire"),
        };
        let envelope = self
            .envelope_for(op, now_ms)
            .expect("a trigger or tick has an envelope");
        let arrived = Arrived {
            persona: persona.clone(),
            envelope,
        };
        let event = match op {
            Op::Trigger(_) => PersonaEvent::TriggerReceived(arrived),
            _ => PersonaEvent::ScheduleFired(arrived),
        };
        self.record_ref(persona, &event, now_ms);
        // The recorded event hands its envelope on to the run.
        let (PersonaEvent::TriggerReceived(Arrived { envelope, .. })
        | PersonaEvent::ScheduleFired(Arrived { envelope, .. })) = event
        else {
            unreachable!("a trigger or tick arrived")
        };
        let receipt = self.run_for_envelope(persona, envelope, RunCost::from(cost), plan, now_ms);
        Ok(run_result(receipt))
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
                    Arc::clone(&trigger.metadata),
                    now_ms,
                    || ids.prefixed("", now_ms),
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

    /// Admission and the run, then the queue-position and receipt
    /// supervision events, each decided on the state the one before left.
    pub(super) fn run_for_envelope(
        &mut self,
        persona: &str,
        envelope: Envelope,
        cost: RunCost,
        plan: RunPlan,
        now_ms: i64,
    ) -> RunReceipt {
        // A key leaving the queue reports when it was queued; a key
        // entering reports its new entry.
        let queued_before = self.personas[persona]
            .state
            .queued
            .get(&envelope.subject_key)
            .map(|item| item.queued_at_ms);
        let subject = &self.personas[persona];
        let admission = subject.admission(&envelope.subject_key, &cost, now_ms);
        #[cfg(feature = "test-hooks")]
        let admission = self.hooks.admission(admission, subject, &cost, now_ms);
        let decision = subject.decide_run(
            &admission,
            envelope,
            cost,
            plan.outcome,
            now_ms,
            &mut self.ids,
        );
        self.record_all(persona, &decision.events, now_ms);
        let supervision =
            self.personas[persona].decide_supervision(decision.receipt, queued_before, now_ms);
        self.record_all(persona, &supervision.events, now_ms);
        supervision.receipt()
    }
}

/// A trigger's provider and metadata keys must be non-empty.
fn validate_trigger(trigger: &crate::op::TriggerOp) -> Result<(), RuntimeError> {
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
    Ok(())
}
