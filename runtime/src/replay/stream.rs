//! Version 3 captures (JSON Lines, `capture_stream.rs`) read in one typed
//! streaming pass: each line is read (at most [`MAX_LINE_BYTES`]), hashed
//! for the seal and parsed straight into its types; an event's payload is
//! kept as its raw text, hashed as written and parsed into an [`Op`].
//!
//! [`replay_stream`] runs three threads with bounded queues between them,
//! so memory stays flat however long the capture: one parses and hashes
//! the lines, one replays each episode and compares its decision, one
//! hashes the events each episode appended and compares them with the
//! recorded effects (and drops the episode). Any error is checked against
//! the seal before it is reported: a capture edited or cut short after
//! capture is a broken seal, whatever else it broke.

use std::borrow::Cow;
use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::recorded::RawDecision;
use super::{
    check_header, compare_decision, compare_effects, event_key, legacy, EventChecks, KeySet,
    ReplayError, ReplayOptions, ReplaySummary, Replayer, MAX_BUNDLE_BYTES,
};
use crate::capture::{
    CaptureBundle, CapturedDecision, CapturedEvent, CAPTURE_VERSION, CAPTURE_VERSION_2,
};
use crate::capture_stream::write_decision_line;
use crate::capture_stream::CaptureHeader;
use crate::hash::hex_matches;
use crate::log::{EventLog, StoredEvent};
use crate::op::Op;
use crate::seal::Seal;
use crate::supervisor::Decision;

/// The longest line of a version 3 capture: 16 MiB (the header holds the
/// whole configuration; an event or decision line is a few hundred bytes).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Episodes handed from the parsing thread to the replaying one at a time.
const BATCH: usize = 64;

/// Batches a thread may run ahead of the next.
const QUEUE: usize = 8;

/// A capture opened by [`open_capture`].
#[derive(Debug)]
pub enum OpenedCapture<R> {
    /// A version 3 capture, its header read, its lines still to come.
    Stream(Box<CaptureStream<R>>),
    /// A version 2 bundle, read whole (its seal checked).
    Legacy(Box<CaptureBundle>),
}

/// A line after the header, as read.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line<'a> {
    #[serde(borrow)]
    Event(RawEvent<'a>),
    #[serde(borrow)]
    Decision(RawDecision<'a>),
    Seal(Seal),
}

/// An event line with its payload still as text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    at_ms: i64,
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(borrow)]
    payload_hash: Cow<'a, str>,
}

/// The version of a first line, if it is a JSON object naming one.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    capture_version: Option<Cow<'a, str>>,
}

/// One event and its recorded decision, checked and ready to replay.
#[derive(Debug)]
pub(crate) struct Episode {
    event_id: String,
    at_ms: i64,
    op: Op,
    decision: DecisionLine,
}

/// A decision line as read (its newline kept) and its line number: replay
/// compares it byte for byte with the line the replayed decision writes,
/// and reads it only when they differ.
#[derive(Debug)]
struct DecisionLine {
    line: usize,
    text: Vec<u8>,
}

/// The start of every decision line the runtime writes.
const DECISION_START: &[u8] = b"{\"decision\":{";

impl DecisionLine {
    /// The decision, read as a decision line is read: an error in the line,
    /// or a decision of another event, is malformed (its line named).
    fn read(&self, event_id: &str) -> Result<RawDecision<'_>, ReplayError> {
        let parsed: Line<'_> =
            serde_json::from_slice(&self.text).map_err(|e| at_line(&e, self.line))?;
        match parsed {
            Line::Decision(decision) if decision.event_id != event_id => {
                Err(ReplayError::Malformed {
                    line: self.line,
                    column: 1,
                    message: format!(
                        "the decision of event `{}` follows event `{event_id}`: each event line is followed by its own decision",
                        decision.event_id
                    ),
                })
            }
            Line::Decision(decision) => Ok(decision),
            Line::Event(_) | Line::Seal(_) => Err(ReplayError::Malformed {
                line: self.line,
                column: 1,
                message: "expected a decision line".to_string(),
            }),
        }
    }
}

/// Episodes replayed and their decisions matched, with the events each
/// appended (`ends[i]` is where episode `i`'s end in `events`), for their
/// effects to be compared.
struct Replayed {
    episodes: Vec<Episode>,
    decisions: Vec<Decision>,
    events: Vec<StoredEvent>,
    ends: Vec<usize>,
}

