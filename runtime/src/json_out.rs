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
// Inlined: a payload writes dozens of strings, and almost none needs
// escaping; the escaping path stays out of line.
#[inline]
pub fn string(out: &mut Vec<u8>, value: &str) {
    if !needs_escape(value.as_bytes()) {
        out.reserve(value.len() + 2);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        escaped(out, value);
    }
}

#[cold]
#[inline(never)]
fn escaped(out: &mut Vec<u8>, value: &str) {
    serde_json::to_writer(out, value).expect("a string writes to memory");
}

/// Whether `bytes` hold a byte serde_json escapes: `"`, `\` or a control
/// character. Eight bytes at a time: a byte below 0x20 borrows through
/// `x - 0x20`, a quote or backslash through `(x ^ c) - 1`, and the high
/// bit of a byte of `!x` (the same as of `!(x ^ c)`, as `c` is ASCII)
/// keeps only bytes that were ASCII, so no byte at or above 0x80 counts.
/// A text of eight bytes or more ends with its last eight, which may
/// overlap the words before them; a shorter one is read byte by byte.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte that needs escaping, and maybe others.
    let flags = |word: &[u8]| {
        let x = u64::from_le_bytes(word.try_into().expect("a word of eight"));
        let control = x.wrapping_sub(ONES * 0x20);
        let quote = (x ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
        let backslash = (x ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
        (control | quote | backslash) & !x
    };
    match bytes.len().checked_sub(8) {
        // Every word is read, without a branch per word: the texts are
        // short and almost never need escaping.
        Some(last) => {
            let words = bytes
                .chunks_exact(8)
                .fold(0, |seen, word| seen | flags(word));
            (words | flags(&bytes[last..])) & HIGH != 0
        }
        None => bytes
            .iter()
            .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\'),
    }
}

/// Runs `use_buffer` on an empty buffer this thread keeps, so that text
/// written only to be copied or hashed allocates nothing once the buffer
/// has grown.
pub fn with_buffer<R>(use_buffer: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| {
        borrow_or_fresh(buffer, |out| {
            out.clear();
            use_buffer(out)
        })
    })
}

/// The text last written for a key, as a thread keeps it: a value
/// written again unchanged (a run's lease, in its acquired event and then
/// in its receipt) is copied rather than written anew. A hit needs the key
/// to match in full, so the text is the one the writer would write.
#[derive(Debug)]
pub struct Memo<K> {
    key: Option<K>,
    text: Vec<u8>,
}

impl<K> Memo<K> {
    /// An empty memo.
    pub const fn new() -> Self {
        Self {
            key: None,
            text: Vec::new(),
        }
    }

    /// Appends the kept text when `matches` accepts its key and the text;
    /// otherwise appends what `write` writes and keeps it under `key()`.
    pub fn write(
        &mut self,
        out: &mut Vec<u8>,
        matches: impl FnOnce(&K, &[u8]) -> bool,
        key: impl FnOnce() -> K,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        if let Some(kept) = &self.key {
            if matches(kept, &self.text) {
                out.extend_from_slice(&self.text);
                return;
            }
        }
        let start = out.len();
        write(out);
        self.text.clear();
        self.text.extend_from_slice(&out[start..]);
        self.key = Some(key());
    }
}

