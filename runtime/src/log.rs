//! The event log: named topics of events with per-topic ids counting from 1,
//! appended in all-or-nothing batches and read back by range.
//!
//! The in-memory backend lives here; the durable file backend is in
//! `file_log.rs`. Both keep the global append order, which is the order of
//! `events.jsonl` in a scenario's outputs.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A validated topic name: non-empty `[A-Za-z0-9._-]+`.
///
/// The name is shared, not copied: every stored event carries its topic, and
/// a log of a million events holds a handful of distinct names. The topics
/// the runtime writes ([`KNOWN_TOPICS`]) are borrowed from the program, so
/// that giving one to an event costs nothing; any other name is counted
/// (an `Arc`), whose every copy is an atomic increment.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Topic(TopicName);

#[derive(Clone)]
enum TopicName {
    Known(&'static str),
    Shared(Arc<str>),
}

/// The topics the runtime itself writes.
pub const KNOWN_TOPICS: [&str; 3] = [
    crate::persona::PERSONA_TOPIC,
    crate::pipeline::LIFECYCLE_AUDIT_TOPIC,
    crate::process::PROCESS_TOPIC,
];

impl Serialize for Topic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Topic {
    /// Validates `name` as a topic.
    pub fn new(name: impl Into<String>) -> Result<Self, LogError> {
        let name = name.into();
        if let Some(known) = KNOWN_TOPICS.iter().find(|known| **known == name) {
            return Ok(Self(TopicName::Known(known)));
        }
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(TopicName::Shared(name.into())))
        } else {
            Err(LogError::InvalidTopic(name))
        }
    }

    /// The topic's name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TopicName::Known(name) => name,
            TopicName::Shared(name) => name,
        }
    }
}

impl PartialEq for Topic {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.as_str(), other.as_str());
        std::ptr::eq(a, b) || a == b
    }
}

impl Eq for Topic {}

impl PartialOrd for Topic {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Topic {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A shared name is the same text as itself: a map keyed by topic
        // finds the log's own names without comparing bytes.
        let (a, b) = (self.as_str(), other.as_str());
        if std::ptr::eq(a, b) {
            std::cmp::Ordering::Equal
        } else {
            a.cmp(b)
        }
    }
}

impl std::hash::Hash for Topic {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Topic").field(&self.as_str()).finish()
    }
}

