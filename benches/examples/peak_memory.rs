//! One workload step per process, so `/usr/bin/time -v` can report the peak
//! memory (maximum resident set size) of that step alone, and a one-shot
//! timing of workloads too long for criterion's ten samples.
//!
//! `run` and `replay` go through the code `rehearse run` and `rehearse
//! replay --strict` use (`outputs::run_into`, `storage::replay_capture`),
//! so at 1,000,008 events (issue #13's memory target):
//!
//! ```text
//! /usr/bin/time -v target/release/examples/peak_memory run benches/scenarios/load-1m-events.yaml /tmp/out
//! /usr/bin/time -v target/release/examples/peak_memory replay /tmp/out/capture.jsonl
//! ```
//!
//! and the runtime alone (111112 bench episodes are 1,000,008 events):
//!
//! ```text
//! /usr/bin/time -v target/release/examples/peak_memory triggers 111112
//! /usr/bin/time -v target/release/examples/peak_memory triggers-released 111112
//! cargo run --release -p rehearse-benches --example peak_memory -- capture 111112 /tmp/capture.jsonl
//! /usr/bin/time -v target/release/examples/peak_memory replay /tmp/capture.jsonl
//! cargo run --release -p rehearse-benches --example peak_memory -- write-log 1000000 /tmp/log
//! /usr/bin/time -v target/release/examples/peak_memory verify-log /tmp/log
//! /usr/bin/time -v target/release/examples/peak_memory open-log /tmp/log
//! ```
//!
//! (`benches/measure-run` measures the `rehearse` binary itself.)

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use rehearse_benches::{
    run_scenario, run_triggers, run_triggers_refolding, run_triggers_released, runtime,
    runtime_windowed, triggers, write_capture, write_file_log,
};
use rehearse_runtime::engine::Runtime;
use rehearse_runtime::file_log::{log_path, verify_file, FileLog, FileLogOptions};
use rehearse_runtime::replay::parse_bundle;
use rehearse_runtime::EventLog;

/// The allocator the `rehearse` binary uses (harness/src/main.rs), so the
/// peak memory measured here is the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs `count` bench triggers through `run` on a runtime from `make`,
/// saying what it did (`how` describes the run).
fn ran_triggers(
    count: &str,
    make: fn() -> Runtime,
    run: fn(&mut Runtime, &[rehearse_runtime::Op]),
    how: &str,
) -> Result<String, String> {
    let count = count
        .parse::<u64>()
        .map_err(|e| format!("bad trigger count `{count}`: {e}"))?;
    let mut rt = make();
    run(&mut rt, &triggers(count));
    Ok(format!(
        "ran {count} triggers into {} events{how}",
        rt.log().len()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let outcome = match args.as_slice() {
        ["capture", episodes, file] => episodes
            .parse::<u64>()
            .map_err(|e| format!("bad episode count `{episodes}`: {e}"))
            .and_then(|episodes| {
                write_capture(episodes, Path::new(file))
                    .map(|events| {
                        format!("captured {episodes} episodes ({events} events) to `{file}`")
                    })
                    .map_err(|e| format!("failed to write `{file}`: {e}"))
            }),
        ["triggers", count] => ran_triggers(count, runtime, run_triggers, ""),
        ["triggers-released", count] => ran_triggers(
            count,
            runtime_windowed,
            run_triggers_released,
            ", released as they ran",
        ),
        ["refold", count] => ran_triggers(
            count,
            runtime,
            run_triggers_refolding,
            ", refolding the log before each",
        ),
        ["parse", file] => std::fs::read_to_string(file)
            .map_err(|e| format!("failed to read `{file}`: {e}"))
            .and_then(|text| {
                parse_bundle(&text)
                    .map(|bundle| format!("parsed {} events", bundle.events.len()))
                    .map_err(|e| e.to_string())
            }),
        ["replay", file] => std::fs::File::open(file)
            .map_err(|e| format!("failed to read `{file}`: {e}"))
            .map(|file| {
                let summary = replay_capture_file(file);
                format!(
                    "replayed {} events with {} effects",
                    summary.events, summary.effects
                )
            }),
        ["write-log", events, dir] => events
            .parse::<u64>()
            .map_err(|e| format!("bad event count `{events}`: {e}"))
            .and_then(|events| {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("failed to create `{dir}`: {e}"))?;
                Ok(format!(
                    "wrote {} events to `{dir}`",
                    write_file_log(Path::new(dir), events)
                ))
            }),
        ["run", file, out] => {
            let finished = run_scenario(Path::new(file), Path::new(out));
            Ok(format!(
                "ran {} episodes into {} events in `{out}`",
                finished.report.summary.episodes, finished.report.summary.events
            ))
        }
        ["verify-log", dir] => verify_file(log_path(dir))
            .map(|summary| format!("verified {summary}"))
            .map_err(|e| e.to_string()),
        ["open-log", dir] => FileLog::open(dir, FileLogOptions::default())
            .map(|(log, recovery)| format!("opened {} events ({recovery})", log.len()))
            .map_err(|e| e.to_string()),
        _ => Err(
            "usage: peak_memory triggers COUNT | refold COUNT | parse FILE | capture EPISODES FILE | replay FILE | write-log EVENTS DIR | verify-log DIR | open-log DIR | run SCENARIO OUT"
                .to_string(),
        ),
    };
    match outcome {
        Ok(message) => {
            println!("{message} in {:.2?}", started.elapsed());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Replays a capture file of either version strictly, as `rehearse replay
/// --strict` does: a version 3 capture streamed as it is read.
fn replay_capture_file(file: std::fs::File) -> rehearse_runtime::replay::ReplaySummary {
    use rehearse::storage::{replay_bundle, replay_capture};
    use rehearse_runtime::replay::{open_capture, OpenedCapture, ReplayOptions};
    let options = ReplayOptions { strict: true };
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    match open_capture(reader).expect("the capture opens") {
        OpenedCapture::Stream(stream) => replay_capture(*stream, options),
        OpenedCapture::Legacy(bundle) => replay_bundle(&bundle, options),
    }
    .expect("the capture replays")
}
