//! The committed JSON Schema, `docs/scenario.schema.json`, agrees with lint:
//! every scenario of the library validates against it, and every file of
//! `scenarios/invalid/` is refused by it, except the few listed below with
//! the reason JSON Schema cannot say their rule. Checked with a real
//! validator (the `jsonschema` crate, draft-07), as an editor would.

mod common;

use common::root;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Invalid files the schema accepts, and why no JSON Schema can refuse them.
const LINT_ONLY: &[(&str, &str)] = &[
    (
        "at-before-start.yaml",
        "compares a step's time with `start`, another field",
    ),
    (
        "at-decreasing.yaml",
        "compares a step's time with the step before it",
    ),
    ("bad-cron.yaml", "a cron expression's grammar is croner's"),
    (
        "duplicate-persona.yaml",
        "duplicate keys are gone once the YAML is read into JSON",
    ),
    (
        "unknown-persona-in-expect.yaml",
        "refers to a persona declared elsewhere in the file",
    ),
    (
        "unknown-persona-in-step.yaml",
        "refers to a persona declared elsewhere in the file",
    ),
    (
        "repeat-unknown-persona.yaml",
        "refers to a persona declared elsewhere in the file",
    ),
    (
        "repeat-overlaps-next-step.yaml",
        "compares a step's time with the repeat before it",
    ),
    (
        "receipt-without-op.yaml",
        "whether a step has an operation decides which expect keys fit",
    ),
    (
        "receipts-not-resume.yaml",
        "the step kind beside `expect` decides which expect keys fit",
    ),
    (
        "receipt-counts-not-resume.yaml",
        "the step kind beside `expect` decides which expect keys fit",
    ),
    (
        "events-without-op.yaml",
        "whether a step has an operation decides which expect keys fit",
    ),
    (
        "unknown-status-path.yaml",
        "a dotted path names nested fields, checked against the output's own schema",
    ),
    (
        "unknown-run-path.yaml",
        "a dotted path names nested fields, checked against the output's own schema",
    ),
    (
        "unknown-records-path.yaml",
        "a dotted path names nested fields, checked against the output's own schema",
    ),
    (
        "unknown-process-path.yaml",
        "a dotted path names nested fields, checked against the output's own schema",
    ),
    (
        "money-too-many-places.yaml",
        "an amount's decimal places are in its text, which is gone once the YAML is read into a JSON number",
    ),
    (
        "money-not-exact.yaml",
        "an amount's digits are in its text, which is gone once the YAML is read into a JSON number",
    ),
    (
        "unknown-pipeline-path.yaml",
        "a dotted path names nested fields, checked against the output's own schema",
    ),
];

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a scenario directory")
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "yaml") {
            out.push(path);
        }
    }
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("docs/scenario.schema.json"))
        .expect("the committed schema");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft7::new(&schema).expect("the schema is a valid draft-07 schema")
}

/// The file read as YAML into JSON, or why it is not one YAML document.
fn instance(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|error| error.to_string())?;
    serde_yaml::from_str(&text).map_err(|error| error.to_string())
}

#[test]
fn every_library_scenario_validates_against_the_committed_schema() {
    let validator = validator();
    let mut files = Vec::new();
    yaml_files(&root().join("scenarios"), &mut files);
    let invalid = root().join("scenarios/invalid");
    files.retain(|path| !path.starts_with(&invalid));
    assert!(files.len() > 50, "only {} scenarios", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let value = instance(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{}: {}", path.display(), errors.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_scenario_is_refused_unless_listed() {
    let validator = validator();
    let mut files = Vec::new();
    yaml_files(&root().join("scenarios/invalid"), &mut files);
    let mut accepted = Vec::new();
    let mut listed_but_refused = Vec::new();
    for path in &files {
        let name = path.file_name().expect("a file name").to_string_lossy();
        let refused = match instance(path) {
            Err(_) => true,
            Ok(value) => !validator.is_valid(&value),
        };
        let listed = LINT_ONLY.iter().any(|(file, _)| *file == name);
        match (refused, listed) {
            (false, false) => accepted.push(name.into_owned()),
            (true, true) => listed_but_refused.push(name.into_owned()),
            _ => {}
        }
    }
    assert!(
        accepted.is_empty(),
        "the schema accepts invalid scenarios: {accepted:?}"
    );
    assert!(
        listed_but_refused.is_empty(),
        "listed as lint-only but the schema refuses them, so drop them from LINT_ONLY: {listed_but_refused:?}"
    );
    for (file, reason) in LINT_ONLY {
        assert!(
            files.iter().any(|path| path.ends_with(file)),
            "LINT_ONLY names `{file}` ({reason}), which is not in scenarios/invalid"
        );
    }
}
