//! Where a run's output files go as the run goes: into memory for `check`,
//! `bless` and the other commands that compare or show them
//! ([`MemoryOutputs`]), or straight into the stage of an output set on disk
//! for `run` ([`FileOutputs`], see `atomic::StagedDir`), so a load scenario's
//! outputs are never held whole in memory.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::atomic::StagedDir;
use crate::driver::{Finished, RunOptions, Streams};
use crate::scenario::Scenario;

/// The files of an output set, which are also the files of a golden set, in
/// the order goldens are compared and shown (docs/FORMATS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFile {
    Report,
    Events,
    Capture,
    Runs,
}

impl OutputFile {
    /// Every file of a set, in order.
    pub const ALL: [OutputFile; 4] = [Self::Report, Self::Events, Self::Capture, Self::Runs];

    /// The file's name in the set.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Report => "report.json",
            Self::Events => "events.jsonl",
            Self::Capture => "capture.jsonl",
            Self::Runs => "runs.jsonl",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The writers of a run's output files.
pub trait Outputs {
    /// The writer of `file`; bytes go there in the order they are written.
    fn writer(&mut self, file: OutputFile) -> &mut dyn Write;

    /// Writers of the events, the capture and the run records that the run
    /// may write from another thread as it goes, if these outputs take
    /// them: the run then keeps no capture in memory, and writes each of
    /// those files either through its stream or through
    /// [`Outputs::writer`], bytes written through the stream coming first.
    /// Asked once, before the run.
    fn streams(&mut self) -> io::Result<Option<Streams>> {
        Ok(None)
    }
}

/// Output files kept in memory.
#[derive(Debug, Default)]
pub struct MemoryOutputs {
    files: [Vec<u8>; 4],
}

impl Outputs for MemoryOutputs {
    fn writer(&mut self, file: OutputFile) -> &mut dyn Write {
        &mut self.files[file.index()]
    }
}

impl MemoryOutputs {
    /// The files' text, in [`OutputFile::ALL`] order.
    pub fn into_texts(self) -> [String; 4] {
        self.files
            .map(|bytes| String::from_utf8(bytes).expect("outputs are JSON, so UTF-8"))
    }
}

/// Output files written into a directory as the run goes (buffered), each
/// created new: the stage of an output set.
#[derive(Debug)]
pub struct FileOutputs {
    files: Vec<BufWriter<File>>,
}

/// How much of a file is buffered before it is written.
const BUFFER: usize = 1 << 20;

impl FileOutputs {
    /// Creates every file of a set in `dir`; none may exist.
    pub fn create(dir: &Path) -> io::Result<Self> {
        let files = OutputFile::ALL
            .iter()
            .map(|file| {
                let path = dir.join(file.name());
                let handle = OpenOptions::new().write(true).create_new(true).open(path)?;
                Ok(BufWriter::with_capacity(BUFFER, handle))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self { files })
    }

    /// Writes out what is buffered and fsyncs every file: after this the
    /// set is on disk, ready to be put in place. Streams taken from these
    /// outputs must have been flushed and dropped before.
    pub fn finish(self) -> io::Result<()> {
        for writer in self.files {
            let file = writer
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
        }
        Ok(())
    }
}

impl Outputs for FileOutputs {
    fn writer(&mut self, file: OutputFile) -> &mut dyn Write {
        &mut self.files[file.index()]
    }

    /// The events, capture and runs files, through second handles of them
    /// (sharing their offsets): [`FileOutputs::finish`] fsyncs them.
    fn streams(&mut self) -> io::Result<Option<Streams>> {
        let stream = |file: OutputFile| -> io::Result<Box<dyn Write + Send>> {
            let handle = self.files[file.index()].get_ref().try_clone()?;
            Ok(Box::new(BufWriter::with_capacity(BUFFER, handle)))
        };
        Ok(Some(Streams {
            events: stream(OutputFile::Events)?,
            capture: stream(OutputFile::Capture)?,
            runs: stream(OutputFile::Runs)?,
        }))
    }
}

/// Why [`run_into`] wrote no output set.
#[derive(Debug, thiserror::Error)]
pub enum RunIntoError {
    #[error("failed to write outputs to `{}`: {source}", .dir.display())]
    Write {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Driver(#[from] crate::driver::DriverError),
}

/// Runs `scenario` and writes its outputs into `dir` as the run goes, as one
/// set: they are written into a stage beside `dir` that replaces it whole
/// when the run ends (see `atomic::StagedDir`), and is removed when the run
/// or a write fails. An existing `dir` holding anything else is refused.
pub fn run_into(dir: &Path, scenario: &Scenario, source: &str) -> Result<Finished, RunIntoError> {
    let failed = |source: std::io::Error| RunIntoError::Write {
        dir: dir.to_path_buf(),
        source,
    };
    // `runs/` is what versions before `runs.jsonl` wrote (a file per run
    // record): an old output set is replaced like a current one.
    let owned = |name: &str, is_dir: bool| {
        if is_dir {
            name == "runs"
        } else {
            OutputFile::ALL.iter().any(|file| file.name() == name)
        }
    };
    let staged = StagedDir::begin(dir, &owned).map_err(failed)?;
    let mut files = FileOutputs::create(staged.path()).map_err(failed)?;
    let finished = crate::driver::run_streamed(
        scenario,
        source,
        RunOptions::default(),
        &mut crate::driver::Unobserved,
        &mut files,
    )?;
    files.finish().map_err(failed)?;
    staged.commit().map_err(failed)?;
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_outputs_keep_each_file_apart_in_set_order() {
        let mut outputs = MemoryOutputs::default();
        outputs.writer(OutputFile::Runs).write_all(b"r").unwrap();
        outputs.writer(OutputFile::Report).write_all(b"a").unwrap();
        outputs.writer(OutputFile::Report).write_all(b"b").unwrap();
        assert_eq!(outputs.into_texts(), ["ab", "", "", "r"]);
    }

    #[test]
    fn file_outputs_refuse_a_stage_that_holds_a_file_already() {
        let dir = std::env::temp_dir().join(format!("rehearse-outputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut outputs = FileOutputs::create(&dir).unwrap();
        outputs
            .writer(OutputFile::Events)
            .write_all(b"{}\n")
            .unwrap();
        outputs.finish().unwrap();
        assert_eq!(std::fs::read(dir.join("events.jsonl")).unwrap(), b"{}\n");
        assert_eq!(std::fs::read(dir.join("runs.jsonl")).unwrap(), b"");
        let again = FileOutputs::create(&dir).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
