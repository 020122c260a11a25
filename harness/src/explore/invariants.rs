//! The invariants listed in docs/SCENARIOS.md ("Invariants and `explore`") and the checker that holds a runtime to them
//! after every step.
//!
//! The checker keeps its own model of every persona and process, folded
//! from the log alone with no runtime code (leases, spend per UTC day and
//! hour, queued and completed work keys, pause and disable). Each step's new
//! events are checked against the model as it stood just before each of
//! them, and then the statuses the runtime reports are checked against the
//! model. Budget admission is recomputed from the model in the reference
//! order, so a run admitted that should have been refused and a refusal
//! that should not have happened are both caught.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rehearse_runtime::budget::BudgetLimit;
use rehearse_runtime::config::BudgetPolicy;
use rehearse_runtime::engine::{OpResult, Runtime};
use rehearse_runtime::event::DecodeError;
use rehearse_runtime::lease::Lease;
use rehearse_runtime::money::Money;
use rehearse_runtime::persona::{
    BudgetExhausted, BudgetRecorded, LeaseConflict, Lifecycle, PersonaEvent, RunRef, TriggerQueued,
    PERSONA_TOPIC,
};
use rehearse_runtime::process::{
    LeaseTokenRef, ProcessEvent, ProcessLease, ProcessOp, PROCESS_TOPIC,
};
use rehearse_runtime::{format_ms, Millis, Op, RuntimeConfig, StoredEvent};
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Which group (leases, budgets, work, ...) an invariant belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Leases,
    Budgets,
    Work,
    Determinism,
}

/// One invariant the explorer checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// At most one live lease per persona (and per process) at any instant.
    SingleLiveLease,
    /// A lease's expiry is its acquisition plus the persona's TTL.
    LeaseExpiry,
    /// A conflict is recorded only while a live lease exists.
    ConflictNeedsLiveLease,
    /// A run starts only under its own, live lease.
    RunUnderOwnLease,
    /// An expired lease is replaced only after its expiry.
    ExpiryBeforeReplace,
    /// A process lease's fencing token only grows.
    FencingTokenGrows,
    /// A stale or lapsed process lease token is refused.
    StaleTokenRefused,
    /// No admitted run or spend costs more than `run_usd`.
    RunLimit,
    /// Recorded spend in a UTC day never exceeds `daily_usd`.
    DailyLimit,
    /// Recorded spend in a UTC hour never exceeds `hourly_usd`.
    HourlyLimit,
    /// Tokens recorded in a UTC day never exceed `max_tokens`.
    TokenLimit,
    /// A refusal for budget happens exactly when admitting would break a
    /// limit, with the reason the reference order gives.
    BudgetRefusalExact,
    /// A work key completes at most once, and no run starts for completed work.
    WorkKeyOnce,
    /// Work queued while paused runs only after a resume, at most once per resume.
    QueuedRunsOnceAfterResume,
    /// A disabled persona runs nothing.
    DisabledRunsNothing,
    /// Every status the runtime reports agrees with the log.
    StatusMatchesLog,
    /// Folding the log from scratch gives the state kept incrementally.
    RebuildMatchesIncremental,
    /// The same case run twice gives identical log bytes.
    SameBytesTwice,
    /// The capture bundle of a case replays strictly on a fresh log.
    CaptureReplays,
}

impl Invariant {
    /// Every invariant, grouped as in docs/SCENARIOS.md.
    pub const ALL: [Invariant; 19] = [
        Self::SingleLiveLease,
        Self::LeaseExpiry,
        Self::ConflictNeedsLiveLease,
        Self::RunUnderOwnLease,
        Self::ExpiryBeforeReplace,
        Self::FencingTokenGrows,
        Self::StaleTokenRefused,
        Self::RunLimit,
        Self::DailyLimit,
        Self::HourlyLimit,
        Self::TokenLimit,
        Self::BudgetRefusalExact,
        Self::WorkKeyOnce,
        Self::QueuedRunsOnceAfterResume,
        Self::DisabledRunsNothing,
        Self::StatusMatchesLog,
        Self::RebuildMatchesIncremental,
        Self::SameBytesTwice,
        Self::CaptureReplays,
    ];

