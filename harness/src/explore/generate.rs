//! proptest strategies for valid cases: one to four personas with random
//! budgets, lease TTLs and schedules, random supervisor constraints, and
//! steps at non-decreasing times that mix triggers over repeated and new
//! work keys, ticks, controls, spend, pumps, faults, restarts and process
//! registry operations.
//!
//! Time gaps are drawn so that runs often straddle lease expiries and UTC
//! hour and day boundaries; a case sometimes starts near 23:58 UTC. Steps
//! name personas by index and are resolved modulo the number of personas,
//! so shrinking the persona list never makes a case invalid.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use rehearse_runtime::config::BudgetPolicy;
use rehearse_runtime::op::{
    Attempt, Cost, FailKind, FaultMode, FaultOp, Outcome, PumpOp, RestartOp, SpendOp, TickOp,
    TriggerOp,
};
use rehearse_runtime::process::{
    ClaimOp, CompleteOp, FailOp, HeartbeatOp, LeaseTokenRef, ProcessInput, ProcessOp,
    RecoveryDisposition, StartOp,
};
use rehearse_runtime::{Constraints, Millis, Op, PersonaSpec, RuntimeConfig};

use super::case::Case;

/// The persona names a case draws from, in order.
pub const PERSONA_NAMES: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];

/// 2026-04-24T00:00:00Z: the day every case starts on.
const BASE_DAY_MS: i64 = 1_776_988_800_000;
const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation {
    /// The most steps a case has.
    pub max_steps: usize,
    /// Whether to mix in process registry operations.
    pub process_ops: bool,
}

impl Generation {
    /// Up to `max_steps` steps, process operations included.
    pub fn new(max_steps: usize) -> Self {
        Self {
            max_steps,
            process_ops: true,
        }
    }
}

/// Valid cases as [`Generation`] describes them.
pub fn case_strategy(generation: Generation) -> BoxedStrategy<Case> {
    let personas = vec(persona_spec(), 1..=PERSONA_NAMES.len());
    let steps = vec(
        (time_gap_ms(), op_strategy(generation.process_ops)),
        0..=generation.max_steps,
    );
    (start_ms(), any::<u64>(), personas, constraints(), steps)
        .prop_map(|(start_ms, seed, specs, supervisor, gaps)| {
            let personas: BTreeMap<String, PersonaSpec> = PERSONA_NAMES
                .iter()
                .zip(specs)
                .map(|(name, spec)| ((*name).to_string(), spec))
                .collect();
            let count = personas.len();
            let mut at_ms = start_ms;
            let mut started = Vec::new();
            let steps = gaps
                .into_iter()
                .map(|(gap_ms, op)| {
                    at_ms += gap_ms;
                    (at_ms, start_if_new(rename_persona(op, count), &mut started))
                })
                .collect();
            let config = RuntimeConfig {
                start_ms,
                seed,
                personas,
                supervisor,
            };
            Case { config, steps }
        })
        .boxed()
}

/// Points an operation at persona `index mod count` of [`PERSONA_NAMES`].
fn rename_persona(op: Op, count: usize) -> Op {
    let resolve = |name: String| {
        let index = PERSONA_NAMES
            .iter()
            .position(|known| *known == name)
            .unwrap_or(0);
        PERSONA_NAMES[index % count].to_string()
    };
    match op {
        Op::Trigger(mut trigger) => {
            trigger.persona = resolve(trigger.persona);
            Op::Trigger(trigger)
        }
        Op::Tick(mut tick) => {
            tick.persona = resolve(tick.persona);
            Op::Tick(tick)
        }
        Op::Spend(mut spend) => {
            spend.persona = resolve(spend.persona);
            Op::Spend(spend)
        }
        Op::Pause(name) => Op::Pause(resolve(name)),
        Op::Resume(name) => Op::Resume(resolve(name)),
        Op::Disable(name) => Op::Disable(resolve(name)),
        other => other,
    }
}

/// The first operation on a process becomes that process's start, so the
/// operations after it reach the lease logic instead of failing on an
/// unknown process.
fn start_if_new(op: Op, started: &mut Vec<String>) -> Op {
    let Op::Process(process) = &op else {
        return op;
    };
    let Some(id) = process.process_id() else {
        return op;
    };
    if started.iter().any(|known| known == id) {
        return op;
    }
    started.push(id.to_string());
    if matches!(process, ProcessOp::Start(_)) {
        return op;
    }
    Op::Process(ProcessOp::Start(start_op(id.to_string(), false)))
}

fn start_op(id: String, owner_bound: bool) -> StartOp {
    StartOp {
        id: Some(id),
        input: ProcessInput::Engine {
            kind: "build".to_string(),
            payload: serde_json::Value::Null,
        },
        recovery: if owner_bound {
            RecoveryDisposition::OwnerBound
        } else {
            RecoveryDisposition::Rerunnable
        },
        definition: None,
        session: None,
        env: None,
    }
}

