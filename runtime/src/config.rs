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

/// One declared stage of a persona's workflow, as the modelled runtime's `StageDecl`.
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

/// The most retries a supervisor may be configured with.
pub const MAX_RETRIES: u64 = 1000;

/// The largest amount of money any one field may hold: sums of many such
/// amounts stay exact enough and finite.
pub const MAX_USD: f64 = 1_000_000_000.0;

/// The largest token count any one field may hold: sums over every step a
/// scenario file can hold stay below `u64::MAX`, so a saturated sum never
/// stands in for a real one.
pub const MAX_TOKENS: u64 = 1_000_000_000_000;

/// The longest duration (lease TTL, rate window, deadline): 100 years, so
/// a time plus a duration stays within the times the outputs can write.
pub const MAX_DURATION_MS: u64 = 100 * 366 * 24 * 60 * 60 * 1000;

/// The latest time a configuration may start at: the end of year 9999.
pub const MAX_START_MS: i64 = 253_402_300_799_999;

/// The most personas a configuration may bind.
pub const MAX_PERSONAS: usize = 10_000;

/// One problem with a configuration or an operation: the field path it is
/// about (map keys and list indices as text) and what was expected. The
/// scenario parser turns the path into a line and column; replay names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    pub path: Vec<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.path.join("."), self.message)
    }
}

fn issue(path: &[&str], message: String) -> ConfigIssue {
    ConfigIssue {
        path: path.iter().map(|s| (*s).to_string()).collect(),
        message,
    }
}

impl RuntimeConfig {
    /// Every problem of the configuration, by the rules scenarios are held
    /// to: a capture bundle's configuration is checked exactly as the
    /// scenario it came from was.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if !(0..=MAX_START_MS).contains(&self.start_ms) {
            issues.push(issue(
                &["start_ms"],
                format!(
                    "`start_ms` {} is out of range, expected 0 to {MAX_START_MS}",
                    self.start_ms
                ),
            ));
        }
        if self.personas.len() > MAX_PERSONAS {
            issues.push(issue(
                &["personas"],
                format!(
                    "{} personas, expected at most {MAX_PERSONAS}",
                    self.personas.len()
                ),
            ));
        }
        for (name, spec) in &self.personas {
            issues.extend(persona_issues(name, spec));
        }
        issues.extend(constraint_issues(&self.supervisor));
        issues
    }
}

/// The problems of one persona binding; paths start at the persona's name.
pub fn persona_issues(name: &str, spec: &PersonaSpec) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    if name.trim().is_empty() {
        issues.push(issue(
            &[name],
            "empty persona name, expected a name such as `merge_captain`".to_owned(),
        ));
    }
    if spec.entry_workflow.trim().is_empty() {
        issues.push(issue(
            &[name, "entry_workflow"],
            "empty `entry_workflow`, expected a workflow such as `workflows/merge.harn#run`"
                .to_owned(),
        ));
    }
    let budget = &spec.budget;
    for (field, value) in [
        ("daily_usd", budget.daily_usd),
        ("hourly_usd", budget.hourly_usd),
        ("run_usd", budget.run_usd),
    ] {
        if let Some(message) = value.and_then(|value| money_problem(field, value)) {
            issues.push(issue(&[name, "budget", field], message));
        }
    }
    if let Some(message) = budget
        .max_tokens
        .and_then(|tokens| tokens_problem("max_tokens", tokens))
    {
        issues.push(issue(&[name, "budget", "max_tokens"], message));
    }
    for (index, expression) in spec.schedules.iter().enumerate() {
        if let Some(message) = cron_problem(expression) {
            issues.push(issue(&[name, "schedules", &index.to_string()], message));
        }
    }
    if let Some(ttl) = spec.lease_ttl {
        if let Some(message) = duration_problem("lease_ttl", ttl, "5m") {
            issues.push(issue(&[name, "lease_ttl"], message));
        }
    }
    issues
}

