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

use std::borrow::Cow;
use std::ops::Range;

use serde::ser::{self, Serialize};
use serde_json::Error;

/// The canonical JSON of `value`, appended to `out`.
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    let mut buffers = Buffers {
        out: std::mem::take(out),
        ..Buffers::default()
    };
    let written = value.serialize(Canon {
        buffers: &mut buffers,
    });
    *out = buffers.out;
    written
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

/// The canonical JSON of `value` as shared text, written in a buffer this
/// thread keeps, so that encoding a payload allocates only its text.
pub fn to_shared_str<T: Serialize + ?Sized>(value: &T) -> Result<std::sync::Arc<str>, Error> {
    thread_local! {
        static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::new(Buffers::default());
    }
    BUFFERS.with(|buffers| {
        // A nested call (a payload serialised while serialising another;
        // none exists today) gets buffers of its own rather than a second
        // borrow.
        let mut fresh = Buffers::default();
        let mut borrowed = buffers.try_borrow_mut();
        let buffers = match borrowed.as_deref_mut() {
            Ok(buffers) => buffers,
            Err(_) => &mut fresh,
        };
        buffers.out.clear();
        buffers.entries.clear();
        value.serialize(Canon {
            buffers: &mut *buffers,
        })?;
        let text = std::str::from_utf8(&buffers.out).expect("serde_json writes UTF-8");
        Ok(std::sync::Arc::from(text))
    })
}

/// Writes a scalar as serde_json does.
fn scalar<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    serde_json::to_writer(out, value)
}

/// One entry of an object being written: its key, and the range of its
/// `"key":value` text in the output.
type Entry = (Cow<'static, str>, Range<usize>);

/// Everything the serializer writes into: the output, the entries of the
/// objects still open (each object's above its parent's) and a scratch
/// buffer for putting an object's entries in order.
#[derive(Default)]
struct Buffers {
    out: Vec<u8>,
    entries: Vec<Entry>,
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
    /// For an object: where its first entry starts in the output, and
    /// where its entries start on the entry stack. `None` for a sequence.
    object: Option<(usize, usize)>,
    first: bool,
    /// A map key waiting for its value.
    key: Option<Cow<'static, str>>,
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
        let object = Some((buffers.out.len(), buffers.entries.len()));
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

    fn entry<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Error> {
        if !std::mem::take(&mut self.first) {
            self.buffers.out.push(b',');
        }
        let begin = self.buffers.out.len();
        scalar(&mut self.buffers.out, key.as_ref())?;
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
            Some((start, base)) => {
                sort_entries(self.buffers, start, base);
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
        scratch,
    } = buffers;
    let object = &mut entries[base..];
    if !object.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        // A stable sort keeps equal keys in the order written.
        object.sort_by(|a, b| a.0.cmp(&b.0));
        scratch.clear();
        scratch.extend_from_slice(&out[start..]);
        out.truncate(start);
        let mut first = true;
        for (index, (key, range)) in object.iter().enumerate() {
            if object.get(index + 1).is_some_and(|next| next.0 == *key) {
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
        // A variant name is an identifier: writing it cannot fail.
        scalar(out, variant).expect("a variant name serialises");
        out.push(b':');
    }
}

/// A map key as text: a string, or a number or boolean written as text
/// (as a `Value` map keys them).
fn key_text<T: Serialize + ?Sized>(key: &T) -> Result<Cow<'static, str>, Error> {
    match serde_json::to_value(key)? {
        serde_json::Value::String(text) => Ok(Cow::Owned(text)),
        serde_json::Value::Number(number) => Ok(Cow::Owned(number.to_string())),
        serde_json::Value::Bool(flag) => Ok(Cow::Owned(flag.to_string())),
        _ => Err(ser::Error::custom("key must be a string")),
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
                self.entry(Cow::Borrowed(key), value)
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
        self.key = Some(key_text(key)?);
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
        scalar(&mut self.buffers.out, v)
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
        scalar(&mut self.buffers.out, variant)
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
