//! `rehearse explain`: why one step of a scenario got its receipt.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use crate::exit::Exit;
use crate::explain::{self, Wanted};
use crate::out;
use crate::scenario;

/// Explain one step: the admission rules in order with their inputs and
/// outcomes, the supervisor's constraints and arithmetic, the retry walk,
/// and the events the step appended.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The scenario file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The step to explain, by its 1-based position in `steps`.
    #[arg(
        long,
        value_name = "N",
        required_unless_present = "line",
        conflicts_with = "line"
    )]
    pub step: Option<usize>,
    /// The step to explain, by a line of the scenario file: the step whose
    /// entry starts at or before it.
    #[arg(long, value_name = "LINE")]
    pub line: Option<usize>,
    /// How to print the explanation.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Output formats of `explain`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: &ExplainArgs) -> Exit {
    let source = args.file.to_string_lossy().replace('\\', "/");
    let scenario = match scenario::parse_scenario(&args.file) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Usage;
        }
    };
    let count = scenario.steps.len();
    let step = match (args.step, args.line) {
        (Some(step), _) => Some(step).filter(|&s| (1..=count).contains(&s)),
        (None, Some(line)) => explain::step_at_line(&scenario, line),
        (None, None) => None,
    };
    let Some(step) = step else {
        let asked = args.step.map_or_else(
            || format!("line {}", args.line.unwrap_or_default()),
            |s| format!("step {s}"),
        );
        eprintln!("{source}: no {asked}: the scenario has {count} steps");
        return Exit::Usage;
    };
    let wanted = Wanted::Steps(BTreeSet::from([step]));
    let (output, explanations) = match explain::explain(&scenario, &source, wanted) {
        Ok(result) => result,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Usage;
        }
    };
    let Some(explanation) = explanations.first() else {
        eprintln!("{source}: step {step} was not explained");
        return Exit::Usage;
    };
    match args.format {
        Format::Json => out!("{}", crate::driver::pretty(explanation)),
        Format::Human => {
            let lines: Vec<&str> = output.events_jsonl.lines().collect();
            out!("{}", explain::render(explanation));
            out!("{}", explain::render_events(explanation.events, &lines));
        }
    }
    Exit::Pass
}
