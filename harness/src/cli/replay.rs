//! `rehearse replay`: verify a capture bundle on its own.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use clap::Args;
#[cfg(doc)]
use rehearse_runtime::replay::MAX_BUNDLE_BYTES;
use rehearse_runtime::replay::{open_capture, OpenedCapture, ReplayError, ReplayOptions};

use crate::exit::Exit;
use crate::storage::BundleError;
use crate::style::Style;

/// Replay a capture bundle on a fresh runtime and compare it decision by
/// decision and effect by effect; needs no scenario file.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The capture bundle (`capture.jsonl`, or a version 2 `capture.json`).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Also refuse duplicate event ids and a bundle captured by another
    /// runtime version.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: &ReplayArgs) -> Exit {
    let path = args.bundle.display();
    let file = match open_bundle(&args.bundle) {
        Ok(file) => file,
        Err(message) => {
            eprintln!("failed to read capture bundle at `{path}`: {message}");
            return Exit::Usage;
        }
    };
    let options = ReplayOptions {
        strict: args.strict,
    };
    let replayed = match open_capture(BufReader::with_capacity(1 << 16, file)) {
        Ok(OpenedCapture::Stream(stream)) => crate::storage::replay_capture(*stream, options),
        Ok(OpenedCapture::Legacy(bundle)) => crate::storage::replay_bundle(&bundle, options),
        Err(error) => Err(BundleError::Replay(error)),
    };
    match replayed {
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

/// Opens a bundle: a regular file (a FIFO or device is refused, never
/// opened). Its size is bounded as it is read: a version 2 bundle at
/// [`MAX_BUNDLE_BYTES`], a version 3 capture line by line.
fn open_bundle(path: &Path) -> Result<File, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err(format!(
            "it is {}, expected a regular file",
            crate::atomic::describe(&metadata.file_type())
        ));
    }
    File::open(path).map_err(|e| e.to_string())
}

fn report_error(path: &str, error: &ReplayError) {
    eprintln!(
        "{}: `{path}`: {error}\nhint: {}",
        Style::stderr().red("replay failed"),
        error.hint()
    );
}
