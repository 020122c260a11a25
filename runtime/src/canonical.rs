//! Canonical JSON written straight from typed values: compact, object keys
//! in byte order at every depth, numbers and strings exactly as serde_json
//! writes them. It is the text `serde_json::to_vec(&serde_json::to_value(x))`
//! gives (serde_json keeps a `Value`'s keys sorted, see `hash.rs`), without
//! building the `Value`: an event payload is serialised once, into its
//! bytes, and those bytes are what the log keeps, hashes and writes.
//!
//! A struct's or map's entries are written in the order they come, each
//! remembered with its key; when they did not come sorted, the object is
//! rewritten in key order. A repeated map key keeps its last value, as a
//! `Value` map does.

use std::ops::Range;

use serde::ser::{self, Serialize};
use serde_json::Error;

use crate::json_out::string;

/// The canonical JSON of `value`, appended to `out`. The entries and keys
/// of open objects are kept in scratch space this thread keeps, so that
/// writing allocates nothing once it has grown.
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Buffers> = std::cell::RefCell::new(Buffers::default());
    }
    SCRATCH.with(|scratch| {
        crate::json_out::borrow_or_fresh(scratch, |buffers| {
            // A write that failed may have left entries behind.
            buffers.entries.clear();
            buffers.keys.clear();
            buffers.out = std::mem::take(out);
            let written = value.serialize(Canon {
                buffers: &mut *buffers,
            });
            *out = std::mem::take(&mut buffers.out);
            written
        })
    })
}

/// The canonical JSON of `value`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out)?;
    Ok(out)
}

/// The canonical JSON of `value` as text.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let bytes = to_vec(value)?;
    Ok(String::from_utf8(bytes).expect("serde_json writes UTF-8"))
}

/// Writes a scalar as serde_json does.
fn scalar<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    serde_json::to_writer(out, value)
}

/// An entry's key: a struct field's name, or a map key's text kept in
/// [`Buffers::keys`] (so a map key costs no allocation of its own).
#[derive(Clone)]
enum Key {
    Field(&'static str),
    Text(Range<usize>),
}

impl Key {
    fn text<'k>(&'k self, keys: &'k str) -> &'k str {
        match self {
            Self::Field(name) => name,
            Self::Text(range) => &keys[range.clone()],
        }
    }
}

/// One entry of an object being written: its key, and the range of its
/// `"key":value` text in the output.
type Entry = (Key, Range<usize>);

/// Everything the serializer writes into: the output, the entries of the
/// objects still open (each object's above its parent's), the texts of
/// their map keys and a scratch buffer for putting an object's entries in
/// order.
#[derive(Default)]
struct Buffers {
    out: Vec<u8>,
    entries: Vec<Entry>,
    keys: String,
    scratch: Vec<u8>,
}

/// The serializer: appends to the output of its buffers.
struct Canon<'a> {
    buffers: &'a mut Buffers,
}

/// A sequence or an object being written; `variant` names the enum variant
/// whose one-key object wraps it.
struct Compound<'a> {
    buffers: &'a mut Buffers,
    variant: Option<&'static str>,
    /// For an object: where its first entry starts in the output, where
    /// its entries start on the entry stack and where its keys' texts
    /// start. `None` for a sequence.
    object: Option<(usize, usize, usize)>,
    first: bool,
    /// A map key waiting for its value.
    key: Option<Key>,
}

impl<'a> Compound<'a> {
    fn sequence(buffers: &'a mut Buffers, variant: Option<&'static str>) -> Self {
        open_variant(&mut buffers.out, variant);
        buffers.out.push(b'[');
        Self {
            buffers,
            variant,
            object: None,
            first: true,
            key: None,
        }
    }

