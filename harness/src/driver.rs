//! The driver: runs a parsed scenario's steps on the runtime with the
//! scenario clock, through the supervisor, checks the inline expectations,
//! and renders the outputs (`report.json`, `events.jsonl`, `capture.jsonl`,
//! `runs.jsonl`), into memory or as the run goes (`outputs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use rehearse_runtime::capture::{CaptureBundle, Session};
use rehearse_runtime::json_out;
use rehearse_runtime::log::StoredEvent;
use rehearse_runtime::op::Op;
use rehearse_runtime::run_record::RunRecord;
use rehearse_runtime::supervisor::{Decision, Handled};
use rehearse_runtime::{format_ms, Millis};
use serde::Serialize;
use serde_json::{json, Value};

use crate::expect::{self, check, check_error};
use crate::explore::{Checker, RuntimeHook};
use crate::outputs::{MemoryOutputs, OutputFile, Outputs};
use crate::protocol::QueryKind;
use crate::report::{
    DeferredReport, EventRange, Expectation, FinalState, Report, ReportHead, ReportWriter,
    StepReport, Summary, Unsettled, REPORT_VERSION,
};
use crate::scenario::{Expect, Scenario, Sequence, Step, MAX_RETRIES};

mod backend;
mod handoff;

pub use backend::{runtime_query, Answered, Backend, Local, RunAnswer, StepError, Storage};
pub use handoff::Streams;

/// Why a scenario could not be run at all (as opposed to running and
/// failing its expectations).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The runtime refused the scenario's configuration.
    #[error("{file}: {error}")]
    Runtime {
        file: String,
        error: rehearse_runtime::engine::RuntimeError,
    },
    #[error("{file}: supervisor.max_retries is {retries}, at most {MAX_RETRIES} is allowed")]
    TooManyRetries { file: String, retries: u64 },
    /// The machine failed the run (a full disk, an I/O error in the
    /// scratch log): never behaviour, never a golden.
    #[error("{file}: environment error: {error}")]
    Environment {
        file: String,
        error: crate::storage::EnvironmentError,
    },
    /// An implementation under test gave no usable answer (certify).
    #[error(transparent)]
    Implementation(#[from] crate::certify::Failure),
}

/// Everything a run produced, its output files as text: what `check`,
/// `bless` and the commands that show a run read. `run` writes the files
/// as the run goes instead (see [`run_streamed`]).
#[derive(Debug)]
pub struct RunOutput {
    pub report: Report,
    pub bundle: CaptureBundle,
    pub report_json: String,
    pub events_jsonl: String,
    pub capture_json: String,
    /// The run records, one a line (docs/FORMATS.md).
    pub runs_jsonl: String,
    pub stats: RunStats,
}

