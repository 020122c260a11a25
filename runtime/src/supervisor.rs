//! The supervisor in front of the persona runtime: every external event gets
//! exactly one decision, Invoke or Defer, under the concurrency, rate,
//! deadline and retry constraints; pumps run deferred episodes when due.
//!
//! Triggers and ticks are episodes the constraints gate. Every other
//! non-pump event (controls, spend, reports, faults, restarts) is an episode
//! too, for numbering, but is always invoked at once: a pause must never wait
//! behind a rate limit. Unlike the modelled supervisor, `max_in_flight` binds: an invoked
//! run stays in flight for its scripted `duration` (the deadline, for an
//! attempt that timed out), and a crashed run until its lease expires.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::config::Constraints;
use crate::engine::{OpResult, ReceiptStatus, RunPlan, Runtime, RuntimeError};
use crate::op::{AttemptOutcome, FailKind, Op, Outcome};

/// The supervisor's decision for an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Decision")]
pub enum DecisionKind {
    Invoke,
    Defer,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoke => "invoke",
            Self::Defer => "defer",
        }
    }
}

/// The supervisor's decision for one external event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub event_id: String,
    pub decision: DecisionKind,
    /// When a deferred episode becomes due; absent for an idle pump.
    pub schedule_at_ms: Option<i64>,
    /// Absent only for a pump that found nothing due.
    pub episode_id: Option<u64>,
    pub deadline_ms: Option<u64>,
    /// How an invoked episode ended; absent for Defer.
    pub termination: Option<Termination>,
    pub retry_count: u64,
}

/// How an invoked episode ended, written `completed`, `timed_out`,
/// `aborted` or `failed:<kind>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    Completed,
    /// The attempt overran the deadline.
    TimedOut,
    /// The run crashed after it started.
    Aborted,
    /// The run or the operation failed with this kind.
    Failed(FailKind),
}

impl Termination {
    /// Whether `text` is how this termination is written.
    pub fn is_written(self, text: &str) -> bool {
        match self {
            Self::Failed(kind) => text
                .strip_prefix("failed:")
                .is_some_and(|rest| rest == kind.as_str()),
            other => text == other.fixed_text().unwrap_or_default(),
        }
    }

    fn fixed_text(self) -> Option<&'static str> {
        match self {
            Self::Completed => Some("completed"),
            Self::TimedOut => Some("timed_out"),
            Self::Aborted => Some("aborted"),
            Self::Failed(_) => None,
        }
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self, self.fixed_text()) {
            (Self::Failed(kind), _) => write!(f, "failed:{kind}"),
            (_, Some(text)) => f.write_str(text),
            (_, None) => unreachable!("only failures have no fixed text"),
        }
    }
}

impl std::str::FromStr for Termination {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fixed = [Self::Completed, Self::TimedOut, Self::Aborted];
        if let Some(found) = fixed.into_iter().find(|t| t.is_written(text)) {
            return Ok(found);
        }
        text.strip_prefix("failed:")
            .and_then(FailKind::from_name)
            .map(Self::Failed)
            .ok_or_else(|| {
                format!("unknown termination `{text}`, expected `completed`, `timed_out`, `aborted` or `failed:<kind>` with a kind such as `runtime_error`")
            })
    }
}

impl From<Termination> for String {
    fn from(termination: Termination) -> Self {
        termination.to_string()
    }
}

impl Serialize for Termination {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read from a string's own visitor (not through `String`), so a
/// scenario's error points at the value.
impl<'de> Deserialize<'de> for Termination {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Termination;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`completed`, `timed_out`, `aborted` or `failed:<kind>`")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Termination, E> {
                value.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for Termination {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Termination".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        let fixed = [Self::Completed, Self::TimedOut, Self::Aborted];
        let names: Vec<String> = fixed
            .into_iter()
            .chain(FailKind::ALL.iter().map(|kind| Self::Failed(*kind)))
            .map(|termination| termination.to_string())
            .collect();
        json_schema!({
            "description": "How the invocation ended: `completed`, `timed_out`, `aborted` or `failed:<kind>`.",
            "type": "string",
            "enum": names,
        })
    }
}

/// An episode waiting for a pump.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeferredEpisode {
    pub episode_id: u64,
    pub event_id: String,
    pub schedule_at_ms: i64,
    pub op: Op,
}

