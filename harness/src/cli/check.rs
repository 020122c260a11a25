//! `rehearse check`: the conformance gate. Runs every selected scenario,
//! compares the outputs with the reviewed goldens, replays each fresh
//! capture, and fails on any difference. Reports come out in the library's
//! sorted order whatever `--jobs` says, as text, JSON Lines, GitHub
//! workflow commands and, with `--junit`, a JUnit XML file.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use crate::check::{self, CheckOptions, CheckReport, NameFilter, CHECK_REPORT_VERSION};
use crate::cli::{default_jobs, Library};
use crate::exit::Exit;
use crate::junit;
use crate::progress::Display;
use crate::style::Style;
use crate::suite::{self, ScenarioResult, Verdict};
use crate::{out, outln};

/// Run scenarios and compare their outputs with the goldens in
/// `snapshots/`; exit 1 on any difference.
///
/// Paths are resolved against the project root (the nearest directory
/// upward that holds `scenarios/`), so `./scenarios`, `$PWD/scenarios` and
/// a path typed from inside `scenarios/` all name the same scenarios.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Scenario files or directories (default: `scenarios/`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose name (`lease/expiry.yaml`) contains PATTERN, or
    /// matches it as a glob when it holds `*`, `?` or `[`. Repeatable.
    #[arg(long = "filter", short = 'k', value_name = "PATTERN")]
    pub filters: Vec<String>,
    /// Stop at the first scenario that does not pass.
    #[arg(long, short = 'x')]
    pub fail_fast: bool,
    /// Also list passing scenarios, and print whole diffs.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// How many scenarios to run at once (default: the number of cores).
    /// The report's order does not depend on it.
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Run one slice of the suite: `hash:K/N` (stable under additions) or
    /// `count:K/N`.
    #[arg(long, value_name = "hash:K/N", value_parser = suite::Partition::parse)]
    pub partition: Option<suite::Partition>,
    /// How to report.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The scenarios directory that golden paths are named after (default:
    /// `scenarios` under the project root).
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Where the goldens live (default: `snapshots` under the project root).
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
    /// Print events, episodes and throughput for the whole check.
    #[arg(long)]
    pub stats: bool,
    /// Also write a JUnit XML report to FILE (atomically): one testcase
    /// per scenario, for CI test reporters.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a timeline page per scenario under DIR (named after its
    /// path under the scenarios root; a failed one shows its golden diff
    /// event by event) and `DIR/index.html` linking them.
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
}

/// Parses `--jobs`: a whole number of at least 1.
pub fn parse_jobs(text: &str) -> Result<usize, JobsError> {
    match text.trim().parse::<usize>() {
        Ok(jobs) if jobs >= 1 => Ok(jobs),
        _ => Err(JobsError(text.to_string())),
    }
}

/// A `--jobs` that is not a whole number of at least 1.
#[derive(Debug, thiserror::Error)]
#[error("invalid job count `{0}`, expected a whole number of at least 1")]
pub struct JobsError(String);

/// Report formats of `check`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    /// JSON Lines: one object per scenario, then a summary (docs/FORMATS.md).
    Json,
    /// `::error file=…,line=…::` annotations for GitHub Actions.
    Github,
}

/// How many lines of each golden's diff the default report shows.
pub const DIFF_PREVIEW_LINES: usize = 12;