/// What a run leaves besides its output files.
#[derive(Debug)]
pub struct Finished {
    pub report: Report,
    pub bundle: CaptureBundle,
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
    /// The files of the golden set, by name, in [`OutputFile::ALL`] order.
    pub fn files(&self) -> [(&'static str, &str); 4] {
        [
            (OutputFile::Report.name(), &self.report_json),
            (OutputFile::Events.name(), &self.events_jsonl),
            (OutputFile::Capture.name(), &self.capture_json),
            (OutputFile::Runs.name(), &self.runs_jsonl),
        ]
    }

    /// Whether every expectation and every invariant held.
    pub fn passed(&self) -> bool {
        self.report.passed()
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
pub struct Unobserved;

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

/// Runs `scenario` with `options`, showing every step to `observer`, and
/// keeps its output files in memory.
pub fn run_observed(
    scenario: &Scenario,
    source: &str,
    options: RunOptions,
    observer: &mut dyn StepObserver,
) -> Result<RunOutput, DriverError> {
    let mut memory = MemoryOutputs::default();
    let Finished {
        report,
        bundle,
        stats,
    } = run_streamed(scenario, source, options, observer, &mut memory)?;
    let [report_json, events_jsonl, capture_json, runs_jsonl] = memory.into_texts();
    Ok(RunOutput {
        report,
        bundle,
        report_json,
        events_jsonl,
        capture_json,
        runs_jsonl,
        stats,
    })
}

/// Runs `scenario` with `options`, showing every step to `observer`, and
/// writes its output files to `outputs` as it goes: each external event's
/// log lines right after it and each step's report entry when the step
/// ends (all at the end for a scenario that cuts its log, whose earlier
/// steps then change), the rest at the end.
pub fn run_streamed(
    scenario: &Scenario,
    source: &str,
    options: RunOptions,
    observer: &mut dyn StepObserver,
    outputs: &mut dyn Outputs,
) -> Result<Finished, DriverError> {
    let started = Instant::now();
    let config = scenario.runtime_config();
    // Parsed scenarios are validated already; one built in code (by the
    // explorer, say) still may not ask for unbounded retries.
    if config.supervisor.max_retries > MAX_RETRIES {
        return Err(DriverError::TooManyRetries {
            file: source.to_string(),
            retries: config.supervisor.max_retries,
        });
    }
    let streams = outputs
        .streams()
        .map_err(|error| output_error(source, &error))?;
    let capture_streamed = streams.is_some();
    let mut local = open_local(scenario, &config, source, observer, streams)?;
    let backend_name = local.storage.name();
    if let Some(hook) = options.runtime_hook {
        hook(local.session.runtime_mut());
    }
    local.checker =
        (options.check_invariants && !tears_log(scenario)).then(|| Checker::new(&config));
    local.lines = scenario.steps.iter().map(|step| step.line).collect();
    // Settled run records go to `runs.jsonl` as the run goes unless an
    // expectation reads them all.
    local.drain_runs = !scenario
        .steps
        .iter()
        .any(|step| step.expect.as_ref().is_some_and(|e| !e.records.is_empty()));
    let mut streamer = Streamer::begin(scenario, source, backend_name, outputs)?;
    streamer.capture_streamed = capture_streamed;
    streamer.events_handed = local.hands_off();
    let (local, steps, summary, last_ms) = drive_with(scenario, local, &mut streamer)?;
    let (report, bundle) = finish(scenario, source, local, steps, summary, last_ms, streamer)?;
    let stats = RunStats {
        steps: report.summary.steps,
        events: report.summary.events,
        episodes: report.summary.episodes,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(Finished {
        report,
        bundle,
        stats,
    })
}

/// The reference runtime a run drives, writing through `streams` when the
/// outputs take them: over a log that keeps no history, the events, the
/// capture and the run records are written on a second thread; a run that
/// restarts (and reads its log back) keeps its history and streams only its
/// capture.
fn open_local<'o>(
    scenario: &Scenario,
    config: &rehearse_runtime::config::RuntimeConfig,
    source: &str,
    observer: &'o mut dyn StepObserver,
    streams: Option<Streams>,
) -> Result<Local<'o>, DriverError> {
    let name = &scenario.name;
    let observer = Some(observer);
    Ok(match (scenario.has_restart(), streams) {
        (true, Some(streams)) => {
            let storage = Storage::scratch(source)?;
            Local::streaming(name, config, source, storage, observer, streams.capture)?
        }
        (true, None) => Local::new(name, config, source, Storage::scratch(source)?, observer)?,
        (false, Some(streams)) => {
            Local::handing_off(name, config, source, Storage::Window, observer, streams)?
        }
        (false, None) => Local::new(name, config, source, Storage::Memory, observer)?,
    })
}

/// Sees a run as it goes: after each external event and after each step,
/// with the backend (whose log it may read from where it last read: the
/// driver releases the log only after showing it here) and the steps so far.
pub trait Progress {
    /// An external event was handled.
    fn event(&mut self, backend: &dyn Backend) -> Result<(), DriverError>;
    /// A step ended; `steps` holds it last.
    fn step(&mut self, backend: &dyn Backend, steps: &[StepReport]) -> Result<(), DriverError>;
    /// The backend settled `runs` (see [`Backend::settled_runs`]).
    fn runs(&mut self, runs: &[RunRecord]) -> Result<(), DriverError> {
        let _ = runs;
        Ok(())
    }
}

/// Progress nobody watches.
#[derive(Debug)]
struct Unwatched;

impl Progress for Unwatched {
    fn event(&mut self, _: &dyn Backend) -> Result<(), DriverError> {
        Ok(())
    }
    fn step(&mut self, _: &dyn Backend, _: &[StepReport]) -> Result<(), DriverError> {
        Ok(())
    }
}

/// Writes a run's events and report to its outputs as the run goes.
struct Streamer<'o> {
    outputs: &'o mut dyn Outputs,
    report: ReportWriter,
    source: String,
    /// Whether to write as the run goes: not when the scenario cuts its
    /// log, as that changes earlier steps' event ranges.
    streaming: bool,
    /// How many events and steps the outputs hold.
    events_written: usize,
    steps_written: usize,
    /// Whether the run writes the capture through its stream (see
    /// [`Outputs::streams`]) rather than the streamer at the end.
    capture_streamed: bool,
    /// Whether the backend writes the events and the settled run records
    /// through their streams itself ([`Local::handing_off`]).
    events_handed: bool,
}

impl<'o> Streamer<'o> {
    /// Writes the report's head.
    fn begin(
        scenario: &Scenario,
        source: &str,
        backend: &str,
        outputs: &'o mut dyn Outputs,
    ) -> Result<Self, DriverError> {
        let source_name = source.replace('\\', "/");
        let head = ReportHead {
            report_version: REPORT_VERSION,
            scenario: &scenario.name,
            description: scenario.description.as_deref(),
            source: &source_name,
            seed: scenario.seed,
            start: &format_ms(scenario.start_ms),
            backend,
        };
        let report = ReportWriter::begin(outputs.writer(OutputFile::Report), &head)
            .map_err(|error| output_error(source, &error))?;
        Ok(Self {
            outputs,
            report,
            source: source.to_string(),
            streaming: !tears_log(scenario),
            events_written: 0,
            steps_written: 0,
            capture_streamed: false,
            events_handed: false,
        })
    }

