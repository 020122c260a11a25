//! Why the process registry refused an operation. A refused operation
//! appends nothing and changes nothing.

use crate::clock::format_ms;

use super::record::ProcessStatus;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("process id must not be empty")]
    EmptyId,
    #[error("process lease owner must not be empty")]
    EmptyOwner,
    #[error("process `{0}` already exists")]
    Duplicate(String),
    #[error("unknown process `{0}`")]
    Unknown(String),
    #[error("process `{id}` is {status}; its state is final")]
    Final { id: String, status: ProcessStatus },
    #[error("process lease ttl must be greater than zero")]
    ZeroTtl,
    #[error(
        "process `{id}` is leased to `{owner}` until {} (fencing token {fencing_token})",
        format_ms(*expires_at_ms)
    )]
    Busy {
        id: String,
        owner: String,
        fencing_token: u64,
        expires_at_ms: i64,
    },
    #[error("process `{id}` is owner-bound to `{bound_to}`; `{owner}` may not claim it")]
    OwnerBound {
        id: String,
        bound_to: String,
        owner: String,
    },
    #[error(
        "process `{id}` has a pending abandon request from `{requested_by}`; abandon it again to settle it"
    )]
    AbandonPending { id: String, requested_by: String },
    #[error("owner `{owner}` holds no lease on process `{id}`")]
    NoLease { id: String, owner: String },
    #[error("unknown lease token `{token}` for process `{id}`")]
    UnknownToken { id: String, token: String },
    #[error(
        "stale lease token `{token}` (fencing token {fencing_token}) for process `{id}`: the current fencing token is {current_fencing_token}"
    )]
    StaleToken {
        id: String,
        token: String,
        fencing_token: u64,
        current_fencing_token: u64,
    },
    #[error(
        "lease token `{token}` for process `{id}` expired at {}",
        format_ms(*expired_at_ms)
    )]
    Expired {
        id: String,
        token: String,
        expired_at_ms: i64,
    },
    #[error("process `{id}` is not waiting for signal `{signal}`")]
    NotWaiting { id: String, signal: String },
    /// A bad listing filter; the message is the modelled registry's, word for word.
    #[error(transparent)]
    ListFilter(#[from] super::filter::FilterError),
    #[error("failed to encode the registration of process `{id}`: {message}")]
    Encode { id: String, message: String },
}
