//! The README's promises: its two set-up commands are the ones CI runs, the
//! conformance command passes on the bundled library, and the five-minute
//! tour works as written (new, lint, run, bless, check, a changed number
//! fails check with a diff naming the scenario, review, replay).

mod common;

use common::{rehearse, root};
use std::process::{Command, Output};

/// The `rehearse` arguments of every `cargo run -q -p rehearse -- ...`
/// line in the README's tour, in order.
fn tour_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let tour = readme
        .split("## A five-minute tour")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a tour section");
    tour.lines()
        .filter_map(|line| line.strip_prefix("cargo run -q -p rehearse -- "))
        .map(|line| line.split('#').next().unwrap().trim().to_string())
        .collect()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The commands in the README's "Set up" code block, comments removed.
fn setup_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme.split("## Set up").nth(1).expect("a Set up section");
    let block = section
        .split("```sh")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    block
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_readme_has_two_setup_commands_and_ci_runs_both() {
    let commands = setup_commands();
    assert_eq!(
        commands,
        ["cargo run -p rehearse -- check", "cargo test --workspace"]
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    for command in &commands {
        assert!(
            ci.lines().any(|l| l.trim().replace(" -q", "") == *command),
            ".ci/run does not run `{command}`"
        );
    }
}

#[test]
fn the_conformance_command_passes_on_the_bundled_library() {
    let output = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .arg("check")
        .current_dir(root())
        .env("CI", "true")
        .output()
        .unwrap();
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("check: ") && last.ends_with(" passed, 0 failed"),
        "{last}"
    );
}

#[test]
fn the_tour_runs_the_commands_this_test_runs() {
    assert_eq!(
        tour_commands(),
        [
            "new demo --dir scenarios/tour",
            "lint scenarios/tour/demo.yaml",
            "run scenarios/tour/demo.yaml",
            "explain scenarios/tour/demo.yaml --step 3",
            "explain scenarios/tour/demo.yaml --line 55",
            "run scenarios/tour/demo.yaml --html out/pages",
            "check --html out/pages",
            "bless scenarios/tour/demo.yaml",
            "check",
            "replay out/demo/capture.jsonl --strict",
        ]
    );
}