    /// Writes the events the outputs do not hold yet.
    fn write_events(&mut self, backend: &dyn Backend) -> Result<(), DriverError> {
        if self.events_handed {
            return Ok(());
        }
        let count = backend.event_count();
        let new = backend.events_from(self.events_written.min(count));
        write_events(self.outputs.writer(OutputFile::Events), new)
            .map_err(|error| output_error(&self.source, &error))?;
        self.events_written = count;
        Ok(())
    }

    /// Writes the events and steps the outputs do not hold yet.
    fn write_pending(
        &mut self,
        backend: &dyn Backend,
        steps: &[StepReport],
    ) -> Result<(), DriverError> {
        self.write_events(backend)?;
        let out = self.outputs.writer(OutputFile::Report);
        for step in &steps[self.steps_written..] {
            self.report
                .step(out, step)
                .map_err(|error| output_error(&self.source, &error))?;
        }
        self.steps_written = steps.len();
        Ok(())
    }

    /// Writes the rest: the report's end, the run records and the bundle.
    fn end(
        self,
        report: &mut Report,
        runs: &[RunRecord],
        bundle: &CaptureBundle,
    ) -> Result<(), DriverError> {
        let Self {
            outputs,
            report: writer,
            source,
            capture_streamed,
            ..
        } = self;
        writer
            .end(outputs.writer(OutputFile::Report), report)
            .and_then(|()| write_runs(outputs.writer(OutputFile::Runs), runs))
            .and_then(|()| match capture_streamed {
                true => Ok(()),
                false => outputs
                    .writer(OutputFile::Capture)
                    .write_all(&bundle.to_jsonl()),
            })
            .map_err(|error| output_error(&source, &error))
    }
}

impl Progress for Streamer<'_> {
    fn event(&mut self, backend: &dyn Backend) -> Result<(), DriverError> {
        if self.streaming {
            self.write_events(backend)?;
        }
        Ok(())
    }

    fn step(&mut self, backend: &dyn Backend, steps: &[StepReport]) -> Result<(), DriverError> {
        if self.streaming {
            self.write_pending(backend, steps)?;
        }
        Ok(())
    }

    fn runs(&mut self, runs: &[RunRecord]) -> Result<(), DriverError> {
        write_runs(self.outputs.writer(OutputFile::Runs), runs)
            .map_err(|error| output_error(&self.source, &error))
    }
}

/// A failed write of an output file: the machine's failure, never behaviour.
fn output_error(source: &str, error: &std::io::Error) -> DriverError {
    DriverError::Environment {
        file: source.to_string(),
        error: crate::storage::EnvironmentError::Output(error.to_string()),
    }
}

