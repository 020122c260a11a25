//! The operation types read the scenario format's YAML shapes.

use rehearse_runtime::op::{Attempt, FailKind, Op, Outcome};

fn op(yaml: &str) -> Op {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

#[test]
fn outcomes_read_as_written_in_the_format() {
    let Op::Trigger(t) = op("trigger: {persona: a, provider: github, kind: pr, outcome: crash}")
    else {
        panic!()
    };
    assert_eq!(t.outcome, Outcome::Crash);
    let Op::Trigger(t) =
        op("trigger: {persona: a, provider: github, kind: pr, outcome: {fail: semantic_error}}")
    else {
        panic!()
    };
    assert_eq!(t.outcome, Outcome::Fail(FailKind::SemanticError));
    let Op::Trigger(t) = op("trigger: {persona: a, provider: x, kind: y, outcome: {attempts: [network_timeout, completed]}, metadata: {number: 462}}") else { panic!() };
    assert_eq!(
        t.outcome,
        Outcome::Attempts(vec![
            Attempt::Fail(FailKind::NetworkTimeout),
            Attempt::Completed
        ])
    );
    assert_eq!(t.metadata["number"], "462");
    assert_eq!(op("pause: a"), Op::Pause("a".into()));
    assert_eq!(op("pump: {}"), Op::Pump(Default::default()));
}

#[test]
fn ops_round_trip_through_yaml_and_json() {
    for yaml in [
        "trigger: {persona: a, provider: x, kind: y, outcome: {attempts: [runtime_error]}, duration: 5s, cost: {usd: 0.5, tokens: 3}}",
        "tick: {persona: a, outcome: {fail: timed_out}}",
        "fault: {append: fail, count: 2}",
        "restart: {torn_tail_bytes: 7}",
    ] {
        let parsed = op(yaml);
        let back: Op = serde_yaml::from_str(&serde_yaml::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(back, parsed);
        let json: Op = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(json, parsed);
    }
}

#[test]
fn one_entry_operations_refuse_unknown_keys_naming_what_they_expected() {
    let refusal = |yaml: &str| serde_yaml::from_str::<Op>(yaml).unwrap_err().to_string();
    assert!(refusal("trgger: {}")
        .starts_with("unknown step kind `trgger`, expected one of `trigger`, `tick`, `pause`,"));
    assert!(refusal("process: {strat: {}}").starts_with(
        "process: unknown process operation `strat`, expected one of `start`, `claim`, \
         `heartbeat`, `wait`, `signal`, `complete`, `fail`, `cancel`, `abandon`, `list`"
    ));
    let process = op("process: {claim: {id: p1, owner: w1}}");
    assert_eq!(process.kind(), "process");
    let Op::Process(claim) = &process else {
        panic!()
    };
    assert_eq!(claim.kind(), "claim");
    assert_eq!(
        serde_json::to_string(&process).unwrap(),
        r#"{"process":{"claim":{"id":"p1","owner":"w1"}}}"#
    );
}