impl Replayed {
    fn new() -> Self {
        Self {
            // The parsing thread's batch is moved in whole.
            episodes: Vec::new(),
            decisions: Vec::with_capacity(BATCH),
            events: Vec::with_capacity(BATCH * 16),
            ends: Vec::with_capacity(BATCH),
        }
    }

    /// Empties the batch (dropping its episodes and events), keeping its
    /// buffers for the next.
    fn clear(&mut self) {
        self.episodes.clear();
        self.decisions.clear();
        self.events.clear();
        self.ends.clear();
    }
}

/// An event line and its decision line (as `D`), parsed but not yet
/// checked.
type Pair<D> = (RawPair, D);

/// How [`CaptureStream::next_pair`] keeps a decision line: as its text
/// ([`DecisionLines`], for replay) or read ([`ReadDecisions`]).
trait Keep<D> {
    /// The line as text, if this keeps text: `Ok` to keep it unread (it
    /// starts as a decision line, `starts`), `Err` to keep it once it is
    /// read as a decision of the event.
    fn text(&self, starts: bool, line: impl FnOnce() -> DecisionLine) -> Option<Result<D, D>>;
    /// The decision read, when this does not keep text.
    fn read(&self, decision: RawDecision<'_>) -> D;
}

/// Keeps decision lines as text.
struct DecisionLines;

impl Keep<DecisionLine> for DecisionLines {
    fn text(
        &self,
        starts: bool,
        line: impl FnOnce() -> DecisionLine,
    ) -> Option<Result<DecisionLine, DecisionLine>> {
        let line = line();
        Some(if starts { Ok(line) } else { Err(line) })
    }
    fn read(&self, decision: RawDecision<'_>) -> DecisionLine {
        // `text` always keeps the line.
        unreachable!(
            "decision lines are kept as text, not `{}`",
            decision.event_id
        )
    }
}

/// Reads decision lines into the decisions a bundle holds.
struct ReadDecisions;

impl Keep<CapturedDecision> for ReadDecisions {
    fn text(
        &self,
        _starts: bool,
        _line: impl FnOnce() -> DecisionLine,
    ) -> Option<Result<CapturedDecision, CapturedDecision>> {
        None
    }
    fn read(&self, decision: RawDecision<'_>) -> CapturedDecision {
        decision.into_captured()
    }
}

/// The owned parts of an event line.
#[derive(Debug)]
struct RawPair {
    event_id: String,
    at_ms: i64,
    payload: Box<RawValue>,
    payload_hash: String,
}

/// Opens a capture of either version: a version 3 capture (its first line
/// names `rehearse-capture/3`) is returned to be read line by line; anything
/// else is read whole (at most [`MAX_BUNDLE_BYTES`]) as a version 2 bundle.
pub fn open_capture<R: BufRead>(mut reader: R) -> Result<OpenedCapture<R>, ReplayError> {
    let mut first = Vec::new();
    let complete = read_line(&mut reader, &mut first, MAX_LINE_BYTES + 1, 1)?;
    let probed = serde_json::from_slice::<Probe>(&first)
        .ok()
        .and_then(|p| p.capture_version.map(Cow::into_owned));
    match probed {
        Some(version) if complete && version == CAPTURE_VERSION => {
            let header: CaptureHeader =
                serde_json::from_slice(&first).map_err(|e| at_line(&e, 1))?;
            Ok(OpenedCapture::Stream(Box::new(CaptureStream::new(
                reader, header, &first,
            ))))
        }
        Some(version) if complete && version != CAPTURE_VERSION_2 => {
            Err(ReplayError::UnsupportedVersion { found: version })
        }
        _ => read_legacy(reader, first).map(|b| OpenedCapture::Legacy(Box::new(b))),
    }
}

/// Reads the rest of a version 2 bundle after its first bytes and parses it.
fn read_legacy<R: BufRead>(reader: R, mut text: Vec<u8>) -> Result<CaptureBundle, ReplayError> {
    use std::io::Read;
    let left = (MAX_BUNDLE_BYTES + 1).saturating_sub(text.len() as u64);
    reader
        .take(left)
        .read_to_end(&mut text)
        .map_err(|e| unreadable(&e, 1))?;
    if text.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(ReplayError::Malformed {
            line: 1,
            column: 1,
            message: format!(
                "the bundle is more than {MAX_BUNDLE_BYTES} bytes, expected at most {MAX_BUNDLE_BYTES}"
            ),
        });
    }
    let text = String::from_utf8(text).map_err(|_| ReplayError::Malformed {
        line: 1,
        column: 1,
        message: "the bundle is not UTF-8 text".to_string(),
    })?;
    legacy::parse_v2(&text)
}

