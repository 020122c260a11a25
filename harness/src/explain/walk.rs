//! Explaining one step: what the state said before it ([`Before::read`]),
//! then the walk through its attempts or its drain over the events it
//! appended ([`Before::explain`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rehearse_runtime::budget;
use rehearse_runtime::capture::Session;
use rehearse_runtime::config::BudgetPolicy;
use rehearse_runtime::format_ms;
use rehearse_runtime::keyset::KeySet;
use rehearse_runtime::log::StoredEvent;
use rehearse_runtime::op::{AttemptOutcome, Op};
use rehearse_runtime::persona::{PersonaEvent, PersonaState, ReceiptStatus};
use rehearse_runtime::supervisor::{Handled, Supervisor};
use serde_json::Value;

use super::rules::{self, PumpGate, Request, Verdict};
use super::{Explanation, Outcome, Rule, Section};
use crate::report::EventRange;
use crate::scenario::Scenario;

/// Whether `event` opens an admission's result (one per admission).
fn opens_admission(event: &PersonaEvent) -> bool {
    matches!(
        event,
        PersonaEvent::TriggerQueued(_)
            | PersonaEvent::TriggerDeadLettered(_)
            | PersonaEvent::BudgetExhausted(_)
            | PersonaEvent::TriggerDuplicate(_)
            | PersonaEvent::LeaseConflict(_)
            | PersonaEvent::LeaseExpired(_)
            | PersonaEvent::LeaseAcquired(_)
    )
}

/// What happens after the state is read.
#[derive(Debug)]
enum Plan {
    /// The outcome is known before the step runs.
    Known,
    /// Runs `op` (a trigger or tick) for `persona`, attempt by attempt.
    Run { op: Box<Op>, persona: Persona },
    /// A resume drains the persona's queue.
    Drain { persona: Persona },
}

/// The parts of a persona's state the admission rules read, without the
/// lists that grow with the log (so explaining every step stays linear).
#[derive(Debug)]
struct Persona {
    name: String,
    light: PersonaState,
    policy: BudgetPolicy,
}

/// The state before a step, read and judged.
#[derive(Debug)]
pub(super) struct Before {
    summary: String,
    faults: u64,
    sections: Vec<Section>,
    predicted: Outcome,
    plan: Plan,
}

fn rule(check: &str, inputs: String, outcome: &str) -> Rule {
    Rule {
        check: check.to_string(),
        inputs,
        outcome: outcome.to_string(),
        decides: false,
    }
}

fn section(title: impl Into<String>, rules: Vec<Rule>) -> Section {
    Section {
        title: title.into(),
        rules,
    }
}

fn predict(decision: &str, receipt: Option<&str>) -> Outcome {
    Outcome {
        decision: Some(decision.to_string()),
        receipt: receipt.map(str::to_string),
        ..Outcome::default()
    }
}

impl Before {
    /// Reads the runtime and the supervisor before `op` runs at `now_ms`.
    pub(super) fn read(op: &Op, now_ms: i64, session: &Session) -> Self {
        let faults = session.runtime().faults_remaining();
        let mut before = Self {
            summary: summary(op),
            faults,
            sections: Vec::new(),
            predicted: predict("invoke", None),
            plan: Plan::Known,
        };
        match op {
            Op::Trigger(_) | Op::Tick(_) => before.gate(op, now_ms, session),
            Op::Pump(_) => before.pump(now_ms, session),
            _ => {
                let not_gated = rule(
                    "gate",
                    format!("a {} step", op.kind()),
                    "not gated: only triggers and ticks wait for max_in_flight or the rate window; invoke at once",
                );
                before.sections.push(section("supervisor", vec![not_gated]));
                before.direct(op, now_ms, session);
            }
        }
        before
    }