pub fn run(args: &CheckArgs) -> Result<Exit, crate::cli::CliError> {
    // The JUnit file is named from where the command started.
    let junit_path = args.junit.as_ref().map(|path| absolute(path));
    let html_dir = args.html.as_ref().map(|path| absolute(path));
    let library = Library::open(
        &args.paths,
        args.scenarios.as_deref(),
        args.snapshots.as_deref(),
    )?;
    let config = library.suite(
        args.jobs.unwrap_or_else(default_jobs).max(1),
        args.partition,
    );
    let options = CheckOptions {
        filters: args.filters.iter().map(|f| NameFilter::new(f)).collect(),
        fail_fast: args.fail_fast,
        pending: true,
    };
    let report = check::run(&config, &options, Display::detect())?;
    match args.format {
        Format::Human => print_human(&report, Style::stdout(), args.verbose),
        Format::Json => print_json_lines(&report),
        Format::Github => print_github(&report),
    }
    if args.stats {
        print_stats(&report);
    }
    if let Some(path) = junit_path {
        junit::write(&path, &report)?;
    }
    if let Some(dir) = html_dir {
        crate::html::write_check_pages(&dir, &report.results, &config)
            .map_err(|source| crate::cli::CliError::Pages { dir, source })?;
    }
    Ok(if report.errors > 0 {
        Exit::Usage
    } else if report.failed > 0 {
        Exit::Mismatch
    } else {
        Exit::Pass
    })
}

pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn tag(verdict: &Verdict, style: Style) -> String {
    match verdict {
        Verdict::Pass => style.green("PASS "),
        Verdict::New => style.yellow("NEW  "),
        Verdict::Fail { .. } => style.red("FAIL "),
        Verdict::Error { .. } => style.red("ERROR"),
    }
}

/// One line per failed scenario, one line per problem under it (root
/// causes first), a preview of each diff, then a recap of what failed with
/// the command that shows each in full.
fn print_human(report: &CheckReport, style: Style, verbose: bool) {
    for result in &report.results {
        if result.verdict == Verdict::Pass && !verbose {
            continue;
        }
        outln!("{} {}", tag(&result.verdict, style), result.name);
        for problem in check::located_problems(result) {
            outln!("      {problem}");
        }
        print_explanations(result, style);
        for diff in check::diffs(result) {
            print_diff(diff, style, verbose, &result.source);
        }
    }
    for orphan in &report.orphans {
        outln!(
            "{} {orphan}: goldens without a scenario; delete them or restore the scenario",
            style.red("ORPHAN")
        );
    }
    if report.pending_written() {
        outln!(
            "{}",
            style.dim("saved the new outputs beside the goldens as `*.new`: review them with `rehearse review`")
        );
    }
    print_recap(report, style);
    outln!("{}", summary_line(report));
}