/// Reads one line (its newline kept) into `buf`, at most `limit` bytes;
/// returns whether it ended in a newline.
fn read_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    limit: usize,
    line: usize,
) -> Result<bool, ReplayError> {
    use std::io::Read;
    buf.clear();
    reader
        .take(limit as u64)
        .read_until(b'\n', buf)
        .map_err(|e| unreadable(&e, line))?;
    Ok(buf.last() == Some(&b'\n'))
}

fn unreadable(error: &std::io::Error, line: usize) -> ReplayError {
    ReplayError::Malformed {
        line,
        column: 1,
        message: format!("cannot read the capture: {error}"),
    }
}

/// A JSON error in line `line` of the capture.
fn at_line(error: &serde_json::Error, line: usize) -> ReplayError {
    match super::malformed(error) {
        ReplayError::Malformed {
            column, message, ..
        } => ReplayError::Malformed {
            line,
            column,
            message,
        },
        other => other,
    }
}

fn seal_error(message: impl Into<String>) -> ReplayError {
    ReplayError::Seal {
        message: message.into(),
    }
}

/// A version 3 capture being read: its header, and its lines one by one.
#[derive(Debug)]
pub struct CaptureStream<R> {
    reader: R,
    header: CaptureHeader,
    buf: Vec<u8>,
    line: usize,
    hasher: Sha256,
    events: u64,
    decisions: u64,
    /// Whether the buffered line was hashed for the seal.
    buf_hashed: bool,
    /// Whether the seal line was reached and checked.
    sealed: bool,
}

impl<R: BufRead> CaptureStream<R> {
    fn new(reader: R, header: CaptureHeader, first: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(first);
        Self {
            reader,
            header,
            buf: Vec::with_capacity(4096),
            line: 1,
            hasher,
            events: 0,
            decisions: 0,
            buf_hashed: false,
            sealed: false,
        }
    }

    /// The header line.
    pub fn header(&self) -> &CaptureHeader {
        &self.header
    }

    /// Reads the next line into the buffer; `false` at the end.
    fn next_line(&mut self) -> Result<bool, ReplayError> {
        self.line += 1;
        self.buf_hashed = false;
        let complete = read_line(&mut self.reader, &mut self.buf, MAX_LINE_BYTES, self.line)?;
        if self.buf.is_empty() {
            return Ok(false);
        }
        if !complete {
            return Err(ReplayError::Malformed {
                line: self.line,
                column: 1,
                message: if self.buf.len() >= MAX_LINE_BYTES {
                    format!("the line is longer than {MAX_LINE_BYTES} bytes, expected at most {MAX_LINE_BYTES}")
                } else {
                    "the line does not end: the capture was cut short".to_string()
                },
            });
        }
        Ok(true)
    }

