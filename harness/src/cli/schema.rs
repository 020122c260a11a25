//! `rehearse schema`: print the JSON Schema of the scenario format, or with
//! `--events` of the runtime's event vocabulary, or with `--protocol` of the
//! certification protocol's messages.

use clap::Args;

use crate::cli::CliError;
use crate::exit::Exit;
use crate::scenario::json_schema_text;

/// Print the JSON Schema of the scenario format (draft-07), for editors.
///
/// Save it and point a scenario's `# yaml-language-server: $schema=PATH`
/// line at it for completion and validation while writing scenarios.
///
/// With `--events`, print instead the JSON Schema of every event the runtime
/// writes (a line of `events.jsonl`), committed as `docs/events.schema.json`
/// and described kind by kind in `docs/EVENTS.md`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the schema of the event vocabulary instead.
    #[arg(long, conflicts_with = "protocol")]
    pub events: bool,
    /// Print the schema of the certification protocol's messages instead
    /// (docs/PROTOCOL.md, committed as `docs/protocol.schema.json`).
    #[arg(long)]
    pub protocol: bool,
}

/// Prints the schema to stdout.
pub fn run(args: &SchemaArgs) -> Result<Exit, CliError> {
    let text = if args.events {
        rehearse_runtime::event::vocabulary_schema_text()
    } else if args.protocol {
        crate::protocol::protocol_schema_text()
    } else {
        json_schema_text()
    };
    // A closed standard output is a normal end (see `out.rs`).
    crate::out!("{text}");
    Ok(Exit::Pass)
}