/// Under a scenario's failed expectations, why each of those steps got its
/// result (see `explain`).
fn print_explanations(result: &ScenarioResult, style: Style) {
    let Verdict::Fail { problems } = &result.verdict else {
        return;
    };
    let steps = problems
        .iter()
        .filter_map(|problem| match problem {
            crate::suite::Problem::Expectation { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    for text in crate::explain::explain_file_steps(&result.source, steps, "        ").values() {
        out!("{}", style.dim(text));
    }
}

fn print_diff(diff: &str, style: Style, verbose: bool, source: &str) {
    let lines: Vec<&str> = diff.lines().collect();
    let shown = if verbose {
        lines.len()
    } else {
        lines.len().min(DIFF_PREVIEW_LINES)
    };
    for line in style.diff(&lines[..shown].join("\n")).lines() {
        outln!("      {line}");
    }
    if shown < lines.len() {
        outln!(
            "      {}",
            style.dim(&format!(
                "... {} more lines: `rehearse check -v {source}`",
                lines.len() - shown
            ))
        );
    }
}

fn print_recap(report: &CheckReport, style: Style) {
    let failed: Vec<&ScenarioResult> = report
        .results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .collect();
    if failed.is_empty() {
        return;
    }
    outln!();
    outln!("{}", style.bold(&format!("failed ({}):", failed.len())));
    let width = failed.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for result in failed {
        outln!(
            "  {} {:<width$}  rehearse check -v {}",
            tag(&result.verdict, style),
            result.name,
            result.source
        );
    }
}

fn summary_line(report: &CheckReport) -> String {
    let mut line = format!("check: {} passed, {} failed", report.passed, report.failed);
    if report.not_run > 0 {
        line.push_str(&format!(
            ", {} not run (stopped at the first failure)",
            report.not_run
        ));
    }
    line
}

/// JSON Lines: one `scenario` record per scenario, one `orphan` record per
/// golden set without a scenario, then one `summary` record.
fn print_json_lines(report: &CheckReport) {
    for result in &report.results {
        let mut record = json!({
            "record": "scenario",
            "version": CHECK_REPORT_VERSION,
        });
        if let (Some(object), Ok(serde_json::Value::Object(fields))) =
            (record.as_object_mut(), serde_json::to_value(result))
        {
            object.extend(fields);
        }
        outln!("{record}");
    }
    for orphan in &report.orphans {
        outln!(
            "{}",
            json!({"record": "orphan", "version": CHECK_REPORT_VERSION, "path": orphan})
        );
    }
    outln!(
        "{}",
        json!({
            "record": "summary",
            "version": CHECK_REPORT_VERSION,
            "passed": report.passed,
            "failed": report.failed,
            "errors": report.errors,
            "not_run": report.not_run,
            "orphans": report.orphans.len(),
        })
    );
}

/// Escapes workflow-command data (the message): `%`, CR and LF.
pub fn escape_github_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property (`file=`, `title=`): as data, plus
/// `:` and `,`, which would end the property.
pub fn escape_github_property(text: &str) -> String {
    escape_github_data(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// One `::error` command per problem, at its file and line where known;
/// each failed scenario's diffs in a collapsed `::group::` block.
fn print_github(report: &CheckReport) {
    for result in &report.results {
        let file = escape_github_property(&result.source);
        let title = escape_github_property(&format!("rehearse {}", result.name));
        for (line, message) in check::problem_lines(result) {
            let location = match line {
                Some(line) => format!("file={file},line={line}"),
                None => format!("file={file}"),
            };
            outln!(
                "::error {location},title={title}::{}",
                escape_github_data(&message)
            );
        }
        let diffs = check::diffs(result);
        if !diffs.is_empty() {
            outln!(
                "::group::{}",
                escape_github_data(&format!("diff of {}", result.name))
            );
            // Every line of a unified diff starts with ` `, `+`, `-` or
            // `@`, so none can be read as a workflow command.
            for diff in diffs {
                out!("{diff}");
            }
            outln!("::endgroup::");
        }
    }
    for orphan in &report.orphans {
        outln!(
            "::error file={},title=rehearse orphaned goldens::goldens without a scenario",
            escape_github_property(orphan)
        );
    }
    outln!("{}", summary_line(report));
}

fn print_stats(report: &CheckReport) {
    let (mut events, mut episodes, mut seconds) = (0usize, 0usize, 0f64);
    for result in &report.results {
        events += result.stats.events;
        episodes += result.stats.episodes;
        seconds += result.stats.seconds;
    }
    let rate = |n: usize| {
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    };
    outln!(
        "stats: {} scenarios, {events} events, {episodes} episodes, {seconds:.3}s of run time ({:.0} events/s, {:.0} episodes/s)",
        report.results.len(),
        rate(events),
        rate(episodes)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_counts_are_whole_numbers_of_at_least_one() {
        assert_eq!(parse_jobs("4").ok(), Some(4));
        assert_eq!(parse_jobs("1").ok(), Some(1));
        for bad in ["0", "-1", "", "four", "2.5", "99999999999999999999999"] {
            assert_eq!(
                parse_jobs(bad).map_err(|error| error.to_string()),
                Err(format!(
                    "invalid job count `{bad}`, expected a whole number of at least 1"
                ))
            );
        }
    }

    #[test]
    fn github_escapes_data_and_properties() {
        assert_eq!(escape_github_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(
            escape_github_property("a,b:c\r\n::add-mask::x"),
            "a%2Cb%3Ac%0D%0A%3A%3Aadd-mask%3A%3Ax"
        );
    }
}
