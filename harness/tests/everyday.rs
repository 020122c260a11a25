//! The everyday loop through the binary, as a new user meets it: however a
//! path is spelled it names one scenario; `check` reports failures first,
//! compactly, with a recap, a filter and fail-fast; `review` works scenario
//! by scenario and never accepts stale outputs; JSON Lines; GitHub
//! annotations that cannot be injected; and the small things (`lint` of a
//! directory, `run --out` name clashes, the pump and process timeline).
//! The CLI's own human output is kept in insta snapshots
//! (`harness/tests/snapshots/`, reviewed with `cargo insta review`).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{rehearse_command, Library, PAUSE, UNKNOWN_FIELD};

/// Two steps whose spend an edit breaks: the expectation on the day's
/// spend fails and every golden differs from step 2 on.
const SPEND: &str = "\
version: 1
start: 2026-04-24T12:00:00Z
personas:
  merge_captain:
    entry_workflow: workflows/merge.harn#run
    budget: { daily_usd: 0.02, run_usd: 0.02, max_tokens: 100 }
steps:
  - at: 0s
    trigger:
      persona: merge_captain
      provider: github
      kind: pull_request
      metadata: { repository: burin-labs/harn, number: \"1\" }
      cost: { usd: 0.01, tokens: 10 }
    expect: { receipt: completed }
  - at: 1s
    spend: { persona: merge_captain, usd: 0.005, tokens: 3 }
    expect:
      receipt: ok
      persona: merge_captain
      status: { budget.spent_today_usd: 0.015 }
";

/// The library of these tests: `common::Library` with the spend scenario
/// to break and restore, run from any directory inside it.
impl Library {
    /// `controls/pause.yaml`, `lease/spend.yaml` and `lease/other.yaml`,
    /// blessed.
    fn blessed() -> Self {
        let library = Self::new();
        library.write("controls/pause.yaml", PAUSE);
        library.write("lease/spend.yaml", SPEND);
        library.write("lease/other.yaml", &SPEND.replace("\"1\"", "\"2\""));
        let bless = library.rehearse(".", "false", &["bless"]);
        assert_eq!(bless.status.code(), Some(0), "{}", all(&bless));
        library
    }

    /// Breaks `lease/spend.yaml`: its expectation fails and its goldens differ.
    fn break_spend(&self) {
        let path = self.dir.path().join("scenarios/lease/spend.yaml");
        fs::write(&path, SPEND.replace("usd: 0.005", "usd: 0.004")).unwrap();
    }

    fn restore_spend(&self) {
        self.write("lease/spend.yaml", SPEND);
    }

    /// Runs `rehearse` in `dir` (relative to the library) with `CI` as given.
    fn rehearse(&self, dir: &str, ci: &str, args: &[&str]) -> Output {
        rehearse_command(&self.dir.path().join(dir), ci)
            .args(args)
            .output()
            .unwrap()
    }

    fn pending(&self) -> Vec<String> {
        self.files()
            .into_iter()
            .filter(|f| f.ends_with(".new"))
            .collect()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn all(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// Finding 1: the spelling of a path changes nothing.

#[test]
fn every_spelling_of_a_path_names_the_same_scenario() {
    let library = Library::blessed();
    let root = library.root();
    let absolute = root.join("scenarios").display().to_string();
    let before = library.files();
    let spellings: [(&str, Vec<String>); 6] = [
        (".", vec!["./scenarios".into()]),
        (".", vec![absolute.clone()]),
        (
            ".",
            vec!["scenarios//lease".into(), "./scenarios/controls/".into()],
        ),
        ("scenarios", vec![]),
        (
            "scenarios",
            vec!["lease".into(), "./controls/pause.yaml".into()],
        ),
        (
            "scenarios/lease",
            vec!["../../scenarios/lease/../lease".into()],
        ),
    ];
    for (dir, paths) in &spellings {
        let mut args = vec!["check"];
        args.extend(paths.iter().map(String::as_str));
        let output = library.rehearse(dir, "false", &args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{dir} {paths:?}: {}",
            all(&output)
        );
        assert_eq!(library.files(), before, "{dir} {paths:?} wrote files");
    }
    // Blessing by an absolute path, or from inside `scenarios/`, writes the
    // same goldens, naming the same source.
    let golden = library.read("snapshots/lease/spend/report.json");
    assert!(golden.contains("\"source\": \"scenarios/lease/spend.yaml\""));
    let file = root
        .join("scenarios/lease/spend.yaml")
        .display()
        .to_string();
    for (dir, path) in [(".", file.as_str()), ("scenarios", "lease/spend.yaml")] {
        let bless = library.rehearse(dir, "false", &["bless", path]);
        assert_eq!(bless.status.code(), Some(0), "{}", all(&bless));
        assert_eq!(library.files(), before, "bless {path} from {dir}");
        assert_eq!(library.read("snapshots/lease/spend/report.json"), golden);
    }
    // A path outside the project root is an input error, not a new library.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("x.yaml"), PAUSE).unwrap();
    let elsewhere = outside.path().join("x.yaml").display().to_string();
    for command in ["check", "bless"] {
        let output = library.rehearse(".", "false", &[command, &elsewhere]);
        assert_eq!(output.status.code(), Some(2), "{command}: {}", all(&output));
        assert!(
            all(&output).contains("is outside the project root"),
            "{}",
            all(&output)
        );
    }
    assert_eq!(library.files(), before);
}

// Finding 3: check's output scales.

#[test]
fn check_prints_failures_root_causes_first_and_a_recap() {
    let library = Library::blessed();
    library.break_spend();
    let output = library.rehearse(".", "true", &["check"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(!text.contains("PASS"), "passes are only counted: {text}");
    let expectation = text.find("expectation `status.budget.spent_today_usd` failed");
    let diff = text.find("report.json differs from its golden");
    assert!(expectation.is_some() && expectation < diff, "{text}");
    assert!(
        !text.contains("*.new"),
        "nothing is written in CI, so nothing is said about it: {text}"
    );
    insta::assert_snapshot!("check_failure", text);
    // `-v` lists the passes and prints whole diffs.
    let verbose = stdout(&library.rehearse(".", "true", &["check", "-v"]));
    assert!(verbose.contains("PASS  controls/pause.yaml"), "{verbose}");
    assert!(verbose.lines().count() > text.lines().count(), "{verbose}");
}

#[test]
fn check_selects_by_name_and_stops_at_the_first_failure() {
    let library = Library::blessed();
    library.break_spend();
    fs::write(
        library.dir.path().join("scenarios/lease/other.yaml"),
        SPEND
            .replace("\"1\"", "\"2\"")
            .replace("usd: 0.005", "usd: 0.003"),
    )
    .unwrap();
    // Both lease scenarios fail; -x stops after the first in sorted order.
    let both = stdout(&library.rehearse(".", "true", &["check"]));
    assert!(both.ends_with("check: 1 passed, 2 failed\n"), "{both}");
    for jobs in ["1", "4"] {
        let fast = library.rehearse(".", "true", &["check", "-x", "--jobs", jobs]);
        assert_eq!(fast.status.code(), Some(1));
        let text = stdout(&fast);
        assert!(text.contains("FAIL  lease/other.yaml"), "{text}");
        assert!(!text.contains("FAIL  lease/spend.yaml"), "{text}");
        assert!(
            text.ends_with("check: 1 passed, 1 failed, 1 not run (stopped at the first failure)\n"),
            "{text}"
        );
    }
    // A substring or a glob of the name, as with `-k`.
    for (filter, summary) in [
        ("pause", "check: 1 passed, 0 failed\n"),
        ("lease/sp", "check: 0 passed, 1 failed\n"),
        ("*/other", "check: 0 passed, 1 failed\n"),
        ("controls/*.yaml", "check: 1 passed, 0 failed\n"),
    ] {
        let text = stdout(&library.rehearse(".", "true", &["check", "-k", filter]));
        assert!(text.ends_with(summary), "{filter}: {text}");
    }
    // Selecting nothing is an input error, never a pass.
    let none = library.rehearse(".", "true", &["check", "-k", "nothing-like-this"]);
    assert_eq!(none.status.code(), Some(2));
    insta::assert_snapshot!("check_empty_filter", all(&none));
    fs::create_dir_all(library.dir.path().join("scenarios/empty")).unwrap();
    let empty = library.rehearse(".", "true", &["check", "scenarios/empty"]);
    assert_eq!(empty.status.code(), Some(2), "{}", all(&empty));
    insta::assert_snapshot!("check_empty_directory", all(&empty));
}

// Finding 3 (pending files) and issue 14 finding 5: `*.new` files.

#[test]
fn pending_files_are_announced_only_when_written_and_removed_once_stale() {
    let library = Library::blessed();
    library.break_spend();
    let failing = stdout(&library.rehearse(".", "false", &["check"]));
    assert!(
        failing.contains("saved the new outputs beside the goldens as `*.new`"),
        "{failing}"
    );
    assert_eq!(
        library.pending(),
        [
            "snapshots/lease/spend/capture.jsonl.new",
            "snapshots/lease/spend/events.jsonl.new",
            "snapshots/lease/spend/report.json.new",
        ]
    );
    // Fixed again: a passing check removes the stale pending files ...
    library.restore_spend();
    let golden = library.read("snapshots/lease/spend/report.json");
    let passing = library.rehearse(".", "false", &["check"]);
    assert_eq!(passing.status.code(), Some(0), "{}", all(&passing));
    assert!(!stdout(&passing).contains("*.new"), "{}", stdout(&passing));
    assert_eq!(library.pending(), Vec::<String>::new());
    // ... and a pending file that survives anyway (an older version's) is
    // never accepted over a golden that is right.
    let stale = library
        .dir
        .path()
        .join("snapshots/lease/spend/report.json.new");
    fs::write(&stale, "{ \"stale\": true }\n").unwrap();
    let review = library.rehearse(".", "false", &["review", "--accept"]);
    assert_eq!(review.status.code(), Some(0), "{}", all(&review));
    assert!(
        stdout(&review).contains("stale lease/spend.yaml"),
        "{}",
        all(&review)
    );
    assert_eq!(library.read("snapshots/lease/spend/report.json"), golden);
    assert_eq!(library.pending(), Vec::<String>::new());
}

// Finding 4: review.

#[test]
fn review_lists_compactly_by_scenario_and_takes_paths_and_flags() {
    let library = Library::blessed();
    library.break_spend();
    library.write("controls/pause.yaml", &PAUSE.replace("at: 2s", "at: 3s"));
    library.rehearse(".", "false", &["check"]);
    // spend: report, events, capture; pause: the same and its run record.
    assert_eq!(library.pending().len(), 7);
    // Without a terminal: one block per scenario, no diffs.
    let listing = library.rehearse(".", "false", &["review"]);
    assert_eq!(listing.status.code(), Some(1));
    let text = stdout(&listing);
    assert!(text.lines().count() < 25, "{text}");
    insta::assert_snapshot!("review_listing", text);
    // A path limits the review; `--reject` decides for scripts.
    let rejected = library.rehearse(".", "false", &["review", "scenarios/controls", "--reject"]);
    assert_eq!(rejected.status.code(), Some(0), "{}", all(&rejected));
    assert!(stdout(&rejected).contains("rejected controls/pause.yaml"));
    assert_eq!(library.pending().len(), 3, "{:?}", library.pending());
    // Accepting a scenario whose expectation fails warns first.
    let accepted = library.rehearse("scenarios", "false", &["review", "lease", "--accept"]);
    assert_eq!(accepted.status.code(), Some(1), "{}", all(&accepted));
    insta::assert_snapshot!("review_accept_failing", stdout(&accepted));
    assert_eq!(library.pending(), Vec::<String>::new());
}

#[test]
fn pending_files_are_ignored_by_git() {
    let ignore =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.gitignore")).unwrap();
    assert!(ignore.lines().any(|line| line == "*.new"), "{ignore}");
}

// Finding 5: JSON Lines.

#[test]
fn run_and_check_write_json_lines() {
    let library = Library::blessed();
    let output = library.rehearse(
        "scenarios",
        "false",
        &[
            "run",
            "lease/spend.yaml",
            "controls/pause.yaml",
            "--format",
            "json",
            "--out",
            "../out",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", all(&output));
    let records: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["record"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["scenario", "scenario", "summary"]);
    assert!(records.iter().all(|r| r["version"] == 1));
    assert_eq!(records[0]["report"]["source"], "scenarios/lease/spend.yaml");
    assert!(records[0]["report"]["report_version"].is_u64());
    assert_eq!(records[2]["passed"], 2);
    let check = library.rehearse(".", "true", &["check", "--format", "json"]);
    let lines: Vec<serde_json::Value> = stdout(&check)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["record"], "summary");
    assert_eq!(lines[3]["passed"], 3);
}

// Finding 6 and issue 14 finding 12: GitHub annotations.

#[test]
fn github_annotations_carry_lines_and_cannot_be_injected() {
    let library = Library::blessed();
    library.write("lease/unknown.yaml", UNKNOWN_FIELD);
    library.write("lease/evil\n::add-mask::secret,x:y.yaml", PAUSE);
    let output = library.rehearse(".", "true", &["check", "--format", "github"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stdout(&output);
    assert!(
        text.contains("::error file=scenarios/lease/unknown.yaml,line=5,title=rehearse lease/unknown.yaml::scenarios/lease/unknown.yaml:5:1: unknown field `surprise`"),
        "{text}"
    );
    for line in text.lines() {
        assert!(
            line.starts_with("::error ") || line.starts_with("check: "),
            "an injected command: {line:?}\n{text}"
        );
    }
    // The file name's newline, colons and comma are escaped in the
    // properties, and its newline in the message.
    let evil = "evil%0A%3A%3Aadd-mask%3A%3Asecret%2Cx%3Ay.yaml";
    assert!(
        text.contains(&format!(
            "::error file=scenarios/lease/{evil},line=1,title=rehearse lease/{evil}::scenarios/lease/evil%0A::add-mask::secret,x:y.yaml:1:1: "
        )),
        "{text}"
    );
}

// Finding 7: the small things.

#[test]
fn lint_takes_a_directory_as_check_does() {
    let library = Library::blessed();
    let output = library.rehearse(".", "false", &["lint", "."]);
    assert_eq!(output.status.code(), Some(0), "{}", all(&output));
    assert_eq!(
        stdout(&output),
        "ok: ./scenarios/controls/pause.yaml\nok: ./scenarios/lease/other.yaml\nok: ./scenarios/lease/spend.yaml\n"
    );
}

#[test]
fn run_refuses_two_scenarios_with_one_output_folder() {
    let library = Library::blessed();
    library.write(
        "copy/spend.yaml",
        &SPEND.replace("usd: 0.01,", "usd: 0.02,"),
    );
    let output = library.rehearse(
        ".",
        "false",
        &[
            "run",
            "scenarios/lease/spend.yaml",
            "scenarios/copy/spend.yaml",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", all(&output));
    insta::assert_snapshot!("run_name_clash", String::from_utf8_lossy(&output.stderr));
    // The first scenario's outputs are intact.
    assert!(library
        .read("out/spend/report.json")
        .contains("\"source\": \"scenarios/lease/spend.yaml\""));
}

#[test]
fn the_timeline_names_pumped_episodes_and_process_operations() {
    let library = Library::blessed();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (from, to) in [
        (
            "scenarios/supervisor/pump-tie-by-episode-id.yaml",
            "pump.yaml",
        ),
        ("scenarios/process/list-filters.yaml", "process.yaml"),
    ] {
        fs::copy(workspace.join(from), library.dir.path().join(to)).unwrap();
    }
    let output = library.rehearse(".", "false", &["run", "pump.yaml", "process.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", all(&output));
    let text = stdout(&output);
    let pumps: Vec<&str> = text.lines().filter(|l| l.contains(" pump ")).collect();
    assert_eq!(pumps.len(), 3, "{text}");
    assert!(
        pumps[0].ends_with("(episode 1 from step 2)"),
        "{}",
        pumps[0]
    );
    assert!(
        pumps[1].ends_with("(episode 2 from step 3)"),
        "{}",
        pumps[1]
    );
    assert!(
        text.lines().any(|l| l.contains("  process claim p2  ")),
        "{text}"
    );
}

/// The keys of `value` at `path` (`steps.*.decision`: `*` is every entry
/// of a list or every value of a map).
fn keys_at(
    value: &serde_json::Value,
    path: &[&str],
    found: &mut std::collections::BTreeSet<String>,
) {
    match path.split_first() {
        None => {
            if let Some(object) = value.as_object() {
                found.extend(object.keys().cloned());
            }
        }
        Some((&"*", rest)) => {
            let children: Vec<&serde_json::Value> = match value {
                serde_json::Value::Array(items) => items.iter().collect(),
                serde_json::Value::Object(map) => map.values().collect(),
                _ => Vec::new(),
            };
            for child in children {
                keys_at(child, rest, found);
            }
        }
        Some((key, rest)) => {
            if let Some(child) = value.get(*key) {
                keys_at(child, rest, found);
            }
        }
    }
}

#[test]
fn the_formats_document_names_every_field() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = fs::read_to_string(workspace.join("docs/FORMATS.md")).unwrap();
    let report_paths: [&[&str]; 13] = [
        &[],
        &["steps", "*"],
        &["steps", "*", "decision"],
        &["steps", "*", "expectations", "*"],
        &["deferred_at_end", "*"],
        &["invariant_violations", "*"],
        &["final_state"],
        &["final_state", "personas", "*"],
        &["final_state", "personas", "*", "budget"],
        &["final_state", "personas", "*", "active_lease"],
        &["final_state", "personas", "*", "queued_work", "*"],
        &["final_state", "unsettled"],
        &["summary"],
    ];
    // Each line of a capture: the header, an event, a decision, the seal.
    let capture_paths: [&[&str]; 8] = [
        &[],
        &["config"],
        &["config", "personas", "*"],
        &["config", "supervisor"],
        &["event"],
        &["decision"],
        &["decision", "effects", "*"],
        &["seal"],
    ];
    let mut keys = std::collections::BTreeSet::new();
    let mut stack = vec![workspace.join("snapshots")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let paths: &[&[&str]] = match name.as_str() {
                "report.json" => &report_paths,
                "capture.jsonl" => &capture_paths,
                "runs.jsonl" => {
                    for line in fs::read_to_string(&path).unwrap().lines() {
                        let record: serde_json::Value = serde_json::from_str(line).unwrap();
                        keys_at(&record, &[], &mut keys);
                    }
                    continue;
                }
                _ => {
                    if path.is_dir() {
                        stack.push(path);
                    }
                    continue;
                }
            };
            let text = fs::read_to_string(&path).unwrap();
            let values: Vec<serde_json::Value> = if name.ends_with(".jsonl") {
                text.lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect()
            } else {
                vec![serde_json::from_str(&text).unwrap()]
            };
            for (value, at) in values
                .iter()
                .flat_map(|v| paths.iter().map(move |at| (v, at)))
            {
                keys_at(value, at, &mut keys);
            }
        }
    }
    // The JSON Lines records of `check`.
    let library = Library::blessed();
    library.break_spend();
    let check = library.rehearse(".", "true", &["check", "--format", "json"]);
    for line in stdout(&check).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        keys_at(&record, &[], &mut keys);
        keys_at(&record, &["problems", "*"], &mut keys);
    }
    assert!(keys.len() > 60, "{keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| !doc.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/FORMATS.md does not name {missing:?}"
    );
}

#[test]
fn review_takes_single_keys_on_a_terminal() {
    let library = Library::blessed();
    library.break_spend();
    library.write("controls/pause.yaml", &PAUSE.replace("at: 2s", "at: 3s"));
    library.rehearse(".", "false", &["check"]);
    // spend: report, events, capture; pause: the same and its run record.
    assert_eq!(library.pending().len(), 7);
    // `script` gives review a terminal; the keys are typed ahead: `r`
    // rejects the first scenario, `q` quits before the second, no Enter.
    let command = format!("'{}' review", env!("CARGO_BIN_EXE_rehearse"));
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(library.dir.path())
        .env("CI", "false")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"rq").unwrap();
    let output = child.wait_with_output().unwrap();
    let text = stdout(&output).replace('\r', "");
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("rejected controls/pause.yaml"), "{text}");
    assert!(
        text.contains("review: 0 accepted, 1 rejected, 1 left, 0 stale removed"),
        "{text}"
    );
    // The interactive view shows each hunk with the step it belongs to.
    assert!(
        text.contains(" @@ step at scenarios/controls/pause.yaml:16"),
        "{text}"
    );
    assert_eq!(
        library.pending(),
        [
            "snapshots/lease/spend/capture.jsonl.new",
            "snapshots/lease/spend/events.jsonl.new",
            "snapshots/lease/spend/report.json.new",
        ]
    );
}

#[test]
fn a_closed_pipe_ends_output_and_keeps_the_status() {
    let library = Library::blessed();
    for (expected, args) in [(0, &["check", "-v"][..]), (1, &["check"][..])] {
        if expected == 1 {
            library.break_spend();
        }
        let (status, stderr) = status_of(&library, args, true);
        assert_eq!(status, Some(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn input_errors_are_exit_2_with_one_message() {
    let library = Library::blessed();
    let outside = tempfile::tempdir().unwrap();
    let root = library.root().display().to_string();
    let elsewhere = outside.path().canonicalize().unwrap().display().to_string();
    let mut messages = String::new();
    let cases: [&[&str]; 6] = [
        &["check", "nowhere.yaml"],
        &["check", &elsewhere],
        &["bless", &elsewhere],
        &["review", "nowhere"],
        &["check", "--snapshots", &elsewhere],
        &["lint", "scenarios/empty-dir-that-is-not-there"],
    ];
    for args in cases {
        let output = library.rehearse(".", "false", args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", all(&output));
        assert_eq!(stdout(&output), "", "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr)
            .replace(&elsewhere, "[OUTSIDE]")
            .replace(&root, "[ROOT]");
        messages.push_str(
            &format!("$ rehearse {}\n{stderr}", args.join(" ")).replace(&elsewhere, "[OUTSIDE]"),
        );
    }
    insta::assert_snapshot!("input_errors", messages);
}

/// Which of a child's output pipes are closed, as `| true` closes standard
/// output (and `2>&1 | true` both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    Neither,
    Stdout,
    Stderr,
    Both,
}

/// Runs `rehearse args` in the library with `CI` unset; when `closed`, its
/// standard output is closed at once, as `| true` does. Returns the exit
/// status and standard error.
fn status_of(library: &Library, args: &[&str], closed: bool) -> (Option<i32>, String) {
    let closed = if closed {
        Closed::Stdout
    } else {
        Closed::Neither
    };
    status_with(library, args, closed)
}

/// Runs `rehearse args` in the library with `CI` unset and the pipes
/// `closed` closed by their reader before the child starts, so its first
/// write to them fails. Returns the exit status and standard error (empty
/// when that pipe was closed).
fn status_with(library: &Library, args: &[&str], closed: Closed) -> (Option<i32>, String) {
    // The write end of a pipe whose reader has exited: the standard input
    // of a `true` that has already ended.
    let closed_pipe = || {
        let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        let writer = reader.stdin.take().unwrap();
        reader.wait().unwrap();
        Stdio::from(writer)
    };
    let (stdout, stderr) = match closed {
        Closed::Neither => (Stdio::piped(), Stdio::piped()),
        Closed::Stdout => (closed_pipe(), Stdio::piped()),
        Closed::Stderr => (Stdio::piped(), closed_pipe()),
        Closed::Both => (closed_pipe(), closed_pipe()),
    };
    let output = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .current_dir(library.dir.path())
        .args(args)
        .env("CI", "false")
        .stdout(stdout)
        .stderr(stderr)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[test]
fn every_command_keeps_its_own_status_on_a_closed_pipe() {
    let library = Library::blessed();
    let golden = library.dir.path().join("snapshots/lease/spend");
    let capture = fs::read_dir(&golden)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("capture"))
        .expect("the blessed scenario has a capture bundle");
    let capture = format!("snapshots/lease/spend/{capture}");
    let out = library.dir.path().join("out-closed");
    let out = out.to_str().unwrap();
    let commands: [&[&str]; 14] = [
        &["check", "-v"],
        &["bless"],
        &["lint", "scenarios/lease/spend.yaml"],
        &["explain", "scenarios/lease/spend.yaml", "--step", "1"],
        &["run", "scenarios/lease/spend.yaml", "--out", out],
        &["replay", &capture],
        &["audit", "snapshots/lease/spend/events.jsonl"],
        &["schema", "--events"],
        // Commands that end in an error, which `main` prints on stderr.
        &["explain", "scenarios/lease/spend.yaml", "--step", "99"],
        &["replay", "scenarios/lease/spend.yaml"],
        &["audit", "nowhere.jsonl"],
        &["lint", "nowhere.yaml"],
        &["run", "nowhere.yaml", "--out", out],
        &["check", "nowhere.yaml"],
    ];
    for args in commands {
        let (open, open_stderr) = status_with(&library, args, Closed::Neither);
        assert!(matches!(open, Some(0..=2)), "{args:?}: {open_stderr}");
        for closed in [Closed::Stdout, Closed::Stderr, Closed::Both] {
            let (status, stderr) = status_with(&library, args, closed);
            // A panic would exit 101, whether or not its message got out.
            assert_eq!(status, open, "{args:?} with {closed:?} closed: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        }
    }
}
