//! The committed protocol schema, `docs/protocol.schema.json`, is what
//! `rehearse schema --protocol` prints (generated from the message types in
//! harness/src/protocol.rs), and it is a valid draft-07 schema that accepts
//! the messages docs/PROTOCOL.md shows and refuses garbage.

mod common;

use common::root;
use std::process::Command;

use serde_json::{json, Value};

fn committed() -> String {
    std::fs::read_to_string(root().join("docs/protocol.schema.json")).expect("the committed schema")
}

#[test]
fn the_committed_protocol_schema_is_what_rehearse_schema_protocol_prints() {
    let printed = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(["schema", "--protocol"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert!(
        committed() == String::from_utf8_lossy(&printed.stdout),
        "docs/protocol.schema.json is stale: regenerate it with `cargo run -q -p rehearse -- schema --protocol > docs/protocol.schema.json`"
    );
}

#[test]
fn the_schema_accepts_protocol_messages_and_refuses_garbage() {
    let schema: Value = serde_json::from_str(&committed()).expect("the schema is JSON");
    let validator = jsonschema::draft7::new(&schema).expect("a valid draft-07 schema");
    let good = [
        json!({"type": "hello", "protocol": "rehearse-protocol/1", "harness": "rehearse/0.1.0"}),
        json!({"type": "hello", "protocol": "rehearse-protocol/1",
               "implementation": {"name": "toy", "version": "1"},
               "capabilities": {"steps": ["trigger", "pause"], "outcomes": ["completed"], "answers": ["receipts", "events"]}}),
        json!({"type": "configured"}),
        json!({"type": "op", "event_id": "step-1", "at_ms": 0, "at": "1970-01-01T00:00:00Z", "op": {"pause": "p"}}),
        json!({"type": "query", "query": "status", "persona": "p", "at_ms": 0, "at": "1970-01-01T00:00:00Z"}),
        json!({"type": "result", "receipt": "ok", "events": [
            {"topic": "persona.runtime.events", "kind": "persona.paused", "occurred_at": "1970-01-01T00:00:00Z", "headers": {}, "payload": {}}]}),
        json!({"type": "answer", "value": null}),
        json!({"type": "unsupported", "message": "no"}),
        json!({"type": "end"}),
        json!({"type": "bye"}),
    ];
    for message in &good {
        assert!(validator.is_valid(message), "refused: {message}");
    }
    let bad = [
        json!({"type": "teleport"}),
        json!({"type": "configured", "extra": 1}),
        json!({"type": "result", "receipt": 7}),
        json!({"type": "op", "event_id": "step-1", "at_ms": 0, "at": "x", "op": {"fly": {}}}),
        json!({"type": "hello", "protocol": "rehearse-protocol/1",
               "implementation": {"name": "toy", "version": "1"},
               "capabilities": {"steps": ["teleport"], "outcomes": [], "answers": []}}),
        json!([1, 2, 3]),
    ];
    for message in &bad {
        assert!(!validator.is_valid(message), "accepted: {message}");
    }
}
