//! Run records: what one persona run did (status, times, stages, child
//! runs), saved atomically as versioned JSON and loaded back with checks, and
//! the replay fixture derived from a record that a later run is checked
//! against.
//!
//! Stage rule (the persona runtime knows a run's outcome, not what each stage
//! did, so the stages are derived from the binding's declared stages):
//! - a completed run passes every declared stage, in order, each `completed`
//!   with outcome `success`;
//! - a failed run fails at its first declared stage: one stage, `failed`,
//!   whose outcome is the run's error (or `failed` when there is none);
//! - a crashed run dies in its first declared stage: one stage, `crashed`,
//!   with outcome `crashed`;
//! - a binding with no declared stages is treated as declaring one stage
//!   named after its entry workflow.
//!
//! Stages that never ran are not listed. Stage `i` (from 1) has id
//! `stage_{i}`. A stage's metadata is `RunFacts::stage_metadata[name]`; a
//! stage whose metadata holds a `worker` object with a non-empty `id`
//! materialises a child run, as the modelled runtime does (first stage wins per worker
//! id; a later stage naming the same worker only fills fields still unset).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::format_ms;
use crate::config::StageDecl;

/// The run record format this build writes and reads: 3 saves every record
/// of a run in one `runs.jsonl` (version 2 had a file each, `runs/{id}.json`,
/// and said so in `persisted_path`).
pub const RUN_RECORD_VERSION: u64 = 3;

/// The file, relative to a scenario's output directory, that holds every
/// run record of the run, one a line: the records' `persisted_path`.
pub const RUN_RECORDS_FILE: &str = "runs.jsonl";

/// The `_type` of every run record.
pub const RUN_RECORD_TYPE: &str = "run_record";
/// The replay fixture format this build writes and reads.
pub const REPLAY_FIXTURE_VERSION: u64 = 1;

/// How a run ended.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    Failed,
    /// The holder died after the run started; the run never finished.
    Crashed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Crashed => "crashed",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one stage ended.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Completed,
    Failed,
    Crashed,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Crashed => "crashed",
        }
    }
}

/// The plain facts of a finished (or crashed) persona run, as the persona
/// runtime knows them.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFacts {
    pub run_id: String,
    pub persona: String,
    pub work_key: String,
    /// The binding's entry workflow; names the single stage of a binding
    /// without declared stages.
    pub entry_workflow: String,
    pub status: RunStatus,
    pub started_at_ms: i64,
    /// `None` for a crashed run.
    pub finished_at_ms: Option<i64>,
    /// Metadata per stage name; a `worker` entry materialises a child run.
    pub stage_metadata: BTreeMap<String, BTreeMap<String, Value>>,
    /// Why the run failed, such as `semantic_error`.
    pub error: Option<String>,
}

/// One stage of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunStage {
    /// `stage_{i}`, counting from 1 in declaration order.
    pub id: String,
    pub name: String,
    pub status: StageStatus,
    /// `success`, the run's error, or `crashed`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
}

/// A child run a stage started, materialised from the stage's `worker`
/// metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildRun {
    pub worker_id: String,
    /// `worker.name`, default `worker`.
    pub worker_name: String,
    pub parent_stage_id: Option<String>,
    /// `worker.task`, default empty.
    pub task: String,
    /// `worker.status`, default `completed`.
    pub status: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// `worker.child_run_id`.
    pub run_id: Option<String>,
    /// `worker.audit.session_id`.
    pub session_id: Option<String>,
}

impl ChildRun {
    /// The child run described by `stage`'s `worker` metadata, if any.
    fn from_stage(stage: &RunStage) -> Option<Self> {
        let worker = stage.metadata.get("worker")?;
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
        let worker_id = text(worker.get("id")).filter(|id| !id.is_empty())?;
        Some(Self {
            worker_id,
            worker_name: text(worker.get("name")).unwrap_or_else(|| "worker".to_string()),
            parent_stage_id: Some(stage.id.clone()).filter(|id| !id.is_empty()),
            task: text(worker.get("task")).unwrap_or_default(),
            status: text(worker.get("status")).unwrap_or_else(|| "completed".to_string()),
            started_at: text(worker.get("started_at")),
            finished_at: text(worker.get("finished_at")),
            run_id: text(worker.get("child_run_id")),
            session_id: text(
                worker
                    .get("audit")
                    .and_then(|audit| audit.get("session_id")),
            ),
        })
    }

