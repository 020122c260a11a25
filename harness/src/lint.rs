//! Linting scenario files: parse and validate each without running it.

use std::io::Write;
use std::path::PathBuf;

use crate::exit::Exit;
use crate::scenario::parse_scenario;

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
