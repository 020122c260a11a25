//! The rules, evaluated with the runtime's own functions: admission of a
//! run (docs/SCENARIOS.md "Reference behaviour"), budget limits ("Budget
//! admission uses strict `>`"), and the supervisor's gate and pump
//! ("Supervisor and capture", "Supervisor").

use rehearse_runtime::budget::{self, BudgetLimit, LimitCheck};
use rehearse_runtime::config::BudgetPolicy;
use rehearse_runtime::format_ms;
use rehearse_runtime::op::Op;
use rehearse_runtime::persona::{Lifecycle, PersonaState, ReceiptStatus};
use rehearse_runtime::supervisor::{DeferredEpisode, Supervisor};

use super::Rule;

/// What admission decided for one run attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Queued,
    DeadLettered,
    BudgetExhausted(BudgetLimit),
    Duplicate,
    LeaseBusy,
    /// Run; `replaces_expired` when an unreleased lease lapsed first.
    Run {
        replaces_expired: bool,
    },
}

impl Verdict {
    /// The receipt of a refusal; `None` for a run (its outcome decides).
    pub(super) fn receipt(self) -> Option<ReceiptStatus> {
        match self {
            Self::Queued => Some(ReceiptStatus::Queued),
            Self::DeadLettered => Some(ReceiptStatus::DeadLettered),
            Self::BudgetExhausted(_) => Some(ReceiptStatus::BudgetExhausted),
            Self::Duplicate => Some(ReceiptStatus::Duplicate),
            Self::LeaseBusy => Some(ReceiptStatus::LeaseBusy),
            Self::Run { .. } => None,
        }
    }
}

/// What an admission is asked about.
#[derive(Clone, Copy, Debug)]
pub(super) struct Request<'a> {
    pub state: &'a PersonaState,
    pub policy: &'a BudgetPolicy,
    pub work_key: &'a str,
    pub usd: f64,
    pub tokens: u64,
    /// Whether a run with this work key completed before.
    pub completed: bool,
    pub now_ms: i64,
}

fn rule(check: &str, inputs: String, outcome: String, decides: bool) -> Rule {
    Rule {
        check: check.to_string(),
        inputs,
        outcome,
        decides,
    }
}

