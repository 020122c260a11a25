//! The checks serde cannot make: names, money, crons, limits, the order of
//! times and references to personas. Each problem names the path it is about,
//! so the parser can report the position it was written at.

use std::collections::BTreeMap;
use std::fmt;

use rehearse_runtime::op::{Cost, Op};
use rehearse_runtime::{format_ms, Constraints, PersonaSpec};

use super::at::check_range;
use super::expect_keys::EventMatch;
use super::layout::YamlPath;
use super::model::{Expect, Scenario, Step, UNSETTLED_COUNTS};
use super::paths::{check_path, nearest, Shape};
use super::sequence::{Repeated, Sequence};

/// The longest scenario name: names become file names with suffixes added.
pub const MAX_NAME_LEN: usize = 128;

/// The most retries a supervisor may be configured with.
pub use rehearse_runtime::config::MAX_RETRIES;

/// Validation stops collecting problems after this many.
const MAX_ISSUES: usize = 100;

/// One problem with a scenario: where it is and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub path: YamlPath,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why `name` is not a valid scenario name, or `None` when it is.
///
/// Names become file names under the output directory, so the pattern
/// `[a-z0-9_-]+` is also what keeps `/` and `..` out of them.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty scenario name, expected `[a-z0-9_-]+`".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "scenario name is {} characters long, expected at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    (!valid).then(|| {
        format!(
            "invalid scenario name `{name}`, expected lowercase letters, digits, `_` and `-` (`[a-z0-9_-]+`)"
        )
    })
}

/// Whether `name` matches `[a-z0-9_-]+` and is at most [`MAX_NAME_LEN`] long.
pub fn is_valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// Every problem of `scenario` (up to a limit), in the order top-level
/// fields, personas, supervisor, steps.
pub fn validate(scenario: &Scenario) -> Vec<Issue> {
    let mut issues = Vec::new();
    let root = YamlPath::root();
    if let Some(message) = name_problem(&scenario.name) {
        issues.push(Issue {
            path: root.clone().field("name"),
            message,
        });
    }
    if let Err(range) = check_range(scenario.start_ms) {
        issues.push(Issue {
            path: root.clone().field("start"),
            message: format!("`start` is {range}"),
        });
    }
    for (name, spec) in &scenario.personas {
        check_persona(name, spec, &mut issues);
    }
    if let Some(supervisor) = &scenario.supervisor {
        check_supervisor(supervisor, &mut issues);
    }
    let mut previous: Option<&Step> = None;
    for (index, step) in scenario.steps.iter().enumerate() {
        if issues.len() >= MAX_ISSUES {
            break;
        }
        let base = root.clone().field("steps").index(index);
        check_step(scenario, step, previous, &base, &mut issues);
        previous = Some(step);
    }
    issues.truncate(MAX_ISSUES);
    issues
}

/// A configuration problem found by the runtime's shared rules, at its
/// place under `base`: the first segment is a map key (a persona's name),
/// later all-digit segments are list indices.
fn config_issue(base: &YamlPath, found: rehearse_runtime::ConfigIssue, keyed: bool) -> Issue {
    let mut path = base.clone();
    for (i, seg) in found.path.iter().enumerate() {
        path = match seg.parse::<usize>() {
            Ok(index) if i > 0 => path.index(index),
            _ => path.field(seg),
        };
    }
    // An empty persona name is about the key itself.
    if keyed && found.path.len() == 1 {
        path = path.as_key();
    }
    Issue {
        path,
        message: found.message,
    }
}

fn check_persona(name: &str, spec: &PersonaSpec, issues: &mut Vec<Issue>) {
    let base = YamlPath::root().field("personas");
    for found in rehearse_runtime::config::persona_issues(name, spec) {
        issues.push(config_issue(&base, found, true));
    }
}

fn money_problem(field: &str, value: f64) -> Option<String> {
    rehearse_runtime::config::money_problem(field, value)
}

