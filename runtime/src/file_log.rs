//! The durable event log: every batch is appended to one checksummed JSON
//! Lines file, made durable before the append returns, and checked and
//! repaired when the log is opened again.
//!
//! All topics share one file, `events.jsonl`, in the log's directory. The
//! file order is then the global append order with nothing to merge, and a
//! batch that spans topics is a single write to a single file, so "all or
//! nothing" needs no protocol between files: a batch is whole exactly when
//! every record it promised is in the file. (A topic's log is a view of
//! this file: the topic is a field of every record.)
//!
//! Each line is one record: the format version `v`, the batch framing
//! (`batch_index` counting from 0 and `batch_len` on every record), the
//! stored event (`topic`, `id`, `kind`, `payload`, `headers`,
//! `occurred_at_ms`) and last `crc`, eight lowercase hex digits of the
//! CRC-32 (IEEE) of the record's bytes without the `crc` member. The first
//! record of a two-event batch:
//!
//! ```text
//! {"v":1,"batch_index":0,"batch_len":2,"topic":"demo.events","id":1,"kind":"demo.started","payload":{"work_key":"github:pr:462"},"headers":{"persona":"ada"},"occurred_at_ms":1777032000000,"crc":"a5ec0b67"}
//! ```
//!
//! Removing `,"crc":"a5ec0b67"` from that line gives exactly the bytes that
//! were checksummed, so a reader checks a record without re-serialising it.
//! CRC-32 is there to catch torn and damaged writes, not tampering;
//! `crc32fast` computes it with the CPU's carry-less multiply, many times
//! faster than parsing the JSON, so checking a large log costs about as much
//! as parsing it. Payload numbers read back bit for bit: the workspace builds
//! `serde_json` with `float_roundtrip`, without which some floats come back
//! one unit in the last place off after a restart.
//!
//! Opening a log reads it from the start. A process killed in the middle of
//! an append, or a machine that lost power before an fsync, leaves at most a
//! damaged final record and an unfinished final batch: both are cut off (the
//! file is truncated) and reported in [`Recovery`], so the log always holds a
//! prefix of whole batches. Damage anywhere before the final record cannot
//! come from an interrupted append; opening refuses it with the file, the
//! line and the reason, and nothing is ever skipped. A power loss on a file
//! system that writes the pages of an unsynced batch out of order can damage
//! more than the final line; that too is refused rather than guessed at.
//!
//! One process writes a log at a time; nothing here locks the file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::log::{EventLog, LogError, LogEvent, MemoryLog, Reopened, StoredEvent, Topic};

/// The name of the log file inside the log's directory.
pub const LOG_FILE_NAME: &str = "events.jsonl";

/// The record format this module writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The longest record, newline included, that is written or read. The bound
/// keeps a reader's memory independent of the file, whatever it contains.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// The member every record ends with, before its eight hex digits and `"}`.
const CRC_MEMBER: &[u8] = b",\"crc\":\"";

/// The length of `,"crc":"xxxxxxxx"}` at the end of every record.
const CRC_SUFFIX_LEN: usize = CRC_MEMBER.len() + 8 + 2;

/// The read buffer size: large enough that a verifier makes few syscalls.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// When the log forces appended bytes to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fsync` after every batch, before `append_batch` returns: a batch
    /// that was acknowledged survives a power loss.
    #[default]
    Always,
    /// Never `fsync`: a batch that was acknowledged survives the death of
    /// the process (it is in the OS page cache) but maybe not a power loss.
    /// For benchmarks and throwaway logs.
    Never,
}

/// How a [`FileLog`] is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileLogOptions {
    pub fsync: FsyncPolicy,
}

/// What is wrong with one record of the log file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordFault {
    #[error("partial record without a newline")]
    PartialLine,
    #[error("record longer than the limit of {MAX_RECORD_BYTES} bytes")]
    TooLong,
    #[error("missing checksum: expected the record to end with `,\"crc\":\"<8 lowercase hex digits>\"}}`")]
    MissingChecksum,
    #[error("checksum mismatch")]
    ChecksumMismatch,
    #[error("not a record: {0}")]
    Unparsable(String),
    #[error("unsupported format version {found}, expected {FORMAT_VERSION}")]
    Version { found: u32 },
    #[error("event {id} of topic `{topic}` is out of sequence: expected id {expected}")]
    OutOfSequence {
        topic: String,
        id: u64,
        expected: u64,
    },
    #[error("broken batch framing: a batch starts with batch_index 0 and a batch_len of at least 1, found batch_index {index} of batch_len {len}")]
    BatchStart { index: u64, len: u64 },
    #[error("broken batch framing: expected batch_index {expected_index} of batch_len {expected_len}, found batch_index {index} of batch_len {len}")]
    BatchContinuation {
        expected_index: u64,
        expected_len: u64,
        index: u64,
        len: u64,
    },
    #[error("incomplete batch: {records} of {batch_len} records")]
    IncompleteBatch { records: u64, batch_len: u64 },
}

impl RecordFault {
    /// Whether an interrupted write can leave this fault: it is repaired when
    /// it is the final record and refused anywhere else. A torn write leaves
    /// a line without its newline, or bytes that do not end in a matching
    /// checksum (and so do not parse as a record either). A record whose
    /// checksum holds was written whole, so what is wrong with it (syntax,
    /// version, sequence, framing) is corruption wherever it sits.
    fn is_torn(&self) -> bool {
        matches!(
            self,
            Self::PartialLine | Self::MissingChecksum | Self::ChecksumMismatch
        )
    }
}

/// Why a file log could not be opened, read or verified.
#[derive(Debug, thiserror::Error)]
pub enum FileLogError {
    #[error("failed to open event log at `{}`: directory does not exist", .dir.display())]
    MissingDir { dir: PathBuf },
    #[error("failed to open event log at `{}`: not a directory", .dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("failed to open event log at `{}`: {source}", .path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("failed to read event log at `{}`: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("failed to cut the damaged tail of event log at `{}`: {source}", .path.display())]
    Repair { path: PathBuf, source: io::Error },
    #[error("corrupt record at `{}` line {line}: {fault}", .path.display())]
    Corrupt {
        path: PathBuf,
        line: u64,
        fault: RecordFault,
    },
}

