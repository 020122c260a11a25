//! What the integration tests share: the workspace root, the `rehearse`
//! binary, the files under a directory, and private libraries in temporary
//! directories. Each test binary declares `mod common;` and uses a part of
//! it, so the items another binary uses are dead code in this one.
#![allow(dead_code, reason = "each test binary uses a part of the helpers")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Work queued while paused runs on resume.
pub const PAUSE: &str = "\
version: 1
start: 2026-04-24T12:00:00Z
personas:
  merge_captain:
    entry_workflow: workflows/merge.harn#run
steps:
  - at: 0s
    pause: merge_captain
  - at: 1s
    trigger:
      persona: merge_captain
      provider: github
      kind: pull_request
      metadata: { repository: burin-labs/harn, number: \"462\" }
    expect: { receipt: queued }
  - at: 2s
    resume: merge_captain
    expect: { receipts: [completed] }
";

/// A scenario with a field the format does not have, on line 5: an error,
/// not a failure.
pub const UNKNOWN_FIELD: &str = "\
version: 1
start: 2026-04-24T12:00:00Z
personas: {}
steps: []
surprise: true
";

/// The workspace root: the real library's `scenarios/` and `snapshots/`.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate sits in the workspace")
        .to_path_buf()
}

/// The `rehearse` binary, about to run in `dir` with `CI` set to `ci` (the
/// ambient value, which `.ci/run` sets, must not leak in) and `NO_COLOR`
/// set.
pub fn rehearse_command(dir: &Path, ci: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rehearse"));
    command.current_dir(dir).env("CI", ci).env("NO_COLOR", "1");
    command
}

/// Runs `rehearse ARGS` in `dir`, outside CI, to its end.
pub fn rehearse(dir: &Path, args: &[&str]) -> Output {
    rehearse_command(dir, "false")
        .args(args)
        .output()
        .expect("the rehearse binary runs")
}

/// Output as text; `rehearse` prints UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("rehearse prints UTF-8")
}

/// A fresh, empty directory `rehearse-NAME-PID` under the system's
/// temporary directory (the caller removes it).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rehearse-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Every file under `dir`, relative to it, sorted; a link is a file (never
/// followed) and a directory that does not exist holds none.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let path = entry.path();
            if entry.file_type().expect("a file type").is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Every file under `dir` with its bytes (a link's target for a link),
/// sorted by path relative to `dir`: the tree's fingerprint.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|relative| {
            let path = dir.join(&relative);
            let bytes = match fs::read_link(&path) {
                Ok(target) => target.into_os_string().into_encoded_bytes(),
                Err(_) => fs::read(&path).expect("a file reads"),
            };
            (relative, bytes)
        })
        .collect()
}

/// A private library in a temporary directory, removed on drop.
pub struct Library {
    pub dir: tempfile::TempDir,
}

impl Library {
    /// An empty library.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// A library holding copies of `scenarios` of the real library (paths
    /// relative to the root, kept), an empty `snapshots/`, and `tmp/` for
    /// the child's `TMPDIR`.
    pub fn copied(scenarios: &[&str]) -> Self {
        let library = Self::new();
        for scenario in scenarios {
            let to = library.path(scenario);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(root().join(scenario), &to).expect("the scenario copies");
        }
        for dir in ["scenarios", "snapshots", "tmp"] {
            fs::create_dir_all(library.path(dir)).unwrap();
        }
        library
    }

    /// The library's directory, as the binary sees it from inside.
    pub fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes scenario `scenario` (a path under `scenarios/`).
    pub fn write(&self, scenario: &str, text: &str) {
        let path = self.path("scenarios").join(scenario);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Replaces `from` (which must occur once) in a scenario.
    pub fn edit(&self, scenario: &str, from: &str, to: &str) {
        let path = self.path("scenarios").join(scenario);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{from} in {scenario}");
        fs::write(path, text.replace(from, to)).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).unwrap()
    }

    /// Every file in the library, relative, sorted, spelled with `/`.
    pub fn files(&self) -> Vec<String> {
        files_under(self.dir.path())
            .iter()
            .map(|path| path.to_string_lossy().replace('\\', "/"))
            .collect()
    }
}
