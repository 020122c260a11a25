//! Workloads shared by the criterion benchmarks in `benches/benches/` and the
//! `peak_memory` example: one persona fed distinct GitHub pull requests, run
//! straight through the runtime, through a capturing session, or into a
//! durable file log.
//!
//! Every workload is deterministic (fixed seed, scenario times one second
//! apart), so two runs of a benchmark do exactly the same work.

use std::collections::BTreeMap;
use std::path::Path;

use rehearse::driver::Finished;
use rehearse::outputs::run_into;
use rehearse::scenario::parse_scenario;
use rehearse_runtime::capture::{CaptureBundle, Session};
use rehearse_runtime::config::{BudgetPolicy, PersonaSpec, RuntimeConfig};
use rehearse_runtime::engine::{RunPlan, Runtime};
use rehearse_runtime::file_log::{FileLog, FileLogOptions, FsyncPolicy};
use rehearse_runtime::op::{Cost, Outcome, TriggerOp};
use rehearse_runtime::replay::{
    open_capture, parse_bundle, replay, replay_stream, OpenedCapture, ReplayOptions, ReplaySummary,
};
use rehearse_runtime::{parse_rfc3339_ms, MemoryLog, Millis, Op};

/// The one persona every workload drives.
pub const PERSONA: &str = "bench";

/// The scenario clock's origin.
pub const START: &str = "2026-04-24T12:00:00Z";

/// Log events one completed trigger appends: `trigger.received`, the lease,
/// the run, two value events, the budget record, the release and the
/// supervision receipt.
pub const EVENTS_PER_TRIGGER: u64 = 9;

/// A runtime configuration with one persona whose budget limits are set but
/// far out of reach, so admission checks every limit and refuses nothing.
pub fn config() -> RuntimeConfig {
    let spec = PersonaSpec {
        entry_workflow: "workflows/review.harn#run".to_string(),
        template_ref: Some("templates/reviewer@1".to_string()),
        budget: BudgetPolicy {
            daily_usd: Some(1_000_000.0),
            hourly_usd: Some(1_000_000.0),
            run_usd: Some(1.0),
            max_tokens: Some(rehearse_runtime::config::MAX_TOKENS),
        },
        ..PersonaSpec::default()
    };
    RuntimeConfig {
        start_ms: start_ms(),
        seed: 7,
        personas: BTreeMap::from([(PERSONA.to_string(), spec)]),
        supervisor: Default::default(),
    }
}

/// The scenario clock's origin in milliseconds.
pub fn start_ms() -> i64 {
    parse_rfc3339_ms(START).expect("the bench start time parses")
}

/// When trigger `index` arrives: one second after the one before.
pub fn at_ms(index: u64) -> i64 {
    start_ms() + i64::try_from(index).expect("trigger index fits i64") * 1_000
}

/// A pull request trigger with its own work key and a small cost.
pub fn pr_trigger(number: u64) -> Op {
    Op::Trigger(TriggerOp {
        persona: PERSONA.to_string(),
        provider: "github".to_string(),
        kind: "pull_request".to_string(),
        metadata: BTreeMap::from([
            ("repository".to_string(), "acme/widgets".to_string()),
            ("number".to_string(), number.to_string()),
        ])
        .into(),
        cost: Cost {
            usd: 0.002,
            tokens: 120,
            ..Cost::default()
        },
        outcome: Outcome::Completed,
        duration: Millis(0),
    })
}

/// `n` distinct pull request triggers.
pub fn triggers(n: u64) -> Vec<Op> {
    (1..=n).map(pr_trigger).collect()
}

/// A fresh runtime over an empty in-memory log.
pub fn runtime() -> Runtime {
    Runtime::new(&config(), Box::new(MemoryLog::new())).expect("the bench config is valid")
}

/// Executes every op of `ops` on `rt`, one second apart.
pub fn run_triggers(rt: &mut Runtime, ops: &[Op]) {
    drive(rt, ops, |_| {}, |_| {});
}

/// A fresh runtime over a log that keeps no history (`WindowLog`), as
/// `rehearse run` and `rehearse replay` run it.
pub fn runtime_windowed() -> Runtime {
    Runtime::new(&config(), Box::new(rehearse_runtime::WindowLog::new()))
        .expect("the bench config is valid")
}

/// The same as [`run_triggers`], releasing each operation's events once it
/// has run, as `rehearse run` and `rehearse replay` do once they have
/// written or compared them.
pub fn run_triggers_released(rt: &mut Runtime, ops: &[Op]) {
    drive(rt, ops, |_| {}, Runtime::release_log);
}

