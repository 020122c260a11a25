//! The persona runtime's reference behaviour: receipts and the exact events
//! behind them, the worked budget figures of docs/SCENARIOS.md, budget and lease edges,
//! determinism and rebuild equivalence.

use std::collections::BTreeMap;

use rehearse_runtime::config::{BudgetPolicy, PersonaSpec, RuntimeConfig};
use rehearse_runtime::engine::{RunPlan, Runtime, RuntimeError};
use rehearse_runtime::op::{AttemptOutcome, FailKind, Op};
use rehearse_runtime::persona::Persona;
use rehearse_runtime::{parse_rfc3339_ms, MemoryLog, Millis};

const START: &str = "2026-04-24T12:00:00Z";

fn at(offset: &str) -> i64 {
    parse_rfc3339_ms(START).unwrap() + Millis::parse(offset).unwrap().as_i64()
}

fn spec(budget: BudgetPolicy) -> PersonaSpec {
    PersonaSpec {
        entry_workflow: "workflows/merge.harn#run".into(),
        budget,
        ..PersonaSpec::default()
    }
}

fn runtime_with(specs: Vec<(&str, PersonaSpec)>) -> Runtime {
    let config = RuntimeConfig {
        start_ms: at("0s"),
        seed: 7,
        personas: specs.into_iter().map(|(n, s)| (n.to_string(), s)).collect(),
        supervisor: Default::default(),
    };
    Runtime::new(&config, Box::new(MemoryLog::new())).unwrap()
}

fn runtime(budget: BudgetPolicy) -> Runtime {
    runtime_with(vec![("mc", spec(budget))])
}

