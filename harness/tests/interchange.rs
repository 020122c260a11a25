//! Log interchange with the modelled upstream persona runtime, rehearse's
//! side (docs/SCENARIOS.md, "Log interchange"): the log the upstream wrote
//! itself (`harn-vm =0.10.185`, committed under `tests/data/audit/upstream/`)
//! folds here into the same status the upstream's own `persona_status`
//! gives for it, value receipts included. The upstream's status is
//! committed beside the log, written by `adapters/harn-vm`'s
//! `harn-interchange upstream` (the command is in adapters/README.md).
//!
//! The other direction (a log written here loads into the upstream's fold)
//! is `harn-interchange run` in `adapters/harn-vm`, whose output is
//! committed under `conformance/interchange/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rehearse::audit::{load_bindings, LogReader};
use rehearse_runtime::persona::{rebuild_states, Persona};
use rehearse_runtime::{parse_rfc3339_ms, StoredEvent};
use serde_json::Value;

/// The time the upstream's status was taken at: the log's last event.
const AT: &str = "2026-04-24T12:41:00Z";

fn upstream_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/audit/upstream")
}

fn read_log(path: &Path) -> Vec<StoredEvent> {
    let mut reader = LogReader::open(path).unwrap();
    let mut events = Vec::new();
    while let Some((_, event)) = reader.next_event().unwrap() {
        events.push(event);
    }
    events
}

/// The status rehearse folds from the upstream's log.
fn folded_status(log: &Path) -> Value {
    let bindings = load_bindings(
        &upstream_dir().join("harn-vm-0.10.185.persona.runtime.events.bindings.yaml"),
    )
    .unwrap();
    let mut personas: BTreeMap<String, Persona> = bindings
        .personas
        .iter()
        .map(|(name, spec)| (name.clone(), Persona::new(name, spec.clone()).unwrap()))
        .collect();
    rebuild_states(&mut personas, &read_log(log)).unwrap();
    let status = personas["merge_captain"].status(parse_rfc3339_ms(AT).unwrap());
    serde_json::to_value(status).unwrap()
}

/// Every path at which two JSON values differ (numbers to within 1e-9).
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let null = Value::Null;
                let (l, r) = (x.get(key).unwrap_or(&null), y.get(key).unwrap_or(&null));
                differences(&format!("{path}.{key}"), l, r, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}.{i}"), l, r, out);
            }
        }
        (Value::Number(x), Value::Number(y))
            if (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= 1e-9 => {}
        (l, r) if l == r => {}
        (l, r) => out.push(format!("{path}: rehearse {l}, upstream {r}")),
    }
}

#[test]
fn an_upstream_log_folds_into_the_upstreams_own_status() {
    let log = upstream_dir().join("harn-vm-0.10.185.persona.runtime.events.jsonl");
    let ours = folded_status(&log);
    let theirs: Value = serde_json::from_str(
        &std::fs::read_to_string(upstream_dir().join("harn-vm-0.10.185.status.json")).unwrap(),
    )
    .unwrap();
    let receipts = ours["value_receipts"].as_array().unwrap();
    assert!(
        receipts.len() >= 4,
        "the upstream's value events fold into value receipts: {receipts:?}"
    );
    assert_eq!(
        receipts.len(),
        theirs["value_receipts"].as_array().unwrap().len()
    );
    let mut found = Vec::new();
    differences("status", &ours, &theirs, &mut found);
    assert!(
        found.is_empty(),
        "rehearse folds the upstream log differently:\n{}",
        found.join("\n")
    );
}

#[test]
fn value_event_times_are_written_in_the_form_the_upstream_reads() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../snapshots/admission/completed-run/events.jsonl");
    // The file as written, not through the reader (which reads both forms).
    let values: Vec<Value> = std::fs::read_to_string(golden)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| {
            event["kind"]
                .as_str()
                .unwrap()
                .starts_with("persona.value.")
        })
        .collect();
    assert!(!values.is_empty());
    for event in values {
        let at = &event["payload"]["occurred_at"];
        let parts = at
            .as_array()
            .unwrap_or_else(|| panic!("{} occurred_at {at}", event["kind"]));
        assert_eq!(parts.len(), 9, "{at}");
        assert_eq!(&parts[..2], &[Value::from(2026), Value::from(114)], "{at}");
    }
}
