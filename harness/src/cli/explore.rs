//! `rehearse explore`: random scenarios against the runtime's invariants;
//! a failure is shrunk and saved as a scenario file that reproduces it.

use std::path::PathBuf;

use clap::Args;

use crate::cli::CliError;
use crate::exit::Exit;
use crate::explore::{explore, ExploreConfig};
use crate::progress::{Display, Progress};
use crate::style::Style;
use crate::{out, outln};

/// Generate random scenarios and check every lease, budget, work and
/// determinism invariant after every step. A failure is shrunk to a minimal
/// scenario, printed, and saved with `--save`; `rehearse run` on the saved
/// file reproduces it.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// How many random scenarios to check.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub cases: usize,
    /// The seed every scenario is drawn from; the same seed explores the
    /// same scenarios.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// The most steps one scenario has.
    #[arg(long, value_name = "N", default_value_t = 120)]
    pub max_steps: usize,
    /// Where to write a counterexample as `<name>.yaml`.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
}

/// Why `explore` could not start or save its counterexample.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("--cases and --max-steps must be at least 1")]
    ZeroCases,
    #[error("failed to save the counterexample to `{}`: {source}", .path.display())]
    Save {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn run(args: &ExploreArgs) -> Result<Exit, CliError> {
    if args.cases == 0 || args.max_steps == 0 {
        return Err(ExploreError::ZeroCases.into());
    }
    let config = ExploreConfig {
        cases: args.cases,
        seed: args.seed,
        max_steps: args.max_steps,
        ..ExploreConfig::default()
    };
    // The same counter as `check`, named `explore`: on a terminal, after a
    // second, on stderr.
    let progress = Progress::start("explore", args.cases, Display::detect());
    let result = explore(config, |_| progress.inc());
    progress.finish();
    match result {
        Ok(summary) => {
            outln!(
                "{}: {} cases, {} steps, {} events, seed {}: every invariant held",
                Style::stdout().green("explore"),
                summary.cases,
                summary.steps,
                summary.events,
                summary.seed
            );
            Ok(Exit::Pass)
        }
        Err(counterexample) => {
            let style = Style::stdout();
            outln!(
                "{}: {counterexample}",
                style.red("explore found a counterexample")
            );
            let yaml = counterexample.to_scenario_yaml();
            match &args.save {
                Some(dir) => {
                    let path = dir.join(format!("{}.yaml", counterexample.scenario_name()));
                    crate::atomic::write(&path, yaml.as_bytes()).map_err(|source| {
                        ExploreError::Save {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    outln!(
                        "saved {}; reproduce it with `rehearse run {}`",
                        path.display(),
                        path.display()
                    );
                }
                None => out!("{yaml}"),
            }
            Ok(Exit::Mismatch)
        }
    }
}
