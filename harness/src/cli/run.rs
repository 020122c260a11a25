//! `rehearse run`: run scenarios, print their reports, write their outputs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use rehearse_runtime::op::Op;
use serde_json::json;

use crate::cli::CliError;
use crate::driver::{Finished, RunStats};
use crate::exit::Exit;
use crate::report::{Report, StepReport};
use crate::root::Project;
use crate::scenario::{self, Scenario};
use crate::style::Style;
use crate::{out, outln};

/// Run scenario files, print each report and write its outputs
/// (`report.json`, `events.jsonl`, `capture.jsonl`, `runs.jsonl`).
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files to run.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where to write outputs; each scenario gets `DIR/<name>/`. Two files
    /// with the same `name` in one run are refused rather than overwriting
    /// each other's folder.
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// How to print the report: `json` writes JSON Lines, one record per
    /// scenario and a summary (docs/FORMATS.md).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Print events, episodes and throughput after each run.
    #[arg(long)]
    pub stats: bool,
    /// Also write a self-contained timeline page per scenario,
    /// `DIR/<name>.html` (lanes per persona, the supervisor, the budget;
    /// each step's explanation and events).
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
}

/// Report formats of `run`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// The version of the JSON Lines records of `run --format json`.
pub const RUN_RECORD_VERSION: u32 = 1;

/// How the scenarios of one `run` fared.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Why files were not run (or their pages not written), in order.
    errors: Vec<CliError>,
    /// Output folders already written, by scenario name, with their file.
    written: BTreeMap<String, String>,
}

/// Why one file of a `run` was not run, or its page not written.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error("{}: has the same name `{name}` as `{first}`, so its outputs would overwrite `{}`; give one of them another `name`", .file.display(), .dir.display())]
    NameClash {
        file: PathBuf,
        name: String,
        first: String,
        dir: PathBuf,
    },
    #[error(transparent)]
    Outputs(#[from] crate::outputs::RunIntoError),
    #[error("failed to write the timeline page to `{}`: {source}", .dir.display())]
    Page {
        dir: PathBuf,
        source: std::io::Error,
    },
}

pub fn run(args: &RunArgs) -> Result<Exit, CliError> {
    let project = Project::discover()?;
    let style = Style::stdout();
    let mut tally = Tally::default();
    for file in &args.files {
        match run_file(args, &project, file, &mut tally) {
            Ok((scenario, finished, dir)) => {
                show(args, &scenario, file, &dir, finished, style, &mut tally);
            }
            Err(error) => {
                if args.format == Format::Json {
                    outln!(
                        "{}",
                        json!({"record": "error", "version": RUN_RECORD_VERSION,
                               "file": project.name(file), "message": error.to_string()})
                    );
                }
                tally.errors.push(error.into());
            }
        }
    }
    if args.format == Format::Json {
        outln!(
            "{}",
            json!({"record": "summary", "version": RUN_RECORD_VERSION,
                   "scenarios": args.files.len(), "passed": tally.passed,
                   "failed": tally.failed, "errors": tally.errors.len()})
        );
    }
    // Each file's error, after the reports of the files that ran.
    CliError::from_several(tally.errors)?;
    Ok(if tally.failed > 0 {
        Exit::Mismatch
    } else {
        Exit::Pass
    })
}

/// Prints the report of a scenario that ran and counts it.
fn show(
    args: &RunArgs,
    scenario: &Scenario,
    file: &Path,
    dir: &Path,
    finished: Finished,
    style: Style,
    tally: &mut Tally,
) {
    let Finished {
        mut report, stats, ..
    } = finished;
    let passed = report.passed();
    match args.format {
        Format::Json => print_json_record(file, dir, &report),
        Format::Human => {
            // Why each failed step got its result (see `explain`).
            let explained = crate::explain::explain_failures(scenario, &report, "              ");
            label_steps(scenario, &mut report);
            out!(
                "{}",
                render_human_explained(&report, dir, style, &explained)
            );
        }
    }
    if args.stats {
        print_stats(&stats);
    }
    if let Some(html) = &args.html {
        write_page(html, file, &report.source, tally);
    }
    if passed {
        tally.passed += 1;
    } else {
        tally.failed += 1;
    }
}

/// Writes the timeline page of `file` under `dir` (see `html`).
fn write_page(dir: &Path, file: &Path, source: &str, tally: &mut Tally) {
    match crate::html::write_run_file_page(dir, file, source) {
        // A note beside the report, on standard error as before; a closed
        // standard error only loses it.
        Ok(path) => crate::out::stderr_line(&format!("timeline: {}", path.display())),
        Err(source) => tally.errors.push(
            RunError::Page {
                dir: dir.to_path_buf(),
                source,
            }
            .into(),
        ),
    }
}

