//! The committed event vocabulary schema, `docs/events.schema.json`, is what
//! `rehearse schema --events` prints (generated from the runtime's event
//! types), and every event of every golden `events.jsonl` validates against
//! it with a real draft-07 validator; every kind appears in some golden; and
//! `docs/EVENTS.md` documents exactly the typed kinds of each topic.

mod common;

use common::root;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Every `events.jsonl` under `dir`, sorted.
fn event_logs(dir: &Path) -> Vec<PathBuf> {
    common::files_under(dir)
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "events.jsonl"))
        .map(|path| dir.join(path))
        .collect()
}

fn committed() -> String {
    std::fs::read_to_string(root().join("docs/events.schema.json")).expect("the committed schema")
}

#[test]
fn the_committed_events_schema_is_what_rehearse_schema_events_prints() {
    let printed = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(["schema", "--events"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert!(
        committed() == String::from_utf8_lossy(&printed.stdout),
        "docs/events.schema.json is stale: regenerate it with `cargo run -q -p rehearse -- schema --events > docs/events.schema.json`"
    );
}

#[test]
fn every_golden_event_validates_and_every_kind_is_seen() {
    let schema: Value = serde_json::from_str(&committed()).expect("the schema is JSON");
    let validator = jsonschema::draft7::new(&schema).expect("a valid draft-07 schema");
    let logs = event_logs(&root().join("snapshots"));
    assert!(logs.len() > 50, "only {} event logs", logs.len());
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for path in &logs {
        let text = std::fs::read_to_string(path).unwrap();
        for (index, line) in text.lines().enumerate() {
            let event: Value = serde_json::from_str(line).unwrap();
            seen.insert(event["kind"].as_str().unwrap_or_default().to_string());
            let errors: Vec<String> = validator
                .iter_errors(&event)
                .map(|error| format!("{error} at {}", error.instance_path()))
                .collect();
            if !errors.is_empty() {
                failures.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    index + 1,
                    errors.join("; ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let kinds: Vec<&str> = schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alternative| alternative["properties"]["kind"]["const"].as_str().unwrap())
        .collect();
    let unseen: Vec<&&str> = kinds.iter().filter(|kind| !seen.contains(**kind)).collect();
    assert!(unseen.is_empty(), "kinds no golden shows: {unseen:?}");
}

/// The kinds `docs/EVENTS.md` documents under each topic's heading: the
/// first cell of every table row (`| \`kind\` | ...`), by `## \`topic\``.
fn documented_kinds() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(root().join("docs/EVENTS.md")).expect("docs/EVENTS.md");
    let mut by_topic = std::collections::BTreeMap::new();
    let mut topic: Option<String> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            topic = heading
                .strip_prefix('`')
                .and_then(|rest| rest.strip_suffix('`'))
                .map(str::to_string);
            continue;
        }
        let (Some(topic), Some(row)) = (&topic, line.strip_prefix("| `")) else {
            continue;
        };
        if let Some((kind, _)) = row.split_once("` |") {
            by_topic
                .entry(topic.clone())
                .or_insert_with(BTreeSet::new)
                .insert(kind.to_string());
        }
    }
    by_topic
}

#[test]
fn docs_events_md_documents_every_kind_of_every_topic_and_no_other() {
    let documented = documented_kinds();
    let vocabulary = rehearse_runtime::event::vocabulary();
    let topics: BTreeSet<String> = vocabulary
        .iter()
        .map(|(topic, _)| topic.to_string())
        .collect();
    let headings: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(headings, topics, "docs/EVENTS.md's topic headings");
    for (topic, kinds) in vocabulary {
        let typed: BTreeSet<String> = kinds.iter().map(|kind| kind.to_string()).collect();
        assert_eq!(
            documented[topic], typed,
            "docs/EVENTS.md's table for `{topic}` must list exactly the typed kinds"
        );
    }
}