fn check_supervisor(supervisor: &Constraints, issues: &mut Vec<Issue>) {
    let base = YamlPath::root().field("supervisor");
    for found in rehearse_runtime::config::constraint_issues(supervisor) {
        issues.push(config_issue(&base, found, false));
    }
}

fn check_step(
    scenario: &Scenario,
    step: &Step,
    previous: Option<&Step>,
    base: &YamlPath,
    issues: &mut Vec<Issue>,
) {
    if let Some(message) = at_problem(scenario, step, previous) {
        issues.push(Issue {
            path: base.clone().field("at"),
            message,
        });
    }
    if let Some(op) = &step.op {
        check_op(
            op,
            &scenario.personas,
            &base.clone().field(op.kind()),
            issues,
        );
    }
    if let Some(sequence) = &step.sequence {
        check_sequence(sequence, &scenario.personas, base, issues);
        if let Err(range) = check_range(step.end_ms()) {
            issues.push(Issue {
                path: base.clone().field(sequence.kind()),
                message: format!("the last repetition at {} ms is {range}", step.end_ms()),
            });
        }
    }
    if let Some(expect) = &step.expect {
        check_expect(
            scenario,
            expect,
            step,
            &base.clone().field("expect"),
            issues,
        );
    }
}

/// What is wrong with a step's `at`: out of the clock's range, before the
/// scenario's `start`, or earlier than the step (or the last repetition of
/// the `repeat`) before it.
fn at_problem(scenario: &Scenario, step: &Step, previous: Option<&Step>) -> Option<String> {
    if let Err(range) = check_range(step.at_ms) {
        return Some(format!("`at` {} is {range}", step.at));
    }
    if step.at_ms < scenario.start_ms {
        return Some(format!(
            "`at` {} is before `start` {}, expected a time at or after `start`",
            step.at,
            format_ms(scenario.start_ms)
        ));
    }
    let previous = previous?;
    if step.at_ms < previous.at_ms {
        return Some(format!(
            "`at` {} ({}) is earlier than the step before it at {} ({}), expected times that never decrease",
            step.at,
            format_ms(step.at_ms),
            previous.at,
            format_ms(previous.at_ms)
        ));
    }
    if step.at_ms < previous.end_ms() {
        return Some(format!(
            "`at` {} ({}) is earlier than the last repetition of the `repeat` before it ({}), expected times that never decrease",
            step.at,
            format_ms(step.at_ms),
            format_ms(previous.end_ms())
        ));
    }
    None
}

/// An `advance`'s cost, and a `repeat`'s body, are checked as a tick's or
/// trigger's; a `repeat` must end within the scenario clock's range.
fn check_sequence(
    sequence: &Sequence,
    personas: &BTreeMap<String, PersonaSpec>,
    base: &YamlPath,
    issues: &mut Vec<Issue>,
) {
    match sequence {
        Sequence::Advance(advance) => {
            let at = base.clone().field("advance").field("cost");
            check_cost(&advance.cost, &at, issues);
        }
        Sequence::Repeat(repeat) => {
            let base = base.clone().field("repeat");
            let op = match &repeat.body {
                Repeated::Trigger(trigger) => Op::Trigger(trigger.clone()),
                Repeated::Tick(tick) => Op::Tick(tick.clone()),
            };
            check_op(&op, personas, &base.clone().field(op.kind()), issues);
        }
    }
}

fn unknown_persona(name: &str, personas: &BTreeMap<String, PersonaSpec>) -> String {
    if personas.is_empty() {
        format!("unknown persona `{name}`, expected a persona declared under `personas`, which has none")
    } else {
        let known: Vec<String> = personas.keys().map(|known| format!("`{known}`")).collect();
        format!(
            "unknown persona `{name}`, expected one of {}",
            known.join(", ")
        )
    }
}