    /// Fills the fields this record lacks from `other`, keeping its own.
    fn fill_missing(&mut self, other: Self) {
        fn fill(slot: &mut Option<String>, other: Option<String>) {
            if slot.is_none() {
                *slot = other;
            }
        }
        if self.worker_name.is_empty() {
            self.worker_name = other.worker_name;
        }
        if self.task.is_empty() {
            self.task = other.task;
        }
        if self.status.is_empty() {
            self.status = other.status;
        }
        fill(&mut self.parent_stage_id, other.parent_stage_id);
        fill(&mut self.started_at, other.started_at);
        fill(&mut self.finished_at, other.finished_at);
        fill(&mut self.run_id, other.run_id);
        fill(&mut self.session_id, other.session_id);
    }
}

/// The record of one persona run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub run_record_version: u64,
    /// Always `run_record`, as the modelled system's `_type`.
    #[serde(rename = "_type")]
    pub type_name: String,
    pub id: String,
    /// The run at the root of this run's tree: its own id, as no run here
    /// has a parent.
    pub root_run_id: Option<String>,
    pub persona: String,
    pub work_key: String,
    pub entry_workflow: String,
    pub status: RunStatus,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC; `None` for a crashed run.
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub stages: Vec<RunStage>,
    #[serde(default)]
    pub child_runs: Vec<ChildRun>,
    /// What a later run of the same work must reproduce, derived from this
    /// record as the modelled system does when it normalises one.
    pub replay_fixture: Option<ReplayFixture>,
    /// Where `rehearse run` saves the record, relative to the scenario's
    /// output directory: [`RUN_RECORDS_FILE`], one record a line.
    pub persisted_path: Option<String>,
}

/// Why a run record or replay fixture could not be saved or loaded. Every
/// message names the file.
#[derive(Debug, thiserror::Error)]
pub enum RunRecordError {
    #[error("failed to write {what} at `{path}`: {source}")]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read {what} at `{path}`: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed {what} at `{path}`: {message}")]
    Malformed {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("unsupported {what} version {found} at `{path}`, expected {expected}")]
    UnsupportedVersion {
        what: &'static str,
        path: PathBuf,
        found: Value,
        expected: u64,
    },
    #[error("invalid {what} at `{path}`: {reason}")]
    Invalid {
        what: &'static str,
        path: PathBuf,
        reason: RecordInvalid,
    },
}

/// Which invariant of a run record is broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordInvalid {
    #[error("version {0} is not {RUN_RECORD_VERSION}")]
    Version(u64),
    #[error("empty `id`")]
    EmptyId,
    #[error("empty `persona`")]
    EmptyPersona,
    #[error("no stages")]
    NoStages,
    #[error("a {0} run without `finished_at`")]
    Unfinished(RunStatus),
}

impl RunRecord {
    /// The record of a run from its facts and the binding's declared stages,
    /// following the stage rule in the module documentation.
    pub fn from_run(facts: RunFacts, stages: &[StageDecl]) -> Self {
        let declared: Vec<&str> = if stages.is_empty() {
            vec![facts.entry_workflow.as_str()]
        } else {
            stages.iter().map(|stage| stage.name.as_str()).collect()
        };
        let ran = match facts.status {
            RunStatus::Completed => declared.len(),
            RunStatus::Failed | RunStatus::Crashed => 1,
        };
        let (status, outcome) = match facts.status {
            RunStatus::Completed => (StageStatus::Completed, "success".to_string()),
            RunStatus::Failed => (
                StageStatus::Failed,
                facts.error.clone().unwrap_or_else(|| "failed".to_string()),
            ),
            RunStatus::Crashed => (StageStatus::Crashed, "crashed".to_string()),
        };
        let stages = declared
            .iter()
            .take(ran)
            .enumerate()
            .map(|(index, name)| RunStage {
                id: format!("stage_{}", index + 1),
                name: (*name).to_string(),
                status,
                outcome: outcome.clone(),
                metadata: facts.stage_metadata.get(*name).cloned().unwrap_or_default(),
            })
            .collect();
        let mut record = Self {
            run_record_version: RUN_RECORD_VERSION,
            type_name: RUN_RECORD_TYPE.to_string(),
            root_run_id: Some(facts.run_id.clone()),
            id: facts.run_id,
            persona: facts.persona,
            work_key: facts.work_key,
            entry_workflow: facts.entry_workflow,
            status: facts.status,
            started_at: format_ms(facts.started_at_ms),
            finished_at: facts.finished_at_ms.map(format_ms),
            error: facts.error,
            stages,
            child_runs: Vec::new(),
            replay_fixture: None,
            persisted_path: None,
        };
        record.materialize_child_runs();
        record.replay_fixture = Some(ReplayFixture::from_run(&record));
        record.persisted_path = Some(RUN_RECORDS_FILE.to_string());
        record
    }

