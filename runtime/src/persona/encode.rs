//! The canonical JSON of the payloads every trigger logs, written by hand
//! (`json_out.rs`) rather than through serde and `canonical.rs`: the keys
//! of each object listed in byte order, flattened fields in place. The
//! other payloads take the serde path. The tests below hold both paths to
//! the same bytes for every kind.

use super::events::*;
use crate::event::{serde_payloads, EncodePayload};
use crate::json_out::object;

serde_payloads!(
    TriggerQueued,
    LeaseConflict,
    RunFailed,
    super::events::Paused,
    Resumed,
    Disabled,
    BudgetExhausted,
    RepairWorkerStatus,
    RestoreAcked,
    Supervised<RepairWorkerStatus>,
    Supervised<RestoreAcked>,
);

impl EncodePayload for Arrived {
    fn write_payload(&self, out: &mut Vec<u8>) {
        object!(out;
            "envelope" => nested(|out| self.envelope.write_json(out)),
            "persona" => string(&self.persona),
        )
    }
}

impl EncodePayload for TriggerRefused {
    fn write_payload(&self, out: &mut Vec<u8>) {
        object!(out;
            "envelope" => nested(|out| self.envelope.write_json(out)),
            "reason" => scalar(&self.reason),
            "work_key" => string(&self.work_key),
        )
    }
}

impl EncodePayload for crate::lease::Lease {
    fn write_payload(&self, out: &mut Vec<u8>) {
        self.write_json(out);
    }
}

impl EncodePayload for LeaseExpired {
    fn write_payload(&self, out: &mut Vec<u8>) {
        object!(out;
            "expired_at_ms" => int(self.expired_at_ms),
            "id" => string(&self.id),
            "work_key" => string(&self.work_key),
        )
    }
}

impl EncodePayload for LeaseReleased {
    fn write_payload(&self, out: &mut Vec<u8>) {
        object!(out;
            "id" => string(&self.id),
            "released_at_ms" => int(self.released_at_ms),
            "work_key" => string(&self.work_key),
        )
    }
}

impl EncodePayload for RunStarted {
    fn write_payload(&self, out: &mut Vec<u8>) {
        let run = &self.run;
        object!(out;
            "entry_workflow" => string(&run.entry_workflow),
            "lease_id" => string(&run.lease_id),
            "run_id" => string(&run.run_id),
            "started_at_ms" => int(self.started_at_ms),
            "work_key" => string(&run.work_key),
        )
    }
}

impl EncodePayload for RunCompleted {
    fn write_payload(&self, out: &mut Vec<u8>) {
        let run = &self.run;
        object!(out;
            "completed_at_ms" => int(self.completed_at_ms),
            "entry_workflow" => string(&run.entry_workflow),
            "lease_id" => string(&run.lease_id),
            "run_id" => string(&run.run_id),
            "work_key" => string(&run.work_key),
        )
    }
}

impl EncodePayload for BudgetRecorded {
    fn write_payload(&self, out: &mut Vec<u8>) {
        object!(out;
            "cost_usd" => scalar(&self.cost_usd),
            "lease_id" => opt_string(self.lease_id.as_deref()),
            "persona" => string(&self.persona),
            "receipt_id" => string(&self.receipt_id),
            "tokens" => int(self.tokens),
        )
    }
}

impl EncodePayload for ValueEvent {
    fn write_payload(&self, out: &mut Vec<u8>) {
        object!(out;
            "avoided_cost_usd" => scalar(&self.avoided_cost_usd),
            "deterministic_steps" => int(self.deterministic_steps),
            "kind" => string(self.kind.as_str()),
            "llm_steps" => int(self.llm_steps),
            "metadata" => text(self.metadata.json()),
            "occurred_at" => nested(|out| self.occurred_at.write_json(out)),
            "paid_cost_usd" => scalar(&self.paid_cost_usd),
            "persona_id" => string(&self.persona_id),
            "run_id" => string(&self.run_id),
            "template_ref" => opt_string(self.template_ref.as_deref()),
        )
    }
}

impl EncodePayload for Supervised<QueuePosition> {
    fn write_payload(&self, out: &mut Vec<u8>) {
        let update = &self.update;
        object!(out;
            "occurred_at_ms" => int(update.occurred_at_ms),
            "persona_id" => string(&update.persona_id),
            "position" => int(update.position),
            "queue_depth" => int(update.queue_depth),
            "queued_at_ms" => int(update.queued_at_ms),
            "template_ref" => opt_string(update.template_ref.as_deref()),
            "update_kind" => string(self.update_kind.as_str()),
            "work_key" => string(&update.work_key),
        )
    }
}

impl EncodePayload for Supervised<ReceiptUpdate> {
    fn write_payload(&self, out: &mut Vec<u8>) {
        let update = &self.update;
        object!(out;
            "occurred_at_ms" => int(update.occurred_at_ms),
            "persona_id" => string(&update.persona_id),
            "receipt" => nested(|out| write_receipt(out, &update.receipt)),
            "template_ref" => opt_string(update.template_ref.as_deref()),
            "update_kind" => string(self.update_kind.as_str()),
        )
    }
}

/// A run receipt as logged (without the supervisor's `failure` and
/// `envelope`).
fn write_receipt(out: &mut Vec<u8>, receipt: &RunReceipt) {
    object!(out;
        "budget_receipt_id" => opt_string(receipt.budget_receipt_id.as_deref()),
        "error" => opt_string(receipt.error.as_deref()),
        "lease" => nested(|out| match &receipt.lease {
            Some(lease) => lease.write_json(out),
            None => out.extend_from_slice(b"null"),
        }),
        "persona" => string(&receipt.persona),
        "queued" => text(if receipt.queued { "true" } else { "false" }),
        "run_id" => opt_string(receipt.run_id.as_deref()),
        "status" => string(receipt.status.as_str()),
        "work_key" => string(&receipt.work_key),
    );
}

#[cfg(test)]
mod tests;