fn check_op(
    op: &Op,
    personas: &BTreeMap<String, PersonaSpec>,
    base: &YamlPath,
    issues: &mut Vec<Issue>,
) {
    if let Some(name) = op.persona() {
        if !personas.contains_key(name) {
            let path = match op {
                Op::Pause(_) | Op::Resume(_) | Op::Disable(_) => base.clone(),
                _ => base.clone().field("persona"),
            };
            issues.push(Issue {
                path,
                message: unknown_persona(name, personas),
            });
        }
    }
    match op {
        Op::Trigger(trigger) => {
            for key in trigger.metadata.keys().filter(|key| key.trim().is_empty()) {
                issues.push(Issue {
                    path: base.clone().field("metadata").field(key).as_key(),
                    message: "empty metadata key, expected a name such as `repository`".to_owned(),
                });
            }
            check_cost(&trigger.cost, &base.clone().field("cost"), issues);
        }
        Op::Tick(tick) => check_cost(&tick.cost, &base.clone().field("cost"), issues),
        Op::Spend(spend) => {
            if let Some(message) = money_problem("usd", spend.usd) {
                issues.push(Issue {
                    path: base.clone().field("usd"),
                    message,
                });
            }
            check_tokens(spend.tokens, base, issues);
        }
        Op::Fault(fault) if fault.count == 0 => issues.push(Issue {
            path: base.clone().field("count"),
            message: "`count` of 0 would inject nothing, expected at least 1".to_owned(),
        }),
        _ => {}
    }
}

/// Token counts are bounded so that their sums never saturate.
fn check_tokens(tokens: u64, base: &YamlPath, issues: &mut Vec<Issue>) {
    if let Some(message) = rehearse_runtime::config::tokens_problem("tokens", tokens) {
        issues.push(Issue {
            path: base.clone().field("tokens"),
            message,
        });
    }
}

fn check_cost(cost: &Cost, base: &YamlPath, issues: &mut Vec<Issue>) {
    check_tokens(cost.tokens, base, issues);
    for (field, value) in [("usd", cost.usd), ("avoided_usd", cost.avoided_usd)] {
        if let Some(message) = money_problem(field, value) {
            issues.push(Issue {
                path: base.clone().field(field),
                message,
            });
        }
    }
    for (field, value) in [
        ("deterministic_steps", cost.deterministic_steps),
        ("llm_steps", cost.llm_steps),
        ("frontier_escalations", cost.frontier_escalations),
    ] {
        if value < 0 {
            issues.push(Issue {
                path: base.clone().field(field),
                message: format!(
                    "negative count `{value}` for `{field}`, expected a count of at least 0"
                ),
            });
        }
    }
    for key in cost.metadata.keys().filter(|key| key.trim().is_empty()) {
        issues.push(Issue {
            path: base.clone().field("metadata").field(key).as_key(),
            message: "empty metadata key, expected a name such as `repository`".to_owned(),
        });
    }
}

fn check_expect(
    scenario: &Scenario,
    expect: &Expect,
    step: &Step,
    base: &YamlPath,
    issues: &mut Vec<Issue>,
) {
    check_expect_fits_step(expect, step, base, issues);
    let mut push = |path: YamlPath, message: String| issues.push(Issue { path, message });
    if let Some(at) = expect.schedule_at {
        let resolved = at.resolve(scenario.start_ms).unwrap_or(i64::MAX);
        if let Err(range) = check_range(resolved) {
            push(
                base.clone().field("schedule_at"),
                format!("`schedule_at` {at} is {range}"),
            );
        }
    }
    match (&expect.persona, expect.status.is_empty()) {
        (Some(name), _) if !scenario.personas.contains_key(name) => push(
            base.clone().field("persona"),
            unknown_persona(name, &scenario.personas),
        ),
        (Some(_), true) => push(
            base.clone().field("persona"),
            "`persona` without `status`, expected `status` with the dotted paths to compare such as `{state: idle}`"
                .to_owned(),
        ),
        (None, false) => push(
            base.clone().field("status"),
            "`status` without `persona`, expected `persona` naming whose status to compare"
                .to_owned(),
        ),
        _ => {}
    }
    for key in expect.unsettled.keys() {
        if !UNSETTLED_COUNTS.contains(&key.as_str()) {
            let known: Vec<String> = UNSETTLED_COUNTS
                .iter()
                .map(|name| format!("`{name}`"))
                .collect();
            push(
                base.clone().field("unsettled").field(key).as_key(),
                format!(
                    "unknown unsettled count `{key}`, expected one of {}",
                    known.join(", ")
                ),
            );
        }
    }
    check_paths(expect, base, issues);
    check_event_kinds(expect, base, issues);
}

