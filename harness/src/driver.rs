//! The driver: runs a parsed scenario's steps on the runtime with the
//! scenario clock, through the supervisor, checks the inline expectations,
//! and renders the outputs (`events.jsonl`, `report.json`, `capture.jsonl`).

use std::collections::BTreeMap;
use std::time::Instant;

use rehearse_runtime::capture::{CaptureBundle, Session};
use rehearse_runtime::engine::Runtime;
use rehearse_runtime::log::{EventLog, MemoryLog, StoredEvent};
use rehearse_runtime::op::Op;
use rehearse_runtime::supervisor::{DecisionKind, Handled};
use rehearse_runtime::{format_ms, Millis};
use serde::Serialize;
use serde_json::{json, Value};

use crate::expect::{self, check, check_error};
use crate::explore::{Checker, RuntimeHook, StepContext};
use crate::report::{
    DeferredReport, EventRange, Expectation, FinalState, InvariantViolation, Report, StepReport,
    Summary, Unsettled, REPORT_VERSION,
};
use crate::scenario::{Expect, Scenario, Sequence, Step, MAX_RETRIES};

/// Why a scenario could not be run at all (as opposed to running and
/// failing its expectations).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    /// The machine failed the run (a full disk, an I/O error in the
    /// scratch log): never behaviour, never a golden.
    #[error("{file}: environment error: {message}")]
    Environment { file: String, message: String },
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunOutput {
    pub report: Report,
    /// The run records, also inside the report; saved one file each by `run`.
    pub runs: Vec<rehearse_runtime::run_record::RunRecord>,
    pub bundle: CaptureBundle,
    pub events_jsonl: String,
    pub report_json: String,
    pub capture_json: String,
    pub stats: RunStats,
}

/// How much work a run did and how fast.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RunStats {
    pub steps: usize,
    pub events: usize,
    pub episodes: usize,
    /// Wall time of the run itself; reported, never part of an output file.
    pub seconds: f64,
}

impl RunOutput {
    /// The files of the golden set, by name.
    pub fn files(&self) -> [(&'static str, &str); 3] {
        [
            ("report.json", &self.report_json),
            ("events.jsonl", &self.events_jsonl),
            ("capture.jsonl", &self.capture_json),
        ]
    }

    /// Whether every expectation and every invariant held.
    pub fn passed(&self) -> bool {
        self.report.summary.failed_expectations == 0 && self.report.invariant_violations.is_empty()
    }
}

/// How to run a scenario.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Check every invariant of the runtime after every step (see
    /// `explore`); on by default.
    pub check_invariants: bool,
    /// Applied to the runtime before the first step: tests use it to switch
    /// on a deliberate bug (feature `test-hooks` of the runtime).
    pub runtime_hook: Option<RuntimeHook>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            check_invariants: true,
            runtime_hook: None,
        }
    }
}

/// Runs `scenario`, read from `source` (the path as the user gave it),
/// checking the invariants after every step.
pub fn run(scenario: &Scenario, source: &str) -> Result<RunOutput, DriverError> {
    run_with(scenario, source, RunOptions::default())
}

/// Whether a scenario cuts bytes off its log: its later log is then shorter
/// than what was observed, which the invariant checker's model cannot
/// follow, so such scenarios are not checked against the invariants.
pub fn tears_log(scenario: &Scenario) -> bool {
    scenario
        .steps
        .iter()
        .any(|step| matches!(&step.op, Some(Op::Restart(r)) if r.torn_tail_bytes.unwrap_or(0) > 0))
}

/// Watches a run step by step: the explainer reads the runtime and the
/// supervisor before a step and the events it appended after.
pub trait StepObserver {
    /// Step `index` (0-based) is about to run `op` at `at_ms`.
    fn before(&mut self, index: usize, op: &Op, at_ms: i64, session: &Session);
    /// Step `index` ran; `handled` is what the supervisor did.
    fn after(&mut self, index: usize, op: &Op, at_ms: i64, session: &Session, handled: &Handled);
}

/// An observer that watches nothing.
#[derive(Debug)]
struct Unobserved;

impl StepObserver for Unobserved {
    fn before(&mut self, _: usize, _: &Op, _: i64, _: &Session) {}
    fn after(&mut self, _: usize, _: &Op, _: i64, _: &Session, _: &Handled) {}
}

/// Runs `scenario` with `options`.
pub fn run_with(
    scenario: &Scenario,
    source: &str,
    options: RunOptions,
) -> Result<RunOutput, DriverError> {
    run_observed(scenario, source, options, &mut Unobserved)
}

