//! Pins the exact bytes the runtime produces for a fixed mixed workload: the
//! event log as JSON Lines, the capture bundle, every step's outcome, the
//! final statuses, snapshots and run records, and the messages of tampered
//! replays. Performance work on the runtime must leave every one of these
//! sha256 digests unchanged; a digest that moves means behaviour moved.

use std::fmt::Write as _;

use rehearse_runtime::capture::{CaptureBundle, Session, CAPTURE_VERSION_2};
use rehearse_runtime::config::RuntimeConfig;
use rehearse_runtime::engine::Runtime;
use rehearse_runtime::file_log::{log_path, FileLog, FileLogOptions, FsyncPolicy};
use rehearse_runtime::replay::{
    open_capture, parse_bundle, replay, replay_stream, OpenedCapture, ReplayOptions,
};
use rehearse_runtime::supervisor::Handled;
use rehearse_runtime::{parse_rfc3339_ms, MemoryLog, Op};
use sha2::{Digest, Sha256};

const CONFIG: &str = r#"
start_ms: 1777032000000
seed: 42
personas:
  merge:
    entry_workflow: workflows/merge.harn#run
    template_ref: templates/merge@3
    schedules: ["0 */2 * * *"]
    budget: {daily_usd: 0.5, hourly_usd: 0.2, run_usd: 0.1, max_tokens: 40000}
    lease_ttl: 90s
    stages:
      - {name: plan, allowed_tools: [read], side_effect_level: none, max_iterations: 3, on_exit: {on_complete: act}}
      - {name: act, side_effect_level: write}
  triage:
    entry_workflow: workflows/triage.harn#run
supervisor: {max_in_flight: 2, max_per_window: 3, rate_window: 10s, deadline: 20s, max_retries: 2}
"#;

/// One round of steps, as (seconds into the round, step). `{n}` is the
/// round and `{env}` the envelope its handoff creates.
const ROUND: &[(i64, &str)] = &[
    (0, "trigger: {persona: merge, provider: GitHub, kind: pull_request, metadata: {repository: o/r, number: '{n}'}, cost: {usd: 0.013, tokens: 700, metadata: {model: small, temperature: 0.25}}}"),
    (4, "trigger: {persona: triage, provider: linear, kind: issue, metadata: {issue.identifier: ENG-{n}, id: 9{n}}, cost: {usd: 0.0071, tokens: 33, avoided_usd: 0.02, deterministic_steps: 4, llm_steps: 2}}"),
    (8, "trigger: {persona: triage, provider: slack, kind: message, metadata: {channel: C{n}, ts: '17.{n}'}, cost: {usd: 0.001, tokens: 5, frontier_escalations: 1, llm_steps: 3}, duration: 5s}"),
    (12, "trigger: {persona: merge, provider: webhook, kind: deploy, cost: {usd: 0.02, tokens: 10}, outcome: {attempts: [network_timeout, completed]}}"),
    (16, "trigger: {persona: triage, provider: jira, kind: created, metadata: {dedupe_key: d{n}}, outcome: {fail: semantic_error}}"),
    (20, "trigger: {persona: merge, provider: GitHub, kind: pull_request, metadata: {repository: o/r, number: '{n}'}, cost: {usd: 0.013, tokens: 700}}"),
    (24, "trigger: {persona: triage, provider: webhook, kind: hook, metadata: {event_id: e{n}}, duration: 25s}"),
    (28, "spend: {persona: merge, usd: 0.05, tokens: 1000}"),
    (29, "repair_worker: {persona: merge, id: rw{n}, lifecycle: running, work_key: 'github:o/r:pr:{n}', scratchpad_url: 'https://scratch/{n}'}"),
    (30, "repair_worker: {persona: merge, id: rw{n}, lifecycle: running}"),
    (31, "restore_checkpoint: {persona: triage, checkpoint_id: cp{n}, work_key: 'linear:issue:ENG-{n}'}"),
    (32, "restore_checkpoint: {persona: triage, checkpoint_id: cp{n}}"),
    (40, "pause: triage"),
    (44, "trigger: {persona: triage, provider: linear, kind: issue, metadata: {issue_key: Q-{n}}, cost: {usd: 0.002, tokens: 3}}"),
    (48, "trigger: {persona: triage, provider: handoff, kind: review, metadata: {dedupe_key: h{n}, handoff_id: hid{n}, source_persona: merge, task: check}}"),
    (52, "resume: triage"),
    (56, "tick: {persona: merge, cost: {usd: 0.003, tokens: 12}}"),
    (60, "trigger: {persona: merge, provider: custom, kind: thing, outcome: crash}"),
    (64, "trigger: {persona: merge, provider: custom, kind: other}"),
    (65, "audit: {kind: review.started, payload: {round: {n}, note: \"quote \\\" and unicode é\"}}"),
    (66, "handoff: {to: review, payload: {pr: {n}, files: [a.rs, b.rs]}}"),
    (67, "ack_handoff: {envelope: envelope_{env}, decision: accepted}"),
    (68, "ack_handoff: {envelope: envelope_{env}, decision: accepted}"),
    (69, "process: {start: {id: p{n}, input: {type: engine, kind: build, payload: {target: app}}, recovery: rerunnable}}"),
    (70, "process: {claim: {id: p{n}, owner: w1}}"),
    (71, "process: {heartbeat: {id: p{n}, lease_token: {of: w1}, ttl: 1m}}"),
    (72, "process: {complete: {id: p{n}, lease_token: {of: w1}, output: {ok: true}}}"),
    (73, "process: {list: {status: completed}}"),
    (80, "fault: {append: fail, count: 3}"),
    (90, "trigger: {persona: merge, provider: github, kind: check_run, metadata: {check_name: ci{n}}, cost: {usd: 0.2, tokens: 1}}"),
    (91, "trigger: {persona: merge, provider: github, kind: check_run, metadata: {check_name: ci{n}}, cost: {usd: 0.04, tokens: 1}}"),
    (91, "trigger: {persona: triage, provider: slack, kind: message, metadata: {channel: D{n}, ts: '1'}}"),
    (91, "trigger: {persona: triage, provider: slack, kind: message, metadata: {channel: D{n}, ts: '2'}}"),
    (92, "pump: {}"),
    (101, "pump: {}"),
    (102, "pump: {}"),
    (103, "pump: {}"),
];

