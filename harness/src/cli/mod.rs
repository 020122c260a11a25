//! The `rehearse` command line: one subcommand per file.

use clap::{Parser, Subcommand};

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

/// Why a command could not do its work: each maps to exit code 2 in
/// `main`, the one place that prints it.
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
    New(#[from] crate::starter::NewError),
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    #[error("{0}")]
    Input(String),
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
