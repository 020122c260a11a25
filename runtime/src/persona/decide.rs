//! Decide: what a persona command does, computed from `&self` state and
//! returned as typed events, for the runtime to apply (through
//! [`super::PersonaState::apply`], the one fold) and stage.
//!
//! A decision never changes state. Ids are drawn from the operation's id
//! stream, which the caller lends; the draw order is part of the log's
//! bytes and must not change.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::budget::{self, BudgetLimit};
use crate::clock::TimeTuple;
use crate::ids::IdGen;
use crate::json_out::object;
use crate::lease::{runtime_holder, Lease};
use crate::log::Payload;
use crate::op::{AttemptOutcome, RepairWorkerOp, RestoreCheckpointOp, SpendOp};
use crate::workkey::Envelope;

use super::events::*;
use super::{PausedEventPolicy, Persona, RunCost};

/// The facts admission decides on. The engine computes them with
/// [`Persona::admission`]; a test build may distort them at one hook point
/// before [`Persona::decide_run`] reads them.
#[derive(Clone, Debug, PartialEq)]
pub struct Admission {
    /// The budget limit the run's cost would break.
    pub refusal: Option<BudgetLimit>,
    /// Whether the work key already completed.
    pub duplicate: bool,
    /// The live lease that would refuse the run.
    pub live_lease: Option<Lease>,
}

/// What a run attempt decided: its events, in log order, and its receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct RunDecision {
    pub events: Vec<PersonaEvent>,
    pub receipt: RunReceipt,
}

impl RunDecision {
    fn ends(&mut self, status: ReceiptStatus, error: Option<String>) {
        self.receipt.status = status;
        self.receipt.error = error;
    }
}

/// The amounts of one value event.
#[derive(Clone, Copy, Debug, Default)]
struct Amounts {
    paid: f64,
    avoided: f64,
    deterministic_steps: i64,
    llm_steps: i64,
}

impl Persona {
    /// The admission facts of a run costing `cost` at `now_ms`.
    pub fn admission(&self, work_key: &str, cost: &RunCost, now_ms: i64) -> Admission {
        let state = &self.state;
        Admission {
            refusal: budget::refusal(
                &self.spec.budget,
                &state.spend,
                cost.cost_usd,
                cost.tokens,
                now_ms,
            ),
            duplicate: state.completed.contains(work_key),
            live_lease: state.live_lease(now_ms).cloned(),
        }
    }

    /// Decides one run attempt of `envelope`: queued while paused,
    /// dead-lettered while disabled, refused by the budget, as a duplicate or
    /// by a live lease (in that order), else run to `outcome`. See
    /// docs/SCENARIOS.md, "Receipts, events and order (persona runtime)".
    pub fn decide_run(
        &self,
        admission: &Admission,
        envelope: Envelope,
        cost: RunCost,
        outcome: AttemptOutcome,
        now_ms: i64,
        ids: &mut IdGen,
    ) -> RunDecision {
        let mut decision = RunDecision {
            events: Vec::with_capacity(9),
            receipt: RunReceipt {
                status: ReceiptStatus::Completed,
                persona: self.name.clone(),
                run_id: None,
                work_key: envelope.subject_key.clone(),
                lease: None,
                queued: false,
                error: None,
                budget_receipt_id: None,
                failure: None,
                envelope: None,
            },
        };
        match self.refuse(
            &mut decision.receipt,
            admission,
            &envelope,
            &cost,
            now_ms,
            ids,
        ) {
            Some(refusal) => decision.events.push(refusal),
            None => self.run(&mut decision, &envelope, &cost, outcome, now_ms, ids),
        }
        decision.receipt.envelope = Some(Box::new(envelope));
        decision
    }

