//! `rehearse explain`: why one step of a scenario got its receipt.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use crate::cli::CliError;
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

/// Why `explain` found no step to explain.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{file}: no {asked}: the scenario has {count} steps")]
    NoStep {
        file: String,
        asked: Asked,
        count: usize,
    },
    #[error("{file}: step {step} was not explained")]
    NotExplained { file: String, step: usize },
}

/// The step a command line asked for, as `--step` or `--line` gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    Step(usize),
    Line(usize),
}

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Step(step) => write!(f, "step {step}"),
            Self::Line(line) => write!(f, "line {line}"),
        }
    }
}

pub fn run(args: &ExplainArgs) -> Result<Exit, CliError> {
    let source = args.file.to_string_lossy().replace('\\', "/");
    let scenario = scenario::parse_scenario(&args.file)?;
    let count = scenario.steps.len();
    let step = match (args.step, args.line) {
        (Some(step), _) => Some(step).filter(|&s| (1..=count).contains(&s)),
        (None, Some(line)) => explain::step_at_line(&scenario, line),
        (None, None) => None,
    };
    let Some(step) = step else {
        let asked = args
            .step
            .map_or_else(|| Asked::Line(args.line.unwrap_or_default()), Asked::Step);
        return Err(ExplainError::NoStep {
            file: source,
            asked,
            count,
        }
        .into());
    };
    let wanted = Wanted::Steps(BTreeSet::from([step]));
    let (output, explanations) = explain::explain(&scenario, &source, wanted)?;
    let Some(explanation) = explanations.first() else {
        return Err(ExplainError::NotExplained { file: source, step }.into());
    };
    match args.format {
        Format::Json => out!("{}", crate::driver::pretty(explanation)),
        Format::Human => {
            let lines: Vec<&str> = output.events_jsonl.lines().collect();
            out!("{}", explain::render(explanation));
            out!("{}", explain::render_events(explanation.events, &lines));
        }
    }
    Ok(Exit::Pass)
}
