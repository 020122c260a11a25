//! `rehearse lint PATH..`: validate scenario files without running them.

use std::path::PathBuf;

use clap::Args;

use crate::cli::CliError;
use crate::exit::Exit;
use crate::lint::lint_files;
use crate::suite;

/// Validate scenario files without running them.
///
/// Prints `ok: FILE` for each valid file and `FILE:LINE:COLUMN: message` on
/// stderr for each invalid one; exits with 2 when any file is invalid. A
/// directory stands for every `*.yaml` under it, as in `check`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Scenario files or directories to validate.
    #[arg(required = true, value_name = "PATH")]
    pub files: Vec<PathBuf>,
}

/// Lints every file, writing to the process's stdout and stderr.
pub fn run(args: &LintArgs) -> Result<Exit, CliError> {
    let files = suite::discover(&args.files)?;
    if files.is_empty() {
        return Err(suite::SuiteError::NothingSelected(
            "no scenario files (`*.yaml`) under the given paths".to_string(),
        )
        .into());
    }
    Ok(lint_files(
        &files,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ))
}