    /// The event of a run that does not start, with its receipt filled in;
    /// `None` when the run starts.
    fn refuse(
        &self,
        receipt: &mut RunReceipt,
        admission: &Admission,
        envelope: &Envelope,
        cost: &RunCost,
        now_ms: i64,
        ids: &mut IdGen,
    ) -> Option<PersonaEvent> {
        let work_key = &envelope.subject_key;
        let refused = |reason| TriggerRefused {
            work_key: work_key.to_string(),
            envelope: envelope.clone(),
            reason,
        };
        let (event, status, error) = match (self.state.lifecycle, admission.refusal) {
            (super::Lifecycle::Paused, _) => {
                receipt.queued = true;
                let queued = TriggerQueued {
                    work_key: work_key.to_string(),
                    envelope: envelope.clone(),
                    cost: cost.clone(),
                    reason: QueueReason::Paused,
                };
                (
                    PersonaEvent::TriggerQueued(queued),
                    ReceiptStatus::Queued,
                    None,
                )
            }
            (super::Lifecycle::Disabled, _) => (
                PersonaEvent::TriggerDeadLettered(refused(RefusalReason::Disabled)),
                ReceiptStatus::DeadLettered,
                Some("persona is disabled".to_string()),
            ),
            (_, Some(reason)) => {
                let event = self.exhausted(reason, cost.cost_usd, cost.tokens, now_ms, ids);
                let error = format!("persona budget exhausted: {reason}");
                (event, ReceiptStatus::BudgetExhausted, Some(error))
            }
            _ if admission.duplicate => (
                PersonaEvent::TriggerDuplicate(refused(RefusalReason::AlreadyCompleted)),
                ReceiptStatus::Duplicate,
                None,
            ),
            _ => {
                let active = admission.live_lease.as_ref()?;
                receipt.lease = Some(active.clone());
                let conflict = LeaseConflict {
                    active_lease: active.clone(),
                    requested_work_key: work_key.to_string(),
                    at_ms: now_ms,
                };
                let error = "active lease already owns persona work".to_string();
                (
                    PersonaEvent::LeaseConflict(conflict),
                    ReceiptStatus::LeaseBusy,
                    Some(error),
                )
            }
        };
        receipt.status = status;
        receipt.error = error;
        Some(event)
    }

    /// The admitted run: its start, then the outcome.
    fn run(
        &self,
        decision: &mut RunDecision,
        envelope: &Envelope,
        cost: &RunCost,
        outcome: AttemptOutcome,
        now_ms: i64,
        ids: &mut IdGen,
    ) {
        let (lease, run) = self.start(decision, &envelope.subject_key, now_ms, ids);
        if outcome == AttemptOutcome::Crash {
            let error = "run crashed after start: the lease holds until it expires";
            return decision.ends(ReceiptStatus::Crashed, Some(error.to_string()));
        }
        let value = self.value_template(&run, value_metadata(envelope, &lease, cost), now_ms);
        decision.events.push(value_event(
            value.clone(),
            ValueKind::RunStarted,
            Amounts::default(),
        ));
        let receipt_id = ids.prefixed("persona_budget_", now_ms);
        decision.receipt.budget_receipt_id = Some(receipt_id.clone());
        decision
            .events
            .push(PersonaEvent::BudgetRecorded(BudgetRecorded {
                receipt_id,
                persona: self.name.clone(),
                cost_usd: cost.cost_usd,
                tokens: cost.tokens,
                lease_id: Some(lease.id.clone()),
            }));
        let released = PersonaEvent::LeaseReleased(LeaseReleased {
            id: lease.id,
            work_key: run.work_key.clone(),
            released_at_ms: now_ms,
        });
        if let AttemptOutcome::Fail(kind) = outcome {
            decision.events.push(released);
            decision.events.push(PersonaEvent::RunFailed(RunFailed {
                run,
                failed_at_ms: now_ms,
                error: kind,
            }));
            decision.receipt.failure = Some(kind);
            return decision.ends(ReceiptStatus::Failed, Some(format!("run failed: {kind}")));
        }
        // The last value event takes the template itself.
        let mut values = completion_values(cost);
        let last = values
            .pop()
            .expect("a completed run has its completion value");
        for (kind, amounts) in values {
            decision
                .events
                .push(value_event(value.clone(), kind, amounts));
        }
        decision.events.push(value_event(value, last.0, last.1));
        decision
            .events
            .push(PersonaEvent::RunCompleted(RunCompleted {
                run,
                completed_at_ms: now_ms,
            }));
        decision.events.push(released);
        decision.ends(ReceiptStatus::Completed, None)
    }

    /// The start of an admitted run: the lease (clearing a lapsed one
    /// first) and `persona.run.started`; the receipt names both.
    fn start(
        &self,
        decision: &mut RunDecision,
        work_key: &Arc<str>,
        now_ms: i64,
        ids: &mut IdGen,
    ) -> (Lease, RunRef) {
        if let Some(expired) = &self.state.lease {
            decision
                .events
                .push(PersonaEvent::LeaseExpired(LeaseExpired {
                    id: expired.id.clone(),
                    work_key: expired.work_key.clone(),
                    expired_at_ms: now_ms,
                }));
        }
        let lease = Lease {
            id: ids.prefixed("persona_lease_", now_ms),
            holder: runtime_holder(),
            work_key: Arc::clone(work_key),
            acquired_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(self.spec.lease_ttl().as_i64()),
        };
        decision
            .events
            .push(PersonaEvent::LeaseAcquired(lease.clone()));
        let run = RunRef {
            work_key: Arc::clone(work_key),
            run_id: ids.prefixed("", now_ms),
            entry_workflow: Arc::clone(&self.entry_workflow),
            lease_id: lease.id.clone(),
        };
        decision.receipt.run_id = Some(run.run_id.clone());
        decision.receipt.lease = Some(lease.clone());
        decision.events.push(PersonaEvent::RunStarted(RunStarted {
            run: run.clone(),
            started_at_ms: now_ms,
        }));
        (lease, run)
    }

