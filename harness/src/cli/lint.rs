//! `rehearse lint FILE..`: validate scenario files without running them.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::exit::Exit;
use crate::scenario::parse_scenario;

/// Validate scenario files without running them.
///
/// Prints `ok: FILE` for each valid file and `FILE:LINE:COLUMN: message` on
/// stderr for each invalid one; exits with 2 when any file is invalid.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Scenario files to validate.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Lints every file, writing to the process's stdout and stderr.
pub fn run(args: &LintArgs) -> Exit {
    lint_files(
        &args.files,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// Lints `files` in order: `ok: path` lines to `out`, errors to `err`.
pub fn lint_files(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let mut exit = Exit::Pass;
    for file in files {
        // A closed pipe must not turn lint results into a panic, so write
        // failures are ignored; the exit code still tells the outcome.
        match parse_scenario(file) {
            Ok(_) => {
                let _ = writeln!(out, "ok: {}", file.display());
            }
            Err(error) => {
                let _ = writeln!(err, "{error}");
                exit = exit.worst(Exit::Usage);
            }
        }
    }
    exit
}
