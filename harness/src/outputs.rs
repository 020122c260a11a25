//! Where a run's output files go as the run goes: into memory for `check`,
//! `bless` and the other commands that compare or show them
//! ([`MemoryOutputs`]), or straight into the stage of an output set on disk
//! for `run` ([`FileOutputs`], see `atomic::StagedDir`), so a load scenario's
//! outputs are never held whole in memory.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

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
    /// Set once streams are taken.
    behind: Option<WriteBehind>,
}

/// How much of a file is buffered before it is written.
const BUFFER: usize = 1 << 20;

/// How much a stream writes before it asks for its file to be written to
/// disk behind it.
const WRITE_BEHIND: u64 = 8 << 20;

/// Writes the streamed files to disk behind the run, on a thread of its
/// own: each stream asks for its file's data to be synced (`fdatasync`)
/// every [`WRITE_BEHIND`] bytes. Otherwise the kernel keeps a load run's
/// pages in memory until the fsync that ends the run, which then waits for
/// all of them (a second for a 100k-trigger run's 600 MB here); this way
/// the disk writes while the run computes. Output bytes are unchanged.
// On that run, a sync every 32 MiB kept only two thirds of the gain of
// one every 8 MiB, and one every 2 MiB gained nothing more.
#[derive(Debug)]
struct WriteBehind {
    requests: Option<mpsc::Sender<usize>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl WriteBehind {
    /// Starts the thread that syncs `files` (by index) when asked.
    fn start(files: Vec<File>) -> io::Result<Self> {
        let (requests, asked) = mpsc::channel::<usize>();
        let thread = std::thread::Builder::new()
            .name("rehearse-sync".to_string())
            .spawn(move || {
                let mut first_error = None;
                while let Ok(index) = asked.recv() {
                    // Requests that came while the last sync ran are one.
                    let mut due = vec![false; files.len()];
                    due[index] = true;
                    while let Ok(index) = asked.try_recv() {
                        due[index] = true;
                    }
                    for (file, _) in files.iter().zip(due).filter(|(_, due)| *due) {
                        // A failed sync is reported when the outputs
                        // finish: the fsync there shares this handle's
                        // description, and may not see the error again.
                        if let Err(error) = file.sync_data() {
                            first_error.get_or_insert(error);
                        }
                    }
                }
                first_error.map_or(Ok(()), Err)
            })?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// A writer of `file` (the thread's file `index`) that asks for it to
    /// be synced as it goes.
    fn stream(&self, index: usize, file: File) -> Behind {
        Behind {
            file,
            unsynced: 0,
            every: WRITE_BEHIND,
            index,
            requests: self.requests.clone().expect("asked before the end"),
        }
    }

    /// Waits for the syncs asked for, once every stream is dropped; gives
    /// the first that failed.
    fn finish(mut self) -> io::Result<()> {
        self.requests = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(synced)) => synced,
            Some(Err(_)) => Err(io::Error::other("the sync thread panicked")),
            None => Ok(()),
        }
    }
}

/// A streamed file, asking for it to be synced every `every` bytes.
struct Behind {
    file: File,
    unsynced: u64,
    every: u64,
    index: usize,
    requests: mpsc::Sender<usize>,
}

impl Write for Behind {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.unsynced += written as u64;
        if self.unsynced >= self.every {
            self.unsynced = 0;
            // The thread is gone only once the outputs finish.
            let _ = self.requests.send(self.index);
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

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
        Ok(Self {
            files,
            behind: None,
        })
    }

    /// Writes out what is buffered and fsyncs every file: after this the
    /// set is on disk, ready to be put in place. Streams taken from these
    /// outputs must have been flushed and dropped before.
    pub fn finish(self) -> io::Result<()> {
        if let Some(behind) = self.behind {
            behind.finish()?;
        }
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
    /// (sharing their offsets), written to disk behind the run
    /// ([`WriteBehind`]): [`FileOutputs::finish`] fsyncs them.
    fn streams(&mut self) -> io::Result<Option<Streams>> {
        let handles = self
            .files
            .iter()
            .map(|file| file.get_ref().try_clone())
            .collect::<io::Result<Vec<_>>>()?;
        let behind = self.behind.insert(WriteBehind::start(handles)?);
        let files = &self.files;
        let stream = |file: OutputFile| -> io::Result<Box<dyn Write + Send>> {
            let handle = files[file.index()].get_ref().try_clone()?;
            let behind = behind.stream(file.index(), handle);
            Ok(Box::new(BufWriter::with_capacity(BUFFER, behind)))
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

    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rehearse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A stream asks for a sync each time another `every` bytes have gone
    /// to its file, and only then.
    #[test]
    fn a_stream_asks_for_a_sync_every_so_many_bytes() {
        let dir = scratch_dir("behind");
        let (requests, asked) = mpsc::channel();
        let mut stream = Behind {
            file: File::create(dir.join("f")).unwrap(),
            unsynced: 0,
            every: 10,
            index: 2,
            requests,
        };
        let mut asks = Vec::new();
        for chunk in [
            &b"1234"[..],
            b"56789",
            b"0",
            b"abcdefghijk",
            b"",
            b"123456789",
        ] {
            stream.write_all(chunk).unwrap();
            asks.push(asked.try_iter().collect::<Vec<_>>());
        }
        let none = Vec::<usize>::new();
        assert_eq!(
            asks,
            [
                none.clone(),
                none.clone(),
                vec![2],
                vec![2],
                none.clone(),
                none
            ]
        );
        drop(stream);
        assert_eq!(std::fs::read(dir.join("f")).unwrap().len(), 30);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Streamed files longer than a write-behind step are synced as they
    /// go and come out whole, after the file written directly.
    #[test]
    fn streamed_files_are_written_behind_and_whole() {
        let dir = scratch_dir("streams");
        let mut outputs = FileOutputs::create(&dir).unwrap();
        let mut streams = outputs.streams().unwrap().unwrap();
        let line = [b'x'; 4095];
        let lines = (WRITE_BEHIND as usize * 2) / line.len() + 1;
        for _ in 0..lines {
            streams.events.write_all(&line).unwrap();
            streams.events.write_all(b"\n").unwrap();
        }
        streams.runs.write_all(b"{}\n").unwrap();
        for stream in [&mut streams.events, &mut streams.capture, &mut streams.runs] {
            stream.flush().unwrap();
        }
        drop(streams);
        outputs.writer(OutputFile::Runs).write_all(b"[]\n").unwrap();
        outputs.finish().unwrap();
        let events = std::fs::read(dir.join("events.jsonl")).unwrap();
        assert_eq!(events.len(), lines * 4096);
        assert!(events
            .chunks(4096)
            .all(|chunk| chunk[..4095] == line && chunk[4095] == b'\n'));
        assert_eq!(std::fs::read(dir.join("runs.jsonl")).unwrap(), b"{}\n[]\n");
        std::fs::remove_dir_all(&dir).unwrap();
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
