//! The scenario library as tests: one test per scenario file, named after
//! its path, checking its outputs against the goldens and replaying its
//! capture. A custom harness (libtest-mimic), so cargo test and nextest can
//! filter and partition the library like any other tests.

use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};
use rehearse::check::problem_lines;
use rehearse::golden;
use rehearse::outputs::{self, OutputFile};
use rehearse::scenario::parse_scenario;
use rehearse::suite::{self, Problem, SuiteConfig, Verdict};

fn main() {
    let args = Arguments::from_args();
    // Goldens name their scenario by its path from the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness sits in the workspace");
    std::env::set_current_dir(root).expect("the workspace root exists");
    let config = SuiteConfig::whole_library();
    let files = suite::discover(&config.paths).expect("the scenario library is readable");
    let mut trials: Vec<Trial> = files
        .iter()
        .map(|path| {
            let config = config.clone();
            let path = path.clone();
            Trial::test(suite::scenario_name(&config, &path), move || {
                check(&config, &path)
            })
        })
        .collect();
    let orphan_config = config.clone();
    trials.push(Trial::test("goldens_without_scenarios", move || {
        let all = suite::discover(&orphan_config.paths).map_err(Failed::from)?;
        let orphans = suite::orphans(&orphan_config, &all);
        if orphans.is_empty() {
            Ok(())
        } else {
            Err(format!("goldens without a scenario: {orphans:?}").into())
        }
    }));
    libtest_mimic::run(&args, trials).exit();
}

fn check(config: &SuiteConfig, path: &Path) -> Result<(), Failed> {
    let result = suite::check_one(config, path, false);
    if result.verdict == Verdict::Pass {
        return match suite::is_invalid_case(config, path) {
            true => Ok(()),
            false => run_writes_goldens(config, path, &result.source),
        };
    }
    let mut message = String::new();
    for (line, text) in problem_lines(&result) {
        match line {
            Some(line) => message.push_str(&format!("{}:{line}: {text}\n", result.source)),
            None => message.push_str(&format!("{}: {text}\n", result.source)),
        }
    }
    if let Verdict::Fail { problems } = &result.verdict {
        for problem in problems {
            if let Problem::Diff { diff, .. } | Problem::Lint { diff } = problem {
                message.push_str(diff);
            }
        }
    }
    message.push_str(
        "review with `rehearse check`, accept with `rehearse bless` when the change is intended\n",
    );
    Err(message.into())
}

/// `rehearse run`'s way (outputs written into a staged directory as the
/// run goes, the capture by the session itself, over a log that keeps no
/// history unless the scenario restarts) writes the goldens byte for byte.
fn run_writes_goldens(config: &SuiteConfig, path: &Path, source: &str) -> Result<(), Failed> {
    let scenario = parse_scenario(path).map_err(|error| error.to_string())?;
    let out = tempfile::tempdir()?;
    let dir = out.path().join(&scenario.name);
    outputs::run_into(&dir, &scenario, source)?;
    let goldens = golden::golden_dir(&config.snapshots_root, &config.scenarios_root, path);
    for file in OutputFile::ALL {
        let written = std::fs::read(dir.join(file.name()))?;
        if written != std::fs::read(goldens.join(file.name()))? {
            return Err(format!(
                "`rehearse run` wrote another {} than the golden",
                file.name()
            )
            .into());
        }
    }
    Ok(())
}
