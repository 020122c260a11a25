//! The reference runtime that `rehearse` drives: a deterministic, event-sourced
//! persona runtime with leases, budgets, triggers, schedules and controls,
//! fronted by a supervisor, with capture bundles and replay.
//!
//! Nothing in this crate reads the wall clock, the OS random source or the
//! terminal: time is passed in as `now_ms` and ids come from [`ids::IdGen`].

pub mod budget;
pub mod canonical;
pub mod capture;
pub mod capture_stream;
pub mod chunked;
pub mod clock;
pub mod config;
pub mod duration;
pub mod engine;
pub mod event;
pub mod file_log;
pub mod hash;
pub mod ids;
pub mod json_out;
pub mod keyset;
pub mod lease;
pub mod log;
pub mod money;
pub mod op;
pub mod persona;
pub mod pipeline;
pub mod process;
pub mod replay;
pub mod run_record;
pub mod schedule;
pub mod seal;
mod single_entry;
pub mod supervisor;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
pub mod workkey;

pub use clock::{format_ms, parse_rfc3339_ms, TimeError, TimeTuple};
pub use config::{BudgetPolicy, ConfigIssue, Constraints, PersonaSpec, RuntimeConfig};
pub use duration::Millis;
pub use file_log::{FileLog, FileLogError, FileLogOptions, FsyncPolicy, Recovery};
pub use ids::IdGen;
pub use log::{
    Cursor, EventLog, Headers, Kind, LogError, LogEvent, MemoryLog, Payload, Reopened, StoredEvent,
    Topic, WindowLog,
};
pub use money::Money;
pub use op::Op;
pub use pipeline::{Pipeline, PipelineError, PipelineOutcome, QueuedTrigger, UnsettledSnapshot};
pub use process::{ProcessOp, ProcessRegistry};
pub use run_record::{ReplayFixture, RunFacts, RunRecord, RunRecordError, RunStatus};
