//! A conformance suite: discover scenario files, partition them, run them in
//! parallel (results in a stable order whatever the parallelism), compare
//! each with its goldens, replay each fresh capture, and report goldens whose
//! scenario is gone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rehearse_runtime::replay::ReplayOptions;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::driver::{self, RunOutput, RunStats};
use crate::golden::{self, Comparison};
use crate::scenario;

/// The directory name whose scenarios are expected to be invalid.
pub const INVALID_DIR: &str = "invalid";

/// A slice of the suite, for running it across several machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    /// Scenario `i` of the sorted list goes to shard `i mod N`.
    Count { shard: u64, total: u64 },
    /// A stable hash of the scenario path picks the shard, so adding a
    /// scenario never moves the others.
    Hash { shard: u64, total: u64 },
}

/// A `--partition` that is not `hash:K/N` or `count:K/N`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid partition `{0}`, expected `hash:K/N` or `count:K/N` with 1 <= K <= N")]
pub struct PartitionError(pub String);

impl Partition {
    /// Parses `hash:K/N` or `count:K/N` (1 <= K <= N).
    pub fn parse(text: &str) -> Result<Self, PartitionError> {
        let invalid = || PartitionError(text.to_string());
        let (kind, rest) = text.split_once(':').ok_or_else(invalid)?;
        let (k, n) = rest.split_once('/').ok_or_else(invalid)?;
        let shard: u64 = k.trim().parse().map_err(|_| invalid())?;
        let total: u64 = n.trim().parse().map_err(|_| invalid())?;
        if shard == 0 || total == 0 || shard > total {
            return Err(invalid());
        }
        match kind {
            "hash" => Ok(Self::Hash { shard, total }),
            "count" => Ok(Self::Count { shard, total }),
            _ => Err(invalid()),
        }
    }

    /// Keeps the entries of `items` (sorted, relative paths) in this shard.
    pub fn select<T: AsRef<str>>(&self, items: Vec<T>) -> Vec<T> {
        match *self {
            Self::Count { shard, total } => items
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i as u64 % total == shard - 1)
                .map(|(_, t)| t)
                .collect(),
            Self::Hash { shard, total } => items
                .into_iter()
                .filter(|t| stable_hash(t.as_ref()) % total == shard - 1)
                .collect(),
        }
    }
}

/// The first eight bytes of the sha256 of `text`: stable across machines,
/// versions and runs.
pub fn stable_hash(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

/// Where a suite reads and writes.
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    /// Files or directories to run; directories are searched for `*.yaml`.
    pub paths: Vec<PathBuf>,
    /// The root goldens are named relative to (normally `scenarios`).
    pub scenarios_root: PathBuf,
    pub snapshots_root: PathBuf,
    pub jobs: usize,
    pub partition: Option<Partition>,
    /// Report goldens without a scenario (only when the whole library runs).
    pub find_orphans: bool,
}

impl SuiteConfig {
    /// The whole library as seen from the project root (`scenarios/`
    /// against `snapshots/`, orphans reported) on one worker, as the
    /// library's test binary and its bench run it.
    pub fn whole_library() -> Self {
        Self {
            paths: vec![PathBuf::from("scenarios")],
            scenarios_root: PathBuf::from("scenarios"),
            snapshots_root: PathBuf::from("snapshots"),
            jobs: 1,
            partition: None,
            find_orphans: true,
        }
    }
}

/// How one scenario fared.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Outputs differ from the goldens, or expectations failed, or the
    /// capture did not replay.
    Fail {
        problems: Vec<Problem>,
    },
    /// No goldens exist yet.
    New,
    /// The scenario file could not be read or run.
    Error {
        message: String,
        /// The line of the scenario file the error points at, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
    },
}

impl Verdict {
    /// An error without a known line.
    pub fn error(message: impl Into<String>) -> Self {
        Self::Error {
            message: message.into(),
            line: None,
        }
    }

    /// Whether the scenario failed or could not run.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Fail { .. } | Self::Error { .. })
    }
}