fn op(yaml: &str) -> Op {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

/// Runs `yaml` at `offset` and returns the receipt and the kinds it appended.
fn step(rt: &mut Runtime, offset: &str, yaml: &str) -> (String, Vec<String>) {
    step_plan(rt, offset, yaml, RunPlan::COMPLETE)
}

fn step_plan(rt: &mut Runtime, offset: &str, yaml: &str, plan: RunPlan) -> (String, Vec<String>) {
    let (result, range) = rt.execute(&op(yaml), plan, at(offset)).unwrap();
    let kinds = rt.log().all()[range]
        .iter()
        .map(|e| e.kind.trim_start_matches("persona.").to_string())
        .collect();
    (result.receipt, kinds)
}

fn pr(number: u32, usd: f64) -> String {
    format!("trigger: {{persona: mc, provider: github, kind: pull_request, metadata: {{repository: o/r, number: {number}}}, cost: {{usd: {usd}, tokens: 1}}}}")
}

const RUN: [&str; 7] = [
    "lease.acquired",
    "run.started",
    "value.run_started",
    "budget.recorded",
    "value.run_completed",
    "run.completed",
    "lease.released",
];

fn with_received(middle: &[&str], tail: &[&str]) -> Vec<String> {
    std::iter::once("trigger.received")
        .chain(middle.iter().copied())
        .chain(tail.iter().copied())
        .map(String::from)
        .collect()
}

#[test]
fn completed_appends_the_whole_run_then_the_receipt() {
    let mut rt = runtime(BudgetPolicy::default());
    let (receipt, kinds) = step(&mut rt, "0s", &pr(1, 0.0));
    assert_eq!(receipt, "completed");
    assert_eq!(kinds, with_received(&RUN, &["supervision.receipt"]));
}

#[test]
fn queued_while_paused_reports_queue_position() {
    let mut rt = runtime(BudgetPolicy::default());
    assert_eq!(step(&mut rt, "0s", "pause: mc").1, ["control.paused"]);
    let (receipt, kinds) = step(&mut rt, "1s", &pr(1, 0.0));
    assert_eq!(receipt, "queued");
    assert_eq!(
        kinds,
        with_received(
            &["trigger.queued"],
            &["supervision.queue_position", "supervision.receipt"]
        )
    );
    let position = &rt.log().all()[rt.log().all().len() - 2].payload;
    assert_eq!(
        (
            position["position"].as_i64(),
            position["queue_depth"].as_i64()
        ),
        (Some(1), Some(1))
    );
}

#[test]
fn dead_lettered_while_disabled() {
    let mut rt = runtime(BudgetPolicy::default());
    step(&mut rt, "0s", "disable: mc");
    let (receipt, kinds) = step(&mut rt, "1s", &pr(1, 0.0));
    assert_eq!(receipt, "dead_lettered");
    assert_eq!(
        kinds,
        with_received(&["trigger.dead_lettered"], &["supervision.receipt"])
    );
    let status = rt.status("mc", at("1s")).unwrap();
    assert_eq!(status.disabled_events, 1);
}

#[test]
fn budget_exhausted_appends_the_refusal() {
    let mut rt = runtime(BudgetPolicy {
        run_usd: Some(0.01),
        ..Default::default()
    });
    let (receipt, kinds) = step(&mut rt, "0s", &pr(1, 0.02));
    assert_eq!(receipt, "budget_exhausted");
    assert_eq!(
        kinds,
        with_received(&["budget.exhausted"], &["supervision.receipt"])
    );
}

#[test]
fn duplicate_of_a_completed_work_key() {
    let mut rt = runtime(BudgetPolicy::default());
    step(&mut rt, "0s", &pr(1, 0.0));
    let (receipt, kinds) = step(&mut rt, "1s", &pr(1, 0.0));
    assert_eq!(receipt, "duplicate");
    assert_eq!(
        kinds,
        with_received(&["trigger.duplicate"], &["supervision.receipt"])
    );
}

#[test]
fn lease_busy_while_a_crashed_run_holds_the_lease() {
    let mut rt = runtime(BudgetPolicy::default());
    let crash = RunPlan {
        outcome: AttemptOutcome::Crash,
    };
    let (receipt, kinds) = step_plan(&mut rt, "0s", &pr(1, 0.0), crash);
    assert_eq!(receipt, "crashed");
    assert_eq!(
        kinds,
        with_received(&["lease.acquired", "run.started"], &["supervision.receipt"])
    );
    let (receipt, kinds) = step(&mut rt, "4m59s", &pr(2, 0.0));
    assert_eq!(receipt, "lease_busy");
    assert_eq!(
        kinds,
        with_received(&["lease.conflict"], &["supervision.receipt"])
    );
    // At exactly acquisition + TTL the lease has lapsed: it is expired, then replaced.
    let (receipt, kinds) = step(&mut rt, "5m", &pr(2, 0.0));
    assert_eq!(receipt, "completed");
    let mut expected = vec!["lease.expired"];
    expected.extend(RUN);
    assert_eq!(kinds, with_received(&expected, &["supervision.receipt"]));
}

#[test]
fn failed_run_spends_releases_and_records_the_error() {
    let mut rt = runtime(BudgetPolicy::default());
    let fail = RunPlan {
        outcome: AttemptOutcome::Fail(FailKind::SemanticError),
    };
    let (receipt, kinds) = step_plan(&mut rt, "0s", &pr(1, 0.01), fail);
    assert_eq!(receipt, "failed");
    assert_eq!(
        kinds,
        with_received(
            &[
                "lease.acquired",
                "run.started",
                "value.run_started",
                "budget.recorded",
                "lease.released",
                "run.failed"
            ],
            &["supervision.receipt"]
        )
    );
    let status = rt.status("mc", at("0s")).unwrap();
    assert_eq!(serde_json::to_value(status.state).unwrap(), "failed");
    assert_eq!(status.last_error.as_deref(), Some("semantic_error"));
    assert_eq!(status.budget.spent_today_usd, 0.01);
}

fn seed_binding(budget: BudgetPolicy) -> PersonaSpec {
    PersonaSpec {
        schedules: vec!["*/30 * * * *".into()],
        ..spec(budget)
    }
}

#[test]
fn seed_figures_tick_at_half_past_completes_and_schedules_the_next() {
    let mut rt = runtime_with(vec![(
        "mc",
        seed_binding(BudgetPolicy {
            daily_usd: Some(0.02),
            run_usd: Some(0.02),
            max_tokens: Some(100),
            ..Default::default()
        }),
    )]);
    let (receipt, _) = step(
        &mut rt,
        "30m",
        "tick: {persona: mc, cost: {usd: 0.01, tokens: 1}}",
    );
    assert_eq!(receipt, "completed");
    let status = rt.status("mc", at("30m")).unwrap();
    assert_eq!(serde_json::to_value(status.state).unwrap(), "idle");
    assert_eq!(status.last_run.as_deref(), Some("2026-04-24T12:30:00Z"));
    assert_eq!(
        status.next_scheduled_run.as_deref(),
        Some("2026-04-24T13:00:00Z")
    );
    assert_eq!(status.budget.spent_today_usd, 0.01);
}

#[test]
fn seed_figures_daily_limit_refuses_a_linear_trigger() {
    let mut rt = runtime(BudgetPolicy {
        daily_usd: Some(0.01),
        ..Default::default()
    });
    let (receipt, _) = step(&mut rt, "0s", "trigger: {persona: mc, provider: linear, kind: issue, metadata: {issue_key: ENG-1}, cost: {usd: 0.02}}");
    assert_eq!(receipt, "budget_exhausted");
    let status = rt.status("mc", at("0s")).unwrap();
    assert_eq!(status.budget.reason.map(|r| r.as_str()), Some("daily_usd"));
    assert_eq!(
        status.last_error.as_deref(),
        Some("persona budget exhausted: daily_usd")
    );
}

#[test]
fn seed_figures_queued_item_refused_on_resume_stays_queued() {
    let mut rt = runtime(BudgetPolicy {
        run_usd: Some(0.01),
        ..Default::default()
    });
    step(&mut rt, "0s", "pause: mc");
    assert_eq!(step(&mut rt, "1s", &pr(1, 0.02)).0, "queued");
    let (result, _) = rt
        .execute(&op("resume: mc"), RunPlan::COMPLETE, at("2s"))
        .unwrap();
    assert_eq!(result.receipts, ["budget_exhausted"]);
    let status = rt.status("mc", at("2s")).unwrap();
    assert_eq!(status.budget.reason.map(|r| r.as_str()), Some("run_usd"));
    assert_eq!(status.queued_events, 1);
}

#[test]
fn resume_drains_in_work_key_order_with_stored_cost() {
    let mut rt = runtime(BudgetPolicy::default());
    step(&mut rt, "0s", "pause: mc");
    step(&mut rt, "1s", &pr(9, 0.5));
    step(&mut rt, "2s", &pr(10, 0.25));
    let (result, range) = rt
        .execute(&op("resume: mc"), RunPlan::COMPLETE, at("3s"))
        .unwrap();
    assert_eq!(result.receipts, ["completed", "completed"]);
    let started: Vec<_> = rt.log().all()[range.clone()]
        .iter()
        .filter(|e| e.kind == "persona.run.started")
        .map(|e| e.payload["work_key"].as_str().unwrap().to_string())
        .collect();
    // Work-key order is string order: "pr:10" sorts before "pr:9".
    assert_eq!(started, ["github:o/r:pr:10", "github:o/r:pr:9"]);
    let status = rt.status("mc", at("3s")).unwrap();
    assert_eq!(status.budget.spent_today_usd, 0.25 + 0.5);
    assert_eq!(status.queued_events, 0);
}

#[test]
fn exactly_at_the_limit_status_is_exhausted_but_a_free_run_is_admitted() {
    let mut rt = runtime(BudgetPolicy {
        daily_usd: Some(0.02),
        ..Default::default()
    });
    assert_eq!(step(&mut rt, "0s", &pr(1, 0.02)).0, "completed");
    let status = rt.status("mc", at("0s")).unwrap();
    assert!(status.budget.exhausted);
    assert_eq!(status.budget.reason.map(|r| r.as_str()), Some("daily_usd"));
    assert_eq!(step(&mut rt, "1s", &pr(2, 0.0)).0, "completed");
    assert_eq!(step(&mut rt, "2s", &pr(3, 0.001)).0, "budget_exhausted");
}

#[test]
fn the_day_boundary_resets_daily_spend() {
    // 11h59m after noon is 23:59; the next day starts a minute later.
    let mut rt = runtime(BudgetPolicy {
        daily_usd: Some(0.02),
        ..Default::default()
    });
    assert_eq!(step(&mut rt, "11h59m", &pr(1, 0.02)).0, "completed");
    assert_eq!(
        step(&mut rt, "11h59m59s", &pr(2, 0.01)).0,
        "budget_exhausted"
    );
    assert_eq!(step(&mut rt, "12h", &pr(3, 0.01)).0, "completed");
    let status = rt.status("mc", at("12h")).unwrap();
    assert_eq!(status.budget.spent_today_usd, 0.01);
    // The refusal just before midnight stays as the sticky reason.
    assert_eq!(status.budget.reason.map(|r| r.as_str()), Some("daily_usd"));
}

#[test]
fn the_hour_boundary_resets_hourly_spend() {
    let mut rt = runtime(BudgetPolicy {
        hourly_usd: Some(0.01),
        ..Default::default()
    });
    assert_eq!(step(&mut rt, "59m", &pr(1, 0.01)).0, "completed");
    assert_eq!(step(&mut rt, "59m59s", &pr(2, 0.005)).0, "budget_exhausted");
    assert_eq!(step(&mut rt, "1h", &pr(3, 0.005)).0, "completed");
    assert_eq!(
        rt.status("mc", at("1h"))
            .unwrap()
            .budget
            .spent_this_hour_usd,
        0.005
    );
}

#[test]
fn budget_is_checked_before_duplicates() {
    let mut rt = runtime(BudgetPolicy {
        run_usd: Some(0.01),
        ..Default::default()
    });
    assert_eq!(step(&mut rt, "0s", &pr(1, 0.01)).0, "completed");
    assert_eq!(step(&mut rt, "1s", &pr(1, 0.02)).0, "budget_exhausted");
    assert_eq!(step(&mut rt, "2s", &pr(1, 0.01)).0, "duplicate");
}

#[test]
fn repair_worker_and_checkpoint_reports_are_idempotent() {
    let mut rt = runtime(BudgetPolicy::default());
    let report = "repair_worker: {persona: mc, id: w1, lifecycle: running}";
    assert_eq!(
        step(&mut rt, "0s", report),
        (
            "recorded".into(),
            vec![
                "repair_worker.status".into(),
                "supervision.repair_worker_status".into()
            ]
        )
    );
    assert_eq!(step(&mut rt, "1s", report), ("unchanged".into(), vec![]));
    assert_eq!(
        step(
            &mut rt,
            "2s",
            "repair_worker: {persona: mc, id: w1, lifecycle: succeeded}"
        )
        .0,
        "recorded"
    );
    let restore = "restore_checkpoint: {persona: mc, checkpoint_id: c1}";
    assert_eq!(
        step(&mut rt, "3s", restore),
        (
            "acked".into(),
            vec![
                "checkpoint.restore_acked".into(),
                "supervision.checkpoint".into()
            ]
        )
    );
    assert_eq!(
        step(&mut rt, "4s", restore),
        ("already_acked".into(), vec![])
    );
}

#[test]
fn bad_bindings_and_triggers_are_errors() {
    assert!(
        matches!(Persona::new("", spec(BudgetPolicy::default())), Err(e) if e.to_string() == "persona name is empty")
    );
    let negative = Persona::new(
        "mc",
        spec(BudgetPolicy {
            daily_usd: Some(-1.0),
            ..Default::default()
        }),
    )
    .unwrap_err();
    assert_eq!(
        negative.to_string(),
        "persona `mc`: budget.daily_usd is -1, expected a non-negative amount"
    );
    let cron = Persona::new(
        "mc",
        PersonaSpec {
            schedules: vec!["every day".into()],
            ..spec(BudgetPolicy::default())
        },
    )
    .unwrap_err();
    assert!(
        cron.to_string()
            .starts_with("persona `mc`: invalid cron expression `every day`"),
        "{cron}"
    );
    let mut rt = runtime(BudgetPolicy::default());
    let empty_key = rt.execute(
        &op("trigger: {persona: mc, provider: x, kind: y, metadata: {'': v}}"),
        RunPlan::COMPLETE,
        at("0s"),
    );
    assert_eq!(
        empty_key.unwrap_err().to_string(),
        "invalid trigger: metadata key `` is empty"
    );
    let unknown = rt.execute(&op("pause: nobody"), RunPlan::COMPLETE, at("0s"));
    assert_eq!(
        unknown.unwrap_err(),
        RuntimeError::UnknownPersona("nobody".into())
    );
    assert!(rt.log().is_empty(), "refused operations append nothing");
}

#[test]
fn an_injected_fault_leaves_no_trace() {
    let mut rt = runtime(BudgetPolicy {
        daily_usd: Some(1.0),
        ..Default::default()
    });
    step(&mut rt, "0s", &pr(1, 0.25));
    let before = rt.status("mc", at("1s")).unwrap();
    let len = rt.log().len();
    rt.inject_append_faults(1);
    let error = rt
        .execute(&op(&pr(2, 0.25)), RunPlan::COMPLETE, at("1s"))
        .unwrap_err();
    assert_eq!(error.to_string(), "append failed: injected storage fault");
    assert_eq!(rt.log().len(), len);
    assert_eq!(rt.status("mc", at("1s")).unwrap(), before);
    assert_eq!(step(&mut rt, "2s", &pr(2, 0.25)).0, "completed");
}

/// A long mixed sequence over two personas.
fn mixed_sequence() -> Vec<(String, String, RunPlan)> {
    let mut steps = Vec::new();
    let plans = [
        RunPlan::COMPLETE,
        RunPlan {
            outcome: AttemptOutcome::Crash,
        },
        RunPlan {
            outcome: AttemptOutcome::Fail(FailKind::NetworkTimeout),
        },
    ];
    for i in 0..240u32 {
        let persona = if i % 3 == 0 { "b" } else { "mc" };
        let offset = format!("{}s", u64::from(i) * 97);
        let yaml = match i % 11 {
            0 => format!("pause: {persona}"),
            4 => format!("resume: {persona}"),
            7 => format!("spend: {{persona: {persona}, usd: 0.001, tokens: 2}}"),
            9 if i % 5 == 0 => format!("disable: {persona}"),
            10 => format!("tick: {{persona: {persona}, cost: {{usd: 0.002}}}}"),
            _ => format!(
                "trigger: {{persona: {persona}, provider: github, kind: pr, metadata: {{repository: o/r, number: {}}}, cost: {{usd: 0.003, tokens: 3, deterministic_steps: 1}}}}",
                i % 17
            ),
        };
        steps.push((offset, yaml, plans[(i as usize) % plans.len()]));
    }
    steps
}

fn two_personas() -> Runtime {
    let budget = BudgetPolicy {
        daily_usd: Some(0.2),
        hourly_usd: Some(0.05),
        max_tokens: Some(400),
        ..Default::default()
    };
    runtime_with(vec![
        ("mc", seed_binding(budget.clone())),
        (
            "b",
            PersonaSpec {
                lease_ttl: Some(Millis(200_000)),
                ..spec(budget)
            },
        ),
    ])
}

#[test]
fn incremental_status_equals_a_rebuild_after_every_operation() {
    let mut rt = two_personas();
    for (offset, yaml, plan) in mixed_sequence() {
        rt.execute(&op(&yaml), plan, at(&offset)).unwrap();
        let now = at(&offset);
        let incremental: BTreeMap<_, _> = ["mc", "b"]
            .iter()
            .map(|n| (n.to_string(), rt.status(n, now).unwrap()))
            .collect();
        let mut rebuilt = Runtime::new(
            rt.config(),
            Box::new(MemoryLog::from_stored(rt.log().all().to_vec()).unwrap()),
        )
        .unwrap();
        rebuilt.rebuild().unwrap();
        for (name, status) in &incremental {
            assert_eq!(
                &rebuilt.status(name, now).unwrap(),
                status,
                "after `{yaml}` at {offset}"
            );
        }
    }
}

#[test]
fn the_same_inputs_give_byte_identical_logs() {
    let run = || {
        let mut rt = two_personas();
        for (offset, yaml, plan) in mixed_sequence() {
            rt.execute(&op(&yaml), plan, at(&offset)).unwrap();
        }
        rt.log()
            .all()
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect::<String>()
    };
    let first = run();
    assert!(first.len() > 10_000, "the sequence should do real work");
    assert_eq!(first, run());
}

#[test]
fn pipeline_steps_run_through_the_runtime_and_unsettled_counts_queued_work() {
    let mut rt = runtime(BudgetPolicy::default());
    step(&mut rt, "0s", "pause: mc");
    step(&mut rt, "1s", &pr(1, 0.0));
    assert_eq!(
        step(&mut rt, "2s", "handoff: {to: review, payload: {pr: 1}}"),
        ("envelope_1".into(), vec!["partial_handoff_recorded".into()])
    );
    let counts = rt.unsettled(at("2s")).counts();
    assert_eq!((counts["queued"], counts["partial"]), (1, 1));
    assert_eq!(
        step(
            &mut rt,
            "3s",
            "ack_handoff: {envelope: envelope_1, decision: accepted}"
        )
        .0,
        "acked"
    );
    let error = rt
        .execute(
            &op("ack_handoff: {envelope: envelope_1, decision: accepted}"),
            RunPlan::COMPLETE,
            at("4s"),
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "partial handoff envelope `envelope_1` was already acknowledged with decision `accepted`"
    );
    step(&mut rt, "5s", "resume: mc");
    assert!(rt.unsettled(at("5s")).is_empty());
    let records = rt.run_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].work_key, "github:o/r:pr:1");
}

