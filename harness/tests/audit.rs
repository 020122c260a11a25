//! `rehearse audit`: every golden log audits clean; logs written by a
//! runtime with a deliberate bug are caught, each with its line, event and
//! invariant; the upstream runtime's format reads like the project's own;
//! garbage exits 2 naming file and line.

mod common;

use common::root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rehearse::audit::{audit, load_bindings, AuditReport, Bindings};
use rehearse::driver::{run_with, RunOptions};
use rehearse::explore::Invariant;
use rehearse::scenario::parse_str;
use rehearse_runtime::engine::Runtime;
use rehearse_runtime::test_hooks::Bug;

fn scratch(name: &str) -> PathBuf {
    common::scratch(&format!("audit-{name}"))
}

fn rehearse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn golden_logs() -> Vec<PathBuf> {
    let snapshots = root().join("snapshots");
    common::files_under(&snapshots)
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|n| n == "events.jsonl"))
        .map(|path| snapshots.join(path))
        .collect()
}

/// The scenario a golden log belongs to: `snapshots/D/N/events.jsonl` is
/// `scenarios/D/N.yaml`.
fn scenario_of(log: &Path) -> PathBuf {
    let relative = log
        .parent()
        .unwrap()
        .strip_prefix(root().join("snapshots"))
        .unwrap();
    root()
        .join("scenarios")
        .join(relative)
        .with_extension("yaml")
}

#[test]
fn every_golden_log_audits_clean_with_and_without_its_bindings() {
    let logs = golden_logs();
    assert!(logs.len() > 50, "found only {} golden logs", logs.len());
    for log in logs {
        let report = audit(&log, None).unwrap();
        assert_eq!(
            report.violations,
            0,
            "{}: {:?}",
            log.display(),
            report.findings
        );
        assert!(report.events > 0, "{}", log.display());
        let bindings = load_bindings(&scenario_of(&log)).unwrap();
        let report = audit(&log, Some(&bindings)).unwrap();
        assert_eq!(
            report.violations,
            0,
            "{}: {:?}",
            log.display(),
            report.findings
        );
        assert!(report.unbound_personas.is_empty(), "{}", log.display());
    }
}

/// A scenario whose log a runtime with `bug` writes; returns the log's path.
fn buggy_log(dir: &Path, name: &str, yaml: &str, bug: Option<fn(&mut Runtime)>) -> PathBuf {
    let scenario = parse_str(yaml, name, name).unwrap();
    let options = RunOptions {
        check_invariants: false,
        runtime_hook: bug,
    };
    let output = run_with(&scenario, name, options).unwrap();
    let path = dir.join(format!("{name}.jsonl"));
    std::fs::write(&path, &output.events_jsonl).unwrap();
    std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
    path
}

const HEAD: &str = "version: 1\nstart: 2026-04-24T12:00:00Z\npersonas:\n  bot:\n    entry_workflow: wf\n    budget: { run_usd: 0.1, daily_usd: 10.0 }\n  other:\n    entry_workflow: wf\nsteps:\n";

fn trigger(at: &str, persona: &str, key: &str, extra: &str) -> String {
    format!("  - at: {at}\n    trigger: {{ persona: {persona}, provider: webhook, kind: push, metadata: {{ dedupe_key: {key} }}{extra} }}\n")
}

/// Noise around each bug: work for another persona and unrelated runs.
fn noisy(steps: &[String]) -> String {
    let mut yaml = HEAD.to_string();
    yaml.push_str(&trigger("0s", "other", "n1", ""));
    yaml.push_str(&trigger("10s", "bot", "n2", ", cost: { usd: 0.01 }"));
    for step in steps {
        yaml.push_str(step);
    }
    yaml.push_str(&trigger("50m", "other", "n3", ""));
    yaml
}

fn skip_lease_check(runtime: &mut Runtime) {
    runtime.set_deliberate_bug(Bug::SkipLeaseCheck);
}