    /// The invariant's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::SingleLiveLease => "single_live_lease",
            Self::LeaseExpiry => "lease_expiry",
            Self::ConflictNeedsLiveLease => "conflict_needs_live_lease",
            Self::RunUnderOwnLease => "run_under_own_lease",
            Self::ExpiryBeforeReplace => "expiry_before_replace",
            Self::FencingTokenGrows => "fencing_token_grows",
            Self::StaleTokenRefused => "stale_token_refused",
            Self::RunLimit => "run_limit",
            Self::DailyLimit => "daily_limit",
            Self::HourlyLimit => "hourly_limit",
            Self::TokenLimit => "token_limit",
            Self::BudgetRefusalExact => "budget_refusal_exact",
            Self::WorkKeyOnce => "work_key_once",
            Self::QueuedRunsOnceAfterResume => "queued_runs_once_after_resume",
            Self::DisabledRunsNothing => "disabled_runs_nothing",
            Self::StatusMatchesLog => "status_matches_log",
            Self::RebuildMatchesIncremental => "rebuild_matches_incremental",
            Self::SameBytesTwice => "same_bytes_twice",
            Self::CaptureReplays => "capture_replays",
        }
    }

    /// The group the invariant belongs to.
    pub fn family(self) -> Family {
        match self {
            Self::SingleLiveLease
            | Self::LeaseExpiry
            | Self::ConflictNeedsLiveLease
            | Self::RunUnderOwnLease
            | Self::ExpiryBeforeReplace
            | Self::FencingTokenGrows
            | Self::StaleTokenRefused => Family::Leases,
            Self::RunLimit
            | Self::DailyLimit
            | Self::HourlyLimit
            | Self::TokenLimit
            | Self::BudgetRefusalExact => Family::Budgets,
            Self::WorkKeyOnce | Self::QueuedRunsOnceAfterResume | Self::DisabledRunsNothing => {
                Family::Work
            }
            Self::StatusMatchesLog
            | Self::RebuildMatchesIncremental
            | Self::SameBytesTwice
            | Self::CaptureReplays => Family::Determinism,
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant: which, at which step, what was seen and the events
/// that show it (`topic#id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{invariant} at step {step}: {message}{}", evidence_suffix(.evidence))]
pub struct Violation {
    pub invariant: Invariant,
    /// The step's 1-based number (its event id is `step-N`); for checks made
    /// after the last step, the number of steps.
    pub step: usize,
    pub message: String,
    pub evidence: Vec<String>,
}

fn evidence_suffix(evidence: &[String]) -> String {
    if evidence.is_empty() {
        String::new()
    } else {
        format!(" (events {})", evidence.join(", "))
    }
}

/// The id a violation cites for a stored event: `topic#id`.
pub fn event_ref(event: &StoredEvent) -> String {
    format!("{}#{}", event.topic, event.id)
}

/// Whether the persona's controls hold its work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Control {
    #[default]
    Active,
    Paused,
    Disabled,
}

/// A lease as the log shows it.
#[derive(Clone, Debug, PartialEq)]
struct LeaseModel {
    // Shared with the event read (a count, not a copy).
    id: Arc<str>,
    work_key: Arc<str>,
    expires_at_ms: i64,
    /// The id of its persona event, cited as evidence only on a violation.
    event: u64,
}

impl LeaseModel {
    fn is_live_at(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// What a cost to admit is: dollars and tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Amount {
    /// Exact, as the reference admits it (docs/SCENARIOS.md, "Money").
    usd: Money,
    tokens: u64,
}

/// One persona as the log shows it.
#[derive(Clone, Debug, Default)]
struct PersonaModel {
    /// The binding's lease TTL; `None` for a persona met in a log without
    /// its binding, whose leases expire when the log says they do.
    ttl_ms: Option<i64>,
    budget: BudgetPolicy,
    control: Control,
    lease: Option<LeaseModel>,
    /// Spend per UTC day start: dollars (summed in log order from zero) and tokens.
    days: BTreeMap<i64, (Money, u64)>,
    /// Spend per UTC hour start.
    hours: BTreeMap<i64, Money>,
    /// Queued work keys with the cost stored when they were queued.
    queued: BTreeMap<String, Amount>,
    /// Completed work keys with the id of the (persona topic) event that
    /// completed each.
    completed: BTreeMap<String, u64>,
}

impl PersonaModel {
    fn today(&self, now_ms: i64) -> (Money, u64) {
        self.days
            .get(&(now_ms - now_ms.rem_euclid(DAY_MS)))
            .copied()
            .unwrap_or((Money::ZERO, 0))
    }

    fn this_hour(&self, now_ms: i64) -> Money {
        self.hours
            .get(&(now_ms - now_ms.rem_euclid(HOUR_MS)))
            .copied()
            .unwrap_or(Money::ZERO)
    }

    /// The limit admitting `amount` at `now_ms` would break, in the
    /// reference order (run, daily, hourly, tokens), with strict `>`.
    fn refusal(&self, amount: Amount, now_ms: i64) -> Option<BudgetLimit> {
        let (day_usd, day_tokens) = self.today(now_ms);
        let policy = &self.budget;
        if usd_limit(policy.run_usd).is_some_and(|limit| amount.usd > limit) {
            Some(BudgetLimit::RunUsd)
        } else if usd_limit(policy.daily_usd).is_some_and(|limit| day_usd + amount.usd > limit) {
            Some(BudgetLimit::DailyUsd)
        } else if usd_limit(policy.hourly_usd)
            .is_some_and(|limit| self.this_hour(now_ms) + amount.usd > limit)
        {
            Some(BudgetLimit::HourlyUsd)
        } else if policy
            .max_tokens
            .is_some_and(|limit| day_tokens.saturating_add(amount.tokens) > limit)
        {
            Some(BudgetLimit::MaxTokens)
        } else {
            None
        }
    }

    /// Whether the persona's binding is known: a persona met in a log
    /// without one has no TTL and no limits to hold it to.
    fn is_bound(&self) -> bool {
        self.ttl_ms.is_some()
    }

    fn live_lease(&self, now_ms: i64) -> Option<&LeaseModel> {
        self.lease.as_ref().filter(|lease| lease.is_live_at(now_ms))
    }
}

/// A process lease as the log shows it.
#[derive(Clone, Debug, PartialEq)]
struct ProcessLeaseModel {
    token: String,
    fencing_token: u64,
    expires_at_ms: i64,
}

/// One process as the log shows it.
#[derive(Clone, Debug, Default)]
struct ProcessModel {
    max_fencing_token: u64,
    lease: Option<ProcessLeaseModel>,
    latest_by_owner: BTreeMap<String, String>,
    terminal: bool,
}

/// A log event as the checker reads it: the stored event and, for one of
/// the persona topic, its decoding, made once and shared with whatever else
/// folds the same events (the driver's `RunLedger`).
#[derive(Debug)]
pub struct ReadEvent<'a> {
    pub stored: &'a StoredEvent,
    /// `None` for another topic or a kind the vocabulary does not hold.
    pub persona: Option<Result<(&'a str, PersonaEvent), DecodeError>>,
}

/// The persona event kinds neither the checker (`persona_event`) nor the
/// run ledger (`RunLedger::fold_event`) reads: a reader that checks
/// elsewhere that they read back (`driver/handoff.rs`, on its own thread)
/// may leave them undecoded ([`ReadEvent::of_read`]). A kind either of them
/// starts to read must leave this list.
pub const UNREAD_KINDS: [&str; 3] = [
    "persona.trigger.received",
    "persona.value.run_completed",
    "persona.supervision.receipt",
];

impl<'a> ReadEvent<'a> {
    /// Reads `stored`, decoding its persona event if it holds one.
    pub fn of(stored: &'a StoredEvent) -> Self {
        Self {
            stored,
            persona: PersonaEvent::from_stored(stored),
        }
    }

    /// [`ReadEvent::of`], leaving a persona event of a kind in
    /// [`UNREAD_KINDS`] undecoded, as if of another topic.
    pub fn of_read(stored: &'a StoredEvent) -> Self {
        if is_unread(stored) {
            return Self {
                stored,
                persona: None,
            };
        }
        Self::of(stored)
    }
}

/// Whether `event` is a persona event of a kind in [`UNREAD_KINDS`].
pub fn is_unread(event: &StoredEvent) -> bool {
    event.topic.as_str() == PERSONA_TOPIC && UNREAD_KINDS.contains(&&*event.kind)
}

/// Whether a persona event of a kind in [`UNREAD_KINDS`] reads back: the
/// violation [`Checker::check_read`] would have found, as step `step`'s.
pub fn reads_back(event: &StoredEvent, step: usize) -> Result<(), Violation> {
    match PersonaEvent::from_stored(event) {
        Some(Err(error)) => Err(Violation {
            invariant: Invariant::RebuildMatchesIncremental,
            step,
            message: format!("a persona event does not read back: {error}"),
            evidence: vec![event_ref(event)],
        }),
        _ => Ok(()),
    }
}

/// A broken invariant as a check finds it: which, what, and the events.
type Broken = (Invariant, String, Vec<String>);

/// The persona event being checked: whose, when, and the event.
struct Seen<'a> {
    name: &'a str,
    at: i64,
    event: &'a StoredEvent,
}

impl Seen<'_> {
    /// The event's reference, `topic#id`, made only for a violation.
    fn here(&self) -> String {
        event_ref(self.event)
    }
}