/// Runs `scenario` with `options`, showing every step to `observer`.
pub fn run_observed(
    scenario: &Scenario,
    source: &str,
    options: RunOptions,
    observer: &mut dyn StepObserver,
) -> Result<RunOutput, DriverError> {
    let started = Instant::now();
    let config = scenario.runtime_config();
    // Parsed scenarios are validated already; one built in code (by the
    // explorer, say) still may not ask for unbounded retries.
    if config.supervisor.max_retries > MAX_RETRIES {
        return Err(DriverError::Invalid {
            file: source.to_string(),
            message: format!(
                "supervisor.max_retries is {}, at most {MAX_RETRIES} is allowed",
                config.supervisor.max_retries
            ),
        });
    }
    let storage = Storage::for_scenario(scenario, source)?;
    let mut session =
        Session::new(&scenario.name, &config, storage.open(source)?).map_err(|error| {
            DriverError::Invalid {
                file: source.to_string(),
                message: error.to_string(),
            }
        })?;

    if let Some(hook) = options.runtime_hook {
        hook(session.runtime_mut());
    }
    let checker = (options.check_invariants && !tears_log(scenario)).then(|| Checker::new(&config));
    let mut driving = Driving {
        scenario,
        source,
        session,
        storage,
        checker,
        deferred_ops: BTreeMap::new(),
        violations: Vec::new(),
        summary: Summary {
            steps: scenario.steps.len(),
            ..Summary::default()
        },
        steps: Vec::with_capacity(scenario.steps.len()),
    };
    let mut last_ms = scenario.start_ms;
    for (index, step) in scenario.steps.iter().enumerate() {
        let after_ms = last_ms;
        last_ms = step.end_ms();
        let report = driving.step(index, step, after_ms, observer)?;
        driving.steps.push(report);
    }
    let Driving {
        session,
        storage,
        violations,
        mut summary,
        steps,
        ..
    } = driving;

    let runtime = session.runtime();
    let personas = runtime
        .personas()
        .keys()
        .map(|name| {
            (
                name.clone(),
                runtime.status(name, last_ms).expect("a known persona"),
            )
        })
        .collect();
    let deferred_at_end = session
        .deferred()
        .into_iter()
        .map(|d| DeferredReport {
            episode_id: d.episode_id,
            event_id: d.event_id,
            schedule_at: format_ms(d.schedule_at_ms),
            kind: d.op.kind().to_string(),
        })
        .collect();
    let events_jsonl = render_events(runtime.log().all());
    let unsettled = runtime.unsettled(last_ms);
    let runs = runtime.run_records();
    summary.events = runtime.log().all().len();
    let report = Report {
        report_version: REPORT_VERSION,
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        source: source.replace('\\', "/"),
        seed: scenario.seed,
        start: format_ms(scenario.start_ms),
        backend: storage.name().to_string(),
        steps,
        deferred_at_end,
        invariant_violations: violations,
        final_state: FinalState {
            at: format_ms(last_ms),
            personas,
            processes: runtime.processes().snapshot(),
            pipeline: runtime.pipeline().snapshot(),
            unsettled: Unsettled {
                counts: unsettled.counts(),
                summary: unsettled.summary(),
            },
        },
        runs: runs.clone(),
        summary,
    };
    let (bundle, runtime) = session.finish();
    drop(runtime);
    drop(storage);
    let report_json = pretty(&report);
    let capture_json =
        String::from_utf8(bundle.to_jsonl()).expect("a capture serialises to UTF-8 JSON");
    let stats = RunStats {
        steps: report.summary.steps,
        events: report.summary.events,
        episodes: report.summary.episodes,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(RunOutput {
        report,
        runs,
        bundle,
        events_jsonl,
        report_json,
        capture_json,
        stats,
    })
}

/// A run in progress: the session and everything collected so far.
struct Driving<'a> {
    scenario: &'a Scenario,
    source: &'a str,
    session: Session,
    storage: Storage,
    checker: Option<Checker>,
    deferred_ops: BTreeMap<u64, Op>,
    violations: Vec<InvariantViolation>,
    summary: Summary,
    steps: Vec<StepReport>,
}

