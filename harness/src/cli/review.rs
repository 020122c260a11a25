//! `rehearse review`: accept or reject the pending outputs `check` saved
//! beside the goldens (`*.new`), one scenario at a time.
//!
//! Review runs each scenario with pending files again before showing it, so
//! what it accepts is what the scenario produces now: a pending file left
//! from an older run is refreshed or, when the scenario matches its goldens
//! again, removed, and never overwrites a correct golden.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::check;
use crate::cli::{CliError, Library};
use crate::exit::Exit;
use crate::golden;
use crate::outln;
use crate::style::{self, Style};
use crate::suite::{self, Problem, ScenarioResult, SuiteConfig, Verdict};

/// Review pending golden changes scenario by scenario: show what failed
/// and each diff with the scenario line of its step, then accept or reject.
///
/// On a terminal, one key decides: `a` accept, `r` reject, `s` skip,
/// `q` quit. Without a terminal it lists what is pending; `--accept` or
/// `--reject` decides everything selected.
#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// Only scenarios under these files or directories (default: all).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Accept every selected pending change.
    #[arg(long, conflicts_with = "reject")]
    pub accept: bool,
    /// Reject (delete) every selected pending change.
    #[arg(long)]
    pub reject: bool,
    /// The scenarios directory (default: `scenarios` under the project root).
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Where the goldens live (default: `snapshots` under the project root).
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
}

/// What to do with one scenario's pending goldens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Accept,
    Reject,
    Skip,
    Quit,
}

impl Choice {
    /// The choice a key stands for; `None` for any other key.
    pub fn from_key(key: char) -> Option<Self> {
        match key.to_ascii_lowercase() {
            'a' => Some(Self::Accept),
            'r' => Some(Self::Reject),
            's' | '\n' | '\r' | ' ' => Some(Self::Skip),
            'q' | '\x1b' => Some(Self::Quit),
            _ => None,
        }
    }
}

/// Why `review` refused or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("refusing to accept goldens while `CI` is set")]
    AcceptInCi,
    #[error("failed to write the goldens of `{file}`: {source}")]
    Accept {
        file: String,
        source: std::io::Error,
    },
    #[error("failed to read `{}`: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to remove `{}`: {source}", .path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How the review went.
#[derive(Debug, Default)]
struct Tally {
    accepted: usize,
    rejected: usize,
    left: usize,
    stale: usize,
    /// Accepted goldens whose expectations or invariants still fail.
    accepted_failing: usize,
}

pub fn run(args: &ReviewArgs) -> Result<Exit, CliError> {
    if golden::in_ci() && args.accept {
        return Err(ReviewError::AcceptInCi.into());
    }
    let library = Library::open(
        &args.paths,
        args.scenarios.as_deref(),
        args.snapshots.as_deref(),
    )?;
    let config = library.suite(1, None);
    let scenarios = suite::discover(&config.paths)?;
    let with_pending: Vec<&PathBuf> = scenarios
        .iter()
        .filter(|path| !pending_of(&config, path).is_empty())
        .collect();
    let orphans = if library.whole {
        orphan_pending(&config, &scenarios)?
    } else {
        Vec::new()
    };
    if with_pending.is_empty() && orphans.is_empty() {
        outln!("review: nothing pending");
        return Ok(Exit::Pass);
    }
    let style = Style::stdout();
    let interactive = !args.accept
        && !args.reject
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal();
    let mut tally = Tally::default();
    for path in with_pending {
        // Run again, so the pending files are what the scenario gives now.
        let result = suite::check_one(&config, path, true);
        if result.verdict == Verdict::Pass {
            outln!(
                "{} {}: matches its goldens now; removed its stale pending files",
                style.dim("stale"),
                result.name
            );
            tally.stale += 1;
            continue;
        }
        let choice = decide(args, interactive, &result, style);
        if choice == Choice::Quit {
            tally.left += 1;
            break;
        }
        apply(&config, path, &result, choice, &mut tally, style)?;
    }
    review_orphans(args, &orphans, &mut tally, style)?;
    Ok(finish(&tally))
}

/// Shows one scenario and asks (or reads the flags) what to do with it.
fn decide(args: &ReviewArgs, interactive: bool, result: &ScenarioResult, style: Style) -> Choice {
    show(result, style, interactive);
    if args.accept {
        Choice::Accept
    } else if args.reject {
        Choice::Reject
    } else if interactive {
        ask(&result.name)
    } else {
        Choice::Skip
    }
}