/// The scenario start: noon, anywhere in the day, or just before midnight.
fn start_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => Just(BASE_DAY_MS + 12 * HOUR_MS),
        1 => (0..24 * HOUR_MS).prop_map(|offset| BASE_DAY_MS + offset / SECOND_MS * SECOND_MS),
        2 => (0..2 * MINUTE_MS)
            .prop_map(|offset| BASE_DAY_MS + 23 * HOUR_MS + 58 * MINUTE_MS + offset),
    ]
}

/// The gap before a step: often none or a few seconds, often minutes (lease
/// TTLs run from 1s to 10m), sometimes an hour or a day.
fn time_gap_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(0),
        5 => 1..5 * SECOND_MS,
        5 => 5 * SECOND_MS..2 * MINUTE_MS,
        4 => MINUTE_MS..15 * MINUTE_MS,
        1 => 30 * MINUTE_MS..2 * HOUR_MS,
        1 => 20 * HOUR_MS..30 * HOUR_MS,
    ]
}

/// An amount in whole thousandths of a dollar, `low..=high` of them.
fn thousandths(low: u32, high: u32) -> impl Strategy<Value = f64> {
    (low..=high).prop_map(|n| f64::from(n) / 1000.0)
}

fn persona_spec() -> impl Strategy<Value = PersonaSpec> {
    let schedule = option::of(select(vec!["*/30 * * * *", "0 * * * *", "*/5 * * * *"]));
    let budget = (
        option::of(thousandths(1, 200)),
        option::of(thousandths(1, 100)),
        option::of(thousandths(1, 30)),
        option::of(1u64..=300),
    )
        .prop_map(
            |(daily_usd, hourly_usd, run_usd, max_tokens)| BudgetPolicy {
                daily_usd,
                hourly_usd,
                run_usd,
                max_tokens,
            },
        );
    let lease_ttl = option::of((1u64..=600).prop_map(|seconds| Millis(seconds * 1_000)));
    (schedule, budget, lease_ttl).prop_map(|(schedule, budget, lease_ttl)| PersonaSpec {
        entry_workflow: "workflows/explore.harn#run".to_string(),
        schedules: schedule.into_iter().map(str::to_string).collect(),
        budget,
        lease_ttl,
        ..PersonaSpec::default()
    })
}

fn seconds(low: u64, high: u64) -> impl Strategy<Value = Millis> {
    (low..=high).prop_map(|s| Millis(s * 1_000))
}

/// Supervisor constraints, each limit sometimes absent; `max_per_window`
/// and `rate_window` come together, as the scenario format requires.
fn constraints() -> impl Strategy<Value = Constraints> {
    (
        option::of(1u64..=3),
        option::of((1u64..=4, seconds(1, 60))),
        option::of(seconds(1, 60)),
        0u64..=3,
    )
        .prop_map(|(max_in_flight, rate, deadline, max_retries)| Constraints {
            max_in_flight,
            max_per_window: rate.map(|(max, _)| max),
            rate_window: rate.map(|(_, window)| window),
            deadline,
            max_retries,
        })
}

fn persona_name() -> impl Strategy<Value = String> {
    select(PERSONA_NAMES.to_vec()).prop_map(str::to_string)
}

fn cost() -> impl Strategy<Value = Cost> {
    let usd = prop_oneof![1 => Just(0.0), 4 => thousandths(1, 30)];
    let tokens = prop_oneof![1 => Just(0u64), 3 => 1u64..=60];
    (usd, tokens).prop_map(|(usd, tokens)| Cost {
        usd,
        tokens,
        ..Cost::default()
    })
}

fn fail_kind() -> impl Strategy<Value = FailKind> {
    select(FailKind::ALL.to_vec())
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let attempt = prop_oneof![
        Just(Attempt::Completed),
        Just(Attempt::Crash),
        fail_kind().prop_map(Attempt::Fail),
    ];
    prop_oneof![
        6 => Just(Outcome::Completed),
        1 => Just(Outcome::Crash),
        2 => fail_kind().prop_map(Outcome::Fail),
        1 => vec(attempt, 1..=3).prop_map(Outcome::Attempts),
    ]
}

fn duration() -> impl Strategy<Value = Millis> {
    prop_oneof![4 => Just(Millis(0)), 1 => seconds(1, 90)]
}