fn lifecycle_name(lifecycle: Lifecycle) -> String {
    serde_json::to_value(lifecycle)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The admission rules in order, the first that applies deciding; rules
/// after it are shown as not reached.
pub(super) fn admission(request: Request<'_>) -> (Vec<Rule>, Verdict) {
    let state = request.state;
    let lifecycle = lifecycle_name(state.lifecycle);
    let paused = state.lifecycle == Lifecycle::Paused;
    let disabled = state.lifecycle == Lifecycle::Disabled;
    let mut rules = vec![
        rule(
            "1. paused?",
            format!("lifecycle {lifecycle}"),
            yes_no(paused, "queue the work (reason paused)"),
            false,
        ),
        rule(
            "2. disabled?",
            format!("lifecycle {lifecycle}"),
            yes_no(disabled, "dead-letter it"),
            false,
        ),
    ];
    let checks = budget::checks(
        request.policy,
        &state.spend,
        request.usd,
        request.tokens,
        request.now_ms,
    );
    rules.extend(checks.iter().map(budget_rule));
    let refusal = budget::refusal(
        request.policy,
        &state.spend,
        request.usd,
        request.tokens,
        request.now_ms,
    );
    rules.push(rule(
        "4. completed work key?",
        format!("`{}`", request.work_key),
        yes_no(request.completed, "a duplicate"),
        false,
    ));
    let held = state.lease.as_ref();
    let live = held.is_some_and(|lease| lease.is_live_at(request.now_ms));
    rules.push(lease_rule(held, live, request.now_ms));
    let (decider, verdict) = decide(&mut rules, request, refusal, live);
    mark_decider(&mut rules, decider);
    (rules, verdict)
}

/// The first rule that applies, as its index in `rules`, and its verdict;
/// a run adds the last rule.
fn decide(
    rules: &mut Vec<Rule>,
    request: Request<'_>,
    refusal: Option<BudgetLimit>,
    live: bool,
) -> (usize, Verdict) {
    let lifecycle = request.state.lifecycle;
    if lifecycle == Lifecycle::Paused {
        (0, Verdict::Queued)
    } else if lifecycle == Lifecycle::Disabled {
        (1, Verdict::DeadLettered)
    } else if let Some(reason) = refusal {
        let at = rules
            .iter()
            .position(|r| r.check.ends_with(reason.as_str()))
            .unwrap_or(2);
        (at, Verdict::BudgetExhausted(reason))
    } else if request.completed {
        (6, Verdict::Duplicate)
    } else if live {
        (7, Verdict::LeaseBusy)
    } else {
        let replaces_expired = request.state.lease.is_some();
        let outcome = if replaces_expired {
            "run: the lapsed lease is expired and a new one acquired"
        } else {
            "run: acquire a lease and run"
        };
        rules.push(rule(
            "6. otherwise",
            String::new(),
            outcome.to_string(),
            false,
        ));
        (8, Verdict::Run { replaces_expired })
    }
}

fn lease_rule(held: Option<&rehearse_runtime::lease::Lease>, live: bool, now_ms: i64) -> Rule {
    rule(
        "5. live lease?",
        lease_inputs(held),
        lease_outcome(held, live, now_ms),
        false,
    )
}

/// Marks rule `decider` as the deciding one and every later rule as not
/// reached.
fn mark_decider(rules: &mut [Rule], decider: usize) {
    for (index, rule) in rules.iter_mut().enumerate() {
        if index == decider {
            rule.decides = true;
        } else if index > decider {
            rule.outcome = format!("not reached ({})", rule.outcome);
        }
    }
}

fn yes_no(yes: bool, then: &str) -> String {
    if yes {
        format!("yes: {then}")
    } else {
        "no".to_string()
    }
}

/// One budget limit with its numbers: `spent + cost > limit`.
pub(super) fn budget_rule(check: &LimitCheck) -> Rule {
    let label = format!("3. budget {}", check.name);
    let sum = match check.spent {
        Some(spent) => format!("spent {spent} + cost {} = {}", check.cost, check.total),
        None => format!("cost {}", check.cost),
    };
    match check.limit {
        None => rule(&label, sum, "no limit".to_string(), false),
        Some(limit) => {
            let verdict = if check.refuses {
                format!("{} > {limit}: refused, reason {}", check.total, check.name)
            } else {
                format!("{} <= {limit}: within", check.total)
            };
            rule(&label, format!("{sum}, limit {limit}"), verdict, false)
        }
    }
}

fn lease_inputs(held: Option<&rehearse_runtime::lease::Lease>) -> String {
    match held {
        None => "no lease held".to_string(),
        Some(lease) => format!(
            "lease `{}` held by {} for `{}`, acquired {}, expires {}",
            lease.id,
            lease.holder,
            lease.work_key,
            format_ms(lease.acquired_at_ms),
            format_ms(lease.expires_at_ms)
        ),
    }
}

fn lease_outcome(held: Option<&rehearse_runtime::lease::Lease>, live: bool, now_ms: i64) -> String {
    match held {
        None => "no".to_string(),
        Some(_) if live => format!(
            "yes, live at {} (expiry is after now): lease_busy",
            format_ms(now_ms)
        ),
        Some(_) => "no: it lapsed (now is at or after its expiry)".to_string(),
    }
}

/// The supervisor's gate for a trigger or tick at `now_ms`: the
/// concurrency limit, then the rate window. Returns the rules and, when it
/// defers, the time the episode falls due.
pub(super) fn gate(supervisor: &Supervisor, now_ms: i64) -> (Vec<Rule>, Option<i64>) {
    let mut rules = vec![in_flight_rule(supervisor, now_ms)];
    if supervisor.saturated_at(now_ms) {
        return (rules, Some(now_ms));
    }
    let (rate, delay) = rate_rule(supervisor, now_ms);
    rules.push(rate);
    (rules, delay.map(|delay| now_ms + delay))
}

fn in_flight_rule(supervisor: &Supervisor, now_ms: i64) -> Rule {
    let running: Vec<String> = supervisor
        .in_flight_at(now_ms)
        .map(|(episode, until)| format!("episode {episode} until {}", format_ms(until)))
        .collect();
    let inputs = if running.is_empty() {
        "nothing running".to_string()
    } else {
        running.join(", ")
    };
    let count = running.len();
    let outcome = match supervisor.constraints().max_in_flight {
        None => "no max_in_flight: never saturated".to_string(),
        Some(max) if supervisor.saturated_at(now_ms) => {
            format!("{count} >= max_in_flight {max}: saturated, defer to now")
        }
        Some(max) => format!("{count} < max_in_flight {max}: room"),
    };
    rule(
        "in flight",
        inputs,
        outcome,
        supervisor.saturated_at(now_ms),
    )
}

fn rate_rule(supervisor: &Supervisor, now_ms: i64) -> (Rule, Option<i64>) {
    let constraints = supervisor.constraints();
    let (Some(max), Some(window)) = (constraints.max_per_window, constraints.rate_window) else {
        return (
            rule(
                "rate window",
                String::new(),
                "no rate limit".to_string(),
                false,
            ),
            None,
        );
    };
    let times: Vec<i64> = supervisor.window_at(now_ms).collect();
    let listed: Vec<String> = times.iter().map(|&at| format_ms(at)).collect();
    let inputs = format!(
        "{} invocation(s) in the {window} window before {}: [{}]; max_per_window {max}",
        times.len(),
        format_ms(now_ms),
        listed.join(", ")
    );
    let delay = supervisor.rate_delay_at(now_ms);
    let outcome = match (delay, times.first()) {
        (Some(delay), Some(&oldest)) => format!(
            "full: wait window - (now - oldest) = {} - ({} - {} = {} ms) = {delay} ms, defer to {}",
            window.as_i64(),
            format_ms(now_ms),
            format_ms(oldest),
            now_ms - oldest,
            format_ms(now_ms + delay)
        ),
        _ => format!("{} < {max}: room", times.len()),
    };
    (rule("rate window", inputs, outcome, delay.is_some()), delay)
}

/// The deadline and retry limits that shape an invocation of `op`.
pub(super) fn invoke_rules(supervisor: &Supervisor, op: &Op) -> Vec<Rule> {
    let constraints = supervisor.constraints();
    let mut rules = Vec::new();
    if let Some(first) = supervisor.scripted_attempt(op, 0) {
        let deadline = constraints
            .deadline
            .map_or("no deadline".to_string(), |d| format!("deadline {d}"));
        let outcome = if first.over_deadline {
            format!(
                "over the deadline: each attempt that would complete times out after {} ms",
                first.attempt_ms
            )
        } else {
            format!(
                "each attempt keeps the episode in flight {} ms",
                first.attempt_ms
            )
        };
        let duration = match op {
            Op::Trigger(t) => t.duration,
            Op::Tick(t) => t.duration,
            _ => Default::default(),
        };
        rules.push(rule(
            "deadline",
            format!("duration {duration}, {deadline}"),
            outcome,
            false,
        ));
    }
    rules.push(rule(
        "retries",
        format!("max_retries {}", constraints.max_retries),
        "mechanical failures (network_timeout, adapter_unavailable, runtime_error, timed_out) are retried; nothing else is".to_string(),
        false,
    ));
    rules
}

/// What a pump will do.
#[derive(Clone, Debug)]
pub(super) enum PumpGate {
    Idle,
    Defer { at_ms: i64 },
    Invoke(Box<DeferredEpisode>),
}

/// The pump's choice: the earliest due deferred episode (then the lowest
/// episode id), re-deferred if the supervisor is still saturated or
/// rate-limited.
pub(super) fn pump(supervisor: &Supervisor, now_ms: i64) -> (Vec<Rule>, PumpGate) {
    let waiting: Vec<&DeferredEpisode> = supervisor.deferred().collect();
    let listed: Vec<String> = waiting
        .iter()
        .map(|d| {
            format!(
                "episode {} ({} {}) due {}",
                d.episode_id,
                d.op.kind(),
                d.event_id,
                format_ms(d.schedule_at_ms)
            )
        })
        .collect();
    let inputs = if listed.is_empty() {
        "none deferred".to_string()
    } else {
        listed.join(", ")
    };
    let Some(due) = waiting.first().filter(|d| d.schedule_at_ms <= now_ms) else {
        let rule = rule(
            "due episode",
            inputs,
            format!("nothing due at {}: idle", format_ms(now_ms)),
            true,
        );
        return (vec![rule], PumpGate::Idle);
    };
    let chosen = format!("episode {} is the earliest and due: run it", due.episode_id);
    let mut rules = vec![rule("due episode", inputs, chosen, false)];
    let (gate_rules, again) = gate(supervisor, now_ms);
    rules.extend(gate_rules);
    let decision = match again {
        Some(at_ms) => PumpGate::Defer { at_ms },
        None => PumpGate::Invoke(Box::new((*due).clone())),
    };
    (rules, decision)
}