/// Runs every step of `scenario` on `backend`: the step reports, the
/// summary so far and the time of the last step.
pub fn drive<B: Backend>(
    scenario: &Scenario,
    backend: B,
) -> Result<(B, Vec<StepReport>, Summary, i64), DriverError> {
    drive_with(scenario, backend, &mut Unwatched)
}

/// [`drive`], showing the run to `progress` as it goes.
pub fn drive_with<B: Backend>(
    scenario: &Scenario,
    backend: B,
    progress: &mut dyn Progress,
) -> Result<(B, Vec<StepReport>, Summary, i64), DriverError> {
    let mut driving = Driving {
        scenario,
        backend,
        progress,
        summary: Summary {
            steps: scenario.steps.len(),
            ..Summary::default()
        },
        steps: Vec::with_capacity(scenario.steps.len()),
        keep_events: false,
    };
    let mut last_ms = scenario.start_ms;
    for (index, step) in scenario.steps.iter().enumerate() {
        let after_ms = last_ms;
        last_ms = step.end_ms();
        let report = driving.step(index, step, after_ms)?;
        driving.steps.push(report);
        driving.progress.step(&driving.backend, &driving.steps)?;
        driving.backend.release();
    }
    Ok((driving.backend, driving.steps, driving.summary, last_ms))
}

/// Ends a finished in-process run: its report, and the rest of its outputs
/// written through `streamer`.
fn finish(
    scenario: &Scenario,
    source: &str,
    mut local: Local<'_>,
    steps: Vec<StepReport>,
    mut summary: Summary,
    last_ms: i64,
    mut streamer: Streamer<'_>,
) -> Result<(Report, CaptureBundle), DriverError> {
    streamer.write_pending(&local, &steps)?;
    let runs = local.run_records();
    local
        .finish_handoff()
        .map_err(|error| output_error(source, &error))?;
    let Local {
        session,
        storage,
        violations,
        ..
    } = local;
    let runtime = session.runtime();
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
    summary.events = runtime.log().len() as usize;
    let mut report = Report {
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
        final_state: final_state(runtime, last_ms),
        summary,
    };
    let bundle = end_capture(session, streamer.capture_streamed, streamer.events_handed)
        .map_err(|error| output_error(source, &error))?;
    drop(storage);
    streamer.end(&mut report, &runs, &bundle)?;
    Ok((report, bundle))
}

/// Ends the run's capture: the bundle it recorded, or, for a capture
/// written as the run went (`streamed`), its header fields once the seal
/// is written and the stream flushed (by the session, or by the writer the
/// run `handed_off` to, finished already: `Local::finish_handoff`).
fn end_capture(
    session: Session,
    streamed: bool,
    handed_off: bool,
) -> std::io::Result<CaptureBundle> {
    if !streamed {
        return Ok(session.finish().0);
    }
    let header = session.bundle().clone();
    if !handed_off {
        session.finish_stream().0.map(drop)?;
    }
    Ok(header)
}

/// The state of `runtime` after the last step, at `last_ms`. Its statuses
/// leave `value_receipts` empty, as the report writes them.
fn final_state(runtime: &rehearse_runtime::engine::Runtime, last_ms: i64) -> FinalState {
    let personas = runtime
        .personas()
        .iter()
        .map(|(name, persona)| (name.clone(), persona.status_without_receipts(last_ms)))
        .collect();
    let unsettled = runtime.unsettled(last_ms);
    FinalState {
        at: format_ms(last_ms),
        personas,
        processes: runtime.processes().snapshot(),
        pipeline: runtime.pipeline().snapshot(),
        unsettled: Unsettled {
            counts: unsettled.counts(),
            summary: unsettled.summary(),
        },
    }
}

/// A run in progress: the backend and everything collected so far.
struct Driving<'a, B> {
    scenario: &'a Scenario,
    backend: B,
    progress: &'a mut dyn Progress,
    summary: Summary,
    steps: Vec<StepReport>,
    /// Whether the step being run keeps its events in the log for its
    /// expectations rather than releasing them after each external event.
    keep_events: bool,
}

