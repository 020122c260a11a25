//! Single-writer persona leases: who holds a persona's work, since when, and
//! until when.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The holder name the runtime uses for its own runs.
pub const RUNTIME_HOLDER: &str = "persona-runtime";

/// [`RUNTIME_HOLDER`] as the shared text every lease of the runtime names.
pub fn runtime_holder() -> Arc<str> {
    static HOLDER: std::sync::LazyLock<Arc<str>> =
        std::sync::LazyLock::new(|| Arc::from(RUNTIME_HOLDER));
    Arc::clone(&HOLDER)
}

/// A lease on one persona's work, as the modelled runtime's `PersonaLease`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Lease {
    // Shared texts: a lease is copied into several events, the receipt and
    // the state, and each copy is a count, not an allocation.
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub id: Arc<str>,
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub holder: Arc<str>,
    #[serde(deserialize_with = "crate::event::shared_text")]
    pub work_key: Arc<str>,
    pub acquired_at_ms: i64,
    pub expires_at_ms: i64,
}

impl Lease {
    /// Appends the lease's canonical JSON (`json_out.rs`).
    // A run's lease is written in its acquired event and again in its
    // receipt: the second time, the text is copied.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::json_out::{memoized, object, Memo};
        thread_local! {
            static LAST: std::cell::RefCell<Memo<Lease>> = const { std::cell::RefCell::new(Memo::new()) };
        }
        memoized(
            &LAST,
            out,
            |last, _| last == self,
            || self.clone(),
            |out| {
                object!(out;
                    "acquired_at_ms" => ms(self.acquired_at_ms),
                    "expires_at_ms" => ms(self.expires_at_ms),
                    "holder" => string(&self.holder),
                    "id" => string(&self.id),
                    "work_key" => string(&self.work_key),
                )
            },
        );
    }

    /// Whether the lease still holds at `now_ms`; it lapses exactly at its expiry.
    pub fn is_live_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }
}
