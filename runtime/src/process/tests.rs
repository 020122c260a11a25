//! Tests of the process registry: lifecycle and finality, leases and
//! fencing, list filters, stable hashes, the `process:` step's YAML shapes,
//! and the fold (incremental state equals a rebuild from the log).

use serde_json::json;

use super::*;
use crate::ids::IdGen;
use crate::log::{EventLog, LogEvent, MemoryLog, Topic};
use crate::op::Op;

const SECOND_MS: i64 = 1_000;
/// 2026-04-24T12:00:00Z, the scenario start the format's examples use.
const START_MS: i64 = 1_777_032_000_000;

/// A registry driven the way the engine drives it: execute, append, apply.
struct Rig {
    log: MemoryLog,
    registry: ProcessRegistry,
    ids: IdGen,
}

impl Rig {
    fn new() -> Self {
        Self {
            log: MemoryLog::new(),
            registry: ProcessRegistry::new(),
            ids: IdGen::new(7),
        }
    }

    fn run(&mut self, yaml: &str, at_s: i64) -> Result<ProcessOutcome, ProcessError> {
        let op: ProcessOp = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        self.run_op(&op, START_MS + at_s * SECOND_MS)
    }

    fn run_op(&mut self, op: &ProcessOp, now_ms: i64) -> Result<ProcessOutcome, ProcessError> {
        self.ids.begin_op(self.log.len());
        let outcome = self.registry.execute(op, now_ms, &mut self.ids)?;
        let batch = outcome
            .events
            .iter()
            .map(|event| (process_topic(), event.clone()))
            .collect();
        let stored = self.log.append_batch(batch).expect("memory append");
        for event in &stored {
            self.registry.apply(event);
        }
        Ok(outcome)
    }

    /// Runs a step that must succeed and returns its outcome.
    fn ok(&mut self, yaml: &str, at_s: i64) -> ProcessOutcome {
        self.run(yaml, at_s)
            .unwrap_or_else(|e| panic!("{yaml} at {at_s}s: {e}"))
    }

    /// Each `(yaml, at_s, expected)`: `yaml` at `at_s` is refused with
    /// `expected`, changing nothing.
    fn refusals(&mut self, cases: &[(&str, i64, &str)]) {
        for (yaml, at_s, expected) in cases {
            assert_eq!(self.err(yaml, *at_s), *expected, "{yaml}");
        }
    }

    /// Each of `yamls` at `at_s` is refused with `expected`, changing nothing.
    fn all_refused(&mut self, yamls: &[&str], at_s: i64, expected: &str) {
        for yaml in yamls {
            assert_eq!(self.err(yaml, at_s), expected, "{yaml}");
        }
    }

    /// Runs a step that must fail, checks that it changed nothing, and
    /// returns its message.
    fn err(&mut self, yaml: &str, at_s: i64) -> String {
        let before = (self.registry.snapshot(), self.log.len());
        let error = self
            .run(yaml, at_s)
            .expect_err(&format!("{yaml} at {at_s}s succeeded"));
        assert_eq!((self.registry.snapshot(), self.log.len()), before, "{yaml}");
        error.to_string()
    }

    fn kinds(&self) -> Vec<&str> {
        self.log.all().iter().map(|e| e.kind.as_ref()).collect()
    }

    fn record(&self, id: &str) -> &ProcessRecord {
        self.registry.get(id).expect("process exists")
    }

    fn token(&self, id: &str) -> String {
        let lease = self.record(id).lease.as_ref().expect("a lease");
        lease.lease_token.clone()
    }
}

fn started_rig(recovery: &str) -> Rig {
    let mut rig = Rig::new();
    rig.ok(
        &format!("start: {{id: p1, input: {{type: engine, kind: build}}, recovery: {recovery}}}"),
        0,
    );
    rig
}

/// The ids a listing answered, in its order.
fn listed_ids(outcome: &ProcessOutcome) -> Vec<String> {
    outcome
        .result
        .as_ref()
        .and_then(|result| result.as_array())
        .expect("a listing answers a list")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A rerunnable `p1` claimed by `w1` for 10s at 12:00, and its lease token.
fn claimed_rig() -> (Rig, String) {
    let mut rig = started_rig("rerunnable");
    rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 0);
    let token = rig.token("p1");
    (rig, token)
}

#[test]
fn start_records_a_running_process_with_stable_hashes() {
    let mut rig = Rig::new();
    let outcome = rig.ok(
        "start: {id: p1, input: {type: engine, kind: build, payload: {target: app}}, recovery: rerunnable, env: {plugin_options: {}, policy: {}}}",
        0,
    );
    assert_eq!(outcome.receipt, "ok");
    assert_eq!(
        outcome.result,
        Some(json!({
            "process_id": "p1",
            "registration_hash": "cd8b4f87e4ff649b4d979b65661c6a5d679c36d997fb67c6477a0a6241162bdc",
            "env_ref": "process-env:sha256:a13b5594b865118f2574c4c7a3cb0684d81cf56d5f122508e2d8d9923c66bfa3",
        }))
    );
    assert_eq!(rig.kinds(), ["process.started"]);
    let event = &rig.log.all()[0];
    assert_eq!(event.topic.as_str(), "process.registry.events");
    assert_eq!(event.header("process"), Some("p1"));
    assert_eq!(event.occurred_at_ms, START_MS);
    let record = rig.record("p1");
    assert_eq!(record.status, ProcessStatus::Running);
    assert_eq!(record.identity.kind, "build");
    assert_eq!(record.identity.label, None);
    assert_eq!(record.fencing_token, 0);
    assert_eq!(record.created_at_ms, START_MS);
    assert_eq!(
        rig.err(
            "start: {id: p1, input: {type: external}, recovery: externally_owned}",
            1
        ),
        "process `p1` already exists"
    );
    assert_eq!(
        rig.err(
            "start: {id: '', input: {type: external}, recovery: externally_owned}",
            1
        ),
        "process id must not be empty"
    );
}

