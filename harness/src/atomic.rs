//! Every write the harness makes: one file replaced atomically ([`write`]),
//! or a whole output set, a directory of files, replaced atomically
//! ([`replace_dir`]).
//!
//! A reader sees the old file (set) or the new one and never a mix. Temporary
//! names are unique per write (`.NAME.tmp-PID-N`, `.NAME.stage-PID-N`,
//! `.NAME.old-PID-N`, created new, never reused), so concurrent writers of
//! one target never share one. What a killed process leaves behind (litter)
//! is removed by the next write beside it, once the process that made it is
//! gone. Targets that are not what the tool writes are refused, never renamed
//! over: a symbolic link, a FIFO, a device, a directory where a file goes.
//!
//! The swap of a directory (see `docs/SECURITY.md`, "Output sets"):
//! 1. remove dead litter beside the target; if the target is missing and a
//!    dead writer's `.NAME.old-*` holds the previous set, put it back first;
//! 2. create `.NAME.stage-PID-N` beside the target, write every file into it
//!    and fsync each file and the directory;
//! 3. exchange the stage and the target in one `renameat2(RENAME_EXCHANGE)`
//!    (or, with no target yet, rename the stage into place), fsync the
//!    parent, and remove the stage, which now holds the old set.
//!
//! Where the file system cannot exchange, step 3 is two renames (target to
//! `.NAME.old-PID-N`, stage to target): a crash between them leaves no
//! target, and step 1 of the next write restores the old set.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of temporary entries, as they appear in names: `.NAME.KIND-PID-N`.
const TEMP_KINDS: [&str; 3] = ["tmp", "stage", "old"];

