//! What a runtime is configured with: persona bindings (entry workflow,
//! schedules, budget, lease TTL, stages) and the supervisor's constraints.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Millis;

/// The default lease TTL: five minutes.
pub const DEFAULT_LEASE_TTL: Millis = Millis(5 * 60 * 1000);

/// Spending limits of one persona; every limit is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a budget such as `{daily_usd: 0.02, run_usd: 0.02, max_tokens: 100}`"
)]
pub struct BudgetPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub daily_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub hourly_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub run_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

/// One declared stage of a persona's workflow, as the seed's `StageDecl`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a stage such as `{name: plan}`")]
pub struct StageDecl {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side_effect_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<StageExit>,
}

/// Where a stage goes next.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a map such as `{on_complete: STAGE, on_failure: STAGE}`"
)]
pub struct StageExit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_complete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
}

/// A persona binding as a scenario declares it (the name is the map key).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a persona binding such as `{entry_workflow: workflows/merge.harn#run}`"
)]
pub struct PersonaSpec {
    #[schemars(regex(pattern = r"\S"))]
    pub entry_workflow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default_budget")]
    pub budget: BudgetPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::duration::positive_duration_schema")]
    pub lease_ttl: Option<Millis>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageDecl>,
}

fn is_default_budget(budget: &BudgetPolicy) -> bool {
    *budget == BudgetPolicy::default()
}

impl PersonaSpec {
    /// The lease TTL, defaulting to five minutes.
    pub fn lease_ttl(&self) -> Millis {
        self.lease_ttl.unwrap_or(DEFAULT_LEASE_TTL)
    }
}

/// The supervisor's constraints; absent means no limit and no retries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "supervisor constraints such as `{max_in_flight: 1, max_retries: 2}`"
)]
#[schemars(extend("dependencies" = {
    "max_per_window": ["rate_window"],
    "rate_window": ["max_per_window"],
}))]
pub struct Constraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_in_flight: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_per_window: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::duration::positive_duration_schema")]
    pub rate_window: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Millis>,
    #[serde(default)]
    pub max_retries: u64,
}

/// Everything a runtime is built from: enough to re-drive it from a capture
/// bundle with no scenario file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a runtime configuration")]
pub struct RuntimeConfig {
    /// The scenario clock's origin, in milliseconds since the epoch.
    pub start_ms: i64,
    /// The seed of every generated id.
    pub seed: u64,
    pub personas: BTreeMap<String, PersonaSpec>,
    #[serde(default)]
    pub supervisor: Constraints,
}