/// Rounds of the workload, spaced so that day and hour windows roll over.
const ROUNDS: i64 = 40;
const ROUND_SPACING_MS: i64 = 23 * 60 * 1000;

fn config() -> RuntimeConfig {
    serde_yaml::from_str(CONFIG).unwrap()
}

fn steps() -> Vec<(i64, Op)> {
    let start = parse_rfc3339_ms("2026-04-24T12:00:00Z").unwrap();
    let mut steps = Vec::new();
    for round in 1..=ROUNDS {
        for (offset_s, yaml) in ROUND {
            let text = yaml
                .replace("{n}", &round.to_string())
                .replace("{env}", &(3 * round - 1).to_string());
            let op: Op = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            steps.push((start + round * ROUND_SPACING_MS + offset_s * 1000, op));
        }
    }
    let end = start + (ROUNDS + 1) * ROUND_SPACING_MS;
    let finalize: Op = serde_yaml::from_str("finalize: {disposition: done}").unwrap();
    steps.push((end, finalize));
    steps.push((end, Op::Disable("merge".into())));
    let last: Op = serde_yaml::from_str(
        "trigger: {persona: merge, provider: github, kind: pull_request, metadata: {repository: o/r, number: '1'}}",
    )
    .unwrap();
    steps.push((end + 1000, last));
    steps
}