impl TryFrom<String> for Topic {
    type Error = LogError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Topic> for String {
    fn from(topic: Topic) -> Self {
        topic.as_str().to_owned()
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's payload: its canonical JSON (`canonical.rs`), written once
/// when the event is made and kept as text. The log, the effect hashes and
/// the outputs use the text; a reader that wants a [`serde_json::Value`]
/// gets one parsed on first use (through `Deref`, so `payload["key"]` and
/// `payload.get("key")` read as they would on a `Value`), and a typed reader
/// parses the text straight into its type ([`Payload::decode`]).
///
/// The text may be part of a larger one: the payloads of the events one
/// operation appends are written one after another into one shared text
/// ([`Payload::within`]), which saves an allocation an event.
#[derive(Clone, Default)]
pub struct Payload {
    text: Arc<str>,
    /// Where the payload's JSON lies in `text`.
    start: u32,
    end: u32,
    // Boxed: most payloads are never parsed, and every event moves its
    // payload a few times between staging and the log (64 bytes to 40).
    value: OnceLock<Box<serde_json::Value>>,
}

impl Payload {
    /// The payload of `value`, serialised once to canonical JSON.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Self {
        Self::written(|out| {
            crate::canonical::write(value, out).expect("an event payload serialises to JSON");
        })
    }

    /// The payload whose JSON is all of `text`.
    fn whole(text: Arc<str>) -> Self {
        let end = u32::try_from(text.len()).expect("a payload is under 4 GiB");
        Self {
            text,
            start: 0,
            end,
            value: OnceLock::new(),
        }
    }

    /// The payload whose JSON is `text[range]`, sharing `text` with the
    /// payloads around it. The range must hold one JSON value.
    pub(crate) fn within(text: &Arc<str>, range: std::ops::Range<usize>) -> Self {
        let position = |at: usize| u32::try_from(at).expect("a batch's payloads are under 4 GiB");
        debug_assert!(
            text.get(range.clone()).is_some(),
            "a payload lies on char boundaries"
        );
        Self {
            text: Arc::clone(text),
            start: position(range.start),
            end: position(range.end),
            value: OnceLock::new(),
        }
    }

    /// The payload whose canonical JSON `write` appends to an empty buffer
    /// (one this thread keeps, so that writing allocates only the text).
    /// The writer owes the canonical form: `json_out.rs` writes it by hand.
    pub fn written(write: impl FnOnce(&mut Vec<u8>)) -> Self {
        crate::json_out::with_buffer(|out| {
            write(out);
            Self::whole(
                simdutf8::basic::from_utf8(out)
                    .expect("JSON text is UTF-8")
                    .into(),
            )
        })
    }

    /// The payload's canonical JSON text.
    pub fn json(&self) -> &str {
        &self.text[self.start as usize..self.end as usize]
    }

    /// The payload as a JSON value, parsed from its text on first use.
    pub fn value(&self) -> &serde_json::Value {
        self.value.get_or_init(|| {
            Box::new(serde_json::from_str(self.json()).expect("a payload's canonical JSON parses"))
        })
    }

    /// Changes the payload through its JSON value, then writes it again as
    /// canonical JSON.
    pub fn edit(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut value = self.value().clone();
        edit(&mut value);
        *self = Self::from(value);
    }

    /// Reads the payload as `T`, from its text.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.json())
    }
}

impl From<serde_json::Value> for Payload {
    fn from(value: serde_json::Value) -> Self {
        // A value's compact serde_json text is its canonical text (its
        // maps keep their keys sorted): written straight, not through the
        // canonical serializer's reordering.
        let payload = Self::written(|out| crate::json_out::value(out, &value));
        // The value is at hand: keep it rather than parse the text again.
        let _ = payload.value.set(Box::new(value));
        payload
    }
}

impl std::ops::Deref for Payload {
    type Target = serde_json::Value;
    fn deref(&self) -> &serde_json::Value {
        self.value()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl PartialEq<serde_json::Value> for Payload {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.value() == other
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

/// Serialised as its value, so every serializer (pretty ones too) writes
/// what it wrote for the value; the runtime's own writers of event and
/// capture lines splice [`Payload::json`] instead.
impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(Self::from)
    }
}

/// An event's headers: names and values in name order, shared between
/// the events that carry the same ones (every event of one persona does),
/// so that a copy costs a count rather than a map. Read as the map it
/// derefs to; changed through [`std::ops::DerefMut`], which copies a
/// shared map first.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Arc<BTreeMap<String, String>>);

impl Headers {
    /// The one header `name=value`.
    pub fn one(name: &str, value: &str) -> Self {
        Self::from(BTreeMap::from([(name.to_string(), value.to_string())]))
    }
}

impl std::ops::Deref for Headers {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl std::ops::DerefMut for Headers {
    fn deref_mut(&mut self) -> &mut BTreeMap<String, String> {
        Arc::make_mut(&mut self.0)
    }
}

impl From<BTreeMap<String, String>> for Headers {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(Arc::new(map))
    }
}

impl<const N: usize> From<[(String, String); N]> for Headers {
    fn from(pairs: [(String, String); N]) -> Self {
        Self::from(BTreeMap::from(pairs))
    }
}

impl FromIterator<(String, String)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self::from(pairs.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl PartialEq<BTreeMap<String, String>> for Headers {
    fn eq(&self, other: &BTreeMap<String, String>) -> bool {
        *self.0 == *other
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(deserializer).map(Self::from)
    }
}

/// An event's kind: a name the runtime's vocabulary holds (`event.rs`)
/// borrowed from it, or one read from elsewhere, owned.
pub type Kind = std::borrow::Cow<'static, str>;

/// An event before it is appended: what happened, with its headers and time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    pub kind: Kind,
    pub payload: Payload,
    /// Ordered headers; the persona runtime sets `persona=<name>`.
    #[serde(default)]
    pub headers: Headers,
    pub occurred_at_ms: i64,
}

/// An appended event: its topic and its id within that topic.
///
/// Its canonical JSON (the fields in declaration order, the payload and
/// headers canonical: [`StoredEvent::write_json`]) and that text's sha256
/// ([`StoredEvent::digest`], the effect hash a capture records) are
/// computed at most once, when first asked for; the runtime asks as it
/// appends. Made with [`StoredEvent::new`]; its fields are not to be
/// changed afterwards (the digest would not follow).
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredEvent {
    pub topic: Topic,
    pub id: u64,
    pub kind: Kind,
    pub payload: Payload,
    #[serde(default)]
    pub headers: Headers,
    pub occurred_at_ms: i64,
    #[serde(skip)]
    digest: OnceLock<[u8; 32]>,
}

/// A copy: its digest is computed again when asked for, so a copy whose
/// fields are then changed hashes what it holds.
impl Clone for StoredEvent {
    fn clone(&self) -> Self {
        Self {
            topic: self.topic.clone(),
            id: self.id,
            kind: self.kind.clone(),
            payload: self.payload.clone(),
            headers: self.headers.clone(),
            occurred_at_ms: self.occurred_at_ms,
            digest: OnceLock::new(),
        }
    }
}

impl PartialEq for StoredEvent {
    fn eq(&self, other: &Self) -> bool {
        self.topic == other.topic
            && self.id == other.id
            && self.kind == other.kind
            && self.payload == other.payload
            && self.headers == other.headers
            && self.occurred_at_ms == other.occurred_at_ms
    }
}

impl StoredEvent {
    /// `event` stored as id `id` of `topic`.
    pub fn new(topic: Topic, id: u64, event: LogEvent) -> Self {
        Self {
            topic,
            id,
            kind: event.kind,
            payload: event.payload,
            headers: event.headers,
            occurred_at_ms: event.occurred_at_ms,
            digest: OnceLock::new(),
        }
    }

