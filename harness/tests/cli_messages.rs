//! The command line's human output and error messages, as a user sees
//! them: each test runs `rehearse` on files of the repository and compares
//! its exit code, standard output and standard error with a snapshot
//! reviewed with `cargo insta review` (`tests/snapshots/cli_messages__*.snap`).
//! Every message here is printed by `main.rs`, the one exit point, or is a
//! command's report.

mod common;

use common::{rehearse_command, root};

/// `$ rehearse ARGS` run at the repository root with `CI` set (nothing is
/// written) and no colour, then its exit code, standard output and
/// standard error.
fn transcript(args: &[&str]) -> String {
    let output = rehearse_command(&root(), "true")
        .args(args)
        .output()
        .expect("the rehearse binary runs");
    let text = format!(
        "$ rehearse {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        output
            .status
            .code()
            .map_or("signal".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    // The binary's own path appears where a command line names it.
    text.replace(env!("CARGO_BIN_EXE_rehearse"), "[REHEARSE]")
}

/// Several transcripts, one after the other.
fn transcripts(commands: &[&[&str]]) -> String {
    commands
        .iter()
        .map(|args| transcript(args))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn lint_names_each_invalid_file_at_its_line_and_column() {
    let files = [
        "scenarios/budget/refusal-reason-order.yaml",
        "scenarios/invalid/bad-at.yaml",
        "scenarios/invalid/bad-cron.yaml",
        "scenarios/invalid/duplicate-persona.yaml",
        "scenarios/invalid/missing-start.yaml",
        "scenarios/invalid/money-not-exact.yaml",
        "scenarios/invalid/start-not-utc.yaml",
        "scenarios/invalid/two-documents.yaml",
        "scenarios/invalid/two-step-kinds.yaml",
    ];
    let mut args = vec!["lint"];
    args.extend(files);
    insta::assert_snapshot!("lint_invalid", transcript(&args));
}

#[test]
fn explain_shows_the_rules_a_step_went_through() {
    insta::assert_snapshot!(
        "explain_budget_refusal",
        transcript(&[
            "explain",
            "scenarios/budget/refusal-reason-order.yaml",
            "--step",
            "2"
        ])
    );
}

#[test]
fn input_errors_name_the_input_and_exit_2() {
    insta::assert_snapshot!(
        "input_errors",
        transcripts(&[
            &[
                "explain",
                "scenarios/budget/refusal-reason-order.yaml",
                "--step",
                "99"
            ],
            &[
                "explain",
                "scenarios/budget/refusal-reason-order.yaml",
                "--line",
                "2"
            ],
            &["explain", "scenarios/invalid/bad-at.yaml", "--step", "1"],
            &["bless", "scenarios/budget"],
            &["review", "--accept"],
            &["audit", "harness/tests/data/no-such-log.jsonl"],
            &["audit", "scenarios/budget/refusal-reason-order.yaml"],
            &[
                "audit",
                "snapshots/budget/refusal-reason-order/events.jsonl",
                "--bindings",
                "scenarios/invalid/bad-cron.yaml"
            ],
            &["explore", "--cases", "0"],
            &["certify", "--impl", "'unclosed"],
            &["check", "--partition", "hash:3/2"],
            &["check", "--jobs", "0"],
        ])
    );
}

#[test]
fn replay_says_whether_a_bundle_reproduces() {
    insta::assert_snapshot!(
        "replay",
        transcripts(&[
            &[
                "replay",
                "snapshots/budget/refusal-reason-order/capture.jsonl",
                "--strict"
            ],
            // A decision edited: a behaviour mismatch, exit 1.
            &["replay", "harness/tests/data/tampered/decision-kind.json"],
            &[
                "replay",
                "harness/tests/data/tampered/effect-hash-flipped.json"
            ],
            // Malformed bundles and files that are not bundles: exit 2.
            &["replay", "harness/tests/data/tampered/truncated.json"],
            &["replay", "scenarios/budget/refusal-reason-order.yaml"],
            &["replay", "scenarios/budget"],
            &["replay", "no-such-capture.jsonl"],
        ])
    );
}

/// `harness/tests/data/audit/violations.jsonl` is
/// `snapshots/budget/refusal-reason-order/events.jsonl` with a
/// `persona.control.disabled` event after its first line, its first lease
/// release dropped and its last budget record (of a zero-cost run) raised
/// to 0.3 USD, over the persona's `run_usd`; ids renumbered.
#[test]
fn audit_names_each_finding_at_its_line() {
    let log = "harness/tests/data/audit/violations.jsonl";
    insta::assert_snapshot!(
        "audit_findings",
        transcripts(&[
            &["audit", log],
            &[
                "audit",
                log,
                "--bindings",
                "scenarios/budget/refusal-reason-order.yaml"
            ],
        ])
    );
}

#[test]
fn certify_reports_the_toy_implementation_scenario_by_scenario() {
    let toy = format!(
        "python3 harness/tests/data/certify/toy.py proxy {}",
        env!("CARGO_BIN_EXE_rehearse")
    );
    insta::assert_snapshot!(
        "certify_toy",
        transcript(&[
            "certify",
            "--impl",
            &toy,
            "scenarios/lease",
            "scenarios/process/terminal-states.yaml"
        ])
    );
}