fn admit_over_run_limit(runtime: &mut Runtime) {
    runtime.set_deliberate_bug(Bug::AdmitOverRunLimit);
}

fn complete_duplicates(runtime: &mut Runtime) {
    runtime.set_deliberate_bug(Bug::CompleteDuplicates);
}

/// The four deliberate violations, each as (name, log, bindings file).
fn violating_logs(dir: &Path) -> Vec<(&'static str, PathBuf, Invariant)> {
    let two_leases = noisy(&[
        trigger("1m", "bot", "a", ", outcome: crash"),
        trigger("2m", "bot", "b", ""),
    ]);
    let over_limit = noisy(&[trigger("1m", "bot", "a", ", cost: { usd: 0.5 }")]);
    let twice = noisy(&[trigger("1m", "bot", "a", ""), trigger("3m", "bot", "a", "")]);
    let disabled = noisy(&[trigger("1m", "bot", "a", "")]);
    let disabled_log = buggy_log(dir, "disabled-ran", &disabled, None);
    // A disabled persona that went on to run: a `disabled` event before the
    // third trigger (the one at 1m).
    edit_log(&disabled_log, |events| {
        let at = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e["kind"] == "persona.trigger.received")
            .nth(2)
            .map(|(index, _)| index)
            .unwrap();
        let mut disabled = events[at].clone();
        disabled["kind"] = "persona.control.disabled".into();
        disabled["payload"] = serde_json::json!({ "disabled_at_ms": disabled["payload"]["envelope"]["received_at_ms"] });
        events.insert(at, disabled);
    });
    let two_leases_log = buggy_log(dir, "two-leases", &two_leases, Some(skip_lease_check));
    // The buggy runtime still clears the lease it ignored; a runtime that
    // ignores it altogether writes no `lease.expired`.
    edit_log(&two_leases_log, |events| {
        events.retain(|e| e["kind"] != "persona.lease.expired");
    });
    vec![
        ("two-leases", two_leases_log, Invariant::SingleLiveLease),
        (
            "over-limit",
            buggy_log(dir, "over-limit", &over_limit, Some(admit_over_run_limit)),
            Invariant::RunLimit,
        ),
        (
            "twice",
            buggy_log(dir, "twice", &twice, Some(complete_duplicates)),
            Invariant::WorkKeyOnce,
        ),
        ("disabled-ran", disabled_log, Invariant::DisabledRunsNothing),
    ]
}