fn outcome_line(handled: &Handled) -> String {
    let result = match &handled.result {
        Ok(r) => format!(
            "ok receipt={} receipts={:?} error={:?} run={} detail={}",
            r.receipt,
            r.receipts,
            r.error,
            serde_json::to_string(&r.run).unwrap(),
            serde_json::to_string(&r.detail).unwrap(),
        ),
        Err(e) => format!("err {e}"),
    };
    format!(
        "{} {:?} {result}",
        serde_json::to_string(&handled.decision).unwrap(),
        handled.events
    )
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

struct Outputs {
    events: String,
    bundle: String,
    outcomes: String,
    state: String,
}

fn run() -> (Outputs, CaptureBundle, Runtime) {
    let config = config();
    let mut session = Session::new("log-bytes", &config, Box::new(MemoryLog::new())).unwrap();
    let mut outcomes = String::new();
    for (index, (at_ms, op)) in steps().iter().enumerate() {
        let handled = session.handle(&format!("e{index}"), *at_ms, op);
        writeln!(outcomes, "{}", outcome_line(&handled)).unwrap();
    }
    let (bundle, runtime) = session.finish();
    let mut events = String::new();
    for event in runtime.log().all() {
        writeln!(events, "{}", serde_json::to_string(event).unwrap()).unwrap();
    }
    let end_ms = parse_rfc3339_ms("2026-04-25T04:00:00Z").unwrap();
    let mut state = String::new();
    for name in runtime.personas().keys() {
        let status = runtime.status(name, end_ms).unwrap();
        writeln!(state, "{}", serde_json::to_string(&status).unwrap()).unwrap();
    }
    writeln!(
        state,
        "{}",
        serde_json::to_string(&runtime.unsettled(end_ms)).unwrap()
    )
    .unwrap();
    writeln!(state, "{}", runtime.pipeline().snapshot()).unwrap();
    writeln!(state, "{}", runtime.processes().snapshot()).unwrap();
    for record in runtime.run_records() {
        writeln!(state, "{}", serde_json::to_string(&record).unwrap()).unwrap();
    }
    // The pinned document is the version 2 form (one JSON document); the
    // version 3 lines are pinned on their own below.
    let mut bundle = bundle;
    bundle.capture_version = CAPTURE_VERSION_2.to_string();
    let outputs = Outputs {
        events,
        bundle: serde_json::to_string_pretty(&bundle).unwrap(),
        outcomes,
        state,
    };
    (outputs, bundle, runtime)
}

/// The messages of replays of damaged copies of `bundle`.
fn tampered_messages(bundle: &CaptureBundle) -> String {
    let mut out = String::new();
    let mut report = |label: &str, bundle: &CaptureBundle| {
        let result = replay(
            bundle,
            ReplayOptions { strict: true },
            Box::new(MemoryLog::new()),
        );
        writeln!(out, "{label}: {result:?}").unwrap();
    };
    let mut effect = bundle.clone();
    effect.decisions[1].effects[2].effect_hash = "0".repeat(64);
    report("effect hash", &effect);
    let mut kind = bundle.clone();
    kind.decisions[2].effects[0].kind = "persona.other".into();
    report("effect kind", &kind);
    let mut missing = bundle.clone();
    missing.decisions[3].effects.pop();
    report("missing effect", &missing);
    let mut extra = bundle.clone();
    let first = extra.decisions[0].effects[0].clone();
    extra.decisions[7].effects.push(first);
    report("extra effect", &extra);
    let mut payload = bundle.clone();
    payload.events[5]
        .payload
        .edit(|payload| payload["trigger"]["kind"] = "changed".into());
    report("payload", &payload);
    let mut garbage = bundle.clone();
    garbage.events[6].payload = serde_json::json!({"trigger": {"persona": 3}}).into();
    garbage.events[6].payload_hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&garbage.events[6].payload).unwrap(),
    ));
    report("garbage payload", &garbage);
    let mut decision = bundle.clone();
    decision.decisions[8].retry_count += 1;
    report("decision", &decision);
    let mut duplicate = bundle.clone();
    duplicate.events[2].event_id = duplicate.events[1].event_id.clone();
    report("duplicate", &duplicate);
    let text = serde_json::to_string(bundle).unwrap();
    for (label, damaged) in [
        ("truncated", text[..text.len() / 2].to_string()),
        (
            "version",
            text.replacen("rehearse-capture/1", "rehearse-capture/9", 1),
        ),
        (
            "numeric version",
            text.replacen("\"rehearse-capture/1\"", "[1, {\"a\": 2.5}]", 1),
        ),
        ("not an object", "[1, 2]".to_string()),
        ("deep", format!("{}{}", "[".repeat(200), "]".repeat(200))),
        ("trailing", format!("{text} x")),
        ("unknown field", text.replacen("{", "{\"extra\": 1, ", 1)),
    ] {
        writeln!(out, "{label}: {:?}", parse_bundle(&damaged).map(|_| ())).unwrap();
    }
    out
}