    /// The same event as id `id` of its topic.
    pub fn renumbered(&self, id: u64) -> Self {
        Self { id, ..self.clone() }
    }

    /// Changes the payload through its JSON value (then written again as
    /// canonical JSON) and forgets the digest.
    pub fn edit_payload(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        self.payload.edit(edit);
        self.digest = OnceLock::new();
    }

    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Appends the event's JSON to `out`: compact, its fields in declaration
    /// order (`topic` to `occurred_at_ms`), its payload's canonical text as
    /// kept and its headers in key order; what `serde_json::to_vec` of the
    /// event writes, without parsing the payload.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_head(out);
        out.extend_from_slice(self.payload.json().as_bytes());
        self.write_tail(out);
    }

    /// [`StoredEvent::write_json`]'s text up to the payload.
    fn write_head(&self, out: &mut Vec<u8>) {
        use crate::json_out::{int, string};
        out.extend_from_slice(b"{\"topic\":");
        string(out, self.topic.as_str());
        out.extend_from_slice(b",\"id\":");
        int(out, self.id);
        out.extend_from_slice(b",\"kind\":");
        string(out, &self.kind);
        out.extend_from_slice(b",\"payload\":");
    }

    /// [`StoredEvent::write_json`]'s text after the payload.
    fn write_tail(&self, out: &mut Vec<u8>) {
        use crate::json_out::{ms, string_map};
        out.extend_from_slice(b",\"headers\":");
        string_map(out, &self.headers);
        out.extend_from_slice(b",\"occurred_at_ms\":");
        ms(out, self.occurred_at_ms);
        out.push(b'}');
    }

    /// The sha256 of [`StoredEvent::write_json`]'s text, computed once. The
    /// payload, most of the text, is hashed where it lies rather than
    /// copied next to the rest.
    pub fn digest(&self) -> &[u8; 32] {
        self.digest.get_or_init(|| {
            crate::json_out::with_buffer(|bytes| {
                let mut hasher = Sha256::new();
                self.write_head(bytes);
                hasher.update(bytes.as_slice());
                hasher.update(self.payload.json().as_bytes());
                bytes.clear();
                self.write_tail(bytes);
                hasher.update(bytes.as_slice());
                hasher.finalize().into()
            })
        })
    }
}

/// Why the log refused an operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("invalid topic `{0}`: expected a non-empty name of letters, digits, `.`, `_` or `-`")]
    InvalidTopic(String),
    /// A durable log failed to cut a failed batch off its file and refuses
    /// appends until it is reopened.
    #[error("append failed: event log at `{}` is unusable until reopened: {reason}", .path.display())]
    Poisoned { path: PathBuf, reason: String },
    /// A durable log could not encode or write a batch (the batch was not
    /// kept).
    #[error("append failed: failed to append to event log at `{}`: {reason}", .path.display())]
    Append { path: PathBuf, reason: String },
    /// Stored events handed to a log skip or repeat an id of their topic.
    #[error("failed to read the event log: event {id} of topic `{topic}` is out of sequence: expected id {expected}")]
    OutOfSequence {
        topic: String,
        id: u64,
        expected: u64,
    },
    /// A torn tail was asked of a log with no file to tear.
    #[error("cannot reopen the event log: `torn_tail_bytes` needs the durable file backend")]
    TearNeedsFile,
    /// A window log was asked to reopen: it keeps no history.
    #[error("cannot reopen the event log: a window log keeps no history to reopen from")]
    WindowHasNoHistory,
    /// A durable log could not be read back from its file.
    #[error("cannot reopen the event log: event log at `{}`: {reason}", .path.display())]
    ReopenFile { path: PathBuf, reason: String },
}