/// What opening a log found: what it holds and what was cut off its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The log file.
    pub path: PathBuf,
    /// Events kept, over all topics.
    pub events: u64,
    /// Whole batches kept.
    pub batches: u64,
    /// Bytes kept: the file's length after recovery.
    pub bytes: u64,
    /// The damaged or unfinished tail that was cut off, if any.
    pub cut: Option<TailCut>,
}

/// A tail of the log file removed on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCut {
    /// The first line removed (1-based): the start of the unfinished batch,
    /// or the damaged record when it began a batch.
    pub first_line: u64,
    /// Lines removed, a final partial line included.
    pub lines: u64,
    /// Bytes removed.
    pub bytes: u64,
    /// Whole, valid records removed because their batch was unfinished.
    pub dropped_events: u64,
    /// What was wrong with the end of the file.
    pub fault: RecordFault,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event log at `{}` holds {} events in {} batches",
            self.path.display(),
            self.events,
            self.batches
        )?;
        match &self.cut {
            None => Ok(()),
            Some(cut) => write!(
                f,
                "; cut the last {} bytes, from line {}: {}; dropped {} whole events of the unfinished batch",
                cut.bytes, cut.first_line, cut.fault, cut.dropped_events
            ),
        }
    }
}

/// What [`verify_file`] counted in a log file that is whole and consistent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifySummary {
    pub events: u64,
    pub batches: u64,
    pub topics: u64,
    pub bytes: u64,
}

impl fmt::Display for VerifySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} events in {} batches on {} topics, {} bytes",
            self.events, self.batches, self.topics, self.bytes
        )
    }
}

/// Refuses a log directory that is missing or is not a directory.
fn check_log_dir(dir: &Path) -> Result<(), FileLogError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(FileLogError::NotADirectory { dir: dir.into() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(FileLogError::MissingDir { dir: dir.into() })
        }
        Err(source) => Err(FileLogError::Open {
            path: dir.into(),
            source,
        }),
    }
}

/// Opens the log file at `path` for reading and appending, creating it
/// when there is none.
fn open_or_create(dir: &Path, path: &Path, options: FileLogOptions) -> Result<File, FileLogError> {
    let open_err = |source| FileLogError::Open {
        path: path.to_path_buf(),
        source,
    };
    match OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => {
            // The new file's directory entry must be durable too, or a
            // power loss could lose the file with every batch in it.
            if options.fsync == FsyncPolicy::Always {
                sync_dir(dir).map_err(open_err)?;
            }
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(open_err),
        Err(source) => Err(open_err(source)),
    }
}

/// Cuts the log file back to its first `len_bytes` (the end of the last
/// whole batch), durably as the policy asks.
fn cut_to(
    file: &File,
    path: &Path,
    len_bytes: u64,
    options: FileLogOptions,
) -> Result<(), FileLogError> {
    let repair_err = |source| FileLogError::Repair {
        path: path.to_path_buf(),
        source,
    };
    file.set_len(len_bytes).map_err(repair_err)?;
    if options.fsync == FsyncPolicy::Always {
        file.sync_all().map_err(repair_err)?;
    }
    Ok(())
}

/// The path of the log file inside `dir`.
pub fn log_path(dir: impl AsRef<Path>) -> PathBuf {
    dir.as_ref().join(LOG_FILE_NAME)
}

/// The durable backend: an append-only file plus a [`MemoryLog`] that
/// serves every read.
#[derive(Debug)]
pub struct FileLog {
    path: PathBuf,
    file: File,
    memory: MemoryLog,
    /// The file's length: the end of the last whole batch.
    len_bytes: u64,
    options: FileLogOptions,
    /// Set when a failed append could not be rolled back: the file may end
    /// in a partial batch, so nothing more may be appended after it.
    poisoned: Option<String>,
}

