use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::{PausedEventPolicy, RunCost};
use super::*;
use crate::budget::BudgetLimit;
use crate::clock::TimeTuple;
use crate::lease::Lease;
use crate::op::{FailKind, RepairWorkerLifecycle};
use crate::workkey::{Envelope, RawTrigger};

/// Texts serde_json escapes (quote, backslash, control characters) next
/// to ones it writes as they are (DEL, non-ASCII), and the empty text.
const TEXTS: [&str; 4] = [
    "plain",
    "",
    "quote \" backslash \\ newline \n tab \t nul \u{0} unit \u{1f} del \u{7f} é 🦀",
    "\u{8}\u{c}\r",
];

/// Amounts whose text is easy to get wrong: shortest forms, whole floats,
/// negative zero, extremes and values JSON cannot hold (written `null`).
const AMOUNTS: [f64; 7] = [
    0.002,
    3.0,
    -0.0,
    1e-300,
    1.7976931348623157e308,
    f64::NAN,
    0.1 + 0.2,
];

/// An envelope; with `raw`, its `raw` shares its metadata map, as a
/// provider event's does.
fn envelope(text: &str, raw: bool) -> Envelope {
    let metadata = Arc::new(BTreeMap::from([
        (text.to_string(), format!("v{text}")),
        ("number".to_string(), "7".to_string()),
        ("a\"".to_string(), text.to_string()),
    ]));
    Envelope {
        provider: text.to_string(),
        kind: format!("{text}kind"),
        subject_key: format!("key:{text}").into(),
        source_event_id: raw.then(|| text.to_string()),
        received_at_ms: -5,
        raw: RawTrigger {
            metadata: raw.then(|| Arc::clone(&metadata)),
        },
        metadata,
    }
}

/// [`envelope`] whose `raw` holds a map of its own, one entry longer.
fn envelope_apart(text: &str) -> Envelope {
    let mut apart = envelope(text, false);
    let mut raw = BTreeMap::clone(&apart.metadata);
    raw.insert(format!("raw{text}"), text.to_string());
    apart.raw.metadata = Some(Arc::new(raw));
    apart
}

fn lease(text: &str) -> Lease {
    Lease {
        id: format!("persona_lease_{text}").into(),
        holder: text.into(),
        work_key: format!("w{text}").into(),
        acquired_at_ms: i64::MIN,
        expires_at_ms: i64::MAX,
    }
}

fn run(text: &str) -> RunRef {
    RunRef {
        work_key: text.into(),
        run_id: format!("run-{text}").into(),
        entry_workflow: format!("{text}#run").into(),
        lease_id: format!("lease{text}").into(),
    }
}

fn metadata(text: &str) -> Value {
    json!({
        "work_key": text, text: {"nested": [null, true, 0.5, -3, u64::MAX]},
        "tokens": 120, "float": 0.1, "": {}
    })
}

fn value_event(text: &str, usd: f64, template: bool) -> ValueEvent {
    ValueEvent {
        persona_id: text.into(),
        template_ref: template.then(|| format!("t{text}").into()),
        run_id: format!("r{text}").into(),
        kind: ValueKind::RunCompleted,
        paid_cost_usd: usd,
        avoided_cost_usd: -usd,
        deterministic_steps: i64::MIN,
        llm_steps: 3,
        metadata: metadata(text).into(),
        occurred_at: TimeTuple(1_777_032_000_250),
    }
}

fn receipt(text: &str, full: bool) -> RunReceipt {
    RunReceipt {
        status: ReceiptStatus::LeaseBusy,
        persona: text.into(),
        run_id: full.then(|| format!("run{text}").into()),
        work_key: format!("k{text}").into(),
        lease: full.then(|| lease(text)),
        queued: full,
        error: full.then(|| format!("error {text}")),
        budget_receipt_id: full.then(|| format!("b{text}").into()),
        failure: full.then_some(FailKind::TimedOut),
        envelope: full.then(|| Box::new(envelope(text, true))),
    }
}

