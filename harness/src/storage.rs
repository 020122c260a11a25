//! Where a run keeps its event log: in memory, or in a durable log in a
//! private scratch directory for scenarios (and captures) that restart.
//!
//! A scratch directory is made new by `tempfile` (mode 0700, a random name
//! that no scenario or bundle contributes to) and removed when its
//! [`Scratch`] is dropped, on every exit path. A failure of the durable log
//! (a full disk, an I/O error) is an environment failure, not behaviour: it
//! is recorded here and fails the run, so it never becomes a golden, and its
//! message names neither the process id nor the scratch path.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rehearse_runtime::capture::CaptureBundle;
use rehearse_runtime::file_log::{FileLog, FileLogOptions};
use rehearse_runtime::log::{
    EventLog, LogError, LogEvent, Reopened, StoredEvent, Topic, WindowLog,
};
use rehearse_runtime::replay::{
    replay, replay_stream, CaptureStream, ReplayError, ReplayOptions, ReplaySummary,
};

/// The prefix of every scratch directory: `rehearse-scratch-PID-RANDOM`.
const SCRATCH_PREFIX: &str = "rehearse-scratch-";

/// Why a bundle did not replay: its own fault, or the machine's.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}\nhint: {hint}", hint = .0.hint())]
    Replay(ReplayError),
    #[error("environment error: {0}")]
    Environment(EnvironmentError),
}

/// A failure of the machine under a run or a replay (a full disk, an I/O
/// error): never behaviour, never a golden. No message names the scratch
/// directory or the process id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvironmentError {
    #[error("failed to create a scratch directory: {0}")]
    Scratch(std::io::ErrorKind),
    /// The durable log's own error, its scratch path replaced by
    /// `<scratch>`.
    #[error("{0}")]
    Log(String),
    /// An output file could not be written; the I/O error's text.
    #[error("failed to write an output file: {0}")]
    Output(String),
}

/// A private scratch directory holding one durable log, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
    failure: Arc<Mutex<Option<EnvironmentError>>>,
}

impl Scratch {
    /// A new, empty, private directory under the system's temporary
    /// directory; first removes the scratch directories of killed runs.
    pub fn new() -> Result<Self, EnvironmentError> {
        let temp = std::env::temp_dir();
        clean_dead_scratch(&temp);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .tempdir_in(&temp)
            .map_err(|error| EnvironmentError::Scratch(error.kind()))?;
        Ok(Self {
            dir,
            failure: Arc::new(Mutex::new(None)),
        })
    }

    /// Opens the durable log in the directory, fsyncing every batch; its
    /// failures are recorded for [`Scratch::failure`].
    pub fn open_log(&self) -> Result<Box<dyn EventLog>, EnvironmentError> {
        let (log, _recovery) = FileLog::open(self.dir.path(), FileLogOptions::default())
            .map_err(|e| EnvironmentError::Log(scrub(&e.to_string(), self.dir.path())))?;
        Ok(Box::new(Watched {
            inner: Box::new(log),
            failure: Arc::clone(&self.failure),
            dir: self.dir.path().display().to_string(),
        }))
    }

    /// The first failure of the durable log, if any, without paths.
    pub fn failure(&self) -> Option<EnvironmentError> {
        self.failure.lock().map_or(None, |failure| failure.clone())
    }
}

/// `message` with the scratch path taken out.
fn scrub(message: &str, dir: &Path) -> String {
    message.replace(&dir.display().to_string(), "<scratch>")
}

/// Removes the scratch directories of processes that are gone (killed
/// runs), if they belong to this user. Best effort.
fn clean_dead_scratch(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(SCRATCH_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(metadata) = entry.path().symlink_metadata() else {
            continue;
        };
        if metadata.is_dir() && owned_by_me(&metadata) && !crate::atomic::alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(unix)]
fn owned_by_me(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    metadata.uid() == rustix::process::geteuid().as_raw()
}

#[cfg(not(unix))]
fn owned_by_me(_metadata: &std::fs::Metadata) -> bool {
    false
}

/// A durable log that remembers its first failure.
struct Watched {
    inner: Box<dyn EventLog>,
    failure: Arc<Mutex<Option<EnvironmentError>>>,
    dir: String,
}

impl fmt::Debug for Watched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Watched {
    fn note<T>(&self, result: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(error) = &result {
            if let Ok(mut failure) = self.failure.lock() {
                failure.get_or_insert_with(|| {
                    EnvironmentError::Log(error.to_string().replace(&self.dir, "<scratch>"))
                });
            }
        }
        result
    }
}

impl EventLog for Watched {
    fn append_batch(
        &mut self,
        batch: Vec<(Topic, LogEvent)>,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let result = self.inner.append_batch(batch);
        self.note(result)
    }

    fn append(&mut self, batch: Vec<(Topic, LogEvent)>) -> Result<(), LogError> {
        let result = self.inner.append(batch);
        self.note(result)
    }

    fn read_range(&self, topic: &Topic, after: u64, limit: usize) -> Vec<StoredEvent> {
        self.inner.read_range(topic, after, limit)
    }

    fn all(&self) -> &[StoredEvent] {
        self.inner.all()
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn latest_id(&self, topic: &Topic) -> u64 {
        self.inner.latest_id(topic)
    }

    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }

    fn reopen(&mut self, torn_tail_bytes: Option<u64>) -> Result<Reopened, LogError> {
        let result = self.inner.reopen(torn_tail_bytes);
        self.note(result)
    }
}

/// Replays `bundle` on the backend it needs, cleaning up after itself.
pub fn replay_bundle(
    bundle: &CaptureBundle,
    options: ReplayOptions,
) -> Result<ReplaySummary, BundleError> {
    if !bundle.restarts() {
        return replay(bundle, options, Box::new(WindowLog::new())).map_err(BundleError::Replay);
    }
    let scratch = Scratch::new().map_err(BundleError::Environment)?;
    let log = scratch.open_log().map_err(BundleError::Environment)?;
    let result = replay(bundle, options, log);
    if let Some(failure) = scratch.failure() {
        return Err(BundleError::Environment(failure));
    }
    result.map_err(BundleError::Replay)
}

/// Replays a version 3 capture as it is read, on the backend its header
/// names, cleaning up after itself.
pub fn replay_capture<R: std::io::BufRead + Send>(
    stream: CaptureStream<R>,
    options: ReplayOptions,
) -> Result<ReplaySummary, BundleError> {
    if !stream.header().durable_log {
        return replay_stream(stream, options, Box::new(WindowLog::new()))
            .map_err(BundleError::Replay);
    }
    let scratch = Scratch::new().map_err(BundleError::Environment)?;
    let log = scratch.open_log().map_err(BundleError::Environment)?;
    let result = replay_stream(stream, options, log);
    if let Some(failure) = scratch.failure() {
        return Err(BundleError::Environment(failure));
    }
    result.map_err(BundleError::Replay)
}
