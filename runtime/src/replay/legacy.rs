//! Version 2 capture bundles: one JSON document, its seal last, read whole
//! (at most [`MAX_BUNDLE_BYTES`]) after a probe of its `capture_version`.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{malformed, ReplayError, MAX_BUNDLE_BYTES};
use crate::capture::{CaptureBundle, CAPTURE_VERSION_2};

/// Visitor methods that accept every JSON scalar, as `Value` does.
macro_rules! scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// Reads a version 2 bundle from JSON text, checking its version before
/// anything else.
pub(super) fn parse_v2(text: &str) -> Result<CaptureBundle, ReplayError> {
    if text.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(ReplayError::Malformed {
            line: 1,
            column: 1,
            message: format!(
                "the bundle is {} bytes, expected at most {MAX_BUNDLE_BYTES}",
                text.len()
            ),
        });
    }
    let probe: VersionProbe = serde_json::from_str(text).map_err(|e| malformed(&e))?;
    if let Some(found) = probe.0 {
        if found.as_str() != Some(CAPTURE_VERSION_2) {
            let found = found
                .as_str()
                .map_or_else(|| found.to_string(), str::to_string);
            return Err(ReplayError::UnsupportedVersion { found });
        }
    }
    let sealed: crate::seal::SealedBundle =
        serde_json::from_str(text).map_err(|e| malformed(&e))?;
    CaptureBundle::try_from(sealed).map_err(|error| ReplayError::Seal {
        message: error.to_string(),
    })
}

/// The top-level `capture_version` member of a JSON text (the last one, as
/// in a `serde_json::Value`), read without building anything else.
///
/// It walks the text with the same parser calls a `Value` would make
/// (`deserialize_any` for values, `deserialize_str` for keys), so a text
/// fails here exactly where and how it would fail to become a `Value`:
/// syntax, nesting depth, numbers out of range, trailing characters.
struct VersionProbe(Option<serde_json::Value>);

impl<'de> Deserialize<'de> for VersionProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = VersionProbe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VersionProbe, A::Error> {
                let mut found = None;
                while let Some(IsVersionKey(is_version)) = map.next_key()? {
                    if is_version {
                        found = Some(map.next_value()?);
                    } else {
                        map.next_value::<Skim>()?;
                    }
                }
                Ok(VersionProbe(found))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<VersionProbe, A::Error> {
                skim_seq(seq).map(|()| VersionProbe(None))
            }
            scalars!(VersionProbe(None));
        }
        deserializer.deserialize_any(Top)
    }
}

/// Whether a map key is `capture_version`.
struct IsVersionKey(bool);

impl<'de> Deserialize<'de> for IsVersionKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = IsVersionKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<IsVersionKey, E> {
                Ok(IsVersionKey(key == "capture_version"))
            }
        }
        deserializer.deserialize_str(Key)
    }
}

/// Any JSON value, checked and dropped as it is read.
struct Skim;

impl<'de> Deserialize<'de> for Skim {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Skim;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skim, A::Error> {
                while map.next_key::<IsVersionKey>()?.is_some() {
                    map.next_value::<Skim>()?;
                }
                Ok(Skim)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skim, A::Error> {
                skim_seq(seq).map(|()| Skim)
            }
            scalars!(Skim);
        }
        deserializer.deserialize_any(Any)
    }
}

fn skim_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skim>()?.is_some() {}
    Ok(())
}
