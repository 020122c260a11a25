//! Seeded, position-keyed id generation: UUIDv7 values built from scenario
//! time and pseudo-random bits, identical on every machine.
//!
//! The random stream of an operation is keyed by the scenario seed and the
//! number of events in the log when the operation began. Ids therefore do not
//! depend on how the process got there: a runtime reopened from its durable
//! log after a restart draws exactly the ids an uninterrupted one would, and a
//! failed operation (which appends nothing) leaves the stream where it was.

use std::sync::Arc;

use uuid::Uuid;

/// A deterministic source of ids for one runtime.
#[derive(Clone, Debug)]
pub struct IdGen {
    seed: u64,
    state: u64,
}

impl IdGen {
    /// A generator for `seed`, positioned at an empty log.
    pub fn new(seed: u64) -> Self {
        let mut ids = Self { seed, state: 0 };
        ids.begin_op(0);
        ids
    }

    /// The seed this generator was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Re-keys the stream for an operation that starts when the log holds
    /// `log_len` events.
    pub fn begin_op(&mut self, log_len: u64) {
        self.state = splitmix64(self.seed ^ splitmix64(log_len.wrapping_add(0x5EED)));
    }

    /// The next 64 pseudo-random bits of the current operation's stream.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.state)
    }

    /// A UUIDv7 whose timestamp is `now_ms` and whose random bits come from
    /// the seeded stream.
    pub fn uuid_v7(&mut self, now_ms: i64) -> Uuid {
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        random[8..].copy_from_slice(&self.next_u64().to_be_bytes()[..2]);
        let millis = u64::try_from(now_ms.max(0)).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    /// `prefix` then the next [`IdGen::uuid_v7`] in its hyphenated lower-case
    /// form: the text `format!("{prefix}{uuid}")` gives, joined without the
    /// formatting machinery (a trigger makes several), and shared by the
    /// events and receipts that name it.
    pub fn prefixed(&mut self, prefix: &str, now_ms: i64) -> Arc<str> {
        let mut buffer = uuid::Uuid::encode_buffer();
        let uuid = self.uuid_v7(now_ms).hyphenated();
        let text = uuid.encode_lower(&mut buffer);
        concat_shared(&[prefix, text])
    }
}

/// The texts of `parts` one after another as one shared text (`format!`
/// of plain strings, without its machinery), joined in a buffer the thread
/// keeps: the shared text is the one allocation.
pub fn concat_shared(parts: &[&str]) -> Arc<str> {
    thread_local! {
        static JOINED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    JOINED.with(|joined| {
        crate::json_out::borrow_or_fresh(joined, |text| {
            text.clear();
            for part in parts {
                text.push_str(part);
            }
            Arc::from(text.as_str())
        })
    })
}

/// The splitmix64 finaliser: a cheap, well-mixed bijection on `u64`.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefixed_id_is_the_prefix_and_the_uuid_formatted() {
        let (mut a, mut b) = (IdGen::new(7), IdGen::new(7));
        let long = "a_prefix_longer_than_a_uuid_and_then_some_";
        for (prefix, now_ms) in [("persona_lease_", 1_000), ("", 0), ("é-", -5), (long, 9)] {
            let id = a.prefixed(prefix, now_ms);
            assert_eq!(id, format!("{prefix}{}", b.uuid_v7(now_ms)).into());
            assert_eq!(id.len(), prefix.len() + 36);
        }
        assert_eq!(&*concat_shared(&[]), "");
        assert_eq!(&*concat_shared(&["a", "", "bc"]), "abc");
    }

    #[test]
    fn same_seed_and_position_give_same_ids() {
        let mut a = IdGen::new(7);
        let mut b = IdGen::new(7);
        a.begin_op(12);
        b.begin_op(12);
        assert_eq!(a.uuid_v7(1_000), b.uuid_v7(1_000));
        assert_eq!(a.uuid_v7(1_000), b.uuid_v7(1_000));
    }

    #[test]
    fn ids_are_version_7_and_carry_the_time() {
        let mut ids = IdGen::new(0);
        let id = ids.uuid_v7(1_777_032_000_000);
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1_777_032_000);
    }

    #[test]
    fn different_seeds_or_positions_differ() {
        let mut a = IdGen::new(1);
        let mut b = IdGen::new(2);
        assert_ne!(a.uuid_v7(0), b.uuid_v7(0));
        a.begin_op(3);
        b = IdGen::new(1);
        b.begin_op(4);
        assert_ne!(a.uuid_v7(0), b.uuid_v7(0));
    }
}