    fn object(buffers: &'a mut Buffers, variant: Option<&'static str>) -> Self {
        open_variant(&mut buffers.out, variant);
        buffers.out.push(b'{');
        let object = Some((buffers.out.len(), buffers.entries.len(), buffers.keys.len()));
        Self {
            buffers,
            variant,
            object,
            first: true,
            key: None,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !std::mem::take(&mut self.first) {
            self.buffers.out.push(b',');
        }
        value.serialize(Canon {
            buffers: &mut *self.buffers,
        })
    }

    fn entry<T: Serialize + ?Sized>(&mut self, key: Key, value: &T) -> Result<(), Error> {
        if !std::mem::take(&mut self.first) {
            self.buffers.out.push(b',');
        }
        let begin = self.buffers.out.len();
        string(&mut self.buffers.out, key.text(&self.buffers.keys));
        self.buffers.out.push(b':');
        value.serialize(Canon {
            buffers: &mut *self.buffers,
        })?;
        let end = self.buffers.out.len();
        self.buffers.entries.push((key, begin..end));
        Ok(())
    }

    fn close(self) -> Result<(), Error> {
        match self.object {
            None => self.buffers.out.push(b']'),
            Some((start, base, keys)) => {
                sort_entries(self.buffers, start, base);
                self.buffers.keys.truncate(keys);
                self.buffers.out.push(b'}');
            }
        }
        if self.variant.is_some() {
            self.buffers.out.push(b'}');
        }
        Ok(())
    }
}

/// Rewrites the entries of the object whose text starts at `start` (its
/// entries from `base` on the stack) in key order, the last of equal keys
/// winning, unless they already are; then takes them off the stack.
fn sort_entries(buffers: &mut Buffers, start: usize, base: usize) {
    let Buffers {
        out,
        entries,
        keys,
        scratch,
    } = buffers;
    let keys = keys.as_str();
    let object = &mut entries[base..];
    if !object
        .windows(2)
        .all(|pair| pair[0].0.text(keys) < pair[1].0.text(keys))
    {
        // A stable sort keeps equal keys in the order written.
        object.sort_by(|a, b| a.0.text(keys).cmp(b.0.text(keys)));
        scratch.clear();
        scratch.extend_from_slice(&out[start..]);
        out.truncate(start);
        let mut first = true;
        for (index, (key, range)) in object.iter().enumerate() {
            if object
                .get(index + 1)
                .is_some_and(|next| next.0.text(keys) == key.text(keys))
            {
                continue;
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(&scratch[range.start - start..range.end - start]);
        }
    }
    entries.truncate(base);
}

fn open_variant(out: &mut Vec<u8>, variant: Option<&'static str>) {
    if let Some(variant) = variant {
        out.push(b'{');
        string(out, variant);
        out.push(b':');
    }
}

/// A map key as text, appended to `keys`: a string, or a number or boolean
/// written as text (as a `Value` map keys them).
fn key_text<T: Serialize + ?Sized>(key: &T, keys: &mut String) -> Result<Key, Error> {
    let start = keys.len();
    if key.serialize(StrKey { keys: &mut *keys }).is_err() {
        keys.truncate(start);
        match serde_json::to_value(key)? {
            serde_json::Value::String(text) => keys.push_str(&text),
            serde_json::Value::Number(number) => keys.push_str(&number.to_string()),
            serde_json::Value::Bool(flag) => keys.push_str(if flag { "true" } else { "false" }),
            _ => return Err(ser::Error::custom("key must be a string")),
        }
    }
    Ok(Key::Text(start..keys.len()))
}

/// Takes a map key that is a string (or wraps one) as it is; refuses any
/// other, which [`key_text`] then writes through a `Value`.
struct StrKey<'a> {
    keys: &'a mut String,
}

/// The methods of [`StrKey`] that refuse their value.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ok, Error> {
            Err(ser::Error::custom("not a string key"))
        }
    )*};
}

impl ser::Serializer for StrKey<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.keys.push_str(v);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(ser::Error::custom("not a string key"))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(ser::Error::custom("not a string key"))
    }
    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_i128(i128) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_u128(u128) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

