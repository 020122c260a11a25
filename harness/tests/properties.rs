//! Property tests: random cases hold every invariant of ARCHITECTURE.md, every
//! output type round-trips through its serialised form, the explorer is
//! deterministic, and it finds and shrinks each family's deliberate bug.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rehearse::driver;
use rehearse::explore::{
    case_strategy, check_case, config_strategy, explore, op_strategy, Case, ExploreConfig, Family,
    Generation, Invariant, RuntimeHook, EXPLORE_SCENARIO,
};
use rehearse::scenario::parse_str;
use rehearse_runtime::capture::{CaptureBundle, Session};
use rehearse_runtime::engine::Runtime;
use rehearse_runtime::persona::PersonaStatus;
use rehearse_runtime::test_hooks::Bug;
use rehearse_runtime::{MemoryLog, Op, RuntimeConfig, StoredEvent};

/// Where failing seeds are kept: `harness/proptest-regressions/`, committed,
/// and re-run before any new case.
fn persistence() -> Option<Box<dyn proptest::test_runner::FailurePersistence>> {
    Some(Box::new(FileFailurePersistence::Direct(
        "proptest-regressions/properties.txt",
    )))
}

/// Drives `case` through a capture session and returns the bundle, the
/// status of every persona at the last step's time and the log.
fn captured(case: &Case) -> (CaptureBundle, Vec<PersonaStatus>, Vec<StoredEvent>) {
    let mut session = Session::new(EXPLORE_SCENARIO, &case.config, Box::new(MemoryLog::new()))
        .expect("a generated configuration is valid");
    for (index, (at_ms, op)) in case.steps.iter().enumerate() {
        session.handle(&Case::event_id(index), *at_ms, op);
    }
    let now_ms = case
        .steps
        .last()
        .map_or(case.config.start_ms, |(at, _)| *at);
    let (bundle, runtime) = session.finish();
    let statuses = runtime
        .personas()
        .keys()
        .filter_map(|name| runtime.status(name, now_ms))
        .collect();
    (bundle, statuses, runtime.log().all().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: persistence(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_cases_hold_every_invariant(case in case_strategy(Generation::new(120))) {
        if let Err(violation) = check_case(&case, None) {
            prop_assert!(false, "{violation}\n{case:#?}");
        }
    }

    #[test]
    fn ops_round_trip_through_json_and_yaml(op in op_strategy(true)) {
        let json = serde_json::to_string(&op).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Op>(&json).unwrap(), &op);
        let yaml = serde_yaml::to_string(&op).unwrap();
        prop_assert_eq!(&serde_yaml::from_str::<Op>(&yaml).unwrap(), &op);
    }

    #[test]
    fn configs_round_trip_through_json_and_yaml(config in config_strategy()) {
        let json = serde_json::to_string(&config).unwrap();
        prop_assert_eq!(&serde_json::from_str::<RuntimeConfig>(&json).unwrap(), &config);
        let yaml = serde_yaml::to_string(&config).unwrap();
        prop_assert_eq!(&serde_yaml::from_str::<RuntimeConfig>(&yaml).unwrap(), &config);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: persistence(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn bundles_and_statuses_round_trip_through_json(case in case_strategy(Generation::new(40))) {
        let (bundle, statuses, _) = captured(&case);
        let json = serde_json::to_string_pretty(&bundle).unwrap();
        prop_assert_eq!(&serde_json::from_str::<CaptureBundle>(&json).unwrap(), &bundle);
        for status in statuses {
            let json = serde_json::to_string(&status).unwrap();
            prop_assert_eq!(&serde_json::from_str::<PersonaStatus>(&json).unwrap(), &status);
        }
    }

    /// A case saved as a scenario file reads back as the same case, and the
    /// driver runs it to the log and capture the explorer saw (on the file
    /// backend when the case restarts).
    #[test]
    fn cases_round_trip_through_scenario_files(case in case_strategy(Generation::new(40))) {
        let scenario = case.to_scenario(EXPLORE_SCENARIO, Some("A generated case.".to_string()));
        let yaml = scenario.to_yaml();
        let parsed = parse_str(&yaml, "explore.yaml", "explore")
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        prop_assert_eq!(&parsed, &scenario);
        prop_assert_eq!(parsed.runtime_config(), case.config.clone());
        let output = driver::run(&parsed, "explore.yaml").unwrap();
        let (bundle, _, events) = captured(&case);
        prop_assert_eq!(output.events_jsonl, driver::render_events(&events));
        prop_assert_eq!(output.bundle, bundle);
    }
}

#[test]
fn exploring_the_real_runtime_finds_nothing_and_is_deterministic() {
    let config = ExploreConfig {
        cases: 12,
        seed: 7,
        max_steps: 60,
        ..ExploreConfig::default()
    };
    let mut seen = Vec::new();
    let first = explore(config, |done| seen.push(done)).unwrap_or_else(|c| panic!("{c}"));
    assert_eq!(seen, (1..=12).collect::<Vec<_>>());
    assert_eq!(first.cases, 12);
    assert_eq!(first.seed, 7);
    assert!(first.steps > 0 && first.events > first.steps, "{first:?}");
    let second = explore(config, |_| {}).unwrap_or_else(|c| panic!("{c}"));
    assert_eq!(first, second);
    let other = explore(ExploreConfig { seed: 8, ..config }, |_| {}).unwrap();
    assert_ne!(first.events, other.events);
}

#[test]
fn exploring_no_cases_checks_nothing() {
    let config = ExploreConfig {
        cases: 0,
        ..ExploreConfig::default()
    };
    let summary = explore(config, |_| panic!("no case ran")).unwrap();
    assert_eq!((summary.cases, summary.steps, summary.events), (0, 0, 0));
}

/// Explores with `hook` and asserts a violation of `family` shrunk to at
/// most six steps, that the bug alone makes the shrunk case fail, and
/// returns the violated invariant.
fn finds_bug(hook: RuntimeHook, family: Family) -> Invariant {
    let config = ExploreConfig {
        cases: 64,
        seed: 1,
        max_steps: 120,
        runtime_hook: Some(hook),
    };
    let found = explore(config, |_| {}).expect_err("the deliberate bug went unnoticed");
    assert_eq!(found.violation.invariant.family(), family, "{found}");
    assert!(found.case.steps.len() <= 6, "{found}\n{:#?}", found.case);
    assert!(check_case(&found.case, Some(hook)).is_err());
    assert!(check_case(&found.case, None).is_ok(), "{found}");
    let yaml = found.to_scenario_yaml();
    let scenario =
        parse_str(&yaml, "found.yaml", "found").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(
        scenario.name,
        format!("explore-seed-1-case-{}", found.case_number)
    );
    let description = scenario.description.clone().unwrap_or_default();
    assert!(
        description.contains(found.violation.invariant.name()),
        "{yaml}"
    );
    assert!(
        description.starts_with("Found by `rehearse explore --seed 1`"),
        "{yaml}"
    );
    assert_eq!(scenario.runtime_config(), found.case.config);
    // The saved scenario reproduces the failure through the same driver as
    // `rehearse run`, and passes on the real runtime.
    let with_bug = driver::RunOptions {
        runtime_hook: Some(hook),
        ..driver::RunOptions::default()
    };
    let reproduced = driver::run_with(&scenario, "found.yaml", with_bug).unwrap();
    assert!(!reproduced.passed(), "{yaml}");
    let violation = &reproduced.report.invariant_violations[0];
    assert_eq!(
        violation.invariant,
        found.violation.invariant.name(),
        "{yaml}"
    );
    assert_eq!(violation.step, found.violation.step, "{yaml}");
    assert!(
        driver::run(&scenario, "found.yaml").unwrap().passed(),
        "{yaml}"
    );
    eprintln!("{found}\n{yaml}");
    found.violation.invariant
}

#[test]
fn a_run_admitted_over_run_usd_is_found() {
    fn hook(runtime: &mut Runtime) {
        runtime.set_deliberate_bug(Bug::AdmitOverRunLimit);
    }
    assert_eq!(finds_bug(hook, Family::Budgets), Invariant::RunLimit);
}

#[test]
fn a_run_beside_a_live_lease_is_found() {
    fn hook(runtime: &mut Runtime) {
        runtime.set_deliberate_bug(Bug::SkipLeaseCheck);
    }
    finds_bug(hook, Family::Leases);
}

#[test]
fn completed_work_run_again_is_found() {
    fn hook(runtime: &mut Runtime) {
        runtime.set_deliberate_bug(Bug::CompleteDuplicates);
    }
    assert_eq!(finds_bug(hook, Family::Work), Invariant::WorkKeyOnce);
}

/// A hand-written case: one persona `alpha` with `spec` (YAML of a
/// `PersonaSpec`), steps at offsets in seconds from `start`.
fn written(start: &str, spec: &str, steps: &[(i64, &str)]) -> Case {
    let start_ms = rehearse_runtime::parse_rfc3339_ms(start).unwrap();
    let config = RuntimeConfig {
        start_ms,
        seed: 3,
        personas: [("alpha".to_string(), serde_yaml::from_str(spec).unwrap())].into(),
        supervisor: Default::default(),
    };
    let steps = steps
        .iter()
        .map(|(offset_s, yaml)| {
            let op: Op = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            (start_ms + offset_s * 1_000, op)
        })
        .collect();
    Case { config, steps }
}

/// Each step's receipt (or `error`), after checking that `case` holds
/// every invariant.
fn receipts_of(case: &Case) -> Vec<String> {
    check_case(case, None).unwrap_or_else(|v| panic!("{v}"));
    let mut session = Session::new(EXPLORE_SCENARIO, &case.config, Box::new(MemoryLog::new()))
        .expect("a written configuration is valid");
    case.steps
        .iter()
        .enumerate()
        .map(|(index, (at_ms, op))| {
            let handled = session.handle(&Case::event_id(index), *at_ms, op);
            handled.result.map_or_else(
                |_| "error".to_string(),
                |r| {
                    std::iter::once(r.receipt)
                        .chain(r.receipts)
                        .collect::<Vec<_>>()
                        .join("+")
                },
            )
        })
        .collect()
}

const PR: &str = "trigger: {persona: alpha, provider: github, kind: pull_request, metadata: {repository: a/b, number: 1}";

/// A float-style bug (admission sums the day's spend in binary floating
/// point: 0.1 + 0.2 > 0.3) refuses a run that exact arithmetic admits, and
/// the invariant "no false refusals" reports it; without the bug the run
/// is admitted.
#[test]
fn a_refusal_that_exact_arithmetic_would_admit_is_found() {
    let case = written(
        "2026-04-24T12:00:00Z",
        "{entry_workflow: w, budget: {daily_usd: 0.3}}",
        &[
            (0, &format!("{PR}, cost: {{usd: 0.1}}}}")),
            (
                1,
                &PR.replace("number: 1", "number: 2")
                    .replace("}", "}, cost: {usd: 0.2}}"),
            ),
        ],
    );
    assert_eq!(receipts_of(&case), ["completed", "completed"]);
    fn hook(runtime: &mut Runtime) {
        runtime.set_deliberate_bug(Bug::FloatBudgetSums);
    }
    let violation = check_case(&case, Some(hook)).expect_err("the float bug is reported");
    assert_eq!(
        violation.invariant,
        Invariant::BudgetRefusalExact,
        "{violation}"
    );
    assert_eq!(violation.step, 2, "{violation}");
    assert!(
        violation
            .to_string()
            .contains("admission should have said admit"),
        "{violation}"
    );
}

#[test]
fn a_crashed_lease_is_replaced_exactly_at_its_expiry() {
    let case = written(
        "2026-04-24T12:00:00Z",
        "{entry_workflow: w, lease_ttl: 1m}",
        &[
            (0, &format!("{PR}, outcome: crash}}")),
            (59, &format!("{PR}}}")),
            (60, &format!("{PR}}}")),
            (61, &format!("{PR}}}")),
        ],
    );
    assert_eq!(
        receipts_of(&case),
        ["crashed", "lease_busy", "completed", "duplicate"]
    );
}

#[test]
fn spend_at_the_limit_and_across_midnight_is_admitted_exactly() {
    let spend = |usd: &str| format!("spend: {{persona: alpha, usd: {usd}, tokens: 5}}");
    let case = written(
        "2026-04-24T23:59:00Z",
        "{entry_workflow: w, budget: {daily_usd: 0.02, hourly_usd: 0.03, max_tokens: 10}}",
        &[
            (0, &spend("0.02")),
            (1, &spend("0")),
            (2, &spend("0.001")),
            (3, &format!("{PR}, cost: {{usd: 0, tokens: 6}}}}")),
            (60, &format!("{PR}, cost: {{usd: 0.02, tokens: 10}}}}")),
        ],
    );
    assert_eq!(
        receipts_of(&case),
        ["ok", "ok", "error", "budget_exhausted", "completed"]
    );
}

#[test]
fn work_queued_while_paused_runs_once_per_resume() {
    let linear = |key: &str, usd: &str| {
        format!("trigger: {{persona: alpha, provider: linear, kind: issue, metadata: {{issue_key: {key}}}, cost: {{usd: {usd}}}}}")
    };
    let case = written(
        "2026-04-24T12:00:00Z",
        "{entry_workflow: w, budget: {run_usd: 0.01}}",
        &[
            (0, "pause: alpha"),
            (1, &linear("A", "0.01")),
            (2, &linear("B", "0.02")),
            (3, &linear("A", "0.01")),
            (4, "resume: alpha"),
            (5, "resume: alpha"),
            (6, &linear("A", "0.01")),
        ],
    );
    assert_eq!(
        receipts_of(&case),
        [
            "ok",
            "queued",
            "queued",
            "queued",
            "ok+completed+budget_exhausted",
            "ok+budget_exhausted",
            "duplicate"
        ]
    );
}

#[test]
fn a_stale_process_token_is_refused_after_a_new_claim() {
    let case = written(
        "2026-04-24T12:00:00Z",
        "{entry_workflow: w}",
        &[
            (0, "process: {start: {id: p1, input: {type: engine, kind: build}, recovery: rerunnable}}"),
            (0, "process: {claim: {id: p1, owner: w0, ttl: 1s}}"),
            (2, "process: {claim: {id: p1, owner: w1, ttl: 1m}}"),
            (3, "process: {heartbeat: {id: p1, lease_token: {of: w0}}}"),
            (4, "process: {complete: {id: p1, lease_token: {of: w1}}}"),
        ],
    );
    assert_eq!(receipts_of(&case), ["ok", "ok", "ok", "error", "ok"]);
}
