//! Storage faults and the commit they fail: injected append faults are
//! armed by a `fault` step and spent by the next operations that append.
//! In test builds, the deliberate bugs of [`crate::test_hooks`] hook in
//! here too, at their one hook point.

use std::ops::Range;
use std::sync::Arc;

use super::{Runtime, RuntimeError};

impl Runtime {
    /// Makes the next `count` operations that append fail.
    pub fn inject_append_faults(&mut self, count: u64) {
        self.faults_remaining = self.faults_remaining.saturating_add(count);
    }

    fn log_position(&self) -> usize {
        usize::try_from(self.log.len()).expect("a log position fits in memory")
    }

    /// How many injected append faults are still armed.
    pub fn faults_remaining(&self) -> u64 {
        self.faults_remaining
    }

    /// Appends the staged events as one batch; an armed fault or a backend
    /// error discards them and rebuilds state from the log.
    pub(super) fn commit(&mut self) -> Result<Range<usize>, RuntimeError> {
        let start = self.log_position();
        if self.pending.is_empty() {
            return Ok(start..start);
        }
        if self.faults_remaining > 0 {
            self.faults_remaining -= 1;
            self.discard();
            return Err(RuntimeError::InjectedFault);
        }
        // One text holds every staged persona payload; the staging lists
        // keep their room for the next operation. The UTF-8 check runs
        // over every byte the runtime writes: simdutf8's (SIMD, chosen at
        // run time) takes about a third of the standard library's
        // instructions here.
        let text: Arc<str> = simdutf8::basic::from_utf8(&self.staged_text)
            .expect("payload text is UTF-8")
            .into();
        self.staged_text.clear();
        let topic = &self.topic;
        let mut batch = self
            .pending
            .drain(..)
            .map(|staged| staged.into_event(topic, &text));
        let appended = self.log.append_from(&mut batch);
        // The drain ends before a failed append rebuilds the state.
        drop(batch);
        if let Err(error) = appended {
            self.rebuild_committed();
            return Err(error.into());
        }
        // Persona events were folded as they were staged; the other
        // subsystems fold what was committed on their topics, read back in
        // place.
        let end = self.log_position();
        for event in self.log.slice(start..end) {
            if event.topic != self.topic {
                self.pipeline.apply(event);
                self.processes.apply(event);
            }
        }
        Ok(start..end)
    }
}

#[cfg(feature = "test-hooks")]
mod hooks {
    use crate::budget::BudgetLimit;
    use crate::persona::{Admission, Persona, RunCost};
    use crate::test_hooks::Bug;

    /// The deliberate bug a test switched on, applied at the one hook
    /// point: the admission facts, before the persona decides on them.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Hooks {
        bug: Option<Bug>,
    }

    impl Hooks {
        /// The admission facts as the switched-on bug misreads them.
        pub(in crate::engine) fn admission(
            self,
            mut admission: Admission,
            persona: &Persona,
            cost: &RunCost,
            now_ms: i64,
        ) -> Admission {
            match self.bug {
                Some(Bug::FloatBudgetSums) if admission.refusal.is_none() => {
                    let spent = persona.state.spend.today(now_ms).to_f64();
                    let limit = persona.spec.budget.daily_usd;
                    if limit.is_some_and(|limit| spent + cost.cost_usd > limit) {
                        admission.refusal = Some(BudgetLimit::DailyUsd);
                    }
                }
                Some(Bug::AdmitOverRunLimit) if admission.refusal == Some(BudgetLimit::RunUsd) => {
                    admission.refusal = None;
                }
                Some(Bug::CompleteDuplicates) => admission.duplicate = false,
                Some(Bug::SkipLeaseCheck) => admission.live_lease = None,
                _ => {}
            }
            admission
        }
    }

    impl super::Runtime {
        /// Switches on a deliberate bug, so a test can prove the harness's
        /// invariant checker notices it.
        pub fn set_deliberate_bug(&mut self, bug: Bug) {
            self.hooks.bug = Some(bug);
        }
    }
}

#[cfg(feature = "test-hooks")]
pub use hooks::Hooks;