/// The same as [`run_triggers`], but folding the whole log from scratch
/// before every operation, as the modelled persona runtime does: the
/// quadratic baseline.
pub fn run_triggers_refolding(rt: &mut Runtime, ops: &[Op]) {
    drive(rt, ops, |rt| rt.rebuild().expect("the log folds"), |_| {});
}

/// Executes every op of `ops` on `rt`, one second apart, each between
/// `before` and `after`.
fn drive(
    rt: &mut Runtime,
    ops: &[Op],
    mut before: impl FnMut(&mut Runtime),
    mut after: impl FnMut(&mut Runtime),
) {
    // The clock's origin is parsed once, not inside the timed loop.
    let start = start_ms();
    for (at, op) in (start..).step_by(1_000).zip(ops) {
        before(rt);
        let (result, _) = rt
            .execute(op, RunPlan::COMPLETE, at)
            .expect("a bench trigger runs");
        assert_eq!(result.receipt, "completed");
        after(rt);
    }
}

/// The capture bundle of `episodes` pull request triggers handled by a
/// session over an in-memory log.
pub fn capture(episodes: u64) -> CaptureBundle {
    let mut session = Session::new("bench", &config(), Box::new(MemoryLog::new()))
        .expect("the bench config is valid");
    for index in 0..episodes {
        let op = pr_trigger(index + 1);
        let handled = session.handle(&format!("event-{}", index + 1), at_ms(index), &op);
        assert!(handled.result.is_ok(), "bench episode {index} failed");
    }
    session.finish().0
}

/// Writes the capture of `episodes` pull request triggers to `path` as the
/// session goes (a version 3 capture), over a log that keeps no history:
/// memory stays flat however many episodes. Returns the events appended.
pub fn write_capture(episodes: u64, path: &Path) -> std::io::Result<u64> {
    let out = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?);
    let mut session = Session::streaming(
        "bench",
        &config(),
        Box::new(rehearse_runtime::WindowLog::new()),
        Box::new(out),
    )
    .expect("the bench config is valid");
    for index in 0..episodes {
        let op = pr_trigger(index + 1);
        let handled = session.handle(&format!("event-{}", index + 1), at_ms(index), &op);
        assert!(handled.result.is_ok(), "bench episode {index} failed");
        session.runtime_mut().release_log();
    }
    let (written, runtime) = session.finish_stream();
    written?;
    Ok(runtime.log().len())
}

/// [`capture`] as the harness writes captures: JSON Lines, version 3.
pub fn capture_jsonl(episodes: u64) -> Vec<u8> {
    capture(episodes).to_jsonl()
}

/// [`capture`] as version 2 wrote bundles: one pretty JSON document.
pub fn capture_json_v2(episodes: u64) -> String {
    let mut bundle = capture(episodes);
    bundle.capture_version = rehearse_runtime::capture::CAPTURE_VERSION_2.to_string();
    serde_json::to_string_pretty(&bundle).expect("a bundle serialises")
}

/// Replays capture text of either version strictly, as `rehearse replay`
/// does: a version 3 capture in one streaming pass over a log that keeps no
/// history, a version 2 bundle parsed whole first, over an in-memory log.
pub fn replay_capture(bytes: &[u8]) -> ReplaySummary {
    let options = ReplayOptions { strict: true };
    match open_capture(bytes).expect("the bench capture opens") {
        OpenedCapture::Stream(stream) => replay_stream(
            *stream,
            options,
            Box::new(rehearse_runtime::WindowLog::new()),
        ),
        OpenedCapture::Legacy(bundle) => replay(&bundle, options, Box::new(MemoryLog::new())),
    }
    .expect("the bench capture replays")
}

/// Parses capture text of either version whole and replays it from memory.
pub fn replay_parsed(text: &str) -> ReplaySummary {
    let bundle = parse_bundle(text).expect("the bench capture parses");
    replay(
        &bundle,
        ReplayOptions { strict: true },
        Box::new(MemoryLog::new()),
    )
    .expect("the bench capture replays")
}

/// Runs pull request triggers on a runtime over a fresh file log in the
/// empty directory `dir` until it holds at least `events` events, without
/// fsync. Returns how many events the log holds.
pub fn write_file_log(dir: &Path, events: u64) -> u64 {
    let options = FileLogOptions {
        fsync: FsyncPolicy::Never,
    };
    let (log, recovery) = FileLog::open(dir, options).expect("the bench log directory opens");
    assert_eq!(recovery.events, 0, "the bench log directory must be empty");
    let mut rt = Runtime::new(&config(), Box::new(log)).expect("the bench config is valid");
    let ops = triggers(events.div_ceil(EVENTS_PER_TRIGGER));
    run_triggers(&mut rt, &ops);
    rt.log().len()
}