/// The keys about a step's operation need one, and `receipts` and
/// `receipt_counts` a step that yields several receipts.
fn check_expect_fits_step(expect: &Expect, step: &Step, base: &YamlPath, issues: &mut Vec<Issue>) {
    let mut push = |path: YamlPath, message: String| issues.push(Issue { path, message });
    match (&step.op, &step.sequence) {
        (None, None) => {
            let about_this_step = [
                ("receipt", expect.receipt.is_some()),
                ("receipts", expect.receipts.is_some()),
                ("error", expect.error.is_some()),
                ("decision", expect.decision.is_some()),
                ("schedule_at", expect.schedule_at.is_some()),
                ("retry_count", expect.retry_count.is_some()),
                ("termination", expect.termination.is_some()),
                ("episode_id", expect.episode_id.is_some()),
                ("deadline", expect.deadline.is_some()),
                ("run", !expect.run.is_empty()),
                ("events", expect.events.is_some()),
                ("events_include", expect.events_include.is_some()),
                ("receipt_counts", expect.receipt_counts.is_some()),
            ];
            for (field, _) in about_this_step.iter().filter(|(_, set)| *set) {
                push(
                    base.clone().field(field),
                    format!(
                        "`{field}` describes a step's operation but this step has none, expected a step kind such as `trigger` beside it"
                    ),
                );
            }
        }
        (Some(Op::Resume(_)), _) | (None, Some(_)) => {}
        (Some(op), _) => {
            for (field, set) in [
                ("receipts", expect.receipts.is_some()),
                ("receipt_counts", expect.receipt_counts.is_some()),
            ] {
                if set {
                    push(
                        base.clone().field(field),
                        format!(
                            "`{field}` is for `resume`, `advance` and `repeat` steps, expected `receipt` on a `{}` step",
                            op.kind()
                        ),
                    );
                }
            }
        }
    }
}

/// Every event item of `events` and `events_include` must name a kind the
/// runtime writes (and, with `topic`, a topic and a kind of that topic),
/// from the typed vocabulary (`rehearse_runtime::event::vocabulary`).
fn check_event_kinds(expect: &Expect, base: &YamlPath, issues: &mut Vec<Issue>) {
    let vocabulary = rehearse_runtime::event::vocabulary();
    let groups = [
        ("events", &expect.events),
        ("events_include", &expect.events_include),
    ];
    for (key, items) in groups {
        for (index, item) in items.iter().flatten().enumerate() {
            let at = base.clone().field(key).index(index);
            let (kind, topic) = match item {
                EventMatch::Kind(kind) => (kind.as_str(), None),
                EventMatch::Full(pattern) => (pattern.kind.as_str(), pattern.topic.as_deref()),
            };
            let kind_at = match item {
                EventMatch::Kind(_) => at.clone(),
                EventMatch::Full(_) => at.clone().field("kind"),
            };
            if let Some(topic) = topic {
                let Some((_, kinds)) = vocabulary.iter().find(|(name, _)| *name == topic) else {
                    let nearest = nearest(topic, vocabulary.iter().map(|(name, _)| *name));
                    issues.push(Issue {
                        path: at.field("topic"),
                        message: format!(
                            "unknown event topic `{topic}`, did you mean `{}`?",
                            nearest.unwrap_or_default()
                        ),
                    });
                    continue;
                };
                if !kinds.contains(&kind) {
                    let owner = vocabulary.iter().find(|(_, kinds)| kinds.contains(&kind));
                    let message = match owner {
                        Some((owner, _)) => format!(
                            "`{kind}` is an event kind of topic `{owner}`, not of `{topic}`, expected the two to agree"
                        ),
                        None => format!(
                            "`{kind}` is not an event kind of topic `{topic}`, did you mean `{}`?",
                            nearest(kind, kinds.iter().copied()).unwrap_or_default()
                        ),
                    };
                    issues.push(Issue {
                        path: kind_at,
                        message,
                    });
                }
                continue;
            }
            let all = vocabulary
                .iter()
                .flat_map(|(_, kinds)| kinds.iter().copied());
            if !all.clone().any(|known| known == kind) {
                issues.push(Issue {
                    path: kind_at,
                    message: format!(
                        "unknown event kind `{kind}`, did you mean `{}`?",
                        nearest(kind, all).unwrap_or_default()
                    ),
                });
            }
        }
    }
}

