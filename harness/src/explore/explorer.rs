//! The engine of `rehearse explore`: generate cases from a seed, check each
//! against every invariant, and shrink the first failure to a minimal case.
//!
//! Generation is deterministic: a proptest `TestRunner` over a ChaCha
//! generator seeded from the explore seed, so the same seed explores the
//! same cases on every machine. Shrinking walks proptest's value tree
//! (simplify while the case still fails, complicate when it stops failing).

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::case::Case;
use super::check::{check_case, RuntimeHook};
use super::generate::{case_strategy, Generation};
use super::invariants::Violation;

/// The most shrink steps spent on one failure.
pub const MAX_SHRINK_ITERATIONS: usize = 4_096;

/// What to explore.
#[derive(Clone, Copy, Debug)]
pub struct ExploreConfig {
    /// How many cases to generate and check.
    pub cases: usize,
    /// The seed every case is drawn from.
    pub seed: u64,
    /// The most steps one case has.
    pub max_steps: usize,
    /// Applied to every runtime before it runs a case: tests switch on a
    /// deliberate bug with it (`Runtime::set_deliberate_bug`, feature
    /// `test-hooks` of the runtime). `None` for the real runtime.
    pub runtime_hook: Option<RuntimeHook>,
}

impl Default for ExploreConfig {
    fn default() -> Self {
        Self {
            cases: 256,
            seed: 0,
            max_steps: 120,
            runtime_hook: None,
        }
    }
}

/// What an exploration that found nothing covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExploreSummary {
    pub seed: u64,
    pub cases: usize,
    /// Steps run over all cases.
    pub steps: usize,
    /// Log events checked over all cases.
    pub events: usize,
}

/// A case that broke an invariant, shrunk.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("case {case_number} of seed {seed} broke {violation}; shrunk from {original_steps} to {}", steps(.case.steps.len()))]
pub struct Counterexample {
    /// The shrunk case.
    pub case: Case,
    /// The invariant the shrunk case breaks, with its step and evidence.
    pub violation: Violation,
    pub seed: u64,
    /// Which generated case failed first, counting from 1.
    pub case_number: usize,
    /// How many steps the case had before shrinking.
    pub original_steps: usize,
    /// How many shrink steps were tried.
    pub shrink_iterations: usize,
}

impl Counterexample {
    /// The scenario name a saved counterexample gets: `explore-seed-S-case-N`.
    pub fn scenario_name(&self) -> String {
        format!("explore-seed-{}-case-{}", self.seed, self.case_number)
    }

    /// The shrunk case as a readable scenario file whose `description`
    /// names the violated invariant, its step and its evidence.
    pub fn to_scenario_yaml(&self) -> String {
        let description = format!(
            "Found by `rehearse explore --seed {}` (case {}, shrunk from {} to {}): {}.",
            self.seed,
            self.case_number,
            self.original_steps,
            steps(self.case.steps.len()),
            self.violation
        );
        self.case
            .to_scenario(&self.scenario_name(), Some(description))
            .to_yaml()
    }
}

/// `1 step`, `2 steps`.
fn steps(count: usize) -> String {
    if count == 1 {
        "1 step".to_string()
    } else {
        format!("{count} steps")
    }
}

/// The 32 bytes of the ChaCha seed: the seed's little-endian bytes, then zeros.
fn rng_seed(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes
}

/// Generates `config.cases` cases from `config.seed` and checks each,
/// calling `progress` with the number of cases checked so far. The first
/// failure is shrunk and returned.
#[expect(
    clippy::result_large_err,
    reason = "an exploration ends at most once with a counterexample; boxing it buys nothing"
)]
pub fn explore(
    config: ExploreConfig,
    mut progress: impl FnMut(usize),
) -> Result<ExploreSummary, Counterexample> {
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed(config.seed));
    let runner_config = Config {
        cases: u32::try_from(config.cases).unwrap_or(u32::MAX),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(runner_config, rng);
    let strategy = case_strategy(Generation::new(config.max_steps));
    let mut summary = ExploreSummary {
        seed: config.seed,
        cases: 0,
        steps: 0,
        events: 0,
    };
    for number in 1..=config.cases {
        let mut tree = strategy
            .new_tree(&mut runner)
            .expect("the case strategy rejects nothing");
        let case = tree.current();
        match check_case(&case, config.runtime_hook) {
            Ok(run) => {
                summary.cases += 1;
                summary.steps += run.steps;
                summary.events += run.events;
                progress(number);
            }
            Err(violation) => {
                let original_steps = case.steps.len();
                let hook = config.runtime_hook;
                let (case, violation, shrink_iterations) =
                    shrink(&mut tree, case, violation, |case| {
                        check_case(case, hook).err()
                    });
                return Err(Counterexample {
                    case,
                    violation,
                    seed: config.seed,
                    case_number: number,
                    original_steps,
                    shrink_iterations,
                });
            }
        }
    }
    Ok(summary)
}

/// Simplifies `tree` while its value still fails (`fails` says how), at most
/// [`MAX_SHRINK_ITERATIONS`] times; returns the smallest failing value seen,
/// its failure and the shrink steps tried. `explore` shrinks generated cases
/// with it, `audit --shrink` the operations rebuilt from a log.
pub fn shrink<T, F>(
    tree: &mut impl ValueTree<Value = T>,
    value: T,
    failure: F,
    mut fails: impl FnMut(&T) -> Option<F>,
) -> (T, F, usize) {
    let mut best = (value, failure);
    let mut iterations = 0;
    if !tree.simplify() {
        return (best.0, best.1, iterations);
    }
    while iterations < MAX_SHRINK_ITERATIONS {
        iterations += 1;
        let candidate = tree.current();
        let more = match fails(&candidate) {
            Some(failure) => {
                best = (candidate, failure);
                tree.simplify()
            }
            None => tree.complicate(),
        };
        if !more {
            break;
        }
    }
    (best.0, best.1, iterations)
}