#[test]
fn hashes_are_stable_hex_values() {
    // sha256 of `{"plugin_options":{},"policy":{}}`, computed independently.
    let empty = ProcessExecutionEnvSpec {
        plugin_options: json!({}),
        policy: json!({}),
    };
    assert_eq!(
        empty.stable_ref().unwrap(),
        "process-env:sha256:a13b5594b865118f2574c4c7a3cb0684d81cf56d5f122508e2d8d9923c66bfa3"
    );
    let env: ProcessExecutionEnvSpec = serde_yaml::from_str(
        "{policy: {sandbox: strict, net: false}, plugin_options: {git: {depth: 1}}}",
    )
    .unwrap();
    assert_eq!(
        env.stable_ref().unwrap(),
        "process-env:sha256:9be7f9398faaefbbb753ac5912498ed9d75b8240c62f3040284b65ef762074da"
    );
    let registration = ProcessRegistration {
        id: "p1".into(),
        input: ProcessInput::Tool {
            tool_name: "search".into(),
            arguments: json!({"query": "leases", "limit": 3}),
        },
        disposition: RecoveryDisposition::OwnerBound,
        identity: ProcessIdentity {
            kind: "tool".into(),
            label: Some("search".into()),
            definition: None,
        },
        provenance: ProcessProvenance {
            originator: ProcessOriginator::Session {
                session_id: "s1".into(),
            },
        },
        env_ref: None,
    };
    assert_eq!(
        registration.hash().unwrap(),
        "2ae1b39ee01df395c08555b39ee48fdff47cf833a2f72a982fb66ab42a8330b8"
    );
    // The hash does not depend on the order the input's keys were written in.
    let reordered = ProcessRegistration {
        input: serde_json::from_value(
            json!({"arguments": {"limit": 3, "query": "leases"}, "tool_name": "search", "type": "tool"}),
        )
        .unwrap(),
        ..registration.clone()
    };
    assert_eq!(reordered.hash().unwrap(), registration.hash().unwrap());
}

#[test]
fn identity_is_derived_from_the_input_as_the_seed_does() {
    let cases = [
        ("{type: tool, tool_name: search}", "tool", Some("search")),
        ("{type: engine, kind: build}", "build", None),
        (
            "{type: session_turn, session_id: s1, usage_source: cron, capability: review}",
            "session_turn",
            Some("review"),
        ),
        (
            "{type: session_turn, session_id: s1, usage_source: cron}",
            "session_turn",
            Some("cron"),
        ),
        (
            "{type: session_turn, session_id: s1}",
            "session_turn",
            Some("s1"),
        ),
        ("{type: session_turn}", "session_turn", None),
        (
            "{type: external, metadata: {label: L, name: N}}",
            "external",
            Some("L"),
        ),
        (
            "{type: external, metadata: {name: N, title: T}}",
            "external",
            Some("N"),
        ),
        (
            "{type: external, metadata: {title: T}}",
            "external",
            Some("T"),
        ),
        // The first key present wins even when it is not a string.
        (
            "{type: external, metadata: {label: 5, name: N}}",
            "external",
            None,
        ),
        ("{type: external}", "external", None),
    ];
    for (yaml, kind, label) in cases {
        let input: ProcessInput = serde_yaml::from_str(yaml).unwrap();
        let identity = ProcessIdentity::from_input(&input);
        assert_eq!(identity.kind, kind, "{yaml}");
        assert_eq!(identity.label.as_deref(), label, "{yaml}");
    }
}