/// Parses, runs and writes one scenario; the error says why not.
fn run_file(
    args: &RunArgs,
    project: &Project,
    file: &Path,
    tally: &mut Tally,
) -> Result<(Scenario, Finished, PathBuf), RunError> {
    let source = project.name(file);
    let scenario = scenario::parse_scenario(file)?;
    if let Some(first) = tally.written.get(&scenario.name) {
        return Err(RunError::NameClash {
            file: file.to_path_buf(),
            name: scenario.name.clone(),
            first: first.clone(),
            dir: args.out.join(&scenario.name),
        });
    }
    let dir = args.out.join(&scenario.name);
    let finished = crate::outputs::run_into(&dir, &scenario, &source)?;
    tally
        .written
        .insert(scenario.name.clone(), file.display().to_string());
    Ok((scenario, finished, dir))
}

/// Names each step of the printed timeline after what it did: a process
/// step by its operation and process (`process claim p1`). The outputs
/// and the JSON record were written before, so this changes nothing in them.
fn label_steps(scenario: &Scenario, report: &mut Report) {
    for (step, spec) in report.steps.iter_mut().zip(&scenario.steps) {
        if let Some(Op::Process(process)) = &spec.op {
            step.kind = match process.process_id() {
                Some(id) => format!("process {} {id}", process.kind()),
                None => format!("process {}", process.kind()),
            };
        }
    }
}

/// One JSON Lines record for a scenario that ran.
fn print_json_record(file: &Path, dir: &Path, report: &Report) {
    outln!(
        "{}",
        json!({
            "record": "scenario",
            "version": RUN_RECORD_VERSION,
            "file": crate::root::slashed(file),
            "outputs": crate::root::slashed(dir),
            "passed": report.passed(),
            "report": report,
        })
    );
}

/// For each episode a step deferred, the step that deferred it.
fn deferring_steps(report: &Report) -> BTreeMap<u64, usize> {
    let mut steps = BTreeMap::new();
    for step in &report.steps {
        if let Some(decision) = &step.decision {
            if decision.decision.as_str() == "defer" {
                if let Some(episode) = decision.episode_id {
                    steps.entry(episode).or_insert(step.step);
                }
            }
        }
    }
    steps
}

/// What a pump ran: `episode 2 from step 3`, or that nothing was due.
fn pumped(step: &StepReport, deferred: &BTreeMap<u64, usize>) -> Option<String> {
    if step.kind != "pump" {
        return None;
    }
    let episode = step.decision.as_ref().and_then(|d| d.episode_id);
    Some(match episode {
        None => "nothing due".to_string(),
        Some(episode) => match deferred.get(&episode) {
            Some(from) => format!("episode {episode} from step {from}"),
            None => format!("episode {episode}"),
        },
    })
}

fn render_step(
    text: &mut String,
    step: &StepReport,
    report: &Report,
    deferred: &BTreeMap<u64, usize>,
    style: Style,
) {
    let receipt = step.receipt.as_deref().unwrap_or("");
    let painted = match receipt {
        "error" => style.red(receipt),
        _ => receipt.to_string(),
    };
    let decision = step.decision.as_ref().map_or("", |d| d.decision.as_str());
    let mut line = format!(
        "  step {:>3}  line {:>4}  {}  {:<20} {:<16} {}",
        step.step,
        step.line,
        step.at,
        step.kind,
        painted,
        style.dim(decision)
    );
    if let Some(what) = pumped(step, deferred) {
        line.push_str(&format!("  {}", style.dim(&format!("({what})"))));
    }
    let _ = writeln!(text, "{}", line.trim_end());
    if !step.receipts.is_empty() {
        let _ = writeln!(
            text,
            "            drained: {}",
            receipts_line(&step.receipts)
        );
    }
    if let Some(error) = &step.error {
        let _ = writeln!(
            text,
            "            {}",
            style.dim(&format!("error: {error}"))
        );
    }
    for violation in report
        .invariant_violations
        .iter()
        .filter(|v| v.step == step.step)
    {
        let _ = writeln!(
            text,
            "            {} {}:{}: invariant `{}` broken: {}",
            style.red("VIOLATED"),
            report.source,
            violation.line,
            violation.invariant,
            violation.message
        );
    }
    render_expectations(text, step, report, style);
}

/// The most receipts the human summary lists one by one.
const LISTED_RECEIPTS: usize = 10;

/// A step's receipts for the human summary: each in order when there are
/// few, else how many of each status, in the order each first came, as
/// `receipt_counts` expects them (`100000: completed 99999, failed 1`).
/// `report.json` lists them all.
fn receipts_line(receipts: &[String]) -> String {
    if receipts.len() <= LISTED_RECEIPTS {
        return receipts.join(", ");
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for receipt in receipts {
        match counts.iter_mut().find(|(status, _)| status == receipt) {
            Some((_, count)) => *count += 1,
            None => counts.push((receipt, 1)),
        }
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, count)| format!("{status} {count}"))
        .collect();
    format!("{}: {}", receipts.len(), counts.join(", "))
}

/// A step's expectations, each `ok` or `FAILED` with where and why.
fn render_expectations(text: &mut String, step: &StepReport, report: &Report, style: Style) {
    for expectation in &step.expectations {
        if expectation.ok {
            let _ = writeln!(
                text,
                "            {} {} = {}",
                style.green("ok"),
                expectation.path,
                expectation.expected
            );
        } else {
            let _ = writeln!(
                text,
                "            {} {}:{}: {}: expected {}, actual {}",
                style.red("FAILED"),
                report.source,
                step.line,
                expectation.path,
                expectation.expected,
                expectation.actual
            );
        }
    }
}