impl<B: Backend> Driving<'_, B> {
    /// Runs one step (its operation, or each event of an `advance` or
    /// `repeat`) and checks its expectations. `after_ms` is when the step
    /// before it ended.
    fn step(
        &mut self,
        index: usize,
        step: &Step,
        after_ms: i64,
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
        let mut run_receipt = RunAnswer::None;
        let first = self.backend.event_count();
        let reads_events = step
            .expect
            .as_ref()
            .is_some_and(|expect| expect.events.is_some() || expect.events_include.is_some());
        // The step's events stay in the log until its expectations read them.
        self.keep_events = reads_events;
        if let Some(op) = &step.op {
            run_receipt = self.single(index, step.at_ms, op, &mut report)?;
        }
        if let Some(sequence) = &step.sequence {
            run_receipt = self.sequence(index, step, sequence, after_ms, &mut report)?;
        }
        if let Some(expect) = &step.expect {
            let end = self.backend.event_count();
            let events: Vec<Value> = if reads_events {
                self.backend
                    .events_from(first.min(end))
                    .iter()
                    .map(event_value)
                    .collect()
            } else {
                Vec::new()
            };
            let run = run_receipt.into_value();
            let observed = Observed {
                step: &report,
                run: &run,
                events: &events,
            };
            report.expectations = evaluate(
                expect,
                &observed,
                &mut self.backend,
                self.scenario.start_ms,
                step.end_ms(),
            )?;
            self.summary.expectations += report.expectations.len();
            self.summary.failed_expectations +=
                report.expectations.iter().filter(|e| !e.ok).count();
        }
        Ok(report)
    }

    /// Runs a step's one operation, `step-N`; its run receipt.
    fn single(
        &mut self,
        index: usize,
        at_ms: i64,
        op: &Op,
        report: &mut StepReport,
    ) -> Result<RunAnswer, DriverError> {
        let event_id = format!("step-{}", index + 1);
        let handled = self.handle(index, &event_id, at_ms, op)?;
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
            Err(error) => {
                self.summary.step_errors += 1;
                report.receipt = Some("error".to_string());
                report.error = Some(error.to_string());
            }
        }
        report.decision = handled.decision;
        Ok(handled.run)
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
        report: &mut StepReport,
    ) -> Result<RunAnswer, DriverError> {
        let first = self.backend.event_count();
        let events = match sequence.expand(&self.scenario.personas, after_ms, step.at_ms) {
            Ok(events) => events,
            Err(error) => {
                self.summary.step_errors += 1;
                report.receipt = Some("error".to_string());
                report.error = Some(error.to_string());
                return Ok(RunAnswer::None);
            }
        };
        let mut run_receipt = RunAnswer::None;
        let mut failed = None;
        for (k, (at_ms, op)) in events.enumerate() {
            let event_id = format!("step-{}.{}", index + 1, k + 1);
            let handled = self.handle(index, &event_id, at_ms, &op)?;
            if !handled.run.is_none() {
                run_receipt = handled.run;
            }
            match handled.result {
                Ok(result) => report.receipts.push(result.receipt),
                Err(error) => {
                    report.receipts.push("error".to_string());
                    failed.get_or_insert(error);
                }
            }
            report.event_id = Some(event_id);
            report.decision = handled.decision;
        }
        let end = self.backend.event_count();
        report.events = Some(EventRange {
            first: first.min(end),
            count: end.saturating_sub(first),
        });
        if let Some(error) = failed {
            self.summary.step_errors += 1;
            report.receipt = Some("error".to_string());
            report.error = Some(error.to_string());
        } else {
            report.receipt = Some("ok".to_string());
        }
        Ok(run_receipt)
    }

    /// Hands one external event to the backend and keeps the earlier
    /// steps' event ranges true.
    fn handle(
        &mut self,
        index: usize,
        event_id: &str,
        at_ms: i64,
        op: &Op,
    ) -> Result<Answered, DriverError> {
        let handled = self.backend.handle(index, event_id, at_ms, op)?;
        self.progress.event(&self.backend)?;
        let settled = self.backend.settled_runs();
        if !settled.is_empty() {
            self.progress.runs(&settled)?;
        }
        if !self.keep_events {
            self.backend.release();
        }
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
        let episode = handled
            .decision
            .as_ref()
            .is_some_and(|d| d.episode_id.is_some());
        self.summary.episodes += usize::from(episode && !matches!(op, Op::Pump(_)));
        Ok(handled)
    }
}

