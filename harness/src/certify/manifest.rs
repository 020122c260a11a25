//! Conformance manifests, `conformance/<implementation>.toml`: the
//! scenarios an implementation is expected to fail, each with its class and
//! reason, and the headers to drop before comparing events. A manifest is
//! hostile input: at most [`MAX_MANIFEST_BYTES`], unknown keys refused,
//! every entry complete, no scenario listed twice.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The manifest format this harness reads.
pub const MANIFEST_VERSION: u32 = 1;

/// The largest manifest read: 1 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("failed to read the manifest `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the manifest `{path}` is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge { path: String },
    #[error("the manifest `{path}` is invalid: {problem}")]
    Invalid { path: String, problem: Invalid },
}

/// What is wrong with a manifest's text.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("`manifest_version` is {0}, this harness reads {MANIFEST_VERSION}")]
    Version(u32),
    #[error("`implementation` is empty")]
    NoImplementation,
    #[error("`ignore_headers`: `{}` is not a header name or a prefix ending in `*`", .0.escape_debug())]
    Header(String),
    #[error("`{}` is not a scenario path under `scenarios/` (such as `lease/expiry.yaml`)", .0.escape_debug())]
    ScenarioPath(String),
    #[error("`{0}` has an empty `reason`")]
    NoReason(String),
    #[error("`{0}` is listed twice")]
    Twice(String),
}

/// Why a scenario is expected to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// The implementation is wrong.
    UpstreamBug,
    /// The reference deliberately differs (docs/SCENARIOS.md says why).
    DeliberateDeviation,
    /// The scenario cannot be driven through the implementation's API.
    NotDrivable,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpstreamBug => "upstream-bug",
            Self::DeliberateDeviation => "deliberate-deviation",
            Self::NotDrivable => "not-drivable",
        }
    }
}

/// One expected failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The scenario's path under `scenarios/` (`lease/expiry.yaml`).
    pub scenario: String,
    pub class: Class,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    manifest_version: u32,
    implementation: String,
    #[serde(default)]
    ignore_headers: Vec<String>,
    #[serde(default)]
    expected_failure: Vec<Entry>,
}

/// Header names dropped before comparing: exact names, or prefixes that
/// end in `*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderFilter(Vec<String>);

impl HeaderFilter {
    /// Whether header `name` is dropped.
    pub fn drops(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            })
    }
}

/// A read manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The implementation it is for; empty for the empty manifest.
    pub implementation: String,
    pub headers: HeaderFilter,
    /// Expected failures by scenario name.
    pub expected: BTreeMap<String, Entry>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| ManifestError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut bytes = Vec::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ManifestError::Read {
                path: shown.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge { path: shown });
        }
        let text = String::from_utf8(bytes).map_err(|_| ManifestError::Invalid {
            path: shown.clone(),
            problem: Invalid::NotUtf8,
        })?;
        Self::parse(&text).map_err(|problem| ManifestError::Invalid {
            path: shown,
            problem,
        })
    }

    /// Parses and validates manifest text.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let file: File = toml::from_str(text)?;
        if file.manifest_version != MANIFEST_VERSION {
            return Err(Invalid::Version(file.manifest_version));
        }
        if file.implementation.trim().is_empty() {
            return Err(Invalid::NoImplementation);
        }
        if let Some(bad) = file.ignore_headers.iter().find(|h| !valid_header(h)) {
            return Err(Invalid::Header(bad.clone()));
        }
        let mut expected = BTreeMap::new();
        for entry in file.expected_failure {
            check_entry(&entry)?;
            let name = entry.scenario.clone();
            if expected.insert(name.clone(), entry).is_some() {
                return Err(Invalid::Twice(name));
            }
        }
        Ok(Self {
            implementation: file.implementation,
            headers: HeaderFilter(file.ignore_headers),
            expected,
        })
    }
}

/// Whether `pattern` is a header name or a prefix ending in `*`.
fn valid_header(pattern: &str) -> bool {
    let name = pattern.strip_suffix('*').unwrap_or(pattern);
    !(name.is_empty() || name.contains('*') || name.chars().any(char::is_control))
}

/// An entry names a scenario under `scenarios/` and says why.
fn check_entry(entry: &Entry) -> Result<(), Invalid> {
    let name = &entry.scenario;
    let plain = !name.is_empty()
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.starts_with('/')
        && !name.contains('\\')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && !name.chars().any(char::is_control);
    if !plain {
        return Err(Invalid::ScenarioPath(name.clone()));
    }
    if entry.reason.trim().is_empty() {
        return Err(Invalid::NoReason(name.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
manifest_version = 1
implementation = "toy"
ignore_headers = ["harn.provenance.*", "x-trace"]

[[expected_failure]]
scenario = "lease/expiry.yaml"
class = "upstream-bug"
reason = "never writes persona.lease.expired"
"#;

    #[test]
    fn a_manifest_reads_with_its_entries_and_header_filters() {
        let manifest = Manifest::parse(GOOD).unwrap();
        assert_eq!(manifest.implementation, "toy");
        assert_eq!(
            manifest.expected["lease/expiry.yaml"].class,
            Class::UpstreamBug
        );
        assert!(manifest.headers.drops("harn.provenance.source"));
        assert!(manifest.headers.drops("x-trace"));
        assert!(!manifest.headers.drops("x-trace-2"));
    }

    #[test]
    fn garbage_and_unknown_keys_and_bad_entries_are_refused() {
        let bad = [
            "\u{0}\u{1}garbage",
            "manifest_version = 2\nimplementation = \"x\"",
            "manifest_version = 1\nimplementation = \"x\"\nsurprise = 1",
            "manifest_version = 1\nimplementation = \"\"",
            "manifest_version = 1\nimplementation = \"x\"\n[[expected_failure]]\nscenario = \"a.yaml\"\nclass = \"upstream-bug\"",
            "manifest_version = 1\nimplementation = \"x\"\n[[expected_failure]]\nscenario = \"a.yaml\"\nclass = \"meh\"\nreason = \"r\"",
            "manifest_version = 1\nimplementation = \"x\"\n[[expected_failure]]\nscenario = \"../etc/passwd.yaml\"\nclass = \"upstream-bug\"\nreason = \"r\"",
            "manifest_version = 1\nimplementation = \"x\"\n[[expected_failure]]\nscenario = \"a.yaml\"\nclass = \"upstream-bug\"\nreason = \" \"",
            "manifest_version = 1\nimplementation = \"x\"\nignore_headers = [\"a*b\"]",
            "manifest_version = 1\nimplementation = \"x\"\n[[expected_failure]]\nscenario = \"a.yaml\"\nclass = \"upstream-bug\"\nreason = \"r\"\nextra = 1",
        ];
        for text in bad {
            assert!(Manifest::parse(text).is_err(), "accepted: {text}");
        }
        let twice = format!(
            "{GOOD}\n[[expected_failure]]\nscenario = \"lease/expiry.yaml\"\nclass = \"not-drivable\"\nreason = \"again\"\n"
        );
        assert!(Manifest::parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
    }

    #[test]
    fn an_oversized_manifest_is_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        std::fs::write(&path, vec![b'#'; MAX_MANIFEST_BYTES as usize + 10]).unwrap();
        assert!(matches!(
            Manifest::read(&path),
            Err(ManifestError::TooLarge { .. })
        ));
    }
}
