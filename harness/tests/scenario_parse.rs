//! The scenario parser reads the format's example with its values, refuses
//! garbage with positioned errors instead of panics, round-trips through
//! YAML, and accepts the `rehearse new` starter.

use std::collections::BTreeMap;

use rehearse::scenario::{
    json_schema, json_schema_text, parse_scenario, parse_str, validate, At, Decision, Expect,
    Position, Scenario, ScenarioError, Step, Termination, MAX_FILE_BYTES, PARALLEL_LAYOUT_BYTES,
    SCHEMA_URL,
};
use rehearse::starter::{starter, write_starter, NewError};
use rehearse_runtime::op::{
    Attempt, Cost, FailKind, FaultMode, FaultOp, Op, Outcome, PumpOp, RestartOp, SpendOp, TickOp,
    TriggerOp,
};
use rehearse_runtime::{parse_rfc3339_ms, BudgetPolicy, Constraints, Millis};

/// The example file of SCENARIOS.md, as the contract writes it.
const EXAMPLE: &str = r#"version: 1                       # required, the format version
name: pause-resume-drain         # optional; default: the file stem; [a-z0-9_-]+
description: Work queued while paused runs once on resume.
start: 2026-04-24T12:00:00Z      # required, RFC3339 UTC: the scenario clock's origin
seed: 7                          # optional, default 0: the source of every generated id

personas:                        # name -> binding
  merge_captain:
    entry_workflow: workflows/merge.harn#run
    template_ref: software_factory@v0          # optional
    schedules: ["*/30 * * * *"]                # optional cron expressions
    budget: { daily_usd: 0.02, run_usd: 0.02, max_tokens: 100 }   # hourly_usd too; all optional
    lease_ttl: 5m                              # optional, default 5m

supervisor:                      # optional; absent = no limits and max_retries 0
  max_in_flight: 1
  max_per_window: 2
  rate_window: 10s
  deadline: 30s
  max_retries: 2

steps:
  - at: 0s                        # offset from start (ms, s, m, h, d) or RFC3339; never decreasing
    pause: merge_captain
  - at: 1s
    trigger:
      persona: merge_captain
      provider: github
      kind: pull_request
      metadata: { repository: burin-labs/harn, number: "462" }
      cost: { usd: 0.01, tokens: 10 }         # what the run spends; default zero (see "Cost")
      outcome: completed                      # see "Outcomes"
    expect: { receipt: queued }               # inline expectation on this step
  - at: 2s
    resume: merge_captain
    expect: { receipts: [completed] }         # one receipt per drained item, in drain order
  - at: 30m
    tick: { persona: merge_captain }          # fire the persona's first schedule now
  - at: 31m
    spend: { persona: merge_captain, usd: 0.005, tokens: 3 }
  - at: 32m
    disable: merge_captain
  - at: 33m
    pump: {}                                  # supervisor pump: run the earliest due deferred episode
  - at: 40m
    expect:
      persona: merge_captain
      status: { state: disabled, queued_events: 0, budget.spent_today_usd: 0.015 }
"#;

fn start_ms() -> i64 {
    parse_rfc3339_ms("2026-04-24T12:00:00Z").unwrap()
}

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    parse_str(text, "scenarios/test.yaml", "test")
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("parsed, expected an error:\n{text}"),
        Err(error) => error.to_string(),
    }
}

const HEAD: &str = "version: 1\nstart: 2026-04-24T12:00:00Z\npersonas:\n  a: {entry_workflow: w}\n";