#[test]
fn every_terminal_state_is_final() {
    let mut rig = Rig::new();
    for id in ["done", "broken", "stopped", "gone"] {
        rig.ok(
            &format!(
                "start: {{id: {id}, input: {{type: engine, kind: build}}, recovery: rerunnable}}"
            ),
            0,
        );
    }
    rig.ok("claim: {id: done, owner: w1, ttl: 1m}", 1);
    rig.ok("claim: {id: broken, owner: w1, ttl: 1m}", 1);
    rig.ok("claim: {id: stopped, owner: w1, ttl: 1m}", 1);
    rig.ok(
        "complete: {id: done, lease_token: {of: w1}, output: {artifact: a.tar}}",
        2,
    );
    rig.ok(
        "fail: {id: broken, lease_token: {of: w1}, error: compiler crashed}",
        2,
    );
    rig.ok("cancel: {id: stopped, by: s1, reason: user asked}", 2);
    assert_eq!(
        rig.ok("abandon: {id: gone, reason: owner vanished}", 2)
            .receipt,
        "abandoned"
    );

    let expected = [
        ("done", ProcessStatus::Completed),
        ("broken", ProcessStatus::Failed),
        ("stopped", ProcessStatus::Cancelled),
        ("gone", ProcessStatus::Abandoned),
    ];
    for (id, status) in expected {
        let record = rig.record(id);
        assert_eq!(record.status, status);
        assert_eq!(record.lease, None, "{id} keeps no lease");
        for op in [
            format!("claim: {{id: {id}, owner: w2}}"),
            format!("heartbeat: {{id: {id}, lease_token: {{of: w1}}}}"),
            format!("wait: {{id: {id}, lease_token: {{of: w1}}, signal: go}}"),
            format!("signal: {{id: {id}, name: go}}"),
            format!("complete: {{id: {id}, lease_token: {{of: w1}}}}"),
            format!("fail: {{id: {id}, lease_token: {{of: w1}}, error: late}}"),
            format!("cancel: {{id: {id}}}"),
            format!("abandon: {{id: {id}}}"),
        ] {
            assert_eq!(
                rig.err(&op, 3),
                format!("process `{id}` is {status}; its state is final")
            );
        }
    }
    let done = rig.record("done").end.clone().unwrap();
    assert_eq!(
        done,
        ProcessEnd {
            at_ms: START_MS + 2 * SECOND_MS,
            by: "w1".into(),
            fencing_token: Some(1),
            output: Some(json!({"artifact": "a.tar"})),
            error: None,
            reason: None,
        }
    );
    assert_eq!(
        rig.record("broken").end.as_ref().unwrap().error.as_deref(),
        Some("compiler crashed")
    );
    let stopped = rig.record("stopped").end.clone().unwrap();
    assert_eq!(
        (stopped.by.as_str(), stopped.reason.as_deref()),
        ("s1", Some("user asked"))
    );
    let gone = rig.record("gone").end.clone().unwrap();
    assert_eq!((gone.by.as_str(), gone.fencing_token), ("host", None));
    assert_eq!(
        rig.kinds(),
        [
            "process.started",
            "process.started",
            "process.started",
            "process.started",
            "process.lease.claimed",
            "process.lease.claimed",
            "process.lease.claimed",
            "process.completed",
            "process.failed",
            "process.cancelled",
            "process.abandoned",
        ]
    );
}

#[test]
fn claim_while_a_lease_is_live_is_refused() {
    let mut rig = started_rig("rerunnable");
    let claim = rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 0);
    let token = rig.token("p1");
    assert!(token.starts_with("process_lease_"), "{token}");
    assert_eq!(
        claim.result,
        Some(json!({
            "owner": "w1",
            "lease_token": token,
            "fencing_token": 1,
            "expires_at_ms": START_MS + 10 * SECOND_MS,
        }))
    );
    let busy = "process `p1` is leased to `w1` until 2026-04-24T12:00:10Z (fencing token 1)";
    rig.refusals(&[
        ("claim: {id: p1, owner: w2, ttl: 10s}", 5, busy),
        ("claim: {id: p1, owner: w1, ttl: 10s}", 9, busy),
        ("claim: {id: p9, owner: w1}", 9, "unknown process `p9`"),
        (
            "claim: {id: p1, owner: '', ttl: 10s}",
            20,
            "process lease owner must not be empty",
        ),
        (
            "claim: {id: p1, owner: w2, ttl: 0s}",
            20,
            "process lease ttl must be greater than zero",
        ),
    ]);
    assert_eq!(
        rig.record("p1").first_started,
        Some(ProcessStarted {
            owner: "w1".into(),
            started_at_ms: START_MS
        })
    );
}

#[test]
fn a_new_claim_after_expiry_fences_the_old_owner_out() {
    let (mut rig, old) = claimed_rig();
    // The lease lapses at exactly its expiry.
    let claim = rig.ok("claim: {id: p1, owner: w2, ttl: 10s}", 10);
    let new = rig.token("p1");
    assert_ne!(old, new);
    assert_eq!(claim.result.as_ref().unwrap()["fencing_token"], 2);
    assert_eq!(
        rig.kinds()[1..],
        [
            "process.lease.claimed",
            "process.lease.expired",
            "process.lease.claimed"
        ]
    );
    assert_eq!(
        rig.log.all()[2].payload,
        json!({
            "process_id": "p1",
            "owner": "w1",
            "lease_token": old,
            "fencing_token": 1,
            "expired_at_ms": START_MS + 10 * SECOND_MS,
        })
    );

    let stale = format!(
        "stale lease token `{old}` (fencing token 1) for process `p1`: the current fencing token is 2"
    );
    rig.all_refused(
        &[
            "complete: {id: p1, lease_token: {of: w1}}",
            &format!("complete: {{id: p1, lease_token: {old}}}"),
            "heartbeat: {id: p1, lease_token: {of: w1}}",
            "fail: {id: p1, lease_token: {of: w1}, error: x}",
            "wait: {id: p1, lease_token: {of: w1}, signal: go}",
        ],
        11,
        &stale,
    );
    assert_eq!(rig.record("p1").status, ProcessStatus::Running);

    // A third owner after the second lapses: fencing only grows.
    rig.ok("claim: {id: p1, owner: w3, ttl: 10s}", 30);
    assert_eq!(rig.record("p1").fencing_token, 3);
    assert_eq!(
        rig.err("complete: {id: p1, lease_token: {of: w2}}", 31),
        format!("stale lease token `{new}` (fencing token 2) for process `p1`: the current fencing token is 3")
    );
    // The first owner may claim again; it gets a new token and fencing 4.
    rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 40);
    assert_eq!(rig.record("p1").fencing_token, 4);
    assert_ne!(rig.token("p1"), old);
    rig.ok("complete: {id: p1, lease_token: {of: w1}, output: 42}", 41);
    let end = rig.record("p1").end.clone().unwrap();
    assert_eq!(
        (end.by.as_str(), end.fencing_token, end.output),
        ("w1", Some(4), Some(json!(42)))
    );
}

