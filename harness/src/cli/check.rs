//! `rehearse check`: the conformance gate. Runs every scenario under the
//! given paths, compares the outputs with the reviewed goldens, replays each
//! fresh capture, and fails on any difference. Reports come out in the
//! library's sorted order whatever `--jobs` says, as text, JSON, GitHub
//! annotations and, with `--junit`, a JUnit XML file.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::exit::Exit;
use crate::golden;
use crate::junit;
use crate::progress::{Display, Progress};
use crate::style::Style;
use crate::suite::{self, Problem, ScenarioResult, SuiteConfig, Verdict};

/// Run scenarios and compare their outputs with the goldens in
/// `snapshots/`; exit 1 on any difference.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Scenario files or directories (default: `scenarios/`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
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
    /// The scenarios root that golden paths are named after.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    pub scenarios: PathBuf,
    /// Where the goldens live.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    pub snapshots: PathBuf,
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
pub fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(jobs) if jobs >= 1 => Ok(jobs),
        _ => Err(format!(
            "invalid job count `{text}`, expected a whole number of at least 1"
        )),
    }
}

/// Report formats of `check`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    /// `::error file=…,line=…::` annotations for GitHub Actions.
    Github,
}

/// The version of `check --format json`.
pub const CHECK_REPORT_VERSION: u32 = 1;

impl CheckArgs {
    /// The suite this invocation describes.
    pub fn suite(&self) -> SuiteConfig {
        let whole_library = self.paths.is_empty();
        let paths = if whole_library {
            vec![self.scenarios.clone()]
        } else {
            self.paths.clone()
        };
        SuiteConfig {
            paths,
            scenarios_root: self.scenarios.clone(),
            snapshots_root: self.snapshots.clone(),
            jobs: self.jobs.unwrap_or_else(default_jobs).max(1),
            partition: self.partition,
            find_orphans: whole_library && self.partition.is_none(),
        }
    }
}

/// The number of cores, or 1.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The outcome of a whole check.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub check_version: u32,
    pub results: Vec<ScenarioResult>,
    /// Golden sets whose scenario is gone.
    pub orphans: Vec<String>,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
}

/// Runs the suite, showing a progress counter as `display` says.
pub fn run_suite(config: &SuiteConfig, display: Display) -> Result<CheckReport, String> {
    let files = suite::selected(config)?;
    let progress = Progress::start(files.len(), display);
    let results = suite::parallel_map(&files, config.jobs, |path| {
        let result = suite::check_one(config, path, true);
        progress.inc();
        result
    });
    progress.finish();
    let orphans = if config.find_orphans {
        let all = suite::discover(&config.paths)?;
        suite::orphans(config, &all)
            .into_iter()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .collect()
    } else {
        Vec::new()
    };
    let passed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Pass)
        .count();
    let errors = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Error { .. }))
        .count();
    let failed = results.len() - passed + orphans.len();
    Ok(CheckReport {
        check_version: CHECK_REPORT_VERSION,
        results,
        orphans,
        passed,
        failed,
        errors,
    })
}

pub fn run(args: &CheckArgs) -> Exit {
    let config = args.suite();
    let report = match run_suite(&config, Display::detect()) {
        Ok(report) => report,
        Err(message) => {
            eprintln!("{message}");
            return Exit::Usage;
        }
    };
    match args.format {
        Format::Human => print_human(&report, Style::stdout()),
        Format::Json => print!("{}", crate::driver::pretty(&report)),
        Format::Github => print_github(&report),
    }
    if args.stats {
        print_stats(&report);
    }
    if let Some(dir) = &args.html {
        if let Err(error) = crate::html::write_check_pages(dir, &report.results, &config) {
            eprintln!(
                "failed to write the timeline pages to `{}`: {error}",
                dir.display()
            );
            return Exit::Usage;
        }
    }
    if let Some(path) = &args.junit {
        if let Err(error) = junit::write(path, &report) {
            eprintln!("{error}");
            return Exit::Usage;
        }
    }
    if report.errors > 0 {
        Exit::Usage
    } else if report.failed > 0 {
        Exit::Mismatch
    } else {
        Exit::Pass
    }
}

