//! Version 3 captures (JSON Lines): a streaming session writes exactly the
//! lines of the bundle it would have kept, the lines replay in one streaming
//! pass, and every kind of damage is refused with its own error: an edit or
//! a cut is a broken seal, whatever else it broke; a resealed edit is held
//! to the check it was made for; garbage and oversized lines are malformed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use rehearse_runtime::capture::{CaptureBundle, Session, CAPTURE_VERSION};
use rehearse_runtime::config::{PersonaSpec, RuntimeConfig};
use rehearse_runtime::op::{Cost, FaultMode, FaultOp, Outcome, TriggerOp};
use rehearse_runtime::replay::{
    open_capture, parse_bundle, replay_stream, OpenedCapture, ReplayError, ReplayOptions,
    ReplaySummary, MAX_LINE_BYTES,
};
use rehearse_runtime::{EventLog, MemoryLog, Millis, Op, WindowLog};

fn config() -> RuntimeConfig {
    RuntimeConfig {
        start_ms: 1_700_000_000_000,
        seed: 3,
        personas: BTreeMap::from([(
            "p".to_string(),
            PersonaSpec {
                entry_workflow: "workflows/review.harn#run".to_string(),
                ..PersonaSpec::default()
            },
        )]),
        supervisor: Default::default(),
    }
}

fn trigger(number: u64) -> Op {
    Op::Trigger(TriggerOp {
        persona: "p".to_string(),
        provider: "github".to_string(),
        kind: "pull_request".to_string(),
        metadata: BTreeMap::from([("number".to_string(), number.to_string())]).into(),
        cost: Cost {
            usd: 0.001,
            tokens: 10,
            ..Cost::default()
        },
        outcome: Outcome::Completed,
        duration: Millis(0),
    })
}

fn drive(session: &mut Session, episodes: u64) {
    for n in 0..episodes {
        // Every third trigger repeats a work key: a duplicate, not a run;
        // two faults fail the commits after them (retried or refused).
        let op = if n == 50 || n == 400 {
            Op::Fault(FaultOp {
                append: FaultMode::Fail,
                count: 2,
            })
        } else {
            trigger(if n % 3 == 2 { n - 1 } else { n })
        };
        let at_ms = 1_700_000_000_000 + i64::try_from(n).unwrap() * 1_000;
        session.handle(&format!("step-{}", n + 1), at_ms, &op);
    }
}

/// A `Write` whose bytes outlive the session that owns it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn captured(episodes: u64) -> (CaptureBundle, Vec<u8>) {
    let mut kept = Session::new("stream", &config(), Box::new(MemoryLog::new())).unwrap();
    drive(&mut kept, episodes);
    let shared = Shared::default();
    let mut streamed = Session::streaming(
        "stream",
        &config(),
        Box::new(MemoryLog::new()),
        Box::new(shared.clone()),
    )
    .unwrap();
    drive(&mut streamed, episodes);
    assert!(
        streamed.bundle().events.is_empty(),
        "a stream keeps nothing"
    );
    let (written, _runtime) = streamed.finish_stream();
    written.unwrap();
    let bytes = shared.0.lock().unwrap().clone();
    (kept.finish().0, bytes)
}

fn replay_bytes(bytes: &[u8]) -> Result<ReplaySummary, ReplayError> {
    replay_on(bytes, Box::new(WindowLog::new()))
}

fn replay_on(bytes: &[u8], log: Box<dyn EventLog>) -> Result<ReplaySummary, ReplayError> {
    match open_capture(bytes)? {
        OpenedCapture::Stream(stream) => {
            replay_stream(*stream, ReplayOptions { strict: true }, log)
        }
        OpenedCapture::Legacy(_) => panic!("a version 3 capture opens as a stream"),
    }
}

fn lines(bytes: &[u8]) -> Vec<String> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

#[test]
fn a_streaming_session_writes_the_lines_of_the_bundle_it_would_keep() {
    let (bundle, bytes) = captured(700);
    assert_eq!(bytes, bundle.to_jsonl());
    let all = lines(&bytes);
    // Header, an event and a decision line per episode, the seal.
    assert_eq!(all.len(), 1 + 2 * 700 + 1);
    assert!(all[0].contains(&format!("\"capture_version\":\"{CAPTURE_VERSION}\"")));
    assert!(all[1].starts_with("{\"event\":"));
    assert!(all[2].starts_with("{\"decision\":"));
    assert!(all[all.len() - 1].starts_with("{\"seal\":{\"decisions\":700,\"events\":700,"));
    // A log without history replays the faults (undone from a snapshot)
    // exactly as the log that folds itself again.
    let summary = replay_bytes(&bytes).unwrap();
    assert_eq!(summary.events, 700);
    assert!(summary.effects > 700);
    assert_eq!(
        replay_on(&bytes, Box::new(MemoryLog::new())).unwrap(),
        summary
    );
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.contains("injected storage fault") || text.contains("failed:runtime_error"));
    let parsed = parse_bundle(std::str::from_utf8(&bytes).unwrap()).unwrap();
    assert_eq!(parsed, bundle);
}

