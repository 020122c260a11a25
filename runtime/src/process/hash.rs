//! Stable hashes of process registrations and execution environments: the
//! sha256 of a value's canonical JSON (object keys sorted, no whitespace).

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The canonical JSON bytes of `value`: objects with their keys in byte
/// order at every depth, no insignificant whitespace.
///
/// The keys are sorted here rather than trusted to `serde_json::Map`, because
/// a crate elsewhere in the build enabling serde_json's `preserve_order`
/// feature would otherwise silently change every hash.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_scalar(&serde_json::Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &serde_json::Value, out: &mut Vec<u8>) {
    // Writing a scalar `Value` into a `Vec` cannot fail: there is no I/O and
    // no map key to reject.
    serde_json::to_writer(out, value).expect("a JSON scalar always serialises");
}

/// The sha256 hex digest of `value`'s canonical JSON.
pub fn stable_json_sha256_hex<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    Ok(hex::encode(Sha256::digest(canonical_json(&value))))
}
