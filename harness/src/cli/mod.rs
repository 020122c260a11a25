//! The `rehearse` command line: one subcommand per file.

use clap::{Parser, Subcommand};

use crate::exit::Exit;
use crate::style::Style;
use crate::suite::SuiteConfig;

pub mod audit;
pub mod bless;
pub mod certify;
pub mod check;
pub mod explain;
pub mod explore;
pub mod lint;
pub mod new;
pub mod replay;
pub mod review;
pub mod run;
pub mod schema;
pub mod serve;

/// Why a command could not do its work, or what it could not do while it
/// went on with the rest. `main` is the one place that prints it (see
/// [`CliError::render`]) and maps it to an exit code ([`CliError::exit`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Root(#[from] crate::root::RootError),
    #[error(transparent)]
    Suite(#[from] crate::suite::SuiteError),
    #[error(transparent)]
    Junit(#[from] crate::junit::JunitError),
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error(transparent)]
    Driver(#[from] crate::driver::DriverError),
    #[error(transparent)]
    New(#[from] crate::starter::NewError),
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    #[error(transparent)]
    Explain(#[from] explain::ExplainError),
    #[error(transparent)]
    Bless(#[from] bless::BlessError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error(transparent)]
    Replay(#[from] replay::ReplayFailure),
    #[error(transparent)]
    Review(#[from] review::ReviewError),
    #[error(transparent)]
    Certify(#[from] certify::CertifyError),
    #[error(transparent)]
    Explore(#[from] explore::ExploreError),
    #[error("failed to write the timeline pages to `{}`: {source}", .dir.display())]
    Pages {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The errors of a command that went on past them (a file of `run`,
    /// a scenario of `bless`), in the order they happened.
    #[error("{}", lines(.0))]
    Several(Vec<CliError>),
}

impl CliError {
    /// The exit code this error ends the command with: a capture bundle
    /// that does not reproduce is a behaviour mismatch (1), everything else
    /// an input error (2).
    pub fn exit(&self) -> Exit {
        match self {
            Self::Replay(failure) => failure.exit(),
            Self::Several(errors) => errors.iter().map(Self::exit).fold(Exit::Pass, Exit::worst),
            _ => Exit::Usage,
        }
    }

    /// The text `main` prints on standard error, coloured by `style`.
    pub fn render(&self, style: Style) -> String {
        match self {
            Self::Replay(failure) => failure.render(style),
            Self::Several(errors) => errors
                .iter()
                .map(|error| error.render(style))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => self.to_string(),
        }
    }

    /// `errors` as one error: none is `Ok`, one is itself.
    pub fn from_several(mut errors: Vec<CliError>) -> Result<(), CliError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Self::Several(errors)),
        }
    }
}

fn lines(errors: &[CliError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

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
    Serve(serve::ServeArgs),
    Certify(certify::CertifyArgs),
}

/// The scenario library a command works on. Opening it makes the project
/// root the current directory and names every path relative to it, so
/// however a path was spelled, a scenario has one name, one golden
/// directory and one `source`.
#[derive(Clone, Debug)]
pub struct Library {
    pub project: crate::root::Project,
    /// The paths to run, relative to the root (the scenarios directory when
    /// none were given).
    pub paths: Vec<std::path::PathBuf>,
    /// The scenarios directory, relative to the root.
    pub scenarios: std::path::PathBuf,
    /// The goldens directory, relative to the root.
    pub snapshots: std::path::PathBuf,
    /// Whether the paths cover the whole scenarios directory.
    pub whole: bool,
}

impl Library {
    /// Finds the project root, resolves `paths`, `--scenarios` and
    /// `--snapshots` against it, refuses paths outside it, and enters it.
    pub fn open(
        paths: &[std::path::PathBuf],
        scenarios: Option<&std::path::Path>,
        snapshots: Option<&std::path::Path>,
    ) -> Result<Self, crate::root::RootError> {
        use crate::root::{Project, SCENARIOS_DIR, SNAPSHOTS_DIR};
        let project = Project::discover()?;
        let under_root = |given: Option<&std::path::Path>, default: &str| match given {
            Some(path) => project.relative(path),
            None => Ok(std::path::PathBuf::from(default)),
        };
        let scenarios = under_root(scenarios, SCENARIOS_DIR)?;
        let snapshots = under_root(snapshots, SNAPSHOTS_DIR)?;
        let paths = paths
            .iter()
            .map(|path| project.existing(path))
            .collect::<Result<Vec<_>, _>>()?;
        let whole = paths.is_empty() || paths.iter().all(|p| *p == scenarios);
        let paths = if paths.is_empty() {
            vec![scenarios.clone()]
        } else {
            paths
        };
        std::env::set_current_dir(&project.root).map_err(crate::root::RootError::CurrentDir)?;
        Ok(Self {
            project,
            paths,
            scenarios,
            snapshots,
            whole,
        })
    }

    /// The suite over this library.
    pub fn suite(&self, jobs: usize, partition: Option<crate::suite::Partition>) -> SuiteConfig {
        SuiteConfig {
            paths: self.paths.clone(),
            scenarios_root: self.scenarios.clone(),
            snapshots_root: self.snapshots.clone(),
            jobs,
            partition,
            find_orphans: self.whole && partition.is_none(),
        }
    }
}

/// The number of cores, or 1.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
