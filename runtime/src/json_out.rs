//! Canonical JSON written by hand, for the payloads every trigger logs: the
//! same text `canonical.rs` writes through serde (compact, keys in byte
//! order, strings and numbers as serde_json writes them), without
//! collecting and sorting each object's entries. A writer lists its keys in
//! byte order itself; debug builds check that it does, and the tests of
//! `persona/events.rs` compare every hand-written payload with the serde
//! path.

use std::collections::BTreeMap;

use serde::Serialize;

/// Appends `value` as a JSON string, escaped as serde_json escapes it
/// (`"`, `\` and control characters; everything else as is).
pub fn string(out: &mut Vec<u8>, value: &str) {
    if !needs_escape(value.as_bytes()) {
        out.reserve(value.len() + 2);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, value).expect("a string writes to memory");
    }
}

/// Whether `bytes` hold a byte serde_json escapes: `"`, `\` or a control
/// character. Eight bytes at a time: a byte below 0x20 borrows through
/// `x - 0x20`, a quote or backslash through `(x ^ c) - 1`, and the high
/// bit of a byte of `!x` (the same as of `!(x ^ c)`, as `c` is ASCII)
/// keeps only bytes that were ASCII, so no byte at or above 0x80 counts.
/// A text of eight bytes or more ends with its last eight, which may
/// overlap the words before them; a shorter one is read byte by byte.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word_needs = |word: &[u8]| {
        let x = u64::from_le_bytes(word.try_into().expect("a word of eight"));
        let control = x.wrapping_sub(ONES * 0x20);
        let quote = (x ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
        let backslash = (x ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
        (control | quote | backslash) & !x & HIGH != 0
    };
    match bytes.len().checked_sub(8) {
        Some(last) => bytes.chunks_exact(8).any(word_needs) || word_needs(&bytes[last..]),
        None => bytes
            .iter()
            .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\'),
    }
}

/// Runs `use_buffer` on an empty buffer this thread keeps, so that text
/// written only to be copied or hashed allocates nothing once the buffer
/// has grown. A nested call gets a fresh buffer of its own rather than a
/// second borrow.
pub fn with_buffer<R>(use_buffer: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| {
        let mut fresh = Vec::new();
        let mut borrowed = buffer.try_borrow_mut();
        let out = match borrowed.as_deref_mut() {
            Ok(out) => out,
            Err(_) => &mut fresh,
        };
        out.clear();
        use_buffer(out)
    })
}

/// Appends a scalar (a number, a boolean) or any value whose serde_json text
/// is already canonical, such as a `serde_json::Value` (its maps keep their
/// keys sorted).
pub fn scalar<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("a JSON value writes to memory");
}

/// Appends an integer as serde_json writes it.
pub fn int<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends a map of strings: a `BTreeMap` iterates in key byte order, the
/// canonical order.
pub fn string_map(out: &mut Vec<u8>, map: &BTreeMap<String, String>) {
    out.push(b'{');
    for (index, (key, value)) in map.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        string(out, key);
        out.push(b':');
        string(out, value);
    }
    out.push(b'}');
}

/// Appends a JSON value as serde_json writes it compactly, which is
/// canonical: its maps keep their keys sorted.
pub fn value(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) => string(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                self::value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                string(out, key);
                out.push(b':');
                self::value(out, item);
            }
            out.push(b'}');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => scalar(out, value),
    }
}

/// A JSON object being written, its keys given in byte order.
#[derive(Debug)]
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    last: Option<&'static str>,
}

impl<'a> Object<'a> {
    /// Opens an object in `out`.
    pub fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, last: None }
    }

    /// Writes `"key":` and hands out the output for its value. Keys are
    /// field names: plain identifiers that need no escaping.
    pub fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(
            self.last.is_none_or(|last| last < key),
            "keys out of order: `{key}` after `{:?}`",
            self.last
        );
        if self.last.is_some() {
            self.out.push(b',');
        }
        self.last = Some(key);
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// An entry whose value is a string.
    pub fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        string(self.key(key), value);
        self
    }

    /// An entry whose value is a string or `null`.
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => string(self.key(key), value),
            None => self.key(key).extend_from_slice(b"null"),
        }
        self
    }

    /// An entry whose value is a scalar or canonical as serde_json writes it.
    pub fn scalar<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> &mut Self {
        scalar(self.key(key), value);
        self
    }

    /// An entry whose value is an integer.
    pub fn int<I: itoa::Integer>(&mut self, key: &'static str, value: I) -> &mut Self {
        int(self.key(key), value);
        self
    }

    /// An entry whose value is a JSON value ([`value`]).
    pub fn value(&mut self, key: &'static str, value: &serde_json::Value) -> &mut Self {
        self::value(self.key(key), value);
        self
    }

    /// Closes the object.
    pub fn close(&mut self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each use starts empty; a nested use gets its own buffer and leaves
    /// the outer one's text alone.
    #[test]
    fn the_thread_buffer_starts_empty_and_nests() {
        with_buffer(|out| out.extend_from_slice(b"left over"));
        let (outer, inner) = with_buffer(|out| {
            assert!(out.is_empty());
            out.extend_from_slice(b"outer");
            let inner = with_buffer(|nested| {
                assert!(nested.is_empty());
                nested.extend_from_slice(b"inner");
                nested.clone()
            });
            (out.clone(), inner)
        });
        assert_eq!(
            (outer.as_slice(), inner.as_slice()),
            (&b"outer"[..], &b"inner"[..])
        );
    }

    /// Every byte value at every position of texts of 1 to 17 bytes, in a
    /// background of each harmless kind (ASCII, high bytes): the eight-byte
    /// test says what a byte-by-byte one says, and the text written is
    /// serde_json's.
    #[test]
    fn escapes_are_found_wherever_they_stand() {
        for len in 1..=17 {
            for background in [b'a', 0x7f, 0xff, b'!', b'#', b'[', b']', b' '] {
                for at in 0..len {
                    for byte in 0..=255u8 {
                        let mut bytes = vec![background; len];
                        bytes[at] = byte;
                        let naive = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
                        assert_eq!(needs_escape(&bytes), naive, "{bytes:?}");
                    }
                }
            }
        }
        for text in [
            "",
            "plain text",
            "é🦀 \u{7f}",
            "a\"b",
            "tab\tx",
            "back\\slash",
        ] {
            let mut out = Vec::new();
            string(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }
}