impl FileLog {
    /// Opens the log in the existing directory `dir`, creating its file when
    /// there is none, and recovers it: reads every record back, cuts off a
    /// damaged final record and an unfinished final batch, and refuses
    /// damage anywhere else.
    pub fn open(
        dir: impl AsRef<Path>,
        options: FileLogOptions,
    ) -> Result<(Self, Recovery), FileLogError> {
        let dir = dir.as_ref();
        check_log_dir(dir)?;
        let path = log_path(dir);
        let file = open_or_create(dir, &path, options)?;
        let len_on_disk = file
            .metadata()
            .map_err(|source| FileLogError::Read {
                path: path.clone(),
                source,
            })?
            .len();
        let (mut memory, kept, cut) = recover(&path, &file, len_on_disk)?;
        if cut.is_some() {
            cut_to(&file, &path, kept.bytes, options)?;
            memory.truncate(usize::try_from(kept.events).expect("events held in memory fit usize"));
        }
        let recovery = Recovery {
            path: path.clone(),
            events: kept.events,
            batches: kept.batches,
            bytes: kept.bytes,
            cut,
        };
        let log = Self {
            path,
            file,
            memory,
            len_bytes: kept.bytes,
            options,
            poisoned: None,
        };
        Ok((log, recovery))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The in-memory copy that serves reads.
    pub fn memory(&self) -> &MemoryLog {
        &self.memory
    }

    /// Writes `bytes` with one `write_all`, then makes them durable as the
    /// policy asks.
    fn write_durably(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.flush()?;
        if self.options.fsync == FsyncPolicy::Always {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Stamps `batch` and makes it durable in the file, returning the stored
    /// events for the caller to keep in memory.
    fn write_batch(&mut self, batch: Vec<(Topic, LogEvent)>) -> Result<Vec<StoredEvent>, LogError> {
        if let Some(reason) = &self.poisoned {
            return Err(LogError::Poisoned {
                path: self.path.clone(),
                reason: reason.clone(),
            });
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let stored = self.memory.stamp(batch);
        let batch_len = stored.len() as u64;
        let mut bytes = Vec::with_capacity(256 * stored.len());
        for (index, event) in (0u64..).zip(&stored) {
            encode_record(&mut bytes, event, index, batch_len).map_err(|reason| {
                LogError::Append {
                    path: self.path.clone(),
                    reason: reason.to_string(),
                }
            })?;
        }
        if let Err(e) = self.write_durably(&bytes) {
            self.roll_back();
            return Err(LogError::Append {
                path: self.path.clone(),
                reason: e.to_string(),
            });
        }
        self.len_bytes += bytes.len() as u64;
        Ok(stored)
    }

    /// Cuts whatever part of a failed batch reached the file, so the file
    /// still ends with a whole batch; when even that fails the log refuses
    /// every later append.
    fn roll_back(&mut self) {
        let result = self.file.set_len(self.len_bytes).and_then(|()| {
            if self.options.fsync == FsyncPolicy::Always {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            self.poisoned = Some(format!(
                "could not cut a failed batch off the end of the file: {e}"
            ));
        }
    }
}

impl EventLog for FileLog {
    fn is_durable(&self) -> bool {
        true
    }

    fn append_batch(
        &mut self,
        batch: Vec<(Topic, LogEvent)>,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let stored = self.write_batch(batch)?;
        for event in &stored {
            self.memory.push(event.clone());
        }
        Ok(stored)
    }

    fn append(&mut self, batch: Vec<(Topic, LogEvent)>) -> Result<(), LogError> {
        for event in self.write_batch(batch)? {
            self.memory.push(event);
        }
        Ok(())
    }

    fn read_range(&self, topic: &Topic, after: u64, limit: usize) -> Vec<StoredEvent> {
        self.memory.read_range(topic, after, limit)
    }

    fn all(&self) -> &[StoredEvent] {
        self.memory.all()
    }

    fn latest_id(&self, topic: &Topic) -> u64 {
        self.memory.latest_id(topic)
    }

    /// Forgets the in-memory copy and reads the file back, recovering a torn
    /// tail as [`FileLog::open`] does; first cuts `torn_tail_bytes` off the
    /// end, as an append killed part-way would leave it.
    fn reopen(&mut self, torn_tail_bytes: Option<u64>) -> Result<Reopened, LogError> {
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let failed = |e: &dyn std::fmt::Display| LogError::ReopenFile {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let cut_bytes = match torn_tail_bytes {
            Some(bytes) if bytes > 0 => cut_tail(&dir, bytes).map_err(|e| failed(&e))?,
            _ => 0,
        };
        let (log, recovery) = FileLog::open(&dir, self.options).map_err(|e| failed(&e))?;
        *self = log;
        Ok(Reopened {
            cut_bytes,
            dropped_bytes: recovery.cut.as_ref().map_or(0, |cut| cut.bytes),
            dropped_events: recovery.cut.as_ref().map_or(0, |cut| cut.dropped_events),
            events: recovery.events,
        })
    }
}

/// Removes the last `bytes` bytes of the log file in `dir` (all of it when
/// it is shorter) and returns how many bytes were removed. This is the
/// scenario step `restart: {torn_tail_bytes: N}`: it leaves the file as an
/// append killed part-way would.
pub fn cut_tail(dir: impl AsRef<Path>, bytes: u64) -> io::Result<u64> {
    let path = log_path(dir);
    let name = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("failed to cut the tail of `{}`: {e}", path.display()),
        )
    };
    let file = OpenOptions::new().write(true).open(&path).map_err(name)?;
    let len = file.metadata().map_err(name)?.len();
    let cut = bytes.min(len);
    file.set_len(len - cut).map_err(name)?;
    file.sync_all().map_err(name)?;
    Ok(cut)
}

/// Reads the log file at `path` line by line and checks every record's
/// checksum, format version, batch framing and per-topic id sequence. Memory
/// stays bounded by one record and the number of topics, whatever the size
/// of the file. Unlike [`FileLog::open`], nothing is repaired: a damaged
/// final record or an unfinished final batch is an error too.
pub fn verify_file(path: impl AsRef<Path>) -> Result<VerifySummary, FileLogError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| FileLogError::Open {
        path: path.into(),
        source,
    })?;
    let corrupt = |line, fault| FileLogError::Corrupt {
        path: path.into(),
        line,
        fault,
    };
    let mut lines = Lines::new(BufReader::with_capacity(READ_BUFFER_BYTES, file));
    let mut next_ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut framing = Framing::default();
    let mut summary = VerifySummary::default();
    while let Some(line) = lines.next_line().map_err(|source| FileLogError::Read {
        path: path.into(),
        source,
    })? {
        let checked = match line.fault {
            Some(fault) => Err(fault),
            None => check_head(lines.text(), line.number, &mut next_ids, &mut framing),
        };
        let batch_done = checked.map_err(|fault| corrupt(line.number, fault))?;
        summary.events += 1;
        summary.batches += u64::from(batch_done);
        summary.bytes = line.end;
    }
    if let Some(open) = framing.open {
        return Err(corrupt(
            open.first_line,
            RecordFault::IncompleteBatch {
                records: open.next_index,
                batch_len: open.len,
            },
        ));
    }
    summary.topics = next_ids.len() as u64;
    Ok(summary)
}

/// Fsyncs a directory, making the entries created in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    // Other systems have no way to open a directory for syncing; their file
    // systems make a new entry durable with the file.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A record as written: the stored event between its framing and checksum.
#[derive(Serialize)]
struct RecordOut<'a> {
    v: u32,
    batch_index: u64,
    batch_len: u64,
    topic: &'a Topic,
    id: u64,
    kind: &'a str,
    payload: &'a serde_json::Value,
    headers: &'a BTreeMap<String, String>,
    occurred_at_ms: i64,
}

/// Appends the line of `event`, newline included, to `out`.
fn encode_record(
    out: &mut Vec<u8>,
    event: &StoredEvent,
    batch_index: u64,
    batch_len: u64,
) -> Result<(), EncodeError> {
    let start = out.len();
    let record = RecordOut {
        v: FORMAT_VERSION,
        batch_index,
        batch_len,
        topic: &event.topic,
        id: event.id,
        kind: &event.kind,
        payload: &event.payload,
        headers: &event.headers,
        occurred_at_ms: event.occurred_at_ms,
    };
    serde_json::to_writer(&mut *out, &record).map_err(EncodeError::Json)?;
    let crc = crc32fast::hash(&out[start..]);
    // The object's closing brace makes way for the checksum member.
    assert_eq!(out.pop(), Some(b'}'), "a record serialises as an object");
    out.extend_from_slice(CRC_MEMBER);
    write!(out, "{crc:08x}\"}}").expect("writing to a Vec cannot fail");
    out.push(b'\n');
    let len = out.len() - start;
    if len > MAX_RECORD_BYTES {
        out.truncate(start);
        return Err(EncodeError::TooLarge {
            id: event.id,
            topic: event.topic.clone(),
            len,
        });
    }
    Ok(())
}

/// Why an event could not become a record line.
#[derive(Debug, thiserror::Error)]
enum EncodeError {
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("event {id} of topic `{topic}` needs {len} bytes, over the record limit of {MAX_RECORD_BYTES} bytes")]
    TooLarge { id: u64, topic: Topic, len: usize },
}

/// Checks the `crc` member at the end of `line` (newline removed) against
/// the rest of the record.
fn check_checksum(line: &[u8]) -> Result<(), RecordFault> {
    let Some(body_len) = line.len().checked_sub(CRC_SUFFIX_LEN) else {
        return Err(RecordFault::MissingChecksum);
    };
    let (body, suffix) = line.split_at(body_len);
    let (member, rest) = suffix.split_at(CRC_MEMBER.len());
    let (digits, close) = rest.split_at(8);
    if member != CRC_MEMBER || close != b"\"}" {
        return Err(RecordFault::MissingChecksum);
    }
    let stored = parse_hex_u32(digits).ok_or(RecordFault::MissingChecksum)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(body);
    hasher.update(b"}");
    if hasher.finalize() == stored {
        Ok(())
    } else {
        Err(RecordFault::ChecksumMismatch)
    }
}

/// Parses eight lowercase hex digits, the only spelling the writer uses.
fn parse_hex_u32(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u32::from(nibble))
    })
}

