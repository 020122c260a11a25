//! JUnit XML for `rehearse check --junit FILE`: one testcase per scenario
//! (and one per orphaned golden set), so CI systems list the scenario
//! library beside the other tests. The file carries no times or
//! timestamps, so the same library gives the same bytes on every run.

use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::check::{located_problems, CheckReport};
use crate::suite::{Problem, ScenarioResult, Verdict};

/// The name of the report and of its one test suite.
pub const SUITE_NAME: &str = "rehearse check";

/// The classname of a scenario at the top of the scenarios root.
pub const ROOT_CLASSNAME: &str = "scenarios";

/// The classname of orphaned golden sets.
pub const ORPHAN_CLASSNAME: &str = "orphans";

/// How many diff lines a failure's text carries; the whole diff is in the
/// human report.
pub const MAX_DIFF_LINES: usize = 20;

/// Why a JUnit report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    #[error("failed to serialise the JUnit report: {0}")]
    Serialize(#[from] quick_junit::SerializeError),
    #[error("failed to write the JUnit report to `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The JUnit report of a check.
pub fn report(check: &CheckReport) -> Report {
    let mut suite = TestSuite::new(SUITE_NAME);
    suite.add_test_cases(check.results.iter().map(test_case));
    suite.add_test_cases(check.orphans.iter().map(String::as_str).map(orphan_case));
    let mut report = Report::new(SUITE_NAME);
    report.add_test_suite(suite);
    report
}

/// The report as XML text.
pub fn to_xml(check: &CheckReport) -> Result<String, JunitError> {
    Ok(report(check).to_string()?)
}

/// Writes the report to `path` atomically.
pub fn write(path: &Path, check: &CheckReport) -> Result<(), JunitError> {
    write_report(path, &report(check))
}

/// A report of one suite named `name` holding `cases` (`certify` uses it).
pub fn suite_report(name: &str, cases: Vec<TestCase>) -> Report {
    let mut suite = TestSuite::new(name);
    suite.add_test_cases(cases);
    let mut report = Report::new(name);
    report.add_test_suite(suite);
    report
}

/// Writes `report` to `path` atomically.
pub fn write_report(path: &Path, report: &Report) -> Result<(), JunitError> {
    let xml = report.to_string()?;
    crate::atomic::write(path, xml.as_bytes()).map_err(|source| JunitError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The classname of a scenario: its directory under the scenarios root,
/// dotted (`lease/expiry.yaml` is in `lease`), or `scenarios` at the top.
pub fn classname(scenario_name: &str) -> String {
    match scenario_name.rsplit_once('/') {
        Some((dir, _)) if !dir.is_empty() => dir.replace('/', "."),
        _ => ROOT_CLASSNAME.to_string(),
    }
}

fn test_case(result: &ScenarioResult) -> TestCase {
    let status = match &result.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Error { .. } => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            let message = first_problem(result);
            status
                .set_type("error")
                .set_description(message.clone())
                .set_message(message);
            status
        }
        Verdict::New | Verdict::Fail { .. } => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_type(failure_type(&result.verdict))
                .set_message(first_problem(result))
                .set_description(failure_text(result));
            status
        }
    };
    let mut case = TestCase::new(result.name.as_str(), status);
    case.set_classname(classname(&result.name));
    case
}

fn orphan_case(orphan: &str) -> TestCase {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    let message =
        format!("{orphan}: goldens without a scenario; delete them or restore the scenario");
    status
        .set_type("orphan")
        .set_description(message.clone())
        .set_message(message);
    let mut case = TestCase::new(orphan, status);
    case.set_classname(ORPHAN_CLASSNAME);
    case
}

/// The first problem, located: `scenarios/x.yaml:14: step 3: ...`.
fn first_problem(result: &ScenarioResult) -> String {
    located_problems(result)
        .into_iter()
        .next()
        .unwrap_or_else(|| format!("{}: failed", result.source))
}

/// What kind of problem came first, for the `type` attribute.
fn failure_type(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::New => "new",
        Verdict::Fail { problems } => match problems.first() {
            Some(Problem::Expectation { .. }) => "expectation",
            Some(Problem::Diff { .. }) => "diff",
            Some(Problem::Replay { .. }) => "replay",
            Some(Problem::Lint { .. }) => "lint",
            Some(Problem::Invariant { .. }) => "invariant",
            None => "failure",
        },
        Verdict::Pass | Verdict::Error { .. } => "failure",
    }
}