#[test]
fn unknown_tokens_and_owners_without_a_lease_are_refused() {
    let mut rig = started_rig("rerunnable");
    assert_eq!(
        rig.err("complete: {id: p1, lease_token: {of: w1}}", 1),
        "owner `w1` holds no lease on process `p1`"
    );
    rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 1);
    rig.refusals(&[
        (
            "complete: {id: p1, lease_token: process_lease_forged}",
            2,
            "unknown lease token `process_lease_forged` for process `p1`",
        ),
        (
            "heartbeat: {id: p1, lease_token: {of: w9}}",
            2,
            "owner `w9` holds no lease on process `p1`",
        ),
    ]);
    // A token of another process is unknown to this one.
    rig.ok(
        "start: {id: p2, input: {type: engine, kind: build}, recovery: rerunnable}",
        2,
    );
    rig.ok("claim: {id: p2, owner: w1, ttl: 10s}", 2);
    let other = rig.token("p2");
    rig.refusals(&[
        (
            &format!("complete: {{id: p1, lease_token: {other}}}"),
            3,
            &format!("unknown lease token `{other}` for process `p1`"),
        ),
        (
            "complete: {id: p9, lease_token: {of: w1}}",
            3,
            "unknown process `p9`",
        ),
    ]);
}

#[test]
fn heartbeat_extends_the_lease_and_an_expired_lease_cannot_act() {
    let (mut rig, token) = claimed_rig();
    let beat = rig.ok("heartbeat: {id: p1, lease_token: {of: w1}}", 8);
    assert_eq!(
        beat.result,
        Some(json!({
            "owner": "w1",
            "lease_token": token,
            "fencing_token": 1,
            "expires_at_ms": START_MS + 18 * SECOND_MS,
        }))
    );
    assert_eq!(
        rig.err("claim: {id: p1, owner: w2}", 15),
        "process `p1` is leased to `w1` until 2026-04-24T12:00:18Z (fencing token 1)"
    );
    rig.ok(
        &format!("heartbeat: {{id: p1, lease_token: {token}, ttl: 1m}}"),
        17,
    );
    let lease = rig.record("p1").lease.clone().unwrap();
    assert_eq!(
        (lease.ttl_ms, lease.expires_at_ms),
        (60_000, START_MS + 77 * SECOND_MS)
    );
    assert_eq!(lease.claimed_at_ms, START_MS);
    assert_eq!(
        rig.err("heartbeat: {id: p1, lease_token: {of: w1}, ttl: 0s}", 18),
        "process lease ttl must be greater than zero"
    );
    // Nobody claimed it after it lapsed, yet the holder may no longer act.
    let expired = format!("lease token `{token}` for process `p1` expired at 2026-04-24T12:01:17Z");
    rig.refusals(&[
        ("heartbeat: {id: p1, lease_token: {of: w1}}", 77, &expired),
        ("complete: {id: p1, lease_token: {of: w1}}", 90, &expired),
    ]);
    assert_eq!(
        rig.kinds(),
        [
            "process.started",
            "process.lease.claimed",
            "process.lease.renewed",
            "process.lease.renewed"
        ]
    );
}

#[test]
fn an_owner_bound_process_is_claimed_only_by_its_first_owner() {
    let mut rig = started_rig("owner_bound");
    rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 0);
    assert_eq!(
        rig.err("claim: {id: p1, owner: w2, ttl: 10s}", 10),
        "process `p1` is owner-bound to `w1`; `w2` may not claim it"
    );
    rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 10);
    assert_eq!(rig.record("p1").fencing_token, 2);

    // Rerunnable and externally owned processes take any owner.
    for recovery in ["rerunnable", "externally_owned"] {
        let mut rig = started_rig(recovery);
        rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 0);
        rig.ok("claim: {id: p1, owner: w2, ttl: 10s}", 10);
    }
}

