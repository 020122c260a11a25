//! `rehearse audit`: the lease, budget and work invariants over an event
//! log written anywhere (docs/SCENARIOS.md, "audit").

use std::path::PathBuf;

use clap::Args;

use crate::audit::{audit, load_bindings, AuditReport, Coverage};
use crate::exit::Exit;
use crate::explore::Invariant;
use crate::style::Style;

/// Check an event log (JSON Lines: rehearse's `events.jsonl` or the
/// upstream persona runtime's) against the lease, budget and work
/// invariants, streaming it. Exit 1 on a violation, 2 on input that cannot
/// be read.
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
}

pub fn run(args: &AuditArgs) -> Exit {
    let bindings = match args.bindings.as_deref().map(load_bindings).transpose() {
        Ok(bindings) => bindings,
        Err(message) => {
            eprintln!("{message}");
            return Exit::Usage;
        }
    };
    let report = match audit(&args.log, bindings.as_ref()) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Usage;
        }
    };
    print_report(&args.log.display().to_string(), &report);
    if report.violations > 0 {
        Exit::Mismatch
    } else {
        Exit::Pass
    }
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
        println!(
            "{log}:{}: {} {}: {}: {}{evidence}",
            finding.line,
            finding.event,
            finding.kind,
            style.red(finding.invariant.name()),
            finding.message
        );
    }
    if report.violations > report.findings.len() {
        println!(
            "... and {} more violations",
            report.violations - report.findings.len()
        );
    }
    let verdict = match report.violations {
        0 => style.green("no violation"),
        1 => style.red("1 violation"),
        n => style.red(&format!("{n} violations")),
    };
    println!("audit {log}: {} events, {verdict}", report.events);
    println!("checked: {}", names(&report.invariants(Coverage::Checked)));
    let skipped = report.invariants(Coverage::NeedsBindings);
    if !skipped.is_empty() {
        println!(
            "skipped, need --bindings (lease TTLs, budgets): {}",
            names(&skipped)
        );
    }
    if !report.unbound_personas.is_empty() {
        println!(
            "personas without bindings (lease TTL and budget not checked): {}",
            report.unbound_personas.join(", ")
        );
    }
    println!(
        "not checked from a log alone (need the runtime, see --to-scenario): {}",
        names(&report.invariants(Coverage::NeedsRuntime))
    );
}