fn is_seal(result: &Result<ReplaySummary, ReplayError>) -> bool {
    matches!(result, Err(ReplayError::Seal { .. }))
}

#[test]
fn an_edit_or_a_cut_is_a_broken_seal_whatever_else_it_broke() {
    let (_, bytes) = captured(600);
    let all = lines(&bytes);
    let last = all.len() - 1;
    let mut effect = all.clone();
    effect[400] = effect[400].replacen("\"effect_hash\":\"", "\"effect_hash\":\"0", 1);
    let mut payload = all.clone();
    payload[301] = payload[301].replacen("\"number\":\"", "\"number\":\"9", 1);
    let mut garbage = all.clone();
    garbage[500] = "{not json".to_string();
    let mut header = all.clone();
    header[0] = header[0].replacen("\"seed\":3", "\"seed\":4", 1);
    let cases: [(&str, Vec<u8>); 6] = [
        ("effect edited", join(&effect)),
        ("payload edited", join(&payload)),
        ("garbage line", join(&garbage)),
        ("header edited", join(&header)),
        ("seal dropped", join(&all[..last])),
        ("cut mid-line", bytes[..bytes.len() / 2].to_vec()),
    ];
    for (label, damaged) in cases {
        let result = replay_bytes(&damaged);
        assert!(is_seal(&result), "{label}: {result:?}");
    }
}

/// Rewrites `lines` (header to last decision) with a fresh seal.
fn resealed(lines: &[String]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let body = join(lines);
    let events = lines
        .iter()
        .filter(|l| l.starts_with("{\"event\":"))
        .count();
    let decisions = lines
        .iter()
        .filter(|l| l.starts_with("{\"decision\":"))
        .count();
    let seal = format!(
        "{{\"seal\":{{\"decisions\":{decisions},\"events\":{events},\"sha256\":\"{}\"}}}}\n",
        hex::encode(Sha256::digest(&body))
    );
    [body, seal.into_bytes()].concat()
}

#[test]
fn a_resealed_edit_is_held_to_the_check_it_was_made_for() {
    let (_, bytes) = captured(300);
    let all = lines(&bytes);
    let body = &all[..all.len() - 1];
    assert_eq!(replay_bytes(&resealed(body)).unwrap().events, 300);
    let mut effect = body.to_vec();
    effect[200] = effect[200].replacen("\"effect_hash\":\"", "\"effect_hash\":\"0", 1);
    assert!(matches!(
        replay_bytes(&resealed(&effect)),
        Err(ReplayError::EffectMismatch { .. })
    ));
    let mut removed = body.to_vec();
    removed.remove(100);
    assert!(matches!(
        replay_bytes(&resealed(&removed)),
        Err(ReplayError::DecisionCount { .. })
    ));
    let mut duplicate = body.to_vec();
    for line in &mut duplicate[3..5] {
        *line = line.replacen("\"event_id\":\"step-2\"", "\"event_id\":\"step-1\"", 1);
    }
    assert!(matches!(
        replay_bytes(&resealed(&duplicate)),
        Err(ReplayError::DuplicateEventId { event_id }) if event_id == "step-1"
    ));
    let mut payload = body.to_vec();
    payload[5] = payload[5].replacen("\"number\":\"", "\"number\":\"9", 1);
    assert!(matches!(
        replay_bytes(&resealed(&payload)),
        Err(ReplayError::PayloadHashMismatch { .. })
    ));
    let mut after_seal = resealed(body);
    after_seal.extend_from_slice(b"{}\n");
    assert!(matches!(
        replay_bytes(&after_seal),
        Err(ReplayError::Malformed { .. })
    ));
}

#[test]
fn garbage_versions_and_oversized_lines_are_malformed_or_unsupported() {
    let (_, bytes) = captured(5);
    let all = lines(&bytes);
    let mut version = all.clone();
    version[0] = version[0].replacen(CAPTURE_VERSION, "rehearse-capture/9", 1);
    assert!(matches!(
        open_capture(join(&version).as_slice()),
        Err(ReplayError::UnsupportedVersion { found }) if found == "rehearse-capture/9"
    ));
    for garbage in [&b""[..], b"\n", b"[1, 2]\n", b"\xff\xfe\n"] {
        assert!(
            matches!(open_capture(garbage), Err(ReplayError::Malformed { .. })),
            "{garbage:?}"
        );
    }
    assert!(matches!(
        open_capture(&b"{\"capture_version\": 3}\n"[..]),
        Err(ReplayError::UnsupportedVersion { found }) if found == "3"
    ));
    let mut unknown = all.clone();
    unknown[0] = unknown[0].replacen("{", "{\"extra\":1,", 1);
    assert!(matches!(
        open_capture(join(&unknown).as_slice()),
        Err(ReplayError::Malformed { line: 1, .. })
    ));
    // A line longer than the limit is refused without being held whole.
    let mut long = join(&all[..2]);
    long.extend(std::iter::repeat_n(b' ', MAX_LINE_BYTES + 10));
    long.push(b'\n');
    let result = replay_bytes(&long);
    assert!(
        matches!(
            &result,
            Err(ReplayError::Seal { .. } | ReplayError::Malformed { .. })
        ),
        "{result:?}"
    );
}