    /// Adds the child runs named by stage metadata, merging with those
    /// already listed by worker id. Idempotent.
    pub fn materialize_child_runs(&mut self) {
        let found: Vec<ChildRun> = self
            .stages
            .iter()
            .filter_map(ChildRun::from_stage)
            .collect();
        for child in found {
            match self
                .child_runs
                .iter_mut()
                .find(|existing| existing.worker_id == child.worker_id)
            {
                Some(existing) => existing.fill_missing(child),
                None => self.child_runs.push(child),
            }
        }
    }

    /// The file name a record is saved under by default: `{id}.json`.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.id)
    }

    /// Writes the record to `path` atomically as pretty JSON, creating the
    /// parent directory if needed.
    pub fn save(&self, path: &Path) -> Result<(), RunRecordError> {
        const WHAT: &str = "run record";
        if let Err(reason) = self.validate() {
            return Err(RunRecordError::Invalid {
                what: WHAT,
                path: path.to_path_buf(),
                reason,
            });
        }
        write_json_atomically(WHAT, path, self)
    }

    /// Reads a record written by [`RunRecord::save`], refusing unknown
    /// versions, malformed files and records that break their invariants.
    pub fn load(path: &Path) -> Result<Self, RunRecordError> {
        const WHAT: &str = "run record";
        let mut record: Self =
            read_versioned(WHAT, path, "run_record_version", RUN_RECORD_VERSION)?;
        if let Err(reason) = record.validate() {
            return Err(RunRecordError::Invalid {
                what: WHAT,
                path: path.to_path_buf(),
                reason,
            });
        }
        record.materialize_child_runs();
        Ok(record)
    }

    /// The invariants of a record, checked right before writing and right
    /// after reading.
    fn validate(&self) -> Result<(), RecordInvalid> {
        if self.run_record_version != RUN_RECORD_VERSION {
            return Err(RecordInvalid::Version(self.run_record_version));
        }
        if self.id.is_empty() {
            return Err(RecordInvalid::EmptyId);
        }
        if self.persona.is_empty() {
            return Err(RecordInvalid::EmptyPersona);
        }
        if self.stages.is_empty() {
            return Err(RecordInvalid::NoStages);
        }
        // A crashed run may or may not have been seen to end; the others
        // always have a finish time.
        if self.status != RunStatus::Crashed && self.finished_at.is_none() {
            return Err(RecordInvalid::Unfinished(self.status));
        }
        Ok(())
    }
}

/// What a replay fixture expects of one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageAssertion {
    pub name: String,
    pub expected_status: StageStatus,
    pub expected_outcome: String,
}

/// What a later run of the same work must reproduce: the run's status and
/// each stage's name, status and outcome, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayFixture {
    pub replay_fixture_version: u64,
    pub source_run_id: String,
    pub persona: String,
    pub expected_status: RunStatus,
    pub stage_assertions: Vec<StageAssertion>,
}

/// One assertion of a fixture that a run does not meet. `path` is dotted
/// like a scenario's `expect` paths (`status`, `stages.0.outcome`); `null`
/// stands for a stage the run does not have or the fixture does not expect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureMismatch {
    pub path: String,
    pub expected: Value,
    pub actual: Value,
}

impl fmt::Display for FixtureMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.path, self.expected, self.actual
        )
    }
}

impl ReplayFixture {
    /// The fixture a run sets for its replays.
    pub fn from_run(run: &RunRecord) -> Self {
        Self {
            replay_fixture_version: REPLAY_FIXTURE_VERSION,
            source_run_id: run.id.clone(),
            persona: run.persona.clone(),
            expected_status: run.status,
            stage_assertions: run
                .stages
                .iter()
                .map(|stage| StageAssertion {
                    name: stage.name.clone(),
                    expected_status: stage.status,
                    expected_outcome: stage.outcome.clone(),
                })
                .collect(),
        }
    }