/// A record as read back in full, for [`FileLog::open`].
#[derive(Deserialize)]
struct RecordIn {
    v: u32,
    batch_index: u64,
    batch_len: u64,
    topic: Topic,
    id: u64,
    kind: String,
    payload: serde_json::Value,
    headers: BTreeMap<String, String>,
    occurred_at_ms: i64,
}

/// A record read only as far as [`verify_file`] needs: the framing and the
/// topic id are kept, the rest is type-checked without being allocated.
#[derive(Deserialize)]
struct RecordHead<'a> {
    v: u32,
    batch_index: u64,
    batch_len: u64,
    #[serde(borrow)]
    topic: Cow<'a, str>,
    id: u64,
    #[expect(dead_code, reason = "the field is read only to type-check it")]
    kind: StrCheck,
    #[expect(dead_code, reason = "the field is read only to check its syntax")]
    payload: IgnoredAny,
    #[expect(dead_code, reason = "the field is read only to type-check it")]
    headers: StrMapCheck,
    #[expect(dead_code, reason = "the field is read only to type-check it")]
    occurred_at_ms: i64,
}

/// A string, checked and discarded.
struct StrCheck;

impl<'de> Deserialize<'de> for StrCheck {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl Visitor<'_> for StrVisitor {
            type Value = StrCheck;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<StrCheck, E> {
                Ok(StrCheck)
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// A map of strings to strings, checked and discarded.
struct StrMapCheck;

impl<'de> Deserialize<'de> for StrMapCheck {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StrMapCheck;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrMapCheck, A::Error> {
                while map.next_entry::<StrCheck, StrCheck>()?.is_some() {}
                Ok(StrMapCheck)
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

/// Checks the version, framing and id of a record [`verify_file`] read,
/// returning whether it completed its batch.
fn check_head(
    text: &[u8],
    line: u64,
    next_ids: &mut BTreeMap<String, u64>,
    framing: &mut Framing,
) -> Result<bool, RecordFault> {
    check_checksum(text)?;
    let head: RecordHead<'_> =
        serde_json::from_slice(text).map_err(|e| RecordFault::Unparsable(e.to_string()))?;
    check_version(head.v)?;
    let batch_done = framing.accept(head.batch_index, head.batch_len, line)?;
    let expected = match next_ids.get_mut(head.topic.as_ref()) {
        Some(next) => next,
        None => {
            let topic = Topic::new(head.topic.as_ref())
                .map_err(|e| RecordFault::Unparsable(e.to_string()))?;
            next_ids.entry(topic.as_str().to_owned()).or_insert(1)
        }
    };
    if head.id != *expected {
        return Err(RecordFault::OutOfSequence {
            topic: head.topic.into_owned(),
            id: head.id,
            expected: *expected,
        });
    }
    *expected += 1;
    Ok(batch_done)
}

fn check_version(found: u32) -> Result<(), RecordFault> {
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(RecordFault::Version { found })
    }
}

/// The batch framing state between records.
#[derive(Debug, Default)]
struct Framing {
    open: Option<OpenBatch>,
}

/// A batch whose first records were read and whose last was not yet.
#[derive(Debug)]
struct OpenBatch {
    len: u64,
    next_index: u64,
    first_line: u64,
}

impl Framing {
    /// Takes the framing of the record on `line`, returning whether it
    /// completed its batch.
    fn accept(&mut self, index: u64, len: u64, line: u64) -> Result<bool, RecordFault> {
        let first_line = match &self.open {
            None if index == 0 && len > 0 => line,
            None => return Err(RecordFault::BatchStart { index, len }),
            Some(open) if index == open.next_index && len == open.len => open.first_line,
            Some(open) => {
                return Err(RecordFault::BatchContinuation {
                    expected_index: open.next_index,
                    expected_len: open.len,
                    index,
                    len,
                })
            }
        };
        let next_index = index + 1;
        if next_index == len {
            self.open = None;
            Ok(true)
        } else {
            self.open = Some(OpenBatch {
                len,
                next_index,
                first_line,
            });
            Ok(false)
        }
    }
}

/// Where a line sits in the file and whether it could be read whole.
#[derive(Debug)]
struct LineInfo {
    /// 1-based.
    number: u64,
    /// The byte offset just past the line (its newline included).
    end: u64,
    /// Set when the line is partial or too long; its text is then not a
    /// record.
    fault: Option<RecordFault>,
}

/// A reader of the log file's lines into one reused buffer.
struct Lines<R> {
    reader: R,
    text: Vec<u8>,
    number: u64,
    offset: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            text: Vec::new(),
            number: 0,
            offset: 0,
        }
    }

    /// Reads the next line; its text, without the newline, is then
    /// [`Lines::text`]. `None` at the end of the file.
    fn next_line(&mut self) -> io::Result<Option<LineInfo>> {
        self.text.clear();
        let limit = MAX_RECORD_BYTES as u64;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.text)?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        self.offset += read as u64;
        let fault = if self.text.last() == Some(&b'\n') {
            self.text.pop();
            None
        } else if read as u64 == limit {
            Some(RecordFault::TooLong)
        } else {
            Some(RecordFault::PartialLine)
        };
        Ok(Some(LineInfo {
            number: self.number,
            end: self.offset,
            fault,
        }))
    }