/// Events of every persona kind carrying `text`, `usd`, and optional
/// fields set when `full`.
fn events(text: &str, usd: f64, full: bool) -> Vec<PersonaEvent> {
    let arrived = Arrived {
        persona: text.to_string(),
        envelope: envelope(text, full),
    };
    let refused = |reason| TriggerRefused {
        work_key: text.to_string(),
        envelope: envelope(text, full),
        reason,
    };
    let value = value_event(text, usd, full);
    let repair = RepairWorkerStatus {
        persona_id: text.to_string(),
        template_ref: full.then(|| text.to_string()),
        repair_worker_id: format!("w{text}"),
        lifecycle: RepairWorkerLifecycle::Verifying,
        work_key: full.then(|| text.to_string()),
        lease_id: None,
        scratchpad_url: full.then(|| format!("https://{text}")),
        last_heartbeat_ms: 1,
        occurred_at_ms: 2,
    };
    let ack = RestoreAcked {
        persona_id: text.to_string(),
        template_ref: None,
        action: CheckpointAction::RestoreAcked,
        checkpoint_id: text.to_string(),
        work_key: full.then(|| text.to_string()),
        resumed_from: ResumedFrom {
            run_id: None,
            lease_id: full.then(|| text.to_string()),
            last_run_ms: full.then_some(9),
            queued_work_keys: vec![text.to_string(), String::new()],
            note: None,
        },
        occurred_at_ms: 3,
    };
    let position = QueuePosition {
        persona_id: text.to_string(),
        template_ref: full.then(|| text.to_string()),
        work_key: format!("q{text}"),
        queue_depth: 4,
        position: 2,
        queued_at_ms: -1,
        occurred_at_ms: 0,
    };
    let update = ReceiptUpdate {
        persona_id: text.into(),
        template_ref: full.then(|| format!("t{text}").into()),
        receipt: receipt(text, full),
        occurred_at_ms: 77,
    };
    vec![
        PersonaEvent::TriggerReceived(arrived.clone()),
        PersonaEvent::ScheduleFired(arrived),
        PersonaEvent::TriggerReceived(Arrived {
            persona: text.to_string(),
            envelope: envelope_apart(text),
        }),
        PersonaEvent::TriggerQueued(TriggerQueued {
            work_key: text.to_string(),
            envelope: envelope(text, full),
            cost: RunCost {
                cost_usd: usd,
                tokens: 5,
                metadata: metadata(text),
                ..RunCost::default()
            },
            reason: QueueReason::Paused,
        }),
        PersonaEvent::TriggerDeadLettered(refused(RefusalReason::Disabled)),
        PersonaEvent::TriggerDuplicate(refused(RefusalReason::AlreadyCompleted)),
        PersonaEvent::LeaseConflict(LeaseConflict {
            active_lease: lease(text),
            requested_work_key: text.to_string(),
            at_ms: 8,
        }),
        PersonaEvent::LeaseExpired(LeaseExpired {
            id: text.into(),
            work_key: format!("w{text}").into(),
            expired_at_ms: 9,
        }),
        PersonaEvent::LeaseAcquired(lease(text)),
        PersonaEvent::LeaseReleased(LeaseReleased {
            id: text.into(),
            work_key: format!("w{text}").into(),
            released_at_ms: 10,
        }),
        PersonaEvent::RunStarted(RunStarted {
            run: run(text),
            started_at_ms: 11,
        }),
        PersonaEvent::RunCompleted(RunCompleted {
            run: run(text),
            completed_at_ms: 12,
        }),
        PersonaEvent::RunFailed(RunFailed {
            run: run(text),
            failed_at_ms: 13,
            error: FailKind::SemanticError,
        }),
        PersonaEvent::ControlPaused(Paused {
            paused_at_ms: 14,
            policy: PausedEventPolicy::QueueThenDrainOnResume,
        }),
        PersonaEvent::ControlResumed(Resumed {
            resumed_at_ms: 15,
            drain: true,
        }),
        PersonaEvent::ControlDisabled(Disabled { disabled_at_ms: 16 }),
        PersonaEvent::BudgetRecorded(BudgetRecorded {
            receipt_id: text.into(),
            persona: format!("p{text}").into(),
            cost_usd: usd,
            tokens: u64::MAX,
            lease_id: full.then(|| text.into()),
        }),
        PersonaEvent::BudgetExhausted(BudgetExhausted {
            receipt_id: text.into(),
            reason: BudgetLimit::HourlyUsd,
            attempted_cost_usd: usd,
            attempted_tokens: 0,
            persona: text.into(),
        }),
        PersonaEvent::ValueRunStarted(ValueEvent {
            kind: ValueKind::RunStarted,
            ..value.clone()
        }),
        PersonaEvent::ValueDeterministicExecution(ValueEvent {
            kind: ValueKind::DeterministicExecution,
            metadata: Value::Null.into(),
            ..value.clone()
        }),
        PersonaEvent::ValueFrontierEscalation(ValueEvent {
            kind: ValueKind::FrontierEscalation,
            metadata: json!(text).into(),
            ..value.clone()
        }),
        PersonaEvent::ValueRunCompleted(value),
        PersonaEvent::RepairWorkerStatus(repair.clone()),
        PersonaEvent::CheckpointRestoreAcked(ack.clone()),
        PersonaEvent::SupervisionRepairWorkerStatus(Supervised {
            update: repair,
            update_kind: SupervisionKind::RepairWorkerStatus,
        }),
        PersonaEvent::SupervisionCheckpoint(Supervised {
            update: ack,
            update_kind: SupervisionKind::Checkpoint,
        }),
        PersonaEvent::SupervisionQueuePosition(Supervised {
            update: position,
            update_kind: SupervisionKind::QueuePosition,
        }),
        PersonaEvent::SupervisionReceipt(Supervised {
            update,
            update_kind: SupervisionKind::Receipt,
        }),
    ]
}