impl Driving<'_> {
    /// Runs one step (its operation, or each event of an `advance` or
    /// `repeat`) and checks its expectations. `after_ms` is when the step
    /// before it ended.
    fn step(
        &mut self,
        index: usize,
        step: &Step,
        after_ms: i64,
        observer: &mut dyn StepObserver,
    ) -> Result<StepReport, DriverError> {
        let mut report = StepReport {
            step: index + 1,
            line: step.line,
            at: format_ms(step.at_ms),
            kind: step.kind().to_string(),
            event_id: None,
            receipt: None,
            receipts: Vec::new(),
            error: None,
            decision: None,
            events: None,
            detail: None,
            expectations: Vec::new(),
        };
        let mut run_receipt = Value::Null;
        let first = self.session.runtime().log().all().len();
        if let Some(op) = &step.op {
            let event_id = format!("step-{}", index + 1);
            let handled = self.handle(index, &event_id, step.at_ms, op, observer)?;
            run_receipt = run_json(&handled);
            report.event_id = Some(event_id);
            report.events = Some(EventRange {
                first: handled.events.start,
                count: handled.events.len(),
            });
            match handled.result {
                Ok(result) => {
                    report.receipt = Some(result.receipt);
                    report.receipts = result.receipts;
                    report.error = result.error;
                    report.detail = result.detail;
                }
                Err(message) => {
                    self.summary.step_errors += 1;
                    report.receipt = Some("error".to_string());
                    report.error = Some(message);
                }
            }
            report.decision = Some(handled.decision);
        }
        if let Some(sequence) = &step.sequence {
            run_receipt = self.sequence(index, step, sequence, after_ms, observer, &mut report)?;
        }
        let end = self.session.runtime().log().all().len();
        if let Some(expect) = &step.expect {
            let observed = Observed {
                step: &report,
                run: &run_receipt,
                events: &self.session.runtime().log().all()[first.min(end)..end],
            };
            report.expectations = evaluate(
                expect,
                &observed,
                &self.session,
                self.scenario.start_ms,
                step.end_ms(),
            );
            self.summary.expectations += report.expectations.len();
            self.summary.failed_expectations +=
                report.expectations.iter().filter(|e| !e.ok).count();
        }
        Ok(report)
    }

    /// Runs each event an `advance` or `repeat` stands for, as its own
    /// external event `step-N.K` (K from 1); the step's receipts are theirs,
    /// in order, and its decision and run receipt the last one's.
    fn sequence(
        &mut self,
        index: usize,
        step: &Step,
        sequence: &Sequence,
        after_ms: i64,
        observer: &mut dyn StepObserver,
        report: &mut StepReport,
    ) -> Result<Value, DriverError> {
        let first = self.session.runtime().log().all().len();
        let events = match sequence.expand(&self.scenario.personas, after_ms, step.at_ms) {
            Ok(events) => events,
            Err(message) => {
                self.summary.step_errors += 1;
                report.receipt = Some("error".to_string());
                report.error = Some(message);
                return Ok(Value::Null);
            }
        };
        let mut run_receipt = Value::Null;
        let mut failed = None;
        for (k, (at_ms, op)) in events.iter().enumerate() {
            let event_id = format!("step-{}.{}", index + 1, k + 1);
            let handled = self.handle(index, &event_id, *at_ms, op, observer)?;
            if handled.result.as_ref().is_ok_and(|r| r.run.is_some()) {
                run_receipt = run_json(&handled);
            }
            match handled.result {
                Ok(result) => report.receipts.push(result.receipt),
                Err(message) => {
                    report.receipts.push("error".to_string());
                    failed.get_or_insert(message);
                }
            }
            report.event_id = Some(event_id);
            report.decision = Some(handled.decision);
        }
        let end = self.session.runtime().log().all().len();
        report.events = Some(EventRange {
            first: first.min(end),
            count: end.saturating_sub(first),
        });
        if let Some(message) = failed {
            self.summary.step_errors += 1;
            report.receipt = Some("error".to_string());
            report.error = Some(message);
        } else {
            report.receipt = Some("ok".to_string());
        }
        Ok(run_receipt)
    }

    /// Hands one external event to the session, shows it to the observer,
    /// and checks the invariants after it.
    fn handle(
        &mut self,
        index: usize,
        event_id: &str,
        at_ms: i64,
        op: &Op,
        observer: &mut dyn StepObserver,
    ) -> Result<Handled, DriverError> {
        observer.before(index, op, at_ms, &self.session);
        let handled = self.session.handle(event_id, at_ms, op);
        self.storage.check(self.source)?;
        observer.after(index, op, at_ms, &self.session, &handled);
        // A restart that cut a torn tail dropped events earlier steps
        // appended: their ranges end where the log now ends.
        for earlier in self.steps.iter_mut().rev() {
            let Some(range) = earlier.events.as_mut() else {
                continue;
            };
            if range.first + range.count <= handled.events.end {
                break;
            }
            range.first = range.first.min(handled.events.end);
            range.count = handled.events.end - range.first;
        }
        self.check_invariants(index, at_ms, op, &handled);
        self.summary.episodes +=
            usize::from(handled.decision.episode_id.is_some() && !matches!(op, Op::Pump(_)));
        Ok(handled)
    }

    fn check_invariants(&mut self, index: usize, at_ms: i64, op: &Op, handled: &Handled) {
        let Some(active) = self.checker.as_mut() else {
            return;
        };
        let pumped = track_deferred(&mut self.deferred_ops, op, handled);
        let context = StepContext {
            index,
            at_ms,
            op,
            pumped: pumped.as_ref(),
            result: &handled.result,
        };
        if let Err(violation) = active.check_step(context, self.session.runtime()) {
            // The model is not trusted past its first violation.
            let steps = &self.scenario.steps;
            self.violations.push(InvariantViolation {
                step: violation.step,
                line: steps
                    .get(violation.step.saturating_sub(1))
                    .or(steps.get(index))
                    .map_or(0, |s| s.line),
                invariant: violation.invariant.name().to_string(),
                message: violation.to_string(),
                evidence: violation.evidence.clone(),
            });
            self.checker = None;
        }
    }
}