/// The problems of the supervisor's constraints; paths start at the field.
pub fn constraint_issues(constraints: &Constraints) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let mut push = |field: &str, message: String| issues.push(issue(&[field], message));
    for (field, value) in [
        ("max_in_flight", constraints.max_in_flight),
        ("max_per_window", constraints.max_per_window),
    ] {
        if value == Some(0) {
            push(
                field,
                format!("`{field}` of 0 would never run anything, expected at least 1"),
            );
        }
    }
    if let Some(message) = constraints
        .rate_window
        .and_then(|window| duration_problem("rate_window", window, "10s"))
    {
        push("rate_window", message);
    }
    // A deadline of 0 is allowed (every deferred episode is already late);
    // only its length is bounded.
    if let Some(message) = constraints
        .deadline
        .filter(|deadline| deadline.0 > 0)
        .and_then(|deadline| duration_problem("deadline", deadline, "30s"))
    {
        push("deadline", message);
    }
    match (constraints.max_per_window, constraints.rate_window) {
        (Some(_), None) => push(
            "max_per_window",
            "`max_per_window` without `rate_window`, expected both or neither".to_owned(),
        ),
        (None, Some(_)) => push(
            "rate_window",
            "`rate_window` without `max_per_window`, expected both or neither".to_owned(),
        ),
        _ => {}
    }
    if constraints.max_retries > MAX_RETRIES {
        push(
            "max_retries",
            format!(
                "`max_retries` of {} is above the limit, expected at most {MAX_RETRIES}",
                constraints.max_retries
            ),
        );
    }
    issues
}

/// Why an amount of money is refused: not finite, negative, or above
/// [`MAX_USD`].
pub fn money_problem(field: &str, value: f64) -> Option<String> {
    if !value.is_finite() {
        Some(format!(
            "`{field}` is not a finite number (`{value}`), expected an amount of at least 0"
        ))
    } else if value < 0.0 {
        Some(format!(
            "negative amount `{value}` for `{field}`, expected an amount of at least 0"
        ))
    } else if value > MAX_USD {
        Some(format!(
            "amount `{value}` for `{field}` is above the limit, expected at most {MAX_USD}"
        ))
    } else {
        None
    }
}

/// Why a token count is refused: above [`MAX_TOKENS`].
pub fn tokens_problem(field: &str, value: u64) -> Option<String> {
    (value > MAX_TOKENS)
        .then(|| format!("`{field}` of {value} is above the limit, expected at most {MAX_TOKENS}"))
}

/// Why a duration is refused: zero, or longer than [`MAX_DURATION_MS`];
/// `example` is a good value to suggest.
pub fn duration_problem(field: &str, value: Millis, example: &str) -> Option<String> {
    if value.0 == 0 {
        Some(format!(
            "`{field}` of 0s, expected a positive duration such as `{example}`"
        ))
    } else if value.0 > MAX_DURATION_MS {
        Some(format!(
            "`{field}` of {}ms is above the limit, expected at most {MAX_DURATION_MS}ms (100 years)",
            value.0
        ))
    } else {
        None
    }
}

/// Why a cron expression is refused, checked as the runtime reads it:
/// croner's default pattern, five fields (seconds are not allowed), with the
/// `@daily`-style nicknames.
pub fn cron_problem(expression: &str) -> Option<String> {
    let error = croner::Cron::new(expression).parse().err()?;
    let detail = match error {
        croner::errors::CronError::EmptyPattern => "the pattern is empty".to_owned(),
        croner::errors::CronError::InvalidPattern(detail)
        | croner::errors::CronError::IllegalCharacters(detail)
        | croner::errors::CronError::ComponentError(detail) => detail,
        other => other.to_string(),
    };
    Some(format!(
        "invalid cron expression `{expression}`: {}, expected five fields (minute hour day month weekday) such as `*/30 * * * *`",
        sentence_to_fragment(&detail)
    ))
}

/// Croner writes sentences ("Pattern must …."); messages here are fragments.
fn sentence_to_fragment(text: &str) -> String {
    let trimmed = text.trim().trim_end_matches('.');
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The problems of an operation's amounts (money and tokens, by the limits
/// above); paths start at the operation's kind. A scenario's steps and a
/// capture bundle's payloads are held to the same limits.
pub fn op_issues(op: &crate::op::Op) -> Vec<ConfigIssue> {
    use crate::op::Op;
    let kind = op.kind();
    let (usd, avoided, tokens, under) = match op {
        Op::Trigger(trigger) => (
            trigger.cost.usd,
            trigger.cost.avoided_usd,
            trigger.cost.tokens,
            "cost",
        ),
        Op::Tick(tick) => (
            tick.cost.usd,
            tick.cost.avoided_usd,
            tick.cost.tokens,
            "cost",
        ),
        Op::Spend(spend) => (spend.usd, 0.0, spend.tokens, ""),
        _ => return Vec::new(),
    };
    let at = |field: &'static str| -> Vec<&str> {
        if under.is_empty() {
            vec![kind, field]
        } else {
            vec![kind, under, field]
        }
    };
    let mut issues = Vec::new();
    for (field, value) in [("usd", usd), ("avoided_usd", avoided)] {
        if let Some(message) = money_problem(field, value) {
            issues.push(issue(&at(field), message));
        }
    }
    if let Some(message) = tokens_problem("tokens", tokens) {
        issues.push(issue(&at("tokens"), message));
    }
    issues
}