    fn gate(&mut self, op: &Op, now_ms: i64, session: &Session) {
        let supervisor = session.supervisor();
        let (mut rules, defer_at) = rules::gate(supervisor, now_ms);
        match defer_at {
            Some(at_ms) => {
                self.predicted = predict("defer", Some("deferred"));
                self.predicted.schedule_at = Some(format_ms(at_ms));
            }
            None => {
                rules.extend(rules::invoke_rules(supervisor, op));
                self.invoke(op, session, &mut rules);
            }
        }
        self.sections.push(section("supervisor", rules));
    }

    /// An invoked trigger or tick: its attempts run, unless a zero
    /// deadline aborts it before it starts.
    fn invoke(&mut self, op: &Op, session: &Session, rules: &mut Vec<Rule>) {
        if session.supervisor().constraints().deadline.map(|d| d.0) == Some(0) {
            rules.push(rule(
                "deadline 0s",
                String::new(),
                "expired before the attempt starts: aborted without running, never retried",
            ));
            self.predicted.receipt = Some("aborted".to_string());
            return;
        }
        self.plan = run_plan(op, session);
    }

    fn pump(&mut self, now_ms: i64, session: &Session) {
        let supervisor = session.supervisor();
        let (mut rules, gate) = rules::pump(supervisor, now_ms);
        match gate {
            PumpGate::Idle => self.predicted = predict("defer", Some("idle")),
            PumpGate::Defer { at_ms, .. } => {
                self.predicted = predict("defer", Some("deferred"));
                self.predicted.schedule_at = Some(format_ms(at_ms));
            }
            PumpGate::Invoke(episode) => {
                self.summary = format!(
                    "pump: runs episode {} ({}), deferred from {}: {}",
                    episode.episode_id,
                    episode.op.kind(),
                    episode.event_id,
                    summary(&episode.op)
                );
                rules.extend(rules::invoke_rules(supervisor, &episode.op));
                self.invoke(&episode.op, session, &mut rules);
            }
        }
        self.sections.push(section("supervisor (pump)", rules));
    }

    /// Steps the supervisor invokes at once: controls, spend, reports,
    /// faults, restarts, process and pipeline steps.
    fn direct(&mut self, op: &Op, now_ms: i64, session: &Session) {
        let persona = op
            .persona()
            .and_then(|name| session.runtime().persona(name));
        let judged = match (op, persona) {
            (Op::Resume(name), Some(p)) => {
                self.plan = Plan::Drain {
                    persona: light(name, &p.state, &p.spec.budget, true),
                };
                Judged::new(Vec::new(), Some("ok"), true)
            }
            (_, Some(p)) => persona_step(op, &p.state, &p.spec.budget, now_ms),
            (_, None) => other_step(op, self.faults),
        };
        if !judged.rules.is_empty() {
            self.sections.push(section(op.kind(), judged.rules));
        }
        self.predicted = predict("invoke", judged.receipt);
        if judged.appends && self.faults > 0 {
            self.sections
                .push(section("storage", vec![fault_rule(self.faults)]));
            self.predicted.receipt = Some("error".to_string());
        }
    }

    /// Finishes the explanation once the step ran.
    pub(super) fn explain(
        self,
        _op: &Op,
        now_ms: i64,
        session: &Session,
        handled: &Handled,
    ) -> Explanation {
        let events = &session.runtime().log().all()[handled.events.clone()];
        let mut sections = self.sections;
        let mut predicted = self.predicted;
        match self.plan {
            Plan::Known => {}
            Plan::Run { op, persona } => {
                let mut fold = Fold::new(persona, events, session, now_ms);
                let receipt = fold.runs(&op, session.supervisor(), self.faults, &mut sections);
                predicted.receipt = Some(receipt);
            }
            Plan::Drain { persona } => {
                let mut fold = Fold::new(persona, events, session, now_ms);
                let (receipt, receipts) = fold.drain(self.faults, &mut sections);
                predicted.receipt = Some(receipt);
                predicted.receipts = Some(receipts);
            }
        }
        Explanation {
            summary: self.summary,
            sections,
            predicted,
            actual: actual(handled),
            events: Some(EventRange {
                first: handled.events.start,
                count: handled.events.len(),
            }),
            ..Explanation::default()
        }
    }
}

