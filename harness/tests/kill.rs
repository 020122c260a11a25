//! SIGKILL over `bless` and `run --out` (issue 14): each is killed at
//! deterministic but varied points of its work, and afterwards every golden
//! set and every output set is either the old one or the new one, whole;
//! the next run finishes the job and leaves no litter (`.X.tmp-PID-N`,
//! `.X.stage-PID-N`, `.X.old-PID-N`) behind.
//!
//! The kill points: one uninterrupted run is timed first, and kill `k` of
//! `K` comes after `k / K` of that time (the first at once), so the kills
//! spread over the whole run however fast the machine is. Where a kill
//! lands is reported, never asserted; what is asserted holds wherever it
//! lands. Everything happens in this test's own temporary directories.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{rehearse_command, root, tree, Library};
use std::time::{Duration, Instant};

/// Scenarios of the real library copied into each private library; none
/// sets `seed`, so adding one makes every file of its set new. One
/// runs persona work, so its `run --out` set holds run records in
/// `runs.jsonl`.
const SCENARIOS: [&str; 4] = [
    "scenarios/admission/completed-run.yaml",
    "scenarios/admission/paused-queues.yaml",
    "scenarios/durability/fault-leaves-no-trace.yaml",
    "scenarios/durability/restart-crashed-lease.yaml",
];

/// Kills of `bless` and of `run --out`.
const BLESS_KILLS: u32 = 12;
const RUN_KILLS: u32 = 10;

/// Every file under `dir` with its bytes, sorted by path relative to `dir`.
type Tree = Vec<(PathBuf, Vec<u8>)>;