/// A provider event: five providers, each over a handful of repeated work
/// keys; without a key, github, linear and slack fall back to one fixed key
/// and webhook and the custom provider generate a new one.
fn trigger() -> impl Strategy<Value = Op> {
    (
        persona_name(),
        0usize..5,
        option::weighted(0.8, 0u8..6),
        cost(),
        outcome(),
        duration(),
    )
        .prop_map(|(persona, provider, key, cost, outcome, duration)| {
            let (provider, kind, field, value) = match provider {
                0 => (
                    "github",
                    "pull_request",
                    "number",
                    key.map(|k| k.to_string()),
                ),
                1 => (
                    "linear",
                    "issue",
                    "issue_key",
                    key.map(|k| format!("ENG-{k}")),
                ),
                2 => (
                    "slack",
                    "message",
                    "ts",
                    key.map(|k| format!("17000000{k}.0001")),
                ),
                3 => (
                    "webhook",
                    "push",
                    "dedupe_key",
                    key.map(|k| format!("hook-{k}")),
                ),
                _ => (
                    "jira",
                    "issue_created",
                    "event_id",
                    key.map(|k| format!("evt-{k}")),
                ),
            };
            let mut metadata = BTreeMap::new();
            match provider {
                "github" => {
                    metadata.insert("repository".to_string(), "acme/app".to_string());
                }
                "slack" => {
                    metadata.insert("channel".to_string(), "C042".to_string());
                }
                _ => {}
            }
            if let Some(value) = value {
                metadata.insert(field.to_string(), value);
            }
            Op::Trigger(TriggerOp {
                persona,
                provider: provider.to_string(),
                kind: kind.to_string(),
                metadata: metadata.into(),
                cost,
                outcome,
                duration,
            })
        })
}

fn tick() -> impl Strategy<Value = Op> {
    (persona_name(), cost(), outcome(), duration()).prop_map(
        |(persona, cost, outcome, duration)| {
            Op::Tick(TickOp {
                persona,
                cost,
                outcome,
                duration,
            })
        },
    )
}

fn spend() -> impl Strategy<Value = Op> {
    (persona_name(), thousandths(0, 20), 0u64..=40).prop_map(|(persona, usd, tokens)| {
        Op::Spend(SpendOp {
            persona,
            usd,
            tokens,
        })
    })
}

/// Process registry operations over two processes and two owners; owner
/// operations present the owner's latest token, which may be stale. (A
/// case turns the first operation on each process into its start.)
fn process() -> impl Strategy<Value = Op> {
    let id = select(vec!["p0", "p1"]).prop_map(str::to_string);
    let owner = select(vec!["w0", "w1"]).prop_map(str::to_string);
    let token = owner.clone().prop_map(LeaseTokenRef::Of);
    // Short leases lapse between steps, so another owner claims and the
    // first owner's token goes stale.
    let claim_ttl = prop_oneof![3 => seconds(1, 60), 1 => seconds(60, 600)];
    let op = prop_oneof![
        1 => (id.clone(), any::<bool>())
            .prop_map(|(id, owner_bound)| ProcessOp::Start(start_op(id, owner_bound))),
        4 => (id.clone(), owner, claim_ttl)
            .prop_map(|(id, owner, ttl)| ProcessOp::Claim(ClaimOp { id, owner, ttl })),
        3 => (id.clone(), token.clone(), option::of(seconds(1, 600))).prop_map(
            |(id, lease_token, ttl)| ProcessOp::Heartbeat(HeartbeatOp { id, lease_token, ttl })
        ),
        1 => (id.clone(), token.clone()).prop_map(|(id, lease_token)| {
            ProcessOp::Complete(CompleteOp { id, lease_token, output: None })
        }),
        1 => (id, token).prop_map(|(id, lease_token)| {
            ProcessOp::Fail(FailOp { id, lease_token, error: "boom".to_string() })
        }),
    ];
    op.prop_map(Op::Process)
}

/// One step's operation. Restarts reopen the in-memory log (no torn bytes).
pub fn op_strategy(process_ops: bool) -> BoxedStrategy<Op> {
    let weight_process = if process_ops { 5 } else { 0 };
    prop_oneof![
        12 => trigger(),
        2 => tick(),
        2 => persona_name().prop_map(Op::Pause),
        3 => persona_name().prop_map(Op::Resume),
        1 => persona_name().prop_map(Op::Disable),
        2 => spend(),
        3 => Just(Op::Pump(PumpOp {})),
        1 => (1u64..=3).prop_map(|count| Op::Fault(FaultOp { append: FaultMode::Fail, count })),
        1 => Just(Op::Restart(RestartOp::default())),
        weight_process => process(),
    ]
    .boxed()
}

/// Runtime configurations alone, for round-trip properties.
pub fn config_strategy() -> BoxedStrategy<RuntimeConfig> {
    case_strategy(Generation::new(0))
        .prop_map(|case| case.config)
        .boxed()
}