/// Rewrites the log at `path` with `edit`, then renumbers ids per topic.
fn edit_log(path: &Path, edit: impl FnOnce(&mut Vec<serde_json::Value>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    edit(&mut events);
    let mut next_id = std::collections::BTreeMap::new();
    let mut out = String::new();
    for mut event in events {
        let topic = event["topic"].as_str().unwrap().to_string();
        let id = next_id.entry(topic).or_insert(0u64);
        *id += 1;
        event["id"] = (*id).into();
        out.push_str(&serde_json::to_string(&event).unwrap());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

fn bindings_of(log: &Path) -> Bindings {
    load_bindings(&log.with_extension("yaml")).unwrap()
}

fn first(report: &AuditReport) -> &rehearse::audit::Finding {
    report.findings.first().expect("a violation")
}

#[test]
fn each_deliberate_violation_is_found_with_its_line_event_and_invariant() {
    let dir = scratch("found");
    for (name, log, invariant) in violating_logs(&dir) {
        let report = audit(&log, Some(&bindings_of(&log))).unwrap();
        let finding = first(&report);
        assert_eq!(
            finding.invariant, invariant,
            "{name}: {:?}",
            report.findings
        );
        // The line holds the event the finding names.
        let text = std::fs::read_to_string(&log).unwrap();
        let line: serde_json::Value =
            serde_json::from_str(text.lines().nth(finding.line - 1).unwrap()).unwrap();
        assert_eq!(
            finding.event,
            format!("{}#{}", line["topic"].as_str().unwrap(), line["id"]),
            "{name}"
        );
        assert_eq!(finding.kind, line["kind"].as_str().unwrap(), "{name}");
        assert!(
            !finding.message.is_empty() && !finding.evidence.is_empty(),
            "{name}"
        );
        // The same log without its bindings: only the spend over a limit
        // needs them, and the report then says the budget checks were skipped.
        let unbound = audit(&log, None).unwrap();
        if invariant == Invariant::RunLimit {
            assert_eq!(unbound.violations, 0, "{name}: {:?}", unbound.findings);
            assert!(unbound
                .invariants(rehearse::audit::Coverage::NeedsBindings)
                .contains(&Invariant::RunLimit));
        } else {
            assert_eq!(first(&unbound).invariant, invariant, "{name}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_command_exits_1_on_a_violation_and_names_line_and_invariant() {
    let dir = scratch("cli");
    let (_, log, _) = violating_logs(&dir).remove(0);
    let output = rehearse(&["audit", log.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let expected = format!("{}:", log.display());
    let line = stdout.lines().next().unwrap();
    assert!(line.starts_with(&expected), "{stdout}");
    assert!(
        line.contains("persona.lease.acquired: single_live_lease: persona `bot`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped, need --bindings (lease TTLs, budgets): lease_expiry"),
        "{stdout}"
    );
    let bound = rehearse(&[
        "audit",
        log.to_str().unwrap(),
        "--bindings",
        log.with_extension("yaml").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&bound.stdout);
    assert_eq!(bound.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains("skipped"), "{stdout}");
    let clean = root().join("snapshots/lease/expiry-reacquire/events.jsonl");
    let output = rehearse(&["audit", clean.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("28 events, no violation"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A library log rewritten in the upstream runtime's form: `occurred_at` as
/// the `time` crate's compact tuple, provenance headers, an extra field.
fn to_upstream(text: &str) -> String {
    let mut out = String::new();
    for (index, line) in text.lines().enumerate() {
        let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
        let ms =
            rehearse_runtime::parse_rfc3339_ms(event["occurred_at"].as_str().unwrap()).unwrap();
        let at =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
        event["occurred_at"] = serde_json::json!([
            at.year(),
            at.ordinal(),
            at.hour(),
            at.minute(),
            at.second(),
            at.nanosecond(),
            0,
            0,
            0
        ]);
        event["headers"]["harn.provenance.source"] = "harn-vm".into();
        event["headers"]["harn.provenance.sequence"] = (index + 1).to_string().into();
        event["schema"] = "harn.event/1".into();
        out.push_str(&serde_json::to_string(&event).unwrap());
        out.push('\n');
    }
    out
}

#[test]
fn the_upstream_format_audits_like_the_project_format() {
    let dir = scratch("upstream");
    // The committed hand-converted copy of a library log.
    let fixture = upstream_dir().join("converted-expiry-reacquire.jsonl");
    let original = root().join("snapshots/lease/expiry-reacquire/events.jsonl");
    let converted = to_upstream(&std::fs::read_to_string(&original).unwrap());
    assert_eq!(
        std::fs::read_to_string(&fixture).unwrap(),
        converted,
        "the committed upstream-format copy is the conversion of its library log"
    );
    let report = audit(&fixture, None).unwrap();
    assert_eq!(report, audit(&original, None).unwrap());
    // A violating log found the same way in either form.
    for (name, log, invariant) in violating_logs(&dir) {
        let upstream = dir.join(format!("{name}.upstream.jsonl"));
        std::fs::write(
            &upstream,
            to_upstream(&std::fs::read_to_string(&log).unwrap()),
        )
        .unwrap();
        let bindings = bindings_of(&log);
        let theirs = audit(&upstream, Some(&bindings)).unwrap();
        assert_eq!(theirs, audit(&log, Some(&bindings)).unwrap(), "{name}");
        assert_eq!(first(&theirs).invariant, invariant, "{name}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn garbage_exits_2_naming_file_and_line() {
    let dir = scratch("garbage");
    let good =
        std::fs::read_to_string(root().join("snapshots/lease/expiry-reacquire/events.jsonl"))
            .unwrap();
    let first_line = good.lines().next().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "binary.jsonl",
            vec![0x00, 0x9f, 0x92, 0x96, 0xff, b'\n'],
            ":1: invalid UTF-8",
        ),
        (
            "huge.jsonl",
            format!("{first_line}\n{}\n", "x".repeat(2 * 1024 * 1024)).into_bytes(),
            ":2: line is longer than",
        ),
        (
            "bad.jsonl",
            format!("{first_line}\n{{\"topic\":\n").into_bytes(),
            ":2: EOF while parsing",
        ),
        (
            "types.jsonl",
            format!(
                "{first_line}\n{}\n",
                first_line.replace("\"id\":1", "\"id\":\"2\"")
            )
            .into_bytes(),
            ":2: invalid type: string \"2\", expected u64",
        ),
        (
            "headers.jsonl",
            first_line
                .replace("{\"persona\":\"merge_captain\"}", "[1]")
                .into_bytes(),
            ":1: invalid type: sequence",
        ),
        ("empty-object.jsonl", b"{}\n".to_vec(), ":1: missing field `id`"),
        (
            "payload.jsonl",
            first_line.replace("\"provider\":\"github\"", "\"provider\":7").into_bytes(),
            ":1: malformed",
        ),
        (
            "no-topic.jsonl",
            b"{\"id\":1,\"kind\":\"k\",\"payload\":{},\"occurred_at_ms\":0}\n".to_vec(),
            ":1: missing field `topic` (a file of one topic's events",
        ),
        (
            "both-forms.jsonl",
            b"{\"topic\":\"t\",\"id\":1,\"kind\":\"k\",\"event\":{\"kind\":\"k\",\"payload\":{},\"occurred_at_ms\":0}}\n".to_vec(),
            ":1: both `event` and a top-level `kind`",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let output = rehearse(&["audit", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        let expected = format!("{}{needle}", path.display());
        assert!(
            stderr.contains(&expected),
            "{name}: expected `{expected}` in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let missing = rehearse(&["audit", dir.join("missing.jsonl").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    let directory = rehearse(&["audit", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&directory.stderr);
    assert_eq!(directory.status.code(), Some(2));
    assert!(stderr.contains(":0: it is a directory"), "{stderr}");
    let bad_bindings = dir.join("bindings.yaml");
    std::fs::write(
        &bad_bindings,
        "version: 1\npersonas:\n  bot: { budget: { daily_usd: -1 } }\n",
    )
    .unwrap();
    let output = rehearse(&[
        "audit",
        root()
            .join("snapshots/lease/expiry-reacquire/events.jsonl")
            .to_str()
            .unwrap(),
        "--bindings",
        bad_bindings.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bindings.yaml") && stderr.contains("daily_usd"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bindings_file_holds_the_log_to_its_ttls_and_budgets() {
    let dir = scratch("bindings");
    let logs = violating_logs(&dir);
    let (_, over_limit, _) = &logs[1];
    let file = dir.join("bindings.yaml");
    std::fs::write(
        &file,
        "version: 1\npersonas:\n  bot:\n    budget: { run_usd: 0.1 }\n",
    )
    .unwrap();
    let bindings = load_bindings(&file).unwrap();
    let report = audit(over_limit, Some(&bindings)).unwrap();
    assert_eq!(first(&report).invariant, Invariant::RunLimit);
    assert_eq!(report.unbound_personas, vec!["other".to_string()]);
    // A TTL that is not the one the log was written with breaks lease expiry.
    std::fs::write(
        &file,
        "version: 1\npersonas:\n  bot: { lease_ttl: 1m }\n  other: {}\n",
    )
    .unwrap();
    let bindings = load_bindings(&file).unwrap();
    let report = audit(over_limit, Some(&bindings)).unwrap();
    assert_eq!(first(&report).invariant, Invariant::LeaseExpiry);
    for (text, needle) in [
        ("version: 2\npersonas: {}\n", "bindings version 2"),
        (
            "version: 1\npersonas: {bot: {ttl: 5m}}\n",
            "unknown field `ttl`",
        ),
        (
            "version: 1\npersonas: {bot: {lease_ttl: 0s}}\n",
            "lease_ttl",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let error = load_bindings(&file).unwrap_err().to_string();
        assert!(
            error.contains("bindings.yaml") && error.contains(needle),
            "{error}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs `rehearse audit LOG --bindings LOG.yaml --to-scenario OUT --shrink`
/// and reads the saved scenario back.
fn shrink_log(log: &Path, bindings: bool) -> (Output, rehearse::scenario::Scenario) {
    let out = log.with_extension("shrunk.yaml");
    let mut args = vec!["audit", log.to_str().unwrap()];
    let bindings_file = log.with_extension("yaml");
    if bindings {
        args.extend(["--bindings", bindings_file.to_str().unwrap()]);
    }
    args.extend(["--to-scenario", out.to_str().unwrap(), "--shrink"]);
    let output = rehearse(&args);
    let scenario = rehearse::scenario::parse_scenario(&out)
        .unwrap_or_else(|error| panic!("{error}\n{}", String::from_utf8_lossy(&output.stdout)));
    (output, scenario)
}

#[test]
fn each_violation_is_shrunk_to_a_few_steps_that_pass_on_the_reference() {
    let dir = scratch("shrink");
    let expected = [
        ("two-leases", "lease_busy", 2),
        ("over-limit", "budget_exhausted", 1),
        ("twice", "duplicate", 2),
        ("disabled-ran", "dead_lettered", 2),
    ];
    for ((name, log, invariant), (_, receipt, steps)) in
        violating_logs(&dir).into_iter().zip(expected)
    {
        let (output, scenario) = shrink_log(&log, true);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{name}: {stdout}");
        assert!(
            stdout.contains(&format!("to {steps} operations"))
                && stdout.contains(&format!("): {invariant}: ")),
            "{name}: {stdout}"
        );
        assert_eq!(
            scenario.steps.len(),
            steps,
            "{name}: {stdout}\n{}",
            scenario.to_yaml()
        );
        let expects: Vec<_> = scenario
            .steps
            .iter()
            .filter_map(|s| s.expect.as_ref())
            .collect();
        assert_eq!(expects.len(), 1, "{name}");
        assert_eq!(expects[0].receipt.as_deref(), Some(receipt), "{name}");
        assert!(
            scenario.steps.last().unwrap().expect.is_some(),
            "{name}: the failing step is the last"
        );
        assert!(
            scenario
                .description
                .as_deref()
                .unwrap()
                .contains(invariant.name()),
            "{name}"
        );
        // Ready for the library: it passes on the reference runtime.
        let run = rehearse::driver::run(&scenario, name).unwrap();
        assert!(run.passed(), "{name}: {:?}", run.report.steps);
        // The noise (the other persona, the earlier run) is gone and the
        // times are merged into one.
        assert!(
            scenario
                .steps
                .iter()
                .all(|s| s.op.as_ref().unwrap().persona() == Some("bot")),
            "{name}"
        );
        assert_eq!(
            scenario.personas.keys().collect::<Vec<_>>(),
            ["bot"],
            "{name}"
        );
        assert!(
            scenario
                .steps
                .iter()
                .all(|s| s.at_ms == scenario.steps[0].at_ms),
            "{name}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_log_that_differs_from_the_reference_is_reported_and_shrunk() {
    let dir = scratch("diverge");
    let golden = root().join("snapshots/workkey/webhook-keys");
    let log = dir.join("tampered.jsonl");
    std::fs::copy(golden.join("events.jsonl"), &log).unwrap();
    std::fs::copy(
        root().join("scenarios/workkey/webhook-keys.yaml"),
        dir.join("tampered.yaml"),
    )
    .unwrap();
    // The second lease goes to another holder: every invariant holds, but the
    // reference runtime would not write it.
    let mut seen = 0;
    edit_log(&log, |events| {
        for event in events
            .iter_mut()
            .filter(|e| e["kind"] == "persona.lease.acquired")
        {
            seen += 1;
            if seen == 2 {
                event["payload"]["holder"] = "impostor".into();
            }
        }
    });
    let clean = rehearse(&[
        "audit",
        log.to_str().unwrap(),
        "--to-scenario",
        dir.join("full.yaml").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no violation"), "{stdout}");
    assert!(
        stdout.contains("persona.lease.acquired: `payload.holder` is `\"impostor\"` in the log and `\"persona-runtime\"` in the reference"),
        "{stdout}"
    );
    let full = rehearse::scenario::parse_scenario(&dir.join("full.yaml")).unwrap();
    assert_eq!(full.steps.len(), 9);
    let (output, scenario) = shrink_log(&log, false);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(scenario.steps.len(), 1, "{stdout}");
    assert_eq!(
        scenario.steps[0]
            .expect
            .as_ref()
            .unwrap()
            .receipt
            .as_deref(),
        Some("completed")
    );
    assert!(rehearse::driver::run(&scenario, "shrunk").unwrap().passed());
    std::fs::remove_dir_all(dir).unwrap();
}

fn upstream_dir() -> PathBuf {
    root().join("harness/tests/data/audit/upstream")
}

/// Every log in the upstream directory (the upstream runtime's own log and a
/// converted library log, see the directory's README) audits clean, and
/// rebuilt as a scenario, the reference runtime writes the same persona
/// events.
#[test]
fn every_upstream_format_log_audits_clean_and_matches_the_reference() {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(upstream_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    logs.sort();
    assert!(!logs.is_empty());
    for log in logs {
        let bindings_file = log.with_extension("bindings.yaml");
        let bindings = bindings_file
            .exists()
            .then(|| load_bindings(&bindings_file).unwrap());
        let report = audit(&log, bindings.as_ref()).unwrap();
        assert!(report.events > 0, "{}", log.display());
        assert_eq!(
            report.violations,
            0,
            "{}: {:?}",
            log.display(),
            report.findings
        );
        assert_eq!(
            rebuilt_divergence(&log, bindings.as_ref()),
            None,
            "{}",
            log.display()
        );
    }
}

/// Rebuilds `log` as a scenario, runs it on the reference and compares.
fn rebuilt_divergence(
    log: &Path,
    bindings: Option<&Bindings>,
) -> Option<rehearse::audit::Divergence> {
    use rehearse::audit::{
        first_divergence, rebuild, reference_events, round_trip, run_reference, to_scenario,
        LogReader,
    };
    let trace = rebuild(&mut LogReader::open(log).unwrap(), bindings, false).unwrap();
    let frame = bindings.and_then(|b| b.scenario.as_ref());
    let scenario = to_scenario(&trace, "rebuilt", frame, None, None);
    let (_, scenario) = round_trip(&scenario, "rebuilt.yaml").unwrap();
    let output = run_reference(&scenario, "rebuilt.yaml").unwrap();
    assert!(
        output.report.invariant_violations.is_empty(),
        "{}",
        log.display()
    );
    let mut reader = LogReader::open(log).unwrap();
    first_divergence(
        std::iter::from_fn(|| reader.next_event().transpose()),
        reference_events(&output).into_iter(),
    )
    .unwrap()
}

/// The rebuild is faithful: every library log, rebuilt with its scenario as
/// bindings and run on the reference, gives the same persona events.
#[test]
fn every_golden_log_rebuilds_into_a_scenario_the_reference_matches() {
    for log in golden_logs() {
        let bindings = load_bindings(&scenario_of(&log)).unwrap();
        assert_eq!(
            rebuilt_divergence(&log, Some(&bindings)),
            None,
            "{}",
            log.display()
        );
    }
}