/// One line per problem: `file:line: message`, for humans and annotations.
pub fn problem_lines(result: &ScenarioResult) -> Vec<(Option<usize>, String)> {
    match &result.verdict {
        Verdict::Pass => Vec::new(),
        Verdict::New => vec![(None, format!("no goldens yet: review the outputs, then run `rehearse bless {}`", result.source))],
        Verdict::Error { message } => vec![(None, message.clone())],
        Verdict::Fail { problems } => problems
            .iter()
            .map(|problem| match problem {
                Problem::Expectation { line, step, path, expected, actual } => {
                    (Some(*line), format!("step {step}: expectation `{path}` failed: expected {expected}, actual {actual}"))
                }
                Problem::Diff { file, line, .. } => (*line, format!("{file} differs from its golden")),
                Problem::Replay { message } => (None, format!("the fresh capture does not replay: {message}")),
                Problem::Lint { .. } => (None, "lint error text differs from its golden".to_string()),
                Problem::Invariant { line, step, message, .. } => {
                    (Some(*line), format!("step {step}: runtime invariant broken: {message}"))
                }
            })
            .collect(),
    }
}

/// Each problem located in the scenario file: `scenarios/x.yaml:14: ...`,
/// or `scenarios/x.yaml: ...` where no line is known; a message that
/// already starts with the file (a parse error's `file:line:column`) is
/// kept as it is.
pub fn located_problems(result: &ScenarioResult) -> Vec<String> {
    problem_lines(result)
        .into_iter()
        .map(|(line, message)| match line {
            Some(line) => format!("{}:{line}: {message}", result.source),
            None if message.starts_with(&result.source) => message,
            None => format!("{}: {message}", result.source),
        })
        .collect()
}

fn print_human(report: &CheckReport, style: Style) {
    for result in &report.results {
        let tag = match result.verdict {
            Verdict::Pass => style.green("PASS "),
            Verdict::New => style.yellow("NEW  "),
            Verdict::Fail { .. } => style.red("FAIL "),
            Verdict::Error { .. } => style.red("ERROR"),
        };
        println!("{tag} {}", result.name);
        for problem in located_problems(result) {
            println!("      {problem}");
        }
        print_explanations(result, style);
        if let Verdict::Fail { problems } = &result.verdict {
            for problem in problems {
                if let Problem::Diff { diff, .. } | Problem::Lint { diff } = problem {
                    for line in style.diff(diff).lines() {
                        println!("      {line}");
                    }
                }
            }
        }
    }
    for orphan in &report.orphans {
        println!(
            "{} {orphan}: goldens without a scenario; delete them or restore the scenario",
            style.red("ORPHAN")
        );
    }
    let pending = report.results.iter().any(|r| r.verdict != Verdict::Pass);
    if pending && !golden::in_ci() {
        println!("{}", style.dim("new outputs were saved beside the goldens as `*.new`: review them with `rehearse review`"));
    }
    println!("check: {} passed, {} failed", report.passed, report.failed);
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
            Problem::Expectation { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    for text in crate::explain::explain_file_steps(&result.source, steps, "        ").values() {
        print!("{}", style.dim(text));
    }
}

/// GitHub Actions workflow commands escape `%`, CR and LF in messages.
fn escape_github(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn print_github(report: &CheckReport) {
    for result in &report.results {
        for (line, message) in problem_lines(result) {
            let location = match line {
                Some(line) => format!("file={},line={line}", result.source),
                None => format!("file={}", result.source),
            };
            println!(
                "::error {location},title=rehearse {}::{}",
                result.name,
                escape_github(&message)
            );
        }
    }
    for orphan in &report.orphans {
        println!(
            "::error file={orphan},title=rehearse orphaned goldens::goldens without a scenario"
        );
    }
    println!("check: {} passed, {} failed", report.passed, report.failed);
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
    println!(
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
        assert_eq!(parse_jobs("4"), Ok(4));
        assert_eq!(parse_jobs("1"), Ok(1));
        for bad in ["0", "-1", "", "four", "2.5", "99999999999999999999999"] {
            assert_eq!(
                parse_jobs(bad),
                Err(format!(
                    "invalid job count `{bad}`, expected a whole number of at least 1"
                ))
            );
        }
    }

    #[test]
    fn github_messages_escape_newlines_and_percent() {
        assert_eq!(escape_github("50%\nnext"), "50%25%0Anext");
    }
}