#[test]
fn the_format_example_parses_with_its_values() {
    let scenario = parse(EXAMPLE).unwrap();
    assert_eq!(scenario.version, 1);
    assert_eq!(scenario.name, "pause-resume-drain");
    assert_eq!(
        scenario.description.as_deref(),
        Some("Work queued while paused runs once on resume.")
    );
    assert_eq!(scenario.start_ms, start_ms());
    assert_eq!(scenario.seed, 7);

    let persona = &scenario.personas["merge_captain"];
    assert_eq!(persona.entry_workflow, "workflows/merge.harn#run");
    assert_eq!(persona.template_ref.as_deref(), Some("software_factory@v0"));
    assert_eq!(persona.schedules, vec!["*/30 * * * *".to_owned()]);
    assert_eq!(
        persona.budget,
        BudgetPolicy {
            daily_usd: Some(0.02),
            hourly_usd: None,
            run_usd: Some(0.02),
            max_tokens: Some(100),
        }
    );
    assert_eq!(persona.lease_ttl, Some(Millis(300_000)));
    assert_eq!(
        scenario.persona_positions["merge_captain"],
        Position { line: 8, column: 3 }
    );

    assert_eq!(
        scenario.supervisor,
        Some(Constraints {
            max_in_flight: Some(1),
            max_per_window: Some(2),
            rate_window: Some(Millis(10_000)),
            deadline: Some(Millis(30_000)),
            max_retries: 2,
        })
    );

    let steps = &scenario.steps;
    assert_eq!(steps.len(), 8);
    let offsets: Vec<i64> = steps.iter().map(|step| step.at_ms - start_ms()).collect();
    assert_eq!(
        offsets,
        vec![0, 1_000, 2_000, 1_800_000, 1_860_000, 1_920_000, 1_980_000, 2_400_000]
    );
    let lines: Vec<(usize, usize)> = steps.iter().map(|step| (step.line, step.column)).collect();
    assert_eq!(
        lines,
        vec![
            (23, 5),
            (25, 5),
            (34, 5),
            (37, 5),
            (39, 5),
            (41, 5),
            (43, 5),
            (45, 5)
        ]
    );
    assert_eq!(steps[0].at, At::Offset(Millis(0)));
    assert_eq!(steps[0].op, Some(Op::Pause("merge_captain".into())));
    assert_eq!(steps[0].expect, None);

    let Some(Op::Trigger(trigger)) = &steps[1].op else {
        panic!("step 1 is not a trigger: {:?}", steps[1].op);
    };
    assert_eq!(trigger.persona, "merge_captain");
    assert_eq!(trigger.provider, "github");
    assert_eq!(trigger.kind, "pull_request");
    assert_eq!(
        *trigger.metadata,
        BTreeMap::from([
            ("number".to_owned(), "462".to_owned()),
            ("repository".to_owned(), "burin-labs/harn".to_owned()),
        ])
    );
    assert_eq!(trigger.cost.usd, 0.01);
    assert_eq!(trigger.cost.tokens, 10);
    assert_eq!(trigger.outcome, Outcome::Completed);
    assert_eq!(
        steps[1].expect.as_ref().unwrap().receipt.as_deref(),
        Some("queued")
    );

    assert_eq!(steps[2].op, Some(Op::Resume("merge_captain".into())));
    assert_eq!(
        steps[2].expect.as_ref().unwrap().receipts,
        Some(vec!["completed".to_owned()])
    );
    assert_eq!(
        steps[3].op,
        Some(Op::Tick(TickOp {
            persona: "merge_captain".into(),
            cost: Cost::default(),
            outcome: Outcome::Completed,
            duration: Millis(0),
        }))
    );
    assert_eq!(
        steps[4].op,
        Some(Op::Spend(SpendOp {
            persona: "merge_captain".into(),
            usd: 0.005,
            tokens: 3,
        }))
    );
    assert_eq!(steps[5].op, Some(Op::Disable("merge_captain".into())));
    assert_eq!(steps[6].op, Some(Op::Pump(PumpOp {})));

    assert_eq!(steps[7].op, None);
    let expect = steps[7].expect.as_ref().unwrap();
    assert_eq!(expect.persona.as_deref(), Some("merge_captain"));
    assert_eq!(
        expect.status,
        BTreeMap::from([
            (
                "budget.spent_today_usd".to_owned(),
                serde_json::json!(0.015)
            ),
            ("queued_events".to_owned(), serde_json::json!(0)),
            ("state".to_owned(), serde_json::json!("disabled")),
        ])
    );
    assert!(validate(&scenario).is_empty());
    assert!(!scenario.has_restart());
    assert_eq!(scenario.runtime_config().supervisor.max_retries, 2);
}

