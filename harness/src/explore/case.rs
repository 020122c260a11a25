//! A generated case: a runtime configuration and timed operations, the
//! plain form the explorer generates, drives, checks and shrinks.

use rehearse_runtime::op::Op;
use rehearse_runtime::RuntimeConfig;

/// One generated case: what the runtime is built from and the operations
/// that drive it, each at an absolute scenario time in milliseconds.
/// Times never decrease.
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
}
