//! `rehearse bless`: accept the current outputs as the goldens.

use std::path::PathBuf;

use clap::Args;

use crate::cli::CliError;
use crate::exit::Exit;
use crate::golden;
use crate::suite::{self, SuiteConfig};

/// Run scenarios and write their outputs as the reviewed goldens
/// (atomically). Refused when `CI` is set.
#[derive(Args, Debug)]
pub struct BlessArgs {
    /// Scenario files or directories (default: `scenarios/`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The scenarios directory that golden paths are named after (default:
    /// `scenarios` under the project root).
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Where the goldens live (default: `snapshots` under the project root).
    #[arg(long, value_name = "DIR")]
    pub snapshots: Option<PathBuf>,
}

/// Why `bless` refused, or could not bless one scenario.
#[derive(Debug, thiserror::Error)]
pub enum BlessError {
    #[error("refusing to bless while `CI` is set: goldens are reviewed and written by people, never by CI")]
    InCi,
    #[error("failed to write `{}`: {source}", .path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub fn run(args: &BlessArgs) -> Result<Exit, CliError> {
    if golden::in_ci() {
        return Err(BlessError::InCi.into());
    }
    // Paths are named from the project root, as `check` names them.
    let library = crate::cli::Library::open(
        &args.paths,
        args.scenarios.as_deref(),
        args.snapshots.as_deref(),
    )?;
    let config = library.suite(crate::cli::default_jobs(), None);
    let files = suite::selected(&config)?;
    let outcomes = suite::parallel_map(&files, config.jobs, |path| bless_one(&config, path));
    let mut code = Exit::Pass;
    let (mut written, mut unchanged) = (0usize, 0usize);
    let mut errors = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(Blessed {
                name,
                changed,
                failed_expectations,
            }) => {
                if changed {
                    written += 1;
                    crate::outln!("blessed {name}");
                } else {
                    unchanged += 1;
                }
                if failed_expectations > 0 {
                    crate::outln!("  warning: {name} has {failed_expectations} failing expectations; `check` will fail until they hold");
                    code = Exit::Mismatch;
                }
            }
            Err(error) => errors.push(error),
        }
    }
    crate::outln!("bless: {written} written, {unchanged} unchanged");
    CliError::from_several(errors)?;
    Ok(code)
}

struct Blessed {
    name: String,
    changed: bool,
    failed_expectations: usize,
}

fn bless_one(config: &SuiteConfig, path: &std::path::Path) -> Result<Blessed, CliError> {
    let name = suite::scenario_name(config, path);
    let root = &config.snapshots_root;
    let failed = |target: &std::path::Path, source: std::io::Error| BlessError::Write {
        path: target.to_path_buf(),
        source,
    };
    if suite::is_invalid_case(config, path) {
        let golden_path = suite::lint_golden(config, path);
        let text = suite::lint_text(path);
        // Blessing an unchanged golden still clears a stale pending file.
        let changed = golden::compare_in(root, &golden_path, &text)
            .map_or(true, |c| c != golden::Comparison::Same);
        golden::bless_in(root, &golden_path, &text).map_err(|e| failed(&golden_path, e))?;
        return Ok(Blessed {
            name,
            changed,
            failed_expectations: 0,
        });
    }
    let scenario = crate::scenario::parse_scenario(path)?;
    let source = path.to_string_lossy().replace('\\', "/");
    let output = crate::driver::run(&scenario, &source)?;
    let dir = golden::golden_dir(root, &config.scenarios_root, path);
    let changed = golden::bless_set(root, &dir, &output.files()).map_err(|e| failed(&dir, e))?;
    Ok(Blessed {
        name,
        changed,
        failed_expectations: output.report.summary.failed_expectations,
    })
}
