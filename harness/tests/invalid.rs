//! Every malformed scenario under `scenarios/invalid/` fails `lint` with
//! exactly the error text in its golden, `snapshots/invalid/<stem>.lint.txt`.
//!
//! Run with `REHEARSE_BLESS=1` to rewrite the goldens from the current output.

mod common;

use common::root;
use std::path::{Path, PathBuf};
use std::process::Command;

use rehearse::exit::Exit;
use rehearse::lint::lint_files;

/// The invalid scenarios, relative to the root, in name order.
fn invalid_scenarios() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios/invalid"))
        .expect("scenarios/invalid exists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| Path::new("scenarios/invalid").join(path.file_name().expect("a file name")))
        .collect();
    files.sort();
    files
}

fn golden_path(scenario: &Path) -> PathBuf {
    let stem = scenario.file_stem().expect("a file stem").to_string_lossy();
    PathBuf::from(format!("snapshots/invalid/{stem}.lint.txt"))
}

#[test]
fn invalid_scenarios_fail_lint_with_their_golden_errors() {
    // Lint resolves paths from the current directory, and the goldens name
    // the files as given, relative to the workspace root.
    std::env::set_current_dir(root()).expect("the workspace root is a directory");
    let bless = std::env::var_os("REHEARSE_BLESS").is_some_and(|value| value == "1");
    let mut failures = Vec::new();
    for scenario in invalid_scenarios() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let exit = lint_files(std::slice::from_ref(&scenario), &mut out, &mut err);
        let actual = String::from_utf8(err).expect("lint writes UTF-8");
        assert_eq!(exit, Exit::Usage, "{} passed lint", scenario.display());
        assert!(out.is_empty(), "{} printed ok", scenario.display());
        assert!(
            actual.starts_with(&format!("{}:", scenario.display())),
            "{actual}"
        );
        assert_eq!(actual.lines().count(), 1, "one error line: {actual}");
        let golden = golden_path(&scenario);
        if bless {
            rehearse::atomic::write(&golden, actual.as_bytes())
                .expect("the golden is written atomically");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}:\n  expected: {expected}  actual:   {actual}",
                golden.display()
            )),
            Err(error) => failures.push(format!(
                "{}: missing golden ({error}); actual: {actual}",
                golden.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden(s) differ; review and rerun with REHEARSE_BLESS=1 to accept:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_golden_has_its_scenario() {
    let scenarios: Vec<PathBuf> = invalid_scenarios().iter().map(|s| golden_path(s)).collect();
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir(root().join("snapshots/invalid")).expect("snapshots/invalid") {
        let name = entry.expect("a directory entry").file_name();
        let golden = Path::new("snapshots/invalid").join(&name);
        if !scenarios.contains(&golden) {
            orphans.push(golden.display().to_string());
        }
    }
    assert!(
        orphans.is_empty(),
        "goldens without a scenario: {orphans:?}"
    );
}

#[test]
fn each_invalid_scenario_says_what_is_wrong_on_its_first_line() {
    let scenarios = invalid_scenarios();
    assert!(
        scenarios.len() >= 14,
        "only {} invalid scenarios",
        scenarios.len()
    );
    for scenario in scenarios {
        let text = std::fs::read_to_string(root().join(&scenario)).expect("readable");
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("# Wrong: "),
            "{} does not start with `# Wrong: ...`",
            scenario.display()
        );
    }
}

#[test]
fn the_binary_exits_2_on_an_invalid_file_and_0_on_a_valid_one() {
    let bin = env!("CARGO_BIN_EXE_rehearse");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let valid = dir.path().join("fine.yaml");
    std::fs::write(
        &valid,
        "version: 1\nstart: 2026-04-24T12:00:00Z\nsteps: []\n",
    )
    .expect("written");

    let output = Command::new(bin)
        .arg("lint")
        .arg(&valid)
        .output()
        .expect("rehearse runs");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("ok: {}\n", valid.display())
    );

    let output = Command::new(bin)
        .current_dir(root())
        .args(["lint", "scenarios/invalid/two-step-kinds.yaml"])
        .arg(&valid)
        .output()
        .expect("rehearse runs");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("ok: {}\n", valid.display())
    );
    assert!(String::from_utf8_lossy(&output.stderr)
        .starts_with("scenarios/invalid/two-step-kinds.yaml:10:5: two step kinds"));

    let output = Command::new(bin)
        .arg("lint")
        .output()
        .expect("rehearse runs");
    assert_eq!(output.status.code(), Some(2), "no files is a usage error");

    let output = Command::new(bin)
        .current_dir(dir.path())
        .args(["new", "starter"])
        .output()
        .expect("rehearse runs");
    assert_eq!(output.status.code(), Some(0));
    let output = Command::new(bin)
        .current_dir(dir.path())
        .args(["lint", "starter.yaml"])
        .output()
        .expect("rehearse runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "ok: starter.yaml\n"
    );
    let output = Command::new(bin)
        .current_dir(dir.path())
        .args(["new", "starter"])
        .output()
        .expect("rehearse runs");
    assert_eq!(output.status.code(), Some(2), "new refuses to overwrite");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "refusing to overwrite `./starter.yaml`: it already exists\n"
    );

    let output = Command::new(bin)
        .arg("schema")
        .output()
        .expect("rehearse runs");
    assert_eq!(output.status.code(), Some(0));
    let schema: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the schema is JSON");
    assert_eq!(schema["title"], "rehearse scenario, format version 1");
}
