//! `rehearse certify --impl 'CMD' [PATH..]`: the scenario library against
//! another implementation over the certification protocol, with a verdict
//! per scenario and the manifest's ratchet (docs/PROTOCOL.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::certify::{self, Certified, Manifest, Target, Verdict, CERTIFY_REPORT_VERSION};
use crate::check::{self, CheckOptions, NameFilter};
use crate::cli::check::{absolute, parse_jobs};
use crate::cli::{default_jobs, CliError, Library};
use crate::exit::Exit;
use crate::suite;
use crate::{out, outln};

mod render;

/// Certify another implementation of the runtime against the scenario
/// library.
///
/// Starts `--impl` once per scenario, drives it over the certification
/// protocol (JSON Lines on its standard input and output, docs/PROTOCOL.md),
/// runs the same scenario on the reference runtime, and compares events,
/// receipts, decisions and statuses. Each scenario is pass, unsupported,
/// expected-failure, unexpected-pass, fail or broken. Exits 0 when nothing
/// fails the run, 1 on a new failure, a broken answer or an unexpected
/// pass, 2 on bad input. `invalid/` scenarios (which never parse) are left
/// out.
#[derive(Args, Debug)]
pub struct CertifyArgs {
    /// The implementation's command line, split like a shell's (without
    /// one). A first word `rehearse` is this executable, so `rehearse
    /// serve` certifies the reference.
    #[arg(long = "impl", value_name = "CMD")]
    pub implementation: String,
    /// The manifest of expected failures (default:
    /// `conformance/<implementation>.toml` when it exists).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Scenario files or directories (default: `scenarios/`).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose name contains PATTERN (or matches it as a glob).
    #[arg(long = "filter", short = 'k', value_name = "PATTERN")]
    pub filters: Vec<String>,
    /// Seconds each answer may take before the scenario is broken.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// How many scenarios to certify at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Also list passes, unsupported scenarios and expected failures.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// How to report on standard output.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Also write a JUnit XML report to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a Markdown report to FILE (atomically), fit to commit.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

/// Report formats of `certify`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    /// JSON Lines: one object per scenario, then a summary (docs/FORMATS.md).
    Json,
}

/// Why `certify` could not start or finish its report.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    #[error("certify: `--impl {0}` is not a command line (empty, or an unclosed quote)")]
    CommandLine(String),
    #[error(transparent)]
    Probe(#[from] certify::ProbeError),
    #[error(transparent)]
    Manifest(#[from] crate::certify::manifest::ManifestError),
    #[error("the manifest `{}` lists `{stale}`, which is not a scenario of the library", .path.display())]
    StaleEntry { path: PathBuf, stale: String },
    #[error("certify: failed to write `{}`: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn parse_timeout(text: &str) -> Result<f64, TimeoutError> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 3600.0 => Ok(seconds),
        _ => Err(TimeoutError(text.to_string())),
    }
}

/// A `--timeout` that is not a number of seconds in (0, 3600].
#[derive(Debug, thiserror::Error)]
#[error("invalid timeout `{0}`, expected seconds above 0 and at most 3600")]
pub struct TimeoutError(String);

/// The command line of `--impl`, split; a first word `rehearse` becomes
/// this executable.
pub fn command_line(text: &str) -> Result<Vec<String>, CliError> {
    let mut argv = shlex::split(text)
        .filter(|argv| !argv.is_empty())
        .ok_or_else(|| CertifyError::CommandLine(text.to_string()))?;
    if argv[0] == "rehearse" {
        if let Ok(me) = std::env::current_exe() {
            argv[0] = me.to_string_lossy().into_owned();
        }
    }
    Ok(argv)
}

/// Everything a certification run produced.
#[derive(Debug)]
pub struct Run {
    pub implementation: String,
    pub version: String,
    pub command: String,
    /// The paths and filters given, as typed (`scenarios/lease`, `-k x`).
    pub selection: Vec<String>,
    pub results: Vec<Certified>,
}