#[test]
fn defaults_fill_in_name_seed_personas_and_steps() {
    let scenario = parse_str(
        "version: 1\nstart: 2026-04-24T12:00:00Z\n",
        "x/quiet-day.yaml",
        "quiet-day",
    )
    .unwrap();
    assert_eq!(scenario.name, "quiet-day");
    assert_eq!(scenario.seed, 0);
    assert!(scenario.personas.is_empty());
    assert_eq!(scenario.supervisor, None);
    assert!(scenario.steps.is_empty());
    assert_eq!(scenario.runtime_config().supervisor, Constraints::default());
}

#[test]
fn absolute_times_and_expect_only_steps_resolve() {
    let text = format!(
        "{HEAD}steps:\n  - at: 2026-04-24T12:00:01.5Z\n    tick: {{persona: a}}\n    expect: {{decision: defer, schedule_at: 10s, retry_count: 0, termination: failed:runtime_error}}\n  - at: 2s\n    expect: {{unsettled: {{queued: 0, partial: 1}}}}\n"
    );
    let scenario = parse(&text).unwrap();
    assert_eq!(scenario.steps[0].at_ms, start_ms() + 1_500);
    assert_eq!(scenario.steps[0].at, At::Time(start_ms() + 1_500));
    let expect = scenario.steps[0].expect.as_ref().unwrap();
    assert_eq!(expect.decision, Some(Decision::Defer));
    assert_eq!(
        expect.schedule_at_ms(scenario.start_ms),
        Some(start_ms() + 10_000)
    );
    assert_eq!(expect.retry_count, Some(0));
    assert_eq!(
        expect.termination,
        Some(Termination::Failed(FailKind::RuntimeError))
    );
    assert_eq!(scenario.steps[1].at_ms, start_ms() + 2_000);
    assert_eq!(scenario.steps[1].op, None);
    assert_eq!(
        scenario.steps[1].expect.as_ref().unwrap().unsettled,
        BTreeMap::from([("partial".to_owned(), 1), ("queued".to_owned(), 0)])
    );
}

#[test]
fn errors_name_the_file_line_column_and_what_was_expected() {
    let cases: [(&str, &str); 12] = [
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\npersonas:\n  a:\n    entry_workflow: w\n    ttl: 5m\n",
            "scenarios/test.yaml:6:5: unknown field `ttl`, expected one of `entry_workflow`, `template_ref`, `schedules`, `triggers`, `budget`, `lease_ttl`, `stages`",
        ),
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\nseed: seven\n",
            "scenarios/test.yaml:3:7: invalid type: string \"seven\", expected a whole number of at least 0",
        ),
        (
            "version: 3\nstart: 2026-04-24T12:00:00Z\n",
            "scenarios/test.yaml:1:10: unsupported scenario version `3`, expected `1`",
        ),
        (
            "version: 1\nstart: 2026-04-24T14:00:00+02:00\n",
            "scenarios/test.yaml:2:8: timestamp `2026-04-24T14:00:00+02:00` is not in UTC, expected a `Z` suffix such as `2026-04-24T12:00:00Z`",
        ),
        (
            "version: 1\nname: ../escape\nstart: 2026-04-24T12:00:00Z\n",
            "scenarios/test.yaml:2:7: invalid scenario name `../escape`, expected lowercase letters, digits, `_` and `-` (`[a-z0-9_-]+`)",
        ),
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 0s\n    pause: a\n    resume: a\n",
            "scenarios/test.yaml:6:5: two step kinds `pause` and `resume` in one step, expected exactly one",
        ),
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 0s\n    explode: a\n",
            "scenarios/test.yaml:5:5: unknown step kind `explode`, expected `at`, `expect` or one of `trigger`, `tick`, `pause`, `resume`, `disable`, `spend`, `pump`, `repair_worker`, `restore_checkpoint`, `process`, `audit`, `handoff`, `ack_handoff`, `finalize`, `fault`, `restart`, `advance`, `repeat`",
        ),
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 5s\n    pump: {}\n  - at: 4s\n    pump: {}\n",
            "scenarios/test.yaml:6:9: `at` 4s (2026-04-24T12:00:04Z) is earlier than the step before it at 5s (2026-04-24T12:00:05Z), expected times that never decrease",
        ),
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 0s\n    pause: nobody\n",
            "scenarios/test.yaml:5:12: unknown persona `nobody`, expected a persona declared under `personas`, which has none",
        ),
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\npersonas:\n  a: {entry_workflow: w, schedules: [\"0 0 * * * *\"]}\n",
            "scenarios/test.yaml:4:38: invalid cron expression `0 0 * * * *`: pattern must consist of five fields, seconds are not allowed by configuration, expected five fields (minute hour day month weekday) such as `*/30 * * * *`",
        ),
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\npersonas:\n  a: {entry_workflow: w, budget: {run_usd: .inf}}\n",
            "scenarios/test.yaml:4:44: `run_usd` is not a finite number (`inf`), expected an amount of at least 0",
        ),
        (
            "version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 0s\n    restart: {torn_tail_bytes: -3}\n",
            "scenarios/test.yaml:5:32: invalid type: integer `-3`, expected a whole number of at least 0",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text), expected, "for:\n{text}");
    }
}

