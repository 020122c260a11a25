//! Golden snapshots: the reviewed outputs of each scenario under
//! `snapshots/`, compared with a minimal unified diff, blessed atomically,
//! and never written when running in CI.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use similar::TextDiff;

use crate::atomic;
use crate::outputs::OutputFile;
use crate::walk::walk;

/// The files of one scenario's golden set, in the order they are compared.
pub const GOLDEN_FILES: [&str; 4] = [
    OutputFile::Report.name(),
    OutputFile::Events.name(),
    OutputFile::Capture.name(),
    OutputFile::Runs.name(),
];

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

/// Compares `actual` with the golden at `path` (only the file itself is
/// checked for links; see [`compare_in`]).
pub fn compare(path: &Path, actual: &str) -> io::Result<Comparison> {
    let root = path.parent().unwrap_or(Path::new(""));
    compare_in(root, path, actual)
}

/// Compares `actual` with the golden at `path` under `root` (the snapshots
/// directory). Neither the file nor a directory between it and `root` may
/// be a symbolic link, and the file must be a regular one: a golden is
/// never read through a link (its target would be printed in the diff),
/// and a FIFO is never opened. A golden much larger than the output is not
/// read whole.
pub fn compare_in(root: &Path, path: &Path, actual: &str) -> io::Result<Comparison> {
    let limit = actual.len() as u64 + DIFF_SLACK_BYTES;
    let golden = match read_golden(root, path, limit)? {
        None => return Ok(Comparison::Missing),
        Some(Golden::TooLarge(len)) => {
            return Ok(Comparison::Differs {
                diff: format!(
                    "--- {name} (golden)\n+++ {name} (actual)\n the golden is {len} bytes, the output {} bytes: too different to diff\n",
                    actual.len(),
                    name = path.display()
                ),
            })
        }
        Some(Golden::Text(golden)) => golden,
    };
    Ok(if golden == actual {
        Comparison::Same
    } else {
        Comparison::Differs {
            diff: unified_diff(&golden, actual, &path.display().to_string()),
        }
    })
}

/// How much longer than the output a golden may be and still be diffed.
pub const DIFF_SLACK_BYTES: u64 = 1024 * 1024;

/// A golden as read.
enum Golden {
    Text(String),
    /// Longer than the limit: its length.
    TooLarge(u64),
}

/// Reads the golden at `path` if it exists, refusing links and anything
/// but a regular file, reading at most `limit` bytes.
fn read_golden(root: &Path, path: &Path, limit: u64) -> io::Result<Option<Golden>> {
    refuse_links(root, path)?;
    let metadata = match path.symlink_metadata() {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    if !metadata.is_file() {
        return Err(invalid(format!(
            "`{}` is {}, expected a regular file",
            path.display(),
            atomic::describe(&metadata.file_type())
        )));
    }
    if metadata.len() > limit {
        return Ok(Some(Golden::TooLarge(metadata.len())));
    }
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(Some(Golden::TooLarge(bytes.len() as u64)));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| invalid(format!("`{}` is not UTF-8 text", path.display())))?;
    Ok(Some(Golden::Text(text)))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Refuses `path` when it, or any directory between `root` and it, is a
/// symbolic link: nothing under `snapshots/` is read or written through a
/// link. `root` itself may be one (a checkout may sit behind a link).
pub fn refuse_links(root: &Path, path: &Path) -> io::Result<()> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut current = root.to_path_buf();
    for component in relative.components() {
        current.push(component);
        match current.symlink_metadata() {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(invalid(format!(
                    "`{}` is a symbolic link; goldens are never read or written through links",
                    current.display()
                )))
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// A minimal unified diff (three lines of context) from `old` to `new`.
pub fn unified_diff(old: &str, new: &str, name: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} (golden)"), &format!("{name} (actual)"))
        .to_string()
}

fn refuse_in_ci() -> io::Result<()> {
    if in_ci() {
        return Err(io::Error::other(
            "refusing to write goldens while `CI` is set",
        ));
    }
    Ok(())
}

/// Writes `contents` as the golden at `path`, atomically, and removes any
/// pending file beside it. Refuses in CI.
pub fn bless(path: &Path, contents: &str) -> io::Result<()> {
    bless_in(path.parent().unwrap_or(Path::new("")), path, contents)
}

/// [`bless`] for a golden under `root`, refusing links below `root`.
pub fn bless_in(root: &Path, path: &Path, contents: &str) -> io::Result<()> {
    refuse_in_ci()?;
    refuse_links(root, path)?;
    atomic::write(path, contents.as_bytes())?;
    remove_if_present(&pending_path(path))
}

/// Replaces the golden set in `dir` (under `root`) with `files`, whole: see
/// `atomic::replace_dir`. Pending files of the old set go with it. Returns
/// whether any file changed. Refuses in CI, through links, and when `dir`
/// holds anything but goldens.
pub fn bless_set(root: &Path, dir: &Path, files: &[(&str, &str)]) -> io::Result<bool> {
    refuse_in_ci()?;
    refuse_links(root, dir)?;
    let mut changed = false;
    for (name, contents) in files {
        let path = dir.join(name);
        let same = matches!(
            read_golden(root, &path, contents.len() as u64)?,
            Some(Golden::Text(old)) if old == *contents
        );
        changed |= !same || pending_path(&path).exists();
    }
    if !changed {
        // Nothing to write, but a killed writer's litter beside the set
        // still goes (the kill test in tests/kill.rs found it left).
        atomic::clean_litter_of(dir);
        return Ok(false);
    }
    let owned = |name: &str, is_dir: bool| {
        !is_dir
            && GOLDEN_FILES
                .iter()
                .any(|golden| name == *golden || name == format!("{golden}{PENDING_SUFFIX}"))
    };
    atomic::replace_dir(dir, &owned, |stage| {
        for (name, contents) in files {
            atomic::write_new(&stage.join(name), contents.as_bytes())?;
        }
        Ok(())
    })?;
    Ok(true)
}

/// Records `contents` beside the golden at `path` for `rehearse review`.
/// Never in CI.
pub fn write_pending(path: &Path, contents: &str) -> io::Result<()> {
    if in_ci() {
        return Ok(());
    }
    let pending = pending_path(path);
    refuse_links(path.parent().unwrap_or(Path::new("")), &pending)?;
    atomic::write(&pending, contents.as_bytes())
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
        for found in walk(snapshots_root)? {
            let name = found.name();
            if !GOLDEN_FILES.iter().any(|f| name == *f) {
                continue;
            }
            let dir = found.path.parent().unwrap_or(snapshots_root);
            if let Ok(relative) = dir.strip_prefix(snapshots_root) {
                sets.insert(relative.to_path_buf());
            }
        }
    }
    Ok(sets)
}

/// Every pending file under `snapshots_root`, sorted.
pub fn pending_files(snapshots_root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if snapshots_root.is_dir() {
        for entry in walk(snapshots_root)? {
            if entry.is_file() && entry.name().ends_with(PENDING_SUFFIX) {
                found.push(entry.path);
            }
        }
    }
    Ok(found)
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