/// Writes `bytes` to `path` atomically, creating parent directories.
/// Refuses a target that exists and is not a regular file.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, name) = split(path)?;
    fs::create_dir_all(dir)?;
    refuse_unless(path, Kind::File)?;
    clean_litter(dir, name);
    let tmp = temp_path(dir, name, "tmp");
    let result = (|| {
        write_new(&tmp, bytes)?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` (which must not exist) with `bytes`, fsynced: the way
/// files are written into a staging directory.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replaces the directory `target` with a new one that `fill` writes, whole:
/// see the module documentation for the scheme and its crash windows.
///
/// `owned(name, is_dir)` says which entries of an existing target the tool
/// wrote; any other entry makes this refuse, so a target that is not an
/// output set (a home directory given as `--out`, a folder of other
/// goldens) is never swapped away.
pub fn replace_dir(
    target: &Path,
    owned: &dyn Fn(&str, bool) -> bool,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let staged = StagedDir::begin(target, owned)?;
    fill(staged.path())?;
    staged.commit()
}

/// A directory being replaced whole: steps 1 and 2 of the module
/// documentation's scheme done by [`StagedDir::begin`], step 3 by
/// [`StagedDir::commit`]. Files written into [`StagedDir::path`] as a run
/// goes appear at the target all at once, or (dropped without a commit)
/// never: the stage is removed.
#[derive(Debug)]
pub struct StagedDir {
    target: PathBuf,
    parent: PathBuf,
    name: OsString,
    exists: bool,
    stage: Stage,
}

impl StagedDir {
    /// Prepares to replace `target` (see [`replace_dir`] for `owned`):
    /// refuses a target that is not an output set, creates the stage.
    pub fn begin(target: &Path, owned: &dyn Fn(&str, bool) -> bool) -> io::Result<Self> {
        let (parent, name) = split(target)?;
        fs::create_dir_all(parent)?;
        clean_litter(parent, name);
        refuse_unless(target, Kind::Dir)?;
        let exists = target.symlink_metadata().is_ok();
        if exists {
            refuse_foreign_entries(target, owned)?;
        }
        let stage = Stage::create(parent, name)?;
        Ok(Self {
            target: target.to_path_buf(),
            parent: parent.to_path_buf(),
            name: name.to_os_string(),
            exists,
            stage,
        })
    }

    /// The stage: write the new set's files here (each fsynced, as
    /// [`write_new`] does) before [`StagedDir::commit`].
    pub fn path(&self) -> &Path {
        &self.stage.path
    }

    /// Puts the stage in the target's place in one step and removes the
    /// old set.
    pub fn commit(self) -> io::Result<()> {
        let Self {
            target,
            parent,
            name,
            exists,
            stage,
        } = self;
        sync_dir(&stage.path)?;
        if !exists {
            fs::rename(&stage.path, &target)?;
            stage.disarm();
            return sync_dir(&parent);
        }
        if exchange(&stage.path, &target)? {
            // The stage now holds the old set; the guard removes it.
            return sync_dir(&parent);
        }
        let old = temp_path(&parent, &name, "old");
        fs::rename(&target, &old)?;
        if let Err(error) = fs::rename(&stage.path, &target) {
            let _ = fs::rename(&old, &target);
            return Err(error);
        }
        stage.disarm();
        sync_dir(&parent)?;
        fs::remove_dir_all(&old)
    }
}

/// Swaps two directory entries in one step, where the platform can;
/// `Ok(false)` when it cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<bool> {
    Ok(false)
}

/// A staging directory, removed when dropped unless it was renamed into
/// place: every exit path, an error or a panic, cleans it up.
#[derive(Debug)]
struct Stage {
    path: PathBuf,
    armed: std::cell::Cell<bool>,
}

impl Stage {
    fn create(parent: &Path, name: &OsStr) -> io::Result<Self> {
        let path = temp_path(parent, name, "stage");
        fs::create_dir(&path)?;
        Ok(Self {
            path,
            armed: std::cell::Cell::new(true),
        })
    }

    fn disarm(&self) {
        self.armed.set(false);
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.armed.get() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// What a target must be if it exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// Refuses a target that exists and is not a `kind` (a symbolic link is
/// never one: the tool does not write through links it did not make).
fn refuse_unless(path: &Path, kind: Kind) -> io::Result<()> {
    let metadata = match path.symlink_metadata() {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    let found = describe(&metadata.file_type());
    let ok = match kind {
        Kind::File => metadata.is_file(),
        Kind::Dir => metadata.is_dir(),
    };
    if ok {
        return Ok(());
    }
    let expected = match kind {
        Kind::File => "a regular file",
        Kind::Dir => "a directory",
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "`{}` is {found}, expected {expected}; refusing to replace it",
            path.display()
        ),
    ))
}

/// What a directory entry is, in words.
pub fn describe(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "a device";
        }
    }
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn refuse_foreign_entries(target: &Path, owned: &dyn Fn(&str, bool) -> bool) -> io::Result<()> {
    for entry in fs::read_dir(target)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = (file_type.is_file() || file_type.is_dir()) && owned(&name, file_type.is_dir());
        if !ours && !is_litter_name(&name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{}` holds `{name}` ({}), which this tool did not write; refusing to replace the directory",
                    target.display(),
                    describe(&file_type)
                ),
            ));
        }
    }
    Ok(())
}

fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// A fresh temporary name beside `name`: the process id and a counter make
/// it unique among live writers; `create_new` and `create_dir` make sure.
fn temp_path(dir: &Path, name: &OsStr, kind: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{kind}-{}-{n}", std::process::id()));
    dir.join(temp)
}

/// The process id of a temporary entry's name (`.NAME.KIND-PID` or
/// `.NAME.KIND-PID-N`), or `None` when the name is not one.
fn litter_pid(name: &str) -> Option<(&str, &'static str, u32)> {
    let rest = name.strip_prefix('.')?;
    TEMP_KINDS.iter().find_map(|kind| {
        let marker = format!(".{kind}-");
        let at = rest.rfind(&marker)?;
        let (target, suffix) = (&rest[..at], &rest[at + marker.len()..]);
        let pid = suffix.split('-').next()?;
        let all_digits = suffix.split('-').count() <= 2
            && suffix
                .split('-')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        (all_digits && !target.is_empty()).then_some(())?;
        Some((target, *kind, pid.parse().ok()?))
    })
}

fn is_litter_name(name: &str) -> bool {
    litter_pid(name).is_some()
}

/// Whether process `pid` is running (or cannot be told apart from running).
pub(crate) fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        )
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Removes what dead writers of `name` left in `dir`: temporary files,
/// stages, old sets; restores an old set whose target is missing. Best
/// effort: litter that cannot be removed is left for the next write.
fn clean_litter(dir: &Path, name: &OsStr) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let name = name.to_string_lossy();
    let target = dir.join(&*name);
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let entry_name = entry_name.to_string_lossy();
        let Some((of, kind, pid)) = litter_pid(&entry_name) else {
            continue;
        };
        if of != name || alive(pid) {
            continue;
        }
        let path = entry.path();
        if kind == "old" && target.symlink_metadata().is_err() {
            let _ = fs::rename(&path, &target);
            continue;
        }
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
    }
}

