//! Tampered capture bundles: `rehearse replay --strict` on each bundle under
//! `tests/data/tampered/` ends with the exit code its case names and prints
//! exactly the message in its golden, `<name>.expected.txt` beside it.
//!
//! The bundles are captures of `scenarios/supervisor/rate-limit-delay.yaml`
//! and `scenarios/supervisor/retries-walk-attempts.yaml`, each edited in one
//! place. A failing replay's golden is its stderr; an untampered bundle's
//! golden is its stdout, and its stderr must be empty.
//!
//! Run with `REHEARSE_BLESS=1` to rewrite the goldens from the current output.

mod common;

use common::root;
use std::process::Command;

/// Where the bundles and their goldens live, relative to the workspace root.
const DATA_DIR: &str = "harness/tests/data/tampered";

/// `rehearse`'s exit codes, as `harness/src/exit.rs` defines them.
const PASS: i32 = 0;
const MISMATCH: i32 = 1;
const USAGE: i32 = 2;

/// Replays bundle `name` strictly and checks its exit code and message.
fn check(name: &str, expected_code: i32) {
    let bundle = format!("{DATA_DIR}/{name}.json");
    // The message names the bundle as given, so the path is relative to the
    // root and the goldens do not depend on where the workspace is.
    let output = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(["replay", "--strict", &bundle])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the rehearse binary runs");
    let stdout = String::from_utf8(output.stdout).expect("replay writes UTF-8");
    let stderr = String::from_utf8(output.stderr).expect("replay writes UTF-8");
    let code = output.status.code().expect("replay exits with a code");
    assert_eq!(
        code, expected_code,
        "`rehearse replay --strict {bundle}` exited {code}, expected {expected_code}\nstdout: {stdout}\nstderr: {stderr}"
    );
    let actual = if expected_code == PASS {
        assert_eq!(stderr, "", "a bundle that replays prints no error");
        stdout
    } else {
        assert_eq!(stdout, "", "a bundle that fails prints nothing on stdout");
        stderr
    };
    let golden = root().join(format!("{DATA_DIR}/{name}.expected.txt"));
    if std::env::var_os("REHEARSE_BLESS").is_some_and(|value| value == "1") {
        rehearse::atomic::write(&golden, actual.as_bytes())
            .expect("the golden is written atomically");
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|error| {
        panic!(
            "failed to read golden `{}`: {error}; write it with REHEARSE_BLESS=1 cargo test -p rehearse --test tampered",
            golden.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "`rehearse replay --strict {bundle}` printed something other than `{}`; if the change is intended, rewrite the goldens with REHEARSE_BLESS=1 cargo test -p rehearse --test tampered",
        golden.display()
    );
}

/// With `REHEARSE_RESEAL=1`, rewrites every bundle (but `truncated`,
/// `seal-*` and `unknown-capture-version`) as version 2 documents
/// with a seal over its edited contents, so each edit is caught by the
/// check it was made for rather than by the seal.
#[test]
fn reseal_when_asked() {
    if std::env::var_os("REHEARSE_RESEAL").is_none_or(|value| value != "1") {
        return;
    }
    for name in CASES {
        if matches!(name, "truncated" | "unknown-capture-version") || name.starts_with("seal-") {
            continue;
        }
        let path = root().join(format!("{DATA_DIR}/{name}.json"));
        let text = std::fs::read_to_string(&path).expect("the bundle reads");
        let mut value: serde_json::Value = serde_json::from_str(&text).expect("the bundle is JSON");
        value["capture_version"] =
            serde_json::Value::String(rehearse_runtime::capture::CAPTURE_VERSION_2.to_string());
        let bundle = rehearse_runtime::seal::read_unsealed(value).expect("the bundle reads");
        let mut text = serde_json::to_string_pretty(&bundle).expect("JSON serialises");
        text.push('\n');
        rehearse::atomic::write(&path, text.as_bytes()).expect("the golden is written atomically");
    }
}

/// Every case below, so that a bundle without a case is noticed.
const CASES: [&str; 23] = [
    "untampered-rate-limit-delay",
    "untampered-retries-walk-attempts",
    "payload-flipped",
    "payload-hash-flipped",
    "invalid-payload",
    "decision-kind",
    "decision-schedule-at",
    "decision-retry-count",
    "decision-termination",
    "decision-removed",
    "effect-hash-flipped",
    "effect-removed",
    "duplicate-event-id",
    "provenance-changed",
    "unknown-capture-version",
    "truncated",
    "seal-trailing-dropped",
    "seal-everything-dropped",
    "seal-budget-raised",
    "seal-schedule-added",
    "config-zero-window",
    "config-retries-unbounded",
    "config-negative-start",
];

#[test]
fn every_bundle_has_a_case() {
    let mut bundles: Vec<String> = std::fs::read_dir(root().join(DATA_DIR))
        .expect("the tampered bundles exist")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            path.file_stem()
                .expect("a file stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    bundles.sort();
    let mut cases: Vec<String> = CASES.iter().map(|name| (*name).to_string()).collect();
    cases.sort();
    assert_eq!(bundles, cases);
}

#[test]
fn untampered_rate_limit_delay_replays() {
    check("untampered-rate-limit-delay", PASS);
}

#[test]
fn untampered_retries_walk_attempts_replays() {
    check("untampered-retries-walk-attempts", PASS);
}

#[test]
fn payload_flipped() {
    check("payload-flipped", MISMATCH);
}

#[test]
fn payload_hash_flipped() {
    check("payload-hash-flipped", MISMATCH);
}

/// A payload that is no operation makes the bundle malformed: an input
/// error (2), not a behaviour mismatch.
#[test]
fn invalid_payload() {
    check("invalid-payload", USAGE);
}

#[test]
fn decision_kind() {
    check("decision-kind", MISMATCH);
}

#[test]
fn decision_schedule_at() {
    check("decision-schedule-at", MISMATCH);
}

#[test]
fn decision_retry_count() {
    check("decision-retry-count", MISMATCH);
}

#[test]
fn decision_termination() {
    check("decision-termination", MISMATCH);
}

/// Every event has exactly one decision; a bundle without is inconsistent,
/// an input error (2).
#[test]
fn decision_removed() {
    check("decision-removed", USAGE);
}

#[test]
fn effect_hash_flipped() {
    check("effect-hash-flipped", MISMATCH);
}

#[test]
fn effect_removed() {
    check("effect-removed", MISMATCH);
}

#[test]
fn duplicate_event_id() {
    check("duplicate-event-id", MISMATCH);
}

#[test]
fn provenance_changed() {
    check("provenance-changed", MISMATCH);
}

#[test]
fn unknown_capture_version() {
    check("unknown-capture-version", USAGE);
}

#[test]
fn truncated() {
    check("truncated", USAGE);
}

/// Finding 9: trailing events and decisions dropped (here the last two,
/// below all of them) without resealing: the seal no longer matches, a
/// malformed bundle (2), never "reproduces".
#[test]
fn seal_trailing_dropped() {
    check("seal-trailing-dropped", USAGE);
}

#[test]
fn seal_everything_dropped() {
    check("seal-everything-dropped", USAGE);
}

/// Finding 9: budgets raised 1000 times, or a schedule added, in the
/// configuration without resealing.
#[test]
fn seal_budget_raised() {
    check("seal-budget-raised", USAGE);
}

#[test]
fn seal_schedule_added() {
    check("seal-schedule-added", USAGE);
}

/// Finding 9: resealed configurations that no scenario could declare are
/// refused by the scenario rules (2) before anything replays.
#[test]
fn config_zero_window() {
    check("config-zero-window", USAGE);
}

/// Finding 10: an unbounded `max_retries` is refused at once, not run until
/// memory runs out.
#[test]
fn config_retries_unbounded() {
    check("config-retries-unbounded", USAGE);
}

#[test]
fn config_negative_start() {
    check("config-negative-start", USAGE);
}
