//! The process registry: process records and their lifecycle,
//! recovery dispositions, leases with fencing tokens, and list filters, as
//! an event-sourced subsystem on topic `process.registry.events`.

mod error;
mod events;
mod filter;
mod op;
mod record;
mod registry;
#[cfg(test)]
mod tests;

pub use error::ProcessError;
pub use events::{
    process_topic, AbandonRequested, Claimed, Ended, LeaseExpired, ProcessEvent, Renewed,
    Signalled, Started, Waiting, PROCESS_TOPIC,
};
pub use filter::{FilterError, ProcessListFilter, ProcessStatusFilter};
pub use op::{
    expected_process_ops, AbandonOp, CancelOp, ClaimOp, CompleteOp, FailOp, HeartbeatOp,
    LeaseTokenRef, ProcessOp, SignalOp, StartOp, WaitOp, DEFAULT_PROCESS_LEASE_TTL,
    PROCESS_OP_KINDS,
};
pub use record::{
    AbandonRequest, ProcessEnd, ProcessExecutionEnvSpec, ProcessIdentity, ProcessInput,
    ProcessLease, ProcessOriginator, ProcessProvenance, ProcessRecord, ProcessRegistration,
    ProcessStarted, ProcessStatus, RecoveryDisposition, WaitState,
};
pub use registry::{ProcessOutcome, ProcessRegistry};
