//! Log interchange with the upstream persona runtime (`harn-vm`), its side:
//! a log loads into the upstream's own status fold (`persona_status`).
//!
//!   harn-interchange run RUN_DIR...
//!       Each RUN_DIR is what `rehearse run` wrote for one scenario
//!       (`events.jsonl`, `capture.json`, `report.json`). Appends every event of
//!       `events.jsonl` to an in-memory upstream log, asks the upstream for
//!       each configured persona's status at the report's final time, and
//!       compares it with the report's `final_state.personas`, field by
//!       field (value receipts included). Prints what it compared and a
//!       count; exits 1 on a difference.
//!   harn-interchange upstream LOG.jsonl AT
//!       LOG.jsonl is the upstream's own file-log topic file (as
//!       `harn-fixture` writes it); prints the upstream's status of the
//!       fixture's persona at AT (RFC 3339) as JSON, for rehearse's side of
//!       the proof to compare with.
//!
//! Exit status: 0 same, 1 a difference, 2 bad input.

use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use harn_vm::event_log::{AnyEventLog, EventLog, LogEvent};
use harn_vm::{parse_persona_ms, persona_status};
use rehearse_adapter_harn_vm::{
    bindings, differences, fixture_binding, load_rehearse_log, read_line, topic, PERSONA_TOPIC,
};
use serde_json::Value;

/// The largest `capture.json` or `report.json` read: 256 MiB.
const MAX_JSON_BYTES: u64 = 256 * 1024 * 1024;

fn read_json(path: &Path) -> Result<Value, String> {
    let size = std::fs::metadata(path)
        .map_err(|error| format!("{}: {error}", path.display()))?
        .len();
    if size > MAX_JSON_BYTES {
        return Err(format!(
            "{}: larger than {MAX_JSON_BYTES} bytes",
            path.display()
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, String> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// Compares the upstream's status of a rehearse run with the run's own:
/// whether every persona agrees, and how many value receipts the run's
/// statuses hold.
async fn compare_run(dir: &Path) -> Result<(bool, usize), String> {
    let capture = read_json(&dir.join("capture.json"))?;
    let report = read_json(&dir.join("report.json"))?;
    let config = capture
        .get("config")
        .ok_or("capture.json has no `config`")?;
    let at = report
        .pointer("/final_state/at")
        .and_then(Value::as_str)
        .ok_or("report.json has no `final_state.at`")?;
    let now_ms = parse_persona_ms(at)?;
    let log = rehearse_adapter_harn_vm::memory_log();
    let lines = load_rehearse_log(&log, open(&dir.join("events.jsonl"))?).await?;
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    println!("{name}: {lines} events loaded into the upstream's log; status at {at}");
    let (mut same, mut compared) = (true, 0);
    for (name, binding) in bindings(config)? {
        let theirs = persona_status(&log, &binding, now_ms).await?;
        let theirs = serde_json::to_value(&theirs).map_err(|error| error.to_string())?;
        let ours = report
            .pointer(&format!("/final_state/personas/{name}"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut found = Vec::new();
        differences("status", &ours, &theirs, &mut found);
        let receipts = |status: &Value| {
            status
                .get("value_receipts")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        println!(
            "persona {name}: value receipts rehearse {} upstream {}; {}",
            receipts(&ours),
            receipts(&theirs),
            if found.is_empty() {
                "same status".to_string()
            } else {
                format!("{} differences", found.len())
            }
        );
        for (path, a, b) in &found {
            println!("  {path}: rehearse {a} upstream {b}");
        }
        same &= found.is_empty();
        compared += receipts(&ours);
    }
    Ok((same, compared))
}

/// Appends the upstream's own file-log lines (`{"id": N, "event": {...}}`)
/// to `log` on the persona topic.
async fn load_upstream_log(log: &Arc<AnyEventLog>, path: &Path) -> Result<(), String> {
    let mut input = open(path)?;
    let persona = topic(PERSONA_TOPIC)?;
    let mut line_no = 0;
    while let Some(line) = read_line(&mut input)? {
        line_no += 1;
        let record: Value =
            serde_json::from_str(&line).map_err(|error| format!("line {line_no}: {error}"))?;
        let event: LogEvent =
            serde_json::from_value(record.get("event").cloned().unwrap_or(Value::Null))
                .map_err(|error| format!("line {line_no}: {error}"))?;
        log.append(&persona, event)
            .await
            .map_err(|error| format!("line {line_no}: {error}"))?;
    }
    Ok(())
}

async fn upstream_status(path: &Path, at: &str) -> Result<Value, String> {
    let log = rehearse_adapter_harn_vm::memory_log();
    load_upstream_log(&log, path).await?;
    let status = persona_status(&log, &fixture_binding(), parse_persona_ms(at)?).await?;
    serde_json::to_value(&status).map_err(|error| error.to_string())
}

async fn run(args: &[String]) -> Result<bool, String> {
    match args {
        [mode, dirs @ ..] if mode == "run" && !dirs.is_empty() => {
            let (mut same, mut receipts) = (0, 0);
            for dir in dirs {
                let (agrees, count) = compare_run(Path::new(dir)).await?;
                same += usize::from(agrees);
                receipts += count;
            }
            println!(
                "{same} of {} runs fold to the same status upstream; {receipts} value receipts compared",
                dirs.len()
            );
            Ok(same == dirs.len())
        }
        [mode, log, at] if mode == "upstream" => {
            let status = upstream_status(Path::new(log), at).await?;
            let text = serde_json::to_string_pretty(&status).map_err(|error| error.to_string())?;
            println!("{text}");
            Ok(true)
        }
        _ => Err(
            "usage: harn-interchange run RUN_DIR... | harn-interchange upstream LOG.jsonl AT"
                .to_string(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("harn-interchange: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("harn-interchange: {error}");
            ExitCode::from(2)
        }
    }
}
