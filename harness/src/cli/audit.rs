//! `rehearse audit`: the lease, budget and work invariants over an event
//! log written anywhere, and the log rebuilt as a scenario, compared with
//! the reference and shrunk (docs/SCENARIOS.md, "audit").

use std::path::{Path, PathBuf};

use clap::Args;

use crate::audit::{
    audit, divergence_target, first_divergence, load_bindings, rebuild, reference_events,
    round_trip, run_reference, scenario_name, to_scenario, AuditError, AuditReport, Bindings,
    Coverage, Divergence, LogReader, Shrink, Shrunk, Target, Trace,
};
use crate::cli::CliError;
use crate::exit::Exit;
use crate::explore::Invariant;
use crate::scenario::Expect;
use crate::style::Style;

/// Check an event log (JSON Lines: rehearse's `events.jsonl` or the
/// upstream persona runtime's) against the lease, budget and work
/// invariants, streaming it. Exit 1 on a violation (or, with
/// `--to-scenario`, a difference from the reference), 2 on input that
/// cannot be read.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The event log.
    #[arg(value_name = "LOG")]
    pub log: PathBuf,
    /// Persona bindings (lease TTLs, budgets): a scenario file or a
    /// bindings file (`version: 1` and `personas`). Without them the
    /// invariants that need them are skipped.
    #[arg(long, value_name = "FILE")]
    pub bindings: Option<PathBuf>,
    /// Rebuild the operations behind the log as a scenario, write it to
    /// FILE, run it on the reference runtime and report the first event
    /// where the log and the reference differ.
    #[arg(long, value_name = "FILE.yaml")]
    pub to_scenario: Option<PathBuf>,
    /// With `--to-scenario`: when the log breaks an invariant or differs
    /// from the reference, shrink the rebuilt scenario to the smallest that
    /// still fails the same way and write that instead, with an `expect`
    /// on the failing step.
    #[arg(long, requires = "to_scenario")]
    pub shrink: bool,
}

pub fn run(args: &AuditArgs) -> Result<Exit, CliError> {
    let bindings = args
        .bindings
        .as_deref()
        .map(load_bindings)
        .transpose()
        .map_err(AuditError::from)?;
    let report = audit(&args.log, bindings.as_ref()).map_err(AuditError::from)?;
    print_report(&args.log.display().to_string(), &report);
    let exit = if report.violations > 0 {
        Exit::Mismatch
    } else {
        Exit::Pass
    };
    let Some(file) = &args.to_scenario else {
        return Ok(exit);
    };
    let rebuilt = Rebuild {
        log: &args.log,
        file,
        bindings: bindings.as_ref(),
        name: scenario_name(&args.log),
    };
    let diverged = rebuilt.run(&report, args.shrink)?;
    Ok(exit.worst(if diverged { Exit::Mismatch } else { Exit::Pass }))
}