/// The reference of event `id` of the persona topic.
fn persona_ref(id: u64) -> String {
    format!("{PERSONA_TOPIC}#{id}")
}

/// A dollar limit as an exact amount.
fn usd_limit(limit: Option<f64>) -> Option<Money> {
    limit.map(Money::from_f64)
}

/// The limit a recorded spend broke, given the day's and hour's sums
/// including it, in the reference order (run, daily, hourly, tokens).
///
/// Dollar limits compare exactly, as the reference admits.
fn spend_over_limit(
    policy: &BudgetPolicy,
    amount: Amount,
    day_usd: Money,
    hour_usd: Money,
    day_tokens: u64,
) -> Option<(Invariant, String)> {
    let over = |limit: Option<f64>, sum: Money| usd_limit(limit).filter(|limit| sum > *limit);
    if let Some(limit) = over(policy.run_usd, amount.usd) {
        Some((
            Invariant::RunLimit,
            format!(
                "a single record of {} USD is over run_usd {limit}",
                amount.usd
            ),
        ))
    } else if let Some(limit) = over(policy.daily_usd, day_usd) {
        Some((
            Invariant::DailyLimit,
            format!("spend today reached {day_usd} USD, over daily_usd {limit}"),
        ))
    } else if let Some(limit) = over(policy.hourly_usd, hour_usd) {
        Some((
            Invariant::HourlyLimit,
            format!("spend this hour reached {hour_usd} USD, over hourly_usd {limit}"),
        ))
    } else {
        policy
            .max_tokens
            .filter(|limit| day_tokens > *limit)
            .map(|limit| {
                (
                    Invariant::TokenLimit,
                    format!("tokens today reached {day_tokens}, over max_tokens {limit}"),
                )
            })
    }
}

impl ProcessModel {
    /// A claim: no live lease may hold, and the fencing token must grow.
    fn claim(
        &mut self,
        id: &str,
        lease: &ProcessLease,
        at: i64,
        here: String,
    ) -> Result<(), Broken> {
        if let Some(held) = self.lease.as_ref().filter(|l| at < l.expires_at_ms) {
            return Err((
                Invariant::SingleLiveLease,
                format!(
                    "process `{id}`: claimed at {} while lease `{}` holds until {}",
                    format_ms(at),
                    held.token,
                    format_ms(held.expires_at_ms)
                ),
                vec![here],
            ));
        }
        let fencing_token = lease.fencing_token;
        if fencing_token <= self.max_fencing_token {
            return Err((
                Invariant::FencingTokenGrows,
                format!(
                    "process `{id}`: a claim got fencing token {fencing_token}, not above {}",
                    self.max_fencing_token
                ),
                vec![here],
            ));
        }
        self.max_fencing_token = fencing_token;
        self.latest_by_owner
            .insert(lease.owner.clone(), lease.lease_token.clone());
        self.lease = Some(ProcessLeaseModel {
            token: lease.lease_token.clone(),
            fencing_token,
            expires_at_ms: lease.expires_at_ms,
        });
        Ok(())
    }

