//! `rehearse certify` end to end: the reference behind `rehearse serve`
//! passes the whole library; a deliberately wrong toy implementation in
//! Python (tests/data/certify/toy.py) is reported with the right first
//! differing event; the manifest's ratchet; and children that crash, hang,
//! write garbage or speak another protocol are `broken`, never `fail`.

mod common;

use common::root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn rehearse() -> &'static str {
    env!("CARGO_BIN_EXE_rehearse")
}

fn toy(mode: &str) -> String {
    let script = root().join("harness/tests/data/certify/toy.py");
    format!("python3 '{}' {mode} '{}'", script.display(), rehearse())
}

fn certify(args: &[&str]) -> Output {
    Command::new(rehearse())
        .arg("certify")
        .args(args)
        .current_dir(root())
        .env_remove("CI")
        .output()
        .expect("rehearse runs")
}

/// The JSON Lines records of a `--format json` run, by scenario, and the
/// summary.
fn records(output: &Output) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["record"], "summary");
    (lines, summary)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_reference_behind_serve_passes_the_whole_library() {
    let dir = tempfile::tempdir().unwrap();
    let markdown = dir.path().join("report.md");
    let junit = dir.path().join("junit.xml");
    let output = certify(&[
        "--impl",
        "rehearse serve",
        "--format",
        "json",
        "--markdown",
        markdown.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let (results, summary) = records(&output);
    assert!(results.len() > 80, "only {} scenarios", results.len());
    let not_passing: Vec<&Value> = results.iter().filter(|r| r["verdict"] != "pass").collect();
    assert!(not_passing.is_empty(), "{not_passing:#?}");
    assert_eq!(summary["pass"], results.len());
    assert_eq!(summary["implementation"], "rehearse");
    let report = std::fs::read_to_string(&markdown).unwrap();
    assert!(report.starts_with("# Conformance of rehearse "), "{report}");
    assert!(
        report.contains(&format!("| pass | {} |", results.len())),
        "{report}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"name="admission/completed-run.yaml""#),
        "{xml}"
    );
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn the_toy_is_reported_with_its_first_differing_event() {
    let output = certify(&[
        "--impl",
        &toy("proxy"),
        "--format",
        "json",
        "scenarios/lease",
        "scenarios/process/terminal-states.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let (results, summary) = records(&output);
    let by_name = |name: &str| {
        results
            .iter()
            .find(|r| r["scenario"] == name)
            .unwrap_or_else(|| panic!("no result for {name}"))
    };
    // The toy drops persona.lease.expired: the sixth event of the
    // reference's log (snapshots/lease/expiry-reacquire/events.jsonl line 6),
    // appended by step 3.
    let failed = by_name("lease/expiry-reacquire.yaml");
    assert_eq!(failed["verdict"], "fail");
    let difference = &failed["difference"];
    assert_eq!(difference["step"], 3);
    assert_eq!(difference["event"], 6);
    assert_eq!(difference["field"], "kind");
    assert_eq!(difference["reference"], "`\"persona.lease.expired\"`");
    assert_eq!(difference["implementation"], "`\"persona.lease.acquired\"`");
    // It declares no `process` steps.
    let skipped = by_name("process/terminal-states.yaml");
    assert_eq!(skipped["verdict"], "unsupported");
    assert!(skipped["reason"].as_str().unwrap().contains("`process`"));
    assert_eq!(summary["implementation"], "toy");
    assert!(summary["pass"].as_u64().unwrap() >= 1);
}

#[test]
fn only_declared_answers_are_compared() {
    // Decisions only: the dropped lease.expired event and every receipt,
    // event and status expectation are out of scope, and nothing is asked
    // that was not declared (the toy answers any query with an error).
    let output = certify(&[
        "--impl",
        &toy("supervisor"),
        "--format",
        "json",
        "scenarios/lease/expiry-reacquire.yaml",
        "scenarios/supervisor",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let (results, _) = records(&output);
    let lease = &results[0];
    assert_eq!(lease["scenario"], "lease/expiry-reacquire.yaml");
    assert_eq!(lease["verdict"], "pass");
    assert!(lease["skipped_expectations"].as_u64().unwrap() > 0);
    assert!(results
        .iter()
        .all(|r| r["verdict"] == "pass" || r["verdict"] == "unsupported"));
}

fn manifest(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
    let mut text = String::from("manifest_version = 1\nimplementation = \"toy\"\n");
    for (scenario, class) in entries {
        text.push_str(&format!(
            "\n[[expected_failure]]\nscenario = \"{scenario}\"\nclass = \"{class}\"\nreason = \"a test\"\n"
        ));
    }
    let path = dir.join("toy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_manifest_ratchet_fails_new_failures_and_unexpected_passes() {
    let dir = tempfile::tempdir().unwrap();
    let listed = manifest(
        dir.path(),
        &[("lease/expiry-reacquire.yaml", "upstream-bug")],
    );
    let args = |manifest: &Path| {
        certify(&[
            "--impl",
            &toy("proxy"),
            "--manifest",
            manifest.to_str().unwrap(),
            "--format",
            "json",
            "scenarios/lease/expiry-reacquire.yaml",
            "scenarios/admission/completed-run.yaml",
        ])
    };
    let output = args(&listed);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let (results, _) = records(&output);
    assert_eq!(results[1]["verdict"], "expected-failure");
    assert_eq!(results[1]["class"], "upstream-bug");

    let stale = manifest(
        dir.path(),
        &[
            ("lease/expiry-reacquire.yaml", "upstream-bug"),
            ("admission/completed-run.yaml", "not-drivable"),
        ],
    );
    let output = args(&stale);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let (results, _) = records(&output);
    assert_eq!(results[0]["verdict"], "unexpected-pass");
}

#[test]
fn hostile_manifests_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("garbage.toml", "\u{1}\u{2} not toml [[[".to_string()),
        ("unknown.toml", "manifest_version = 1\nimplementation = \"x\"\nsurprise = true\n".to_string()),
        (
            "missing.toml",
            "manifest_version = 1\nimplementation = \"x\"\n[[expected_failure]]\nscenario = \"no/such.yaml\"\nclass = \"upstream-bug\"\nreason = \"r\"\n".to_string(),
        ),
    ];
    for (name, contents) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let output = certify(&[
            "--impl",
            "rehearse serve",
            "--manifest",
            path.to_str().unwrap(),
            "scenarios/admission/completed-run.yaml",
        ]);
        assert_eq!(output.status.code(), Some(2), "{name}: {}", text(&output));
        assert!(
            text(&output).contains("manifest"),
            "{name}: {}",
            text(&output)
        );
    }
}

#[test]
fn children_that_crash_hang_write_garbage_or_leave_out_answers_are_broken_not_failed() {
    let cases = [
        ("crash", "crash", "exited"),
        ("hang", "timeout", "within 3s"),
        ("garbage", "malformed", "this is not json"),
        ("mute", "malformed", "`receipt` is declared but missing"),
    ];
    for (mode, failure, says) in cases {
        let output = certify(&[
            "--impl",
            &toy(mode),
            "--timeout",
            "3",
            "--format",
            "json",
            "scenarios/admission/completed-run.yaml",
        ]);
        assert_eq!(output.status.code(), Some(1), "{mode}: {}", text(&output));
        let (results, _) = records(&output);
        assert_eq!(results[0]["verdict"], "broken", "{mode}");
        assert_eq!(results[0]["failure"], failure, "{mode}");
        let message = results[0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{mode}: {message}");
    }
    let crash = certify(&[
        "--impl",
        &toy("crash"),
        "scenarios/admission/completed-run.yaml",
    ]);
    assert!(text(&crash).contains("toy: giving up"), "{}", text(&crash));
}

#[test]
fn an_implementation_that_cannot_start_or_greet_is_an_input_error() {
    for command in ["/nonexistent/implementation", "", "'unclosed", &toy("old")] {
        let output = certify(&["--impl", command, "scenarios/admission/completed-run.yaml"]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command}: {}",
            text(&output)
        );
    }
}

#[test]
fn serve_answers_garbage_with_errors_and_keeps_serving() {
    use std::io::Write;
    let mut child = Command::new(rehearse())
        .arg("serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut input = Vec::new();
    input.extend_from_slice(b"not json\n\xff\xfe\n{\"type\":\"op\"}\n");
    input.extend_from_slice(br#"{"type":"query","query":"status","persona":"p"}"#);
    input.extend_from_slice(b"\n{\"type\":\"end\"}\n");
    stdin.write_all(&input).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let answers: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = answers
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["error", "error", "error", "error", "bye"]);
}
