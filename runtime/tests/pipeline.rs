//! Pipeline lifecycle: sequence numbers, envelopes, acknowledgement,
//! finalisation and the unsettled snapshot, driven the way the engine drives
//! them (operation, append, apply).

use rehearse_runtime::log::{EventLog, MemoryLog};
use rehearse_runtime::op::{AckHandoffOp, AuditOp, FinalizeOp, HandoffOp};
use rehearse_runtime::pipeline::{
    lifecycle_topic, payload_summary, Pipeline, PipelineError, PipelineOutcome, QueuedTrigger,
    LIFECYCLE_AUDIT_TOPIC,
};
use serde_json::{json, Value};

/// A pipeline and the log it writes to, applying every appended event as
/// the engine does.
struct Harness {
    log: MemoryLog,
    pipeline: Pipeline,
}

impl Harness {
    fn new() -> Self {
        Self {
            log: MemoryLog::new(),
            pipeline: Pipeline::new(Some("run_1".to_string())),
        }
    }

    fn commit(
        &mut self,
        outcome: Result<PipelineOutcome, PipelineError>,
    ) -> Result<PipelineOutcome, PipelineError> {
        let outcome = outcome?;
        let batch = outcome
            .events
            .iter()
            .map(|event| (lifecycle_topic(), event.clone()))
            .collect();
        for stored in self.log.append_batch(batch).unwrap() {
            self.pipeline.apply(&stored);
        }
        Ok(outcome)
    }

    fn audit(&mut self, kind: &str, payload: Value, now_ms: i64) -> PipelineOutcome {
        let op = AuditOp {
            kind: kind.into(),
            payload,
        };
        let outcome = self.pipeline.audit(&op, now_ms);
        self.commit(outcome).unwrap()
    }

    fn handoff(&mut self, to: &str, payload: Value, now_ms: i64) -> PipelineOutcome {
        let op = HandoffOp {
            to: to.into(),
            payload,
        };
        let outcome = self.pipeline.handoff(&op, now_ms);
        self.commit(outcome).unwrap()
    }

    fn ack(
        &mut self,
        envelope: &str,
        decision: &str,
        now_ms: i64,
    ) -> Result<PipelineOutcome, PipelineError> {
        let op = AckHandoffOp {
            envelope: envelope.into(),
            decision: decision.into(),
        };
        let outcome = self.pipeline.ack_handoff(&op, now_ms);
        self.commit(outcome)
    }

    fn finalize(
        &mut self,
        disposition: &str,
        now_ms: i64,
    ) -> Result<PipelineOutcome, PipelineError> {
        let op = FinalizeOp {
            disposition: disposition.into(),
        };
        let outcome = self.pipeline.finalize(&op, now_ms);
        self.commit(outcome)
    }
}

#[test]
fn audit_entries_are_numbered_per_run_and_written_to_the_audit_topic() {
    let mut h = Harness::new();
    let first = h.audit("drain_started", json!({"n": 1}), 1_000);
    let second = h.audit("drain_step", json!(null), 2_000);
    assert_eq!(first.receipt, "recorded");
    assert_eq!(
        first.result,
        Some(
            json!({"seq": 1, "kind": "drain_started", "payload": {"n": 1}, "pipeline_id": "run_1"})
        )
    );
    assert_eq!(second.result.unwrap()["seq"], 2);

    let events = h.log.all();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].topic.as_str(), LIFECYCLE_AUDIT_TOPIC);
    assert_eq!(events[0].kind, "lifecycle_audit");
    assert_eq!(events[0].header("kind"), Some("drain_started"));
    assert_eq!(events[0].header("seq"), Some("1"));
    assert_eq!(events[0].header("pipeline_id"), Some("run_1"));
    assert_eq!(events[0].occurred_at_ms, 1_000);
    assert_eq!(events[1].header("seq"), Some("2"));
    assert_eq!(h.pipeline.seq(), 2);

    // A new run counts from 1 again.
    let fresh = Pipeline::new(None);
    let entry = fresh
        .audit(
            &AuditOp {
                kind: "x".into(),
                payload: json!(1),
            },
            0,
        )
        .unwrap();
    assert_eq!(entry.result.unwrap()["seq"], 1);
    assert!(!entry.events[0].headers.contains_key("pipeline_id"));
}