/// An append-only log of topics.
pub trait EventLog: fmt::Debug {
    /// Appends every event of `batch` or none of them, returning them as
    /// stored (with their topic ids), in order.
    fn append_batch(&mut self, batch: Vec<(Topic, LogEvent)>)
        -> Result<Vec<StoredEvent>, LogError>;

    /// Appends like [`EventLog::append_batch`] without handing the stored
    /// events back: the caller reads them from [`EventLog::all`]. A backend
    /// that keeps its events overrides it to move them in rather than copy.
    fn append(&mut self, batch: Vec<(Topic, LogEvent)>) -> Result<(), LogError> {
        self.append_batch(batch).map(drop)
    }

    /// Appends like [`EventLog::append`], taking the events from `batch`
    /// (all of them or, on an error, none). A backend that keeps its events
    /// overrides it to move each in as it comes, without gathering the
    /// batch first.
    fn append_from(
        &mut self,
        batch: &mut dyn ExactSizeIterator<Item = (Topic, LogEvent)>,
    ) -> Result<(), LogError> {
        self.append(batch.collect())
    }

    /// Up to `limit` events of `topic` whose ids are strictly after `after`.
    fn read_range(&self, topic: &Topic, after: u64, limit: usize) -> Vec<StoredEvent>;

    /// Every event of every topic the log holds, in append order: for a
    /// [`WindowLog`], only the events since its last release. Prefer
    /// [`EventLog::read_from`], which names the position it starts at and
    /// which every backend can serve without holding its history.
    fn all(&self) -> &[StoredEvent];

    /// A cursor over the events from global position `from` (0-based, as
    /// [`EventLog::len`] counts) to the end, in append order. A
    /// [`WindowLog`] holds only the events since its last release and
    /// panics for earlier ones.
    fn read_from(&self, from: usize) -> Cursor<'_> {
        let end = usize::try_from(self.len()).expect("a log position fits in memory");
        Cursor {
            events: self.slice(from..end).iter(),
            position: from,
        }
    }

    /// The events at positions `range` of the global append order (0-based,
    /// as [`EventLog::len`] counts). A [`WindowLog`] holds only the events
    /// since its last release and panics for earlier ones.
    fn slice(&self, range: Range<usize>) -> &[StoredEvent] {
        &self.all()[range]
    }

    /// Tells the log that every event appended so far was read: a log that
    /// keeps no history ([`WindowLog`]) drops them; the others keep them.
    fn release(&mut self) {}

    /// [`EventLog::release`], moving the events a log that keeps no history
    /// drops onto the end of `out` instead, in append order; a log that
    /// keeps them moves none.
    fn release_into(&mut self, out: &mut Vec<StoredEvent>) {
        let _ = out;
        self.release();
    }

    /// Whether the log holds every event since the first: only then can
    /// state be rebuilt from it.
    fn keeps_history(&self) -> bool {
        true
    }

    /// How many events the log holds, over all topics.
    fn len(&self) -> u64 {
        self.all().len() as u64
    }

    /// Whether the log holds no events.
    fn is_empty(&self) -> bool {
        self.all().is_empty()
    }

    /// The last id appended to `topic`, or 0.
    fn latest_id(&self, topic: &Topic) -> u64;

    /// Whether the log is the durable file backend, which a capture records
    /// so that its replay runs on the same backend.
    fn is_durable(&self) -> bool {
        false
    }

    /// Forgets everything held in memory and reads the log back from its
    /// storage, first cutting `torn_tail_bytes` off the end of a durable log.
    /// The in-memory backend is its own storage: it can reopen, but it has no
    /// bytes to tear.
    fn reopen(&mut self, torn_tail_bytes: Option<u64>) -> Result<Reopened, LogError> {
        match torn_tail_bytes {
            None | Some(0) => Ok(Reopened {
                events: self.len(),
                ..Reopened::default()
            }),
            Some(_) => Err(LogError::TearNeedsFile),
        }
    }
}