    /// Parses the buffered line, hashing it for the seal unless it is the
    /// seal itself.
    fn parse_line(&mut self) -> Result<Line<'_>, ReplayError> {
        let line = self.line;
        let parsed: Line<'_> = serde_json::from_slice(&self.buf).map_err(|e| at_line(&e, line))?;
        if !matches!(parsed, Line::Seal(_)) {
            self.hasher.update(&self.buf);
            self.buf_hashed = true;
        }
        Ok(parsed)
    }

    /// The next event and its decision (as `keep` keeps it), or `None`
    /// after a matching seal that ends the file.
    fn next_pair<D>(&mut self, keep: &impl Keep<D>) -> Result<Option<Pair<D>>, ReplayError> {
        if !self.next_line()? {
            return Err(seal_error(
                "the capture ends without its seal: it was cut short",
            ));
        }
        let event = match self.parse_line()? {
            Line::Seal(seal) => return self.end(&seal).map(|()| None),
            Line::Decision(decision) => {
                let event_id = decision.event_id.into_owned();
                return Err(self.count_error(event_id));
            }
            Line::Event(event) => RawPair {
                event_id: event.event_id.into_owned(),
                at_ms: event.at_ms,
                payload: event.payload.to_owned(),
                payload_hash: event.payload_hash.into_owned(),
            },
        };
        self.events += 1;
        if !self.next_line()? {
            return Err(seal_error(
                "the capture ends without its seal: it was cut short",
            ));
        }
        let line = self.line;
        let kept = keep.text(self.buf.starts_with(DECISION_START), || DecisionLine {
            line,
            text: self.buf.clone(),
        });
        if let Some(Ok(decision)) = kept {
            // Read only if it does not match (see `check_episode`).
            self.hasher.update(&self.buf);
            self.buf_hashed = true;
            self.decisions += 1;
            return Ok(Some((event, decision)));
        }
        match self.parse_line()? {
            Line::Decision(decision) if decision.event_id != event.event_id => {
                Err(ReplayError::Malformed {
                    line,
                    column: 1,
                    message: format!(
                        "the decision of event `{}` follows event `{}`: each event line is followed by its own decision",
                        decision.event_id, event.event_id
                    ),
                })
            }
            Line::Decision(decision) => {
                let decision = match kept {
                    Some(Ok(decision) | Err(decision)) => decision,
                    None => keep.read(decision),
                };
                self.decisions += 1;
                Ok(Some((event, decision)))
            }
            Line::Event(_) | Line::Seal(_) => Err(self.count_error(event.event_id)),
        }
    }

    fn count_error(&self, event_id: String) -> ReplayError {
        ReplayError::DecisionCount {
            event_id,
            count: self.events as usize,
            decisions: self.decisions as usize,
        }
    }

    /// Checks the seal against what was read, and that nothing follows it.
    fn end(&mut self, seal: &Seal) -> Result<(), ReplayError> {
        self.sealed = true;
        if (seal.events, seal.decisions) != (self.events, self.decisions) {
            return Err(seal_error(format!(
                "the seal records {} events and {} decisions, the capture holds {} and {}",
                seal.events, seal.decisions, self.events, self.decisions
            )));
        }
        let found = std::mem::take(&mut self.hasher).finalize();
        if !hex_matches(&found.into(), &seal.sha256) {
            return Err(seal_error(format!(
                "the seal's sha256 {} does not match the capture's contents ({})",
                seal.sha256,
                hex::encode(found)
            )));
        }
        if self.next_line()? {
            return Err(ReplayError::Malformed {
                line: self.line,
                column: 1,
                message: "a line follows the seal".to_string(),
            });
        }
        Ok(())
    }

    /// The error to report for `error`: a broken seal when the rest of the
    /// capture shows one (see [`CaptureStream::drain`]), else `error`.
    fn settle(&mut self, error: ReplayError) -> ReplayError {
        if matches!(error, ReplayError::Seal { .. }) || self.sealed {
            return error;
        }
        self.drain().err().unwrap_or(error)
    }

    /// After an error: reads the rest of the capture and checks its last
    /// line as the seal of everything before it (by its sha256 alone), so
    /// that an edited or truncated capture is reported as such.
    fn drain(&mut self) -> Result<(), ReplayError> {
        use std::io::Read;
        let mut last = std::mem::take(&mut self.buf);
        let mut last_hashed = self.buf_hashed;
        loop {
            let mut next = Vec::new();
            let read = (&mut self.reader)
                .take(MAX_LINE_BYTES as u64)
                .read_until(b'\n', &mut next)
                .map_err(|e| unreadable(&e, self.line))?;
            if read == 0 {
                break;
            }
            if !last_hashed {
                self.hasher.update(&last);
            }
            last_hashed = false;
            last = next;
        }
        let seal = match serde_json::from_slice::<Line<'_>>(&last) {
            Ok(Line::Seal(seal)) if !last_hashed => seal,
            _ => {
                return Err(seal_error(
                    "the capture does not end with its seal: it was cut short or edited",
                ))
            }
        };
        let found = std::mem::take(&mut self.hasher).finalize();
        if hex_matches(&found.into(), &seal.sha256) {
            Ok(())
        } else {
            Err(seal_error(format!(
                "the seal's sha256 {} does not match the capture's contents ({})",
                seal.sha256,
                hex::encode(found)
            )))
        }
    }

    /// Reads the whole capture into memory, its seal checked (payloads are
    /// checked when it replays).
    pub fn collect_bundle(mut self) -> Result<CaptureBundle, ReplayError> {
        let header = self.header.clone();
        let mut bundle = CaptureBundle {
            capture_version: header.capture_version,
            scenario: header.scenario,
            config: header.config,
            events: Vec::new(),
            decisions: Vec::new(),
            runtime_provenance: header.runtime_provenance,
        };
        loop {
            let pair = match self.next_pair(&ReadDecisions) {
                Ok(Some(pair)) => pair,
                Ok(None) => return Ok(bundle),
                Err(error) => return Err(self.settle(error)),
            };
            let (event, decision) = pair;
            let payload = serde_json::from_str::<serde_json::Value>(event.payload.get())
                .map_err(|e| at_line(&e, self.line - 1))?
                .into();
            bundle.events.push(CapturedEvent {
                event_id: event.event_id,
                at_ms: event.at_ms,
                payload,
                payload_hash: event.payload_hash,
            });
            bundle.decisions.push(decision);
        }
    }
}

