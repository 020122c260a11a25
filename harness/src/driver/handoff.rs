//! A run's events, capture and run records rendered and written on a
//! second thread while the runtime runs on the first: `Local` hands over
//! what each external event produced (its capture record, the events the
//! log released, the run records that settled) in batches, and the writer
//! turns them into the lines of `events.jsonl`, `capture.jsonl` and
//! `runs.jsonl`, hashing each effect there, and checks that the events of
//! the kinds the invariant checker does not read (`explore::UNREAD_KINDS`)
//! read back, as the checker does for the others. The bytes are those the run's
//! thread would write (`capture_stream.rs`'s `CaptureWriter::episode`,
//! `driver::write_events`, `driver::write_runs`).

use std::io::{self, Write};
use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use rehearse_runtime::capture_stream::{CaptureHeader, CaptureWriter};
use rehearse_runtime::log::{Payload, StoredEvent};
use rehearse_runtime::run_record::RunRecord;
use rehearse_runtime::supervisor::Decision;
use rehearse_runtime::Op;

use crate::explore::{is_unread, reads_back, Violation};

/// The writers of the files a run hands off, each written in run order.
pub struct Streams {
    pub events: Box<dyn Write + Send>,
    pub capture: Box<dyn Write + Send>,
    pub runs: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").finish_non_exhaustive()
    }
}

/// One external event as the capture records it, the log positions its
/// episode appended, and the number of the step it belongs to (1-based).
struct Episode {
    step: usize,
    event_id: String,
    at_ms: i64,
    /// Written as the capture's payload on the writer's thread: a copy
    /// costs the run's thread less than writing it there.
    op: Op,
    decision: Decision,
    events: Range<usize>,
}

/// What is handed over at once.
#[derive(Default)]
struct Batch {
    /// The log position of `events[0]`.
    first: usize,
    events: Vec<StoredEvent>,
    episodes: Vec<Episode>,
    runs: Vec<RunRecord>,
}

/// How many events a batch gathers before it is handed over.
const BATCH_EVENTS: usize = 1024;

/// How many batches may wait for the writer: the run's thread waits for it
/// beyond that, so memory stays flat however long the run.
const QUEUED: usize = 2;