#[test]
fn the_bytes_of_a_fixed_mixed_workload_are_pinned() {
    let (outputs, bundle, mut runtime) = run();
    // The workload reaches every kind of event the runtime writes.
    for kind in [
        "persona.trigger.received",
        "persona.schedule.fired",
        "persona.lease.conflict",
        "persona.lease.expired",
        "persona.run.failed",
        "persona.trigger.queued",
        "persona.trigger.duplicate",
        "persona.trigger.dead_lettered",
        "persona.budget.exhausted",
        "persona.value.deterministic_execution",
        "persona.value.frontier_escalation",
        "persona.supervision.queue_position",
        "persona.supervision.repair_worker_status",
        "persona.supervision.checkpoint",
        "persona.checkpoint.restore_acked",
    ] {
        assert!(
            outputs.events.contains(&format!("\"kind\":\"{kind}\"")),
            "the workload never writes {kind}"
        );
    }
    assert!(outputs.outcomes.contains("\"decision\":\"defer\""));
    assert!(outputs.outcomes.contains("injected storage fault"));
    assert!(outputs.outcomes.contains("\"retry_count\":1"));
    assert_eq!(runtime.log().len(), 5558);

    let tampered = tampered_messages(&bundle);
    let digests = [
        ("events", sha(&outputs.events)),
        ("bundle", sha(&outputs.bundle)),
        ("outcomes", sha(&outputs.outcomes)),
        ("state", sha(&outputs.state)),
        ("tampered", sha(&tampered)),
    ];
    let expected = [
        (
            "events",
            "e9afa49e37437533b5034147f23ae389ace72649a3376cca6e5a556db21efa8b",
        ),
        (
            "bundle",
            "9be745d52a422e8e241fc89d75db9a20a73107ab8f30e2c516a9ff857634d439",
        ),
        (
            "outcomes",
            "695771be62100e6c355f6e55c1061f8e71d2a2a3647dfc6642f897018e00400c",
        ),
        // The run records in it are `run_record_version` 3, saved in
        // `runs.jsonl` (their `persisted_path`).
        (
            "state",
            "e855c29c0dd63b50c0050e46c35cfd0662090e547a3b7f1d9c5b6da8eef5caaa",
        ),
        (
            "tampered",
            "6ac85a0c1b7dbd8488c3df2f84ccaa505b3758c4b47aa0f723cd9649a9a7fca1",
        ),
    ];
    assert_eq!(
        digests,
        expected.map(|(name, digest)| (name, digest.to_string())),
        "tampered replays:\n{tampered}"
    );

    // The capture replays, and a rebuild folds to the incremental state.
    let text = serde_json::to_string_pretty(&bundle).unwrap();
    let summary = replay(
        &parse_bundle(&text).unwrap(),
        ReplayOptions { strict: true },
        Box::new(MemoryLog::new()),
    )
    .unwrap();
    assert_eq!(summary.effects, runtime.log().all().len());

    // The same capture as version 3 lines replays in one streaming pass to
    // the same summary, and its bytes are pinned too.
    let lines = bundle.to_jsonl();
    assert_eq!(
        hex::encode(Sha256::digest(&lines)),
        "09c85a754bf56a91ec0d9ace149ab54ff582528139a739887e884d8e8821b599",
        "the version 3 capture's bytes moved"
    );
    let OpenedCapture::Stream(stream) = open_capture(lines.as_slice()).unwrap() else {
        panic!("a version 3 capture opens as a stream");
    };
    let streamed = replay_stream(
        *stream,
        ReplayOptions { strict: true },
        Box::new(MemoryLog::new()),
    )
    .unwrap();
    assert_eq!(streamed, summary);
    assert_eq!(
        parse_bundle(std::str::from_utf8(&lines).unwrap())
            .unwrap()
            .events,
        bundle.events
    );

    // The durable log writes the same events, record for record.
    let dir = std::env::temp_dir().join(format!("rehearse-log-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (file_log, _) = FileLog::open(
        &dir,
        FileLogOptions {
            fsync: FsyncPolicy::Never,
        },
    )
    .unwrap();
    replay(&bundle, ReplayOptions { strict: true }, Box::new(file_log)).unwrap();
    let file_bytes = std::fs::read(log_path(&dir)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&file_bytes)),
        "58e0f7743647280fdf2457a22021b58cf16461663a4252403239a49f7fbb6466",
        "the file log's bytes moved"
    );
    let before: Vec<_> = runtime
        .personas()
        .values()
        .map(|p| p.state.clone())
        .collect();
    runtime.rebuild().unwrap();
    let after: Vec<_> = runtime
        .personas()
        .values()
        .map(|p| p.state.clone())
        .collect();
    assert_eq!(before, after);
}
