//! Garbage on the command line and in input files: every subcommand refuses
//! it with exit code 2 and a message, never a panic.

mod common;

use std::process::Output;

use common::{rehearse, rehearse_command};

fn scratch(name: &str) -> std::path::PathBuf {
    common::scratch(&format!("garbage-{name}"))
}

fn assert_usage(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn run_refuses_missing_binary_and_invalid_files() {
    let dir = scratch("run");
    std::fs::write(dir.join("binary.yaml"), [0u8, 159, 146, 150, 255]).unwrap();
    std::fs::write(dir.join("list.yaml"), "- just\n- a list\n").unwrap();
    assert_usage(&rehearse(&dir, &["run", "missing.yaml"]), "missing.yaml");
    assert_usage(&rehearse(&dir, &["run", "binary.yaml"]), "binary.yaml");
    assert_usage(&rehearse(&dir, &["run", "list.yaml"]), "list.yaml:1:1");
    assert_usage(&rehearse(&dir, &["run"]), "FILE");
    assert_usage(
        &rehearse(&dir, &["run", "list.yaml", "--format", "xml"]),
        "xml",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn explore_refuses_nonsense_counts() {
    let dir = scratch("explore");
    assert_usage(&rehearse(&dir, &["explore", "--cases", "0"]), "--cases");
    assert_usage(&rehearse(&dir, &["explore", "--cases", "-5"]), "-5");
    assert_usage(&rehearse(&dir, &["explore", "--seed", "pi"]), "pi");
    assert_usage(
        &rehearse(&dir, &["explore", "--max-steps", "0"]),
        "--max-steps",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn new_review_bless_and_replay_refuse_garbage() {
    let dir = scratch("misc");
    assert_usage(&rehearse(&dir, &["new", "Bad Name"]), "Bad Name");
    assert_usage(&rehearse(&dir, &["new", "../escape"]), "../escape");
    assert_usage(
        &rehearse(&dir, &["review", "--accept", "--reject"]),
        "--reject",
    );
    assert_usage(&rehearse(&dir, &["bless", "nowhere"]), "nowhere");
    assert_usage(&rehearse(&dir, &["replay", "nowhere.json"]), "nowhere.json");
    std::fs::write(dir.join("empty.json"), "").unwrap();
    assert_usage(
        &rehearse(&dir, &["replay", "empty.json"]),
        "malformed capture bundle",
    );
    assert_usage(&rehearse(&dir, &["frobnicate"]), "frobnicate");
    let blessed_in_ci = rehearse_command(&dir, "true")
        .args(["bless"])
        .output()
        .unwrap();
    assert_usage(&blessed_in_ci, "refusing to bless while `CI` is set");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn certify_refuses_garbage_options() {
    let root = common::root();
    let one = "scenarios/admission/completed-run.yaml";
    let serve = ["certify", "--impl", "rehearse serve"];
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["certify", one], "--impl"),
        (vec!["certify", "--impl", "", one], "not a command line"),
        (vec!["certify", "--impl", "\"a", one], "not a command line"),
        ([&serve[..], &["--format", "xml", one]].concat(), "xml"),
        ([&serve[..], &["/etc/passwd"]].concat(), "/etc/passwd"),
        (
            [&serve[..], &["--manifest", "/nonexistent.toml", one]].concat(),
            "manifest",
        ),
    ];
    for timeout in ["0", "soon", "NaN", "1e9", "inf"] {
        cases.push((
            [&serve[..], &["--timeout", timeout, one]].concat(),
            "timeout",
        ));
    }
    for (args, needle) in cases {
        assert_usage(&rehearse(&root, &args), needle);
    }
}
