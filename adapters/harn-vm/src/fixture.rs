//! Writes a persona event log with the upstream persona runtime (`harn-vm`),
//! in the upstream's own on-disk format (its file event log: one JSON object
//! per line, `{"id": N, "event": {kind, payload, headers, occurred_at_ms}}`,
//! one file per topic), for `rehearse audit` to read as a real upstream log.
//!
//! Usage: `harn-fixture OUT.jsonl`. The operations are fixed; the upstream
//! draws run and lease ids from the wall clock, so two runs give different
//! ids and the fixture is produced once and committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use harn_vm::event_log::{AnyEventLog, FileEventLog};
use harn_vm::{
    disable_persona, fire_persona_schedule, fire_persona_trigger, parse_persona_ms, pause_persona,
    record_persona_spend, resume_persona, PersonaRunCost,
};

fn cost(usd: f64, tokens: u64) -> PersonaRunCost {
    PersonaRunCost {
        cost_usd: usd,
        tokens,
        ..Default::default()
    }
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn drive(log: &Arc<AnyEventLog>) -> Result<(), String> {
    let b = rehearse_adapter_harn_vm::fixture_binding();
    let at = |offset_s: i64| parse_persona_ms("2026-04-24T12:00:00Z").map(|t| t + offset_s * 1000);
    let pr1 = meta(&[("repository", "acme/widgets"), ("number", "1")]);
    let issue = meta(&[("issue_key", "ENG-7")]);
    let big = meta(&[("repository", "acme/widgets"), ("number", "2")]);
    let late = meta(&[("repository", "acme/widgets"), ("number", "3")]);
    let receipt = fire_persona_trigger(
        log,
        &b,
        "github",
        "pull_request",
        pr1.clone(),
        cost(0.01, 10),
        at(0)?,
    )
    .await?;
    eprintln!("trigger pr 1: {}", receipt.status);
    let receipt = fire_persona_trigger(
        log,
        &b,
        "github",
        "pull_request",
        pr1,
        cost(0.01, 10),
        at(1)?,
    )
    .await?;
    eprintln!("trigger pr 1 again: {}", receipt.status);
    pause_persona(log, &b, at(60)?).await?;
    let receipt =
        fire_persona_trigger(log, &b, "linear", "issue", issue, cost(0.005, 5), at(120)?).await?;
    eprintln!("trigger while paused: {}", receipt.status);
    resume_persona(log, &b, at(180)?).await?;
    let receipt = fire_persona_schedule(log, &b, cost(0.01, 10), at(1800)?).await?;
    eprintln!("schedule tick: {}", receipt.status);
    record_persona_spend(log, &b, cost(0.005, 5), at(1860)?).await?;
    let receipt = fire_persona_trigger(
        log,
        &b,
        "github",
        "pull_request",
        big,
        cost(0.03, 10),
        at(1920)?,
    )
    .await;
    eprintln!("trigger over run_usd: {:?}", receipt.map(|r| r.status));
    disable_persona(log, &b, at(2400)?).await?;
    let receipt = fire_persona_trigger(
        log,
        &b,
        "github",
        "pull_request",
        late,
        cost(0.0, 0),
        at(2460)?,
    )
    .await;
    eprintln!("trigger while disabled: {:?}", receipt.map(|r| r.status));
    Ok(())
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: harn-fixture OUT.jsonl");
    let root = std::env::temp_dir().join(format!("harn-fixture-{}", std::process::id()));
    let file_log = FileEventLog::open(root.clone(), 64).expect("open the upstream file event log");
    let log = Arc::new(AnyEventLog::File(file_log));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(drive(&log))
        .expect("drive the upstream runtime");
    let topic = root.join("topics").join("persona.runtime.events.jsonl");
    std::fs::copy(&topic, &out).expect("copy the topic file");
    std::fs::remove_dir_all(&root).expect("remove the scratch log");
}
