//! The `rehearse` command line: parse the arguments, run the subcommand,
//! and in this one place print a command's error and map its outcome to an
//! exit code (0 pass, 1 behaviour mismatch, 2 usage or input error).

use std::process::ExitCode;

use clap::Parser;
use rehearse::cli::{
    audit, bless, certify, check, explain, explore, lint, new, replay, review, run, schema, serve,
    Cli, CliError, Command,
};
use rehearse::exit::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome: Result<Exit, CliError> = match &cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Explain(args) => Ok(explain::run(args)),
        Command::Bless(args) => Ok(bless::run(args)),
        Command::Review(args) => review::run(args),
        Command::Replay(args) => Ok(replay::run(args)),
        Command::Explore(args) => explore::run(args),
        Command::Lint(args) => lint::run(args),
        Command::New(args) => new::run(args),
        Command::Schema(args) => Ok(schema::run(args)),
        Command::Audit(args) => Ok(audit::run(args)),
        Command::Serve(args) => serve::run(args),
        Command::Certify(args) => certify::run(args),
    };
    let exit = match outcome {
        Ok(exit) => exit,
        Err(error) => {
            eprintln!("{error}");
            Exit::Usage
        }
    };
    exit.into()
}
