//! The reference runtime that `rehearse` drives: a deterministic, event-sourced
//! persona runtime with leases, budgets, triggers, schedules and controls.
//!
//! Nothing in this crate reads the wall clock, the OS random source or the
//! terminal: time is passed in as `now_ms` and ids come from [`ids::IdGen`].

pub mod clock;
pub mod file_log;
pub mod ids;
pub mod log;

pub use clock::{format_ms, parse_rfc3339_ms};
pub use file_log::{FileLog, FileLogError, FileLogOptions, FsyncPolicy, Recovery};
pub use ids::IdGen;
pub use log::{EventLog, LogError, LogEvent, MemoryLog, StoredEvent, Topic};
pub mod config;
pub mod duration;
pub mod op;

pub use config::{BudgetPolicy, Constraints, PersonaSpec, RuntimeConfig};
pub use duration::Millis;
pub use op::Op;