/// The scenario, what failed (root causes first), a warning when its
/// expectations fail, and each diff with the scenario line of its hunks
/// (only a summary line per file when not interactive).
fn show(result: &ScenarioResult, style: Style, full: bool) {
    let state = match result.verdict {
        Verdict::New => style.yellow("NEW  "),
        Verdict::Error { .. } => style.red("ERROR"),
        _ => style.red("FAIL "),
    };
    outln!("{state} {}", result.name);
    for problem in check::located_problems(result) {
        outln!("      {problem}");
    }
    if let Some(warning) = behaviour_warning(result) {
        outln!("      {}: {warning}", style.yellow("warning"));
    }
    let (Verdict::Fail { problems }, Some(output)) = (&result.verdict, &result.output) else {
        return;
    };
    for problem in problems {
        let Problem::Diff { file, diff, .. } = problem else {
            continue;
        };
        let lines = suite::hunk_step_lines(file, diff, output);
        if !full {
            let steps: std::collections::BTreeSet<usize> =
                lines.iter().flatten().copied().collect();
            let at: Vec<String> = steps
                .iter()
                .map(|line| format!("{}:{line}", result.source))
                .collect();
            outln!(
                "      {file}: {}{}",
                style::count(lines.len(), "hunk"),
                if at.is_empty() {
                    String::new()
                } else {
                    format!(" from the step at {}", at.join(", "))
                }
            );
            continue;
        }
        print_annotated_diff(diff, &lines, &result.source, style);
    }
}

fn print_annotated_diff(diff: &str, lines: &[Option<usize>], source: &str, style: Style) {
    let mut hunk = 0usize;
    for line in style.diff(diff).lines() {
        if line.contains("@@ ") && line.contains(" @@") {
            let at = lines.get(hunk).copied().flatten();
            hunk += 1;
            match at {
                Some(at) => outln!(
                    "      {line} {}",
                    style.dim(&format!("step at {source}:{at}"))
                ),
                None => outln!("      {line}"),
            }
        } else {
            outln!("      {line}");
        }
    }
}

/// Failed expectations and broken invariants of a result.
fn failing_behaviour(result: &ScenarioResult) -> (usize, usize) {
    let Verdict::Fail { problems } = &result.verdict else {
        return (0, 0);
    };
    let expectations = problems
        .iter()
        .filter(|p| matches!(p, Problem::Expectation { .. }))
        .count();
    let invariants = problems
        .iter()
        .filter(|p| matches!(p, Problem::Invariant { .. }))
        .count();
    (expectations, invariants)
}

/// The warning for goldens whose run breaks expectations or invariants.
fn behaviour_warning(result: &ScenarioResult) -> Option<String> {
    let (expectations, invariants) = failing_behaviour(result);
    let mut parts = Vec::new();
    if expectations > 0 {
        parts.push(style::count(expectations, "failed expectation"));
    }
    if invariants > 0 {
        parts.push(style::count(invariants, "broken invariant"));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "{}; accepting its goldens does not make them pass",
            parts.join(" and ")
        )
    })
}

/// Reads one key on the terminal; anything but a choice asks again.
fn ask(name: &str) -> Choice {
    let term = console::Term::stdout();
    loop {
        let _ = term.write_str(&format!("{name}: [a]ccept, [r]eject, [s]kip, [q]uit? "));
        let Ok(key) = term.read_char() else {
            let _ = term.write_line("");
            return Choice::Quit;
        };
        if let Some(choice) = Choice::from_key(key) {
            let _ = term.write_line(&key.to_string());
            return choice;
        }
        let _ = term.write_line("");
    }
}

/// Carries out a choice for one scenario's pending goldens.
fn apply(
    config: &SuiteConfig,
    path: &Path,
    result: &ScenarioResult,
    choice: Choice,
    tally: &mut Tally,
    style: Style,
) -> Result<(), CliError> {
    let pending = pending_of(config, path);
    match choice {
        Choice::Accept => {
            let accepted = accept(config, path, result).map_err(|source| ReviewError::Accept {
                file: result.source.clone(),
                source,
            })?;
            if !accepted {
                outln!(
                    "      {}: cannot accept a scenario that does not run; fix it and check again",
                    style.red("refused")
                );
                tally.left += 1;
                return Ok(());
            }
            tally.accepted += 1;
            if behaviour_warning(result).is_some() {
                tally.accepted_failing += 1;
            }
            outln!("{} {}", style.green("accepted"), result.name);
        }
        Choice::Reject => {
            remove_all(&pending)?;
            tally.rejected += 1;
            outln!("{} {}", style.red("rejected"), result.name);
        }
        Choice::Skip | Choice::Quit => tally.left += 1,
    }
    Ok(())
}