    /// An owner's event was accepted: its token must be the live lease's.
    fn check_token(
        &self,
        id: &str,
        kind: &str,
        token: &str,
        fencing_token: u64,
        at: i64,
        here: String,
    ) -> Result<(), Broken> {
        let accepted = self.lease.as_ref().is_some_and(|lease| {
            lease.token == token && lease.fencing_token == fencing_token && at < lease.expires_at_ms
        });
        if accepted {
            return Ok(());
        }
        Err((
            Invariant::StaleTokenRefused,
            format!("process `{id}`: `{kind}` was accepted with token `{token}` (fencing token {fencing_token}), which is not the live lease"),
            vec![here],
        ))
    }
}

/// The invariant that an admitted run breaks when the model says `reason`.
fn limit_invariant(reason: BudgetLimit) -> Invariant {
    match reason {
        BudgetLimit::RunUsd => Invariant::RunLimit,
        BudgetLimit::DailyUsd => Invariant::DailyLimit,
        BudgetLimit::HourlyUsd => Invariant::HourlyLimit,
        BudgetLimit::MaxTokens => Invariant::TokenLimit,
    }
}

/// What one step was, as the checker needs to know it.
#[derive(Clone, Copy, Debug)]
pub struct StepContext<'a> {
    /// The step's 0-based index.
    pub index: usize,
    pub at_ms: i64,
    pub op: &'a Op,
    /// For a pump that invoked a deferred episode, that episode's operation.
    pub pumped: Option<&'a Op>,
    pub result: &'a Result<OpResult, rehearse_runtime::engine::RuntimeError>,
}

impl StepContext<'_> {
    /// The operation whose runs this step admitted.
    fn effective_op(&self) -> &Op {
        self.pumped.unwrap_or(self.op)
    }
}

/// Holds a runtime to the invariants, step by step.
#[derive(Clone, Debug)]
pub struct Checker {
    personas: BTreeMap<String, PersonaModel>,
    processes: BTreeMap<String, ProcessModel>,
    /// How many log events have been checked.
    checked: usize,
    /// Whether a persona without a binding is modelled when the log first
    /// names it (`rehearse audit`), rather than ignored.
    discover_personas: bool,
}

impl Checker {
    /// A checker for a runtime built from `config` over an empty log.
    pub fn new(config: &RuntimeConfig) -> Self {
        let personas = config
            .personas
            .iter()
            .map(|(name, spec)| {
                let model = PersonaModel {
                    ttl_ms: Some(spec.lease_ttl().as_i64()),
                    budget: spec.budget.clone(),
                    ..PersonaModel::default()
                };
                (name.clone(), model)
            })
            .collect();
        Self {
            personas,
            processes: BTreeMap::new(),
            checked: 0,
            discover_personas: false,
        }
    }

    /// A checker for a log read on its own, with no runtime and no
    /// operations (`rehearse audit`). Personas of `config` are held to their
    /// bindings; any other persona the log names is modelled from its first
    /// event with no budget limits and lease expiries as logged, so the
    /// lease-expiry and budget invariants hold nothing to it.
    pub fn for_log(config: &RuntimeConfig) -> Self {
        Self {
            discover_personas: true,
            ..Self::new(config)
        }
    }

    /// Checks one event of a log read on its own against the model and folds
    /// it in, as [`Checker::check_step`] does for each event a step
    /// appended. What needs the operation behind the event (the cost it was
    /// admitted with, which resume drained it, a refused process token) or
    /// a runtime (statuses) is not checked. A violation's `step` is
    /// `position`, the event's 1-based place in the log.
    pub fn check_event(&mut self, position: usize, event: &StoredEvent) -> Result<(), Violation> {
        if self.discover_personas && event.topic.as_str() == PERSONA_TOPIC {
            if let Some(name) = event.header("persona") {
                if !self.personas.contains_key(name) {
                    self.personas
                        .insert(name.to_string(), PersonaModel::default());
                }
            }
        }
        self.checked += 1;
        self.event(None, position, &ReadEvent::of(event), &mut BTreeMap::new())
    }

    /// Checks one event against the model and folds it in; `step` is the
    /// operation that appended it, when known.
    fn event(
        &mut self,
        step: Option<&StepContext<'_>>,
        position: usize,
        event: &ReadEvent<'_>,
        started_this_step: &mut BTreeMap<(String, String), String>,
    ) -> Result<(), Violation> {
        let result = match event.stored.topic.as_str() {
            PERSONA_TOPIC => self.persona_event(step, event, started_this_step),
            PROCESS_TOPIC => self.process_event(event.stored),
            _ => Ok(()),
        };
        result.map_err(|(invariant, message, evidence)| Violation {
            invariant,
            step: position,
            message,
            evidence,
        })
    }

    /// Checks the events one step appended and then every persona's status.
    pub fn check_step(
        &mut self,
        step: StepContext<'_>,
        runtime: &Runtime,
    ) -> Result<(), Violation> {
        // Only the events since the last check: a log that keeps no
        // history holds no more.
        let len = runtime.log().len() as usize;
        let new_events: Vec<ReadEvent<'_>> = runtime
            .log()
            .slice(self.checked.min(len)..len)
            .iter()
            .map(ReadEvent::of)
            .collect();
        self.check_read(step, runtime, &new_events)
    }