/// A step judged before it runs: its rules, the receipt they give, and
/// whether it appends (an armed storage fault then fails it).
struct Judged {
    rules: Vec<Rule>,
    receipt: Option<&'static str>,
    appends: bool,
}

impl Judged {
    fn new(rules: Vec<Rule>, receipt: Option<&'static str>, appends: bool) -> Self {
        Self {
            rules,
            receipt,
            appends,
        }
    }
}

/// A control, spend or report of a known persona (resume aside).
fn persona_step(op: &Op, state: &PersonaState, policy: &BudgetPolicy, now_ms: i64) -> Judged {
    match op {
        Op::Spend(spend) => {
            let checks = budget::checks(policy, &state.spend, spend.usd, spend.tokens, now_ms);
            let refused = checks.iter().any(|c| c.refuses);
            let rules = checks.iter().map(rules::budget_rule).collect();
            Judged::new(rules, Some(if refused { "error" } else { "ok" }), true)
        }
        Op::RepairWorker(report) => {
            let lifecycle = report.lifecycle.as_str();
            let seen = state
                .repair_reports
                .contains(&(report.id.clone(), report.lifecycle));
            let inputs = format!("worker `{}` lifecycle {lifecycle}", report.id);
            once("reported before?", inputs, seen, ["unchanged", "recorded"])
        }
        Op::RestoreCheckpoint(request) => {
            let acked = state.checkpoint_acks.contains_key(&request.checkpoint_id);
            let inputs = format!("checkpoint `{}`", request.checkpoint_id);
            once(
                "acknowledged before?",
                inputs,
                acked,
                ["already_acked", "acked"],
            )
        }
        // Pause and disable always append their control event.
        _ => Judged::new(Vec::new(), Some("ok"), true),
    }
}

/// A report recorded once: a repeat appends nothing. `receipts` are the
/// repeat's and the first time's.
fn once(check: &str, inputs: String, seen: bool, receipts: [&'static str; 2]) -> Judged {
    let (outcome, receipt) = if seen {
        ("yes: nothing appended", receipts[0])
    } else {
        ("no: recorded now", receipts[1])
    };
    Judged::new(vec![rule(check, inputs, outcome)], Some(receipt), !seen)
}

/// Faults, restarts, process and pipeline steps.
fn other_step(op: &Op, faults: u64) -> Judged {
    match op {
        Op::Fault(fault) => {
            let inputs = format!("{faults} armed before");
            let outcome = format!(
                "arms {} more: the next operations that append fail",
                fault.count
            );
            Judged::new(
                vec![rule("storage faults", inputs, &outcome)],
                Some("ok"),
                false,
            )
        }
        Op::Restart(restart) => {
            let cut = restart.torn_tail_bytes.unwrap_or(0);
            let inputs =
                format!("cut {cut} byte(s) off the log first; {faults} armed fault(s) stay armed");
            let outcome = "drop memory and reopen from the durable log";
            Judged::new(vec![rule("restart", inputs, outcome)], Some("ok"), false)
        }
        _ => {
            let outcome = "see the receipt and the events";
            Judged::new(
                vec![rule("decided by", subsystem(op).to_string(), outcome)],
                None,
                false,
            )
        }
    }
}

/// The explanation of a step that only checks.
pub(super) fn expect_only(scenario: &Scenario, index: usize) -> Explanation {
    let step = &scenario.steps[index];
    Explanation {
        step: index + 1,
        line: step.line,
        at: format_ms(step.at_ms),
        kind: "expect".to_string(),
        summary: "checks only: no operation, no decision, no events".to_string(),
        ..Explanation::default()
    }
}

fn run_plan(op: &Op, session: &Session) -> Plan {
    let name = op.persona().unwrap_or_default();
    match session.runtime().persona(name) {
        Some(p) => Plan::Run {
            op: Box::new(op.clone()),
            persona: light(name, &p.state, &p.spec.budget, false),
        },
        None => Plan::Known,
    }
}

fn fault_rule(faults: u64) -> Rule {
    rule(
        "append fault armed?",
        format!("{faults} injected failure(s) armed"),
        "yes: the operation's events are discarded whole; receipt error (failed:runtime_error)",
    )
}

fn subsystem(op: &Op) -> &'static str {
    match op {
        Op::Process(_) => "the process registry (docs/SCENARIOS.md \"Process registry\")",
        _ => "the pipeline lifecycle (docs/SCENARIOS.md \"Pipeline lifecycle\")",
    }
}