    /// The value event fields every event of one run shares.
    fn value_template(&self, run: &RunRef, metadata: Payload, now_ms: i64) -> ValueEvent {
        ValueEvent {
            persona_id: Arc::clone(&self.name),
            template_ref: self.template_ref.clone(),
            run_id: run.run_id.clone(),
            kind: ValueKind::RunStarted,
            paid_cost_usd: 0.0,
            avoided_cost_usd: 0.0,
            deterministic_steps: 0,
            llm_steps: 0,
            metadata,
            occurred_at: TimeTuple(now_ms),
        }
    }

    /// `persona.budget.exhausted` for spend of `usd` and `tokens` refused
    /// for `reason`.
    fn exhausted(
        &self,
        reason: BudgetLimit,
        usd: f64,
        tokens: u64,
        now_ms: i64,
        ids: &mut IdGen,
    ) -> PersonaEvent {
        PersonaEvent::BudgetExhausted(BudgetExhausted {
            receipt_id: ids.prefixed("persona_budget_", now_ms),
            reason,
            attempted_cost_usd: usd,
            attempted_tokens: tokens,
            persona: self.name.clone(),
        })
    }

    /// Decides spend recorded outside a run: recorded, or refused with the
    /// limit it would break.
    pub fn decide_spend(
        &self,
        spend: &SpendOp,
        now_ms: i64,
        ids: &mut IdGen,
    ) -> (PersonaEvent, Option<BudgetLimit>) {
        let refusal = budget::refusal(
            &self.spec.budget,
            &self.state.spend,
            spend.usd,
            spend.tokens,
            now_ms,
        );
        if let Some(reason) = refusal {
            let event = self.exhausted(reason, spend.usd, spend.tokens, now_ms, ids);
            return (event, Some(reason));
        }
        let recorded = BudgetRecorded {
            receipt_id: ids.prefixed("persona_budget_", now_ms),
            persona: self.name.clone(),
            cost_usd: spend.usd,
            tokens: spend.tokens,
            lease_id: None,
        };
        (PersonaEvent::BudgetRecorded(recorded), None)
    }

    /// `persona.control.paused`.
    pub fn decide_pause(&self, now_ms: i64) -> PersonaEvent {
        PersonaEvent::ControlPaused(Paused {
            paused_at_ms: now_ms,
            policy: PausedEventPolicy::QueueThenDrainOnResume,
        })
    }

    /// `persona.control.disabled`.
    pub fn decide_disable(&self, now_ms: i64) -> PersonaEvent {
        PersonaEvent::ControlDisabled(Disabled {
            disabled_at_ms: now_ms,
        })
    }

    /// `persona.control.resumed`; the queue then drains, run by run.
    pub fn decide_resume(&self, now_ms: i64) -> PersonaEvent {
        PersonaEvent::ControlResumed(Resumed {
            resumed_at_ms: now_ms,
            drain: true,
        })
    }

    /// A repair worker's report and its supervision mirror; nothing when the
    /// same worker already reported the same lifecycle.
    pub fn decide_repair_worker(&self, report: &RepairWorkerOp, now_ms: i64) -> Vec<PersonaEvent> {
        let seen = (report.id.clone(), report.lifecycle);
        if self.state.repair_reports.contains(&seen) {
            return Vec::new();
        }
        let status = RepairWorkerStatus {
            persona_id: self.name.to_string(),
            template_ref: self.spec.template_ref.clone(),
            repair_worker_id: report.id.clone(),
            lifecycle: report.lifecycle,
            work_key: report.work_key.clone(),
            lease_id: report.lease_id.clone(),
            scratchpad_url: report.scratchpad_url.clone(),
            last_heartbeat_ms: now_ms,
            occurred_at_ms: now_ms,
        };
        vec![
            PersonaEvent::RepairWorkerStatus(status.clone()),
            PersonaEvent::SupervisionRepairWorkerStatus(Supervised {
                update: status,
                update_kind: SupervisionKind::RepairWorkerStatus,
            }),
        ]
    }

