//! Checking a scenario library: select scenarios (by path, partition and
//! name filter), check each against its goldens in parallel, and gather the
//! results in the library's sorted order into a `CheckReport`, with each
//! problem located in its scenario file. The CLI prints it; JUnit and the
//! conformance tests read it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::progress::{Display, Progress};
use crate::suite::{self, Problem, ScenarioResult, SuiteConfig, SuiteError, Verdict};

/// The version of the JSON Lines records of `check --format json`.
pub const CHECK_REPORT_VERSION: u32 = 1;

/// What to run and how.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Keep only scenarios whose name matches one of these (all when empty).
    pub filters: Vec<NameFilter>,
    /// Stop at the first scenario that does not pass.
    pub fail_fast: bool,
    /// Save differing outputs beside the goldens (never in CI).
    pub pending: bool,
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
    /// Scenarios selected but not run because `--fail-fast` stopped early.
    pub not_run: usize,
}

impl CheckReport {
    /// Whether any output was saved beside the goldens as `*.new`.
    pub fn pending_written(&self) -> bool {
        self.results.iter().any(|r| r.pending_written)
    }
}

/// A scenario-name filter: a glob when it holds `*`, `?` or `[`, matched
/// against the whole name with or without its extension; otherwise a
/// substring of the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameFilter(String);

impl NameFilter {
    pub fn new(pattern: &str) -> Self {
        Self(pattern.to_string())
    }

    /// Whether the scenario named `name` (`lease/expiry.yaml`) matches.
    pub fn matches(&self, name: &str) -> bool {
        let pattern = self.0.as_str();
        if !pattern.contains(['*', '?', '[']) {
            return name.contains(pattern);
        }
        let stem = name
            .strip_suffix(".yaml")
            .or_else(|| name.strip_suffix(".yml"))
            .unwrap_or(name);
        glob(pattern.as_bytes(), name.as_bytes()) || glob(pattern.as_bytes(), stem.as_bytes())
    }
}

/// A glob over bytes: `*` any run (also across `/`), `?` one byte,
/// `[abc]` one of a set; everything else literal.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((b'[', rest)) => match (rest.iter().position(|&b| b == b']'), text.first()) {
            (Some(close), Some(first)) => {
                rest[..close].contains(first) && glob(&rest[close + 1..], &text[1..])
            }
            _ => false,
        },
        Some((&literal, rest)) => text.first() == Some(&literal) && glob(rest, &text[1..]),
    }
}

/// The scenario files a check covers: the suite's selection, then the name
/// filters. An empty selection is an error: a check of nothing proves
/// nothing.
pub fn select(config: &SuiteConfig, options: &CheckOptions) -> Result<Vec<PathBuf>, SuiteError> {
    let all = suite::discover(&config.paths)?;
    if all.is_empty() {
        return Err(SuiteError::NothingSelected(
            "no scenario files (`*.yaml`) under the given paths".to_string(),
        ));
    }
    let filtered: Vec<PathBuf> = suite::selected(config)?
        .into_iter()
        .filter(|path| {
            let name = suite::scenario_name(config, path);
            options.filters.is_empty() || options.filters.iter().any(|f| f.matches(&name))
        })
        .collect();
    if filtered.is_empty() && !options.filters.is_empty() {
        let patterns: Vec<&str> = options.filters.iter().map(|f| f.0.as_str()).collect();
        return Err(SuiteError::NothingSelected(format!(
            "no scenario name matches `{}`",
            patterns.join("`, `")
        )));
    }
    Ok(filtered)
}

