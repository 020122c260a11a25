//! `rehearse replay`: verify a capture bundle on its own.

use std::path::PathBuf;

use clap::Args;
use rehearse_runtime::replay::{parse_bundle, ReplayError, ReplayOptions};

use crate::exit::Exit;
use crate::style::Style;

/// Replay a capture bundle on a fresh runtime and compare it decision by
/// decision and effect by effect; needs no scenario file.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The capture bundle (`capture.json`).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Also refuse duplicate event ids and a bundle captured by another
    /// runtime version.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: &ReplayArgs) -> Exit {
    let path = args.bundle.display();
    let text = match std::fs::read(&args.bundle) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                eprintln!("failed to read capture bundle at `{path}`: not UTF-8 text");
                return Exit::Usage;
            }
        },
        Err(error) => {
            eprintln!("failed to read capture bundle at `{path}`: {error}");
            return Exit::Usage;
        }
    };
    let bundle = match parse_bundle(&text) {
        Ok(bundle) => bundle,
        Err(error) => {
            report_error(&path.to_string(), &error);
            return Exit::Usage;
        }
    };
    match crate::storage::replay_bundle(
        &bundle,
        ReplayOptions {
            strict: args.strict,
        },
    ) {
        Ok(summary) => {
            println!(
                "{}: `{path}` reproduces: {} events, {} decisions, {} effects",
                Style::stdout().green("replayed"),
                summary.events,
                summary.decisions,
                summary.effects
            );
            Exit::Pass
        }
        Err(message) => {
            eprintln!(
                "{}: `{path}`: {message}",
                Style::stderr().red("replay failed")
            );
            Exit::Mismatch
        }
    }
}

fn report_error(path: &str, error: &ReplayError) {
    eprintln!(
        "{}: `{path}`: {error}\nhint: {}",
        Style::stderr().red("replay failed"),
        error.hint()
    );
}