#[test]
fn the_error_written_first_in_the_file_is_reported() {
    // Steps come before personas here: the step's unknown persona is
    // reported, not the later bad cron.
    let text = "version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 0s\n    pause: b\npersonas:\n  a: {entry_workflow: w, schedules: [nonsense]}\n";
    assert_eq!(
        error(text),
        "scenarios/test.yaml:5:12: unknown persona `b`, expected one of `a`"
    );
}

#[test]
fn a_bad_file_stem_needs_a_name() {
    let error = parse_str(
        "version: 1\nstart: 2026-04-24T12:00:00Z\n",
        "My File.yaml",
        "My File",
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "My File.yaml:1:1: the scenario name defaults to the file stem `My File`, which is not `[a-z0-9_-]+`, expected a `name:` field or a file named like `pause-resume_2.yaml`"
    );
    let named = parse_str(
        "version: 1\nname: my-file\nstart: 2026-04-24T12:00:00Z\n",
        "My File.yaml",
        "My File",
    )
    .unwrap();
    assert_eq!(named.name, "my-file");
}

#[test]
fn names_that_could_leave_the_output_directory_are_refused() {
    for name in ["../up", "/etc/passwd", "a/b", "..", ".", "a\\b", "UP"] {
        let text = format!("version: 1\nname: '{name}'\nstart: 2026-04-24T12:00:00Z\n");
        assert!(
            error(&text).contains("invalid scenario name"),
            "{name} accepted"
        );
    }
}

#[test]
fn garbage_gives_errors_not_panics() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "1:1: empty scenario, expected a map with `version: 1`, `start` and `steps`"),
        (b"# only a comment\n\n".to_vec(), "1:1: empty scenario"),
        (b"- 1\n- 2\n".to_vec(), "1:1: invalid type: sequence, expected a scenario: a map with `version`, `start` and `steps`"),
        (b"hello\n".to_vec(), "1:1: invalid type: string \"hello\", expected a scenario"),
        (b"version: 1\x00\x01\x02\n".to_vec(), "1:11: control character U+0000 is not allowed, expected YAML text"),
        (b"version: 1: 2\n".to_vec(), "1:11: mapping values are not allowed in this context"),
        (b"start: \"2026\n".to_vec(), "2:1: found unexpected end of stream, while scanning a quoted scalar at line 1 column 8"),
        (b"version: 1\nstart: 2026-04-24T12:00:00Z\n---\nb: 2\n".to_vec(), "3:1: a second YAML document, expected one scenario per file"),
        (b"version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n\t- at: 0s\n".to_vec(), "4:1: found character that cannot start any token"),
        (
            format!("version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 0s\n    handoff: {{to: x, payload: {}}}\n", "[".repeat(10_000)).into_bytes(),
            // The guard refuses before serde_yaml reads anything, at the
            // 65th container (the 61st `[`), not where the scanner stopped
            // reading ahead.
            "5:91: maps and lists nested more than 64 deep, expected a flatter scenario",
        ),
        (
            format!("version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 0s\n    audit: {{kind: k, payload: {}1{}}}\n", "{a: ".repeat(2_000), "}".repeat(2_000)).into_bytes(),
            "5:271: maps and lists nested more than 64 deep, expected a flatter scenario",
        ),
        // Refused at the first alias past the limit, not at 1:1.
        (alias_bomb().into_bytes(), "15:18: aliases expand to more than 16777216 bytes, expected each anchor used a few times"),
        (
            b"version: 1\nstart: 2026-04-24T12:00:00Z\npersonas: {a: {entry_workflow: w}, a: {entry_workflow: v}}\n".to_vec(),
            "3:36: duplicate key `a`, first written at line 3, expected each key once",
        ),
    ];
    for (bytes, expected) in cases {
        let text = String::from_utf8(bytes).unwrap();
        let message = error(&text);
        assert!(
            message.starts_with(&format!("scenarios/test.yaml:{expected}")),
            "expected `{expected}`, got `{message}`"
        );
    }
}

