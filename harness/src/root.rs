//! The project root: the directory that holds `scenarios/` (and, once
//! blessed, `snapshots/`), found from the current directory upward, and the
//! one spelling of every path under it.
//!
//! However a scenario path is written (`./scenarios/x.yaml`,
//! `scenarios//x.yaml`, an absolute path, or a path from inside
//! `scenarios/`), it is named by the same root-relative, `/`-separated path,
//! so it maps to the same golden directory and the same `source` field.

use std::io;
use std::path::{Component, Path, PathBuf};

/// The directory whose presence marks a project root.
pub const SCENARIOS_DIR: &str = "scenarios";

/// The default directory of the goldens, under the root.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// Why a path could not be named under the project root.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("failed to read the current directory: {0}")]
    CurrentDir(io::Error),
    #[error("no scenario file or directory at `{}`", .0.display())]
    Missing(PathBuf),
    #[error(
        "`{}` is outside the project root `{}`: scenarios and goldens live under the directory that holds `scenarios/`",
        .path.display(),
        .root.display()
    )]
    Outside { path: PathBuf, root: PathBuf },
}

/// A project root and the directory the command was started in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    /// The root, absolute and free of symbolic links.
    pub root: PathBuf,
    /// Where the command was started, absolute and free of symbolic links.
    pub cwd: PathBuf,
}

impl Project {
    /// The nearest directory from the current one upward that holds a
    /// `scenarios/` directory; the current directory when none does.
    pub fn discover() -> Result<Self, RootError> {
        let cwd = std::env::current_dir().map_err(RootError::CurrentDir)?;
        let cwd = cwd.canonicalize().unwrap_or(cwd);
        Ok(Self::from_dir(&cwd))
    }

    /// The root as `discover` finds it from `cwd` (absolute).
    pub fn from_dir(cwd: &Path) -> Self {
        let root = cwd
            .ancestors()
            .find(|dir| dir.join(SCENARIOS_DIR).is_dir())
            .unwrap_or(cwd)
            .to_path_buf();
        Self {
            root,
            cwd: cwd.to_path_buf(),
        }
    }

    /// `path` (as the user typed it, relative to the starting directory)
    /// as an absolute, normalised path; symbolic links are resolved when the
    /// path exists, so `$PWD/x` and `x` agree.
    pub fn absolute(&self, path: &Path) -> PathBuf {
        let joined = normalise(&self.cwd.join(path));
        joined.canonicalize().unwrap_or(joined)
    }

    /// `path` relative to the root, normalised; an error when the path is
    /// outside the root.
    pub fn relative(&self, path: &Path) -> Result<PathBuf, RootError> {
        let absolute = self.absolute(path);
        match absolute.strip_prefix(&self.root) {
            Ok(relative) if relative.as_os_str().is_empty() => Ok(PathBuf::from(".")),
            Ok(relative) => Ok(relative.to_path_buf()),
            Err(_) => Err(RootError::Outside {
                path: path.to_path_buf(),
                root: self.root.clone(),
            }),
        }
    }

    /// Like `relative`, for a scenario file or directory that must exist.
    pub fn existing(&self, path: &Path) -> Result<PathBuf, RootError> {
        if !self.absolute(path).exists() {
            return Err(RootError::Missing(path.to_path_buf()));
        }
        self.relative(path)
    }

    /// How a file is named in reports: relative to the root and
    /// `/`-separated when it is under the root, otherwise as normalised.
    pub fn name(&self, path: &Path) -> String {
        let named = self
            .relative(path)
            .unwrap_or_else(|_| normalise(&self.cwd.join(path)));
        slashed(&named)
    }
}

/// `path` with `.` components and doubled separators removed and `..`
/// folded into its parent where there is one (lexically, without looking
/// at the file system).
pub fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let folded = matches!(out.components().next_back(), Some(Component::Normal(_)));
                if folded {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A path as text with `/` separators.
pub fn slashed(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalising_folds_dots_and_doubled_separators() {
        for (spelled, clean) in [
            ("./scenarios/admission", "scenarios/admission"),
            ("scenarios//admission", "scenarios/admission"),
            ("scenarios/./a/../admission/", "scenarios/admission"),
            ("../x", "../x"),
            ("/a/../../b", "/b"),
        ] {
            assert_eq!(normalise(Path::new(spelled)), Path::new(clean), "{spelled}");
        }
    }

    #[test]
    fn the_root_is_the_nearest_directory_holding_scenarios() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("scenarios/lease")).unwrap();
        let inside = Project::from_dir(&root.join("scenarios/lease"));
        assert_eq!(inside.root, root);
        assert_eq!(
            inside.relative(Path::new("x.yaml")).unwrap(),
            Path::new("scenarios/lease/x.yaml")
        );
        assert_eq!(
            inside.name(Path::new("..//lease/./x.yaml")),
            "scenarios/lease/x.yaml"
        );
        assert!(matches!(
            inside.relative(Path::new("../../..")),
            Err(RootError::Outside { .. })
        ));
    }
}
