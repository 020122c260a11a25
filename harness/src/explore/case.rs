//! A generated case: a runtime configuration and timed operations, the
//! plain form the explorer generates, drives, checks and shrinks, and its
//! conversion to a scenario so a counterexample can be kept as a file.

use std::collections::BTreeMap;

use rehearse_runtime::op::Op;
use rehearse_runtime::{Constraints, Millis, RuntimeConfig};

use crate::scenario::{At, Scenario, Step, FORMAT_VERSION};

/// One generated case: what the runtime is built from and the operations
/// that drive it, each at an absolute scenario time in milliseconds.
/// Times never decrease and never precede `config.start_ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub config: RuntimeConfig,
    pub steps: Vec<(i64, Op)>,
}

impl Case {
    /// The event id of the step at `index` (0-based): `step-N`, N counting from 1.
    pub fn event_id(index: usize) -> String {
        format!("step-{}", index + 1)
    }

    /// The case as a scenario named `name`: the same start, seed, personas
    /// and constraints (absent when there are none), and each step at its
    /// offset from the start.
    pub fn to_scenario(&self, name: &str, description: Option<String>) -> Scenario {
        let start_ms = self.config.start_ms;
        let steps = self
            .steps
            .iter()
            .map(|(at_ms, op)| {
                let offset_ms = u64::try_from(at_ms - start_ms)
                    .expect("a case's steps never precede its start");
                Step {
                    at_ms: *at_ms,
                    at: At::Offset(Millis(offset_ms)),
                    op: Some(op.clone()),
                    sequence: None,
                    expect: None,
                    line: 0,
                    column: 0,
                }
            })
            .collect();
        let supervisor = (self.config.supervisor != Constraints::default())
            .then(|| self.config.supervisor.clone());
        Scenario {
            version: FORMAT_VERSION,
            name: name.to_string(),
            description,
            start_ms,
            seed: self.config.seed,
            personas: self.config.personas.clone(),
            supervisor,
            steps,
            persona_positions: BTreeMap::new(),
        }
    }
}