/// What handling one event did.
#[derive(Clone, Debug, PartialEq)]
pub struct Handled {
    pub decision: Decision,
    /// The step's outcome; an `Err` is the runtime's refusal, written as a
    /// message in the report.
    pub result: Result<OpResult, RuntimeError>,
    /// The log positions this event appended.
    pub events: Range<usize>,
}

/// The supervisor state.
#[derive(Clone, Debug, Default)]
pub struct Supervisor {
    constraints: Constraints,
    next_episode: u64,
    /// Invoked episodes still running: (episode id, finishes at).
    in_flight: Vec<(u64, i64)>,
    recent_invocations: VecDeque<i64>,
    deferred: BTreeMap<(i64, u64), DeferredEpisode>,
}

/// How many events the runtime's log holds: the position the next appends.
fn log_position(runtime: &Runtime) -> usize {
    usize::try_from(runtime.log().len()).expect("a log position fits in memory")
}

impl Supervisor {
    pub fn new(constraints: Constraints) -> Self {
        Self {
            constraints,
            ..Self::default()
        }
    }

    pub fn constraints(&self) -> &Constraints {
        &self.constraints
    }

    /// Episodes still deferred, earliest first.
    pub fn deferred(&self) -> impl Iterator<Item = &DeferredEpisode> {
        self.deferred.values()
    }

    /// Handles one external event at `now_ms`.
    pub fn handle(
        &mut self,
        runtime: &mut Runtime,
        event_id: &str,
        op: &Op,
        now_ms: i64,
    ) -> Handled {
        let start = log_position(runtime);
        self.in_flight
            .retain(|&(_, until)| still_running(until, now_ms));
        let (decision, result) = match op {
            Op::Pump(_) => self.pump(runtime, event_id, now_ms),
            Op::Trigger(_) | Op::Tick(_) => {
                let episode = self.next_episode_id();
                self.gate(runtime, event_id, episode, op, now_ms)
            }
            other => {
                let episode = self.next_episode_id();
                let result = match other {
                    Op::Restart(restart) => runtime.restart(restart.torn_tail_bytes),
                    _ => runtime
                        .execute(other, RunPlan::COMPLETE, now_ms)
                        .map(|(result, _)| result),
                };
                // Only runs are retried: a control or report that failed is
                // reported as it failed, for the scenario to handle.
                let termination = termination_of(&result);
                let decision = self.decision(
                    event_id,
                    DecisionKind::Invoke,
                    None,
                    Some(episode),
                    Some(termination),
                    0,
                );
                (decision, result)
            }
        };
        // A restart that recovers a torn tail shrinks the log: it appended
        // nothing, so its range is empty, never reversed.
        let end = log_position(runtime);
        Handled {
            decision,
            result,
            events: start.min(end)..end,
        }
    }

    fn next_episode_id(&mut self) -> u64 {
        let id = self.next_episode;
        self.next_episode += 1;
        id
    }

    fn decision(
        &self,
        event_id: &str,
        kind: DecisionKind,
        schedule_at_ms: Option<i64>,
        episode_id: Option<u64>,
        termination: Option<Termination>,
        retry_count: u64,
    ) -> Decision {
        Decision {
            event_id: event_id.to_string(),
            decision: kind,
            schedule_at_ms,
            episode_id,
            deadline_ms: self.constraints.deadline.map(|d| d.0),
            termination,
            retry_count,
        }
    }

