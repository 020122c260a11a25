//! The `rehearse` command line: parse the arguments, run the subcommand,
//! and in this one place print a command's error and map its outcome to an
//! exit code (0 pass, 1 behaviour mismatch, 2 usage or input error).
//! Errors go to standard error without panicking when it is closed, so
//! the exit code is the command's own whatever happens to its streams.

use std::process::ExitCode;

use clap::Parser;
use rehearse::cli::{
    audit, bless, certify, check, explain, explore, lint, new, replay, review, run, schema, serve,
    Cli, CliError, Command,
};
use rehearse::exit::Exit;
use rehearse::style::Style;

/// mimalloc rather than glibc's allocator: replay frees on one thread what
/// it parsed on another, and every episode allocates and drops its events.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match dispatch(&cli.command) {
        Ok(exit) => exit,
        Err(error) => {
            rehearse::out::stderr_line(&error.render(Style::stderr()));
            error.exit()
        }
    };
    exit.into()
}

/// Runs one subcommand to its outcome.
fn dispatch(command: &Command) -> Result<Exit, CliError> {
    match command {
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
        Command::Serve(args) => serve::run(args),
        Command::Certify(args) => certify::run(args),
    }
}