fn alias_bomb() -> String {
    let mut text = String::from(
        "version: 1\nstart: 2026-04-24T12:00:00Z\nsteps:\n  - at: 0s\n    audit:\n      kind: k\n      payload:\n        x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]\n",
    );
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 9].join(", ");
        text.push_str(&format!("        x{level}: &a{level} [{refs}]\n"));
    }
    text
}

#[test]
fn files_that_are_not_text_or_too_large_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, [0x76, 0x65, 0xff, 0xfe, 0x00, 0x9c]).unwrap();
    assert_eq!(
        parse_scenario(&binary).unwrap_err().message(),
        "invalid UTF-8 at byte 2, expected UTF-8 text"
    );
    assert_eq!(
        parse_scenario(&binary).unwrap_err().position(),
        Some(Position { line: 1, column: 3 })
    );

    // A sparse file: its length is past the limit without writing the bytes.
    let huge = dir.path().join("huge.yaml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_FILE_BYTES + 1)
        .unwrap();
    assert_eq!(
        parse_scenario(&huge).unwrap_err().message(),
        format!(
            "scenario file is {} bytes, expected at most {MAX_FILE_BYTES} (512 MiB)",
            MAX_FILE_BYTES + 1
        )
    );

    let missing = dir.path().join("missing.yaml");
    let error = parse_scenario(&missing).unwrap_err();
    assert!(matches!(error, ScenarioError::Read { .. }));
    assert!(error.to_string().starts_with(&format!(
        "{}: failed to read scenario file:",
        missing.display()
    )));
    assert!(matches!(
        parse_scenario(dir.path()).unwrap_err(),
        ScenarioError::Read { .. }
    ));
}

#[test]
fn a_file_is_read_with_its_stem_as_default_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("from-disk.yaml");
    std::fs::write(&path, "\u{feff}version: 1\nstart: 2026-04-24T12:00:00Z\n").unwrap();
    let scenario = parse_scenario(&path).unwrap();
    assert_eq!(scenario.name, "from-disk");
}