    /// The text of the line last read.
    fn text(&self) -> &[u8] {
        &self.text
    }

    /// Whether nothing follows the line last read.
    fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.reader.fill_buf()?.is_empty())
    }
}

/// The part of the file that holds whole batches.
#[derive(Debug, Default)]
struct Kept {
    bytes: u64,
    events: u64,
    batches: u64,
    lines: u64,
}

/// Reads the whole file into memory, returning the events read, where the
/// last whole batch ends and what must be cut after it.
fn recover(
    path: &Path,
    file: &File,
    len_on_disk: u64,
) -> Result<(MemoryLog, Kept, Option<TailCut>), FileLogError> {
    let read_err = |source| FileLogError::Read {
        path: path.into(),
        source,
    };
    let corrupt = |line, fault| FileLogError::Corrupt {
        path: path.into(),
        line,
        fault,
    };
    let mut lines = Lines::new(BufReader::with_capacity(READ_BUFFER_BYTES, file));
    let mut memory = MemoryLog::new();
    let mut framing = Framing::default();
    let mut kept = Kept::default();
    let mut tail_fault = None;
    while let Some(line) = lines.next_line().map_err(read_err)? {
        let decoded = match line.fault {
            Some(fault) => Err(fault),
            None => decode_record(lines.text()),
        };
        let record = match decoded {
            Ok(record) => record,
            Err(fault) if fault.is_torn() && lines.at_end().map_err(read_err)? => {
                tail_fault = Some(fault);
                break;
            }
            Err(fault) => return Err(corrupt(line.number, fault)),
        };
        let batch_done = check_record(&record, &mut framing, &memory, line.number)
            .map_err(|fault| corrupt(line.number, fault))?;
        let event = LogEvent {
            kind: record.kind.into(),
            payload: record.payload.into(),
            headers: record.headers.into(),
            occurred_at_ms: record.occurred_at_ms,
        };
        memory.push(StoredEvent::new(record.topic, record.id, event));
        if batch_done {
            kept = Kept {
                bytes: line.end,
                events: memory.len(),
                batches: kept.batches + 1,
                lines: line.number,
            };
        }
    }
    let cut = tail_cut(tail_fault, &framing, &kept, &lines, &memory, len_on_disk);
    Ok((memory, kept, cut))
}

/// Checks a record against what came before it: its format version, its
/// place in the batch framing and its id, the next of its topic. Returns
/// whether it completed its batch.
fn check_record(
    record: &RecordIn,
    framing: &mut Framing,
    memory: &MemoryLog,
    line: u64,
) -> Result<bool, RecordFault> {
    check_version(record.v)?;
    let done = framing.accept(record.batch_index, record.batch_len, line)?;
    let expected = memory.latest_id(&record.topic) + 1;
    if record.id == expected {
        Ok(done)
    } else {
        Err(RecordFault::OutOfSequence {
            topic: record.topic.to_string(),
            id: record.id,
            expected,
        })
    }
}

/// What must be cut after the last whole batch: the lines from the torn
/// final record (`tail_fault`) or the unfinished final batch, if any.
fn tail_cut<R>(
    tail_fault: Option<RecordFault>,
    framing: &Framing,
    kept: &Kept,
    lines: &Lines<R>,
    memory: &MemoryLog,
    len_on_disk: u64,
) -> Option<TailCut> {
    let fault = tail_fault.or_else(|| {
        framing
            .open
            .as_ref()
            .map(|open| RecordFault::IncompleteBatch {
                records: open.next_index,
                batch_len: open.len,
            })
    })?;
    Some(TailCut {
        first_line: kept.lines + 1,
        lines: lines.number - kept.lines,
        bytes: len_on_disk - kept.bytes,
        dropped_events: memory.len() - kept.events,
        fault,
    })
}

