//! Where a run keeps its event log: in memory, or in a durable log in a
//! scratch directory for scenarios (and captures) that restart.

use std::path::{Path, PathBuf};

use rehearse_runtime::capture::CaptureBundle;
use rehearse_runtime::file_log::{FileLog, FileLogOptions};
use rehearse_runtime::log::{EventLog, MemoryLog};
use rehearse_runtime::replay::{replay, ReplayOptions, ReplaySummary};

/// Opens (creating the directory) a durable log in `dir`, fsyncing every
/// batch.
pub fn open_file_log(dir: &Path) -> Result<Box<dyn EventLog>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("failed to create `{}`: {e}", dir.display()))?;
    let (log, _recovery) =
        FileLog::open(dir, FileLogOptions::default()).map_err(|e| e.to_string())?;
    Ok(Box::new(log))
}

/// A fresh directory for one run's durable log. Its name never reaches an
/// output, so the process id in it does not break determinism.
pub fn scratch_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("rehearse-{}-{n}-{name}", std::process::id()))
}

/// Whether a capture contains a restart, and so needs the durable backend.
pub fn bundle_restarts(bundle: &CaptureBundle) -> bool {
    bundle
        .events
        .iter()
        .any(|event| event.payload.get("restart").is_some())
}

/// Replays `bundle` on the backend it needs, cleaning up after itself.
pub fn replay_bundle(
    bundle: &CaptureBundle,
    options: ReplayOptions,
) -> Result<ReplaySummary, String> {
    if !bundle_restarts(bundle) {
        return replay(bundle, options, Box::new(MemoryLog::new()))
            .map_err(|e| format!("{e}\nhint: {}", e.hint()));
    }
    let dir = scratch_dir(&format!("replay-{}", bundle.scenario));
    let result = open_file_log(&dir).and_then(|log| {
        replay(bundle, options, log).map_err(|e| format!("{e}\nhint: {}", e.hint()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
