//! `rehearse schema`: print the JSON Schema of the scenario format.

use std::io::Write;

use clap::Args;

use crate::exit::Exit;
use crate::scenario::json_schema_text;

/// Print the JSON Schema of the scenario format (draft-07), for editors.
///
/// Save it and point a scenario's `# yaml-language-server: $schema=PATH`
/// line at it for completion and validation while writing scenarios.
#[derive(Debug, Args)]
pub struct SchemaArgs {}

/// Prints the schema to stdout.
pub fn run(_args: &SchemaArgs) -> Exit {
    let mut out = std::io::stdout().lock();
    match out.write_all(json_schema_text().as_bytes()) {
        Ok(()) => Exit::Pass,
        Err(error) => {
            eprintln!("error: failed to write the schema: {error}");
            Exit::Usage
        }
    }
}