/// A runtime that skips the value receipts (as replay does) decides, logs
/// and hashes exactly as one that keeps them; only status's receipt list
/// differs.
#[test]
fn skipping_value_receipts_changes_nothing_but_status_receipts() {
    let budget = BudgetPolicy {
        daily_usd: Some(1.0),
        ..BudgetPolicy::default()
    };
    let mut keeping = runtime(budget.clone());
    let mut skipping = runtime(budget);
    skipping.skip_value_receipts();
    let steps = [
        ("0s", pr(1, 0.25), RunPlan::COMPLETE),
        (
            "1s",
            pr(2, 0.25),
            RunPlan {
                outcome: AttemptOutcome::Fail(FailKind::RuntimeError),
            },
        ),
        ("2s", pr(1, 0.25), RunPlan::COMPLETE),
        ("3s", "pause: mc".to_string(), RunPlan::COMPLETE),
        ("4s", pr(3, 0.25), RunPlan::COMPLETE),
        ("5s", "resume: mc".to_string(), RunPlan::COMPLETE),
        ("6s", pr(4, 0.9), RunPlan::COMPLETE),
    ];
    for (offset, yaml, plan) in &steps {
        let kept = keeping.execute(&op(yaml), *plan, at(offset));
        let skipped = skipping.execute(&op(yaml), *plan, at(offset));
        assert_eq!(kept, skipped, "{offset} {yaml}");
    }
    assert_eq!(keeping.log().all(), skipping.log().all());
    let digests = |rt: &Runtime| {
        rt.log()
            .all()
            .iter()
            .map(|e| *e.digest())
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(&keeping), digests(&skipping));
    let kept = keeping.status("mc", at("7s")).unwrap();
    let skipped = skipping.status("mc", at("7s")).unwrap();
    assert!(!kept.value_receipts.is_empty());
    assert!(skipped.value_receipts.is_empty());
    assert_eq!(
        rehearse_runtime::persona::PersonaStatus {
            value_receipts: Vec::new(),
            ..kept
        },
        skipped
    );
}
