//! The filters of a process listing, decoded from a JSON record the way the
//! modelled runtime's `processes.list` tool decodes its arguments, with its messages.

use super::record::{ProcessRecord, ProcessStatus};

/// Which lifecycle states a listing shows; `running` unless asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProcessStatusFilter {
    #[default]
    Running,
    Completed,
    Failed,
    Cancelled,
    Abandoned,
    Any,
}

impl ProcessStatusFilter {
    /// Reads a status name; `None` means the default, `running`.
    pub fn decode(value: Option<&str>) -> Result<Self, FilterError> {
        match value.unwrap_or("running") {
            "running" => Ok(Self::Running),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            "cancelled" => Ok(Self::Cancelled),
            "abandoned" => Ok(Self::Abandoned),
            "any" => Ok(Self::Any),
            other => Err(FilterError::Status(other.to_string())),
        }
    }

    pub fn matches(self, status: ProcessStatus) -> bool {
        match self {
            Self::Running => status == ProcessStatus::Running,
            Self::Completed => status == ProcessStatus::Completed,
            Self::Failed => status == ProcessStatus::Failed,
            Self::Cancelled => status == ProcessStatus::Cancelled,
            Self::Abandoned => status == ProcessStatus::Abandoned,
            Self::Any => true,
        }
    }
}

/// A listing filter the modelled registry refuses; each message is its
/// decoder's, word for word.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("processes.list status must be `running`, `completed`, `failed`, `cancelled`, `abandoned`, or `any`, got `{0}`")]
    Status(String),
    #[error("processes.list expects a record of process filters")]
    NotARecord,
    #[error("processes.list unknown filter `{0}`")]
    Unknown(String),
    #[error("processes.list `waiting` filter must be a boolean")]
    Waiting,
}

/// A decoded listing filter: every given facet must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessListFilter {
    /// Matches a record whose identity has exactly this definition.
    pub definition: Option<serde_json::Value>,
    pub status: ProcessStatusFilter,
    /// `true` lists only waiting processes, `false` only those not waiting.
    pub waiting: Option<bool>,
}

impl ProcessListFilter {
    /// Decodes `{definition?, status?, waiting?}`.
    ///
    /// A `status` that is not a string (`status: 5`, `null`, `true`, a
    /// list) falls back to the default state, `running`, as the modelled
    /// registry's decoder does (docs/SCENARIOS.md, "Additions to v1").
    pub fn decode(args: &serde_json::Value) -> Result<Self, FilterError> {
        let map = args.as_object().ok_or(FilterError::NotARecord)?;
        // With several unknown filters, the first in the map's (sorted,
        // hence stable) key order is named.
        if let Some(key) = map
            .keys()
            .find(|key| !matches!(key.as_str(), "definition" | "status" | "waiting"))
        {
            return Err(FilterError::Unknown(key.clone()));
        }
        let status = match map.get("status") {
            None => ProcessStatusFilter::default(),
            Some(serde_json::Value::String(name)) => ProcessStatusFilter::decode(Some(name))?,
            Some(_) => ProcessStatusFilter::default(),
        };
        let waiting = map
            .get("waiting")
            .map(|value| value.as_bool().ok_or(FilterError::Waiting))
            .transpose()?;
        Ok(Self {
            definition: map.get("definition").cloned(),
            status,
            waiting,
        })
    }

    pub fn matches(&self, record: &ProcessRecord) -> bool {
        self.status.matches(record.status)
            && self
                .definition
                .as_ref()
                .is_none_or(|definition| record.identity.definition.as_ref() == Some(definition))
            && self
                .waiting
                .is_none_or(|waiting| record.wait.is_some() == waiting)
    }
}