#[test]
fn abandon_waits_for_a_live_holder() {
    let mut rig = started_rig("rerunnable");
    rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 0);
    let requested = rig.ok("abandon: {id: p1, by: ops, reason: stuck}", 1);
    assert_eq!(requested.receipt, "abandon_requested");
    assert_eq!(
        rig.record("p1").abandon_request,
        Some(AbandonRequest {
            requested_by: "ops".into(),
            requested_at_ms: START_MS + SECOND_MS,
            reason: Some("stuck".into()),
        })
    );
    assert_eq!(rig.record("p1").status, ProcessStatus::Running);
    // The holder's next heartbeat settles it.
    let beat = rig.ok("heartbeat: {id: p1, lease_token: {of: w1}}", 2);
    assert_eq!(beat.receipt, "abandoned");
    assert_eq!(
        beat.result,
        Some(json!({"abandoned": true, "requested_by": "ops"}))
    );
    let record = rig.record("p1");
    assert_eq!(record.status, ProcessStatus::Abandoned);
    let end = record.end.clone().unwrap();
    assert_eq!(
        (end.by.as_str(), end.fencing_token, end.reason.as_deref()),
        ("ops", Some(1), Some("stuck"))
    );

    // Without a heartbeat, the lease lapses and the process cannot be
    // claimed until a second request abandons it.
    let mut rig = started_rig("rerunnable");
    rig.ok("claim: {id: p1, owner: w1, ttl: 10s}", 0);
    rig.ok("abandon: {id: p1, by: ops}", 1);
    assert_eq!(
        rig.err("claim: {id: p1, owner: w2}", 20),
        "process `p1` has a pending abandon request from `ops`; abandon it again to settle it"
    );
    // The holder may still finish the work it was doing while it is live.
    let mut finished = started_rig("rerunnable");
    finished.ok("claim: {id: p1, owner: w1, ttl: 10s}", 0);
    finished.ok("abandon: {id: p1}", 1);
    finished.ok("complete: {id: p1, lease_token: {of: w1}}", 2);
    assert_eq!(finished.record("p1").status, ProcessStatus::Completed);

    assert_eq!(
        rig.ok("abandon: {id: p1, by: ops}", 20).receipt,
        "abandoned"
    );
    assert_eq!(rig.record("p1").status, ProcessStatus::Abandoned);
    assert_eq!(
        rig.kinds(),
        [
            "process.started",
            "process.lease.claimed",
            "process.abandon_requested",
            "process.abandoned"
        ]
    );
}

#[test]
fn wait_and_signal_drive_the_waiting_facet() {
    let mut rig = Rig::new();
    for id in ["a", "b"] {
        rig.ok(
            &format!(
                "start: {{id: {id}, input: {{type: engine, kind: build}}, recovery: rerunnable}}"
            ),
            0,
        );
    }
    rig.ok("claim: {id: a, owner: w1, ttl: 1m}", 0);
    rig.ok("wait: {id: a, lease_token: {of: w1}, signal: ready}", 1);
    assert_eq!(
        rig.record("a").wait,
        Some(WaitState {
            signal: "ready".into(),
            since_ms: START_MS + SECOND_MS
        })
    );
    let ids = |outcome: ProcessOutcome| listed_ids(&outcome);
    assert_eq!(ids(rig.ok("list: {waiting: true}", 2)), ["a"]);
    assert_eq!(ids(rig.ok("list: {waiting: false}", 2)), ["b"]);
    rig.refusals(&[
        (
            "signal: {id: a, name: other}",
            3,
            "process `a` is not waiting for signal `other`",
        ),
        (
            "signal: {id: b, name: ready}",
            3,
            "process `b` is not waiting for signal `ready`",
        ),
    ]);
    rig.ok("signal: {id: a, name: ready}", 3);
    assert_eq!(rig.record("a").wait, None);
    assert_eq!(
        ids(rig.ok("list: {waiting: true}", 4)),
        Vec::<String>::new()
    );
    // Ending a waiting process drops its wait.
    rig.ok("wait: {id: a, lease_token: {of: w1}, signal: again}", 5);
    rig.ok("cancel: {id: a}", 6);
    assert_eq!(rig.record("a").wait, None);
}

#[test]
fn list_filters_select_by_status_definition_and_waiting() {
    let mut rig = Rig::new();
    rig.ok("start: {id: a, input: {type: engine, kind: build}, recovery: rerunnable, definition: {component: target, pos: 0}}", 0);
    rig.ok("start: {id: b, input: {type: engine, kind: build}, recovery: rerunnable, definition: {component: other, pos: 1}}", 0);
    rig.ok("start: {id: c, input: {type: external, metadata: {name: hook}}, recovery: externally_owned}", 0);
    rig.ok("cancel: {id: b}", 1);
    rig.ok("abandon: {id: c}", 1);
    let listed = |rig: &mut Rig, filter: &str| -> (String, Vec<String>) {
        let outcome = rig.ok(&format!("list: {filter}"), 2);
        let ids = listed_ids(&outcome);
        (outcome.receipt, ids)
    };
    let cases: [(&str, &[&str]); 9] = [
        ("{}", &["a"]),
        ("{status: running}", &["a"]),
        ("{status: cancelled}", &["b"]),
        ("{status: abandoned}", &["c"]),
        ("{status: completed}", &[]),
        ("{status: failed}", &[]),
        ("{status: any}", &["a", "b", "c"]),
        (
            "{status: any, definition: {pos: 1, component: other}}",
            &["b"],
        ),
        ("{definition: {component: other, pos: 1}}", &[]),
    ];
    for (filter, expected) in cases {
        let (receipt, ids) = listed(&mut rig, filter);
        assert_eq!(ids, expected, "{filter}");
        assert_eq!(receipt, expected.len().to_string(), "{filter}");
    }
    let (_, ids) = listed(&mut rig, "{status: any, waiting: false}");
    assert_eq!(ids, ["a", "b", "c"]);
    // Listing appends nothing.
    assert_eq!(rig.log.len(), 5);
}