/// The checks of one event line before it replays: its id (strict: not a
/// repeat), its time, its payload's hash (over the payload as written) and
/// the operation it holds.
#[derive(Debug)]
struct Checker {
    strict: bool,
    seen: KeySet,
    times: EventChecks,
}

impl Checker {
    /// The episode of `pair`. An error in its decision line comes first, as
    /// when every line was read as it came: it is looked for before an
    /// error of the event is reported.
    fn episode(&mut self, pair: Pair<DecisionLine>) -> Result<Episode, ReplayError> {
        let (event, decision) = pair;
        let event_id = event.event_id.clone();
        match self.event(event) {
            Ok((event_id, at_ms, op)) => Ok(Episode {
                event_id,
                at_ms,
                op,
                decision,
            }),
            Err(error) => Err(decision.read(&event_id).err().unwrap_or(error)),
        }
    }

    /// The checks of an event line: its id, time, payload hash and
    /// operation.
    fn event(&mut self, event: RawPair) -> Result<(String, i64, Op), ReplayError> {
        let event_id = event.event_id;
        if self.strict && !self.seen.insert(event_key(&event_id)) {
            return Err(ReplayError::DuplicateEventId { event_id });
        }
        self.times.at_ms(&event_id, event.at_ms)?;
        let text = event.payload.get();
        let actual: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if !hex_matches(&actual, &event.payload_hash) {
            return Err(ReplayError::PayloadHashMismatch {
                event_id,
                recorded: event.payload_hash,
                actual: hex::encode(actual),
            });
        }
        let op: Op = serde_json::from_str(text).map_err(|e| ReplayError::InvalidPayload {
            event_id: event_id.clone(),
            message: e.to_string(),
        })?;
        EventChecks::op(&event_id, &op)?;
        Ok((event_id, event.at_ms, op))
    }
}

/// Replays a version 3 capture on a fresh runtime over `log` (an empty
/// log), parsing on a second thread and comparing effects on a third. An
/// error is reported as a broken seal when the capture's seal does not
/// match what was read; else the first episode's error is: an effect
/// mismatch is found after the decisions of the episodes before it.
pub fn replay_stream<R: BufRead + Send>(
    mut stream: CaptureStream<R>,
    options: ReplayOptions,
    log: Box<dyn EventLog>,
) -> Result<ReplaySummary, ReplayError> {
    let header = stream.header().clone();
    let started = check_header(&header.capture_version, &header.runtime_provenance, options)
        .and_then(|()| Replayer::new(&header.scenario, &header.config, options, log));
    let mut replayer = match started {
        Ok(replayer) => replayer,
        Err(error) => return Err(stream.settle(error)),
    };
    let checker = Checker {
        strict: options.strict,
        seen: KeySet::default(),
        times: EventChecks::new(&header.config),
    };
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(QUEUE);
        let (replayed_sender, replayed_receiver) = sync_channel(QUEUE);
        let (spent_sender, spent_receiver) = sync_channel(QUEUE + 2);
        let (returned_sender, returned_receiver) = sync_channel(QUEUE + 2);
        let parser = scope.spawn(move || parse_into(stream, checker, &sender, &returned_receiver));
        let checker = scope.spawn(move || check_effects(&replayed_receiver, &spent_sender));
        let queues = (receiver, replayed_sender, spent_receiver, returned_sender);
        consume(&mut replayer, &queues);
        drop(queues);
        let join = |thread: std::thread::ScopedJoinHandle<'_, Result<(), ReplayError>>| {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        let checked = join(checker);
        match (checked, join(parser)) {
            (_, Err(seal @ ReplayError::Seal { .. })) => Err(seal),
            (Err(error), _) | (Ok(()), Err(error)) => Err(error),
            (Ok(()), Ok(())) => Ok(replayer.summary()),
        }
    })
}