/// What the step returned, in the shape of a prediction.
fn actual(handled: &Handled) -> Outcome {
    let decision = &handled.decision;
    let (receipt, receipts) = match &handled.result {
        Ok(result) => (result.receipt.clone(), result.receipts.clone()),
        Err(_) => ("error".to_string(), Vec::new()),
    };
    Outcome {
        decision: Some(decision.decision.as_str().to_string()),
        schedule_at: decision.schedule_at_ms.map(format_ms),
        receipt: Some(receipt),
        receipts: Some(receipts),
    }
}

/// A sentence for what `op` asks.
fn summary(op: &Op) -> String {
    match op {
        Op::Trigger(t) => format!(
            "trigger for {}: {} {}, cost {} USD and {} tokens, outcome {}, duration {}",
            t.persona,
            t.provider,
            t.kind,
            t.cost.usd,
            t.cost.tokens,
            outcome_text(&t.outcome),
            t.duration
        ),
        Op::Tick(t) => format!(
            "tick of {}'s first schedule, cost {} USD and {} tokens, outcome {}, duration {}",
            t.persona,
            t.cost.usd,
            t.cost.tokens,
            outcome_text(&t.outcome),
            t.duration
        ),
        Op::Pump(_) => "pump: run the earliest due deferred episode".to_string(),
        Op::Pause(name) => format!("pause {name}: later triggers queue until resume"),
        Op::Resume(name) => format!("resume {name}: run every queued item, in work-key order"),
        Op::Disable(name) => format!("disable {name}: later triggers are dead-lettered"),
        Op::Spend(s) => format!(
            "spend for {}: {} USD and {} tokens",
            s.persona, s.usd, s.tokens
        ),
        other => {
            let body = serde_json::to_value(other).unwrap_or(Value::Null);
            format!(
                "{}: {}",
                other.kind(),
                body.get(other.kind()).unwrap_or(&body)
            )
        }
    }
}

fn outcome_text(outcome: &rehearse_runtime::op::Outcome) -> String {
    serde_json::to_value(outcome).map_or_else(
        |_| "completed".to_string(),
        |v| match v {
            Value::String(text) => text,
            other => other.to_string(),
        },
    )
}

fn light(name: &str, state: &PersonaState, policy: &BudgetPolicy, queued: bool) -> Persona {
    Persona {
        name: name.to_string(),
        light: PersonaState {
            lifecycle: state.lifecycle,
            last_run_ms: state.last_run_ms,
            lease: state.lease.clone(),
            last_error: state.last_error.clone(),
            queued: if queued {
                state.queued.clone()
            } else {
                BTreeMap::new()
            },
            completed: KeySet::new(),
            disabled_events: state.disabled_events,
            last_receipt_id: state.last_receipt_id.clone(),
            exhaustion_reason: state.exhaustion_reason,
            spend: state.spend.clone(),
            value_receipts: Default::default(),
            repair_reports: BTreeSet::new(),
            checkpoint_acks: BTreeMap::new(),
        },
        policy: policy.clone(),
    }
}