    /// The invoked episodes still running at `now_ms`, as (episode id,
    /// finishes at): what `max_in_flight` counts.
    pub fn in_flight_at(&self, now_ms: i64) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.in_flight
            .iter()
            .copied()
            .filter(move |&(_, until)| still_running(until, now_ms))
    }

    /// Whether `max_in_flight` episodes are running at `now_ms`.
    pub fn saturated_at(&self, now_ms: i64) -> bool {
        self.constraints
            .max_in_flight
            .is_some_and(|max| self.in_flight_at(now_ms).count() as u64 >= max)
    }

    /// The invocation times inside the rate window at `now_ms`, oldest
    /// first; none without a rate limit.
    pub fn window_at(&self, now_ms: i64) -> impl Iterator<Item = i64> + '_ {
        let window = self.constraints.rate_window.map(|w| w.as_i64());
        self.recent_invocations
            .iter()
            .copied()
            .filter(move |&at| window.is_some_and(|window| in_window(at, now_ms, window)))
    }

    /// How long an invocation at `now_ms` must wait for the rate window:
    /// `window - (now - oldest invocation in the window)`, when the window
    /// already holds `max_per_window` invocations.
    pub fn rate_delay_at(&self, now_ms: i64) -> Option<i64> {
        let max = self.constraints.max_per_window?;
        let window = self.constraints.rate_window?.as_i64();
        let oldest = self.window_at(now_ms).next()?;
        (self.window_at(now_ms).count() as u64 >= max).then(|| window - (now_ms - oldest))
    }

    /// [`Supervisor::rate_delay_at`], first forgetting the invocations that
    /// left the window (they arrive in time order, so they are at the front).
    fn rate_limit_delay(&mut self, now_ms: i64) -> Option<i64> {
        if let Some(window) = self.constraints.rate_window.map(|w| w.as_i64()) {
            while self
                .recent_invocations
                .front()
                .is_some_and(|&at| !in_window(at, now_ms, window))
            {
                self.recent_invocations.pop_front();
            }
        }
        self.rate_delay_at(now_ms)
    }

    /// The scripted outcome and length of attempt `index` (0-based) of a
    /// trigger or tick: an attempt longer than `deadline` lasts the
    /// deadline and times out, unless it was scripted to crash or fail.
    pub fn scripted_attempt(&self, op: &Op, index: usize) -> Option<ScriptedAttempt> {
        let (outcome, duration_ms) = match op {
            Op::Trigger(t) => (&t.outcome, t.duration.as_i64()),
            Op::Tick(t) => (&t.outcome, t.duration.as_i64()),
            _ => return None,
        };
        let deadline_ms = self.constraints.deadline.map(|d| d.as_i64());
        let timed_out = deadline_ms.is_some_and(|deadline| duration_ms > deadline);
        Some(ScriptedAttempt {
            outcome: if timed_out {
                attempt_with_timeout(outcome, index)
            } else {
                outcome.attempt(index)
            },
            attempt_ms: match deadline_ms {
                Some(deadline) if timed_out => deadline,
                _ => duration_ms,
            },
            over_deadline: timed_out,
        })
    }

    /// Decides a trigger or tick: defer it when saturated or rate-limited,
    /// otherwise invoke it.
    fn gate(
        &mut self,
        runtime: &mut Runtime,
        event_id: &str,
        episode: u64,
        op: &Op,
        now_ms: i64,
    ) -> (Decision, Result<OpResult, RuntimeError>) {
        let schedule_at = if self.saturated_at(now_ms) {
            Some(now_ms)
        } else {
            self.rate_limit_delay(now_ms).map(|delay| now_ms + delay)
        };
        if let Some(schedule_at_ms) = schedule_at {
            self.deferred.insert(
                (schedule_at_ms, episode),
                DeferredEpisode {
                    episode_id: episode,
                    event_id: event_id.to_string(),
                    schedule_at_ms,
                    op: op.clone(),
                },
            );
            let decision = self.decision(
                event_id,
                DecisionKind::Defer,
                Some(schedule_at_ms),
                Some(episode),
                None,
                0,
            );
            return (decision, Ok(deferred_result()));
        }
        self.invoke(runtime, event_id, episode, op, now_ms)
    }

    /// Runs at most one due deferred episode.
    fn pump(
        &mut self,
        runtime: &mut Runtime,
        event_id: &str,
        now_ms: i64,
    ) -> (Decision, Result<OpResult, RuntimeError>) {
        let due = self
            .deferred
            .keys()
            .next()
            .copied()
            .filter(|&(at, _)| at <= now_ms);
        let Some(key) = due else {
            // An idle pump is an episode of its own, as in the modelled
            // supervisor (docs/SCENARIOS.md, "Additions to v1").
            let episode = self.next_episode_id();
            let decision =
                self.decision(event_id, DecisionKind::Defer, None, Some(episode), None, 0);
            return (
                decision,
                Ok(OpResult {
                    receipt: "idle".to_string(),
                    ..OpResult::default()
                }),
            );
        };
        let mut episode = self.deferred.remove(&key).expect("the key was just found");
        let again = if self.saturated_at(now_ms) {
            Some(now_ms)
        } else {
            self.rate_limit_delay(now_ms).map(|delay| now_ms + delay)
        };
        if let Some(schedule_at_ms) = again {
            episode.schedule_at_ms = schedule_at_ms;
            let id = episode.episode_id;
            self.deferred.insert((schedule_at_ms, id), episode);
            let decision = self.decision(
                event_id,
                DecisionKind::Defer,
                Some(schedule_at_ms),
                Some(id),
                None,
                0,
            );
            return (decision, Ok(deferred_result()));
        }
        self.invoke(runtime, event_id, episode.episode_id, &episode.op, now_ms)
    }

    /// Invokes a trigger or tick, retrying mechanical failures up to
    /// `max_retries`; attempt `n` takes the `n`th scripted outcome.
    fn invoke(
        &mut self,
        runtime: &mut Runtime,
        event_id: &str,
        episode: u64,
        op: &Op,
        now_ms: i64,
    ) -> (Decision, Result<OpResult, RuntimeError>) {
        if self.constraints.max_per_window.is_some() && self.constraints.rate_window.is_some() {
            self.recent_invocations.push_back(now_ms);
        }
        if self.constraints.deadline.map(|d| d.as_i64()) == Some(0) {
            return self.aborted_before_start(event_id, episode);
        }
        let attempts = self.attempts(runtime, op, now_ms);
        let crash_until = attempts
            .result
            .as_ref()
            .ok()
            .and_then(|r| r.run.as_ref())
            .filter(|run| run.status == ReceiptStatus::Crashed)
            .and_then(|run| run.lease.as_ref())
            .map(|lease| lease.expires_at_ms);
        let until = crash_until
            .unwrap_or(now_ms)
            .max(now_ms + attempts.elapsed_ms);
        if until > now_ms {
            self.in_flight.push((episode, until));
        }
        let decision = self.decision(
            event_id,
            DecisionKind::Invoke,
            None,
            Some(episode),
            Some(termination_of(&attempts.result)),
            attempts.retries,
        );
        (decision, attempts.result)
    }

    /// A zero deadline has expired before the attempt starts: the modelled
    /// runtime handle aborts it without running it, and an abort is never
    /// retried (docs/SCENARIOS.md, "Additions to v1").
    fn aborted_before_start(
        &self,
        event_id: &str,
        episode: u64,
    ) -> (Decision, Result<OpResult, RuntimeError>) {
        let decision = self.decision(
            event_id,
            DecisionKind::Invoke,
            None,
            Some(episode),
            Some(Termination::Aborted),
            0,
        );
        let result = OpResult {
            receipt: "aborted".to_string(),
            error: Some("deadline of 0s: the attempt was aborted before it ran".to_string()),
            ..OpResult::default()
        };
        (decision, Ok(result))
    }

    /// Runs the attempts of a trigger or tick: the first, then a retry
    /// after each mechanical failure while `max_retries` allows.
    fn attempts(&self, runtime: &mut Runtime, op: &Op, now_ms: i64) -> Attempts {
        let (persona, cost) = match op {
            Op::Trigger(t) => (&t.persona, &t.cost),
            Op::Tick(t) => (&t.persona, &t.cost),
            _ => unreachable!("only triggers and ticks are gated"),
        };
        let scripted = |index: usize| {
            self.scripted_attempt(op, index)
                .expect("a trigger or tick has scripted attempts")
        };
        let attempt_ms = scripted(0).attempt_ms;
        let plan = |index: usize| RunPlan {
            outcome: scripted(index).outcome,
        };
        let mut envelope = None;
        let mut attempts = Attempts {
            result: self.first_attempt(runtime, op, plan(0), now_ms, &mut envelope),
            retries: 0,
            elapsed_ms: attempt_ms,
        };
        while retryable(&attempts.result) && attempts.retries < self.constraints.max_retries {
            attempts.retries += 1;
            attempts.elapsed_ms += attempt_ms;
            let index = usize::try_from(attempts.retries).unwrap_or(usize::MAX);
            attempts.result = match &envelope {
                Some(envelope) => runtime
                    .retry(persona, envelope, cost, plan(index), now_ms)
                    .map(|(r, _)| r),
                None => self.first_attempt(runtime, op, plan(index), now_ms, &mut envelope),
            };
        }
        attempts
    }

    /// The first committed attempt of an episode: `trigger.received` (or
    /// `schedule.fired`) and a run. Remembers the envelope for retries.
    fn first_attempt(
        &self,
        runtime: &mut Runtime,
        op: &Op,
        plan: RunPlan,
        now_ms: i64,
        envelope: &mut Option<crate::workkey::Envelope>,
    ) -> Result<OpResult, RuntimeError> {
        let (result, _) = runtime.execute(op, plan, now_ms)?;
        *envelope = result
            .run
            .as_ref()
            .and_then(|run| run.envelope.as_deref().cloned());
        Ok(result)
    }
}