/// Events read in append order from a position of the log
/// ([`EventLog::read_from`]).
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    events: std::slice::Iter<'a, StoredEvent>,
    position: usize,
}

impl Cursor<'_> {
    /// The global position of the next event the cursor yields.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for Cursor<'a> {
    type Item = &'a StoredEvent;

    fn next(&mut self) -> Option<&'a StoredEvent> {
        let event = self.events.next()?;
        self.position += 1;
        Some(event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.events.size_hint()
    }
}

impl ExactSizeIterator for Cursor<'_> {}

/// What reopening a log found and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reopened {
    /// Bytes cut off the end of the log file.
    pub cut_bytes: u64,
    /// Bytes of a torn or incomplete final record dropped on recovery.
    pub dropped_bytes: u64,
    /// Whole events dropped with them.
    pub dropped_events: u64,
    /// Events in the log after reopening.
    pub events: u64,
}

/// Stamps `batch` with per-topic ids following `latest_id`.
fn stamp(batch: Vec<(Topic, LogEvent)>, latest_id: impl Fn(&Topic) -> u64) -> Vec<StoredEvent> {
    // A batch names one topic or a few: a list beats a map here.
    let mut next_ids: Vec<(Topic, u64)> = Vec::new();
    batch
        .into_iter()
        .map(|(topic, event)| {
            let slot = match next_ids.iter().position(|(t, _)| *t == topic) {
                Some(slot) => slot,
                None => {
                    next_ids.push((topic.clone(), latest_id(&topic)));
                    next_ids.len() - 1
                }
            };
            let next = &mut next_ids[slot].1;
            *next += 1;
            StoredEvent::new(topic, *next, event)
        })
        .collect()
}

/// The in-memory backend: the default for scenarios without a `restart`.
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    events: Vec<StoredEvent>,
    /// For each topic, the positions of its events in `events`; the event
    /// with id `n` sits at position `n - 1` of its topic's list. A log
    /// names a handful of topics: a list (whose shared names compare by
    /// pointer first) beats a map.
    topics: Vec<(Topic, Vec<usize>)>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log holding `events` exactly as stored, checking that ids count from
    /// 1 per topic without gaps.
    pub fn from_stored(events: Vec<StoredEvent>) -> Result<Self, LogError> {
        let mut log = Self::new();
        for event in events {
            let next = log.latest_id(&event.topic) + 1;
            if event.id != next {
                return Err(LogError::OutOfSequence {
                    topic: event.topic.to_string(),
                    id: event.id,
                    expected: next,
                });
            }
            log.push(event);
        }
        Ok(log)
    }

    /// Stamps `batch` with ids without appending it: what `append_batch`
    /// would store.
    pub fn stamp(&self, batch: Vec<(Topic, LogEvent)>) -> Vec<StoredEvent> {
        stamp(batch, |topic| self.latest_id(topic))
    }

    /// Appends events that were already stamped by [`MemoryLog::stamp`].
    pub fn push(&mut self, mut event: StoredEvent) {
        let position = self.events.len();
        match self
            .topics
            .iter_mut()
            .find(|(topic, _)| *topic == event.topic)
        {
            Some((shared, positions)) => {
                // An event read back from a file or a bundle brings its own
                // copy of the topic name; it takes the log's shared one.
                event.topic = shared.clone();
                positions.push(position);
            }
            None => self.topics.push((event.topic.clone(), vec![position])),
        }
        self.events.push(event);
    }

    /// The positions of `topic`'s events.
    fn positions(&self, topic: &Topic) -> Option<&Vec<usize>> {
        self.topics
            .iter()
            .find(|(name, _)| name == topic)
            .map(|(_, positions)| positions)
    }

    /// Drops every event after the first `len`, keeping the indexes true.
    pub fn truncate(&mut self, len: usize) {
        self.events.truncate(len);
        for (_, positions) in &mut self.topics {
            while positions.last().is_some_and(|&p| p >= len) {
                positions.pop();
            }
        }
        self.topics.retain(|(_, positions)| !positions.is_empty());
    }
}

impl EventLog for MemoryLog {
    fn append_batch(
        &mut self,
        batch: Vec<(Topic, LogEvent)>,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let stored = self.stamp(batch);
        for event in &stored {
            self.push(event.clone());
        }
        Ok(stored)
    }

    fn append(&mut self, batch: Vec<(Topic, LogEvent)>) -> Result<(), LogError> {
        self.append_from(&mut batch.into_iter())
    }