    /// [`Checker::check_step`] with the step's events read already:
    /// `new_events` are every event `runtime`'s log appended since the last
    /// check, in order, so that their persona events are decoded once for
    /// the checker and whatever else folds them (`RunLedger`).
    pub fn check_read(
        &mut self,
        step: StepContext<'_>,
        runtime: &Runtime,
        new_events: &[ReadEvent<'_>],
    ) -> Result<(), Violation> {
        self.check_process_refusal(&step, new_events)?;
        let mut started_this_step: BTreeMap<(String, String), String> = BTreeMap::new();
        for event in new_events {
            self.event(Some(&step), step.index + 1, event, &mut started_this_step)?;
        }
        self.checked = runtime.log().len() as usize;
        self.check_statuses(&step, runtime)
    }

    /// The cost a run of `work_key` was admitted with in this step: the
    /// triggering operation's, or the queued item's for a resume.
    /// Without the operation (a log read on its own), only a queued item's
    /// cost is known; anything else counts as free.
    fn admission_amount(
        &self,
        step: Option<&StepContext<'_>>,
        persona: &str,
        work_key: &str,
    ) -> Amount {
        match step.map(StepContext::effective_op) {
            Some(Op::Trigger(trigger)) => Amount {
                usd: Money::from_f64(trigger.cost.usd),
                tokens: trigger.cost.tokens,
            },
            Some(Op::Tick(tick)) => Amount {
                usd: Money::from_f64(tick.cost.usd),
                tokens: tick.cost.tokens,
            },
            _ => self.personas[persona]
                .queued
                .get(work_key)
                .copied()
                .unwrap_or_default(),
        }
    }

    fn persona_event(
        &mut self,
        step: Option<&StepContext<'_>>,
        read: &ReadEvent<'_>,
        started_this_step: &mut BTreeMap<(String, String), String>,
    ) -> Result<(), Broken> {
        let event = read.stored;
        let Some(decoded) = &read.persona else {
            return Ok(());
        };
        let (name, typed) = match decoded {
            Ok((name, typed)) => (*name, typed),
            Err(error) => {
                let message = format!("a persona event does not read back: {error}");
                let evidence = vec![event_ref(event)];
                return Err((Invariant::RebuildMatchesIncremental, message, evidence));
            }
        };
        if !self.personas.contains_key(name) {
            return Ok(());
        }
        let seen = Seen {
            name,
            at: event.occurred_at_ms,
            event,
        };
        match typed {
            PersonaEvent::ControlPaused(_) => self.model(name).control = Control::Paused,
            PersonaEvent::ControlDisabled(_) => self.model(name).control = Control::Disabled,
            PersonaEvent::ControlResumed(_) => self.model(name).control = Control::Active,
            PersonaEvent::TriggerQueued(queued) => self.on_queued(name, queued),
            PersonaEvent::LeaseExpired(expired) => self.on_lease_expired(&seen, &expired.id)?,
            PersonaEvent::LeaseAcquired(lease) => self.on_lease_acquired(&seen, lease)?,
            PersonaEvent::LeaseReleased(released) => {
                let model = self.model(name);
                if model.lease.as_ref().is_some_and(|l| *l.id == *released.id) {
                    model.lease = None;
                }
            }
            PersonaEvent::LeaseConflict(conflict) => self.on_conflict(step, &seen, conflict)?,
            PersonaEvent::TriggerDuplicate(duplicate) => {
                self.refused_before_budget(
                    step,
                    &seen,
                    &duplicate.work_key,
                    "was refused as a duplicate",
                )?;
            }
            PersonaEvent::RunStarted(started) => {
                self.on_run_started(step, &seen, &started.run, started_this_step)?;
            }
            PersonaEvent::RunCompleted(done) => self.on_run_completed(&seen, &done.run.work_key)?,
            PersonaEvent::BudgetExhausted(exhausted) => self.on_exhausted(&seen, exhausted)?,
            PersonaEvent::BudgetRecorded(recorded) => self.on_recorded(&seen, recorded)?,
            _ => {}
        }
        Ok(())
    }

    fn on_queued(&mut self, name: &str, queued: &TriggerQueued) {
        let model = self.model(name);
        if !model.completed.contains_key(&queued.work_key) {
            let amount = Amount {
                usd: Money::from_f64(queued.cost.cost_usd),
                tokens: queued.cost.tokens,
            };
            model.queued.insert(queued.work_key.clone(), amount);
        }
    }

    fn on_lease_expired(&mut self, seen: &Seen<'_>, id: &str) -> Result<(), Broken> {
        let (name, at) = (seen.name, seen.at);
        match &self.personas[name].lease {
            Some(lease) if *lease.id == *id && !lease.is_live_at(at) => {}
            Some(lease) if *lease.id == *id => {
                return Err((
                    Invariant::ExpiryBeforeReplace,
                    format!(
                        "persona `{name}`: lease `{id}` was expired at {} but holds until {}",
                        format_ms(at),
                        format_ms(lease.expires_at_ms)
                    ),
                    vec![persona_ref(lease.event), seen.here()],
                ));
            }
            _ => {
                return Err((
                    Invariant::ExpiryBeforeReplace,
                    format!("persona `{name}`: lease `{id}` was expired but is not held"),
                    vec![seen.here()],
                ));
            }
        }
        self.model(name).lease = None;
        Ok(())
    }

    fn on_lease_acquired(&mut self, seen: &Seen<'_>, lease: &Lease) -> Result<(), Broken> {
        let (name, at) = (seen.name, seen.at);
        let model = &self.personas[name];
        if model.control == Control::Disabled {
            return Err((
                Invariant::DisabledRunsNothing,
                format!("persona `{name}` is disabled but acquired a lease"),
                vec![seen.here()],
            ));
        }
        if let Some(old) = &model.lease {
            let invariant = if old.is_live_at(at) {
                Invariant::SingleLiveLease
            } else {
                Invariant::ExpiryBeforeReplace
            };
            return Err((
                invariant,
                format!(
                    "persona `{name}`: a lease was acquired at {} while lease `{}` (expiring at {}) was never released or expired",
                    format_ms(at),
                    old.id,
                    format_ms(old.expires_at_ms)
                ),
                vec![persona_ref(old.event), seen.here()],
            ));
        }
        // Without a binding, the lease lasts as long as the log says.
        let expected = model
            .ttl_ms
            .map_or(lease.expires_at_ms, |ttl_ms| at.saturating_add(ttl_ms));
        if let Some(ttl_ms) = model
            .ttl_ms
            .filter(|_| lease.acquired_at_ms != at || lease.expires_at_ms != expected)
        {
            return Err((
                Invariant::LeaseExpiry,
                format!(
                    "persona `{name}`: lease acquired at {} expires at {}, expected acquisition at {} and expiry at {} (TTL {})",
                    format_ms(lease.acquired_at_ms),
                    format_ms(lease.expires_at_ms),
                    format_ms(at),
                    format_ms(expected),
                    Millis(ttl_ms.unsigned_abs())
                ),
                vec![seen.here()],
            ));
        }
        self.model(name).lease = Some(LeaseModel {
            id: Arc::clone(&lease.id),
            work_key: Arc::clone(&lease.work_key),
            expires_at_ms: expected,
            event: seen.event.id,
        });
        Ok(())
    }

    fn on_conflict(
        &self,
        step: Option<&StepContext<'_>>,
        seen: &Seen<'_>,
        conflict: &LeaseConflict,
    ) -> Result<(), Broken> {
        let name = seen.name;
        if self.personas[name].live_lease(seen.at).is_none() {
            return Err((
                Invariant::ConflictNeedsLiveLease,
                format!(
                    "persona `{name}`: a lease conflict was recorded at {} with no live lease",
                    format_ms(seen.at)
                ),
                vec![seen.here()],
            ));
        }
        self.refused_before_budget(
            step,
            seen,
            &conflict.requested_work_key,
            "got a lease conflict",
        )
    }

    /// A refusal that admission makes after the budget check: the budget
    /// must have admitted the work's cost.
    fn refused_before_budget(
        &self,
        step: Option<&StepContext<'_>>,
        seen: &Seen<'_>,
        work_key: &str,
        what: &str,
    ) -> Result<(), Broken> {
        let name = seen.name;
        let amount = self.admission_amount(step, name, work_key);
        match self.personas[name].refusal(amount, seen.at) {
            Some(reason) => Err((
                Invariant::BudgetRefusalExact,
                format!(
                    "persona `{name}`: `{work_key}` {what} but its cost ({} USD, {} tokens) breaks `{reason}`, which is checked first",
                    amount.usd, amount.tokens
                ),
                vec![seen.here()],
            )),
            None => Ok(()),
        }
    }

    fn on_run_started(
        &self,
        step: Option<&StepContext<'_>>,
        seen: &Seen<'_>,
        run: &RunRef,
        started_this_step: &mut BTreeMap<(String, String), String>,
    ) -> Result<(), Broken> {
        let name = seen.name;
        let model = &self.personas[name];
        let work_key = &run.work_key;
        let broken = |invariant, message, evidence| Err((invariant, message, evidence));
        match model.control {
            Control::Disabled => {
                let message =
                    format!("persona `{name}` is disabled but started a run of `{work_key}`");
                return broken(Invariant::DisabledRunsNothing, message, vec![seen.here()]);
            }
            Control::Paused => {
                let message =
                    format!("persona `{name}` is paused but started a run of `{work_key}`");
                return broken(
                    Invariant::QueuedRunsOnceAfterResume,
                    message,
                    vec![seen.here()],
                );
            }
            Control::Active => {}
        }
        self.check_run_lease(seen, run)?;
        if let Some(completed) = model.completed.get(&**work_key) {
            let message =
                format!("persona `{name}`: a run of `{work_key}` started after it completed");
            return broken(
                Invariant::WorkKeyOnce,
                message,
                vec![persona_ref(*completed), seen.here()],
            );
        }
        let amount = self.admission_amount(step, name, work_key);
        if let Some(reason) = model.refusal(amount, seen.at) {
            let message = format!(
                "persona `{name}`: a run of `{work_key}` costing {} USD and {} tokens was admitted although it breaks `{reason}`",
                amount.usd, amount.tokens
            );
            return broken(limit_invariant(reason), message, vec![seen.here()]);
        }
        if step.is_some_and(|step| matches!(step.op, Op::Resume(_))) {
            let key = (name.to_string(), work_key.to_string());
            if let Some(first) = started_this_step.get(&key) {
                let message = format!("persona `{name}`: one resume ran queued `{work_key}` twice");
                return broken(
                    Invariant::QueuedRunsOnceAfterResume,
                    message,
                    vec![first.clone(), seen.here()],
                );
            }
            started_this_step.insert(key, seen.here());
        }
        Ok(())
    }

    /// A run starts under its own lease, and that lease is live.
    fn check_run_lease(&self, seen: &Seen<'_>, run: &RunRef) -> Result<(), Broken> {
        let name = seen.name;
        let (work_key, lease_id) = (&run.work_key, &run.lease_id);
        match self.personas[name].live_lease(seen.at) {
            Some(lease) if *lease.id == **lease_id && *lease.work_key == **work_key => Ok(()),
            Some(lease) => Err((
                Invariant::RunUnderOwnLease,
                format!(
                    "persona `{name}`: a run of `{work_key}` started under lease `{lease_id}`, but the live lease is `{}` for `{}`",
                    lease.id, lease.work_key
                ),
                vec![persona_ref(lease.event), seen.here()],
            )),
            None => Err((
                Invariant::RunUnderOwnLease,
                format!("persona `{name}`: a run of `{work_key}` started under lease `{lease_id}`, which is not live"),
                vec![seen.here()],
            )),
        }
    }

    fn on_run_completed(&mut self, seen: &Seen<'_>, work_key: &str) -> Result<(), Broken> {
        let name = seen.name;
        let model = self.model(name);
        if let Some(first) = model.completed.get(work_key) {
            return Err((
                Invariant::WorkKeyOnce,
                format!("persona `{name}`: work key `{work_key}` completed twice"),
                vec![persona_ref(*first), seen.here()],
            ));
        }
        model.queued.remove(work_key);
        model.completed.insert(work_key.to_string(), seen.event.id);
        Ok(())
    }

    fn on_exhausted(&self, seen: &Seen<'_>, exhausted: &BudgetExhausted) -> Result<(), Broken> {
        let name = seen.name;
        if !self.personas[name].is_bound() {
            // Without its binding, the limits that refused are unknown.
            return Ok(());
        }
        let reason = exhausted.reason;
        let amount = Amount {
            usd: Money::from_f64(exhausted.attempted_cost_usd),
            tokens: exhausted.attempted_tokens,
        };
        let expected = self.personas[name].refusal(amount, seen.at);
        if expected == Some(reason) {
            return Ok(());
        }
        Err((
            Invariant::BudgetRefusalExact,
            format!(
                "persona `{name}`: {} USD and {} tokens were refused for `{reason}`, but admission should have said {}",
                amount.usd,
                amount.tokens,
                expected.map_or_else(|| "admit".to_string(), |r| format!("`{r}`"))
            ),
            vec![seen.here()],
        ))
    }

    fn on_recorded(&mut self, seen: &Seen<'_>, recorded: &BudgetRecorded) -> Result<(), Broken> {
        let (name, at) = (seen.name, seen.at);
        let amount = Amount {
            usd: Money::from_f64(recorded.cost_usd),
            tokens: recorded.tokens,
        };
        let model = self.model(name);
        let (day_usd, day_tokens) = model.today(at);
        let day_usd = day_usd + amount.usd;
        let day_tokens = day_tokens.saturating_add(amount.tokens);
        let hour_usd = model.this_hour(at) + amount.usd;
        if let Some((invariant, message)) =
            spend_over_limit(&model.budget, amount, day_usd, hour_usd, day_tokens)
        {
            return Err((
                invariant,
                format!("persona `{name}`: {message}"),
                vec![seen.here()],
            ));
        }
        model
            .days
            .insert(at - at.rem_euclid(DAY_MS), (day_usd, day_tokens));
        model.hours.insert(at - at.rem_euclid(HOUR_MS), hour_usd);
        Ok(())
    }

    fn model(&mut self, name: &str) -> &mut PersonaModel {
        self.personas
            .get_mut(name)
            .expect("only known personas are modelled")
    }

    fn process_event(&mut self, event: &StoredEvent) -> Result<(), Broken> {
        let Some(typed) = ProcessEvent::from_stored(event) else {
            return Ok(());
        };
        let id = typed.process_id().to_string();
        if let ProcessEvent::Started(_) = typed {
            self.processes.entry(id).or_default();
            return Ok(());
        }
        let Some(model) = self.processes.get_mut(&id) else {
            return Ok(());
        };
        let (at, here) = (event.occurred_at_ms, event_ref(event));
        match &typed {
            ProcessEvent::LeaseExpired(expired) => {
                let token = &expired.lease_token;
                let held = model.lease.as_ref();
                if !held.is_some_and(|lease| lease.token == *token && at >= lease.expires_at_ms) {
                    return Err((
                        Invariant::ExpiryBeforeReplace,
                        format!("process `{id}`: lease `{token}` was expired at {} before its expiry or without being held", format_ms(at)),
                        vec![here],
                    ));
                }
            }
            ProcessEvent::Claimed(claimed) => model.claim(&id, &claimed.lease, at, here)?,
            ProcessEvent::Renewed(renewed) => {
                model.check_token(
                    &id,
                    typed.kind(),
                    &renewed.lease_token,
                    renewed.fencing_token,
                    at,
                    here,
                )?;
                if let Some(lease) = model.lease.as_mut() {
                    lease.expires_at_ms = renewed.expires_at_ms;
                }
            }
            ProcessEvent::Waiting(waiting) => {
                model.check_token(
                    &id,
                    typed.kind(),
                    &waiting.lease_token,
                    waiting.fencing_token,
                    at,
                    here,
                )?;
            }
            ProcessEvent::Completed(ended) | ProcessEvent::Failed(ended) => {
                let token = ended.lease_token.as_deref().unwrap_or_default();
                let fencing = ended.fencing_token.unwrap_or_default();
                model.check_token(&id, typed.kind(), token, fencing, at, here)?;
            }
            _ => {}
        }
        if matches!(
            typed,
            ProcessEvent::Completed(_)
                | ProcessEvent::Failed(_)
                | ProcessEvent::Cancelled(_)
                | ProcessEvent::Abandoned(_)
        ) {
            model.terminal = true;
            model.lease = None;
        }
        Ok(())
    }

    /// An owner operation presenting a token that is not the live lease's
    /// must fail and append nothing.
    fn check_process_refusal(
        &self,
        step: &StepContext<'_>,
        new_events: &[ReadEvent<'_>],
    ) -> Result<(), Violation> {
        let Op::Process(op) = step.op else {
            return Ok(());
        };
        let (id, token) = match op {
            ProcessOp::Heartbeat(op) => (&op.id, &op.lease_token),
            ProcessOp::Wait(op) => (&op.id, &op.lease_token),
            ProcessOp::Complete(op) => (&op.id, &op.lease_token),
            ProcessOp::Fail(op) => (&op.id, &op.lease_token),
            _ => return Ok(()),
        };
        let Some(model) = self.processes.get(id) else {
            return Ok(());
        };
        let presented = match token {
            LeaseTokenRef::Of(owner) => model.latest_by_owner.get(owner),
            LeaseTokenRef::Token(token) => Some(token),
        };
        let Some(presented) = presented else {
            return Ok(());
        };
        let current = model
            .lease
            .as_ref()
            .filter(|lease| lease.token == *presented && step.at_ms < lease.expires_at_ms);
        if current.is_none() && (step.result.is_ok() || !new_events.is_empty()) {
            return Err(Violation {
                invariant: Invariant::StaleTokenRefused,
                step: step.index + 1,
                message: format!(
                    "process `{id}`: `{}` with stale or lapsed token `{presented}` was not refused",
                    op.kind()
                ),
                evidence: new_events
                    .iter()
                    .map(|read| event_ref(read.stored))
                    .collect(),
            });
        }
        Ok(())
    }

    /// Every persona's status at the step's time agrees with the model.
    fn check_statuses(&self, step: &StepContext<'_>, runtime: &Runtime) -> Result<(), Violation> {
        for (name, model) in &self.personas {
            // Only the parts of status that the model follows: building the
            // whole status would copy lists that grow with the log, and make
            // every step's check cost grow with the scenario.
            let Some(persona) = runtime.persona(name) else {
                continue;
            };
            let status = StatusParts {
                active_lease: persona.state.live_lease(step.at_ms),
                budget: persona.budget_status(step.at_ms),
                queued_events: persona.state.queued.len(),
                state: persona.lifecycle_at(step.at_ms),
            };
            let mismatch = |what: &str, reported: String, logged: String| Violation {
                invariant: Invariant::StatusMatchesLog,
                step: step.index + 1,
                message: format!(
                    "persona `{name}`: status reports {what} {reported}, the log says {logged}"
                ),
                evidence: Vec::new(),
            };
            let lease = model.live_lease(step.at_ms).map(|lease| &*lease.id);
            let reported = status.active_lease.as_ref().map(|lease| &*lease.id);
            if reported != lease {
                return Err(mismatch(
                    "active lease",
                    format!("{reported:?}"),
                    format!("{lease:?}"),
                ));
            }
            let (day_usd, day_tokens) = model.today(step.at_ms);
            let hour_usd = model.this_hour(step.at_ms);
            let budget = &status.budget;
            if budget.spent_today_usd.to_bits() != day_usd.to_f64().to_bits()
                || budget.spent_this_hour_usd.to_bits() != hour_usd.to_f64().to_bits()
                || budget.tokens_today != day_tokens
            {
                return Err(mismatch(
                    "spend (today, this hour, tokens today)",
                    format!(
                        "({}, {}, {})",
                        budget.spent_today_usd, budget.spent_this_hour_usd, budget.tokens_today
                    ),
                    format!("({day_usd}, {hour_usd}, {day_tokens})"),
                ));
            }
            if status.queued_events != model.queued.len() {
                return Err(mismatch(
                    "queued events",
                    status.queued_events.to_string(),
                    model.queued.len().to_string(),
                ));
            }
            let state_agrees = match model.control {
                Control::Paused => status.state == Lifecycle::Paused,
                Control::Disabled => status.state == Lifecycle::Disabled,
                Control::Active => !matches!(status.state, Lifecycle::Paused | Lifecycle::Disabled),
            };
            if !state_agrees {
                return Err(mismatch(
                    "state",
                    format!("{:?}", status.state),
                    format!("{:?}", model.control),
                ));
            }
        }
        Ok(())
    }
}

/// The parts of a persona's status the checker compares with its model.
struct StatusParts<'a> {
    active_lease: Option<&'a rehearse_runtime::lease::Lease>,
    budget: rehearse_runtime::budget::BudgetStatus,
    queued_events: usize,
    state: Lifecycle,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_families_follow_design() {
        let names: std::collections::BTreeSet<_> =
            Invariant::ALL.iter().map(|i| i.name()).collect();
        assert_eq!(names.len(), Invariant::ALL.len());
        let count = |family| {
            Invariant::ALL
                .iter()
                .filter(|i| i.family() == family)
                .count()
        };
        assert_eq!(
            [
                count(Family::Leases),
                count(Family::Budgets),
                count(Family::Work),
                count(Family::Determinism)
            ],
            [7, 5, 3, 4]
        );
    }

    #[test]
    fn a_violation_reads_as_one_line_with_its_evidence() {
        let violation = Violation {
            invariant: Invariant::WorkKeyOnce,
            step: 2,
            message: "persona `alpha`: work key `k` completed twice".to_string(),
            evidence: vec![
                "persona.runtime.events#7".to_string(),
                "persona.runtime.events#12".to_string(),
            ],
        };
        assert_eq!(
            violation.to_string(),
            "work_key_once at step 2: persona `alpha`: work key `k` completed twice (events persona.runtime.events#7, persona.runtime.events#12)"
        );
        let bare = Violation {
            evidence: Vec::new(),
            ..violation
        };
        assert_eq!(
            bare.to_string(),
            "work_key_once at step 2: persona `alpha`: work key `k` completed twice"
        );
    }
}
