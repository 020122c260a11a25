//! The supervisor's figures: deferral under rate and concurrency limits,
//! pumps, retries, deadlines, and capture bundles that replay.

use rehearse_runtime::capture::Session;
use rehearse_runtime::config::{Constraints, PersonaSpec, RuntimeConfig};
use rehearse_runtime::replay::{parse_bundle, replay, ReplayError, ReplayOptions};
use rehearse_runtime::supervisor::{DecisionKind, Handled};
use rehearse_runtime::{parse_rfc3339_ms, MemoryLog, Millis, Op};

fn at(offset: &str) -> i64 {
    parse_rfc3339_ms("2026-04-24T12:00:00Z").unwrap() + Millis::parse(offset).unwrap().as_i64()
}

fn session(constraints: &str) -> Session {
    let supervisor: Constraints = serde_yaml::from_str(constraints).unwrap();
    let spec = PersonaSpec {
        entry_workflow: "wf".into(),
        ..PersonaSpec::default()
    };
    let config = RuntimeConfig {
        start_ms: at("0s"),
        seed: 1,
        personas: [("a".to_string(), spec.clone()), ("b".to_string(), spec)]
            .into_iter()
            .collect(),
        supervisor,
    };
    Session::new("supervisor-test", &config, Box::new(MemoryLog::new())).unwrap()
}

fn trigger(persona: &str, key: u32, extra: &str) -> Op {
    serde_yaml::from_str(&format!("trigger: {{persona: {persona}, provider: webhook, kind: k, metadata: {{event_id: e{key}}}{extra}}}")).unwrap()
}

fn pump() -> Op {
    serde_yaml::from_str("pump: {}").unwrap()
}

struct Driver {
    session: Session,
    step: usize,
}

impl Driver {
    fn new(constraints: &str) -> Self {
        Self {
            session: session(constraints),
            step: 0,
        }
    }

    fn send(&mut self, offset: &str, op: Op) -> Handled {
        self.step += 1;
        self.session
            .handle(&format!("step-{}", self.step), at(offset), &op)
    }
}

fn summary(
    h: &Handled,
) -> (
    DecisionKind,
    Option<i64>,
    Option<u64>,
    Option<String>,
    u64,
    String,
) {
    let d = &h.decision;
    let receipt = h
        .result
        .as_ref()
        .map(|r| r.receipt.clone())
        .unwrap_or_else(|e| format!("error: {e}"));
    (
        d.decision,
        d.schedule_at_ms,
        d.episode_id,
        d.termination.map(String::from),
        d.retry_count,
        receipt,
    )
}

#[test]
fn a_rate_limited_event_waits_for_the_oldest_invocation_to_leave_the_window() {
    let mut d = Driver::new("{max_per_window: 2, rate_window: 10s}");
    assert_eq!(
        d.send("0s", trigger("a", 1, "")).decision.decision,
        DecisionKind::Invoke
    );
    assert_eq!(
        d.send("3s", trigger("b", 2, "")).decision.decision,
        DecisionKind::Invoke
    );
    // window - (now - oldest) = 10s - (4s - 0s) = 6s, so due at 10s.
    let deferred = d.send("4s", trigger("a", 3, ""));
    assert_eq!(
        summary(&deferred),
        (
            DecisionKind::Defer,
            Some(at("10s")),
            Some(2),
            None,
            0,
            "deferred".into()
        )
    );
    // Too early: nothing is due. An idle pump takes a fresh episode id.
    let idle = d.send("9s", pump());
    assert_eq!(
        summary(&idle),
        (DecisionKind::Defer, None, Some(3), None, 0, "idle".into())
    );
    let ran = d.send("10s", pump());
    assert_eq!(
        summary(&ran),
        (
            DecisionKind::Invoke,
            None,
            Some(2),
            Some("completed".into()),
            0,
            "completed".into()
        )
    );
    assert_eq!(
        ran.decision.event_id, "step-5",
        "a pump logs under its own event id"
    );
}

