//! What `rehearse audit --bindings FILE` holds a log to: each persona's
//! lease TTL and budget, from a scenario file or from a small bindings file.
//!
//! A bindings file (format version 1) is YAML:
//!
//! ```yaml
//! version: 1
//! personas:
//!   merge_captain:
//!     lease_ttl: 5m                       # optional, default 5m
//!     budget: { daily_usd: 1.0, run_usd: 0.25, hourly_usd: 0.5, max_tokens: 1000 }
//!     entry_workflow: workflows/merge.harn#run   # optional, used by --to-scenario
//!     template_ref: software_factory@v0    # optional, used by --to-scenario
//!     schedules: ["*/30 * * * *"]          # optional, used by --to-scenario
//! ```
//!
//! A file with `steps` is read as a scenario instead, strictly, and its
//! personas, start, seed and supervisor are used.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use rehearse_runtime::config::BudgetPolicy;
use rehearse_runtime::{Constraints, Millis, PersonaSpec};
use serde::Deserialize;

use crate::scenario::{parse_scenario, parse_str, ScenarioError};

/// The bindings format version this harness reads.
pub const BINDINGS_VERSION: u32 = 1;

/// The largest bindings file read: 1 MiB.
pub const MAX_BINDINGS_BYTES: u64 = 1024 * 1024;

/// The bindings an audit holds a log to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bindings {
    /// The personas, with an empty `entry_workflow` where the file gave none.
    pub personas: BTreeMap<String, PersonaSpec>,
    /// From a scenario file: its start, seed and supervisor.
    pub scenario: Option<ScenarioFrame>,
}

/// What a scenario given as bindings adds to its personas.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioFrame {
    pub start_ms: i64,
    pub seed: u64,
    pub supervisor: Option<Constraints>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a bindings file such as `{version: 1, personas: {NAME: {budget: {daily_usd: 1.0}}}}`"
)]
struct BindingsFile {
    version: u32,
    personas: BTreeMap<String, Binding>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a persona binding such as `{lease_ttl: 5m, budget: {daily_usd: 1.0}}`"
)]
struct Binding {
    #[serde(default)]
    lease_ttl: Option<Millis>,
    #[serde(default)]
    budget: BudgetPolicy,
    #[serde(default)]
    entry_workflow: Option<String>,
    #[serde(default)]
    template_ref: Option<String>,
    #[serde(default)]
    schedules: Vec<String>,
}

/// Why bindings could not be read. Every message starts with the file, as
/// `path:line:column: message` where a position is known.
#[derive(Debug, thiserror::Error)]
pub enum BindingsError {
    #[error("{file}: {reason}")]
    Read { file: String, reason: ReadReason },
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{file}:{at} {source}")]
    Yaml {
        file: String,
        /// `line:column:` when the parser knows it, else empty.
        at: String,
        source: serde_yaml::Error,
    },
    #[error("{file}: bindings version {version} is not supported, expected `version: {BINDINGS_VERSION}`")]
    Version { file: String, version: u32 },
    #[error("{file}: persona `{persona}`: {}", .error.message())]
    Persona {
        file: String,
        persona: String,
        error: ScenarioError,
    },
}

/// Why a bindings file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadReason {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("it is {0}, expected a regular YAML file")]
    NotAFile(&'static str),
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error("not UTF-8 text, expected YAML")]
    NotUtf8,
}

/// Reads bindings from `path`: a scenario when it has `steps` (or is larger
/// than a bindings file may be), otherwise a bindings file. Errors read
/// `path:line:column: message`.
pub fn load(path: &Path) -> Result<Bindings, BindingsError> {
    let display = path.display().to_string();
    // A file too large for bindings can only be a scenario.
    let text = match read_limited(path) {
        Ok(text) => Some(text),
        Err(Limited::TooLarge) => None,
        Err(Limited::Other(reason)) => {
            return Err(BindingsError::Read {
                file: display,
                reason,
            })
        }
    };
    let probe: Option<serde_yaml::Value> = text
        .as_deref()
        .map(|text| serde_yaml::from_str(text).unwrap_or_default());
    if probe
        .as_ref()
        .is_none_or(|probe| probe.get("steps").is_some())
    {
        let scenario = parse_scenario(path)?;
        return Ok(Bindings {
            personas: scenario.personas,
            scenario: Some(ScenarioFrame {
                start_ms: scenario.start_ms,
                seed: scenario.seed,
                supervisor: scenario.supervisor,
            }),
        });
    }
    let text = text.unwrap_or_default();
    let file: BindingsFile = serde_yaml::from_str(&text).map_err(|source| {
        let at = source
            .location()
            .map_or_else(String::new, |l| format!("{}:{}:", l.line(), l.column()));
        BindingsError::Yaml {
            file: display.clone(),
            at,
            source,
        }
    })?;
    if file.version != BINDINGS_VERSION {
        return Err(BindingsError::Version {
            file: display,
            version: file.version,
        });
    }
    let mut personas = BTreeMap::new();
    for (name, binding) in file.personas {
        let spec = PersonaSpec {
            entry_workflow: binding.entry_workflow.unwrap_or_default(),
            template_ref: binding.template_ref,
            schedules: binding.schedules,
            budget: binding.budget,
            lease_ttl: binding.lease_ttl,
            ..PersonaSpec::default()
        };
        check_binding(&display, &name, &spec)?;
        personas.insert(name, spec);
    }
    Ok(Bindings {
        personas,
        scenario: None,
    })
}

/// A binding is checked as a scenario's persona would be, through the
/// scenario parser, so the rules live in one place.
fn check_binding(display: &str, name: &str, spec: &PersonaSpec) -> Result<(), BindingsError> {
    let mut spec = spec.clone();
    if spec.entry_workflow.is_empty() {
        spec.entry_workflow = "audit".to_string();
    }
    let probe = serde_json::json!({
        "version": 1,
        "start": "2026-01-01T00:00:00Z",
        "personas": { name: spec },
        "steps": [],
    });
    let yaml = serde_yaml::to_string(&probe).expect("a probe scenario serialises");
    parse_str(&yaml, display, "bindings")
        .map(drop)
        .map_err(|error| BindingsError::Persona {
            file: display.to_string(),
            persona: name.to_string(),
            error,
        })
}

/// Why a bindings file was not read whole.
enum Limited {
    /// Larger than [`MAX_BINDINGS_BYTES`]: only a scenario can be.
    TooLarge,
    Other(ReadReason),
}

fn read_limited(path: &Path) -> Result<String, Limited> {
    let metadata =
        std::fs::metadata(path).map_err(|error| Limited::Other(ReadReason::Open(error)))?;
    if !metadata.is_file() {
        return Err(Limited::Other(ReadReason::NotAFile(
            crate::atomic::describe(&metadata.file_type()),
        )));
    }
    let file =
        std::fs::File::open(path).map_err(|error| Limited::Other(ReadReason::Open(error)))?;
    let mut bytes = Vec::new();
    file.take(MAX_BINDINGS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| Limited::Other(ReadReason::Read(error)))?;
    if bytes.len() as u64 > MAX_BINDINGS_BYTES {
        return Err(Limited::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| Limited::Other(ReadReason::NotUtf8))
}