/// The run receipt a step's event returned, as JSON; `null` when none.
fn run_json(handled: &Handled) -> Value {
    match handled.result.as_ref().map(|r| r.run.as_ref()) {
        Ok(Some(run)) => serde_json::to_value(run).expect("a run receipt serialises"),
        _ => Value::Null,
    }
}

/// What one step produced, for its expectations.
struct Observed<'a> {
    step: &'a StepReport,
    /// The step's run receipt as JSON, `null` when it has none.
    run: &'a Value,
    /// The log events the step appended.
    events: &'a [StoredEvent],
}

fn evaluate(
    expect: &Expect,
    observed: &Observed<'_>,
    session: &Session,
    start_ms: i64,
    now_ms: i64,
) -> Vec<Expectation> {
    let step = observed.step;
    let mut out = Vec::new();
    if let Some(receipt) = &expect.receipt {
        check(&mut out, "receipt", json!(receipt), json!(step.receipt));
    }
    if let Some(receipts) = &expect.receipts {
        check(&mut out, "receipts", json!(receipts), json!(step.receipts));
    }
    if let Some(error) = &expect.error {
        check_error(&mut out, error, step.error.as_deref());
    }
    let decision = step.decision.as_ref();
    if let Some(kind) = &expect.decision {
        check(
            &mut out,
            "decision",
            json!(kind),
            json!(decision.map(|d| d.decision.as_str())),
        );
    }
    if let Some(at_ms) = expect.schedule_at_ms(start_ms) {
        check(
            &mut out,
            "schedule_at",
            json!(format_ms(at_ms)),
            json!(decision.and_then(|d| d.schedule_at_ms).map(format_ms)),
        );
    }
    if let Some(count) = expect.retry_count {
        check(
            &mut out,
            "retry_count",
            json!(count),
            json!(decision.map(|d| d.retry_count)),
        );
    }
    if let Some(termination) = &expect.termination {
        check(
            &mut out,
            "termination",
            json!(termination.to_string()),
            json!(decision.and_then(|d| d.termination)),
        );
    }
    if let Some(id) = expect.episode_id {
        check(
            &mut out,
            "episode_id",
            json!(id),
            json!(decision.and_then(|d| d.episode_id)),
        );
    }
    if let Some(deadline) = expect.deadline {
        check(
            &mut out,
            "deadline",
            json!(deadline.to_string()),
            json!(decision
                .and_then(|d| d.deadline_ms)
                .map(|ms| Millis(ms).to_string())),
        );
    }
    evaluate_added(expect, observed, session.runtime(), &mut out);
    if !expect.unsettled.is_empty() {
        let counts = session.runtime().unsettled(now_ms).counts();
        for (name, expected) in &expect.unsettled {
            check(
                &mut out,
                format!("unsettled.{name}"),
                json!(expected),
                json!(counts.get(name)),
            );
        }
    }
    if let Some(persona) = &expect.persona {
        let paths = &expect.status;
        let status = session
            .runtime()
            .status(persona, now_ms)
            .map_or(Value::Null, |s| {
                serde_json::to_value(s).expect("a status serialises")
            });
        for (path, expected) in paths {
            check(
                &mut out,
                format!("status.{path}"),
                expected.clone(),
                expect::lookup(&status, path),
            );
        }
    }
    out
}

