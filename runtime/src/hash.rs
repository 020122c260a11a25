//! Hashing: the one canonical JSON of the runtime and the sha256 digests
//! built on it (capture payload hashes, effect hashes, stable hashes of
//! process registrations), written as lowercase hex.
//!
//! Canonical JSON is compact JSON with object keys in byte order at every
//! depth. `serde_json::Map` keeps its keys sorted as long as serde_json's
//! `preserve_order` feature is off, so canonical JSON is serde_json's own
//! compact output; the test `canonical_json_sorts_keys_without_preserve_order`
//! fails the build's tests the moment anything switches that feature on.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::log::StoredEvent;

/// The canonical JSON bytes of `value`: compact, object keys in byte order
/// at every depth.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serialises")
}

/// sha256 hex of `value`'s canonical JSON: a capture event's payload hash.
pub fn payload_hash(value: &serde_json::Value) -> String {
    hex::encode(json_digest(value))
}

/// sha256 hex of a stored event's JSON (its fields in declaration order,
/// topic to `occurred_at_ms`; its payload and headers canonical): the
/// effect hash a capture bundle records, computed once per event
/// ([`StoredEvent::digest`]).
pub fn effect_hash(event: &StoredEvent) -> String {
    hex::encode(event.digest())
}

/// sha256 hex of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 hex of `value` serialised to canonical JSON.
pub fn stable_json_sha256_hex<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    Ok(hex::encode(Sha256::digest(canonical_json(&value))))
}

/// The sha256 of `value`'s compact JSON, serialised into a buffer this
/// thread reuses: hashing every effect of a long capture then allocates
/// nothing.
pub(crate) fn json_digest<T: Serialize + ?Sized>(value: &T) -> [u8; 32] {
    crate::json_out::with_buffer(|bytes| {
        serde_json::to_writer(&mut *bytes, value).expect("a JSON value serialises");
        Sha256::digest(bytes.as_slice()).into()
    })
}

/// Whether `text` is exactly the lowercase hex of `digest`, without
/// allocating.
pub(crate) fn hex_matches(digest: &[u8; 32], text: &str) -> bool {
    let mut expected = [0u8; 64];
    hex::encode_to_slice(digest, &mut expected).expect("64 bytes hold a 32-byte digest");
    text.as_bytes() == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_without_preserve_order() {
        // Parsed, not built: with `preserve_order` on, the map would keep
        // the text's order and this would fail.
        let value: serde_json::Value =
            serde_json::from_str(r#"{"b":[{"z":1,"a":null}],"a":"x\"y","c":{"y":true,"x":1.5}}"#)
                .unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&value)).unwrap(),
            r#"{"a":"x\"y","b":[{"a":null,"z":1}],"c":{"x":1.5,"y":true}}"#
        );
    }

    #[test]
    fn hex_matches_only_the_lowercase_hex_of_the_digest() {
        let digest: [u8; 32] = Sha256::digest(b"rehearse").into();
        let text = hex::encode(digest);
        assert!(hex_matches(&digest, &text));
        assert!(!hex_matches(&digest, &text.to_uppercase()));
        assert!(!hex_matches(&digest, &text[..63]));
        assert_eq!(
            payload_hash(&serde_json::json!({})),
            hex::encode(Sha256::digest(b"{}"))
        );
    }
}