/// Writes an accepted scenario's goldens: every output of the run just
/// made, as one set (or the lint text of an invalid scenario). `false`
/// when the scenario did not run, so there is nothing current to accept.
fn accept(config: &SuiteConfig, path: &Path, result: &ScenarioResult) -> std::io::Result<bool> {
    let root = &config.snapshots_root;
    if suite::is_invalid_case(config, path) {
        let golden = suite::lint_golden(config, path);
        golden::bless_in(root, &golden, &suite::lint_text(path))?;
        return Ok(true);
    }
    let Some(output) = result.output.as_ref() else {
        return Ok(false);
    };
    let dir = golden::golden_dir(root, &config.scenarios_root, path);
    golden::bless_set(root, &dir, &output.files())?;
    Ok(true)
}

/// The golden files a scenario owns.
fn goldens_of(config: &SuiteConfig, path: &Path) -> Vec<PathBuf> {
    if suite::is_invalid_case(config, path) {
        return vec![suite::lint_golden(config, path)];
    }
    let dir = golden::golden_dir(&config.snapshots_root, &config.scenarios_root, path);
    golden::GOLDEN_FILES.iter().map(|f| dir.join(f)).collect()
}

/// The pending files beside a scenario's goldens.
fn pending_of(config: &SuiteConfig, path: &Path) -> Vec<PathBuf> {
    goldens_of(config, path)
        .iter()
        .map(|golden| golden::pending_path(golden))
        .filter(|pending| pending.is_file())
        .collect()
}

/// Pending files under the goldens that belong to no scenario.
fn orphan_pending(config: &SuiteConfig, scenarios: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let owned: std::collections::BTreeSet<PathBuf> = scenarios
        .iter()
        .flat_map(|path| goldens_of(config, path))
        .map(|golden| golden::pending_path(&golden))
        .collect();
    let all =
        golden::pending_files(&config.snapshots_root).map_err(|source| ReviewError::Read {
            path: config.snapshots_root.clone(),
            source,
        })?;
    Ok(all.into_iter().filter(|p| !owned.contains(p)).collect())
}

/// Pending files without a scenario can only be rejected: nothing can say
/// whether they are current.
fn review_orphans(
    args: &ReviewArgs,
    orphans: &[PathBuf],
    tally: &mut Tally,
    style: Style,
) -> Result<(), CliError> {
    if orphans.is_empty() {
        return Ok(());
    }
    for orphan in orphans {
        outln!(
            "{} {}: pending file without a scenario; it is never accepted",
            style.red("ORPHAN"),
            orphan.display()
        );
    }
    if args.reject {
        remove_all(orphans)?;
        tally.rejected += orphans.len();
    } else {
        tally.left += orphans.len();
    }
    Ok(())
}

fn remove_all(files: &[PathBuf]) -> Result<(), CliError> {
    for file in files {
        std::fs::remove_file(file).map_err(|source| ReviewError::Remove {
            path: file.clone(),
            source,
        })?;
    }
    Ok(())
}

fn finish(tally: &Tally) -> Exit {
    outln!(
        "review: {} accepted, {} rejected, {} left, {} stale removed",
        tally.accepted,
        tally.rejected,
        tally.left,
        tally.stale
    );
    if tally.left > 0 {
        outln!("accept with `rehearse review --accept`, reject with `rehearse review --reject`, or add a path to choose");
        return Exit::Mismatch;
    }
    if tally.accepted_failing > 0 {
        outln!(
            "{} still failing expectations or invariants; `check` fails until they hold",
            style::count(tally.accepted_failing, "accepted scenario")
        );
        return Exit::Mismatch;
    }
    Exit::Pass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_keys_choose() {
        assert_eq!(Choice::from_key('a'), Some(Choice::Accept));
        assert_eq!(Choice::from_key('R'), Some(Choice::Reject));
        assert_eq!(Choice::from_key('s'), Some(Choice::Skip));
        assert_eq!(Choice::from_key('\n'), Some(Choice::Skip));
        assert_eq!(Choice::from_key('q'), Some(Choice::Quit));
        assert_eq!(Choice::from_key('x'), None);
    }
}