    /// A checkpoint restore's acknowledgement and its supervision mirror, or
    /// the earlier acknowledgement of the same checkpoint.
    pub fn decide_restore_checkpoint(
        &self,
        request: &RestoreCheckpointOp,
        now_ms: i64,
    ) -> Result<Vec<PersonaEvent>, &RestoreAcked> {
        let state = &self.state;
        if let Some(prior) = state.checkpoint_acks.get(&request.checkpoint_id) {
            return Err(prior);
        }
        let ack = RestoreAcked {
            persona_id: self.name.to_string(),
            template_ref: self.spec.template_ref.clone(),
            action: CheckpointAction::RestoreAcked,
            checkpoint_id: request.checkpoint_id.clone(),
            work_key: request.work_key.clone(),
            resumed_from: ResumedFrom {
                run_id: None,
                lease_id: state.live_lease(now_ms).map(|lease| lease.id.to_string()),
                last_run_ms: state.last_run_ms,
                queued_work_keys: state.queued.keys().map(|key| key.to_string()).collect(),
                note: None,
            },
            occurred_at_ms: now_ms,
        };
        Ok(vec![
            PersonaEvent::CheckpointRestoreAcked(ack.clone()),
            PersonaEvent::SupervisionCheckpoint(Supervised {
                update: ack,
                update_kind: SupervisionKind::Checkpoint,
            }),
        ])
    }

    /// The supervision events after a run attempt, decided on the state the
    /// attempt left: the queue position when `work_key` entered or left the
    /// queue (`queued_before` is when it was queued before the attempt),
    /// then the receipt, which the last event takes (its envelope, which
    /// the supervisor keeps, is never logged); [`Supervision::receipt`]
    /// hands it back.
    pub fn decide_supervision(
        &self,
        receipt: RunReceipt,
        queued_before: Option<i64>,
        now_ms: i64,
    ) -> Supervision {
        let work_key = &receipt.work_key;
        let queue = &self.state.queued;
        let is_queued = queue.contains_key(&**work_key);
        let mut events = Vec::with_capacity(2);
        if queued_before.is_some() != is_queued {
            let position = if is_queued {
                queue
                    .range::<str, _>((
                        std::ops::Bound::Unbounded,
                        std::ops::Bound::Excluded(&**work_key),
                    ))
                    .count() as i64
                    + 1
            } else {
                0
            };
            let queued_at_ms = queue
                .get(&**work_key)
                .map(|item| item.queued_at_ms)
                .or(queued_before)
                .unwrap_or(now_ms);
            events.push(PersonaEvent::SupervisionQueuePosition(Supervised {
                update: QueuePosition {
                    persona_id: self.name.to_string(),
                    template_ref: self.spec.template_ref.clone(),
                    work_key: work_key.to_string(),
                    queue_depth: queue.len() as i64,
                    position,
                    queued_at_ms,
                    occurred_at_ms: now_ms,
                },
                update_kind: SupervisionKind::QueuePosition,
            }));
        }
        events.push(PersonaEvent::SupervisionReceipt(Supervised {
            update: ReceiptUpdate {
                persona_id: Arc::clone(&self.name),
                template_ref: self.template_ref.clone(),
                receipt,
                occurred_at_ms: now_ms,
            },
            update_kind: SupervisionKind::Receipt,
        }));
        Supervision { events }
    }
}

/// The supervision events of a run attempt, in log order; the receipt's
/// comes last and holds the receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct Supervision {
    pub events: Vec<PersonaEvent>,
}

impl Supervision {
    /// The receipt, taken back from its event.
    pub fn receipt(self) -> RunReceipt {
        match self.events.into_iter().last() {
            Some(PersonaEvent::SupervisionReceipt(event)) => event.update.receipt,
            _ => unreachable!("a run attempt's supervision ends with its receipt"),
        }
    }
}