impl<K> Default for Memo<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Memo::write`] through the memo `kept` holds for this thread (a
/// nested use, none known, gets a fresh one).
pub fn memoized<K: 'static>(
    kept: &'static std::thread::LocalKey<std::cell::RefCell<Memo<K>>>,
    out: &mut Vec<u8>,
    matches: impl FnOnce(&K, &[u8]) -> bool,
    key: impl FnOnce() -> K,
    write: impl FnOnce(&mut Vec<u8>),
) {
    kept.with(|memo| borrow_or_fresh(memo, |memo| memo.write(out, matches, key, write)));
}

/// Runs `use_kept` on what `kept` holds (a thread's scratch space), or on
/// a fresh value when a caller further up the stack is using it: a nested
/// use gets its own rather than a second borrow.
pub(crate) fn borrow_or_fresh<T: Default, R>(
    kept: &std::cell::RefCell<T>,
    use_kept: impl FnOnce(&mut T) -> R,
) -> R {
    let mut fresh = T::default();
    let mut borrowed = kept.try_borrow_mut();
    match borrowed.as_deref_mut() {
        Ok(kept) => use_kept(kept),
        Err(_) => use_kept(&mut fresh),
    }
}

/// Appends a scalar (a number, a boolean) or any value whose serde_json text
/// is already canonical, such as a `serde_json::Value` (its maps keep their
/// keys sorted).
pub fn scalar<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("a JSON value writes to memory");
}

/// Appends an integer as serde_json writes it.
pub fn int<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
    let mut buffer = itoa::Buffer::new();
    out.extend_from_slice(buffer.format(value).as_bytes());
}

/// Appends a time in milliseconds, as [`int`] does. An operation writes
/// its time into most of its events: the digits of the last thirteen-digit
/// time written (2001 to 2286) are kept by the thread and copied.
pub fn ms(out: &mut Vec<u8>, value: i64) {
    thread_local! {
        // Starts as a time and its own digits.
        static LAST: std::cell::Cell<(i64, [u8; 13])> =
            const { std::cell::Cell::new((1_000_000_000_000, *b"1000000000000")) };
    }
    LAST.with(|last| {
        let (kept, digits) = last.get();
        if kept == value {
            return out.extend_from_slice(&digits);
        }
        let mut buffer = itoa::Buffer::new();
        let written = buffer.format(value).as_bytes();
        if let Ok(thirteen) = <[u8; 13]>::try_from(written) {
            last.set((value, thirteen));
        }
        out.extend_from_slice(written);
    });
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

/// Appends a JSON object of literal keys, given in byte order (checked when
/// the program compiles). Each key with the punctuation around it is one
/// piece of text fixed at compile time, so an entry costs one copy of known
/// length and its value's writer. An entry is `"key" => writer(args)`,
/// which calls `json_out::writer(out, args)`: [`string`], [`opt_string`],
/// [`int`], [`scalar`], [`value`], [`string_map`], [`text`], or [`nested`] for a
/// writer of its own.
macro_rules! object {
    ($out:expr; $key0:literal => $write0:ident($($arg0:expr),*) $(, $key:literal => $write:ident($($arg:expr),*))* $(,)?) => {{
        const _: () = assert!(
            $crate::json_out::keys_in_order(&[$key0 $(, $key)*]),
            "an object's keys must be listed in byte order"
        );
        let out: &mut Vec<u8> = $out;
        out.extend_from_slice(concat!("{\"", $key0, "\":").as_bytes());
        $crate::json_out::$write0(out $(, $arg0)*);
        $(
            out.extend_from_slice(concat!(",\"", $key, "\":").as_bytes());
            $crate::json_out::$write(out $(, $arg)*);
        )*
        out.push(b'}');
    }};
}
pub(crate) use object;

/// Whether `keys` are in strictly rising byte order, as a canonical
/// object's keys are: [`object!`]'s compile-time check.
pub const fn keys_in_order(keys: &[&str]) -> bool {
    let mut index = 1;
    while index < keys.len() {
        if !str_less(keys[index - 1], keys[index]) {
            return false;
        }
        index += 1;
    }
    true
}

/// `a < b` in byte order, for constant evaluation.
const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut index = 0;
    while index < a.len() && index < b.len() {
        if a[index] != b[index] {
            return a[index] < b[index];
        }
        index += 1;
    }
    a.len() < b.len()
}

/// Appends a string, or `null` for none.
pub fn opt_string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => string(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends JSON text as it is: a value already written canonically.
pub fn text(out: &mut Vec<u8>, json: &str) {
    out.extend_from_slice(json.as_bytes());
}

/// Appends what `write` writes: an [`object!`] entry whose value has a
/// writer of its own.
pub fn nested(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    write(out);
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

    /// A time is written as `int` writes it, whichever time came before:
    /// repeated, alternating, of other lengths, negative, the extremes.
    #[test]
    fn times_are_written_as_integers_are() {
        let times = [
            1_767_225_600_000,
            1_767_225_600_000,
            1_767_225_601_000,
            1_000_000_000_000,
            -1,
            0,
            -100_000_000_000,
            -100_000_000_000,
            9_999_999_999_999,
            i64::MIN,
            i64::MAX,
            1_767_225_601_000,
            42,
            1_767_225_601_000,
        ];
        for (index, &time) in times.iter().enumerate() {
            let (mut written, mut expected) = (Vec::new(), Vec::new());
            ms(&mut written, time);
            int(&mut expected, time);
            assert_eq!(written, expected, "time {index}: {time}");
        }
    }

    /// A memo copies its text only when its key matches, and keeps the
    /// latest text written.
    #[test]
    fn a_memo_copies_only_for_its_key() {
        let mut memo = Memo::new();
        let mut writes = 0;
        let mut write = |memo: &mut Memo<u32>, key: u32, text: &str| {
            let mut out = b"<".to_vec();
            memo.write(
                &mut out,
                |kept, kept_text| *kept == key && kept_text.len() == text.len(),
                || key,
                |out| {
                    writes += 1;
                    out.extend_from_slice(text.as_bytes());
                },
            );
            out
        };
        assert_eq!(write(&mut memo, 1, "one"), b"<one");
        assert_eq!(write(&mut memo, 1, "uno"), b"<one", "a hit copies");
        assert_eq!(write(&mut memo, 2, "two"), b"<two");
        assert_eq!(write(&mut memo, 1, "one"), b"<one", "only the last is kept");
        assert_eq!(write(&mut memo, 1, "eins"), b"<eins", "the test refuses");
        assert_eq!(writes, 4);
    }

    /// The order check agrees with `str`'s order and refuses ties.
    #[test]
    fn keys_in_order_is_byte_order() {
        assert!(keys_in_order(&[]));
        assert!(keys_in_order(&["a"]));
        assert!(keys_in_order(&["a", "ab", "b", "b_", "ba"]));
        assert!(!keys_in_order(&["a", "a"]));
        assert!(!keys_in_order(&["ab", "a"]));
        assert!(!keys_in_order(&["b", "a_"]));
        assert!(!keys_in_order(&["work_key", "lease_id"]));
    }

    /// An object's text: its keys fixed, its values written by their writers.
    #[test]
    fn object_writes_keys_and_values() {
        let mut out = Vec::new();
        object!(&mut out;
            "a" => int(1),
            "b" => opt_string(None),
            "c" => nested(|out| object!(out; "d" => string("x\"y"))),
        );
        assert_eq!(out, br#"{"a":1,"b":null,"c":{"d":"x\"y"}}"#);
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