#[test]
fn bad_list_filters_give_the_seed_messages() {
    let mut rig = started_rig("rerunnable");
    let bad_status = |got: &str| {
        format!("processes.list status must be `running`, `completed`, `failed`, `cancelled`, `abandoned`, or `any`, got `{got}`")
    };
    let cases = [
        (
            "{owner: w1}",
            "processes.list unknown filter `owner`".to_string(),
        ),
        (
            "{status: running, limit: 3}",
            "processes.list unknown filter `limit`".to_string(),
        ),
        ("{status: done}", bad_status("done")),
        ("{status: Running}", bad_status("Running")),
        (
            "{waiting: yes}",
            "processes.list `waiting` filter must be a boolean".to_string(),
        ),
        (
            "{waiting: 1}",
            "processes.list `waiting` filter must be a boolean".to_string(),
        ),
        (
            "{waiting: null}",
            "processes.list `waiting` filter must be a boolean".to_string(),
        ),
        (
            "[running]",
            "processes.list expects a record of process filters".to_string(),
        ),
        (
            "running",
            "processes.list expects a record of process filters".to_string(),
        ),
        (
            "null",
            "processes.list expects a record of process filters".to_string(),
        ),
    ];
    for (filter, message) in cases {
        assert_eq!(rig.err(&format!("list: {filter}"), 1), message, "{filter}");
    }
    // A status that is not a string falls back to the default, `running`.
    for filter in [
        "{status: 5}",
        "{status: null}",
        "{status: true}",
        "{status: [any]}",
    ] {
        let outcome = rig.ok(&format!("list: {filter}"), 2);
        assert_eq!(outcome.receipt, "1", "{filter}");
    }
    // The modelled registry's decoder, used directly.
    assert_eq!(
        ProcessListFilter::decode(&json!({"status": "failed", "waiting": true})),
        Ok(ProcessListFilter {
            definition: None,
            status: ProcessStatusFilter::Failed,
            waiting: Some(true)
        })
    );
    assert_eq!(
        ProcessStatusFilter::decode(None),
        Ok(ProcessStatusFilter::Running)
    );
}

#[test]
fn generated_ids_and_tokens_are_deterministic() {
    let run = || {
        let mut rig = Rig::new();
        let started = rig.ok(
            "start: {input: {type: engine, kind: build}, recovery: rerunnable}",
            0,
        );
        let id = started.result.unwrap()["process_id"]
            .as_str()
            .unwrap()
            .to_string();
        rig.ok(&format!("claim: {{id: {id}, owner: w1}}"), 1);
        let token = rig.token(&id);
        (id, token, rig.registry.snapshot())
    };
    let (id, token, snapshot) = run();
    assert_eq!(id, "process_019dbf5c-7200-73f6-86f2-0613f4ef22e4");
    assert_eq!(token, "process_lease_019dbf5c-75e8-7a7a-a22d-4959d744e1a6");
    assert_eq!(run(), (id, token, snapshot));
}