#[test]
fn envelope_ids_share_the_sequence_with_audit_entries() {
    let mut h = Harness::new();
    h.audit("a", json!({}), 0);
    let handoff = h.handoff("review", json!({"pr": 462}), 5_000);
    assert_eq!(handoff.receipt, "envelope_2");
    assert_eq!(
        handoff.result,
        Some(json!({
            "envelope_id": "envelope_2",
            "seq": 2,
            "from": "run_1",
            "to": "review",
            "payload_summary": "object(keys=pr)",
            "payload": {"pr": 462},
            "queued_at_ms": 5_000,
            "age_ms": 0,
        }))
    );
    assert_eq!(
        h.handoff("deploy", json!(null), 6_000).receipt,
        "envelope_3"
    );
    assert_eq!(h.audit("b", json!({}), 7_000).result.unwrap()["seq"], 4);

    let stored = &h.log.all()[1];
    assert_eq!(stored.kind, "partial_handoff_recorded");
    assert_eq!(stored.header("envelope_id"), Some("envelope_2"));
    // A handoff takes a sequence number but is not an audit entry.
    assert_eq!(h.pipeline.audit_entries().len(), 2);
}

#[test]
fn payload_summaries_follow_the_seed() {
    let long = "x".repeat(81);
    let exact = "y".repeat(80);
    let cases = [
        (json!(null), "nil".to_string()),
        (json!(true), "true".to_string()),
        (json!(42), "42".to_string()),
        (json!(-1.5), "-1.5".to_string()),
        (json!("short"), "short".to_string()),
        (json!(exact.clone()), exact.clone()),
        (json!(long), format!("{}...", "x".repeat(80))),
        (json!("é".repeat(81)), format!("{}...", "é".repeat(80))),
        (json!([1, 2, 3]), "list(len=3)".to_string()),
        (json!([]), "list(len=0)".to_string()),
        (json!({}), "object(keys=)".to_string()),
        (json!({"b": 1, "a": 2}), "object(keys=a,b)".to_string()),
        (
            json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}),
            "object(keys=a,b,c,d,e,f)".to_string(),
        ),
        (
            json!({"g": 0, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}),
            "object(keys=a,b,c,d,e,f,...)".to_string(),
        ),
    ];
    for (payload, expected) in cases {
        assert_eq!(payload_summary(&payload), expected, "{payload}");
    }
}

#[test]
fn acknowledging_settles_the_handoff_and_audits_the_decision() {
    let mut h = Harness::new();
    h.handoff("review", json!("please look"), 1_000);
    h.handoff("deploy", json!([1]), 2_000);
    let queued = [QueuedTrigger {
        persona: "merge_captain".into(),
        work_key: "github:burin-labs/harn:pr:462".into(),
        queued_at_ms: 500,
    }];
    let before = h.pipeline.unsettled(&queued, 3_000);
    assert_eq!(before.counts()["partial"], 2);
    assert_eq!(before.partial_handoffs[0].age_ms, 2_000);

    let ack = h.ack("envelope_1", "accepted", 4_000).unwrap();
    assert_eq!(ack.receipt, "acked");
    let result = ack.result.unwrap();
    assert_eq!(result["envelope"]["envelope_id"], "envelope_1");
    assert_eq!(
        result["entry"],
        json!({
            "seq": 3,
            "kind": "handoff_acknowledged",
            "payload": {"envelope_id": "envelope_1", "decision": "accepted"},
            "pipeline_id": "run_1",
        })
    );
    let stored = h.log.all().last().unwrap();
    assert_eq!(stored.kind, "handoff_acknowledged");
    assert_eq!(stored.header("kind"), Some("handoff_acknowledged"));
    assert_eq!(stored.header("seq"), Some("3"));

    let after = h.pipeline.unsettled(&queued, 5_000);
    let counts: Vec<(String, u64)> = after.counts().into_iter().collect();
    assert_eq!(
        counts,
        [
            ("in_flight".to_string(), 0),
            ("partial".to_string(), 1),
            ("pool_pending".to_string(), 0),
            ("queued".to_string(), 1),
            ("suspended".to_string(), 0),
        ]
    );
    assert_eq!(after.partial_handoffs[0].envelope_id, "envelope_2");
    assert_eq!(
        after.summary(),
        "unsettled work: 0 suspended subagents, 1 queued triggers, 1 partial handoffs, \
         0 in-flight llm calls, 0 pool pending tasks"
    );
    assert_eq!(
        serde_json::to_value(&after.queued_triggers).unwrap(),
        json!([{
            "id": "trigger://merge_captain/github:burin-labs/harn:pr:462",
            "persona": "merge_captain",
            "work_key": "github:burin-labs/harn:pr:462",
            "queued_at_ms": 500,
            "age_ms": 4_500,
        }])
    );

    h.ack("envelope_2", "rejected", 6_000).unwrap();
    let settled = h.pipeline.unsettled(&[], 7_000);
    assert!(settled.is_empty());
    assert_eq!(settled.summary(), "no unsettled work");
}