/// What one step produced, for its expectations.
struct Observed<'a> {
    step: &'a StepReport,
    /// The step's run receipt as JSON, `null` when it has none.
    run: &'a Value,
    /// The log events the step appended, as `events.jsonl` lines.
    events: &'a [Value],
}

fn evaluate<B: Backend>(
    expect: &Expect,
    observed: &Observed<'_>,
    backend: &mut B,
    start_ms: i64,
    now_ms: i64,
) -> Result<Vec<Expectation>, DriverError> {
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
    evaluate_decision(expect, step.decision.as_ref(), start_ms, &mut out);
    evaluate_added(expect, observed, backend, &mut out)?;
    if !expect.unsettled.is_empty() {
        let counts = backend.query(QueryKind::Unsettled, None, now_ms)?;
        for (name, expected) in &expect.unsettled {
            let actual = counts.get(name).cloned().unwrap_or(Value::Null);
            check(
                &mut out,
                format!("unsettled.{name}"),
                json!(expected),
                actual,
            );
        }
    }
    if let Some(persona) = &expect.persona {
        let status = backend.query(QueryKind::Status, Some(persona), now_ms)?;
        for (path, expected) in &expect.status {
            check(
                &mut out,
                format!("status.{path}"),
                expected.clone(),
                expect::lookup(&status, path),
            );
        }
    }
    Ok(out)
}

/// The expectation keys that read the step's decision.
fn evaluate_decision(
    expect: &Expect,
    decision: Option<&Decision>,
    start_ms: i64,
    out: &mut Vec<Expectation>,
) {
    if let Some(kind) = &expect.decision {
        check(
            out,
            "decision",
            json!(kind),
            json!(decision.map(|d| d.decision.as_str())),
        );
    }
    if let Some(at_ms) = expect.schedule_at_ms(start_ms) {
        check(
            out,
            "schedule_at",
            json!(format_ms(at_ms)),
            json!(decision.and_then(|d| d.schedule_at_ms).map(format_ms)),
        );
    }
    if let Some(count) = expect.retry_count {
        check(
            out,
            "retry_count",
            json!(count),
            json!(decision.map(|d| d.retry_count)),
        );
    }
    if let Some(termination) = &expect.termination {
        check(
            out,
            "termination",
            json!(termination.to_string()),
            json!(decision.and_then(|d| d.termination)),
        );
    }
    if let Some(id) = expect.episode_id {
        check(
            out,
            "episode_id",
            json!(id),
            json!(decision.and_then(|d| d.episode_id)),
        );
    }
    if let Some(deadline) = expect.deadline {
        check(
            out,
            "deadline",
            json!(deadline.map(|deadline| deadline.to_string())),
            json!(decision
                .and_then(|d| d.deadline_ms)
                .map(|ms| Millis(ms).to_string())),
        );
    }
}

/// The expectation keys that read the step's events, run receipt and
/// receipts, and the run records, process records and pipeline state.
fn evaluate_added<B: Backend>(
    expect: &Expect,
    observed: &Observed<'_>,
    backend: &mut B,
    out: &mut Vec<Expectation>,
) -> Result<(), DriverError> {
    if let Some(items) = &expect.events {
        expect::check_events(out, items, observed.events);
    }
    if let Some(items) = &expect.events_include {
        expect::check_events_include(out, items, observed.events);
    }
    expect::check_paths(out, "run", &expect.run, observed.run);
    if let Some(counts) = &expect.receipt_counts {
        expect::check_receipt_counts(out, counts, &observed.step.receipts);
    }
    if !expect.records.is_empty() {
        let records = backend.query(QueryKind::Records, None, 0)?;
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
        let snapshot = backend.query(QueryKind::Processes, None, 0)?;
        let record = snapshot.get(&process.id).cloned().unwrap_or(Value::Null);
        if record.is_null() {
            check(out, "process.id", json!(process.id), Value::Null);
        }
        let prefix = format!("process.{}", process.id);
        expect::check_paths(out, &prefix, &process.paths, &record);
    }
    if !expect.pipeline.is_empty() {
        let snapshot = backend.query(QueryKind::Pipeline, None, 0)?;
        expect::check_paths(out, "pipeline", &expect.pipeline, &snapshot);
    }
    Ok(())
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
    let mut out = Vec::with_capacity(events.len() * 256);
    write_events(&mut out, events).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Writes `events` as lines of `events.jsonl`: the bytes serialising each
/// one's [`EventLine`] writes, with the payload's canonical text spliced in
/// as the event keeps it rather than parsed and written again, and each
/// distinct time formatted once.
pub fn write_events(out: &mut dyn Write, events: &[StoredEvent]) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    let mut time: Option<(i64, String)> = None;
    for event in events {
        let at_ms = event.occurred_at_ms;
        let occurred_at = match &mut time {
            Some((ms, text)) if *ms == at_ms => text,
            slot => &slot.insert((at_ms, format_ms(at_ms))).1,
        };
        line.clear();
        write_event_line(&mut line, event, occurred_at);
        out.write_all(&line)?;
    }
    Ok(())
}

