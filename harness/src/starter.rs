//! Starter scenarios for `rehearse new`: the commented starter text, its
//! editor line pointing at the committed JSON Schema, and the atomic,
//! no-clobber write of a new file.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::scenario::name_problem;

/// Where a checkout keeps the generated schema.
pub const SCHEMA_FILE: &str = "docs/scenario.schema.json";

/// The editor schema reference for a scenario written into `dir`: a
/// relative path to the nearest enclosing `docs/scenario.schema.json`, so
/// editors can load it offline.
pub fn default_schema_ref(dir: &Path) -> String {
    let start = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    for (depth, ancestor) in start.ancestors().enumerate() {
        if ancestor.join(SCHEMA_FILE).is_file() {
            return format!("{}{SCHEMA_FILE}", "../".repeat(depth));
        }
    }
    "scenario.schema.json".to_string()
}

/// Why a starter scenario was not written.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("{0}")]
    InvalidName(String),
    #[error("refusing to overwrite `{0}`: it already exists")]
    Exists(PathBuf),
    #[error("failed to write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `dir/NAME.yaml` atomically (a temporary file in the same
/// directory, flushed to disk, then linked into place only if the name is
/// still free) and returns its path.
pub fn write_starter(name: &str, dir: &Path, schema: &str) -> Result<PathBuf, NewError> {
    if let Some(problem) = name_problem(name) {
        return Err(NewError::InvalidName(problem));
    }
    let path = dir.join(format!("{name}.yaml"));
    if path.exists() {
        return Err(NewError::Exists(path));
    }
    let write_error = |source| NewError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.yaml."))
        .tempfile_in(dir)
        .map_err(write_error)?;
    temp.write_all(starter(name, schema).as_bytes())
        .map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist_noclobber(&path).map_err(|error| {
        if error.error.kind() == std::io::ErrorKind::AlreadyExists {
            NewError::Exists(path.clone())
        } else {
            write_error(error.error)
        }
    })?;
    // The new directory entry is durable only once the directory is synced;
    // not every platform can open a directory, so this is best effort.
    if let Ok(directory) = std::fs::File::open(dir) {
        let _ = directory.sync_all();
    }
    Ok(path)
}

/// The starter scenario for `name`, with its editor schema line.
pub fn starter(name: &str, schema: &str) -> String {
    STARTER.replace("{schema}", schema).replace("{name}", name)
}

const STARTER: &str = r#"# yaml-language-server: $schema={schema}
# A rehearse scenario: timed steps driven through the reference runtime.
# Check it with `rehearse lint`, run it with `rehearse run`, and accept its
# outputs as goldens with `rehearse bless`. `rehearse schema` prints the JSON
# Schema that the first line points editors at.

version: 1
name: {name}
description: Work queued while paused runs once on resume.
# The scenario clock's origin (RFC 3339, UTC); step times are offsets from it.
start: 2026-04-24T12:00:00Z
# The source of every generated id: the same seed gives the same bytes.
seed: 0

personas:
  # A persona binding, by name.
  reviewer:
    entry_workflow: workflows/review.harn#run
    # Cron schedules, five fields; a `tick` step fires the first one.
    schedules: ["*/30 * * * *"]
    # Spending limits, all optional: run_usd, hourly_usd, daily_usd, max_tokens.
    budget: { daily_usd: 1.0, run_usd: 0.25, max_tokens: 10000 }
    lease_ttl: 5m

# Optional: the supervisor's limits and retries (absent: none).
# supervisor:
#   max_in_flight: 1
#   max_per_window: 2
#   rate_window: 10s
#   max_retries: 2

steps:
  # A provider event: the run completes and spends its cost.
  - at: 0s
    trigger:
      persona: reviewer
      provider: github
      kind: pull_request
      metadata: { repository: acme/widgets, number: "1" }
      cost: { usd: 0.01, tokens: 10 }
    # `events_include`: events the step appended, in this order (others may
    # come between); `run`: fields of its run receipt.
    expect:
      receipt: completed
      events_include: [persona.run.started, persona.run.completed]
      run: { work_key: "github:acme/widgets:pr:1" }

  # While the persona is paused, new work is queued instead of run.
  - at: 1m
    pause: reviewer
    expect: { receipt: ok }
  - at: 2m
    trigger:
      persona: reviewer
      provider: github
      kind: pull_request
      metadata: { repository: acme/widgets, number: "2" }
      cost: { usd: 0.01, tokens: 10 }
    expect: { receipt: queued }

  # Resume runs the queued work once, in work-key order.
  - at: 3m
    resume: reviewer
    expect: { receipts: [completed] }

  # A step with only an expectation: compare the persona's status.
  - at: 4m
    expect:
      persona: reviewer
      status: { state: idle, queued_events: 0, budget.spent_today_usd: 0.02 }

  # Time that advances: every schedule occurrence after the step before and
  # up to this one fires as a tick at its own time (12:30 and 13:00 here).
  - at: 1h
    advance: { cost: { usd: 0.01, tokens: 10 } }
    expect: { receipts: [completed, completed], records: { count: 4 } }

  # Load: one trigger 20 times, a second apart; `{i}` is the repetition number.
  - at: 2h
    repeat:
      times: 20
      every: 1s
      trigger: { persona: reviewer, provider: webhook, kind: push, metadata: { dedupe_key: "load-{i}" } }
    expect: { receipt_counts: { completed: 20 } }
"#;