#[test]
fn snapshot_lists_every_record_by_id() {
    let mut rig = Rig::new();
    rig.ok("start: {id: zeta, input: {type: tool, tool_name: search}, recovery: owner_bound, session: s1}", 0);
    rig.ok(
        "start: {id: alpha, input: {type: external}, recovery: externally_owned}",
        0,
    );
    rig.ok("claim: {id: zeta, owner: w1, ttl: 30s}", 1);
    let snapshot = rig.registry.snapshot();
    let keys: Vec<_> = snapshot.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["alpha", "zeta"]);
    let token = rig.token("zeta");
    assert_eq!(
        snapshot["zeta"],
        json!({
            "id": "zeta",
            "registration_hash": snapshot["zeta"]["registration_hash"],
            "input": {"type": "tool", "tool_name": "search"},
            "disposition": "owner_bound",
            "identity": {"kind": "tool", "label": "search"},
            "provenance": {"originator": {"type": "session", "session_id": "s1"}},
            "created_at_ms": START_MS,
            "updated_at_ms": START_MS + SECOND_MS,
            "status": "running",
            "fencing_token": 1,
            "lease": {
                "owner": "w1",
                "lease_token": token,
                "fencing_token": 1,
                "claimed_at_ms": START_MS + SECOND_MS,
                "ttl_ms": 30_000,
                "expires_at_ms": START_MS + 31 * SECOND_MS,
            },
            "first_started": {"owner": "w1", "started_at_ms": START_MS + SECOND_MS},
        })
    );
    assert_eq!(
        snapshot["zeta"]["registration_hash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
}

#[test]
fn process_ops_round_trip_through_yaml_and_json() {
    for yaml in [
        "start: {id: p1, input: {type: engine, kind: build, payload: {target: app}}, recovery: rerunnable}",
        "start: {input: {type: tool, tool_name: search, arguments: {q: x}}, recovery: owner_bound, definition: {pos: 0}, session: s1, env: {plugin_options: {a: 1}, policy: {}}}",
        "start: {id: p2, input: {type: session_turn, session_id: s1, capability: review, turn: {text: hi}}, recovery: rerunnable}",
        "start: {id: p3, input: {type: external, metadata: {label: hook}}, recovery: externally_owned}",
        "claim: {id: p1, owner: w1, ttl: 30s}",
        "claim: {id: p1, owner: w1}",
        "heartbeat: {id: p1, lease_token: {of: w1}, ttl: 1m}",
        "heartbeat: {id: p1, lease_token: process_lease_x}",
        "wait: {id: p1, lease_token: {of: w1}, signal: ready}",
        "signal: {id: p1, name: ready}",
        "complete: {id: p1, lease_token: {of: w1}, output: {ok: true}}",
        "fail: {id: p1, lease_token: {of: w1}, error: boom}",
        "cancel: {id: p1, by: s1, reason: enough}",
        "abandon: {id: p1}",
        "list: {status: running, waiting: false}",
        "list: {}",
    ] {
        let parsed: ProcessOp = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        let back: ProcessOp = serde_yaml::from_str(&serde_yaml::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(back, parsed, "{yaml}");
        let json: ProcessOp = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(json, parsed, "{yaml}");
        let step: Op = serde_yaml::from_str(&format!("process: {{{yaml}}}")).unwrap();
        assert_eq!(step, Op::Process(parsed), "{yaml}");
    }
    let ProcessOp::Claim(claim) = serde_yaml::from_str("claim: {id: p1, owner: w1}").unwrap()
    else {
        panic!("not a claim")
    };
    assert_eq!(claim.ttl, DEFAULT_PROCESS_LEASE_TTL);
    assert_eq!(
        serde_json::to_value(ProcessOp::Heartbeat(HeartbeatOp {
            id: "p1".into(),
            lease_token: LeaseTokenRef::Of("w1".into()),
            ttl: None,
        }))
        .unwrap(),
        json!({"heartbeat": {"id": "p1", "lease_token": {"of": "w1"}}})
    );
}

#[test]
fn garbage_process_ops_are_refused_with_clear_messages() {
    let kinds = "`start`, `claim`, `heartbeat`, `wait`, `signal`, `complete`, `fail`, `cancel`, `abandon`, `list`";
    let cases = [
        ("launch: {id: p1}", format!("unknown process operation `launch`, expected one of {kinds}")),
        ("{}", format!("missing process operation, expected one of {kinds}")),
        ("{claim: {id: p1, owner: w1}, cancel: {id: p1}}", "two process operations `claim` and `cancel` in one step, expected exactly one".to_string()),
        ("claim", "expected a map with exactly one process operation".to_string()),
        ("claim: {id: p1, owner: w1, tll: 5s}", "unknown field `tll`".to_string()),
        ("claim: {id: p1}", "missing field `owner`".to_string()),
        ("claim: {id: p1, owner: w1, ttl: 5}", "duration `5` has no unit".to_string()),
        ("claim: {id: p1, owner: w1, ttl: -5s}", "invalid duration `-5s`".to_string()),
        ("start: {id: p1, input: {type: engine, kind: build}}", "missing field `recovery`".to_string()),
        ("start: {id: p1, input: {type: engine, kind: build}, recovery: sometimes}", "unknown variant `sometimes`, expected one of `rerunnable`, `owner_bound`, `externally_owned`".to_string()),
        ("start: {id: p1, input: {type: shell, cmd: ls}, recovery: rerunnable}", "unknown variant `shell`, expected one of `tool`, `engine`, `session_turn`, `external`".to_string()),
        ("start: {id: p1, input: {kind: build}, recovery: rerunnable}", "missing field `type`".to_string()),
        ("start: {id: p1, input: {type: engine, kind: build, extra: 1}, recovery: rerunnable}", "unknown field `extra`".to_string()),
        ("start: {id: p1, input: {type: engine}, recovery: rerunnable}", "missing field `kind`".to_string()),
        ("start: {id: p1, input: {type: engine, kind: b}, recovery: rerunnable, env: {policy: {}, plugins: {}}}", "unknown field `plugins`".to_string()),
        ("complete: {id: p1}", "missing field `lease_token`".to_string()),
        ("complete: {id: p1, lease_token: {owner: w1}}", "unknown lease token reference `owner`, expected a lease token or `{of: OWNER}`".to_string()),
        ("complete: {id: p1, lease_token: {}}", "empty lease token reference, expected a lease token or `{of: OWNER}`".to_string()),
        ("complete: {id: p1, lease_token: {of: w1, as: t1}}", "unexpected `as` beside `of`, expected a lease token or `{of: OWNER}`".to_string()),
        ("complete: {id: p1, lease_token: 12}", "expected a lease token or `{of: OWNER}`".to_string()),
        ("complete: {id: p1, lease_token: [w1]}", "expected a lease token or `{of: OWNER}`".to_string()),
        ("fail: {id: p1, lease_token: {of: w1}}", "missing field `error`".to_string()),
        ("signal: {id: p1, signal: go}", "unknown field `signal`".to_string()),
        ("cancel: p1", "expected struct CancelOp".to_string()),
    ];
    for (yaml, message) in cases {
        let error = serde_yaml::from_str::<ProcessOp>(yaml)
            .expect_err(yaml)
            .to_string();
        assert!(error.contains(&message), "{yaml}: {error}");
    }
    // Through the scenario step, the process operation's message survives.
    let error = serde_yaml::from_str::<Op>("process: {launch: {}}")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unknown process operation `launch`"),
        "{error}"
    );
}

#[test]
fn apply_ignores_other_topics_and_foreign_events() {
    let mut registry = ProcessRegistry::new();
    let mut ids = IdGen::new(1);
    let op: ProcessOp = serde_yaml::from_str(
        "start: {id: p1, input: {type: engine, kind: build}, recovery: rerunnable}",
    )
    .unwrap();
    let outcome = registry.execute(&op, START_MS, &mut ids).unwrap();
    let mut log = MemoryLog::new();
    let other = Topic::new("persona.runtime.events").unwrap();
    let mut batch = vec![(other.clone(), outcome.events[0].clone())];
    batch.push((
        process_topic(),
        LogEvent {
            kind: "process.unheard_of".into(),
            payload: json!({"process_id": "p1"}).into(),
            headers: Default::default(),
            occurred_at_ms: 0,
        },
    ));
    batch.push((
        process_topic(),
        LogEvent {
            kind: "process.started".into(),
            payload: json!({"garbage": true}).into(),
            headers: Default::default(),
            occurred_at_ms: 0,
        },
    ));
    batch.push((
        process_topic(),
        LogEvent {
            kind: "process.completed".into(),
            payload: json!({"process_id": "nobody", "by": "w1"}).into(),
            headers: Default::default(),
            occurred_at_ms: 0,
        },
    ));
    for event in log.append_batch(batch).unwrap() {
        registry.apply(&event);
    }
    assert_eq!(registry, ProcessRegistry::new());
}

/// A small deterministic generator for the mixed sequence.
struct Dice(IdGen);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0.next_u64() % sides
    }
}

