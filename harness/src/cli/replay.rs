//! `rehearse replay`: verify a capture bundle on its own.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use rehearse_runtime::replay::{parse_bundle, ReplayError, ReplayOptions, MAX_BUNDLE_BYTES};

use crate::exit::Exit;
use crate::storage::BundleError;
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
    let text = match read_bundle(&args.bundle) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("failed to read capture bundle at `{path}`: {message}");
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
    drop(text);
    match crate::storage::replay_bundle(
        &bundle,
        ReplayOptions {
            strict: args.strict,
        },
    ) {
        Ok(summary) => {
            crate::outln!(
                "{}: `{path}` reproduces: {} events, {} decisions, {} effects",
                Style::stdout().green("replayed"),
                summary.events,
                summary.decisions,
                summary.effects
            );
            Exit::Pass
        }
        Err(BundleError::Replay(error)) => {
            report_error(&path.to_string(), &error);
            if error.is_input_error() {
                Exit::Usage
            } else {
                Exit::Mismatch
            }
        }
        Err(error @ BundleError::Environment(_)) => {
            eprintln!(
                "{}: `{path}`: {error}",
                Style::stderr().red("replay failed")
            );
            Exit::Usage
        }
    }
}

/// Reads a bundle: a regular file (a FIFO or device is refused, never
/// opened) of at most [`MAX_BUNDLE_BYTES`], in UTF-8.
fn read_bundle(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err(format!(
            "it is {}, expected a regular file",
            crate::atomic::describe(&metadata.file_type())
        ));
    }
    let too_large =
        |len: u64| format!("it is {len} bytes, expected at most {MAX_BUNDLE_BYTES} (256 MiB)");
    if metadata.len() > MAX_BUNDLE_BYTES {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_BUNDLE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

fn report_error(path: &str, error: &ReplayError) {
    eprintln!(
        "{}: `{path}`: {error}\nhint: {}",
        Style::stderr().red("replay failed"),
        error.hint()
    );
}