/// A persona's light state walked through a step's events with the
/// runtime's own fold.
struct Fold<'e> {
    persona: Persona,
    /// The persona's events of the step, decoded, with their times.
    events: std::iter::Peekable<std::vec::IntoIter<(i64, PersonaEvent)>>,
    work_key: Option<Arc<str>>,
    /// Work keys completed by the end of the step, and by the step itself:
    /// a key completed before the step is in the first and not the second
    /// (completions are never undone).
    completed_after: &'e KeySet,
    completed_here: KeySet,
    now_ms: i64,
}

impl<'e> Fold<'e> {
    fn new(persona: Persona, events: &'e [StoredEvent], session: &'e Session, now_ms: i64) -> Self {
        let mine: Vec<(i64, PersonaEvent)> = events
            .iter()
            .filter(|e| e.header("persona") == Some(persona.name.as_str()))
            .filter_map(|e| Some((e.occurred_at_ms, PersonaEvent::from_stored(e)?.ok()?.1)))
            .collect();
        let completed_here = mine
            .iter()
            .filter_map(|(_, event)| match event {
                PersonaEvent::RunCompleted(done) => Some(done.run.work_key.clone()),
                _ => None,
            })
            .collect();
        let completed_after = &session
            .runtime()
            .persona(&persona.name)
            .expect("the persona exists")
            .state
            .completed;
        Self {
            persona,
            events: mine.into_iter().peekable(),
            work_key: None,
            completed_after,
            completed_here,
            now_ms,
        }
    }

    /// Folds `event`, which occurred at `at_ms`, with the runtime's own fold.
    fn apply(&mut self, (at_ms, event): &(i64, PersonaEvent)) {
        self.persona.light.apply(event, *at_ms);
    }

    /// Folds events up to the next admission's first event (not applied);
    /// false when there is none.
    fn advance_to_admission(&mut self) -> bool {
        while let Some((_, event)) = self.events.peek() {
            if opens_admission(event) {
                return true;
            }
            if let PersonaEvent::TriggerReceived(arrived) | PersonaEvent::ScheduleFired(arrived) =
                event
            {
                self.work_key = Some(arrived.envelope.subject_key.clone());
            }
            let event = self.events.next().expect("peeked");
            self.apply(&event);
        }
        false
    }

    /// Folds events through the attempt's receipt event.
    fn through_receipt(&mut self) {
        while let Some(event) = self.events.next() {
            self.apply(&event);
            if matches!(event.1, PersonaEvent::SupervisionReceipt(_)) {
                return;
            }
        }
    }

    fn admit(&self, work_key: &str, usd: f64, tokens: u64) -> (Vec<Rule>, Verdict) {
        let completed = self.persona.light.completed.contains(work_key)
            || (self.completed_after.contains(work_key) && !self.completed_here.contains(work_key));
        rules::admission(Request {
            state: &self.persona.light,
            policy: &self.persona.policy,
            work_key,
            usd,
            tokens,
            completed,
            now_ms: self.now_ms,
        })
    }

    /// The admission rules of the attempt whose admission is next in the
    /// log (`found`, from `advance_to_admission`), then folds through its
    /// receipt; a missing admission event is a rule of its own.
    fn admit_through_receipt(
        &mut self,
        found: bool,
        work_key: &str,
        usd: f64,
        tokens: u64,
    ) -> (Vec<Rule>, Verdict) {
        let (mut rules, verdict) = self.admit(work_key, usd, tokens);
        if !found {
            rules.push(rule(
                "log",
                String::new(),
                "no admission event follows: the log disagrees",
            ));
        }
        self.through_receipt();
        (rules, verdict)
    }

