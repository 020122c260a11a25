//! `rehearse new NAME`: write a commented starter scenario that passes `lint`.

use std::path::PathBuf;

use clap::Args;

use crate::cli::CliError;
use crate::exit::Exit;
use crate::outln;
use crate::starter::{default_schema_ref, write_starter};

/// Write a commented starter scenario, NAME.yaml, that passes `lint`.
///
/// Refuses to overwrite an existing file. The file's first line points
/// yaml-language-server at the format's JSON Schema by a path relative to
/// the new file, so write it where it will live (`--dir scenarios/tour`):
/// a file moved to another depth needs that line's `../` adjusted.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The scenario's name: lowercase letters, digits, `_` and `-`.
    pub name: String,
    /// The directory to write NAME.yaml into; created when missing.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The schema URL or path for the editor line (default: the project's
    /// `docs/scenario.schema.json` when the directory is inside a checkout
    /// that has one, else `scenario.schema.json` beside the file, which
    /// `rehearse schema > scenario.schema.json` writes).
    #[arg(long, value_name = "URL")]
    pub schema: Option<String>,
}

/// Writes the starter and reports the path written.
pub fn run(args: &NewArgs) -> Result<Exit, CliError> {
    let schema = args
        .schema
        .clone()
        .unwrap_or_else(|| default_schema_ref(&args.dir));
    let path = write_starter(&args.name, &args.dir, &schema)?;
    outln!("wrote {}", path.display());
    Ok(Exit::Pass)
}
