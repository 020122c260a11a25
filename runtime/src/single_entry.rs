//! Values written as a map with exactly one entry (`{fail: KIND}`,
//! `{of: OWNER}`, `{claim: {...}}`), some of which may also be a plain
//! string (`completed`, a lease token).
//!
//! serde_yaml 0.9 reads externally tagged enums only from `!tags`, so these
//! types are read and written by hand; the helpers here are that code, once.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess};
use serde::ser::SerializeMap;
use serde::{Deserializer, Serialize, Serializer};

/// Writes `{key: value}`.
pub(crate) fn serialize<S: Serializer, V: Serialize + ?Sized>(
    serializer: S,
    key: &str,
    value: &V,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

/// A type read from a plain string or from a map with exactly one entry.
pub(crate) trait StringOrEntry: Sized {
    /// What the value is called in errors: `unknown outcome `x``.
    const NOUN: &'static str;
    /// What a second key stands beside in errors: `the outcome`, `` `of` ``.
    const BESIDE: &'static str;
    /// The end of every error: `expected ...`.
    const EXPECTED: &'static str;

    /// The value a plain string names; `None` for an unknown one.
    fn from_str(value: &str) -> Option<Self>;

    /// Reads the value of the entry `key` from `map`; `Ok(None)` for a key
    /// the type does not have (its value is then not read).
    fn from_entry<'de, A: MapAccess<'de>>(key: &str, map: &mut A)
        -> Result<Option<Self>, A::Error>;
}

/// Reads a [`StringOrEntry`] type, refusing unknown strings and keys, an
/// empty map and a second key.
pub(crate) fn deserialize<'de, T: StringOrEntry, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_any(EntryVisitor(PhantomData))
}

struct EntryVisitor<T>(PhantomData<T>);

fn unknown<T: StringOrEntry, E: de::Error>(name: &str) -> E {
    E::custom(format!("unknown {} `{name}`, {}", T::NOUN, T::EXPECTED))
}

impl<'de, T: StringOrEntry> de::Visitor<'de> for EntryVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTED.trim_start_matches("expected "))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        T::from_str(value).ok_or_else(|| unknown::<T, E>(value))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "empty {}, {}",
                T::NOUN,
                T::EXPECTED
            )));
        };
        let value = T::from_entry(&key, &mut map)?.ok_or_else(|| unknown::<T, A::Error>(&key))?;
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "unexpected `{extra}` beside {}, {}",
                T::BESIDE,
                T::EXPECTED
            )));
        }
        Ok(value)
    }
}

/// An enum written as a map with exactly one entry: the variant's name and
/// its body (`{trigger: {...}}`, `{claim: {...}}`).
pub(crate) trait OneEntry: Sized {
    /// What the key is called in errors: `step kind`, `process operation`.
    const NOUN: &'static str;

    /// The names the key may take, as a list for errors: "`start`, ...".
    fn expected() -> String;

    /// Reads the body of variant `kind` from `map`'s next value.
    fn next_body<'de, A: MapAccess<'de>>(kind: &str, map: &mut A) -> Result<Self, A::Error>;
}

/// Reads a [`OneEntry`] enum, refusing an empty map and a second key.
pub(crate) fn deserialize_one<'de, T: OneEntry, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_map(OneEntryVisitor(PhantomData))
}

struct OneEntryVisitor<T>(PhantomData<T>);

impl<'de, T: OneEntry> de::Visitor<'de> for OneEntryVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map with exactly one {}", T::NOUN)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let Some(kind) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "missing {}, expected one of {}",
                T::NOUN,
                T::expected()
            )));
        };
        let value = T::next_body(&kind, &mut map)?;
        if let Some(second) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "two {}s `{kind}` and `{second}` in one step, expected exactly one",
                T::NOUN
            )));
        }
        Ok(value)
    }
}

/// Writes everything a [`OneEntry`] enum `$ty` needs from one table of its
/// variants, `Variant(Body) = "key",` in the order the format lists them:
/// `pub const $kinds` (the keys), `pub fn $expected()` (the keys as a list
/// for errors), `Serialize`, `kind()`, `next_body()` (refusing an unknown
/// key as an unknown `$noun`), [`OneEntry`] and `Deserialize`.
macro_rules! one_entry_enum {
    (
        $ty:ident, $kinds:ident, $expected:ident, $noun:literal;
        $($variant:ident($body:ty) = $name:literal,)*
    ) => {
        /// The key names, in the order the format lists them.
        pub const $kinds: [&str; [$($name),*].len()] = [$($name),*];

        /// The key names as a list for error messages: "`a`, `b`, ...".
        pub fn $expected() -> String {
            $kinds
                .iter()
                .map(|kind| format!("`{kind}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant(body) => $crate::single_entry::serialize(serializer, $name, body),)*
                }
            }
        }

        impl $ty {
            /// The key this value is written under (`trigger`, `claim`, ...).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)*
                }
            }

            /// Reads the body of the variant keyed `kind` from `map`'s next value.
            pub fn next_body<'de, A: serde::de::MapAccess<'de>>(
                kind: &str,
                map: &mut A,
            ) -> Result<Self, A::Error> {
                match kind {
                    $($name => Ok(Self::$variant(map.next_value::<$body>()?)),)*
                    other => Err(serde::de::Error::custom(format!(
                        "unknown {} `{other}`, expected one of {}",
                        $noun,
                        $expected()
                    ))),
                }
            }
        }

        impl $crate::single_entry::OneEntry for $ty {
            const NOUN: &'static str = $noun;

            fn expected() -> String {
                $expected()
            }

            fn next_body<'de, A: serde::de::MapAccess<'de>>(
                kind: &str,
                map: &mut A,
            ) -> Result<Self, A::Error> {
                <$ty>::next_body(kind, map)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::single_entry::deserialize_one(deserializer)
            }
        }
    };
}
pub(crate) use one_entry_enum;