/// Removes what dead writers of `target` left beside it (see
/// `clean_litter`), for a target the caller has no need to write: a golden
/// set that a killed `bless` had already swapped in, whose stage (holding
/// the old set) was left behind.
pub fn clean_litter_of(target: &Path) {
    if let Ok((dir, name)) = split(target) {
        clean_litter(dir, name);
    }
}

/// Removes every dead writer's litter directly in `dir` (all targets): for
/// the files of a golden directory, which are written whole with it.
pub fn clean_all_litter(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut targets: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            litter_pid(&name).map(|(of, _, _)| of.to_string())
        })
        .collect();
    targets.sort();
    targets.dedup();
    for target in targets {
        clean_litter(dir, OsStr::new(&target));
    }
}

/// Makes a directory's entries (a rename) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/out.txt");
        write(&path, b"first").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![OsString::from("out.txt")]);
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error() {
        assert!(write(Path::new("/"), b"x").is_err());
    }

    #[test]
    fn litter_names_are_recognised() {
        assert_eq!(
            litter_pid(".report.json.tmp-123"),
            Some(("report.json", "tmp", 123))
        );
        assert_eq!(
            litter_pid(".expiry.stage-9-4"),
            Some(("expiry", "stage", 9))
        );
        assert_eq!(litter_pid("report.json"), None);
        assert_eq!(litter_pid(".x.tmp-12a"), None);
        assert_eq!(litter_pid(".tmp-12"), None);
    }

    #[test]
    fn dead_litter_is_removed_and_live_litter_kept() {
        let dir = tempfile::tempdir().unwrap();
        // No process has id 0x7fff_fff0 on a normal system.
        let dead = dir.path().join(".out.txt.tmp-2147483632");
        let mine = dir
            .path()
            .join(format!(".out.txt.tmp-{}-77", std::process::id()));
        fs::write(&dead, "x").unwrap();
        fs::write(&mine, "x").unwrap();
        write(&dir.path().join("out.txt"), b"new").unwrap();
        assert!(!dead.exists());
        assert!(mine.exists());
    }

    #[test]
    fn directories_are_swapped_whole_and_foreign_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("set");
        let owned = |name: &str, _dir: bool| name.ends_with(".txt");
        let fill = |files: &'static [(&'static str, &'static str)]| {
            move |stage: &Path| {
                for (name, text) in files {
                    write_new(&stage.join(name), text.as_bytes())?;
                }
                Ok(())
            }
        };
        replace_dir(&target, &owned, fill(&[("a.txt", "1"), ("b.txt", "1")])).unwrap();
        replace_dir(&target, &owned, fill(&[("a.txt", "2")])).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("set")]);
        assert_eq!(fs::read_to_string(target.join("a.txt")).unwrap(), "2");
        assert!(!target.join("b.txt").exists());
        fs::write(target.join("mine.doc"), "keep").unwrap();
        let error = replace_dir(&target, &owned, fill(&[("a.txt", "3")])).unwrap_err();
        assert!(error.to_string().contains("`mine.doc`"), "{error}");
        assert_eq!(fs::read_to_string(target.join("a.txt")).unwrap(), "2");
    }

    #[test]
    fn a_failing_fill_leaves_the_old_set_and_no_stage() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("set");
        let owned = |_: &str, _: bool| true;
        replace_dir(&target, &owned, |s| write_new(&s.join("a"), b"old")).unwrap();
        let error = replace_dir(&target, &owned, |s| {
            write_new(&s.join("a"), b"new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "disk full");
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_dead_writers_old_set_is_restored() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".set.old-2147483632-0");
        fs::create_dir(&old).unwrap();
        fs::write(old.join("a"), "old").unwrap();
        let owned = |_: &str, _: bool| true;
        replace_dir(&dir.path().join("set"), &owned, |s| {
            write_new(&s.join("a"), b"new")
        })
        .unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("set/a")).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
