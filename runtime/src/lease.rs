//! Single-writer persona leases: who holds a persona's work, since when, and
//! until when.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The holder name the runtime uses for its own runs.
pub const RUNTIME_HOLDER: &str = "persona-runtime";

/// A lease on one persona's work, as the modelled runtime's `PersonaLease`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Lease {
    pub id: String,
    pub holder: String,
    pub work_key: String,
    pub acquired_at_ms: i64,
    pub expires_at_ms: i64,
}

impl Lease {
    /// Appends the lease's canonical JSON (`json_out.rs`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        crate::json_out::object!(out;
            "acquired_at_ms" => int(self.acquired_at_ms),
            "expires_at_ms" => int(self.expires_at_ms),
            "holder" => string(&self.holder),
            "id" => string(&self.id),
            "work_key" => string(&self.work_key),
        );
    }

    /// Whether the lease still holds at `now_ms`; it lapses exactly at its expiry.
    pub fn is_live_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }
}