/// The run's side: gathers a batch and hands it to the writer thread.
pub struct Handoff {
    batch: Batch,
    /// The log position of the next event released.
    next: usize,
    sender: SyncSender<Batch>,
    /// Batches the writer has written, to be emptied and filled again.
    spent: Receiver<Batch>,
    writer: JoinHandle<io::Result<Option<Violation>>>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Handoff {
    /// Starts the writer thread over `streams`, the capture beginning with
    /// `header`; the first event released will be at log position `next`.
    pub fn start(streams: Streams, header: CaptureHeader, next: usize) -> io::Result<Self> {
        let (sender, batches) = sync_channel(QUEUED);
        let (give_back, spent) = sync_channel(QUEUED + 1);
        let writer = std::thread::Builder::new()
            .name("rehearse-outputs".to_string())
            .spawn(move || write_all(streams, &header, &batches, &give_back))?;
        Ok(Self {
            batch: Batch {
                first: next,
                ..Batch::default()
            },
            next,
            sender,
            spent,
            writer,
        })
    }

    /// Records external event `event_id` of step `step` (1-based), operation
    /// `op` handled at `at_ms`: `decision`, whose episode appended log
    /// positions `events`, released later.
    pub fn episode(
        &mut self,
        step: usize,
        event_id: &str,
        at_ms: i64,
        op: Op,
        decision: Decision,
        events: Range<usize>,
    ) {
        self.batch.episodes.push(Episode {
            step,
            event_id: event_id.to_string(),
            at_ms,
            op,
            decision,
            events,
        });
    }

    /// Records run records that settled, in start order.
    pub fn runs(&mut self, runs: Vec<RunRecord>) {
        self.batch.runs.extend(runs);
    }

    /// Takes the events the log released (`release` moves them onto the
    /// end of the vector it is given) and hands the batch over once it is
    /// large enough. A writer that failed is not waited for: its error
    /// comes from [`Handoff::finish`].
    pub fn released(&mut self, release: impl FnOnce(&mut Vec<StoredEvent>)) {
        let before = self.batch.events.len();
        release(&mut self.batch.events);
        self.next += self.batch.events.len() - before;
        if self.batch.events.len() >= BATCH_EVENTS {
            self.hand_over();
        }
    }

    fn hand_over(&mut self) {
        let mut fresh = self.spent.try_recv().unwrap_or_default();
        // Emptied here, by the thread that allocated what it holds:
        // mimalloc frees its own thread's blocks faster than another's.
        fresh.events.clear();
        fresh.episodes.clear();
        fresh.runs.clear();
        fresh.first = self.next;
        let full = std::mem::replace(&mut self.batch, fresh);
        // A writer that stopped has its error waiting in `finish`.
        let _ = self.sender.send(full);
    }

    /// Hands the last batch over and waits for the writer to write the
    /// capture's seal and flush every file: the first event of a kind the
    /// checker leaves undecoded that did not read back, as the checker
    /// would have reported it (see `explore::UNREAD_KINDS`).
    pub fn finish(mut self) -> io::Result<Option<Violation>> {
        self.hand_over();
        drop(self.sender);
        match self.writer.join() {
            Ok(written) => written,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The writer thread: every batch into the files, then the seal; checks
/// that the events the checker leaves undecoded read back.
fn write_all(
    mut streams: Streams,
    header: &CaptureHeader,
    batches: &Receiver<Batch>,
    give_back: &SyncSender<Batch>,
) -> io::Result<Option<Violation>> {
    let mut capture = CaptureWriter::new(&mut streams.capture, header)?;
    let mut unread = None;
    for batch in batches {
        for episode in &batch.episodes {
            let effects =
                &batch.events[episode.events.start - batch.first..][..episode.events.len()];
            if unread.is_none() {
                unread = effects
                    .iter()
                    .filter(|event| is_unread(event))
                    .find_map(|event| reads_back(event, episode.step).err());
            }
            capture.episode(
                &episode.event_id,
                episode.at_ms,
                &Payload::encode(&episode.op),
                &episode.decision,
                effects,
            )?;
        }
        super::write_events(&mut streams.events, &batch.events)?;
        super::write_runs(&mut streams.runs, &batch.runs)?;
        // Given back full, to be emptied by the run's thread; one it has
        // no room for is dropped here.
        let _ = give_back.try_send(batch);
    }
    capture.finish()?;
    streams.events.flush()?;
    streams.runs.flush()?;
    Ok(unread)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_runtime::log::{LogEvent, Topic};
    use rehearse_runtime::persona::PERSONA_TOPIC;
    use rehearse_runtime::supervisor::DecisionKind;

    use crate::explore::UNREAD_KINDS;

    fn persona_event(id: u64, kind: &'static str, payload: serde_json::Value) -> StoredEvent {
        let event = LogEvent {
            kind: kind.into(),
            payload: payload.into(),
            headers: [("persona".to_string(), "p".to_string())].into(),
            occurred_at_ms: 0,
        };
        StoredEvent::new(Topic::new(PERSONA_TOPIC).unwrap(), id, event)
    }

    /// The writer reports the first event of a kind the checker leaves
    /// undecoded that does not read back, as the checker reports one.
    #[test]
    fn an_unread_kind_that_does_not_read_back_is_a_violation_of_its_step() {
        let streams = Streams {
            events: Box::new(io::sink()),
            capture: Box::new(io::sink()),
            runs: Box::new(io::sink()),
        };
        let header = CaptureHeader {
            capture_version: rehearse_runtime::capture::CAPTURE_VERSION.to_string(),
            scenario: "s".to_string(),
            config: Default::default(),
            runtime_provenance: rehearse_runtime::capture::runtime_provenance(),
            durable_log: false,
        };
        let mut handoff = Handoff::start(streams, header, 0).unwrap();
        let decision = Decision {
            event_id: "step-3".to_string(),
            decision: DecisionKind::Invoke,
            schedule_at_ms: None,
            episode_id: Some(0),
            deadline_ms: None,
            termination: None,
            retry_count: 0,
        };
        let op = Op::Pump(Default::default());
        handoff.episode(3, "step-3", 0, op, decision, 0..3);
        let bogus = serde_json::json!({"update_kind": "receipt"});
        let events = [
            persona_event(1, "persona.lease.released", serde_json::json!({})),
            persona_event(2, UNREAD_KINDS[2], bogus.clone()),
            persona_event(3, UNREAD_KINDS[0], bogus),
        ];
        handoff.released(|out| out.extend(events));
        let violation = handoff.finish().unwrap().expect("a violation");
        assert_eq!(violation.step, 3);
        assert_eq!(
            violation.invariant,
            crate::explore::Invariant::RebuildMatchesIncremental
        );
        assert_eq!(violation.evidence, [format!("{PERSONA_TOPIC}#2")]);
        assert!(
            violation
                .message
                .starts_with("a persona event does not read back: "),
            "{}",
            violation.message
        );
    }
}