/// Implements a compound trait whose parts are elements (`$method(value)`)
/// or named fields (`$method(key, value)`) by [`Compound::element`] and
/// [`Compound::entry`]; every one ends with [`Compound::close`].
macro_rules! compound {
    ($($trait:ident :: $method:ident),*; elements) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
    ($($trait:ident :: $method:ident),*; fields) => {$(
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.entry(Key::Field(key), value)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field;
    elements
);
compound!(
    SerializeStruct::serialize_field,
    SerializeStructVariant::serialize_field;
    fields
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key_text(key, &mut self.buffers.keys)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("a map value came without its key"))?;
        self.entry(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<'a> ser::Serializer for Canon<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    /// As a `Value` holds it: widened to `f64` first.
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        scalar(&mut self.buffers.out, &v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        string(&mut self.buffers.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        scalar(&mut self.buffers.out, v)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.buffers.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        string(&mut self.buffers.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        open_variant(&mut self.buffers.out, Some(variant));
        value.serialize(Canon {
            buffers: &mut *self.buffers,
        })?;
        self.buffers.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(Compound::sequence(self.buffers, None))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>, Error> {
        Ok(Compound::sequence(self.buffers, None))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        Ok(Compound::sequence(self.buffers, None))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        Ok(Compound::sequence(self.buffers, Some(variant)))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(Compound::object(self.buffers, None))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>, Error> {
        Ok(Compound::object(self.buffers, None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, Error> {
        Ok(Compound::object(self.buffers, Some(variant)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::json;

    /// The canonical text through a `Value`, as the runtime wrote it before.
    fn via_value<T: Serialize>(value: &T) -> String {
        serde_json::to_string(&serde_json::to_value(value).unwrap()).unwrap()
    }

    fn check<T: Serialize>(value: &T) {
        assert_eq!(super::to_string(value).unwrap(), via_value(value));
    }

    /// Written after other text (the runtime writes an operation's
    /// payloads one after another into one buffer), an object whose keys
    /// come unsorted is sorted in place and the text before it is kept.
    #[test]
    fn write_appends_after_what_the_buffer_holds() {
        #[derive(Serialize)]
        struct Unsorted {
            zeta: u8,
            alpha: BTreeMap<&'static str, Vec<u8>>,
        }
        let value = Unsorted {
            zeta: 1,
            alpha: BTreeMap::from([("b", vec![2]), ("a", vec![])]),
        };
        let mut out = br#"{"before":true}"#.to_vec();
        super::write(&value, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(r#"{{"before":true}}{}"#, via_value(&value))
        );
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        New(u8),
        Tuple(i32, String),
        Named { zeta: bool, alpha: Option<f64> },
    }

    #[derive(Serialize)]
    struct Unsorted {
        work_key: String,
        envelope: BTreeMap<String, String>,
        cost: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        nested: Vec<Shape>,
        alpha: (u8, &'static str),
        #[serde(flatten)]
        flat: BTreeMap<String, i64>,
        f: f32,
        nan: f64,
        text: &'static str,
        value: serde_json::Value,
    }

    #[test]
    fn typed_values_write_what_their_value_writes() {
        let value = Unsorted {
            work_key: "github:acme/w:pr:1".to_string(),
            envelope: BTreeMap::from([("b".into(), "x".into()), ("a".into(), "\"q\"\n".into())]),
            cost: 0.002,
            skipped: None,
            nested: vec![
                Shape::Unit,
                Shape::New(3),
                Shape::Tuple(-1, "é\u{1}".into()),
                Shape::Named {
                    zeta: true,
                    alpha: Some(1e21),
                },
            ],
            alpha: (1, "one"),
            flat: BTreeMap::from([("cost".into(), 9), ("aa".into(), 1)]),
            f: 0.1,
            nan: f64::NAN,
            text: "tab\tand \\ slash /",
            value: json!({"z": [1, {"y": null, "b": 2.5}], "a": "x"}),
        };
        check(&value);
        check(&json!([]));
        check(&json!({}));
        check(&BTreeMap::from([(3u32, "three"), (10, "ten")]));
        check(&Option::<u8>::None);
        check(&"just a string");
    }

    #[test]
    fn a_repeated_map_key_keeps_its_last_value_as_a_value_map_does() {
        struct Repeated;
        impl Serialize for Repeated {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("b", &1)?;
                map.serialize_entry("a", &2)?;
                map.serialize_entry("b", &3)?;
                map.end()
            }
        }
        assert_eq!(super::to_string(&Repeated).unwrap(), r#"{"a":2,"b":3}"#);
        check(&Repeated);
    }
}