#[test]
fn the_tour_works_as_written() {
    let dir = std::env::temp_dir().join(format!("rehearse-tour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // As in a checkout: the committed schema the editor line points at.
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::copy(
        root().join("docs/scenario.schema.json"),
        dir.join("docs/scenario.schema.json"),
    )
    .unwrap();
    let new = rehearse(&dir, &["new", "demo", "--dir", "scenarios/tour"]);
    assert!(new.status.success(), "{}", text(&new));
    let path = dir.join("scenarios/tour/demo.yaml");
    let starter = std::fs::read_to_string(&path).unwrap();
    let schema = starter
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# yaml-language-server: $schema="))
        .expect("an editor line");
    assert!(
        dir.join("scenarios/tour").join(schema).is_file(),
        "the editor line `{schema}` resolves to the committed schema"
    );
    let lint = rehearse(&dir, &["lint", "scenarios/tour/demo.yaml"]);
    assert!(lint.status.success(), "{}", text(&lint));
    let run = rehearse(&dir, &["run", "scenarios/tour/demo.yaml"]);
    assert!(run.status.success(), "{}", text(&run));
    for file in ["events.jsonl", "report.json", "capture.jsonl", "runs.jsonl"] {
        assert!(dir.join("out/demo").join(file).is_file(), "{file} missing");
    }
    let runs = std::fs::read_to_string(dir.join("out/demo/runs.jsonl")).unwrap();
    assert!(
        runs.lines().next().is_some_and(
            |line| line.starts_with("{\"run_record_version\":3,\"_type\":\"run_record\",")
        ),
        "no run records: {runs}"
    );

    // Why step 3 (the trigger while paused; line 55 is inside it) was queued.
    for how in [["--step", "3"], ["--line", "55"]] {
        let explain = rehearse(
            &dir,
            &["explain", "scenarios/tour/demo.yaml", how[0], how[1]],
        );
        let out = text(&explain);
        assert!(explain.status.success(), "{out}");
        assert!(out.starts_with("step 3 (line "), "{out}");
        assert!(
            out.contains("1. paused?") && out.contains("yes: queue the work"),
            "{out}"
        );
    }
    let page = rehearse(
        &dir,
        &["run", "scenarios/tour/demo.yaml", "--html", "out/pages"],
    );
    assert!(page.status.success(), "{}", text(&page));
    assert!(dir.join("out/pages/demo.html").is_file());

    let bless = rehearse(&dir, &["bless", "scenarios/tour/demo.yaml"]);
    assert!(bless.status.success(), "{}", text(&bless));
    assert!(dir.join("snapshots/tour/demo/report.json").is_file());
    let check = rehearse(&dir, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    let pages = rehearse(&dir, &["check", "--html", "out/pages"]);
    assert_eq!(pages.status.code(), Some(0), "{}", text(&pages));
    assert!(dir.join("out/pages/index.html").is_file());
    assert!(dir.join("out/pages/tour/demo.html").is_file());

    // Change behaviour: one number in a step. Its inline expectation now
    // fails too, and accepting goldens must not hide that.
    let yaml = std::fs::read_to_string(&path).unwrap();
    let changed = yaml.replacen("usd: 0.01", "usd: 0.005", 1);
    assert_ne!(changed, yaml, "the starter has a `usd: 0.01` cost to edit");
    std::fs::write(&path, &changed).unwrap();
    let failing = rehearse(&dir, &["check"]);
    let out = text(&failing);
    assert_eq!(failing.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "expectation `status.budget.spent_today_usd` failed: expected 0.02, actual 0.015"
        ),
        "{out}"
    );
    // Review warns before accepting goldens whose expectations fail, and
    // says so in its exit status.
    let accepted = rehearse(&dir, &["review", "--accept"]);
    let out = text(&accepted);
    assert_eq!(accepted.status.code(), Some(1), "{out}");
    let warning = out.find("warning: 1 failed expectation; accepting its goldens");
    let accept = out.find("accepted tour/demo.yaml");
    assert!(warning.is_some() && warning < accept, "{out}");
    assert_eq!(
        rehearse(&dir, &["check"]).status.code(),
        Some(1),
        "accepted goldens do not make a failed expectation pass"
    );

    // Fix the expectation: now only the goldens differ.
    std::fs::write(
        &path,
        changed.replace(
            "budget.spent_today_usd: 0.02",
            "budget.spent_today_usd: 0.015",
        ),
    )
    .unwrap();
    let broken = rehearse(&dir, &["check"]);
    let out = text(&broken);
    assert_eq!(broken.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL  tour/demo.yaml"), "{out}");
    assert!(
        out.contains("--- snapshots/tour/demo/"),
        "a diff of the goldens: {out}"
    );
    assert!(
        out.lines().last().unwrap().ends_with("0 passed, 1 failed"),
        "{out}"
    );

    // Review accepts the pending change; check passes again.
    let review = rehearse(&dir, &["review", "--accept"]);
    assert!(review.status.success(), "{}", text(&review));
    assert_eq!(rehearse(&dir, &["check"]).status.code(), Some(0));

    let replay = rehearse(&dir, &["replay", "out/demo/capture.jsonl", "--strict"]);
    assert!(replay.status.success(), "{}", text(&replay));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_committed_schema_is_what_rehearse_schema_prints() {
    let printed = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(printed.status.success());
    let committed = std::fs::read_to_string(root().join("docs/scenario.schema.json")).unwrap();
    assert!(
        committed == String::from_utf8_lossy(&printed.stdout),
        "docs/scenario.schema.json is stale: regenerate it with `cargo run -q -p rehearse -- schema > docs/scenario.schema.json`"
    );
}

#[test]
fn new_points_editors_at_the_nearest_committed_schema() {
    let dir = std::env::temp_dir().join(format!("rehearse-schema-ref-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("docs/scenario.schema.json"), "{}").unwrap();
    let made = rehearse(&dir, &["new", "nested", "--dir", "scenarios/group"]);
    assert!(made.status.success(), "{}", text(&made));
    let first = std::fs::read_to_string(dir.join("scenarios/group/nested.yaml")).unwrap();
    assert_eq!(
        first.lines().next(),
        Some("# yaml-language-server: $schema=../../docs/scenario.schema.json")
    );
    let chosen = rehearse(
        &dir,
        &["new", "explicit", "--schema", "https://schemas.test/s.json"],
    );
    assert!(chosen.status.success(), "{}", text(&chosen));
    let first = std::fs::read_to_string(dir.join("explicit.yaml")).unwrap();
    assert_eq!(
        first.lines().next(),
        Some("# yaml-language-server: $schema=https://schemas.test/s.json")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
