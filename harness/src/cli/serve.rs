//! `rehearse serve`: the reference runtime behind the certification
//! protocol, on standard input and output.

use clap::Args;

use crate::cli::CliError;
use crate::exit::Exit;

/// Serve the reference runtime over the certification protocol.
///
/// Reads `rehearse-protocol/1` requests (JSON Lines) on standard input and
/// writes one answer line per request on standard output, until `end` or
/// the end of the input (docs/PROTOCOL.md). `rehearse certify --impl
/// 'rehearse serve'` certifies the reference against itself.
#[derive(Debug, Args)]
pub struct ServeArgs {}

/// Serves until `end` or the end of standard input.
pub fn run(_args: &ServeArgs) -> Result<Exit, CliError> {
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    crate::serve::serve(&mut input, &mut output)?;
    Ok(Exit::Pass)
}