/// Checks the checksum of `text` and parses it as a whole record.
fn decode_record(text: &[u8]) -> Result<RecordIn, RecordFault> {
    check_checksum(text)?;
    serde_json::from_slice(text).map_err(|e| RecordFault::Unparsable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("rehearse-file-log-{test}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn log(&self) -> PathBuf {
            log_path(&self.0)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn topic(name: &str) -> Topic {
        Topic::new(name).unwrap()
    }

    fn event(kind: &str, payload: serde_json::Value) -> LogEvent {
        LogEvent {
            kind: kind.to_string().into(),
            payload: payload.into(),
            headers: BTreeMap::new().into(),
            occurred_at_ms: 0,
        }
    }

    fn open(dir: &TempDir) -> (FileLog, Recovery) {
        FileLog::open(&dir.0, FileLogOptions::default()).unwrap()
    }

    fn open_err(dir: &TempDir) -> String {
        FileLog::open(&dir.0, FileLogOptions::default())
            .unwrap_err()
            .to_string()
    }

    /// Appends `sizes.len()` batches, batch `b` holding `sizes[b]` events
    /// alternating between topics `a` and `b`.
    fn append_batches(log: &mut FileLog, sizes: &[usize]) {
        for (b, &size) in sizes.iter().enumerate() {
            let batch = (0..size)
                .map(|i| {
                    let name = if i % 2 == 0 { "a" } else { "b" };
                    (topic(name), event("k", json!({"batch": b, "index": i})))
                })
                .collect();
            log.append_batch(batch).unwrap();
        }
    }

    /// The file's lines, each with its newline.
    fn lines(dir: &TempDir) -> Vec<Vec<u8>> {
        fs::read(dir.log())
            .unwrap()
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn write_lines(dir: &TempDir, lines: &[Vec<u8>]) {
        fs::write(dir.log(), lines.concat()).unwrap();
    }

    /// `body` (a JSON object) sealed with its checksum member and newline.
    fn sealed(body: &str) -> Vec<u8> {
        let crc = crc32fast::hash(body.as_bytes());
        let open = body.strip_suffix('}').unwrap();
        format!("{open},\"crc\":\"{crc:08x}\"}}\n").into_bytes()
    }

    fn record(index: u64, len: u64, topic: &str, id: u64) -> String {
        format!(
            r#"{{"v":1,"batch_index":{index},"batch_len":{len},"topic":"{topic}","id":{id},"kind":"k","payload":{{}},"headers":{{}},"occurred_at_ms":0}}"#
        )
    }

    fn file_len(dir: &TempDir) -> u64 {
        fs::metadata(dir.log()).unwrap().len()
    }

    #[test]
    fn round_trip_writes_the_documented_format_and_reads_it_back() {
        let dir = TempDir::new("round-trip");
        let (mut log, recovery) = open(&dir);
        assert_eq!(
            recovery,
            Recovery {
                path: dir.log(),
                events: 0,
                batches: 0,
                bytes: 0,
                cut: None
            }
        );
        let mut first = event("k1", json!({"n": 1, "cost": 0.1}));
        first.headers.insert("persona".into(), "ada".into());
        first.occurred_at_ms = 1_700_000_000_000;
        let stored = log
            .append_batch(vec![
                (topic("a"), first),
                (topic("b"), event("k2", json!(null))),
            ])
            .unwrap();
        assert_eq!(stored.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 1]);
        log.append_batch(vec![(topic("a"), event("k3", json!([1, "x"])))])
            .unwrap();
        assert_eq!(log.latest_id(&topic("a")), 2);
        let kinds: Vec<_> = log
            .read_range(&topic("a"), 0, 10)
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["k1", "k3"]);

        let body = r#"{"v":1,"batch_index":0,"batch_len":2,"topic":"a","id":1,"kind":"k1","payload":{"cost":0.1,"n":1},"headers":{"persona":"ada"},"occurred_at_ms":1700000000000}"#;
        let lines = lines(&dir);
        assert_eq!(lines.len(), 3);
        assert_eq!(
            String::from_utf8(lines[0].clone()).unwrap(),
            String::from_utf8(sealed(body)).unwrap()
        );

        let before = log.all().to_vec();
        drop(log);
        let (log, recovery) = open(&dir);
        assert_eq!(log.all(), before.as_slice());
        assert_eq!(
            recovery,
            Recovery {
                path: dir.log(),
                events: 3,
                batches: 2,
                bytes: file_len(&dir),
                cut: None
            }
        );
        assert_eq!(
            recovery.to_string(),
            format!(
                "event log at `{}` holds 3 events in 2 batches",
                dir.log().display()
            )
        );
    }

    #[test]
    fn the_module_doc_example_is_what_the_writer_writes() {
        let event = LogEvent {
            kind: "demo.started".into(),
            payload: json!({"work_key": "github:pr:462"}).into(),
            headers: BTreeMap::from([("persona".into(), "ada".into())]).into(),
            occurred_at_ms: 1_777_032_000_000,
        };
        let event = StoredEvent::new(topic("demo.events"), 1, event);
        let mut line = Vec::new();
        encode_record(&mut line, &event, 0, 2).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            concat!(
                r#"{"v":1,"batch_index":0,"batch_len":2,"topic":"demo.events","id":1,"#,
                r#""kind":"demo.started","payload":{"work_key":"github:pr:462"},"#,
                r#""headers":{"persona":"ada"},"occurred_at_ms":1777032000000,"crc":"a5ec0b67"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn reopened_log_continues_every_topic_sequence() {
        let dir = TempDir::new("reopen");
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[3]);
        drop(log);
        let (mut log, _) = open(&dir);
        let stored = log
            .append_batch(vec![
                (topic("b"), event("x", json!({}))),
                (topic("a"), event("y", json!({}))),
                (topic("c"), event("z", json!({}))),
            ])
            .unwrap();
        let ids: Vec<_> = stored.iter().map(|e| (e.topic.to_string(), e.id)).collect();
        assert_eq!(
            ids,
            [("b".into(), 2), ("a".into(), 3), ("c".into(), 1)] as [(String, u64); 3]
        );
        let before = log.all().to_vec();
        drop(log);
        let (log, recovery) = open(&dir);
        assert_eq!(log.all(), before.as_slice());
        assert_eq!((recovery.events, recovery.batches), (6, 2));
    }

    #[test]
    fn floats_survive_a_reopen_bit_for_bit() {
        let dir = TempDir::new("floats");
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut floats = vec![0.1, 0.1 + 0.2, 1e-300, 5e-324, f64::MAX, -2.5e-8];
        while floats.len() < 2_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let x = f64::from_bits(state ^ (state >> 29));
            if x.is_finite() {
                floats.push(x);
            }
        }
        let (mut log, _) = open(&dir);
        log.append_batch(vec![(topic("a"), event("f", json!(floats)))])
            .unwrap();
        drop(log);
        let (log, _) = open(&dir);
        let read: Vec<f64> = log.all()[0].payload.decode().unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&read), bits(&floats));
    }

    #[test]
    fn torn_partial_final_line_is_cut_with_its_byte_count() {
        let dir = TempDir::new("torn-partial");
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[1, 2, 1]);
        let kept = log.all()[..3].to_vec();
        drop(log);
        let last_len = lines(&dir)[3].len() as u64;
        assert_eq!(cut_tail(&dir.0, 10).unwrap(), 10);
        let (log, recovery) = open(&dir);
        assert_eq!(log.all(), kept.as_slice());
        assert_eq!(
            recovery.cut,
            Some(TailCut {
                first_line: 4,
                lines: 1,
                bytes: last_len - 10,
                dropped_events: 0,
                fault: RecordFault::PartialLine
            })
        );
        assert_eq!((recovery.events, recovery.batches), (3, 2));
        assert_eq!(recovery.bytes, file_len(&dir));
        assert_eq!(
            recovery.to_string(),
            format!(
                "event log at `{}` holds 3 events in 2 batches; cut the last {} bytes, from line 4: partial record without a newline; dropped 0 whole events of the unfinished batch",
                dir.log().display(),
                last_len - 10
            )
        );
        drop(log);
        assert_eq!(open(&dir).1.cut, None);
    }

    #[test]
    fn final_line_failing_its_checksum_is_cut() {
        let dir = TempDir::new("torn-checksum");
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[2, 1]);
        drop(log);
        let mut lines = lines(&dir);
        let last = lines.last_mut().unwrap();
        let digit = last.iter().position(|&b| b == b'"').unwrap() + 1;
        last[digit] = b'w';
        let last_len = last.len() as u64;
        write_lines(&dir, &lines);
        let (log, recovery) = open(&dir);
        assert_eq!(log.len(), 2);
        assert_eq!(
            recovery.cut,
            Some(TailCut {
                first_line: 3,
                lines: 1,
                bytes: last_len,
                dropped_events: 0,
                fault: RecordFault::ChecksumMismatch
            })
        );
        assert_eq!(file_len(&dir), recovery.bytes);
    }

    #[test]
    fn incomplete_final_batch_is_cut_with_its_whole_records() {
        let dir = TempDir::new("incomplete-batch");
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[1, 3]);
        drop(log);
        let lines = lines(&dir);
        write_lines(&dir, &lines[..3]);
        let (log, recovery) = open(&dir);
        assert_eq!(log.len(), 1);
        assert_eq!(log.latest_id(&topic("b")), 0);
        assert_eq!(
            recovery.cut,
            Some(TailCut {
                first_line: 2,
                lines: 2,
                bytes: (lines[1].len() + lines[2].len()) as u64,
                dropped_events: 2,
                fault: RecordFault::IncompleteBatch {
                    records: 2,
                    batch_len: 3
                }
            })
        );
        assert_eq!(fs::read(dir.log()).unwrap(), lines[0]);
    }

    #[test]
    fn torn_line_inside_a_batch_cuts_the_whole_batch() {
        let dir = TempDir::new("torn-in-batch");
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[1, 3]);
        drop(log);
        let lines = lines(&dir);
        cut_tail(&dir.0, 5).unwrap();
        let (log, recovery) = open(&dir);
        assert_eq!(log.len(), 1);
        assert_eq!(
            recovery.cut,
            Some(TailCut {
                first_line: 2,
                lines: 3,
                bytes: (lines[1].len() + lines[2].len() + lines[3].len() - 5) as u64,
                dropped_events: 2,
                fault: RecordFault::PartialLine
            })
        );
        drop(log);
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[1]);
        assert_eq!(log.all()[1].id, 2);
    }

    #[test]
    fn corrupt_middle_line_refuses_to_open_and_leaves_the_file() {
        let dir = TempDir::new("corrupt-middle");
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[1, 1, 1, 1]);
        drop(log);
        let mut lines = lines(&dir);
        lines[1][10] ^= 0x01;
        write_lines(&dir, &lines);
        let expected = format!(
            "corrupt record at `{}` line 2: checksum mismatch",
            dir.log().display()
        );
        assert_eq!(open_err(&dir), expected);
        assert_eq!(fs::read(dir.log()).unwrap(), lines.concat());
        // A damaged final line does not make the earlier damage repairable.
        cut_tail(&dir.0, 3).unwrap();
        assert_eq!(open_err(&dir), expected);
        assert_eq!(verify_file(dir.log()).unwrap_err().to_string(), expected);
    }

    #[test]
    fn records_with_a_valid_checksum_but_wrong_content_are_refused_even_last() {
        let cases = [
            (
                vec![record(0, 1, "a", 1), record(0, 1, "a", 3)],
                "line 2: event 3 of topic `a` is out of sequence: expected id 2",
            ),
            (
                vec![record(0, 1, "a", 1).replace(r#""v":1"#, r#""v":2"#)],
                "line 1: unsupported format version 2, expected 1",
            ),
            (
                vec![record(1, 2, "a", 1)],
                "line 1: broken batch framing: a batch starts with batch_index 0 and a batch_len of at least 1, found batch_index 1 of batch_len 2",
            ),
            (
                vec![record(0, 0, "a", 1)],
                "line 1: broken batch framing: a batch starts with batch_index 0 and a batch_len of at least 1, found batch_index 0 of batch_len 0",
            ),
            (
                vec![record(0, 2, "a", 1), record(0, 1, "a", 2)],
                "line 2: broken batch framing: expected batch_index 1 of batch_len 2, found batch_index 0 of batch_len 1",
            ),
            (
                vec![r#"{"hello":1}"#.to_string()],
                "line 1: not a record: missing field `v` at line 1 column 28",
            ),
            (
                vec![record(0, 1, "no/slash", 1)],
                "line 1: not a record: invalid topic `no/slash`: expected a non-empty name of letters, digits, `.`, `_` or `-` at line 1 column 55",
            ),
        ];
        for (i, (records, fault)) in cases.iter().enumerate() {
            let dir = TempDir::new(&format!("content-{i}"));
            let lines: Vec<_> = records.iter().map(|r| sealed(r)).collect();
            write_lines(&dir, &lines);
            let expected = format!("corrupt record at `{}` {fault}", dir.log().display());
            assert_eq!(open_err(&dir), expected);
            assert_eq!(fs::read(dir.log()).unwrap(), lines.concat());
            // The verifier checks a topic name after parsing, so its message
            // has no column.
            let expected = expected.replace(" at line 1 column 55", "");
            assert_eq!(verify_file(dir.log()).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn missing_directory_and_a_file_for_a_directory_are_named() {
        let dir = TempDir::new("missing-dir");
        let missing = dir.0.join("nope");
        let error = FileLog::open(&missing, FileLogOptions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "failed to open event log at `{}`: directory does not exist",
                missing.display()
            )
        );
        let file = dir.0.join("plain");
        fs::write(&file, b"").unwrap();
        let error = FileLog::open(&file, FileLogOptions::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "failed to open event log at `{}`: not a directory",
                file.display()
            )
        );
        let error = verify_file(missing.join(LOG_FILE_NAME)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "failed to open event log at `{}`: No such file or directory (os error 2)",
                missing.join(LOG_FILE_NAME).display()
            )
        );
    }

    #[test]
    fn garbage_is_refused_in_the_middle_and_cut_at_the_end() {
        let dir = TempDir::new("garbage");
        write_lines(&dir, &[b"\x00\xffnot json\n".to_vec(), b"{}\n".to_vec()]);
        let expected = format!(
            "corrupt record at `{}` line 1: missing checksum: expected the record to end with `,\"crc\":\"<8 lowercase hex digits>\"}}`",
            dir.log().display()
        );
        assert_eq!(open_err(&dir), expected);
        assert_eq!(verify_file(dir.log()).unwrap_err().to_string(), expected);

        // Garbage without a newline is one torn record: all of it goes.
        fs::write(dir.log(), [0u8; 100]).unwrap();
        let (log, recovery) = open(&dir);
        assert!(log.is_empty());
        assert_eq!(recovery.cut.unwrap().bytes, 100);
        assert_eq!(file_len(&dir), 0);
        drop(log);

        // Whole batches followed by a garbage line keep the batches.
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[2]);
        drop(log);
        let mut lines = lines(&dir);
        lines.push(b"\xfe\xfe garbage }\n".to_vec());
        write_lines(&dir, &lines);
        let (log, recovery) = open(&dir);
        assert_eq!(log.len(), 2);
        let cut = recovery.cut.unwrap();
        assert_eq!((cut.bytes, cut.fault), (13, RecordFault::MissingChecksum));
    }

    #[test]
    fn cut_tail_removes_bytes_from_the_end_and_stops_at_empty() {
        let dir = TempDir::new("cut-tail");
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[2]);
        drop(log);
        let len = file_len(&dir);
        assert_eq!(cut_tail(&dir.0, 7).unwrap(), 7);
        assert_eq!(file_len(&dir), len - 7);
        assert_eq!(cut_tail(&dir.0, 10_000).unwrap(), len - 7);
        assert_eq!(file_len(&dir), 0);
        let missing = dir.0.join("nope");
        assert_eq!(
            cut_tail(&missing, 1).unwrap_err().to_string(),
            format!(
                "failed to cut the tail of `{}`: No such file or directory (os error 2)",
                missing.join(LOG_FILE_NAME).display()
            )
        );
    }

    #[test]
    fn verify_file_counts_a_whole_log_and_refuses_what_open_repairs() {
        let dir = TempDir::new("verify");
        let (mut log, _) = open(&dir);
        assert_eq!(verify_file(dir.log()).unwrap(), VerifySummary::default());
        append_batches(&mut log, &[1, 4, 3]);
        log.append_batch(vec![(topic("c"), event("k", json!("\u{e9}\"\\")))])
            .unwrap();
        drop(log);
        let summary = verify_file(dir.log()).unwrap();
        assert_eq!(
            summary,
            VerifySummary {
                events: 9,
                batches: 4,
                topics: 3,
                bytes: file_len(&dir)
            }
        );
        assert_eq!(
            summary.to_string(),
            format!(
                "9 events in 4 batches on 3 topics, {} bytes",
                file_len(&dir)
            )
        );
        let lines = lines(&dir);
        write_lines(&dir, &lines[..7]);
        assert_eq!(
            verify_file(dir.log()).unwrap_err().to_string(),
            format!(
                "corrupt record at `{}` line 6: incomplete batch: 2 of 3 records",
                dir.log().display()
            )
        );
        cut_tail(&dir.0, 1).unwrap();
        assert_eq!(
            verify_file(dir.log()).unwrap_err().to_string(),
            format!(
                "corrupt record at `{}` line 7: partial record without a newline",
                dir.log().display()
            )
        );
    }

    #[test]
    fn oversized_record_fails_the_append_and_leaves_the_log_as_it_was() {
        let dir = TempDir::new("oversized");
        let (mut log, _) = open(&dir);
        append_batches(&mut log, &[1]);
        let len = file_len(&dir);
        let huge = "x".repeat(MAX_RECORD_BYTES);
        let error = log
            .append_batch(vec![
                (topic("a"), event("k", json!({}))),
                (topic("a"), event("k", json!(huge))),
            ])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "append failed: failed to append to event log at `{}`: event 3 of topic `a` needs {} bytes, over the record limit of {MAX_RECORD_BYTES} bytes",
                dir.log().display(),
                MAX_RECORD_BYTES + 130
            )
        );
        assert_eq!((log.len(), file_len(&dir)), (1, len));
        append_batches(&mut log, &[1]);
        assert_eq!(log.all()[1].id, 2);
    }

    #[test]
    fn empty_batches_write_nothing_and_fsync_never_still_persists() {
        let dir = TempDir::new("fsync-never");
        let options = FileLogOptions {
            fsync: FsyncPolicy::Never,
        };
        let (mut log, _) = FileLog::open(&dir.0, options).unwrap();
        assert_eq!(log.append_batch(Vec::new()).unwrap(), Vec::new());
        assert_eq!(file_len(&dir), 0);
        append_batches(&mut log, &[2, 1]);
        let before = log.all().to_vec();
        drop(log);
        let (log, recovery) = FileLog::open(&dir.0, options).unwrap();
        assert_eq!(log.all(), before.as_slice());
        assert_eq!(recovery.batches, 2);
    }
}