    fn append_from(
        &mut self,
        batch: &mut dyn ExactSizeIterator<Item = (Topic, LogEvent)>,
    ) -> Result<(), LogError> {
        // Stamped in place: each event's id follows the last of its topic,
        // which the event before it may have been.
        self.events.reserve(batch.len());
        for (topic, event) in batch {
            let id = self.latest_id(&topic) + 1;
            self.push(StoredEvent::new(topic, id, event));
        }
        Ok(())
    }

    fn read_range(&self, topic: &Topic, after: u64, limit: usize) -> Vec<StoredEvent> {
        let Some(positions) = self.positions(topic) else {
            return Vec::new();
        };
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(positions.len());
        positions[start..]
            .iter()
            .take(limit)
            .map(|&p| self.events[p].clone())
            .collect()
    }

    fn all(&self) -> &[StoredEvent] {
        &self.events
    }

    fn latest_id(&self, topic: &Topic) -> u64 {
        self.positions(topic).map_or(0, |p| p.len() as u64)
    }
}

/// An in-memory log that keeps no history: it holds the events appended
/// since its last [`EventLog::release`] and, per topic, the latest id. A
/// replay reads each episode's events, compares them and releases them, so
/// its memory stays flat however long the capture.
///
/// It cannot rebuild state or reopen; the runtime restores a snapshot
/// instead of rebuilding when an armed fault fails a commit on it.
#[derive(Clone, Debug, Default)]
pub struct WindowLog {
    /// The events since the last release.
    window: Vec<StoredEvent>,
    /// Events released before the window, over all topics.
    released: usize,
    latest: BTreeMap<Topic, u64>,
}

impl WindowLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

impl EventLog for WindowLog {
    fn append_batch(
        &mut self,
        batch: Vec<(Topic, LogEvent)>,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let stored = stamp(batch, |topic| self.latest_id(topic));
        self.window.extend(stored.iter().cloned());
        for event in &stored {
            self.latest.insert(event.topic.clone(), event.id);
        }
        Ok(stored)
    }

    fn append(&mut self, batch: Vec<(Topic, LogEvent)>) -> Result<(), LogError> {
        self.append_from(&mut batch.into_iter())
    }

    fn append_from(
        &mut self,
        batch: &mut dyn ExactSizeIterator<Item = (Topic, LogEvent)>,
    ) -> Result<(), LogError> {
        // Stamped in place: each event's id follows the last of its topic,
        // which the event before it may have been.
        self.window.reserve(batch.len());
        for (topic, event) in batch {
            let id = match self.latest.get_mut(&topic) {
                Some(latest) => {
                    *latest += 1;
                    *latest
                }
                None => {
                    self.latest.insert(topic.clone(), 1);
                    1
                }
            };
            self.window.push(StoredEvent::new(topic, id, event));
        }
        Ok(())
    }

    fn read_range(&self, topic: &Topic, after: u64, limit: usize) -> Vec<StoredEvent> {
        self.window
            .iter()
            .filter(|e| e.topic == *topic && e.id > after)
            .take(limit)
            .cloned()
            .collect()
    }

    fn all(&self) -> &[StoredEvent] {
        &self.window
    }

    fn slice(&self, range: Range<usize>) -> &[StoredEvent] {
        let released = self.released;
        assert!(
            range.start >= released,
            "a window log has released the events before position {released}"
        );
        &self.window[range.start - released..range.end - released]
    }

    fn release(&mut self) {
        self.released += self.window.len();
        self.window.clear();
    }

    fn release_into(&mut self, out: &mut Vec<StoredEvent>) {
        self.released += self.window.len();
        out.append(&mut self.window);
    }

    fn keeps_history(&self) -> bool {
        false
    }