/// The committed load scenario of `rehearse run`'s measurements with
/// `triggers` triggers (`benches/scenarios/load-*.yaml`): one `repeat` step
/// of distinct webhook triggers one second apart, each its own episode.
pub fn load_scenario(triggers: u64) -> String {
    format!(
        "version: 1\nname: load-{triggers}\nstart: 2026-01-01T00:00:00Z\npersonas:\n  p:\n    \
         entry_workflow: wf\n    budget: {{ daily_usd: 1000000.0 }}\nsteps:\n  - at: 0s\n    \
         repeat:\n      times: {triggers}\n      every: 1s\n      trigger: {{ persona: p, \
         provider: webhook, kind: push, metadata: {{ dedupe_key: \"k{{i}}\" }}, \
         cost: {{ usd: 0.001, tokens: 3 }} }}\n"
    )
}

/// Parses the scenario at `file` and runs it as `rehearse run` does: its
/// outputs streamed into a stage that replaces `out` whole (fsynced).
pub fn run_scenario(file: &Path, out: &Path) -> Finished {
    let scenario = parse_scenario(file).expect("the bench scenario parses");
    run_into(out, &scenario, &file.display().to_string()).expect("the bench scenario runs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_appends_the_expected_events() {
        let mut rt = runtime();
        run_triggers(&mut rt, &triggers(3));
        assert_eq!(rt.log().len(), 3 * EVENTS_PER_TRIGGER);
        let mut refolded = runtime();
        run_triggers_refolding(&mut refolded, &triggers(3));
        assert_eq!(refolded.log().all(), rt.log().all());
    }

    #[test]
    fn a_capture_replays_in_either_version() {
        let v3 = capture_jsonl(5);
        let v2 = capture_json_v2(5);
        let path =
            std::env::temp_dir().join(format!("rehearse-bench-{}.jsonl", std::process::id()));
        assert_eq!(write_capture(5, &path).unwrap(), 5 * EVENTS_PER_TRIGGER);
        let written = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(written, v3);
        for summary in [
            replay_capture(&v3),
            replay_capture(v2.as_bytes()),
            replay_parsed(std::str::from_utf8(&v3).unwrap()),
            replay_parsed(&v2),
        ] {
            assert_eq!(summary.events, 5);
            assert_eq!(summary.effects, 5 * EVENTS_PER_TRIGGER as usize);
        }
    }

    #[test]
    fn the_load_scenario_runs_every_trigger_and_matches_the_committed_one() {
        let dir = std::env::temp_dir().join(format!("rehearse-bench-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("load.yaml");
        std::fs::write(&file, load_scenario(3)).unwrap();
        let finished = run_scenario(&file, &dir.join("out"));
        assert!(finished.report.passed());
        assert_eq!(finished.report.summary.episodes, 3);
        assert_eq!(
            finished.report.summary.events,
            3 * EVENTS_PER_TRIGGER as usize
        );
        let runs = std::fs::read_to_string(dir.join("out/runs.jsonl")).unwrap();
        assert_eq!(runs.lines().count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_committed_load_scenario_is_the_generated_one() {
        let body = |text: &str| text[text.find("start:").unwrap()..].to_string();
        let committed = [
            ("load-1k.yaml", 1_000),
            ("load-100k.yaml", 100_000),
            ("load-100k-events.yaml", 11_112),
            ("load-1m-events.yaml", 111_112),
        ];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = committed.iter().map(|(name, _)| name.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "every committed load scenario is checked here"
        );
        for (name, triggers) in committed {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            assert_eq!(body(&text), body(&load_scenario(triggers)), "{name}");
        }
        // The 100k- and 1M-event scenarios are a tenth of each other in
        // events, so their times give the linearity ratio.
        assert_eq!(11_112 * EVENTS_PER_TRIGGER, 100_008);
        assert_eq!(111_112 * EVENTS_PER_TRIGGER, 1_000_008);
    }

    #[test]
    fn a_file_log_holds_whole_triggers_and_verifies() {
        let dir = std::env::temp_dir().join(format!("rehearse-bench-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = write_file_log(&dir, 20);
        assert_eq!(events, 3 * EVENTS_PER_TRIGGER);
        let summary =
            rehearse_runtime::file_log::verify_file(rehearse_runtime::file_log::log_path(&dir))
                .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(summary.events, events);
    }
}
