//! `rehearse replay`: verify a capture bundle on its own.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use clap::Args;
#[cfg(doc)]
use rehearse_runtime::replay::MAX_BUNDLE_BYTES;
use rehearse_runtime::replay::{open_capture, OpenedCapture, ReplayError, ReplayOptions};

use crate::cli::CliError;
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

/// Why a capture bundle was not replayed, or did not reproduce.
#[derive(Debug, thiserror::Error)]
pub enum ReplayFailure {
    /// The file could not be opened as a bundle.
    Open { path: String, reason: OpenError },
    /// The bundle is malformed or does not reproduce (see
    /// [`ReplayError::is_input_error`]).
    Replay { path: String, error: ReplayError },
    /// The machine failed the replay (its scratch log), not the bundle.
    Environment { path: String, error: BundleError },
}

/// Why a bundle's file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is {0}, expected a regular file")]
    NotAFile(&'static str),
}

impl ReplayFailure {
    /// 1 for a bundle that does not reproduce, 2 for everything else.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Replay { error, .. } if !error.is_input_error() => Exit::Mismatch,
            _ => Exit::Usage,
        }
    }

    /// The message, its `replay failed` in red when `style` colours.
    pub fn render(&self, style: Style) -> String {
        let failed = || style.red("replay failed");
        match self {
            Self::Open { path, reason } => {
                format!("failed to read capture bundle at `{path}`: {reason}")
            }
            Self::Replay { path, error } => {
                format!("{}: `{path}`: {error}\nhint: {}", failed(), error.hint())
            }
            Self::Environment { path, error } => format!("{}: `{path}`: {error}", failed()),
        }
    }
}

impl std::fmt::Display for ReplayFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(Style::plain()))
    }
}

pub fn run(args: &ReplayArgs) -> Result<Exit, CliError> {
    let path = args.bundle.display().to_string();
    let file = open_bundle(&args.bundle).map_err(|reason| ReplayFailure::Open {
        path: path.clone(),
        reason,
    })?;
    let options = ReplayOptions {
        strict: args.strict,
    };
    let replayed = match open_capture(BufReader::with_capacity(1 << 16, file)) {
        Ok(OpenedCapture::Stream(stream)) => crate::storage::replay_capture(*stream, options),
        Ok(OpenedCapture::Legacy(bundle)) => crate::storage::replay_bundle(&bundle, options),
        Err(error) => Err(BundleError::Replay(error)),
    };
    let summary = replayed.map_err(|error| match error {
        BundleError::Replay(error) => ReplayFailure::Replay {
            path: path.clone(),
            error,
        },
        error @ BundleError::Environment(_) => ReplayFailure::Environment {
            path: path.clone(),
            error,
        },
    })?;
    crate::outln!(
        "{}: `{path}` reproduces: {} events, {} decisions, {} effects",
        Style::stdout().green("replayed"),
        summary.events,
        summary.decisions,
        summary.effects
    );
    Ok(Exit::Pass)
}

/// Opens a bundle: a regular file (a FIFO or device is refused, never
/// opened). Its size is bounded as it is read: a version 2 bundle at
/// [`MAX_BUNDLE_BYTES`], a version 3 capture line by line.
fn open_bundle(path: &Path) -> Result<File, OpenError> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(OpenError::NotAFile(crate::atomic::describe(
            &metadata.file_type(),
        )));
    }
    Ok(File::open(path)?)
}