/// Runs the check, showing a progress counter as `display` says.
pub fn run(
    config: &SuiteConfig,
    options: &CheckOptions,
    display: Display,
) -> Result<CheckReport, SuiteError> {
    let files = select(config, options)?;
    let progress = Progress::start("check", files.len(), display);
    // With fail-fast, the lowest failing index stops work on later ones;
    // every earlier scenario still runs, so the report is the same
    // whatever `--jobs` says.
    let stop_at = AtomicUsize::new(usize::MAX);
    let indexed: Vec<(usize, &PathBuf)> = files.iter().enumerate().collect();
    let results = suite::parallel_map(&indexed, config.jobs, |&(index, path)| {
        if index > stop_at.load(Ordering::SeqCst) {
            return None;
        }
        let result = suite::check_one(config, path, options.pending);
        if options.fail_fast && result.verdict != Verdict::Pass {
            stop_at.fetch_min(index, Ordering::SeqCst);
        }
        progress.inc();
        Some(result)
    });
    progress.finish();
    let stop = stop_at.into_inner();
    let results: Vec<ScenarioResult> = results
        .into_iter()
        .take(stop.saturating_add(1))
        .map(|r| r.expect("every scenario before the first failure ran"))
        .collect();
    let not_run = files.len() - results.len();
    let orphans = if config.find_orphans && not_run == 0 {
        let all = suite::discover(&config.paths)?;
        suite::orphans(config, &all)
            .into_iter()
            .map(|p| crate::root::slashed(&p))
            .collect()
    } else {
        Vec::new()
    };
    Ok(tally(results, orphans, not_run))
}

fn tally(results: Vec<ScenarioResult>, orphans: Vec<String>, not_run: usize) -> CheckReport {
    let passed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Pass)
        .count();
    let errors = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Error { .. }))
        .count();
    let failed = results.len() - passed + orphans.len();
    CheckReport {
        check_version: CHECK_REPORT_VERSION,
        results,
        orphans,
        passed,
        failed,
        errors,
        not_run,
    }
}

/// One line per problem, with the scenario line it points at when known.
pub fn problem_lines(result: &ScenarioResult) -> Vec<(Option<usize>, String)> {
    match &result.verdict {
        Verdict::Pass => Vec::new(),
        Verdict::New => vec![(
            None,
            format!(
                "no goldens yet: review the outputs, then run `rehearse bless {}`",
                result.source
            ),
        )],
        Verdict::Error { message, line } => vec![(*line, message.clone())],
        Verdict::Fail { problems } => problems.iter().map(problem_line).collect(),
    }
}

fn problem_line(problem: &Problem) -> (Option<usize>, String) {
    match problem {
        Problem::Expectation {
            line,
            step,
            path,
            expected,
            actual,
        } => (
            Some(*line),
            format!(
                "step {step}: expectation `{path}` failed: expected {expected}, actual {actual}"
            ),
        ),
        Problem::Diff { file, line, .. } => (*line, format!("{file} differs from its golden")),
        Problem::Replay { message } => (
            None,
            format!("the fresh capture does not replay: {message}"),
        ),
        Problem::Lint { .. } => (None, "lint error text differs from its golden".to_string()),
        Problem::Invariant {
            line,
            step,
            message,
            ..
        } => (
            Some(*line),
            format!("step {step}: runtime invariant broken: {message}"),
        ),
    }
}

/// Each problem located in the scenario file: `scenarios/x.yaml:14: ...`,
/// or `scenarios/x.yaml: ...` where no line is known; a message that
/// already starts with the file (a parse error's `file:line:column`) is
/// kept as it is.
pub fn located_problems(result: &ScenarioResult) -> Vec<String> {
    problem_lines(result)
        .into_iter()
        .map(|(line, message)| {
            if message.starts_with(&format!("{}:", result.source)) {
                return message;
            }
            match line {
                Some(line) => format!("{}:{line}: {message}", result.source),
                None => format!("{}: {message}", result.source),
            }
        })
        .collect()
}

/// The diffs of a failed scenario's goldens (and lint text), in order.
pub fn diffs(result: &ScenarioResult) -> Vec<&str> {
    match &result.verdict {
        Verdict::Fail { problems } => problems
            .iter()
            .filter_map(|problem| match problem {
                Problem::Diff { diff, .. } | Problem::Lint { diff } => Some(diff.as_str()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_substrings_or_globs() {
        let name = "lease/expiry.yaml";
        for (pattern, matches) in [
            ("expiry", true),
            ("lease/", true),
            ("budget", false),
            ("lease/*", true),
            ("*/expiry", true),
            ("*expiry.yaml", true),
            ("lease/exp?ry", true),
            ("lease/[ef]xpiry", true),
            ("budget/*", false),
            ("*piry.ym", false),
        ] {
            assert_eq!(NameFilter::new(pattern).matches(name), matches, "{pattern}");
        }
    }
}