    /// Every assertion `run` does not meet, in fixture order; empty when the
    /// run reproduces the fixture. A stage beyond the fixture's assertions is
    /// reported with an expected name of `null`.
    pub fn check(&self, run: &RunRecord) -> Vec<FixtureMismatch> {
        let mut mismatches = Vec::new();
        let mut compare = |path: String, expected: Value, actual: Value| {
            if expected != actual {
                mismatches.push(FixtureMismatch {
                    path,
                    expected,
                    actual,
                });
            }
        };
        compare(
            "status".to_string(),
            Value::from(self.expected_status.as_str()),
            Value::from(run.status.as_str()),
        );
        for (index, assertion) in self.stage_assertions.iter().enumerate() {
            let stage = run.stages.get(index);
            compare(
                format!("stages.{index}.name"),
                Value::from(assertion.name.as_str()),
                stage.map_or(Value::Null, |s| Value::from(s.name.as_str())),
            );
            compare(
                format!("stages.{index}.status"),
                Value::from(assertion.expected_status.as_str()),
                stage.map_or(Value::Null, |s| Value::from(s.status.as_str())),
            );
            compare(
                format!("stages.{index}.outcome"),
                Value::from(assertion.expected_outcome.as_str()),
                stage.map_or(Value::Null, |s| Value::from(s.outcome.as_str())),
            );
        }
        for (index, stage) in run
            .stages
            .iter()
            .enumerate()
            .skip(self.stage_assertions.len())
        {
            compare(
                format!("stages.{index}.name"),
                Value::Null,
                Value::from(stage.name.as_str()),
            );
        }
        mismatches
    }

    /// Writes the fixture to `path` atomically as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), RunRecordError> {
        write_json_atomically("replay fixture", path, self)
    }

    /// Reads a fixture written by [`ReplayFixture::save`].
    pub fn load(path: &Path) -> Result<Self, RunRecordError> {
        read_versioned(
            "replay fixture",
            path,
            "replay_fixture_version",
            REPLAY_FIXTURE_VERSION,
        )
    }
}

/// Writes `value` as pretty JSON to `path`: a temporary file in the same
/// directory is written and synced, renamed over `path`, and the directory is
/// synced so the rename itself survives a crash.
fn write_json_atomically<T: Serialize>(
    what: &'static str,
    path: &Path,
    value: &T,
) -> Result<(), RunRecordError> {
    let io_error = |source| RunRecordError::Write {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mut json = serde_json::to_string_pretty(value).expect("records serialise to JSON");
    json.push('\n');
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(file_name) = path.file_name() else {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        )));
    };
    fs::create_dir_all(&dir).map_err(io_error)?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(".tmp");
    let temp_path = dir.join(temp_name);
    let written = (|| {
        let mut file = File::create(&temp_path)?;
        file.write_all(json.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp_path, path)
    })();
    if let Err(error) = written {
        // The temporary file is ours and useless now; failing to remove it
        // changes nothing for the caller, who gets the original error.
        let _ = fs::remove_file(&temp_path);
        return Err(io_error(error));
    }
    sync_dir(&dir).map_err(io_error)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Directories cannot be opened for syncing on this platform; the rename
    // is as durable as the platform makes it.
    Ok(())
}

/// Reads a JSON object from `path` whose `version_field` must equal
/// `expected`, then decodes it strictly. The version is checked before the
/// shape, so a file from a future version is reported as such.
fn read_versioned<T: DeserializeOwned>(
    what: &'static str,
    path: &Path,
    version_field: &str,
    expected: u64,
) -> Result<T, RunRecordError> {
    let malformed = |message: String| RunRecordError::Malformed {
        what,
        path: path.to_path_buf(),
        message,
    };
    let text = fs::read_to_string(path).map_err(|source| RunRecordError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    let Some(object) = value.as_object() else {
        return Err(malformed("expected a JSON object".to_string()));
    };
    let Some(found) = object.get(version_field) else {
        return Err(malformed(format!("missing `{version_field}`")));
    };
    if found.as_u64() != Some(expected) {
        return Err(RunRecordError::UnsupportedVersion {
            what,
            path: path.to_path_buf(),
            found: found.clone(),
            expected,
        });
    }
    serde_json::from_value(value).map_err(|e| malformed(e.to_string()))
}