/// Files under `dir` whose names are a killed writer's temporaries.
fn litter(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("an entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if [".tmp-", ".stage-", ".old-"]
                .iter()
                .any(|t| name.contains(t))
            {
                found.push(path.clone());
            }
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    found
}

/// The library of these tests: a `common::Library` copy of `SCENARIOS`.
impl Library {
    /// Makes every scenario the new version (a `seed` line) or the old.
    fn version(&self, new: bool) {
        for scenario in SCENARIOS {
            let text = fs::read_to_string(root().join(scenario)).unwrap();
            let text = if new {
                text.replacen("version: 1\n", "version: 1\nseed: 99\n", 1)
            } else {
                text
            };
            fs::write(self.path(scenario), text).unwrap();
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        // `bless` refuses in CI; this test is not CI writing goldens.
        let mut command = rehearse_command(self.dir.path(), "false");
        command
            .args(args)
            .env("TMPDIR", self.path("tmp"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Runs `rehearse ARGS` to its end (failing after 60 seconds, a hang)
    /// and returns how long it took.
    fn complete(&self, args: &[&str]) -> Duration {
        let started = Instant::now();
        let mut child = self.command(args).spawn().expect("rehearse runs");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "`rehearse {}`: {status}", args.join(" "));
                return started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("`rehearse {}` hung", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Starts `rehearse ARGS` and sends it SIGKILL after `delay` (or lets
    /// it end first); whether the kill landed.
    fn kill_after(&self, args: &[&str], delay: Duration) -> bool {
        let mut child = self.command(args).spawn().expect("rehearse runs");
        std::thread::sleep(delay);
        let landed = child.try_wait().unwrap().is_none();
        // `Child::kill` is SIGKILL on Unix.
        let _ = child.kill();
        let _ = child.wait();
        landed
    }
}

/// Each set directory (one per scenario) with its old and new trees.
struct Sets {
    old: Vec<(PathBuf, Tree)>,
    new: Vec<(PathBuf, Tree)>,
}

impl Sets {
    /// The sets under `dir`: the directories holding a `report.json`.
    fn of(dir: &Path) -> Vec<(PathBuf, Tree)> {
        let mut sets: Vec<PathBuf> = tree(dir)
            .into_iter()
            .filter(|(path, _)| path.ends_with("report.json"))
            .map(|(path, _)| path.parent().unwrap().to_path_buf())
            .collect();
        sets.sort();
        sets.into_iter()
            .map(|set| {
                let files = tree(&dir.join(&set));
                (set, files)
            })
            .collect()
    }

    /// Asserts every set under `dir` is the old or the new one, whole;
    /// returns how many are new.
    fn whole(&self, dir: &Path, after: &str) -> usize {
        let mut new = 0;
        for ((set, old), (_, fresh)) in self.old.iter().zip(&self.new) {
            let now = tree(&dir.join(set));
            assert!(
                now == *old || now == *fresh,
                "{after}: `{}` is neither the old set nor the new one: {:?}",
                set.display(),
                now.iter().map(|(path, _)| path).collect::<Vec<_>>()
            );
            new += usize::from(now == *fresh && now != *old);
        }
        new
    }
}

/// Restores `dir` to exactly the files of `sets`.
fn restore(dir: &Path, sets: &[(PathBuf, Tree)]) {
    fs::remove_dir_all(dir).unwrap();
    for (set, files) in sets {
        for (path, bytes) in files {
            let to = dir.join(set).join(path);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::write(to, bytes).unwrap();
        }
    }
    fs::create_dir_all(dir).unwrap();
}

/// Kills `args` at `kills` points spread over its uninterrupted duration
/// `full`, each time from the old sets under `dir`; checks the sets are
/// whole after each kill and new and clean after the next complete run.
fn kill_repeatedly(
    library: &Library,
    args: &[&str],
    dir: &Path,
    sets: &Sets,
    full: Duration,
    kills: u32,
) {
    let mut landed = 0;
    let mut mixed = 0;
    for k in 0..kills {
        restore(dir, &sets.old);
        let delay = full * k / kills;
        let after = format!("`rehearse {}` killed after {delay:?}", args.join(" "));
        landed += u32::from(library.kill_after(args, delay));
        let new = sets.whole(dir, &after);
        mixed += u32::from(new > 0 && new < sets.old.len());
        library.complete(args);
        assert_eq!(sets.whole(dir, "the next run"), sets.old.len(), "{after}");
        let left = litter(dir);
        assert!(left.is_empty(), "{after}, the next run left {left:?}");
        let scratch = fs::read_dir(library.path("tmp")).unwrap().count();
        assert_eq!(scratch, 0, "{after}, scratch directories are left");
    }
    eprintln!(
        "`rehearse {}`: {kills} kills over {full:?}, {landed} before it ended, {mixed} between two sets",
        args.join(" ")
    );
}

/// The old and new sets `args` writes under `dir` of a library, and how
/// long one uninterrupted run takes.
fn old_and_new(library: &Library, args: &[&str], dir: &Path) -> (Sets, Duration) {
    library.version(false);
    library.complete(args);
    let old = Sets::of(dir);
    library.version(true);
    let full = library.complete(args);
    let new = Sets::of(dir);
    assert_eq!(old.len(), SCENARIOS.len());
    assert_eq!(
        old.iter().map(|(set, _)| set).collect::<Vec<_>>(),
        new.iter().map(|(set, _)| set).collect::<Vec<_>>()
    );
    for ((set, old), (_, new)) in old.iter().zip(&new) {
        assert_ne!(old, new, "`{}` must differ between versions", set.display());
    }
    (Sets { old, new }, full)
}

#[test]
fn killed_bless_leaves_each_golden_set_old_or_new_whole() {
    let library = Library::copied(&SCENARIOS);
    let snapshots = library.path("snapshots");
    let (sets, full) = old_and_new(&library, &["bless"], &snapshots);
    kill_repeatedly(&library, &["bless"], &snapshots, &sets, full, BLESS_KILLS);
}

#[test]
fn killed_run_out_leaves_each_output_set_old_or_new_whole() {
    let library = Library::copied(&SCENARIOS);
    let out = library.path("out");
    fs::create_dir_all(&out).unwrap();
    let mut args = vec!["run"];
    args.extend(SCENARIOS);
    args.extend(["--out", "out"]);
    let (sets, full) = old_and_new(&library, &args, &out);
    let runs = sets.new.iter().flat_map(|(_, files)| files);
    assert!(
        runs.clone()
            .any(|(path, bytes)| path.as_path() == Path::new("runs.jsonl") && !bytes.is_empty()),
        "a set holds run records in runs.jsonl"
    );
    kill_repeatedly(&library, &args, &out, &sets, full, RUN_KILLS);
}