/// The parsing thread: checked episodes in batches until the seal, an
/// error (then the seal is checked over the rest) or a closed queue. A
/// batch the replay is done with comes back through `returned` and is
/// emptied here, where its episodes were made (the allocator frees a
/// thread's own blocks faster), to carry the next.
fn parse_into<R: BufRead>(
    mut stream: CaptureStream<R>,
    mut checker: Checker,
    sender: &SyncSender<Vec<Episode>>,
    returned: &Receiver<Vec<Episode>>,
) -> Result<(), ReplayError> {
    let next_batch = || match returned.try_recv() {
        Ok(mut done) => {
            done.clear();
            done
        }
        Err(_) => Vec::with_capacity(BATCH),
    };
    let mut batch = next_batch();
    let failed = loop {
        let episode = match stream.next_pair(&DecisionLines) {
            Ok(Some(pair)) => checker.episode(pair),
            Ok(None) => break None,
            Err(error) => Err(error),
        };
        match episode {
            Ok(episode) => batch.push(episode),
            Err(error) => break Some(error),
        }
        if batch.len() == BATCH
            && sender
                .send(std::mem::replace(&mut batch, next_batch()))
                .is_err()
        {
            // The replay stopped at a mismatch: only the seal is left to check.
            return if stream.sealed {
                Ok(())
            } else {
                stream.drain()
            };
        }
    };
    if !batch.is_empty() && sender.send(batch).is_err() {
        // The replay stopped first; its error wins unless the seal broke.
        return match failed {
            Some(error) => Err(stream.settle(error)),
            None => Ok(()),
        };
    }
    match failed {
        None => Ok(()),
        Some(error) => Err(stream.settle(error)),
    }
}

/// The replaying thread's queues: episodes in, replayed batches out, spent
/// batches back (their buffers reused), and their episodes on to the
/// parsing thread.
type Queues = (
    Receiver<Vec<Episode>>,
    SyncSender<Replayed>,
    Receiver<Replayed>,
    SyncSender<Vec<Episode>>,
);

/// The replaying thread: every episode in order, until a closed queue (the
/// checks stopped at a mismatch), each batch handed on with the decisions
/// and events it made.
fn consume(replayer: &mut Replayer, queues: &Queues) {
    let (receiver, sender, spent, returned) = queues;
    for batch in receiver {
        // A spent batch is emptied here, where its events and decisions
        // were made: the allocator frees a thread's own blocks faster.
        let mut replayed = match spent.try_recv() {
            Ok(mut spent) => {
                // Its episodes go back to be emptied where they were made
                // (or here, when the parsing thread has enough).
                let _ = returned.try_send(std::mem::take(&mut spent.episodes));
                spent.clear();
                spent
            }
            Err(_) => Replayed::new(),
        };
        for episode in &batch {
            let decision = replayer.decide(
                &episode.event_id,
                episode.at_ms,
                &episode.op,
                &mut replayed.events,
            );
            replayed.decisions.push(decision);
            replayed.ends.push(replayed.events.len());
        }
        replayed.episodes = batch;
        if sender.send(replayed).is_err() {
            // The checks stopped at a mismatch.
            return;
        }
    }
}

/// The checking thread: each replayed episode's decision and events
/// against its decision line, in order, until the first mismatch; each
/// batch then goes back spent.
fn check_effects(
    receiver: &Receiver<Replayed>,
    spent: &SyncSender<Replayed>,
) -> Result<(), ReplayError> {
    let mut line = Vec::with_capacity(4096);
    for batch in receiver {
        let mut start = 0;
        let episodes = batch.episodes.iter().zip(&batch.decisions);
        for ((episode, decision), &end) in episodes.zip(&batch.ends) {
            let events = &batch.events[start..end];
            check_episode(episode, decision, events, &mut line)?;
            start = end;
        }
        // Back to the replaying thread, which empties it; a full queue
        // means the replay is ending, and the batch is dropped here.
        let _ = spent.try_send(batch);
    }
    Ok(())
}

/// Compares one replayed episode with its decision line. The line the
/// replayed decision and events write (`write_decision_line`, the
/// capture's own writer, into `line`) is the recorded line when they
/// match; only a line that differs is read and compared field by field,
/// for the error that names the difference (or for a line written
/// otherwise that still says the same).
fn check_episode(
    episode: &Episode,
    decision: &Decision,
    events: &[StoredEvent],
    line: &mut Vec<u8>,
) -> Result<(), ReplayError> {
    line.clear();
    write_decision_line(line, decision, events).expect("a decision line serialises");
    if *line == episode.decision.text && decision.event_id == episode.event_id {
        return Ok(());
    }
    let recorded = episode.decision.read(&episode.event_id)?.compact();
    let event_id = &episode.event_id;
    compare_decision(event_id, recorded.expected(event_id), decision)?;
    compare_effects(event_id, &recorded.effects, events)
}