#[test]
fn unsettled_snapshot_serialises_every_bucket_and_lists_triggers_by_queue_time() {
    let h = Harness::new();
    let queued = [
        QueuedTrigger {
            persona: "b".into(),
            work_key: "k2".into(),
            queued_at_ms: 10,
        },
        QueuedTrigger {
            persona: "a".into(),
            work_key: "k1".into(),
            queued_at_ms: 20,
        },
        QueuedTrigger {
            persona: "a".into(),
            work_key: "k0".into(),
            queued_at_ms: 10,
        },
    ];
    let snapshot = h.pipeline.unsettled(&queued, 5);
    let ids: Vec<&str> = snapshot
        .queued_triggers
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(ids, ["trigger://a/k0", "trigger://b/k2", "trigger://a/k1"]);
    // A trigger queued after `now` is not given a negative age.
    assert_eq!(snapshot.queued_triggers[0].age_ms, 0);
    let value = serde_json::to_value(&snapshot).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "in_flight_llm_calls",
            "partial_handoffs",
            "pool_pending_tasks",
            "queued_triggers",
            "suspended_subagents"
        ]
    );
    let back: rehearse_runtime::UnsettledSnapshot = serde_json::from_value(value).unwrap();
    assert_eq!(back, snapshot);
}

#[test]
fn unknown_and_already_acknowledged_envelopes_are_errors() {
    let mut h = Harness::new();
    h.handoff("review", json!({}), 0);
    let unknown = h.ack("envelope_9", "accepted", 1).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "unknown partial handoff envelope `envelope_9`"
    );
    h.ack("envelope_1", "accepted", 2).unwrap();
    let twice = h.ack("envelope_1", "rejected", 3).unwrap_err();
    assert_eq!(
        twice.to_string(),
        "partial handoff envelope `envelope_1` was already acknowledged with decision `accepted`"
    );
    // Refused operations write nothing and use no sequence number.
    assert_eq!(h.log.len(), 2);
    assert_eq!(h.pipeline.seq(), 2);
}

#[test]
fn garbage_operations_are_refused_with_messages() {
    let mut h = Harness::new();
    let p = &h.pipeline;
    let empty_kind = p.audit(
        &AuditOp {
            kind: String::new(),
            payload: json!(1),
        },
        0,
    );
    assert_eq!(
        empty_kind.unwrap_err().to_string(),
        "audit `kind` is empty, expected a non-empty name"
    );
    let empty_to = p.handoff(
        &HandoffOp {
            to: String::new(),
            payload: json!(1),
        },
        0,
    );
    assert_eq!(
        empty_to.unwrap_err().to_string(),
        "handoff `to` is empty, expected a non-empty name"
    );
    let empty_disposition = p.finalize(
        &FinalizeOp {
            disposition: json!(""),
        },
        0,
    );
    assert_eq!(
        empty_disposition.unwrap_err().to_string(),
        "finalize `disposition` is empty, expected a non-empty name"
    );
    assert_eq!(
        h.ack("", "x", 0).unwrap_err().to_string(),
        "unknown partial handoff envelope ``"
    );
    h.handoff("review", json!(1), 0);
    assert_eq!(
        h.ack("envelope_1", "", 0).unwrap_err().to_string(),
        "ack_handoff `decision` is empty, expected a non-empty name"
    );
    assert!(h.log.len() == 1);
}