/// Every located problem, then the first `MAX_DIFF_LINES` lines of the
/// diffs, then how many diff lines were left out.
fn failure_text(result: &ScenarioResult) -> String {
    let mut text = String::new();
    for line in located_problems(result) {
        text.push_str(&line);
        text.push('\n');
    }
    let diff_lines: Vec<&str> = match &result.verdict {
        Verdict::Fail { problems } => problems
            .iter()
            .filter_map(|problem| match problem {
                Problem::Diff { diff, .. } | Problem::Lint { diff } => Some(diff.as_str()),
                Problem::Expectation { .. }
                | Problem::Replay { .. }
                | Problem::Invariant { .. } => None,
            })
            .flat_map(str::lines)
            .collect(),
        Verdict::Pass | Verdict::New | Verdict::Error { .. } => Vec::new(),
    };
    if !diff_lines.is_empty() {
        text.push('\n');
    }
    for line in diff_lines.iter().take(MAX_DIFF_LINES) {
        text.push_str(line);
        text.push('\n');
    }
    if diff_lines.len() > MAX_DIFF_LINES {
        text.push_str(&format!(
            "... {} more diff lines: run `rehearse check -v {}` to see them all\n",
            diff_lines.len() - MAX_DIFF_LINES,
            result.source
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::RunStats;

    fn result(name: &str, verdict: Verdict) -> ScenarioResult {
        ScenarioResult {
            name: name.to_string(),
            source: format!("scenarios/{name}"),
            verdict,
            output: None,
            stats: RunStats::default(),
            pending_written: false,
        }
    }

    fn check(results: Vec<ScenarioResult>, orphans: Vec<String>) -> CheckReport {
        CheckReport {
            check_version: crate::check::CHECK_REPORT_VERSION,
            results,
            orphans,
            passed: 0,
            failed: 0,
            errors: 0,
            not_run: 0,
        }
    }

    #[test]
    fn classnames_are_the_scenario_directory() {
        assert_eq!(classname("lease/expiry.yaml"), "lease");
        assert_eq!(classname("pipeline/handoff/ack.yaml"), "pipeline.handoff");
        assert_eq!(classname("top.yaml"), "scenarios");
        assert_eq!(classname("/odd.yaml"), "scenarios");
    }

    #[test]
    fn a_long_diff_is_cut_after_twenty_lines() {
        let diff: String = (1..=30).map(|i| format!("+line {i}\n")).collect();
        let failing = result(
            "lease/long.yaml",
            Verdict::Fail {
                problems: vec![Problem::Diff {
                    file: "events.jsonl".to_string(),
                    diff,
                    line: Some(7),
                }],
            },
        );
        let text = failure_text(&failing);
        let expected_head =
            "scenarios/lease/long.yaml:7: events.jsonl differs from its golden\n\n+line 1\n";
        assert!(text.starts_with(expected_head), "{text}");
        assert!(text.contains("+line 20\n"), "{text}");
        assert!(!text.contains("+line 21\n"), "{text}");
        assert!(
            text.ends_with("... 10 more diff lines: run `rehearse check -v scenarios/lease/long.yaml` to see them all\n"),
            "{text}"
        );
    }

    #[test]
    fn verdicts_become_passes_failures_and_errors() {
        let report = report(&check(
            vec![
                result("a/pass.yaml", Verdict::Pass),
                result("a/new.yaml", Verdict::New),
                result(
                    "b/broken.yaml",
                    Verdict::Error {
                        message: "scenarios/b/broken.yaml:3:1: unknown field `x`".to_string(),
                        line: Some(3),
                    },
                ),
            ],
            vec!["snapshots/gone".to_string()],
        ));
        assert_eq!(report.tests, 4);
        assert_eq!(report.failures, 2);
        assert_eq!(report.errors, 1);
        let xml = report.to_string().unwrap();
        assert!(
            xml.contains(r#"<testcase name="a/pass.yaml" classname="a"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<error message="scenarios/b/broken.yaml:3:1: unknown field `x`" type="error">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="snapshots/gone" classname="orphans">"#),
            "{xml}"
        );
    }

    #[test]
    fn an_unwritable_path_is_an_error_value() {
        let error = write(Path::new("/"), &check(Vec::new(), Vec::new())).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("failed to write the JUnit report to `/`: "),
            "{error}"
        );
    }
}