/// One reason a scenario failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    Expectation {
        line: usize,
        step: usize,
        path: String,
        expected: serde_json::Value,
        actual: serde_json::Value,
    },
    Diff {
        file: String,
        diff: String,
        line: Option<usize>,
    },
    Replay {
        message: String,
    },
    Lint {
        diff: String,
    },
    /// A runtime invariant broke after a step.
    Invariant {
        line: usize,
        step: usize,
        invariant: String,
        message: String,
    },
}

/// The result of one scenario.
#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    /// The scenario path relative to the scenarios root, `/`-separated.
    pub name: String,
    pub source: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    #[serde(skip)]
    pub output: Option<RunOutput>,
    #[serde(skip)]
    pub stats: RunStats,
    /// Whether outputs were saved beside the goldens as `*.new`.
    #[serde(skip)]
    pub pending_written: bool,
}

/// Why a suite could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("failed to read `{}`: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no scenario file or directory at `{}`", .0.display())]
    Missing(PathBuf),
    #[error("`{}` is {kind}, expected {expected}", .path.display())]
    NotAFile {
        path: PathBuf,
        kind: &'static str,
        expected: &'static str,
    },
    #[error("nothing to check: {0}")]
    NothingSelected(String),
    #[error("{0}")]
    GoldenClash(String),
}