#[test]
fn incremental_state_equals_a_rebuild_after_a_long_mixed_sequence() {
    let mut rig = Rig::new();
    let mut dice = Dice(IdGen::new(42));
    let recoveries = ["rerunnable", "owner_bound", "externally_owned"];
    let inputs = [
        "{type: engine, kind: build}",
        "{type: tool, tool_name: search}",
        "{type: external, metadata: {name: hook}}",
        "{type: session_turn, session_id: s1}",
    ];
    let (mut accepted, mut refused) = (0, 0);
    let mut fencing_seen = std::collections::BTreeMap::<String, u64>::new();
    let mut started = 0;
    let mut at_s = 0;
    for step in 0..600 {
        at_s += i64::try_from(dice.roll(3)).unwrap();
        if started == 0 || dice.roll(8) == 0 {
            let yaml = format!(
                "start: {{id: p{started}, input: {}, recovery: {}}}",
                inputs[usize::try_from(dice.roll(4)).unwrap()],
                recoveries[usize::try_from(dice.roll(3)).unwrap()]
            );
            rig.ok(&yaml, at_s);
            started += 1;
            continue;
        }
        // Mostly a running process, and mostly its holder, so that most
        // operations pass; the rest exercise the refusals.
        let running: Vec<String> = rig
            .registry
            .records()
            .filter(|record| record.status == ProcessStatus::Running)
            .map(|record| record.id.clone())
            .collect();
        let id = if !running.is_empty() && dice.roll(5) > 0 {
            running[usize::try_from(dice.roll(running.len() as u64)).unwrap()].clone()
        } else {
            format!("p{}", dice.roll(started))
        };
        let record = rig.record(&id).clone();
        let owner = match &record.lease {
            Some(lease) if dice.roll(3) > 0 => lease.owner.clone(),
            _ => format!("w{}", dice.roll(3)),
        };
        let signal = match &record.wait {
            Some(wait) if dice.roll(3) > 0 => wait.signal.clone(),
            _ => format!("s{}", dice.roll(2)),
        };
        let yaml = match dice.roll(16) {
            0..=3 => format!(
                "claim: {{id: {id}, owner: {owner}, ttl: {}s}}",
                5 + dice.roll(20)
            ),
            4..=6 => format!("heartbeat: {{id: {id}, lease_token: {{of: {owner}}}}}"),
            7 => format!("wait: {{id: {id}, lease_token: {{of: {owner}}}, signal: {signal}}}"),
            8 | 9 => format!("signal: {{id: {id}, name: {signal}}}"),
            10 => format!("complete: {{id: {id}, lease_token: {{of: {owner}}}, output: {step}}}"),
            11 => format!("fail: {{id: {id}, lease_token: {{of: {owner}}}, error: e{step}}}"),
            12 => format!("cancel: {{id: {id}, by: {owner}}}"),
            13 => format!("abandon: {{id: {id}, by: {owner}}}"),
            _ => "list: {status: any}".to_string(),
        };
        match rig.run(&yaml, at_s) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        // Fencing tokens only grow, and a live lease carries the highest.
        for record in rig.registry.records() {
            let seen = fencing_seen.entry(record.id.clone()).or_default();
            assert!(record.fencing_token >= *seen, "{}", record.id);
            *seen = record.fencing_token;
            if let Some(lease) = &record.lease {
                assert_eq!(lease.fencing_token, record.fencing_token);
            }
        }
        if step % 97 == 0 {
            assert_eq!(ProcessRegistry::rebuild(rig.log.all()), rig.registry);
        }
    }
    assert!(
        accepted > 150 && refused > 150,
        "accepted {accepted}, refused {refused}"
    );
    let rebuilt = ProcessRegistry::rebuild(rig.log.all());
    assert_eq!(rebuilt, rig.registry);
    assert_eq!(rebuilt.snapshot(), rig.registry.snapshot());
    // Every lifecycle state and every event kind occurred.
    let statuses: std::collections::BTreeSet<_> =
        rig.registry.records().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 5, "{statuses:?}");
    let kinds: std::collections::BTreeSet<_> = rig.kinds().into_iter().collect();
    assert_eq!(
        kinds.len(),
        11,
        "{kinds:?} accepted {accepted}, refused {refused}"
    );
}
