//! `rehearse run`: run scenarios, print their reports, write their outputs.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::driver::{self, RunOutput};
use crate::exit::Exit;
use crate::scenario;
use crate::style::Style;

/// Run scenario files, print each report and write its outputs
/// (`events.jsonl`, `report.json`, `capture.json`, `runs/`).
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files to run.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Where to write outputs; each scenario gets `DIR/<name>/`.
    #[arg(long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// How to print the report.
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

pub fn run(args: &RunArgs) -> Exit {
    let style = Style::stdout();
    let mut code = Exit::Pass;
    for file in &args.files {
        let source = file.to_string_lossy().replace('\\', "/");
        let scenario = match scenario::parse_scenario(file) {
            Ok(scenario) => scenario,
            Err(error) => {
                eprintln!("{error}");
                code = Exit::Usage;
                continue;
            }
        };
        let output = match driver::run(&scenario, &source) {
            Ok(output) => output,
            Err(error) => {
                eprintln!("{error}");
                code = Exit::Usage;
                continue;
            }
        };
        let dir = args.out.join(&scenario.name);
        if let Err(error) = write_outputs(&dir, &output) {
            eprintln!("failed to write outputs to `{}`: {error}", dir.display());
            code = Exit::Usage;
            continue;
        }
        match args.format {
            Format::Json => print!("{}", output.report_json),
            Format::Human => {
                // Why each failed step got its result (see `explain`).
                let explained =
                    crate::explain::explain_failures(&scenario, &output.report, "              ");
                print_human(&output, &dir, style, &explained);
            }
        }
        if args.stats {
            print_stats(&output);
        }
        if let Some(html) = &args.html {
            match crate::html::write_run_page(html, &scenario, &source) {
                Ok(path) => eprintln!("timeline: {}", path.display()),
                Err(error) => {
                    eprintln!(
                        "failed to write the timeline page to `{}`: {error}",
                        html.display()
                    );
                    code = Exit::Usage;
                }
            }
        }
        if !output.passed() && code == Exit::Pass {
            code = Exit::Mismatch;
        }
    }
    code
}

/// How many threads write run records at once.
const RECORD_WRITERS: usize = 8;

/// Writes a run's outputs as one set: `dir` is replaced whole (see
/// `atomic::replace_dir`), with one run record file per persona run under
/// `runs/`. An existing `dir` holding anything else is refused.
pub fn write_outputs(dir: &Path, output: &RunOutput) -> std::io::Result<()> {
    let owned = |name: &str, is_dir: bool| {
        if is_dir {
            name == "runs"
        } else {
            output.files().iter().any(|(file, _)| *file == name)
        }
    };
    crate::atomic::replace_dir(dir, &owned, |stage| {
        for (name, contents) in output.files() {
            crate::atomic::write_new(&stage.join(name), contents.as_bytes())?;
        }
        let runs = stage.join("runs");
        // Each record is its own fsynced file; the writes wait on the disk,
        // not the CPU, so a few threads make a load scenario's thousands of
        // records quick.
        let saved = crate::suite::parallel_map(&output.runs, RECORD_WRITERS, |record| {
            record.save(&runs.join(record.file_name()))
        });
        saved
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map_err(std::io::Error::other)?;
        Ok(())
    })
}

fn print_human(
    output: &RunOutput,
    dir: &Path,
    style: Style,
    explained: &std::collections::BTreeMap<usize, String>,
) {
    let report = &output.report;
    println!(
        "{} {}",
        style.bold(&report.scenario),
        style.dim(&format!(
            "({}, seed {}, start {})",
            report.source, report.seed, report.start
        ))
    );
    for step in &report.steps {
        let receipt = step.receipt.as_deref().unwrap_or("");
        let painted = match receipt {
            "error" => style.red(receipt),
            "" => String::new(),
            _ => receipt.to_string(),
        };
        let decision = step
            .decision
            .as_ref()
            .map(|d| d.decision.as_str())
            .unwrap_or("");
        println!(
            "  step {:>3}  line {:>4}  {}  {:<18} {:<16} {}",
            step.step,
            step.line,
            step.at,
            step.kind,
            painted,
            style.dim(decision)
        );
        if !step.receipts.is_empty() {
            println!("            drained: {}", step.receipts.join(", "));
        }
        if let Some(error) = &step.error {
            println!("            {}", style.dim(&format!("error: {error}")));
        }
        for expectation in &step.expectations {
            if expectation.ok {
                println!(
                    "            {} {} = {}",
                    style.green("ok"),
                    expectation.path,
                    expectation.expected
                );
            } else {
                println!(
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
        if let Some(text) = explained.get(&step.step) {
            print!("{}", style.dim(text));
        }
    }
    for deferred in &report.deferred_at_end {
        println!(
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
        println!(
            "  final {name}: {state}, queued {}, spent today {}, lease {}",
            status.queued_events,
            status.budget.spent_today_usd,
            status
                .active_lease
                .as_ref()
                .map_or("none", |l| l.id.as_str())
        );
    }
    let summary = &report.summary;
    let verdict = if summary.failed_expectations == 0 {
        style.green("passed")
    } else {
        style.red("failed")
    };
    println!(
        "{verdict}: {} steps, {} events, {} expectations, {} failed; outputs in {}",
        summary.steps,
        summary.events,
        summary.expectations,
        summary.failed_expectations,
        dir.display()
    );
}

/// Prints a run's size and speed (wall time: informative, never compared).
pub fn print_stats(output: &RunOutput) {
    let stats = &output.stats;
    let per_second = |n: usize| {
        if stats.seconds > 0.0 {
            n as f64 / stats.seconds
        } else {
            0.0
        }
    };
    println!(
        "stats: {} steps, {} events, {} episodes in {:.3}s ({:.0} events/s, {:.0} episodes/s)",
        stats.steps,
        stats.events,
        stats.episodes,
        stats.seconds,
        per_second(stats.events),
        per_second(stats.episodes)
    );
}