/// A scenario that uses every step kind, outcome shape and expectation key.
fn everything() -> Scenario {
    let text = format!(
        "{HEAD}  b:\n    entry_workflow: w2\n    budget: {{hourly_usd: 1.5}}\n    stages: [{{name: plan, max_iterations: 3, on_exit: {{on_complete: build}}}}]\nsupervisor: {{max_retries: 1}}\nsteps:\n{}",
        [
            "  - at: 0s\n    trigger: {persona: a, provider: slack, kind: message, metadata: {channel: c1, ts: 1.5, flag: true}, cost: {usd: 0.25, tokens: 7, avoided_usd: 0.5, llm_steps: 2, metadata: {team: x}}, outcome: {attempts: [network_timeout, crash, completed]}, duration: 2s}\n    expect: {receipt: completed, decision: invoke, retry_count: 1, termination: completed}\n",
            "  - at: 1s\n    trigger: {persona: b, provider: linear, kind: issue, outcome: {fail: semantic_error}}\n    expect: {receipt: failed, error: semantic}\n",
            "  - at: 1s\n    tick: {persona: a, outcome: crash}\n",
            "  - at: 2s\n    repair_worker: {persona: a, id: w1, lifecycle: verifying, work_key: k, lease_id: l, scratchpad_url: 'https://x'}\n    expect: {receipt: recorded}\n",
            "  - at: 3s\n    restore_checkpoint: {persona: b, checkpoint_id: c1}\n",
            "  - at: 4s\n    process: {start: {id: p1, input: {type: engine, kind: build, payload: {nested: [1, 'two', null]}}, recovery: rerunnable}}\n",
            "  - at: 5s\n    audit: {kind: stage.started, payload: {stage: plan}}\n",
            "  - at: 6s\n    handoff: {to: review, payload: {x: 1}}\n",
            "  - at: 7s\n    ack_handoff: {envelope: e1, decision: accepted}\n",
            "  - at: 8s\n    finalize: {disposition: completed}\n",
            "  - at: 9s\n    fault: {append: fail, count: 2}\n    expect: {receipt: error, error: append}\n",
            "  - at: 10s\n    restart: {torn_tail_bytes: 3}\n",
            "  - at: 11s\n    restart: {}\n",
            "  - at: 2026-04-24T12:00:12Z\n    pump: {}\n    expect: {receipt: idle, decision: defer}\n",
            "  - at: 1h30m\n    pause: a\n",
            "  - at: 1d\n    expect: {persona: b, status: {state: idle, last_error: null, queued_work.0.work_key: 'linear:issue:unknown'}, unsettled: {queued: 0, in_flight: 0}}\n",
        ]
        .concat()
    );
    parse(&text).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn scenarios_round_trip_through_yaml() {
    for scenario in [parse(EXAMPLE).unwrap(), everything()] {
        let yaml = scenario.to_yaml();
        let again = parse(&yaml).unwrap_or_else(|error| panic!("{error}\n{yaml}"));
        assert_eq!(again, scenario, "{yaml}");
        assert_eq!(again.to_yaml(), yaml);
    }
    let everything = everything();
    assert!(everything.has_restart());
    assert_eq!(everything.steps.len(), 16);
    let Some(Op::Trigger(trigger)) = &everything.steps[0].op else {
        panic!()
    };
    assert_eq!(trigger.metadata["ts"], "1.5");
    assert_eq!(trigger.metadata["flag"], "true");
    assert_eq!(
        trigger.outcome,
        Outcome::Attempts(vec![
            Attempt::Fail(FailKind::NetworkTimeout),
            Attempt::Crash,
            Attempt::Completed
        ])
    );
    assert_eq!(
        everything.steps[10].op,
        Some(Op::Fault(FaultOp {
            append: FaultMode::Fail,
            count: 2
        }))
    );
    assert_eq!(
        everything.steps[11].op,
        Some(Op::Restart(RestartOp {
            torn_tail_bytes: Some(3)
        }))
    );
}

#[test]
fn a_scenario_built_in_code_round_trips_and_ignores_positions() {
    let built = Scenario {
        version: 1,
        name: "generated-1".into(),
        description: None,
        start_ms: start_ms(),
        seed: 42,
        personas: BTreeMap::from([(
            "p".to_owned(),
            rehearse_runtime::PersonaSpec {
                entry_workflow: "w".into(),
                ..Default::default()
            },
        )]),
        supervisor: None,
        steps: vec![Step {
            at_ms: start_ms() + 90_000,
            at: At::Offset(Millis(90_000)),
            op: Some(Op::Trigger(TriggerOp {
                persona: "p".into(),
                provider: "webhook".into(),
                kind: "ping".into(),
                metadata: BTreeMap::from([("dedupe_key".to_owned(), "d1".to_owned())]).into(),
                cost: Cost {
                    usd: 0.1,
                    ..Cost::default()
                },
                outcome: Outcome::Fail(FailKind::TimedOut),
                duration: Millis(1_500),
            })),
            sequence: None,
            expect: Some(Expect {
                receipt: Some("failed".into()),
                ..Expect::default()
            }),
            line: 0,
            column: 0,
        }],
        persona_positions: BTreeMap::new(),
    };
    assert!(validate(&built).is_empty());
    let yaml = built.to_yaml();
    let parsed = parse(&yaml).unwrap();
    assert_eq!(parsed, built);
    assert_ne!(parsed.steps[0].line, 0);
    assert!(yaml.contains("at: 1m30s\n"), "{yaml}");
}

#[test]
fn a_hundred_thousand_steps_parse() {
    let mut text = String::from(HEAD);
    text.push_str("steps:\n");
    for i in 0..100_000 {
        if i % 10 == 0 {
            text.push_str(&format!(
                "  - {{at: {i}s, trigger: {{persona: a, provider: github, kind: pr, metadata: {{number: '{i}'}}}}}}\n"
            ));
        } else {
            text.push_str(&format!("  - {{at: {i}s, pump: {{}}}}\n"));
        }
    }
    let scenario = parse(&text).unwrap();
    assert_eq!(scenario.steps.len(), 100_000);
    let last = scenario.steps.last().unwrap();
    assert_eq!(last.at_ms, start_ms() + 99_999_000);
    assert_eq!(
        last.position(),
        Position {
            line: 100_005,
            column: 5
        }
    );
}

/// A scenario of `steps` pump steps, then `tail`, at least
/// [`PARALLEL_LAYOUT_BYTES`] long when `steps` is large enough.
fn long_scenario(head: &str, steps: usize, tail: &str) -> String {
    let mut text = format!("{head}steps:\n");
    for i in 0..steps {
        text.push_str(&format!("  - {{at: {i}s, pump: {{}}}}\n"));
    }
    text.push_str(tail);
    text
}

/// A long scenario reads its layout beside serde_yaml (`parse.rs`): the
/// steps, their positions and the errors are those of the passes run one
/// after the other.
#[test]
fn a_long_scenario_lays_out_beside_serde_as_one_after_the_other() {
    let steps = 40_000;
    let text = long_scenario(HEAD, steps, "");
    assert!(text.len() >= PARALLEL_LAYOUT_BYTES);
    let parsed = parse(&text).unwrap();
    assert_eq!(parsed.steps.len(), steps);
    assert_eq!(
        parsed.steps.last().unwrap().position(),
        Position {
            line: 5 + steps,
            column: 5
        }
    );
    assert_eq!(
        parsed.persona_positions["a"],
        Position { line: 4, column: 3 }
    );

    // serde_yaml's error, at the step it is about.
    let unknown = format!("  - {{at: {steps}s, pump: {{}}, bogus: 1}}\n");
    let message = error(&long_scenario(HEAD, steps, &unknown));
    assert_eq!(
        message,
        format!(
            "scenarios/test.yaml:{}:28: unknown step kind `bogus`, expected `at`, `expect` or one of {}",
            6 + steps,
            "`trigger`, `tick`, `pause`, `resume`, `disable`, `spend`, `pump`, `repair_worker`, `restore_checkpoint`, `process`, `audit`, `handoff`, `ack_handoff`, `finalize`, `fault`, `restart`, `advance`, `repeat`"
        )
    );

    // The guard's refusal still comes before either pass.
    let duplicate = format!("  - {{at: {steps}s, pump: {{}}, at: {steps}s}}\n");
    let message = error(&long_scenario(HEAD, steps, &duplicate));
    assert_eq!(
        message,
        format!(
            "scenarios/test.yaml:{line}:28: duplicate key `at`, first written at line {line}, expected each key once",
            line = 6 + steps
        )
    );
}

#[test]
fn the_new_starter_passes_lint() {
    let text = starter("demo", SCHEMA_URL);
    assert_eq!(
        text.lines().next(),
        Some(format!("# yaml-language-server: $schema={SCHEMA_URL}").as_str())
    );
    let scenario = parse_str(&text, "demo.yaml", "demo").unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(scenario.name, "demo");
    assert_eq!(scenario.steps.len(), 7);

    let dir = tempfile::tempdir().unwrap();
    let written = write_starter("demo", &dir.path().join("nested"), "../schema.json").unwrap();
    assert_eq!(written, dir.path().join("nested").join("demo.yaml"));
    let scenario = parse_scenario(&written).unwrap();
    assert_eq!(scenario.name, "demo");
    assert!(std::fs::read_to_string(&written)
        .unwrap()
        .starts_with("# yaml-language-server: $schema=../schema.json\n"));
    assert!(matches!(
        write_starter("demo", &dir.path().join("nested"), SCHEMA_URL),
        Err(NewError::Exists(path)) if path == written
    ));
    assert!(matches!(
        write_starter("../demo", dir.path(), SCHEMA_URL),
        Err(NewError::InvalidName(_))
    ));
    // Nothing but the scenario was left behind: the temporary file was renamed.
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("demo.yaml")]);
}

