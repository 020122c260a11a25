//! The CI conformance gate end to end: `rehearse check` run as a process
//! over small temporary libraries (and the real one), checking the JUnit
//! report's structure, that `--jobs` never changes the output, that
//! partitions cover the library exactly once, that a broken step is
//! annotated on its own line, that piped output holds no progress counter
//! or colour, and that the workflow runs the commands the README documents.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Output;

use common::{rehearse_command, root, text, Library, PAUSE, UNKNOWN_FIELD};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// A completed run and a direct spend; the test that breaks a step edits
/// the spend's `usd`.
const SPEND: &str = "\
version: 1
description: A completed run and a direct spend both count against the day.
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
    expect: { receipt: ok }
";

/// The step line of `SPEND`'s spend, and the text the breaking edit changes.
const SPEND_STEP: &str = "  - at: 1s";
const SPEND_USD: &str = "usd: 0.005, tokens: 3";

/// A worked figure of docs/SCENARIOS.md ("Reference behaviour"): daily 0.01 and a linear trigger costing 0.02 is
/// refused for the daily budget.
const DAILY: &str = "\
version: 1
start: 2026-04-24T12:00:00Z
personas:
  triager:
    entry_workflow: workflows/triage.harn#run
    budget: { daily_usd: 0.01 }
steps:
  - at: 0s
    trigger:
      persona: triager
      provider: linear
      kind: issue
      metadata: { issue_key: HAR-1 }
      cost: { usd: 0.02 }
    expect: { receipt: budget_exhausted, error: daily_usd }
";

/// Work queued while paused runs once on resume, and nothing stays queued.
fn pause_resume() -> String {
    format!(
        "{PAUSE}  - at: 3s
    expect:
      persona: merge_captain
      status: {{ queued_events: 0 }}
"
    )
}