/// Finds scenario files under `paths`, sorted, each once. Directories are
/// walked without following links; an entry named `*.yaml` or `*.yml` that
/// is not a regular file (a link, a FIFO, a device) is an error naming it,
/// never opened. A path given by name may be a link to a regular file.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SuiteError> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = crate::walk::walk(path).map_err(|source| SuiteError::Read {
                path: path.clone(),
                source,
            })?;
            for entry in entries {
                let is_scenario = matches!(
                    entry.path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                );
                if !is_scenario {
                    continue;
                }
                if !entry.is_file() {
                    return Err(SuiteError::NotAFile {
                        path: entry.path,
                        kind: crate::atomic::describe(&entry.file_type),
                        expected: "a regular scenario file",
                    });
                }
                found.push(entry.path);
            }
        } else if path.is_file() {
            found.push(path.clone());
        } else if let Ok(metadata) = path.metadata() {
            return Err(SuiteError::NotAFile {
                path: path.clone(),
                kind: crate::atomic::describe(&metadata.file_type()),
                expected: "a scenario file or directory",
            });
        } else {
            return Err(SuiteError::Missing(path.clone()));
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Where a scenario's goldens go: its golden directory, or for an invalid
/// case its lint golden file.
pub fn golden_target(config: &SuiteConfig, path: &Path) -> PathBuf {
    if is_invalid_case(config, path) {
        lint_golden(config, path)
    } else {
        golden::golden_dir(&config.snapshots_root, &config.scenarios_root, path)
    }
}

/// Refuses two scenarios whose goldens would land in one place (`x.yaml`
/// and `x.yml`, one stem in two `invalid/` folders), or in a directory that
/// holds another scenario's goldens (`a.yaml` beside a folder `a/`): both
/// would be blessed into the same files.
pub fn check_golden_targets(config: &SuiteConfig, files: &[PathBuf]) -> Result<(), SuiteError> {
    let mut targets: Vec<(PathBuf, &PathBuf)> = files
        .iter()
        .map(|path| (golden_target(config, path), path))
        .collect();
    targets.sort();
    for pair in targets.windows(2) {
        let ((first_target, first), (second_target, second)) = (&pair[0], &pair[1]);
        if first_target == second_target || second_target.starts_with(first_target) {
            return Err(SuiteError::GoldenClash(format!(
                "`{}` and `{}` both map to goldens in `{}`, expected one scenario per golden set: rename one",
                first.display(),
                second.display(),
                first_target.display()
            )));
        }
    }
    Ok(())
}

/// The name of a scenario: its path relative to the scenarios root.
pub fn scenario_name(config: &SuiteConfig, path: &Path) -> String {
    let relative = path.strip_prefix(&config.scenarios_root).unwrap_or(path);
    relative.to_string_lossy().replace('\\', "/")
}

/// Whether a scenario lives in an `invalid/` directory.
pub fn is_invalid_case(config: &SuiteConfig, path: &Path) -> bool {
    let relative = path.strip_prefix(&config.scenarios_root).unwrap_or(path);
    relative
        .components()
        .next()
        .is_some_and(|c| c.as_os_str() == INVALID_DIR)
}

/// The golden of an invalid scenario: its exact lint error text.
pub fn lint_golden(config: &SuiteConfig, path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    config
        .snapshots_root
        .join(INVALID_DIR)
        .join(format!("{stem}.lint.txt"))
}

/// The lint error text of an invalid scenario, with a trailing newline.
pub fn lint_text(path: &Path) -> String {
    match scenario::parse_scenario(path) {
        Ok(_) => format!("{}: parsed without error\n", path.display()),
        Err(error) => format!("{error}\n"),
    }
}

/// The scenario files a suite covers, after partitioning.
pub fn selected(config: &SuiteConfig) -> Result<Vec<PathBuf>, SuiteError> {
    let all = discover(&config.paths)?;
    check_golden_targets(config, &all)?;
    Ok(match config.partition {
        None => all,
        Some(partition) => {
            let named: Vec<(String, PathBuf)> = all
                .into_iter()
                .map(|p| (scenario_name(config, &p), p))
                .collect();
            struct Named((String, PathBuf));
            impl AsRef<str> for Named {
                fn as_ref(&self) -> &str {
                    &self.0 .0
                }
            }
            partition
                .select(named.into_iter().map(Named).collect())
                .into_iter()
                .map(|n| n.0 .1)
                .collect()
        }
    })
}

/// Runs `f` over `items` on `jobs` threads, returning results in input order.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let jobs = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                let result = f(item);
                results
                    .lock()
                    .expect("no worker panics while holding the lock")[index] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .expect("workers finished")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// Checks one scenario against its goldens; with `pending`, differing or
/// new outputs are also written beside the goldens for review, and pending
/// files of outputs that now match are removed (never in CI).
pub fn check_one(config: &SuiteConfig, path: &Path, pending: bool) -> ScenarioResult {
    let source = path.to_string_lossy().replace('\\', "/");
    let mut result = ScenarioResult {
        name: scenario_name(config, path),
        source: source.clone(),
        verdict: Verdict::Pass,
        output: None,
        stats: RunStats::default(),
        pending_written: false,
    };
    let pending = pending && !golden::in_ci();
    if is_invalid_case(config, path) {
        check_lint(config, path, pending, &mut result);
        return result;
    }
    let output = match run_scenario(path, &source) {
        Ok(output) => output,
        Err(verdict) => {
            result.verdict = verdict;
            return result;
        }
    };
    result.stats = output.stats;
    let mut problems = match behaviour_problems(&output) {
        Ok(problems) => problems,
        Err(environment) => {
            result.verdict = Verdict::error(format!("{source}: {environment}"));
            return result;
        }
    };
    let goldens = match compare_goldens(config, path, &output, pending, &mut result) {
        Ok(goldens) => goldens,
        Err(verdict) => {
            result.verdict = verdict;
            return result;
        }
    };
    problems.extend(goldens.diffs);
    result.verdict = if !problems.is_empty() {
        Verdict::Fail { problems }
    } else if goldens.missing {
        Verdict::New
    } else {
        Verdict::Pass
    };
    result.output = Some(output);
    result
}

/// Parses and runs one scenario; a scenario that does not parse or run is
/// an error verdict.
fn run_scenario(path: &Path, source: &str) -> Result<RunOutput, Verdict> {
    let scenario = scenario::parse_scenario(path).map_err(|error| Verdict::Error {
        message: error.to_string(),
        line: error.position().map(|p| p.line),
    })?;
    driver::run(&scenario, source).map_err(|error| Verdict::error(error.to_string()))
}

/// What comparing a run's outputs with their goldens found.
struct GoldenCheck {
    /// One `Problem::Diff` per output that differs from its golden.
    diffs: Vec<Problem>,
    /// Whether some output has no golden yet.
    missing: bool,
}

/// Compares each output of a run with its golden; with `pending`, writes
/// each differing or new output beside its golden (noting it in `result`)
/// and clears the pending file of each output that matches. A golden that
/// cannot be read is an error verdict.
fn compare_goldens(
    config: &SuiteConfig,
    path: &Path,
    output: &RunOutput,
    pending: bool,
    result: &mut ScenarioResult,
) -> Result<GoldenCheck, Verdict> {
    let dir = golden::golden_dir(&config.snapshots_root, &config.scenarios_root, path);
    let mut check = GoldenCheck {
        diffs: Vec::new(),
        missing: false,
    };
    for (file, contents) in output.files() {
        let golden_path = dir.join(file);
        match golden::compare_in(&config.snapshots_root, &golden_path, contents) {
            Ok(Comparison::Same) => {
                if pending {
                    let _ = golden::clear_pending(&golden_path);
                }
                continue;
            }
            Ok(Comparison::Missing) => check.missing = true,
            Ok(Comparison::Differs { diff }) => {
                let line = first_differing_step_line(file, &diff, output);
                check.diffs.push(Problem::Diff {
                    file: file.to_string(),
                    diff,
                    line,
                });
            }
            Err(error) => {
                return Err(Verdict::error(format!(
                    "failed to read `{}`: {error}",
                    golden_path.display()
                )));
            }
        }
        if pending && golden::write_pending(&golden_path, contents).is_ok() {
            result.pending_written = true;
        }
    }
    Ok(check)
}

/// Compares an invalid scenario's lint text with its golden.
fn check_lint(config: &SuiteConfig, path: &Path, pending: bool, result: &mut ScenarioResult) {
    let text = lint_text(path);
    let golden = lint_golden(config, path);
    result.verdict = match golden::compare_in(&config.snapshots_root, &golden, &text) {
        Ok(Comparison::Same) => Verdict::Pass,
        Ok(Comparison::Missing) => Verdict::New,
        Ok(Comparison::Differs { diff }) => Verdict::Fail {
            problems: vec![Problem::Lint { diff }],
        },
        Err(error) => Verdict::error(format!("failed to read `{}`: {error}", golden.display())),
    };
    if !pending {
        return;
    }
    if result.verdict == Verdict::Pass {
        let _ = golden::clear_pending(&golden);
    } else if golden::write_pending(&golden, &text).is_ok() {
        result.pending_written = true;
    }
}

/// What went wrong in the run itself, root causes first: a broken runtime
/// invariant, then the expectations that failed (often because of it),
/// then a capture that does not replay. An error of the machine (not of
/// the capture) is returned as such: it is no behaviour of the scenario.
fn behaviour_problems(output: &RunOutput) -> Result<Vec<Problem>, crate::storage::BundleError> {
    let mut problems: Vec<Problem> = output
        .report
        .invariant_violations
        .iter()
        .map(|violation| Problem::Invariant {
            line: violation.line,
            step: violation.step,
            invariant: violation.invariant.clone(),
            message: violation.message.clone(),
        })
        .collect();
    for (step, expectation) in output.report.failures() {
        problems.push(Problem::Expectation {
            line: step.line,
            step: step.step,
            path: expectation.path.clone(),
            expected: expectation.expected.clone(),
            actual: expectation.actual.clone(),
        });
    }
    match replay_fresh(output) {
        Ok(()) => {}
        Err(error @ crate::storage::BundleError::Environment(_)) => return Err(error),
        Err(error) => problems.push(Problem::Replay {
            message: error.to_string(),
        }),
    }
    Ok(problems)
}

/// Replays a fresh capture on a fresh runtime; a scenario whose capture does
/// not reproduce is broken, whatever its goldens say.
fn replay_fresh(output: &RunOutput) -> Result<(), crate::storage::BundleError> {
    crate::storage::replay_bundle(&output.bundle, ReplayOptions { strict: true }).map(|_| ())
}

/// The scenario line of the step whose output diverged first, so a diff
/// can point at the step in the scenario file.
fn first_differing_step_line(file: &str, diff: &str, output: &RunOutput) -> Option<usize> {
    step_line(file, first_changed_line(diff)?, output)
}

/// The scenario line of the step each hunk of `diff` (a golden's diff)
/// changes first; `None` for a hunk that names no step.
pub fn hunk_step_lines(file: &str, diff: &str, output: &RunOutput) -> Vec<Option<usize>> {
    let mut hunks: Vec<String> = Vec::new();
    for line in diff.lines() {
        if line.starts_with("@@ ") {
            hunks.push(String::new());
        }
        if let Some(hunk) = hunks.last_mut() {
            hunk.push_str(line);
            hunk.push('\n');
        }
    }
    hunks
        .iter()
        .map(|hunk| step_line(file, first_changed_line(hunk)?, output))
        .collect()
}

/// The scenario line of the step that wrote line `changed` of an output.
fn step_line(file: &str, changed: usize, output: &RunOutput) -> Option<usize> {
    let text = match file {
        "report.json" => &output.report_json,
        "events.jsonl" => &output.events_jsonl,
        "capture.jsonl" => &output.capture_json,
        // A run record names no step.
        _ => return None,
    };
    match file {
        // The n-th event belongs to the step whose appended range covers it.
        "events.jsonl" => {
            let index = changed - 1;
            output
                .report
                .steps
                .iter()
                .find(|step| step.events.is_some_and(|r| index < r.first + r.count))
                .or(output.report.steps.last())
                .map(|s| s.line)
        }
        // The nearest step entry above the change names its line, or its event.
        "report.json" => last_number_after(text, changed, "\"line\": "),
        _ => {
            let step: usize = last_number_after(text, changed, "\"event_id\":\"step-")?;
            output
                .report
                .steps
                .get(step.checked_sub(1)?)
                .map(|s| s.line)
        }
    }
}

/// The 1-based line of the actual output where a unified diff first changes.
pub fn first_changed_line(diff: &str) -> Option<usize> {
    let mut new_line = 0usize;
    for line in diff.lines() {
        if let Some(header) = line.strip_prefix("@@ ") {
            let plus = header
                .split_whitespace()
                .find(|part| part.starts_with('+'))?;
            new_line = plus[1..].split(',').next()?.parse().ok()?;
        } else if line.starts_with("+++") || line.starts_with("---") {
            continue;
        } else if line.starts_with('+') || line.starts_with('-') {
            return Some(new_line.max(1));
        } else if line.starts_with(' ') {
            new_line += 1;
        }
    }
    None
}

/// The number after the last `marker` in the first `upto` lines of `text`.
fn last_number_after(text: &str, upto: usize, marker: &str) -> Option<usize> {
    text.lines()
        .take(upto)
        .filter_map(|line| line.find(marker).map(|at| &line[at + marker.len()..]))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .last()
}

/// Golden sets under the snapshots root whose scenario does not exist.
pub fn orphans(config: &SuiteConfig, scenarios: &[PathBuf]) -> Vec<PathBuf> {
    let Ok(sets) = golden::golden_sets(&config.snapshots_root) else {
        return Vec::new();
    };
    let expected: std::collections::BTreeSet<PathBuf> = scenarios
        .iter()
        .filter(|p| !is_invalid_case(config, p))
        .map(|p| golden::golden_dir(Path::new(""), &config.scenarios_root, p))
        .collect();
    let mut orphaned: Vec<PathBuf> = sets
        .into_iter()
        .filter(|set| !expected.contains(set))
        .map(|set| config.snapshots_root.join(set))
        .collect();
    // Lint goldens of invalid scenarios that are gone.
    let invalid_dir = config.snapshots_root.join(INVALID_DIR);
    for found in crate::walk::walk(&invalid_dir).unwrap_or_default() {
        if found.path.parent() != Some(invalid_dir.as_path()) {
            continue;
        }
        let name = found.name();
        let Some(stem) = name.strip_suffix(".lint.txt") else {
            continue;
        };
        let has_scenario = scenarios
            .iter()
            .any(|p| is_invalid_case(config, p) && p.file_stem().is_some_and(|s| s == stem));
        if !has_scenario {
            orphaned.push(found.path);
        }
    }
    orphaned
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn partitions_parse_and_reject_garbage() {
        assert_eq!(
            Partition::parse("hash:1/4"),
            Ok(Partition::Hash { shard: 1, total: 4 })
        );
        assert_eq!(
            Partition::parse("count:4/4"),
            Ok(Partition::Count { shard: 4, total: 4 })
        );
        for bad in [
            "",
            "hash",
            "hash:0/4",
            "hash:5/4",
            "hash:1/0",
            "slice:1/2",
            "hash:a/b",
            "count:1-2",
        ] {
            assert!(Partition::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partitions_cover_everything_exactly_once() {
        let names: Vec<String> = (0..97)
            .map(|i| format!("group{}/scenario-{i}.yaml", i % 7))
            .collect();
        for kind in ["hash", "count"] {
            let mut seen: Vec<String> = (1..=4)
                .flat_map(|k| {
                    Partition::parse(&format!("{kind}:{k}/4"))
                        .unwrap()
                        .select(names.clone())
                })
                .collect();
            seen.sort();
            let mut expected = names.clone();
            expected.sort();
            assert_eq!(seen, expected, "{kind}");
        }
    }

    #[test]
    fn hash_partitions_do_not_move_existing_scenarios() {
        let before: Vec<String> = (0..40).map(|i| format!("s{i}.yaml")).collect();
        let mut after = before.clone();
        after.insert(7, "new.yaml".to_string());
        for k in 1..=3 {
            let p = Partition::parse(&format!("hash:{k}/3")).unwrap();
            let old = p.select(before.clone());
            let new: Vec<_> = p
                .select(after.clone())
                .into_iter()
                .filter(|n| n != "new.yaml")
                .collect();
            assert_eq!(old, new);
        }
    }

    #[test]
    fn first_changed_line_walks_the_hunk() {
        let old = (1..=20).map(|i| format!("{i}\n")).collect::<String>();
        let new = old.replace("12\n", "twelve\n");
        assert_eq!(
            first_changed_line(&golden::unified_diff(&old, &new, "f")),
            Some(12)
        );
        let shorter = old.replace("1\n2\n", "2\n");
        assert_eq!(
            first_changed_line(&golden::unified_diff(&old, &shorter, "f")),
            Some(1)
        );
    }

    /// A pull request twice with an expectation on the second: with the
    /// deliberate bug that runs finished work again, the invariant breaks
    /// and, because of it, the expectation fails too.
    pub(crate) const TWICE: &str = "\
version: 1
start: 2026-04-24T12:00:00Z
personas:
  merge_captain:
    entry_workflow: workflows/merge.harn#run
steps:
  - at: 0s
    trigger:
      persona: merge_captain
      provider: github
      kind: pull_request
      metadata: { repository: burin-labs/harn, number: \"7\" }
  - at: 1s
    trigger:
      persona: merge_captain
      provider: github
      kind: pull_request
      metadata: { repository: burin-labs/harn, number: \"7\" }
    expect: { receipt: duplicate }
";

    /// `TWICE` (as `twice.yaml`) on a runtime that runs finished work again.
    pub(crate) fn twice_with_a_bug() -> RunOutput {
        fn complete_duplicates(runtime: &mut rehearse_runtime::engine::Runtime) {
            runtime.set_deliberate_bug(rehearse_runtime::test_hooks::Bug::CompleteDuplicates);
        }
        let scenario = scenario::parse_str(TWICE, "twice.yaml", "twice").unwrap();
        let options = driver::RunOptions {
            runtime_hook: Some(complete_duplicates),
            ..driver::RunOptions::default()
        };
        driver::run_with(&scenario, "twice.yaml", options).unwrap()
    }

    #[test]
    fn a_broken_invariant_comes_before_the_expectations_it_broke() {
        let output = twice_with_a_bug();
        let problems = behaviour_problems(&output).unwrap();
        let kinds: Vec<&str> = problems
            .iter()
            .map(|p| match p {
                Problem::Invariant { .. } => "invariant",
                Problem::Expectation { .. } => "expectation",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds[..2], ["invariant", "expectation"], "{problems:?}");
    }

    #[test]
    fn parallel_map_keeps_input_order() {
        let items: Vec<u64> = (0..50).collect();
        for jobs in [1, 2, 7, 64] {
            assert_eq!(
                parallel_map(&items, jobs, |x| x * 2),
                items.iter().map(|x| x * 2).collect::<Vec<_>>()
            );
        }
    }
}