/// The value events of a completed run after its start, as kinds and
/// amounts: deterministic work
/// (when any cost was avoided or deterministic steps ran), a frontier
/// escalation (which then carries the paid cost and LLM steps), and the
/// completion.
fn completion_values(cost: &RunCost) -> Vec<(ValueKind, Amounts)> {
    let mut events = Vec::with_capacity(3);
    if cost.avoided_cost_usd > 0.0 || cost.deterministic_steps > 0 {
        events.push((
            ValueKind::DeterministicExecution,
            Amounts {
                avoided: cost.avoided_cost_usd,
                deterministic_steps: cost.deterministic_steps.max(1),
                ..Amounts::default()
            },
        ));
    }
    let escalated = cost.frontier_escalations > 0;
    if escalated {
        events.push((
            ValueKind::FrontierEscalation,
            Amounts {
                paid: cost.cost_usd,
                llm_steps: cost.llm_steps.max(cost.frontier_escalations),
                ..Amounts::default()
            },
        ));
    }
    let completed = if escalated {
        Amounts::default()
    } else {
        Amounts {
            paid: cost.cost_usd,
            llm_steps: cost.llm_steps,
            ..Amounts::default()
        }
    };
    events.push((ValueKind::RunCompleted, completed));
    events
}

/// One value event from the run's template, clamping amounts at zero.
fn value_event(template: ValueEvent, kind: ValueKind, amounts: Amounts) -> PersonaEvent {
    PersonaEvent::value(ValueEvent {
        kind,
        paid_cost_usd: amounts.paid.max(0.0),
        avoided_cost_usd: amounts.avoided.max(0.0),
        deterministic_steps: amounts.deterministic_steps.max(0),
        llm_steps: amounts.llm_steps.max(0),
        ..template
    })
}

/// The metadata of a run's value events: the work key, trigger provider and
/// kind, lease and tokens, frontier escalations when any, and the run
/// cost's own metadata (merged when it is a map). Written once a run as
/// canonical text, which the run's value events and receipts share; the
/// usual run, without escalations or metadata of its own, is written
/// straight to text, the same text as [`value_metadata_map`]'s.
fn value_metadata(envelope: &Envelope, lease: &Lease, cost: &RunCost) -> Payload {
    if !cost.metadata.is_null() || cost.frontier_escalations > 0 {
        return Payload::from(value_metadata_map(envelope, lease, cost));
    }
    Payload::written(|out| {
        object!(out;
            "lease_id" => string(&lease.id),
            "tokens" => int(cost.tokens),
            "trigger_kind" => string(&envelope.kind),
            "trigger_provider" => string(&envelope.provider),
            "work_key" => string(&envelope.subject_key),
        )
    })
}

/// [`value_metadata`] as a map.
fn value_metadata_map(envelope: &Envelope, lease: &Lease, cost: &RunCost) -> Value {
    let mut metadata = Map::new();
    metadata.insert("work_key".into(), envelope.subject_key.to_string().into());
    metadata.insert("trigger_provider".into(), envelope.provider.clone().into());
    metadata.insert("trigger_kind".into(), envelope.kind.clone().into());
    metadata.insert("lease_id".into(), lease.id.to_string().into());
    metadata.insert("tokens".into(), cost.tokens.into());
    if cost.frontier_escalations > 0 {
        metadata.insert(
            "frontier_escalations".into(),
            cost.frontier_escalations.into(),
        );
    }
    match &cost.metadata {
        Value::Null => {}
        Value::Object(extra) => metadata.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone()))),
        extra => {
            metadata.insert("run_cost_metadata".into(), extra.clone());
        }
    }
    Value::Object(metadata)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The text written straight out is the text of the map, with and
    /// without escalations and with strings that need escaping; a run cost
    /// with metadata of its own takes the map's path.
    #[test]
    fn metadata_text_is_the_maps_canonical_text() {
        let envelope = Envelope {
            provider: "git\"hub".to_string(),
            kind: "pull_request\n".to_string(),
            subject_key: "github:acme/widgets#7 é".into(),
            source_event_id: None,
            received_at_ms: 0,
            metadata: Default::default(),
            raw: Default::default(),
        };
        let lease = Lease {
            id: "persona_lease_\\1".into(),
            holder: runtime_holder(),
            work_key: envelope.subject_key.clone(),
            acquired_at_ms: 0,
            expires_at_ms: 1,
        };
        for (escalations, metadata) in [
            (0, Value::Null),
            (3, Value::Null),
            (-2, Value::Null),
            (1, json!({"a": 1, "zeta": [true]})),
            (0, json!("not a map")),
        ] {
            let cost = RunCost {
                tokens: u64::MAX,
                frontier_escalations: escalations,
                metadata,
                ..RunCost::default()
            };
            let map = value_metadata_map(&envelope, &lease, &cost);
            let written = value_metadata(&envelope, &lease, &cost);
            assert_eq!(written.json(), Payload::from(map.clone()).json());
            assert_eq!(written.value(), &map);
        }
    }
}