/// An example path of each shape, for messages about malformed paths.
fn example_path(shape: Shape) -> &'static str {
    match shape {
        Shape::Status => "budget.spent_today_usd",
        Shape::Receipt => "lease.id",
        Shape::Records => "0.stages.0.name",
        Shape::Process => "lease.fencing_token",
        Shape::Pipeline => "audit.0.kind",
    }
}

/// Every dotted path of `expect` must exist in the typed shape it reads.
fn check_paths(expect: &Expect, base: &YamlPath, issues: &mut Vec<Issue>) {
    let empty = BTreeMap::new();
    let process_paths = expect.process.as_ref().map_or(&empty, |p| &p.paths);
    let groups = [
        (Shape::Status, &expect.status),
        (Shape::Receipt, &expect.run),
        (Shape::Records, &expect.records),
        (Shape::Process, process_paths),
        (Shape::Pipeline, &expect.pipeline),
    ];
    for (shape, paths) in groups {
        for path in paths.keys() {
            let at = base.clone().field(shape.key()).field(path).as_key();
            let message = if path.split('.').any(|segment| segment.trim().is_empty()) {
                format!(
                    "invalid {} path `{path}`, expected dotted field names such as `{}`",
                    shape.key(),
                    example_path(shape)
                )
            } else if let Err(unknown) = check_path(shape, path) {
                format!(
                    "unknown {} path `{path}`, did you mean `{}`?",
                    shape.key(),
                    unknown.suggestion
                )
            } else {
                continue;
            };
            issues.push(Issue { path: at, message });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_runtime::config::cron_problem;

    #[test]
    fn names_follow_the_pattern() {
        assert!(is_valid_name("pause-resume_drain2"));
        for bad in ["", "Upper", "a/b", "..", "a.b", "a b", &"x".repeat(129)] {
            assert!(!is_valid_name(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn crons_use_croner_defaults() {
        assert_eq!(cron_problem("*/30 * * * *"), None);
        assert_eq!(cron_problem("@daily"), None);
        assert_eq!(
            cron_problem("0 */30 * * * *").unwrap(),
            "invalid cron expression `0 */30 * * * *`: pattern must consist of five fields, seconds are not allowed by configuration, expected five fields (minute hour day month weekday) such as `*/30 * * * *`"
        );
        assert!(cron_problem("61 * * * *").is_some());
    }

    #[test]
    fn money_must_be_finite_and_not_negative() {
        assert_eq!(money_problem("usd", 0.0), None);
        assert_eq!(
            money_problem("usd", -0.5).unwrap(),
            "negative amount `-0.5` for `usd`, expected an amount of at least 0"
        );
        assert_eq!(
            money_problem("usd", f64::NAN).unwrap(),
            "`usd` is not a finite number (`NaN`), expected an amount of at least 0"
        );
    }
}
