//! Property exploration: random cases against the lease, budget, work and
//! determinism invariants, shrunk to a minimal counterexample on failure.

mod case;
mod check;
mod explorer;
mod generate;
mod invariants;

pub use case::Case;
pub use check::{check_case, CaseRun, RuntimeHook, EXPLORE_SCENARIO};
pub use explorer::{
    explore, shrink, Counterexample, ExploreConfig, ExploreSummary, MAX_SHRINK_ITERATIONS,
};
pub use generate::{case_strategy, config_strategy, op_strategy, Generation, PERSONA_NAMES};
pub use invariants::{
    event_ref, is_unread, reads_back, Checker, Family, Invariant, ReadEvent, StepContext,
    Violation, UNREAD_KINDS,
};