    /// Walks a trigger's or tick's attempts; returns the predicted receipt.
    fn runs(
        &mut self,
        op: &Op,
        supervisor: &Supervisor,
        mut faults: u64,
        sections: &mut Vec<Section>,
    ) -> String {
        let (usd, tokens) = match op {
            Op::Trigger(t) => (t.cost.usd, t.cost.tokens),
            Op::Tick(t) => (t.cost.usd, t.cost.tokens),
            _ => (0.0, 0),
        };
        let max_retries = supervisor.constraints().max_retries;
        let mut attempt = 0u64;
        loop {
            let index = usize::try_from(attempt).unwrap_or(usize::MAX);
            let scripted = supervisor
                .scripted_attempt(op, index)
                .map_or(AttemptOutcome::Completed, |s| s.outcome);
            let title = format!("attempt {}", attempt + 1);
            let (mut rules, receipt, mechanical) = if faults > 0 {
                faults -= 1;
                (vec![fault_rule(faults + 1)], "error".to_string(), true)
            } else {
                self.attempt(usd, tokens, scripted)
            };
            let retry = mechanical && attempt < max_retries;
            rules.push(rule(
                "retry?",
                format!(
                    "{receipt}{}; retries used {attempt} of max_retries {max_retries}",
                    if mechanical {
                        ", a mechanical failure"
                    } else {
                        ""
                    }
                ),
                if retry {
                    "yes: attempt again at the same time"
                } else {
                    "no: this is the step's receipt"
                },
            ));
            let title = match &self.work_key {
                Some(key) if receipt != "error" => {
                    format!("{title}: admission of `{key}`, cost {usd} USD and {tokens} tokens")
                }
                _ => format!("{title}: nothing reaches the log"),
            };
            sections.push(section(title, rules));
            if !retry {
                return receipt;
            }
            attempt += 1;
        }
    }

    /// One attempt that reached the log: its admission, then its run.
    fn attempt(
        &mut self,
        usd: f64,
        tokens: u64,
        scripted: AttemptOutcome,
    ) -> (Vec<Rule>, String, bool) {
        let found = self.advance_to_admission();
        let key = self.work_key.clone().unwrap_or_default();
        let (mut rules, verdict) = self.admit_through_receipt(found, &key, usd, tokens);
        let (receipt, mechanical) = match (verdict.receipt(), scripted) {
            (Some(refusal), _) => (refusal, false),
            (None, AttemptOutcome::Completed) => (ReceiptStatus::Completed, false),
            (None, AttemptOutcome::Crash) => (ReceiptStatus::Crashed, false),
            (None, AttemptOutcome::Fail(kind)) => {
                rules.push(rule(
                    "run",
                    format!("scripted outcome {kind}"),
                    "the run fails after spending its cost",
                ));
                (ReceiptStatus::Failed, kind.is_mechanical())
            }
        };
        (rules, receipt.as_str().to_string(), mechanical)
    }

    /// Walks a resume's drain; returns the predicted receipt and receipts.
    fn drain(&mut self, faults: u64, sections: &mut Vec<Section>) -> (String, Vec<String>) {
        if faults > 0 {
            sections.push(section("storage", vec![fault_rule(faults)]));
            return ("error".to_string(), Vec::new());
        }
        let items: Vec<_> = self.persona.light.queued.values().cloned().collect();
        if items.is_empty() {
            sections.push(section(
                "drain",
                vec![rule("queued items", "none".to_string(), "nothing to run")],
            ));
        }
        let mut receipts = Vec::with_capacity(items.len());
        for (n, item) in items.iter().enumerate() {
            let found = self.advance_to_admission();
            let key = &item.envelope.subject_key;
            let (rules, verdict) =
                self.admit_through_receipt(found, key, item.cost.cost_usd, item.cost.tokens);
            let receipt = verdict.receipt().unwrap_or(ReceiptStatus::Completed);
            receipts.push(receipt.as_str().to_string());
            let title = format!(
                "drain item {} of {}: admission of `{key}` (queued {}), cost {} USD and {} tokens",
                n + 1,
                items.len(),
                format_ms(item.queued_at_ms),
                item.cost.cost_usd,
                item.cost.tokens
            );
            sections.push(section(title, rules));
        }
        ("ok".to_string(), receipts)
    }
}
