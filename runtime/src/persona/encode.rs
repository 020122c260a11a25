//! The canonical JSON of the payloads every trigger logs, written by hand
//! (`json_out.rs`) rather than through serde and `canonical.rs`: the keys
//! of each object listed in byte order, flattened fields in place. The
//! other payloads take the serde path. The tests below hold both paths to
//! the same bytes for every kind.

use super::events::*;
use crate::event::{serde_payloads, EncodePayload};
use crate::json_out::Object;
use crate::log::Payload;

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
    fn encode_payload(&self) -> Payload {
        Payload::written(|out| {
            let mut object = Object::open(out);
            self.envelope.write_json(object.key("envelope"));
            object.str("persona", &self.persona).close();
        })
    }
}

impl EncodePayload for TriggerRefused {
    fn encode_payload(&self) -> Payload {
        Payload::written(|out| {
            let mut object = Object::open(out);
            self.envelope.write_json(object.key("envelope"));
            object
                .scalar("reason", &self.reason)
                .str("work_key", &self.work_key)
                .close();
        })
    }
}

impl EncodePayload for crate::lease::Lease {
    fn encode_payload(&self) -> Payload {
        Payload::written(|out| self.write_json(out))
    }
}

impl EncodePayload for LeaseExpired {
    fn encode_payload(&self) -> Payload {
        Payload::written(|out| {
            Object::open(out)
                .int("expired_at_ms", self.expired_at_ms)
                .str("id", &self.id)
                .str("work_key", &self.work_key)
                .close();
        })
    }
}

impl EncodePayload for LeaseReleased {
    fn encode_payload(&self) -> Payload {
        Payload::written(|out| {
            Object::open(out)
                .str("id", &self.id)
                .int("released_at_ms", self.released_at_ms)
                .str("work_key", &self.work_key)
                .close();
        })
    }
}

impl EncodePayload for RunStarted {
    fn encode_payload(&self) -> Payload {
        let run = &self.run;
        Payload::written(|out| {
            Object::open(out)
                .str("entry_workflow", &run.entry_workflow)
                .str("lease_id", &run.lease_id)
                .str("run_id", &run.run_id)
                .int("started_at_ms", self.started_at_ms)
                .str("work_key", &run.work_key)
                .close();
        })
    }
}

impl EncodePayload for RunCompleted {
    fn encode_payload(&self) -> Payload {
        let run = &self.run;
        Payload::written(|out| {
            Object::open(out)
                .int("completed_at_ms", self.completed_at_ms)
                .str("entry_workflow", &run.entry_workflow)
                .str("lease_id", &run.lease_id)
                .str("run_id", &run.run_id)
                .str("work_key", &run.work_key)
                .close();
        })
    }
}

impl EncodePayload for BudgetRecorded {
    fn encode_payload(&self) -> Payload {
        Payload::written(|out| {
            Object::open(out)
                .scalar("cost_usd", &self.cost_usd)
                .opt_str("lease_id", self.lease_id.as_deref())
                .str("persona", &self.persona)
                .str("receipt_id", &self.receipt_id)
                .int("tokens", self.tokens)
                .close();
        })
    }
}

impl EncodePayload for ValueEvent {
    fn encode_payload(&self) -> Payload {
        Payload::written(|out| {
            let mut object = Object::open(out);
            object
                .scalar("avoided_cost_usd", &self.avoided_cost_usd)
                .int("deterministic_steps", self.deterministic_steps)
                .scalar("kind", &self.kind)
                .int("llm_steps", self.llm_steps)
                .value("metadata", &self.metadata);
            self.occurred_at.write_json(object.key("occurred_at"));
            object
                .scalar("paid_cost_usd", &self.paid_cost_usd)
                .str("persona_id", &self.persona_id)
                .str("run_id", &self.run_id)
                .opt_str("template_ref", self.template_ref.as_deref())
                .close();
        })
    }
}

impl EncodePayload for Supervised<QueuePosition> {
    fn encode_payload(&self) -> Payload {
        let update = &self.update;
        Payload::written(|out| {
            Object::open(out)
                .int("occurred_at_ms", update.occurred_at_ms)
                .str("persona_id", &update.persona_id)
                .int("position", update.position)
                .int("queue_depth", update.queue_depth)
                .int("queued_at_ms", update.queued_at_ms)
                .opt_str("template_ref", update.template_ref.as_deref())
                .scalar("update_kind", &self.update_kind)
                .str("work_key", &update.work_key)
                .close();
        })
    }
}

impl EncodePayload for Supervised<ReceiptUpdate> {
    fn encode_payload(&self) -> Payload {
        let update = &self.update;
        Payload::written(|out| {
            let mut object = Object::open(out);
            object
                .int("occurred_at_ms", update.occurred_at_ms)
                .str("persona_id", &update.persona_id);
            write_receipt(object.key("receipt"), &update.receipt);
            object
                .opt_str("template_ref", update.template_ref.as_deref())
                .scalar("update_kind", &self.update_kind)
                .close();
        })
    }
}

/// A run receipt as logged (without the supervisor's `failure` and
/// `envelope`).
fn write_receipt(out: &mut Vec<u8>, receipt: &RunReceipt) {
    let mut object = Object::open(out);
    object
        .opt_str("budget_receipt_id", receipt.budget_receipt_id.as_deref())
        .opt_str("error", receipt.error.as_deref());
    match &receipt.lease {
        Some(lease) => lease.write_json(object.key("lease")),
        None => object.key("lease").extend_from_slice(b"null"),
    }
    object
        .str("persona", &receipt.persona)
        .scalar("queued", &receipt.queued)
        .opt_str("run_id", receipt.run_id.as_deref())
        .scalar("status", &receipt.status)
        .str("work_key", &receipt.work_key)
        .close();
}

#[cfg(test)]
mod tests;