/// What the attempts of one invocation came to.
struct Attempts {
    /// The last attempt's outcome.
    result: Result<OpResult, RuntimeError>,
    retries: u64,
    /// How long the attempts kept the episode in flight, together.
    elapsed_ms: i64,
}

/// One scripted attempt of a trigger or tick, under the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptedAttempt {
    pub outcome: AttemptOutcome,
    /// How long the attempt keeps its episode in flight.
    pub attempt_ms: i64,
    /// Whether the scripted duration overran the deadline.
    pub over_deadline: bool,
}

/// Whether an invoked episode that finishes at `until_ms` still runs at `now_ms`.
fn still_running(until_ms: i64, now_ms: i64) -> bool {
    until_ms > now_ms
}

/// Whether an invocation at `at_ms` is inside the rate window at `now_ms`.
fn in_window(at_ms: i64, now_ms: i64, window_ms: i64) -> bool {
    now_ms - at_ms < window_ms
}

fn deferred_result() -> OpResult {
    OpResult {
        receipt: "deferred".to_string(),
        ..OpResult::default()
    }
}

/// The outcome of attempt `index` when every attempt overruns the deadline:
/// a scripted crash or failure still happens first; otherwise it times out.
fn attempt_with_timeout(outcome: &Outcome, index: usize) -> AttemptOutcome {
    match outcome.attempt(index) {
        AttemptOutcome::Completed => AttemptOutcome::Fail(FailKind::TimedOut),
        other => other,
    }
}

/// How an invocation ended, as the decision records it.
fn termination_of(result: &Result<OpResult, RuntimeError>) -> Termination {
    match result {
        Err(error) => Termination::Failed(error.fail_kind()),
        Ok(result) => match result.run.as_ref() {
            Some(run) if run.status == ReceiptStatus::Crashed => Termination::Aborted,
            Some(run) => match run.failure {
                Some(FailKind::TimedOut) => Termination::TimedOut,
                Some(kind) => Termination::Failed(kind),
                None => Termination::Completed,
            },
            None => Termination::Completed,
        },
    }
}

/// Mechanical failures are retried; semantic ones, crashes and refusals never.
fn retryable(result: &Result<OpResult, RuntimeError>) -> bool {
    match result {
        Err(error) => error.fail_kind().is_mechanical(),
        Ok(result) => result
            .run
            .as_ref()
            .and_then(|run| run.failure)
            .is_some_and(FailKind::is_mechanical),
    }
}