#[test]
fn the_json_schema_describes_the_format() {
    let schema = serde_json::to_value(json_schema()).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["$id"], SCHEMA_URL);
    assert_eq!(schema["required"], serde_json::json!(["version", "start"]));
    assert_eq!(schema["additionalProperties"], false);
    let step = &schema["definitions"]["Step"];
    let kinds: Vec<&str> = step["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for kind in rehearse_runtime::op::OP_KINDS {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(kinds.contains(&"at") && kinds.contains(&"expect"));
    assert!(kinds.contains(&"advance") && kinds.contains(&"repeat"));
    assert_eq!(step["oneOf"].as_array().unwrap().len(), 19);
    let expect = &schema["definitions"]["Expect"]["properties"];
    for key in [
        "receipt",
        "receipts",
        "error",
        "decision",
        "schedule_at",
        "retry_count",
        "termination",
        "persona",
        "status",
        "unsettled",
    ] {
        assert!(expect.get(key).is_some(), "{key} missing from Expect");
    }
    assert_eq!(
        schema["definitions"]["PersonaSpec"]["additionalProperties"],
        false
    );
    let op = serde_json::to_value(schemars::schema_for!(Op)).unwrap();
    assert_eq!(op["oneOf"].as_array().unwrap().len(), 16);
    assert_eq!(
        op["oneOf"][2],
        serde_json::json!({
            "type": "object",
            "properties": { "pause": { "type": "string" } },
            "required": ["pause"],
            "additionalProperties": false,
        })
    );
    assert!(json_schema_text().ends_with("}\n"));
    assert_eq!(json_schema_text(), json_schema_text());
}