fn assert_both_paths_agree(text: &str, usd: f64, full: bool) {
    let case = format!("{text:?}, {usd}, {full}");
    assert_written_in_turn_as_serde_writes(&events(text, usd, full), &case);
}

#[test]
fn every_kind_is_written_as_serde_writes_it() {
    let kinds: BTreeSet<&str> = events("x", 1.0, true).iter().map(|e| e.kind()).collect();
    let all: BTreeSet<&str> = PersonaEvent::KINDS.iter().copied().collect();
    assert_eq!(kinds, all, "the samples name every kind");
    for text in TEXTS {
        for usd in AMOUNTS {
            assert_both_paths_agree(text, usd, true);
            assert_both_paths_agree(text, usd, false);
        }
    }
}

proptest! {
    #[test]
    fn any_text_and_amount_is_written_as_serde_writes_it(
        text in any::<String>(),
        usd in any::<f64>(),
        full in any::<bool>(),
    ) {
        assert_both_paths_agree(&text, usd, full);
    }
}

/// The payloads of `events`, written one after another as an operation
/// writes them, each compared with the serde path.
fn assert_written_in_turn_as_serde_writes(events: &[PersonaEvent], case: &str) {
    for (index, event) in events.iter().enumerate() {
        assert_eq!(
            event.payload().json(),
            event.payload_through_serde().json(),
            "event {index}, {}, with {case}",
            event.kind()
        );
    }
}

/// Value events and leases written in turn: the text kept from one is
/// reused for the next only when every field it holds is the same. Each
/// event differs from the one before in one field (the same text in a
/// new allocation counts as the same), so a check that missed a field
/// would write the previous event's text.
#[test]
fn texts_kept_between_events_follow_every_field() {
    let base = value_event("a", 0.5, true);
    let variants: Vec<ValueEvent> = vec![
        base.clone(),
        ValueEvent {
            kind: ValueKind::RunStarted,
            paid_cost_usd: 0.0,
            ..base.clone()
        },
        base.clone(),
        ValueEvent {
            persona_id: "b".into(),
            ..base.clone()
        },
        ValueEvent {
            persona_id: "a".into(),
            ..base.clone()
        },
        ValueEvent {
            run_id: "r\"other".into(),
            ..base.clone()
        },
        ValueEvent {
            template_ref: None,
            ..base.clone()
        },
        ValueEvent {
            template_ref: Some("ta".into()),
            ..base.clone()
        },
        ValueEvent {
            occurred_at: TimeTuple(base.occurred_at.ms() + 1),
            ..base.clone()
        },
        ValueEvent {
            metadata: json!({"work_key": "a"}).into(),
            ..base.clone()
        },
        // The metadata of the one before, longer by a key.
        ValueEvent {
            metadata: json!({"work_key": "a", "z": 1}).into(),
            ..base.clone()
        },
        ValueEvent {
            metadata: metadata("a").into(),
            ..base.clone()
        },
        base.clone(),
    ];
    let events: Vec<PersonaEvent> = variants
        .into_iter()
        .map(PersonaEvent::ValueRunCompleted)
        .collect();
    assert_written_in_turn_as_serde_writes(&events, "one field changed");

    let lease = lease("a");
    let leases = [
        lease.clone(),
        lease.clone(),
        Lease {
            id: "persona_lease_b".into(),
            ..lease.clone()
        },
        Lease {
            holder: "b".into(),
            ..lease.clone()
        },
        Lease {
            work_key: "wb\n".into(),
            ..lease.clone()
        },
        Lease {
            acquired_at_ms: 0,
            ..lease.clone()
        },
        Lease {
            expires_at_ms: 0,
            ..lease.clone()
        },
        lease,
    ];
    let events: Vec<PersonaEvent> = leases
        .into_iter()
        .map(PersonaEvent::LeaseAcquired)
        .collect();
    assert_written_in_turn_as_serde_writes(&events, "one field changed");
}
