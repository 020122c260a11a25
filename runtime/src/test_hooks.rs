//! Deliberate bugs for proving that the harness's invariant checker can
//! fail: compiled only with the `test-hooks` feature, and off until a test
//! switches one on with `Runtime::set_deliberate_bug`.

/// A bug the runtime can be told to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// Admission ignores `run_usd`: a run costing more than the limit runs.
    AdmitOverRunLimit,
    /// Admission ignores a live lease: a second run starts beside the first.
    SkipLeaseCheck,
    /// Admission ignores completed work keys: finished work runs again.
    CompleteDuplicates,
    /// Admission compares the day's spend plus the cost against
    /// `daily_usd` in binary floating point, as the modelled upstream
    /// does: 0.1 spent and 0.2 more against a limit of 0.3 is refused,
    /// which exact arithmetic admits.
    FloatBudgetSums,
}
