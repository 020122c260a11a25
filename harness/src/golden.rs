//! Golden snapshots: the reviewed outputs of each scenario under
//! `snapshots/`, compared with a minimal unified diff, blessed atomically,
//! and never written when running in CI.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use similar::TextDiff;

use crate::atomic;

/// The files of one scenario's golden set, in the order they are compared.
pub const GOLDEN_FILES: [&str; 3] = ["report.json", "events.jsonl", "capture.json"];

/// The suffix of a pending golden: what `check` saw, waiting for review.
pub const PENDING_SUFFIX: &str = ".new";

/// Whether we run in CI: `CI` set to anything but empty, `false` or `0`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "false" | "0"))
}

/// The golden directory of the scenario at `scenario` (a path under
/// `scenarios_root`): `snapshots/<relative path without .yaml>/`.
///
/// Only normal path components survive, so no scenario path can place its
/// goldens outside `snapshots_root`.
pub fn golden_dir(snapshots_root: &Path, scenarios_root: &Path, scenario: &Path) -> PathBuf {
    let relative = scenario.strip_prefix(scenarios_root).unwrap_or(scenario);
    let mut dir = snapshots_root.to_path_buf();
    let mut parts: Vec<_> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if let Some(last) = parts.last_mut() {
        if let Some(stem) = last
            .strip_suffix(".yaml")
            .or_else(|| last.strip_suffix(".yml"))
        {
            *last = stem.to_string();
        }
    }
    for part in parts {
        dir.push(part);
    }
    dir
}

/// One output file compared with its golden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    Same,
    /// No golden exists yet.
    Missing,
    /// The golden differs; the unified diff from golden to actual.
    Differs {
        diff: String,
    },
}

/// Compares `actual` with the golden at `path`.
pub fn compare(path: &Path, actual: &str) -> io::Result<Comparison> {
    match fs::read_to_string(path) {
        Ok(golden) if golden == actual => Ok(Comparison::Same),
        Ok(golden) => Ok(Comparison::Differs {
            diff: unified_diff(&golden, actual, &path.display().to_string()),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Comparison::Missing),
        Err(error) => Err(error),
    }
}

/// A minimal unified diff (three lines of context) from `old` to `new`.
pub fn unified_diff(old: &str, new: &str, name: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (golden)"), &format!("{name} (actual)"))
        .to_string()
}

/// Writes `contents` as the golden at `path`, atomically, and removes any
/// pending file beside it. Refuses in CI.
pub fn bless(path: &Path, contents: &str) -> io::Result<()> {
    if in_ci() {
        return Err(io::Error::other(
            "refusing to write goldens while `CI` is set",
        ));
    }
    atomic::write(path, contents.as_bytes())?;
    remove_if_present(&pending_path(path))
}

/// Records `contents` beside the golden at `path` for `rehearse review`.
/// Never in CI.
pub fn write_pending(path: &Path, contents: &str) -> io::Result<()> {
    if in_ci() {
        return Ok(());
    }
    atomic::write(&pending_path(path), contents.as_bytes())
}

/// Removes the pending file beside the golden at `path`, if any: its
/// golden now matches, so the pending file is stale. Never in CI.
pub fn clear_pending(path: &Path) -> io::Result<()> {
    if in_ci() {
        return Ok(());
    }
    remove_if_present(&pending_path(path))
}

/// The pending file of the golden at `path`.
pub fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(PENDING_SUFFIX);
    path.with_file_name(name)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Golden directories under `snapshots_root` (those holding a `report.json`
/// or a pending one), relative to it, sorted.
pub fn golden_sets(snapshots_root: &Path) -> io::Result<BTreeSet<PathBuf>> {
    let mut sets = BTreeSet::new();
    if snapshots_root.is_dir() {
        walk(snapshots_root, snapshots_root, &mut sets)?;
    }
    Ok(sets)
}

fn walk(root: &Path, dir: &Path, sets: &mut BTreeSet<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, sets)?;
        } else if GOLDEN_FILES.iter().any(|f| entry.file_name() == *f) {
            if let Ok(relative) = dir.strip_prefix(root) {
                sets.insert(relative.to_path_buf());
            }
        }
    }
    Ok(())
}

/// Every pending file under `snapshots_root`, sorted.
pub fn pending_files(snapshots_root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if snapshots_root.is_dir() {
        collect_pending(snapshots_root, &mut found)?;
    }
    found.sort();
    Ok(found)
}

fn collect_pending(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_pending(&path, found)?;
        } else if path.to_string_lossy().ends_with(PENDING_SUFFIX) {
            found.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_dirs_follow_the_scenario_path_and_stay_inside() {
        let snaps = Path::new("snapshots");
        let scen = Path::new("scenarios");
        assert_eq!(
            golden_dir(snaps, scen, Path::new("scenarios/lease/expiry.yaml")),
            Path::new("snapshots/lease/expiry")
        );
        assert_eq!(
            golden_dir(snaps, scen, Path::new("../../etc/passwd.yaml")),
            Path::new("snapshots/etc/passwd")
        );
        assert_eq!(
            golden_dir(snaps, scen, Path::new("/abs/x.yml")),
            Path::new("snapshots/abs/x")
        );
    }

    #[test]
    fn diffs_are_minimal_and_name_the_file() {
        let old = (1..=20).map(|i| format!("line {i}\n")).collect::<String>();
        let new = old.replace("line 10\n", "line ten\n");
        let diff = unified_diff(&old, &new, "report.json");
        assert!(
            diff.starts_with("--- report.json (golden)\n+++ report.json (actual)\n"),
            "{diff}"
        );
        assert!(diff.contains("-line 10\n+line ten\n"), "{diff}");
        assert!(
            !diff.contains("line 1\n"),
            "context is three lines, not the whole file: {diff}"
        );
        assert_eq!(diff.lines().filter(|l| l.starts_with(' ')).count(), 6);
    }
}