/// A worked figure of docs/SCENARIOS.md: a tick at 12:30 costing 0.01 completes and the next
/// run is at 13:00.
const TICK: &str = "\
version: 1
start: 2026-04-24T12:00:00Z
personas:
  merge_captain:
    entry_workflow: workflows/merge.harn#run
    schedules: [\"*/30 * * * *\"]
    budget: { daily_usd: 0.02, run_usd: 0.02, max_tokens: 100 }
steps:
  - at: 30m
    tick: { persona: merge_captain, cost: { usd: 0.01 } }
    expect: { receipt: completed }
  - at: 31m
    expect:
      persona: merge_captain
      status:
        state: idle
        last_run: 2026-04-24T12:30:00Z
        next_scheduled_run: 2026-04-24T13:00:00Z
        budget.spent_today_usd: 0.01
";

/// An invalid scenario: an `at` with an unknown unit.
const BAD_AT: &str = "\
version: 1
start: 2026-04-24T12:00:00Z
personas:
  merge_captain:
    entry_workflow: workflows/merge.harn#run
steps:
  - at: 5w
    pause: merge_captain
";

/// The small library most tests use, by path under `scenarios/`.
fn library_texts() -> [(&'static str, String); 5] {
    [
        ("budget/daily.yaml", DAILY.to_string()),
        ("controls/pause-resume.yaml", pause_resume()),
        ("invalid/bad-at.yaml", BAD_AT.to_string()),
        ("lease/spend.yaml", SPEND.to_string()),
        ("schedule/tick.yaml", TICK.to_string()),
    ]
}

/// The library of these tests: `common::Library` holding the small library,
/// checked and blessed with explicit `--scenarios` and `--snapshots`.
impl Library {
    /// The small library, blessed.
    fn blessed() -> Self {
        let library = Self::new();
        for (name, text) in library_texts() {
            library.write(name, &text);
        }
        library.bless();
        library
    }

    /// Runs `rehearse` in the library with `CI` set as given.
    fn rehearse(&self, ci: &str, args: &[&str]) -> Output {
        rehearse_in(self.dir.path(), ci, args, &[])
    }

    fn bless(&self) {
        let output = self.rehearse(
            "false",
            &[
                "bless",
                "--scenarios",
                "scenarios",
                "--snapshots",
                "snapshots",
            ],
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
    }

    /// `rehearse check` over the whole library in CI, so nothing is written
    /// beside the goldens.
    fn check(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "check",
            "--scenarios",
            "scenarios",
            "--snapshots",
            "snapshots",
        ];
        all.extend_from_slice(args);
        self.rehearse("true", &all)
    }
}

/// Runs the `rehearse` binary in `dir` with `CI` set explicitly (the
/// ambient value, which `.ci/run` sets, must not leak in) and `NO_COLOR`
/// removed unless `env` sets it.
fn rehearse_in(dir: &Path, ci: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = rehearse_command(dir, ci);
    command.args(args).env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the rehearse binary runs")
}

/// The records of `check --format json` (JSON Lines): the scenario
/// records, the orphaned golden sets, and the summary, which comes last.
fn json_lines(stdout: &[u8]) -> (Vec<serde_json::Value>, Vec<String>, serde_json::Value) {
    let records: Vec<serde_json::Value> = text(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for record in &records {
        assert_eq!(record["version"], 1, "{record}");
    }
    let (summary, rest) = records.split_last().expect("a summary record");
    assert_eq!(summary["record"], "summary", "{summary}");
    let scenarios = rest
        .iter()
        .filter(|r| r["record"] == "scenario")
        .cloned()
        .collect();
    let orphans = rest
        .iter()
        .filter(|r| r["record"] == "orphan")
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    (scenarios, orphans, summary.clone())
}

/// The 1-based line of the only line of `scenario` equal to `line`.
fn line_of(scenario: &str, line: &str) -> usize {
    let found: Vec<usize> = scenario
        .lines()
        .enumerate()
        .filter(|(_, text)| *text == line)
        .map(|(index, _)| index + 1)
        .collect();
    assert_eq!(found.len(), 1, "{line}");
    found[0]
}

#[test]
fn a_broken_step_is_annotated_on_its_line() {
    let library = Library::blessed();
    library.edit("lease/spend.yaml", SPEND_USD, "usd: 0.004, tokens: 3");
    let output = library.check(&["--format", "github"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let line = line_of(SPEND, SPEND_STEP);
    assert_eq!(line, 17);
    // Each golden that changed points at the step that changed it; nothing
    // else is annotated.
    let expected: String = ["report.json", "events.jsonl", "capture.jsonl"]
        .iter()
        .map(|file| {
            format!(
                "::error file=scenarios/lease/spend.yaml,line={line},title=rehearse lease/spend.yaml::{file} differs from its golden\n"
            )
        })
        .collect();
    assert!(stdout.starts_with(&expected), "{stdout}");
    // Then the scenario's diffs, folded in one group so they reach the CI
    // log without flooding it; no line inside reads as a workflow command.
    let group = stdout[expected.len()..]
        .strip_prefix("::group::diff of lease/spend.yaml\n")
        .and_then(|rest| rest.strip_suffix("::endgroup::\ncheck: 4 passed, 1 failed\n"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        group.starts_with("--- snapshots/lease/spend/report.json (golden)\n"),
        "{group}"
    );
    assert!(group.contains("0.005"), "{group}");
    assert!(group.lines().all(|l| !l.starts_with("::")), "{group}");
}

#[test]
fn jobs_and_repeated_runs_give_identical_reports() {
    let library = Library::blessed();
    library.edit("lease/spend.yaml", SPEND_USD, "usd: 0.004, tokens: 3");
    for format in ["human", "json", "github"] {
        let one = library.check(&["--format", format, "--jobs", "1"]);
        let four = library.check(&["--format", format, "--jobs", "4"]);
        let again = library.check(&["--format", format, "--jobs", "4"]);
        assert_eq!(one.status.code(), Some(1), "{format}");
        assert_eq!(text(&one.stdout), text(&four.stdout), "{format}");
        assert_eq!(text(&four.stdout), text(&again.stdout), "{format}");
        assert_eq!(text(&one.stderr), "", "{format}");
    }
    // The verbose human report lists the scenarios in sorted order.
    let human = text(&library.check(&["--jobs", "4", "-v"]).stdout);
    let listed: Vec<&str> = human
        .lines()
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(' ').map(|(_, rest)| rest.trim()))
        .filter(|rest| rest.ends_with(".yaml"))
        .collect();
    let names: Vec<&str> = library_texts().iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, names, "{human}");
    // The JUnit reports are the same bytes too: they hold no times.
    let (one, four) = (library.path("one.xml"), library.path("four.xml"));
    library.check(&["--jobs", "1", "--junit", one.to_str().unwrap()]);
    library.check(&["--jobs", "4", "--junit", four.to_str().unwrap()]);
    assert_eq!(fs::read(&one).unwrap(), fs::read(&four).unwrap());
}

/// Scenario names (`lease/spend.yaml`) under the real library, walked here
/// rather than by the harness's own discovery.
fn real_library() -> Vec<String> {
    common::files_under(&root().join("scenarios"))
        .iter()
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        })
        .map(|path| path.to_string_lossy().replace('\\', "/"))
        .collect()
}

#[test]
fn partitions_cover_the_real_library_exactly_once() {
    let library = real_library();
    assert!(!library.is_empty());
    for kind in ["hash", "count"] {
        let mut seen = Vec::new();
        for shard in 1..=4 {
            let partition = format!("{kind}:{shard}/4");
            let output = rehearse_in(
                &root(),
                "true",
                &["check", "--format", "json", "--partition", &partition],
                &[],
            );
            assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
            let (names, _, _) = json_lines(&output.stdout);
            seen.extend(
                names
                    .iter()
                    .map(|r| r["name"].as_str().expect("a name").to_string()),
            );
        }
        let total = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(total, seen.len(), "{kind}: a scenario ran in two shards");
        assert_eq!(seen, library, "{kind}");
    }
}

/// One element of a parsed XML document.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: BTreeMap<String, String>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn open(start: &BytesStart<'_>) -> Self {
        let mut attributes = BTreeMap::new();
        for attribute in start.attributes() {
            let attribute = attribute.expect("a well-formed attribute");
            let key = String::from_utf8(attribute.key.as_ref().to_vec()).unwrap();
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .expect("a well-formed attribute value")
                .into_owned();
            assert!(
                attributes.insert(key.clone(), value).is_none(),
                "attribute `{key}` twice"
            );
        }
        Self {
            name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
            attributes,
            ..Self::default()
        }
    }

    fn attribute(&self, key: &str) -> &str {
        self.attributes
            .get(key)
            .unwrap_or_else(|| panic!("`{}` has no `{key}`: {:?}", self.name, self.attributes))
    }

    fn count(&self, key: &str) -> usize {
        self.attribute(key)
            .parse()
            .unwrap_or_else(|_| panic!("`{}` `{key}` is not a count", self.name))
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Parses an XML document into its root element, failing on anything not
/// well-formed (mismatched tags, bad attributes, unknown entities).
fn parse_xml(document: &str) -> Element {
    let mut reader = Reader::from_str(document);
    let mut stack = vec![Element::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(start) => stack.push(Element::open(&start)),
            Event::Empty(start) => {
                let element = Element::open(&start);
                stack.last_mut().unwrap().children.push(element);
            }
            Event::End(end) => {
                let element = stack.pop().unwrap();
                assert_eq!(element.name.as_bytes(), end.name().as_ref());
                stack.last_mut().expect("a parent").children.push(element);
            }
            Event::Text(chunk) => {
                let decoded = chunk.xml10_content().expect("UTF-8 text");
                stack.last_mut().unwrap().text.push_str(&decoded);
            }
            Event::CData(chunk) => {
                let decoded = chunk.decode().expect("UTF-8 text");
                stack.last_mut().unwrap().text.push_str(&decoded);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().expect("a valid reference") {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().unwrap();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .unwrap_or_else(|| panic!("unknown entity `{name}`"))
                            .to_string()
                    }
                };
                stack.last_mut().unwrap().text.push_str(&resolved);
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.pop().unwrap()
}

/// Checks the JUnit report against the rules of the common JUnit XML schema
/// (the Jenkins/Ant `junit-10.xsd` subset that CI reporters read), with a
/// small XML parser since there is no network to fetch the XSD:
/// - the document is well-formed and its root is `testsuites`;
/// - `testsuites` holds only `testsuite` elements, each with `name`,
///   `tests`, `failures` and `errors` as counts;
/// - each `testsuite` holds only `testcase` elements (and optional
///   `properties`, `system-out`, `system-err`), and its counts equal the
///   number of testcases, of testcases with a `failure` and of testcases
///   with an `error`; the root's counts are the sums over suites;
/// - each `testcase` has a non-empty `name` and `classname`, and at most one
///   of `failure`, `error` or `skipped`;
/// - each `failure` and `error` has a `message` attribute.
///
/// Beyond the schema, it checks the report says what `rehearse` promises:
/// one testcase per scenario and orphan, named as the JSON report names
/// them, and failure messages that locate the first problem.
#[test]
fn junit_report_follows_the_schema() {
    let library = Library::blessed();
    // A failure (a changed spend), an error (a scenario that does not
    // parse), a scenario without goldens, and goldens without a scenario.
    library.edit("lease/spend.yaml", SPEND_USD, "usd: 0.004, tokens: 3");
    library.write("lease/unknown-field.yaml", UNKNOWN_FIELD);
    library.write("controls/fresh.yaml", &pause_resume());
    fs::remove_file(library.path("scenarios/schedule/tick.yaml")).unwrap();
    let junit = library.path("reports/junit.xml");
    let output = library.check(&["--format", "json", "--junit", junit.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "an error outranks failures");
    let (results, orphans, _) = json_lines(&output.stdout);

    let xml = fs::read_to_string(&junit).unwrap();
    let leftovers: Vec<_> = fs::read_dir(library.path("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers, ["junit.xml"], "written atomically, no temp file");

    let root = parse_xml(&xml);
    assert_eq!(root.name, "testsuites");
    assert!(root.children.iter().all(|c| c.name == "testsuite"));
    let (mut tests, mut failures, mut errors) = (0, 0, 0);
    let mut cases = Vec::new();
    for suite in root.children_named("testsuite") {
        assert!(!suite.attribute("name").is_empty());
        for child in &suite.children {
            assert!(
                matches!(
                    child.name.as_str(),
                    "testcase" | "properties" | "system-out" | "system-err"
                ),
                "{}",
                child.name
            );
        }
        let suite_cases: Vec<&Element> = suite.children_named("testcase").collect();
        let with = |kind: &str| {
            suite_cases
                .iter()
                .filter(|c| c.children_named(kind).next().is_some())
                .count()
        };
        assert_eq!(suite.count("tests"), suite_cases.len());
        assert_eq!(suite.count("failures"), with("failure"));
        assert_eq!(suite.count("errors"), with("error"));
        tests += suite.count("tests");
        failures += suite.count("failures");
        errors += suite.count("errors");
        for case in suite_cases {
            assert!(!case.attribute("name").is_empty());
            assert!(!case.attribute("classname").is_empty());
            let outcomes = case
                .children
                .iter()
                .filter(|c| matches!(c.name.as_str(), "failure" | "error" | "skipped"))
                .count();
            assert!(outcomes <= 1, "{}", case.attribute("name"));
            for problem in case
                .children
                .iter()
                .filter(|c| matches!(c.name.as_str(), "failure" | "error"))
            {
                assert!(!problem.attribute("message").is_empty());
            }
            cases.push(case);
        }
    }
    assert_eq!(root.count("tests"), tests);
    assert_eq!(root.count("failures"), failures);
    assert_eq!(root.count("errors"), errors);

    // One testcase per scenario and orphan, in the JSON report's order.
    let mut expected: Vec<String> = results
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    expected.extend(orphans);
    let names: Vec<&str> = cases.iter().map(|c| c.attribute("name")).collect();
    assert_eq!(
        names,
        [
            "budget/daily.yaml",
            "controls/fresh.yaml",
            "controls/pause-resume.yaml",
            "invalid/bad-at.yaml",
            "lease/spend.yaml",
            "lease/unknown-field.yaml",
            "snapshots/schedule/tick",
        ]
    );
    assert_eq!(names, expected);
    assert_eq!((tests, failures, errors), (7, 3, 1));

    let case = |name: &str| *cases.iter().find(|c| c.attribute("name") == name).unwrap();
    assert_eq!(case("lease/spend.yaml").attribute("classname"), "lease");
    assert_eq!(
        case("invalid/bad-at.yaml").attribute("classname"),
        "invalid"
    );
    assert_eq!(
        case("snapshots/schedule/tick").attribute("classname"),
        "orphans"
    );
    assert!(case("budget/daily.yaml").children.is_empty());

    // The failure names the first problem and carries the start of the diff.
    let failure = case("lease/spend.yaml")
        .children_named("failure")
        .next()
        .unwrap();
    let line = line_of(SPEND, SPEND_STEP);
    assert_eq!(failure.attribute("type"), "diff");
    assert_eq!(
        failure.attribute("message"),
        format!("scenarios/lease/spend.yaml:{line}: report.json differs from its golden")
    );
    assert!(
        failure.text.contains(&format!(
            "scenarios/lease/spend.yaml:{line}: events.jsonl differs from its golden\n"
        )),
        "{}",
        failure.text
    );
    assert!(
        failure
            .text
            .contains("--- snapshots/lease/spend/report.json (golden)\n"),
        "{}",
        failure.text
    );
    let diff_lines = failure
        .text
        .lines()
        .skip_while(|l| !l.starts_with("--- "))
        .take_while(|l| !l.starts_with("... "))
        .count();
    assert_eq!(diff_lines, 20, "{}", failure.text);
    let last = failure.text.lines().last().unwrap();
    assert!(
        last.starts_with("... ")
            && last.ends_with(
                " more diff lines: run `rehearse check -v scenarios/lease/spend.yaml` to see them all"
            ),
        "{last}"
    );

    let error = case("lease/unknown-field.yaml")
        .children_named("error")
        .next()
        .unwrap();
    assert_eq!(error.attribute("type"), "error");
    assert_eq!(
        error.attribute("message"),
        "scenarios/lease/unknown-field.yaml:5:1: unknown field `surprise`, expected one of `version`, `name`, `description`, `start`, `seed`, `personas`, `supervisor`, `steps`"
    );
    let fresh = case("controls/fresh.yaml")
        .children_named("failure")
        .next()
        .unwrap();
    assert_eq!(fresh.attribute("type"), "new");
    assert_eq!(
        fresh.attribute("message"),
        "scenarios/controls/fresh.yaml: no goldens yet: review the outputs, then run `rehearse bless scenarios/controls/fresh.yaml`"
    );
    let orphan = case("snapshots/schedule/tick")
        .children_named("failure")
        .next()
        .unwrap();
    assert_eq!(
        orphan.attribute("message"),
        "snapshots/schedule/tick: goldens without a scenario; delete them or restore the scenario"
    );
}

#[test]
fn piped_output_has_no_progress_counter_or_colour() {
    let library = Library::blessed();
    // A scenario long enough that a check of it takes about a second on a
    // slow machine, so a counter would have had time to appear.
    let mut long = String::from(
        "version: 1\nstart: 2026-04-24T12:00:00Z\npersonas:\n  pinger:\n    entry_workflow: workflows/ping.harn#run\nsteps:\n",
    );
    for i in 0..400 {
        long.push_str(&format!(
            "  - at: {i}s\n    trigger: {{ persona: pinger, provider: webhook, kind: ping, metadata: {{ dedupe_key: k{i} }} }}\n"
        ));
    }
    library.write("load/long.yaml", &long);
    library.bless();
    library.edit("lease/spend.yaml", SPEND_USD, "usd: 0.004, tokens: 3");
    for env in [&[][..], &[("NO_COLOR", "1")][..]] {
        for format in ["human", "github"] {
            let args = [
                "check",
                "--scenarios",
                "scenarios",
                "--snapshots",
                "snapshots",
                "--jobs",
                "1",
                "--format",
                format,
                "--stats",
            ];
            let output = rehearse_in(library.dir.path(), "true", &args, env);
            assert_eq!(output.status.code(), Some(1));
            for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                assert!(
                    !bytes.contains(&b'\r') && !bytes.contains(&0x1b),
                    "{env:?} {format} {stream}: {:?}",
                    text(bytes)
                );
            }
            assert!(text(&output.stdout).contains("check: 5 passed, 1 failed\n"));
        }
    }
}

#[test]
fn bad_gate_arguments_are_usage_errors() {
    let library = Library::blessed();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--jobs", "0"],
            "invalid job count `0`, expected a whole number of at least 1",
        ),
        (
            &["--jobs", "many"],
            "invalid job count `many`, expected a whole number of at least 1",
        ),
        (
            &["--partition", "hash:5/4"],
            "invalid partition `hash:5/4`, expected `hash:K/N` or `count:K/N` with 1 <= K <= N",
        ),
        (&["--junit"], "a value is required for '--junit <FILE>'"),
    ];
    for (args, message) in cases {
        let output = library.check(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            text(&output.stderr).contains(message),
            "{}",
            text(&output.stderr)
        );
    }
    // A JUnit path that is a directory cannot be written: an input error,
    // reported after the check itself.
    let taken = library.path("taken");
    fs::create_dir_all(taken.join("inside")).unwrap();
    let output = library.check(&["--junit", taken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "failed to write the JUnit report to `{}`: ",
            taken.display()
        )),
        "{stderr}"
    );
    assert!(text(&output.stdout).ends_with("check: 5 passed, 0 failed\n"));
}

/// The workflow's steps as (name or uses, run) pairs of one job.
fn steps(workflow: &serde_yaml::Value, job: &str) -> Vec<serde_yaml::Value> {
    workflow["jobs"][job]["steps"]
        .as_sequence()
        .unwrap_or_else(|| panic!("job `{job}` has steps"))
        .clone()
}

#[test]
fn the_workflow_runs_the_commands_the_readme_documents() {
    let root = root();
    let workflow: serde_yaml::Value = serde_yaml::from_str(
        &fs::read_to_string(root.join(".github/workflows/conformance.yml")).unwrap(),
    )
    .unwrap();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let nextest = "cargo nextest run --workspace --partition hash:${{ matrix.shard }}/4";
    let check = "cargo run -p rehearse -- check --format github --junit target/rehearse-junit.xml";

    let shards: Vec<u64> = workflow["jobs"]["tests"]["strategy"]["matrix"]["shard"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(shards, [1, 2, 3, 4]);
    let runs = |job: &str| -> Vec<String> {
        steps(&workflow, job)
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(runs("tests"), [nextest]);
    assert_eq!(runs("check"), [check]);
    let upload = steps(&workflow, "check")
        .into_iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("the check job uploads the JUnit report");
    assert_eq!(
        upload["with"]["path"].as_str(),
        Some("target/rehearse-junit.xml")
    );
    assert_eq!(upload["if"].as_str(), Some("always()"));
    assert_eq!(workflow["env"]["CI"].as_str(), Some("true"));

    assert!(readme.contains("## Running in CI\n"));
    assert!(readme.contains(&format!("```sh\n{nextest}\n```")));
    assert!(readme.contains(&format!("```sh\n{check}\n```")));
}