#[test]
fn pumps_take_the_earliest_due_then_the_lowest_episode() {
    let mut d = Driver::new("{max_in_flight: 1}");
    d.send("0s", trigger("a", 1, ", duration: 10s"));
    let first = d.send("1s", trigger("b", 2, ""));
    let second = d.send("1s", trigger("b", 3, ""));
    assert_eq!(
        (first.decision.episode_id, second.decision.schedule_at_ms),
        (Some(1), Some(at("1s")))
    );
    // Still saturated at 5s: the pump re-defers episode 1 to now.
    let again = d.send("5s", pump());
    assert_eq!(
        summary(&again),
        (
            DecisionKind::Defer,
            Some(at("5s")),
            Some(1),
            None,
            0,
            "deferred".into()
        )
    );
    // Episode 2 (due 1s) now precedes episode 1 (due 5s).
    assert_eq!(d.send("10s", pump()).decision.episode_id, Some(2));
    assert_eq!(d.send("10s", pump()).decision.episode_id, Some(1));
    assert_eq!(d.send("10s", pump()).result.unwrap().receipt, "idle");
}

#[test]
fn retries_walk_the_attempts_and_stop_at_semantic_errors() {
    let mut d = Driver::new("{max_retries: 3}");
    let walked = d.send(
        "0s",
        trigger(
            "a",
            1,
            ", outcome: {attempts: [network_timeout, adapter_unavailable]}",
        ),
    );
    assert_eq!(
        summary(&walked),
        (
            DecisionKind::Invoke,
            None,
            Some(0),
            Some("completed".into()),
            2,
            "completed".into()
        )
    );
    let semantic = d.send(
        "1s",
        trigger(
            "a",
            2,
            ", outcome: {attempts: [runtime_error, semantic_error, network_timeout]}",
        ),
    );
    assert_eq!(
        summary(&semantic).3.as_deref(),
        Some("failed:semantic_error")
    );
    assert_eq!(semantic.decision.retry_count, 1);
    let exhausted = d.send("2s", trigger("a", 3, ", outcome: {fail: network_timeout}"));
    assert_eq!(
        (
            exhausted.decision.termination.map(String::from).as_deref(),
            exhausted.decision.retry_count
        ),
        (Some("failed:network_timeout"), 3)
    );
    let kinds: Vec<_> = d.session.runtime().log().all()[exhausted.events.clone()]
        .iter()
        .filter(|e| e.kind == "persona.run.failed")
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(kinds.len(), 4, "one failed run per attempt");
}

#[test]
fn an_attempt_longer_than_the_deadline_times_out() {
    let mut d = Driver::new("{deadline: 30s, max_retries: 1}");
    let slow = d.send("0s", trigger("a", 1, ", duration: 31s"));
    assert_eq!(
        (
            slow.decision.termination.map(String::from).as_deref(),
            slow.decision.retry_count,
            slow.decision.deadline_ms
        ),
        (Some("timed_out"), 1, Some(30_000))
    );
    let exact = d.send("1m", trigger("a", 2, ", duration: 30s"));
    assert_eq!(
        exact.decision.termination.map(String::from).as_deref(),
        Some("completed")
    );
}

#[test]
fn max_in_flight_binds_through_a_crashed_run_until_its_lease_expires() {
    let mut d = Driver::new("{max_in_flight: 1}");
    let crash = d.send("0s", trigger("a", 1, ", outcome: crash"));
    assert_eq!(summary(&crash).3.as_deref(), Some("aborted"));
    // Another persona's work waits: the crashed episode is still in flight.
    assert_eq!(
        d.send("4m", trigger("b", 2, "")).decision.decision,
        DecisionKind::Defer
    );
    assert_eq!(
        d.send("4m59s", pump()).decision.decision,
        DecisionKind::Defer
    );
    let after = d.send("5m", pump());
    assert_eq!(
        summary(&after),
        (
            DecisionKind::Invoke,
            None,
            Some(1),
            Some("completed".into()),
            0,
            "completed".into()
        )
    );
    let left: Vec<_> = d.session.deferred();
    assert!(left.is_empty());
}