#[test]
fn a_pipeline_is_finalized_once() {
    let mut h = Harness::new();
    h.audit("a", json!({}), 0);
    let done = h.finalize("completed", 1_000).unwrap();
    assert_eq!(done.receipt, "finalized");
    assert_eq!(
        done.result,
        Some(json!({
            "status": "finalized",
            "disposition": "completed",
            "entry": {
                "seq": 2,
                "kind": "pipeline_finalized",
                "payload": {"disposition": "completed"},
                "pipeline_id": "run_1",
            },
        }))
    );
    assert_eq!(h.pipeline.disposition(), Some(&json!("completed")));
    assert_eq!(h.log.all()[1].kind, "pipeline_finalized");
    let again = h.finalize("abandoned", 2_000).unwrap_err();
    assert_eq!(
        again.to_string(),
        "pipeline is already finalized with disposition `completed`"
    );
    assert_eq!(h.pipeline.disposition(), Some(&json!("completed")));
    // Audits are still accepted after finalisation, as in the modelled pipeline (docs/SCENARIOS.md, "Pipeline lifecycle").
    assert_eq!(h.audit("late", json!({}), 3_000).receipt, "recorded");
}

#[test]
fn a_user_audit_cannot_settle_a_handoff() {
    let mut h = Harness::new();
    h.handoff("review", json!({}), 0);
    h.audit(
        "handoff_acknowledged",
        json!({"envelope_id": "envelope_1", "decision": "forged"}),
        1,
    );
    h.audit("pipeline_finalized", json!({"disposition": "forged"}), 2);
    assert_eq!(h.pipeline.partial_handoffs().len(), 1);
    assert_eq!(h.pipeline.disposition(), None);
}

#[test]
fn rebuild_from_the_log_equals_the_incremental_state() {
    let mut h = Harness::new();
    // Events of other topics are interleaved and must be ignored.
    let other = rehearse_runtime::Topic::new("persona.runtime.events").unwrap();
    for i in 0..40_i64 {
        let now_ms = i * 1_000;
        match i % 5 {
            0 => {
                h.audit(&format!("step_{i}"), json!({"i": i}), now_ms);
            }
            1 | 2 => {
                h.handoff(&format!("target_{i}"), json!([i]), now_ms);
            }
            3 => {
                let first = h.pipeline.partial_handoffs()[0].envelope_id.clone();
                h.ack(&first, "accepted", now_ms).unwrap();
            }
            _ => {
                h.log
                    .append_batch(vec![(
                        other.clone(),
                        rehearse_runtime::LogEvent {
                            kind: "persona.run.started".into(),
                            payload: json!({}).into(),
                            headers: Default::default(),
                            occurred_at_ms: now_ms,
                        },
                    )])
                    .unwrap();
            }
        }
    }
    h.finalize("partial", 50_000).unwrap();
    let rebuilt = Pipeline::rebuild(Some("run_1".to_string()), h.log.all());
    assert_eq!(rebuilt, h.pipeline);
    assert_eq!(rebuilt.snapshot(), h.pipeline.snapshot());
    assert_eq!(h.pipeline.seq(), 33);
    assert_eq!(h.pipeline.partial_handoffs().len(), 8);
    let snapshot = h.pipeline.snapshot();
    assert_eq!(snapshot["disposition"], "partial");
    assert_eq!(snapshot["acknowledged"]["envelope_2"], "accepted");
    assert_eq!(snapshot["audit"].as_array().unwrap().len(), 17);
}