pub fn run(args: &CertifyArgs) -> Result<Exit, CliError> {
    let junit_path = args.junit.as_ref().map(|p| absolute(p));
    let markdown_path = args.markdown.as_ref().map(|p| absolute(p));
    let manifest_path = args.manifest.as_ref().map(|p| absolute(p));
    let target = Target {
        argv: command_line(&args.implementation)?,
        timeout: Duration::from_secs_f64(args.timeout),
    };
    let (child, hello) = certify::probe(&target).map_err(CertifyError::from)?;
    drop(child.finish());
    let library = Library::open(&args.paths, None, None)?;
    let config = library.suite(args.jobs.unwrap_or_else(default_jobs).max(1), None);
    let manifest = read_manifest(
        manifest_path.as_deref(),
        &hello.implementation.name,
        &config,
    )?;
    let options = CheckOptions {
        filters: args.filters.iter().map(|f| NameFilter::new(f)).collect(),
        ..CheckOptions::default()
    };
    let files: Vec<PathBuf> = check::select(&config, &options)?
        .into_iter()
        .filter(|path| !suite::is_invalid_case(&config, path))
        .collect();
    if files.is_empty() {
        return Err(suite::SuiteError::NothingSelected(
            "no runnable scenario (outside `invalid/`) under the given paths".to_string(),
        )
        .into());
    }
    let results = suite::parallel_map(&files, config.jobs, |path| {
        certify::certify_one(
            path,
            &suite::scenario_name(&config, path),
            &target,
            &manifest,
        )
    });
    let run = Run {
        implementation: hello.implementation.name,
        version: hello.implementation.version,
        command: args.implementation.clone(),
        selection: selection(args),
        results,
    };
    match args.format {
        Format::Human => render::human(&run, args.verbose),
        Format::Json => json_lines(&run),
    }
    if let Some(path) = junit_path {
        crate::junit::write_report(&path, &render::junit(&run))?;
    }
    if let Some(path) = markdown_path {
        crate::atomic::write(&path, render::markdown(&run).as_bytes())
            .map_err(|source| CertifyError::Write { path, source })?;
    }
    Ok(exit(&run.results))
}

/// The selection as typed: paths, then `-k` filters.
fn selection(args: &CertifyArgs) -> Vec<String> {
    let paths = args.paths.iter().map(|p| p.display().to_string());
    let filters = args.filters.iter().map(|f| format!("-k '{f}'"));
    paths.chain(filters).collect()
}

/// 2 when a scenario could not be read, else 1 when anything fails the
/// run, else 0.
fn exit(results: &[Certified]) -> Exit {
    if results
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Error { .. }))
    {
        Exit::Usage
    } else if results.iter().any(|r| r.verdict.fails_run()) {
        Exit::Mismatch
    } else {
        Exit::Pass
    }
}

/// The manifest given, else `conformance/<name>.toml` when it exists, else
/// none; every scenario it lists must exist in the library.
fn read_manifest(
    given: Option<&Path>,
    name: &str,
    config: &suite::SuiteConfig,
) -> Result<Manifest, CliError> {
    let default = Path::new("conformance").join(format!("{name}.toml"));
    let safe_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    let path = match given {
        Some(path) => path.to_path_buf(),
        None if safe_name && default.is_file() => default,
        None => return Ok(Manifest::default()),
    };
    let manifest = Manifest::read(&path).map_err(CertifyError::from)?;
    let all = suite::discover(std::slice::from_ref(&config.scenarios_root))?;
    let known: std::collections::BTreeSet<String> = all
        .iter()
        .map(|p| suite::scenario_name(config, p))
        .collect();
    if let Some(stale) = manifest.expected.keys().find(|s| !known.contains(*s)) {
        return Err(CertifyError::StaleEntry {
            path,
            stale: stale.clone(),
        }
        .into());
    }
    Ok(manifest)
}

/// One JSON object per scenario, then a summary.
fn json_lines(run: &Run) {
    for result in &run.results {
        let mut value = serde_json::to_value(result).expect("a result serialises");
        value["version"] = json!(CERTIFY_REPORT_VERSION);
        value["record"] = json!("scenario");
        outln!("{value}");
    }
    let mut summary = json!({
        "version": CERTIFY_REPORT_VERSION,
        "record": "summary",
        "implementation": run.implementation,
        "implementation_version": run.version,
    });
    for (name, count) in render::counts(&run.results) {
        summary[name] = json!(count);
    }
    out!("{summary}\n");
}