#[test]
fn an_empty_steps_list_is_allowed() {
    let scenario = parse(&format!("{HEAD}steps: []\n")).unwrap();
    assert!(scenario.steps.is_empty());
}

/// `episode_id` and `deadline` may be `null` (a decision without one),
/// which is checked, while a key left out is not.
#[test]
fn decision_keys_take_null() {
    let text = |expect: &str| {
        format!(
            "version: 1\nstart: 2026-04-24T12:00:00Z\npersonas:\n  p: {{entry_workflow: w}}\nsteps:\n  - at: 0s\n    tick: {{persona: p}}\n    expect: {expect}\n"
        )
    };
    let expect = |expect: &str| {
        rehearse::scenario::parse_str(&text(expect), "t.yaml", "t")
            .unwrap_or_else(|e| panic!("{e}"))
            .steps[0]
            .expect
            .clone()
            .unwrap()
    };
    let null = expect("{episode_id: null, deadline: null}");
    assert_eq!((null.episode_id, null.deadline), (Some(None), Some(None)));
    let set = expect("{episode_id: 2, deadline: 30s}");
    assert_eq!(set.episode_id, Some(Some(2)));
    assert_eq!(set.deadline.unwrap().unwrap().to_string(), "30s");
    let absent = expect("{receipt: completed}");
    assert_eq!((absent.episode_id, absent.deadline), (None, None));
}
