//! The canonical JSON of the payloads every trigger logs, written by hand
//! (`json_out.rs`) rather than through serde and `canonical.rs`: the keys
//! of each object listed in byte order, flattened fields in place. The
//! other payloads take the serde path. The tests below hold both paths to
//! the same bytes for every kind.

use std::cell::RefCell;
use std::sync::Arc;

use super::events::*;
use crate::event::{serde_payloads, EncodePayload};
use crate::json_out::{self as json, memoized, object, Memo};

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
            "expired_at_ms" => ms(self.expired_at_ms),
            "id" => string(&self.id),
            "work_key" => string(&self.work_key),
        )
    }
}

impl EncodePayload for LeaseReleased {
    fn write_payload(&self, out: &mut Vec<u8>) {
        object!(out;
            "id" => string(&self.id),
            "released_at_ms" => ms(self.released_at_ms),
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
            "started_at_ms" => ms(self.started_at_ms),
            "work_key" => string(&run.work_key),
        )
    }
}

impl EncodePayload for RunCompleted {
    fn write_payload(&self, out: &mut Vec<u8>) {
        let run = &self.run;
        object!(out;
            "completed_at_ms" => ms(self.completed_at_ms),
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

// The value events of one run differ only in their kind and amounts: the
// entries they share, `metadata` and `occurred_at`, then `persona_id`
// through `template_ref`, are written for the first and copied for the
// rest. Written entry by entry rather than with `object!`, as the shared
// entries are copied two at a time; the keys are those of `object!`, in
// the same order.
impl EncodePayload for ValueEvent {
    fn write_payload(&self, out: &mut Vec<u8>) {
        const _: () = assert!(json::keys_in_order(&[
            "avoided_cost_usd",
            "deterministic_steps",
            "kind",
            "llm_steps",
            "metadata",
            "occurred_at",
            "paid_cost_usd",
            "persona_id",
            "run_id",
            "template_ref",
        ]));
        out.extend_from_slice(b"{\"avoided_cost_usd\":");
        json::scalar(out, &self.avoided_cost_usd);
        out.extend_from_slice(b",\"deterministic_steps\":");
        json::int(out, self.deterministic_steps);
        out.extend_from_slice(b",\"kind\":");
        json::string(out, self.kind.as_str());
        out.extend_from_slice(b",\"llm_steps\":");
        json::int(out, self.llm_steps);
        out.extend_from_slice(b",\"metadata\":");
        self.write_metadata_and_time(out);
        out.extend_from_slice(b",\"paid_cost_usd\":");
        json::scalar(out, &self.paid_cost_usd);
        self.write_names(out);
        out.push(b'}');
    }
}

impl ValueEvent {
    /// The `metadata` value, then the `occurred_at` entry.
    fn write_metadata_and_time(&self, out: &mut Vec<u8>) {
        thread_local! {
            // Keyed by the time, and by the metadata's length: the kept
            // text starts with the metadata, compared in full.
            static KEPT: RefCell<Memo<(i64, usize)>> = const { RefCell::new(Memo::new()) };
        }
        let metadata = self.metadata.json().as_bytes();
        let at_ms = self.occurred_at.ms();
        memoized(
            &KEPT,
            out,
            |&(kept_ms, len), kept| kept_ms == at_ms && kept.get(..len) == Some(metadata),
            || (at_ms, metadata.len()),
            |out| {
                out.extend_from_slice(metadata);
                out.extend_from_slice(b",\"occurred_at\":");
                self.occurred_at.write_json(out);
            },
        );
    }

    /// The `persona_id`, `run_id` and `template_ref` entries.
    fn write_names(&self, out: &mut Vec<u8>) {
        type Names = (Arc<str>, Arc<str>, Option<Arc<str>>);
        thread_local! {
            static KEPT: RefCell<Memo<Names>> = const { RefCell::new(Memo::new()) };
        }
        memoized(
            &KEPT,
            out,
            |(persona_id, run_id, template_ref), _| {
                *persona_id == self.persona_id
                    && *run_id == self.run_id
                    && *template_ref == self.template_ref
            },
            || {
                let template_ref = self.template_ref.clone();
                (self.persona_id.clone(), self.run_id.clone(), template_ref)
            },
            |out| {
                out.extend_from_slice(b",\"persona_id\":");
                json::string(out, &self.persona_id);
                out.extend_from_slice(b",\"run_id\":");
                json::string(out, &self.run_id);
                out.extend_from_slice(b",\"template_ref\":");
                json::opt_string(out, self.template_ref.as_deref());
            },
        );
    }
}

impl EncodePayload for Supervised<QueuePosition> {
    fn write_payload(&self, out: &mut Vec<u8>) {
        let update = &self.update;
        object!(out;
            "occurred_at_ms" => ms(update.occurred_at_ms),
            "persona_id" => string(&update.persona_id),
            "position" => int(update.position),
            "queue_depth" => int(update.queue_depth),
            "queued_at_ms" => ms(update.queued_at_ms),
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
            "occurred_at_ms" => ms(update.occurred_at_ms),
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
