//! Restarts on the durable log: status after a restart equals status before
//! it, and a torn tail drops exactly the last whole operation.

use rehearse_runtime::config::{PersonaSpec, RuntimeConfig};
use rehearse_runtime::engine::{RunPlan, Runtime};
use rehearse_runtime::file_log::{FileLog, FileLogOptions};
use rehearse_runtime::{parse_rfc3339_ms, Millis, Op};

fn at(offset: &str) -> i64 {
    parse_rfc3339_ms("2026-04-24T12:00:00Z").unwrap() + Millis::parse(offset).unwrap().as_i64()
}

fn op(yaml: &str) -> Op {
    serde_yaml::from_str(yaml).unwrap()
}

/// A fresh durable log in its own directory, and the configuration of one
/// persona `a`, starting at 12:00.
fn durable(name: &str) -> (FileLog, RuntimeConfig, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("rehearse-restart-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (log, _) = FileLog::open(&dir, FileLogOptions::default()).unwrap();
    let spec = PersonaSpec {
        entry_workflow: "wf".into(),
        ..PersonaSpec::default()
    };
    let config = RuntimeConfig {
        start_ms: at("0s"),
        seed: 3,
        personas: [("a".to_string(), spec)].into_iter().collect(),
        supervisor: Default::default(),
    };
    (log, config, dir)
}

fn runtime(name: &str) -> (Runtime, std::path::PathBuf) {
    let (log, config, dir) = durable(name);
    (Runtime::new(&config, Box::new(log)).unwrap(), dir)
}

fn pr(n: u32) -> Op {
    op(&format!("trigger: {{persona: a, provider: github, kind: pr, metadata: {{repository: o/r, number: {n}}}, cost: {{usd: 0.5}}}}"))
}

#[test]
fn a_restart_in_a_paused_queue_keeps_status_and_the_queue_drains_once() {
    let (mut rt, dir) = runtime("paused");
    rt.execute(&op("pause: a"), RunPlan::COMPLETE, at("0s"))
        .unwrap();
    rt.execute(&pr(1), RunPlan::COMPLETE, at("1s")).unwrap();
    rt.execute(&pr(2), RunPlan::COMPLETE, at("2s")).unwrap();
    let before = rt.status("a", at("3s")).unwrap();
    let reopened = rt.restart(None).unwrap();
    assert_eq!(reopened.receipt, "ok");
    assert_eq!(rt.status("a", at("3s")).unwrap(), before);
    let (result, _) = rt
        .execute(&op("resume: a"), RunPlan::COMPLETE, at("4s"))
        .unwrap();
    assert_eq!(result.receipts, ["completed", "completed"]);
    let (result, _) = rt
        .execute(&op("resume: a"), RunPlan::COMPLETE, at("5s"))
        .unwrap();
    assert!(result.receipts.is_empty(), "drained work never runs twice");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_torn_tail_drops_the_whole_last_operation() {
    let (mut rt, dir) = runtime("torn");
    rt.execute(&pr(1), RunPlan::COMPLETE, at("0s")).unwrap();
    let events_before = rt.log().len();
    let status_before = rt.status("a", at("1s")).unwrap();
    let ids_before: Vec<_> = rt.log().all().iter().map(|e| e.payload.clone()).collect();
    rt.execute(&pr(2), RunPlan::COMPLETE, at("1s")).unwrap();
    let result = rt.restart(Some(10)).unwrap();
    let detail = result.detail.unwrap();
    assert_eq!(detail["cut_bytes"], 10);
    assert_eq!(rt.log().len(), events_before);
    assert_eq!(detail["events"].as_u64(), Some(events_before));
    assert!(detail["dropped_events"].as_u64().unwrap() > 0);
    assert_eq!(rt.status("a", at("1s")).unwrap(), status_before);
    // The dropped operation runs again with the same ids it had.
    let (again, _) = rt.execute(&pr(2), RunPlan::COMPLETE, at("1s")).unwrap();
    assert_eq!(again.receipt, "completed");
    let payloads: Vec<_> = rt.log().all().iter().map(|e| e.payload.clone()).collect();
    assert_eq!(&payloads[..ids_before.len()], &ids_before[..]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_session_survives_a_restart_that_shrinks_the_log() {
    use rehearse_runtime::capture::Session;
    use rehearse_runtime::replay::{replay, ReplayOptions};
    let (log, config, dir) = durable("session");
    let mut session = Session::new("torn", &config, Box::new(log)).unwrap();
    session.handle("step-1", at("0s"), &pr(1));
    let torn = session.handle("step-2", at("1s"), &op("restart: {torn_tail_bytes: 30}"));
    assert!(
        torn.events.is_empty(),
        "a restart appends nothing: {:?}",
        torn.events
    );
    assert_eq!(torn.result.unwrap().receipt, "ok");
    session.handle("step-3", at("2s"), &pr(1));
    let (bundle, _) = session.finish();
    let replay_dir = dir.join("replay");
    std::fs::create_dir_all(&replay_dir).unwrap();
    let (log, _) = FileLog::open(&replay_dir, FileLogOptions::default()).unwrap();
    replay(&bundle, ReplayOptions { strict: true }, Box::new(log)).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
