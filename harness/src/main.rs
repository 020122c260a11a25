//! The `rehearse` command line: parse the arguments, run the subcommand,
//! exit with its code.

use std::process::ExitCode;

use clap::Parser;
use rehearse::cli::{
    audit, bless, check, explain, explore, lint, new, replay, review, run, schema, Cli, Command,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match &cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Bless(args) => bless::run(args),
        Command::Review(args) => review::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Lint(args) => lint::run(args),
        Command::New(args) => new::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Audit(args) => audit::run(args),
    };
    exit.into()
}