/// The expectation keys that read the step's events, run receipt and
/// receipts, and the run records, process records and pipeline state.
fn evaluate_added(
    expect: &Expect,
    observed: &Observed<'_>,
    runtime: &Runtime,
    out: &mut Vec<Expectation>,
) {
    if expect.events.is_some() || expect.events_include.is_some() {
        let events: Vec<Value> = observed.events.iter().map(event_value).collect();
        if let Some(items) = &expect.events {
            expect::check_events(out, items, &events);
        }
        if let Some(items) = &expect.events_include {
            expect::check_events_include(out, items, &events);
        }
    }
    expect::check_paths(out, "run", &expect.run, observed.run);
    if let Some(counts) = &expect.receipt_counts {
        expect::check_receipt_counts(out, counts, &observed.step.receipts);
    }
    if !expect.records.is_empty() {
        let records = serde_json::to_value(runtime.run_records()).expect("run records serialise");
        let count = records.as_array().map_or(0, Vec::len);
        for (path, expected) in &expect.records {
            let actual = if path == "count" {
                json!(count)
            } else {
                expect::lookup(&records, path)
            };
            check(out, format!("records.{path}"), expected.clone(), actual);
        }
    }
    if let Some(process) = &expect.process {
        let snapshot = runtime.processes().snapshot();
        let record = snapshot.get(&process.id).cloned().unwrap_or(Value::Null);
        if record.is_null() {
            check(out, "process.id", json!(process.id), Value::Null);
        }
        let prefix = format!("process.{}", process.id);
        expect::check_paths(out, &prefix, &process.paths, &record);
    }
    if !expect.pipeline.is_empty() {
        let snapshot = runtime.pipeline().snapshot();
        expect::check_paths(out, "pipeline", &expect.pipeline, &snapshot);
    }
}

/// Keeps the operation of every deferred episode, and returns the one a
/// pump just invoked.
fn track_deferred(deferred: &mut BTreeMap<u64, Op>, op: &Op, handled: &Handled) -> Option<Op> {
    let decision = &handled.decision;
    let episode = decision.episode_id?;
    match (decision.decision, op) {
        (DecisionKind::Defer, Op::Pump(_)) => None,
        (DecisionKind::Defer, _) => {
            deferred.insert(episode, op.clone());
            None
        }
        (DecisionKind::Invoke, Op::Pump(_)) => deferred.remove(&episode),
        (DecisionKind::Invoke, _) => None,
    }
}

/// One line of `events.jsonl`.
#[derive(Serialize)]
struct EventLine<'a> {
    topic: &'a str,
    id: u64,
    kind: &'a str,
    occurred_at: String,
    headers: &'a BTreeMap<String, String>,
    payload: &'a Value,
}

impl<'a> EventLine<'a> {
    fn of(event: &'a StoredEvent) -> Self {
        EventLine {
            topic: event.topic.as_str(),
            id: event.id,
            kind: &event.kind,
            occurred_at: format_ms(event.occurred_at_ms),
            headers: &event.headers,
            payload: &event.payload,
        }
    }
}

/// One event as its line of `events.jsonl` reads, for expectations.
pub fn event_value(event: &StoredEvent) -> Value {
    serde_json::to_value(EventLine::of(event)).expect("an event serialises")
}

/// Every event of every topic in append order, one JSON object a line.
pub fn render_events(events: &[StoredEvent]) -> String {
    let mut out = String::with_capacity(events.len() * 256);
    for event in events {
        let line = EventLine::of(event);
        out.push_str(&serde_json::to_string(&line).expect("an event serialises"));
        out.push('\n');
    }
    out
}

/// Pretty JSON with a trailing newline: the golden files' form.
pub fn pretty<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("an output serialises");
    text.push('\n');
    text
}

/// Where a run keeps its log.
enum Storage {
    Memory,
    File(crate::storage::Scratch),
}

impl Storage {
    fn for_scenario(scenario: &Scenario, source: &str) -> Result<Self, DriverError> {
        if !scenario.has_restart() {
            return Ok(Self::Memory);
        }
        crate::storage::Scratch::new()
            .map(Self::File)
            .map_err(|message| DriverError::Environment {
                file: source.to_string(),
                message,
            })
    }

    fn open(&self, source: &str) -> Result<Box<dyn EventLog>, DriverError> {
        match self {
            Self::Memory => Ok(Box::new(MemoryLog::new())),
            Self::File(scratch) => scratch
                .open_log()
                .map_err(|message| DriverError::Environment {
                    file: source.to_string(),
                    message,
                }),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::File(_) => "file",
        }
    }

    /// Fails the run when the durable log failed: such a step error is the
    /// machine's, not the runtime's.
    fn check(&self, source: &str) -> Result<(), DriverError> {
        match self {
            Self::File(scratch) => match scratch.failure() {
                Some(message) => Err(DriverError::Environment {
                    file: source.to_string(),
                    message,
                }),
                None => Ok(()),
            },
            Self::Memory => Ok(()),
        }
    }
}