    fn len(&self) -> u64 {
        (self.released + self.window.len()) as u64
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn latest_id(&self, topic: &Topic) -> u64 {
        self.latest.get(topic).copied().unwrap_or(0)
    }

    fn reopen(&mut self, _torn_tail_bytes: Option<u64>) -> Result<Reopened, LogError> {
        Err(LogError::WindowHasNoHistory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any JSON value: nested maps and lists, awkward strings and numbers.
    fn any_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,8}|[\"\\\\\u{0}-\u{1f}\u{7f}é🦀]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("\\PC{0,4}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// A payload made from a value holds the value's canonical text,
        /// as the canonical serializer writes it.
        #[test]
        fn a_payload_from_a_value_is_its_canonical_text(value in any_value()) {
            let payload = Payload::from(value.clone());
            let canonical = crate::canonical::to_string(&value).unwrap();
            proptest::prop_assert_eq!(payload.json(), canonical.as_str());
            proptest::prop_assert_eq!(payload.value(), &value);
        }
    }

    /// Payloads cut from one shared text read as their own text alone:
    /// equal to, and hashing like, the same payload written whole.
    #[test]
    fn payloads_within_a_shared_text_are_their_own_text() {
        let text: Arc<str> = r#"{"a":1}{"b":"é"}[]"#.into();
        let first = Payload::within(&text, 0..7);
        let second = Payload::within(&text, 7..17);
        let third = Payload::within(&text, 17..19);
        assert_eq!(first.json(), r#"{"a":1}"#);
        assert_eq!(second.json(), r#"{"b":"é"}"#);
        assert_eq!(third.json(), "[]");
        assert_eq!(second, Payload::from(serde_json::json!({"b": "é"})));
        assert_eq!(second["b"], "é");
        assert_eq!(first.clone().json(), first.json());
        let stored = |payload: Payload| {
            let logged = LogEvent {
                payload,
                ..event("k")
            };
            *StoredEvent::new(Topic::new("t").unwrap(), 1, logged).digest()
        };
        assert_eq!(
            stored(second.clone()),
            stored(Payload::written(
                |out| out.extend_from_slice(second.json().as_bytes())
            ))
        );
    }

    fn event(kind: &str) -> LogEvent {
        LogEvent {
            kind: kind.to_string().into(),
            payload: serde_json::json!({}).into(),
            headers: BTreeMap::new().into(),
            occurred_at_ms: 0,
        }
    }

    #[test]
    fn a_payload_serialises_as_its_value_and_keeps_its_canonical_text() {
        let value = serde_json::json!({"b": [1, {"z": null, "a": 2.5}], "a": "x\"y"});
        let payload = Payload::from(value.clone());
        assert_eq!(payload.json(), r#"{"a":"x\"y","b":[1,{"a":2.5,"z":null}]}"#);
        assert_eq!(serde_json::to_string(&payload).unwrap(), payload.json());
        assert_eq!(serde_json::to_value(&payload).unwrap(), value);
        assert_eq!(
            crate::canonical::to_string(&payload).unwrap(),
            payload.json()
        );
        let pretty = serde_json::to_string_pretty(&payload).unwrap();
        assert_eq!(pretty, serde_json::to_string_pretty(&value).unwrap());
        let read: Payload =
            serde_json::from_str(r#"{ "b": [1, {"a": 2.5, "z": null}], "a": "x\"y" }"#).unwrap();
        assert_eq!(read, payload);
        assert_eq!(read["a"], "x\"y");
    }

    #[test]
    fn a_stored_event_writes_the_json_serde_json_writes_and_hashes_it_once() {
        let event = LogEvent {
            kind: "k".into(),
            payload: Payload::from(serde_json::json!({"z": 1, "a": [true, "\u{1}é"]})),
            headers: BTreeMap::from([
                ("persona".to_string(), "ada".to_string()),
                ("b\"".to_string(), "2".to_string()),
            ])
            .into(),
            occurred_at_ms: -5,
        };
        let stored = StoredEvent::new(Topic::new("t.x").unwrap(), 42, event);
        let mut written = Vec::new();
        stored.write_json(&mut written);
        assert_eq!(written, serde_json::to_vec(&stored).unwrap());
        let expected: [u8; 32] = Sha256::digest(&written).into();
        assert_eq!(stored.digest(), &expected);
        assert_eq!(stored.clone().digest(), &expected);
    }

    /// The runtime's own topics are borrowed, any other is counted; both
    /// read, compare, order and print by name alone.
    #[test]
    fn known_and_other_topics_behave_alike() {
        let known = Topic::new(crate::persona::PERSONA_TOPIC).unwrap();
        assert!(matches!(known.0, TopicName::Known(_)));
        let other = Topic::new("persona.runtime.eventz").unwrap();
        assert!(matches!(other.0, TopicName::Shared(_)));
        assert_eq!(
            known,
            Topic::new(String::from("persona.runtime.events")).unwrap()
        );
        assert_ne!(known, other);
        assert!(known < other);
        assert_eq!(format!("{known:?}"), "Topic(\"persona.runtime.events\")");
        assert_eq!(known.to_string(), "persona.runtime.events");
        assert_eq!(
            serde_json::to_string(&other).unwrap(),
            "\"persona.runtime.eventz\""
        );
        let read: Topic = serde_json::from_str("\"pipeline.lifecycle.audit\"").unwrap();
        assert!(matches!(read.0, TopicName::Known(_)));
        let hash = |topic: &Topic| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(topic)
        };
        assert_eq!(
            hash(&known),
            hash(&Topic::new("persona.runtime.events").unwrap())
        );
    }

    #[test]
    fn topics_are_validated() {
        assert!(Topic::new("persona.runtime.events").is_ok());
        assert!(Topic::new("a-b_c.9").is_ok());
        for bad in ["", "has space", "slash/topic", "ünïcode"] {
            let error = Topic::new(bad).unwrap_err();
            assert!(error.to_string().contains(&format!("`{bad}`")), "{error}");
        }
    }

    #[test]
    fn ids_count_from_one_per_topic() {
        let mut log = MemoryLog::new();
        let a = Topic::new("a").unwrap();
        let b = Topic::new("b").unwrap();
        let stored = log
            .append_batch(vec![
                (a.clone(), event("x")),
                (b.clone(), event("y")),
                (a.clone(), event("z")),
            ])
            .unwrap();
        let ids: Vec<_> = stored
            .iter()
            .map(|e| (e.topic.as_str().to_string(), e.id))
            .collect();
        assert_eq!(ids, [("a".into(), 1), ("b".into(), 1), ("a".into(), 2)]);
        assert_eq!(log.latest_id(&a), 2);
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn read_range_is_strictly_after() {
        let mut log = MemoryLog::new();
        let a = Topic::new("a").unwrap();
        let batch = (0..5)
            .map(|i| (a.clone(), event(&format!("k{i}"))))
            .collect();
        log.append_batch(batch).unwrap();
        let kinds: Vec<_> = log
            .read_range(&a, 2, 2)
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["k2", "k3"]);
        assert!(log.read_range(&a, 5, 10).is_empty());
        assert!(log.read_range(&a, u64::MAX, 10).is_empty());
        assert!(log
            .read_range(&Topic::new("none").unwrap(), 0, 10)
            .is_empty());
    }

    #[test]
    fn a_window_log_counts_like_a_memory_log_and_keeps_only_its_window() {
        let a = Topic::new("a").unwrap();
        let b = Topic::new("b").unwrap();
        let mut memory = MemoryLog::new();
        let mut window = WindowLog::new();
        assert!(memory.keeps_history() && !window.keeps_history());
        for round in 0..3 {
            let batch = || vec![(a.clone(), event("x")), (b.clone(), event("y"))];
            let before = window.len() as usize;
            memory.append(batch()).unwrap();
            window.append(batch()).unwrap();
            assert_eq!(window.len(), memory.len());
            assert_eq!(window.latest_id(&a), memory.latest_id(&a));
            let range = before..before + 2;
            assert_eq!(window.slice(range.clone()), memory.slice(range), "{round}");
            let cursor = window.read_from(before);
            assert_eq!(cursor.len(), 2);
            assert!(cursor.eq(memory.read_from(before)));
            window.release();
            assert!(window.all().is_empty());
            assert_eq!(window.read_from(before + 2).position(), before + 2);
        }
        assert_eq!(window.len(), 6);
        assert_eq!(window.reopen(None), Err(LogError::WindowHasNoHistory));
    }

    #[test]
    fn from_stored_refuses_gaps_and_truncate_keeps_indexes() {
        let mut log = MemoryLog::new();
        let a = Topic::new("a").unwrap();
        log.append_batch(vec![(a.clone(), event("x")), (a.clone(), event("y"))])
            .unwrap();
        let mut events = log.all().to_vec();
        events.remove(0);
        let gap = MemoryLog::from_stored(events).unwrap_err();
        assert_eq!(
            gap,
            LogError::OutOfSequence {
                topic: "a".to_string(),
                id: 2,
                expected: 1
            }
        );
        assert_eq!(
            gap.to_string(),
            "failed to read the event log: event 2 of topic `a` is out of sequence: expected id 1"
        );
        assert_eq!(
            log.reopen(Some(3)).unwrap_err().to_string(),
            "cannot reopen the event log: `torn_tail_bytes` needs the durable file backend"
        );
        log.truncate(1);
        assert_eq!(log.latest_id(&a), 1);
        assert_eq!(
            log.append_batch(vec![(a.clone(), event("z"))]).unwrap()[0].id,
            2
        );
    }
}
