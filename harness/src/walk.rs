//! The one directory walker of the harness: every entry under a root that
//! is not a directory, sorted, never following a symbolic link (a linked
//! directory is reported as a link, not entered), with limits on depth and
//! entry count so a hostile tree cannot make it run away.

use std::fs::{self, FileType};
use std::io;
use std::path::{Path, PathBuf};

/// The deepest directory entered below the root.
pub const MAX_DEPTH: usize = 64;

/// The most entries a walk reads.
pub const MAX_ENTRIES: usize = 1_000_000;

/// One entry found: a file, a link, a FIFO, a device or a socket.
#[derive(Clone, Debug)]
pub struct Found {
    pub path: PathBuf,
    pub file_type: FileType,
}

impl Found {
    /// Whether it is a regular file (a link never is).
    pub fn is_file(&self) -> bool {
        self.file_type.is_file()
    }

    /// The file name, lossily as UTF-8.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Every non-directory entry under `root`, sorted by path. A root that is
/// not a directory gives nothing.
pub fn walk(root: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    let mut seen = 0usize;
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(limit(format!(
                "`{}` is nested more than {MAX_DEPTH} directories deep",
                dir.display()
            )));
        }
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(limit(format!(
                    "`{}` holds more than {MAX_ENTRIES} entries",
                    root.display()
                )));
            }
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                stack.push((entry.path(), depth + 1));
            } else {
                found.push(Found {
                    path: entry.path(),
                    file_type,
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn limit(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("b/c/z.yaml"), "").unwrap();
        fs::write(root.join("a.yaml"), "").unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.yaml"), "").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        let found = walk(root).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        #[cfg(unix)]
        assert_eq!(
            names,
            vec![
                PathBuf::from("a.yaml"),
                PathBuf::from("b/c/z.yaml"),
                PathBuf::from("link")
            ]
        );
        #[cfg(unix)]
        assert!(found[2].file_type.is_symlink() && !found[2].is_file());
    }

    #[test]
    fn depth_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_path_buf();
        for _ in 0..=MAX_DEPTH + 1 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();
        let error = walk(dir.path()).unwrap_err();
        assert!(error.to_string().contains("nested more than"), "{error}");
    }
}