/// Appends `event`'s line of `events.jsonl`, newline included, its time
/// given as `occurred_at`: the fields in [`EventLine`]'s order, written as
/// `serde_json` writes them (`json_out`), and the payload's canonical text, which is
/// what `serde_json` writes for its value (`canonical`'s tests).
fn write_event_line(line: &mut Vec<u8>, event: &StoredEvent, occurred_at: &str) {
    line.extend_from_slice(b"{\"topic\":");
    json_out::string(line, event.topic.as_str());
    line.extend_from_slice(b",\"id\":");
    json_out::scalar(line, &event.id);
    line.extend_from_slice(b",\"kind\":");
    json_out::string(line, &event.kind);
    line.extend_from_slice(b",\"occurred_at\":");
    json_out::string(line, occurred_at);
    line.extend_from_slice(b",\"headers\":");
    json_out::string_map(line, &event.headers);
    line.extend_from_slice(b",\"payload\":");
    line.extend_from_slice(event.payload.json().as_bytes());
    line.extend_from_slice(b"}\n");
}

/// Writes the run records as lines of `runs.jsonl`.
/// Each line is serialised into memory and written whole: serialising
/// straight into `out` would hand it every token through dynamic dispatch.
pub(crate) fn write_runs(out: &mut dyn Write, runs: &[RunRecord]) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(1024);
    for record in runs {
        line.clear();
        serde_json::to_writer(&mut line, record)?;
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

/// Pretty JSON with a trailing newline: the golden files' form.
pub fn pretty<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("an output serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_runtime::log::{LogEvent, Topic};

    /// A spliced line is byte for byte the line serialising the event's
    /// fields (its payload as a JSON value) writes, for text that needs
    /// escaping, numbers of every kind and times that change between events.
    #[test]
    fn an_events_line_is_what_serialising_its_fields_writes() {
        let payload = json!({
            "z": [1.5, -0.0, 1e300, 0.1, 12345678901234567890u64, -9007199254740993i64],
            "a \"quoted\"\\": {"\u{1}\u{1f}\u{7f}é\u{2028}😀": null, "b": [true, false, {}]},
            "s": "tab\tnewline\n</script>",
        });
        let headers = BTreeMap::from([
            ("persona".to_string(), "p \"1\"\u{0}".to_string()),
            ("a".to_string(), "ü".to_string()),
        ]);
        let event = |id: u64, at_ms: i64| {
            StoredEvent::new(
                Topic::new("persona.runtime.events").unwrap(),
                id,
                LogEvent {
                    kind: "kind \"x\"".into(),
                    payload: payload.clone().into(),
                    headers: headers.clone().into(),
                    occurred_at_ms: at_ms,
                },
            )
        };
        let events = [
            event(1, 0),
            event(2, 0),
            event(3, 1_767_225_600_001),
            event(u64::MAX, -5),
        ];
        let mut expected = Vec::new();
        for event in &events {
            serde_json::to_writer(&mut expected, &EventLine::of(event)).unwrap();
            expected.push(b'\n');
        }
        assert_eq!(render_events(&events), String::from_utf8(expected).unwrap());
    }
}
