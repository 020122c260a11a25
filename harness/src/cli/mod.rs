//! The `rehearse` command line: one subcommand per file.

use clap::{Parser, Subcommand};

pub mod audit;
pub mod bless;
pub mod check;
pub mod explain;
pub mod explore;
pub mod lint;
pub mod new;
pub mod replay;
pub mod review;
pub mod run;
pub mod schema;

/// Replay and conformance test harness for the rehearse reference runtime.
///
/// Exit codes: 0 pass, 1 behaviour mismatch, 2 usage or input error.
#[derive(Debug, Parser)]
#[command(name = "rehearse", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, one per file under `cli/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunArgs),
    Check(check::CheckArgs),
    Explain(explain::ExplainArgs),
    Bless(bless::BlessArgs),
    Review(review::ReviewArgs),
    Replay(replay::ReplayArgs),
    Explore(explore::ExploreArgs),
    Lint(lint::LintArgs),
    New(new::NewArgs),
    Schema(schema::SchemaArgs),
    Audit(audit::AuditArgs),
}