fn names(invariants: &[Invariant]) -> String {
    invariants
        .iter()
        .map(|i| i.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_report(log: &str, report: &AuditReport) {
    let style = Style::stdout();
    for finding in &report.findings {
        let evidence = if finding.evidence.is_empty() {
            String::new()
        } else {
            format!(" (events {})", finding.evidence.join(", "))
        };
        crate::outln!(
            "{log}:{}: {} {}: {}: {}{evidence}",
            finding.line,
            finding.event,
            finding.kind,
            style.red(finding.invariant.name()),
            finding.message
        );
    }
    if report.violations > report.findings.len() {
        crate::outln!(
            "... and {} more violations",
            report.violations - report.findings.len()
        );
    }
    let verdict = match report.violations {
        0 => style.green("no violation"),
        1 => style.red("1 violation"),
        n => style.red(&format!("{n} violations")),
    };
    crate::outln!("audit {log}: {} events, {verdict}", report.events);
    crate::outln!("checked: {}", names(&report.invariants(Coverage::Checked)));
    let skipped = report.invariants(Coverage::NeedsBindings);
    if !skipped.is_empty() {
        crate::outln!(
            "skipped, need --bindings (lease TTLs, budgets): {}",
            names(&skipped)
        );
    }
    if !report.unbound_personas.is_empty() {
        crate::outln!(
            "personas without bindings (lease TTL and budget not checked): {}",
            report.unbound_personas.join(", ")
        );
    }
    crate::outln!(
        "not checked from a log alone (need the runtime, see --to-scenario): {}",
        names(&report.invariants(Coverage::NeedsRuntime))
    );
}

/// `--to-scenario` (and `--shrink`) for one log.
struct Rebuild<'a> {
    log: &'a Path,
    file: &'a Path,
    bindings: Option<&'a Bindings>,
    name: String,
}

impl Rebuild<'_> {
    /// Rebuilds, compares, shrinks when asked and saves; whether the log
    /// differs from the reference.
    fn run(&self, report: &AuditReport, shrink: bool) -> Result<bool, AuditError> {
        let mut reader = LogReader::open(self.log)?;
        let trace = rebuild(&mut reader, self.bindings, shrink)?;
        let frame = self.bindings.and_then(|b| b.scenario.as_ref());
        let description = format!(
            "Rebuilt by `rehearse audit --to-scenario` from `{}` ({} operations).",
            self.log.display(),
            trace.steps.len()
        );
        let scenario = to_scenario(&trace, &self.name, frame, Some(description), None);
        let display = self.file.display().to_string();
        let (yaml, scenario) = round_trip(&scenario, &display)?;
        let output = run_reference(&scenario, &display)?;
        let reference = reference_events(&output);
        let mut log = LogReader::open(self.log)?;
        let divergence = first_divergence(
            std::iter::from_fn(|| log.next_event().transpose()),
            reference.into_iter(),
        )?;
        self.print_rebuild(
            &trace,
            output.report.invariant_violations.len(),
            divergence.as_ref(),
        );
        let target = match (report.findings.first(), &divergence) {
            (Some(finding), _) => Some(Target::Violation(finding.invariant)),
            (None, Some(divergence)) => Some(divergence_target(divergence)),
            (None, None) => None,
        };
        let yaml = match target.filter(|_| shrink) {
            Some(target) => self.shrunk_yaml(trace, target, &display)?.unwrap_or(yaml),
            None => yaml,
        };
        crate::atomic::write(self.file, yaml.as_bytes()).map_err(|source| AuditError::Write {
            file: display.clone(),
            source,
        })?;
        crate::outln!("saved {display}");
        Ok(divergence.is_some())
    }

    fn print_rebuild(
        &self,
        trace: &Trace,
        reference_violations: usize,
        divergence: Option<&Divergence>,
    ) {
        let style = Style::stdout();
        let skipped: Vec<String> = trace
            .not_rebuilt
            .iter()
            .map(|(topic, count)| format!("{topic}: {count}"))
            .collect();
        crate::outln!(
            "rebuilt {} operations of {} personas{}",
            trace.steps.len(),
            trace.personas.len(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; events not rebuilt: {}", skipped.join(", "))
            }
        );
        if reference_violations > 0 {
            crate::outln!(
                "{}",
                style.red("the reference run of the rebuilt scenario broke an invariant (see `rehearse run`)")
            );
        }
        match divergence {
            Some(divergence) => crate::outln!(
                "{}: {divergence}",
                style.red("the log and the reference differ at")
            ),
            None => crate::outln!(
                "{}",
                style.green("the reference runtime writes the same persona events")
            ),
        }
    }

    /// The shrunk scenario as YAML, or `None` (said why) when the rebuilt
    /// operations do not fail the way the log does.
    fn shrunk_yaml(
        &self,
        trace: Trace,
        target: Target,
        display: &str,
    ) -> Result<Option<String>, AuditError> {
        let frame = self.bindings.and_then(|b| b.scenario.as_ref());
        let shrinker = Shrink {
            target,
            bindings: self.bindings,
            frame,
            name: &self.name,
        };
        let Some(failure) = shrinker.fails(&trace) else {
            crate::outln!(
                "not shrunk: the rebuilt operations' events do not fail the same way ({:?}); the whole rebuilt scenario is saved",
                shrinker.target
            );
            return Ok(None);
        };
        let mut shrunk = shrinker.run(trace, failure);
        // Personas no step names are not part of the failure.
        let named: Vec<String> = shrunk
            .trace
            .steps
            .iter()
            .filter_map(|step| step.op.persona().map(str::to_string))
            .collect();
        shrunk.trace.personas.retain(|name, _| named.contains(name));
        let (yaml, step, receipt) = self.expect_scenario(&shrunk, display)?;
        crate::outln!(
            "shrunk from {} to {} operations ({} tries): {}; step {step} expects the reference's receipt `{receipt}`",
            shrunk.original_steps,
            shrunk.trace.steps.len(),
            shrunk.iterations,
            shrunk.failure.message
        );
        Ok(Some(yaml))
    }

    /// The shrunk trace as a scenario with the reference's receipt expected
    /// on the failing step, checked to pass on the reference.
    fn expect_scenario(
        &self,
        shrunk: &Shrunk,
        display: &str,
    ) -> Result<(String, usize, String), AuditError> {
        let frame = self.bindings.and_then(|b| b.scenario.as_ref());
        let plain = to_scenario(&shrunk.trace, &self.name, frame, None, None);
        let output = run_reference(&plain, display)?;
        let index = shrunk.failure.step;
        let step = &output.report.steps[index];
        let receipt = step.receipt.clone().unwrap_or_default();
        let expect = Expect {
            receipt: Some(receipt.clone()),
            receipts: (!step.receipts.is_empty()).then(|| step.receipts.clone()),
            ..Expect::default()
        };
        let description = format!(
            "Shrunk by `rehearse audit --shrink` from `{}` ({} operations to {}): {}. Step {} expects what the reference runtime does there.",
            self.log.display(),
            shrunk.original_steps,
            shrunk.trace.steps.len(),
            shrunk.failure.message,
            index + 1
        );
        let scenario = to_scenario(
            &shrunk.trace,
            &self.name,
            frame,
            Some(description),
            Some((index, expect)),
        );
        let (yaml, parsed) = round_trip(&scenario, display)?;
        let check = run_reference(&parsed, display)?;
        if !check.passed() {
            return Err(AuditError::ShrunkFails {
                file: display.to_string(),
            });
        }
        Ok((yaml, index + 1, receipt))
    }
}