#[test]
fn controls_are_never_deferred() {
    let mut d = Driver::new("{max_in_flight: 1, max_per_window: 1, rate_window: 1h}");
    d.send("0s", trigger("a", 1, ", duration: 1m"));
    let pause = d.send("1s", serde_yaml::from_str("pause: a").unwrap());
    assert_eq!(
        summary(&pause),
        (
            DecisionKind::Invoke,
            None,
            Some(1),
            Some("completed".into()),
            0,
            "ok".into()
        )
    );
    assert_eq!(
        d.send("2s", trigger("b", 2, "")).decision.decision,
        DecisionKind::Defer
    );
    assert_eq!(d.session.deferred().len(), 1, "left deferred at the end");
}

fn captured() -> String {
    let mut d = Driver::new("{max_per_window: 1, rate_window: 5s, max_retries: 1}");
    d.send(
        "0s",
        trigger("a", 1, ", outcome: {attempts: [runtime_error]}"),
    );
    d.send("1s", trigger("b", 2, ""));
    d.send("6s", pump());
    d.send("7s", serde_yaml::from_str("pause: a").unwrap());
    String::from_utf8(d.session.bundle().to_jsonl()).unwrap()
}

#[test]
fn a_capture_replays_and_tampering_is_named() {
    let text = captured();
    let strict = ReplayOptions { strict: true };
    let bundle = parse_bundle(&text).unwrap();
    let summary = replay(&bundle, strict, Box::new(MemoryLog::new())).unwrap();
    assert_eq!((summary.events, summary.decisions), (4, 4));

    let mut tampered = bundle.clone();
    tampered.events[1]
        .payload
        .edit(|payload| payload["trigger"]["persona"] = "a".into());
    assert!(
        matches!(replay(&tampered, strict, Box::new(MemoryLog::new())), Err(ReplayError::PayloadHashMismatch { event_id, .. }) if event_id == "step-2")
    );

    let mut tampered = bundle.clone();
    tampered.decisions[0].retry_count = 0;
    let error = replay(&tampered, strict, Box::new(MemoryLog::new())).unwrap_err();
    assert_eq!(
        error.to_string(),
        "event `step-1`: decision mismatch in `retry_count`: expected 0, actual 1"
    );

    let mut tampered = bundle.clone();
    let hash = &mut tampered.decisions[2].effects[3].effect_hash;
    hash.replace_range(0..1, if hash.starts_with('0') { "1" } else { "0" });
    let error = replay(&tampered, strict, Box::new(MemoryLog::new())).unwrap_err();
    assert!(
        matches!(&error, ReplayError::EffectMismatch { event_id, index: 3, .. } if event_id == "step-3"),
        "{error}"
    );

    let mut tampered = bundle.clone();
    tampered.events[3].event_id = "step-1".into();
    tampered.decisions[3].event_id = "step-1".into();
    assert!(matches!(
        replay(&tampered, strict, Box::new(MemoryLog::new())),
        Err(ReplayError::DuplicateEventId { .. })
    ));
    assert!(
        replay(
            &tampered,
            ReplayOptions::default(),
            Box::new(MemoryLog::new())
        )
        .is_ok(),
        "duplicates pass without --strict"
    );

    let mut tampered = bundle.clone();
    tampered.runtime_provenance = "rehearse-runtime/0.0.0".into();
    assert!(matches!(
        replay(&tampered, strict, Box::new(MemoryLog::new())),
        Err(ReplayError::ProvenanceMismatch { .. })
    ));

    // A capture cut short is a broken seal.
    assert!(matches!(
        parse_bundle(&text[..text.len() / 2]),
        Err(ReplayError::Seal { .. })
    ));
    assert!(
        matches!(parse_bundle(&text.replace("rehearse-capture/3", "rehearse-capture/9")), Err(ReplayError::UnsupportedVersion { found }) if found == "rehearse-capture/9")
    );
}