/// The human report of a run: its steps (with every broken invariant at
/// its step), what was left deferred, the final states and a summary that
/// says why a run failed.
pub fn render_human(report: &Report, dir: &Path, style: Style) -> String {
    render_human_explained(report, dir, style, &BTreeMap::new())
}

/// [`render_human`] with each failed step's explanation under its failed
/// expectations.
pub fn render_human_explained(
    report: &Report,
    dir: &Path,
    style: Style,
    explained: &BTreeMap<usize, String>,
) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} {}",
        style.bold(&report.scenario),
        style.dim(&format!(
            "({}, seed {}, start {})",
            report.source, report.seed, report.start
        ))
    );
    let deferred = deferring_steps(report);
    for step in &report.steps {
        render_step(&mut text, step, report, &deferred, style);
        if let Some(explanation) = explained.get(&step.step) {
            text.push_str(&style.dim(explanation));
        }
    }
    for deferred in &report.deferred_at_end {
        let _ = writeln!(
            text,
            "  {} episode {} ({} from {}) still deferred, due {}",
            style.yellow("left"),
            deferred.episode_id,
            deferred.kind,
            deferred.event_id,
            deferred.schedule_at
        );
    }
    for (name, status) in &report.final_state.personas {
        let state = serde_json::to_value(status.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  final {name}: {state}, queued {}, spent today {}, lease {}",
            status.queued_events,
            status.budget.spent_today_usd,
            status.active_lease.as_ref().map_or("none", |l| &*l.id)
        );
    }
    render_summary(&mut text, report, dir, style);
    text
}

fn render_summary(text: &mut String, report: &Report, dir: &Path, style: Style) {
    let summary = &report.summary;
    let violations = report.invariant_violations.len();
    let verdict = if report.passed() {
        style.green("passed")
    } else {
        style.red("failed")
    };
    let _ = write!(
        text,
        "{verdict}: {} steps, {} events, {} expectations, {} failed",
        summary.steps, summary.events, summary.expectations, summary.failed_expectations,
    );
    if violations > 0 {
        let _ = write!(text, ", {violations} invariant violated");
    }
    let _ = writeln!(text, "; outputs in {}", dir.display());
    if violations > 0 {
        let first = &report.invariant_violations[0];
        let _ = writeln!(
            text,
            "{}: the runtime broke invariant `{}` at step {} ({}:{}); see `invariant_violations` in {}",
            style.red("failed because"),
            first.invariant,
            first.step,
            report.source,
            first.line,
            dir.join("report.json").display()
        );
    } else if let Some((step, expectation)) = report.failures().next() {
        let _ = writeln!(
            text,
            "{}: {} did not hold, the first `{}` at {}:{}",
            style.red("failed because"),
            crate::style::count(summary.failed_expectations, "expectation"),
            expectation.path,
            report.source,
            step.line
        );
    }
}

/// Prints a run's size and speed (wall time: informative, never compared).
pub fn print_stats(stats: &RunStats) {
    let per_second = |n: usize| {
        if stats.seconds > 0.0 {
            n as f64 / stats.seconds
        } else {
            0.0
        }
    };
    outln!(
        "stats: {} steps, {} events, {} episodes in {:.3}s ({:.0} events/s, {:.0} episodes/s)",
        stats.steps,
        stats.events,
        stats.episodes,
        stats.seconds,
        per_second(stats.events),
        per_second(stats.episodes)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_invariant_is_shown_at_its_step_counted_and_explained() {
        let output = crate::suite::tests::twice_with_a_bug();
        assert!(!output.passed());
        let text = render_human(&output.report, Path::new("out/twice"), Style::plain());
        let lines: Vec<&str> = text.lines().collect();
        let step2 = lines
            .iter()
            .position(|l| l.starts_with("  step   2"))
            .unwrap();
        assert!(
            lines[step2 + 1].starts_with("            VIOLATED twice.yaml:13: invariant `"),
            "{text}"
        );
        let summary = lines[lines.len() - 2];
        assert!(
            summary.starts_with("failed: 2 steps,")
                && summary.contains(", 1 failed, 1 invariant violated; outputs in out/twice"),
            "{text}"
        );
        assert!(
            lines[lines.len() - 1].starts_with("failed because: the runtime broke invariant `"),
            "{text}"
        );
    }

    #[test]
    fn a_step_with_many_receipts_shows_how_many_of_each() {
        let few: Vec<String> = ["completed", "queued"].map(String::from).to_vec();
        assert_eq!(receipts_line(&few), "completed, queued");
        let mut many = vec!["completed".to_string(); 99_998];
        many.insert(3, "budget_exhausted".to_string());
        many.push("budget_exhausted".to_string());
        assert_eq!(
            receipts_line(&many),
            "100000: completed 99998, budget_exhausted 2"
        );
    }
}
