//! Durations written the way people write them: `250ms`, `10s`, `5m`, `2h`,
//! `1d`, or a combination such as `1h30m`, stored as whole milliseconds.

use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration in milliseconds, written with units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// What a duration's text should look like, said by every error about one.
const EXPECTED: &str = "expected a duration such as `250ms`, `10s`, `5m`, `2h` or `1d`";

/// Why a duration could not be read; each names the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration, {EXPECTED}")]
    Empty,
    #[error("invalid duration `{0}`, {EXPECTED}")]
    Invalid(String),
    #[error("duration `{0}` is too large")]
    TooLarge(String),
    #[error("fractional number in duration `{0}`, expected whole numbers of units such as `1s500ms` for one and a half seconds")]
    Fraction(String),
    #[error("duration `{0}` has no unit, {EXPECTED}")]
    NoUnit(String),
    #[error("unknown unit `{unit}` in duration `{text}`, {EXPECTED}")]
    UnknownUnit { unit: String, text: String },
}

impl Millis {
    /// The duration in milliseconds, as a signed scenario offset.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// Parses `250ms`, `10s`, `5m`, `2h`, `1d` or a sequence of them (`1h30m`).
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(DurationError::Empty);
        }
        let text = || text.to_string();
        let mut total: u64 = 0;
        let mut rest = trimmed;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(DurationError::Invalid(text()));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| DurationError::TooLarge(text()))?;
            rest = &rest[digits..];
            if rest.starts_with('.') {
                return Err(DurationError::Fraction(text()));
            }
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..unit_len];
            let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
                return Err(if unit.is_empty() {
                    DurationError::NoUnit(text())
                } else {
                    DurationError::UnknownUnit {
                        unit: unit.to_string(),
                        text: text(),
                    }
                });
            };
            rest = &rest[unit_len..];
            total = number
                .checked_mul(scale)
                .and_then(|ms| total.checked_add(ms))
                .filter(|ms| *ms <= i64::MAX as u64)
                .ok_or_else(|| DurationError::TooLarge(text()))?;
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Millis {
    /// Writes the duration with the largest units that divide it exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, scale) in UNITS {
            if rest >= scale {
                write!(f, "{}{unit}", rest / scale)?;
                rest %= scale;
            }
        }
        Ok(())
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `250ms`, `10s`, `5m`, `2h` or `1d`")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Millis, E> {
                Millis::parse(value).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Millis, E> {
                if value == 0 {
                    Ok(Millis(0))
                } else {
                    Err(E::custom(format!(
                        "duration `{value}` has no unit, expected a duration such as `{value}ms` or `{value}s`"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Millis, E> {
                if value < 0 {
                    Err(E::custom(format!(
                        "negative duration `{value}`, expected a duration such as `10s`"
                    )))
                } else {
                    self.visit_u64(value.unsigned_abs())
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The schema of an optional duration that must not be zero (`lease_ttl`,
/// `rate_window`): the duration pattern, less any spelling of zero.
pub fn positive_duration_schema(_generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A positive duration with units: `250ms`, `10s`, `5m`, `2h`, `1d`, or a sequence such as `1h30m`.",
        "type": "string",
        "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$",
        "not": { "pattern": "^\\s*(0+(ms|s|m|h|d))+\\s*$" },
    })
}

impl JsonSchema for Millis {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    /// A string with units, or the bare number 0, as the deserializer accepts.
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration with units: `250ms`, `10s`, `5m`, `2h`, `1d`, or a sequence such as `1h30m`.",
            "anyOf": [
                { "type": "string", "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$" },
                { "const": 0 },
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sequences() {
        assert_eq!(Millis::parse("250ms"), Ok(Millis(250)));
        assert_eq!(Millis::parse("10s"), Ok(Millis(10_000)));
        assert_eq!(Millis::parse("5m"), Ok(Millis(300_000)));
        assert_eq!(Millis::parse("1h30m"), Ok(Millis(5_400_000)));
        assert_eq!(Millis::parse("1d"), Ok(Millis(86_400_000)));
    }

    #[test]
    fn displays_canonically() {
        for text in ["0s", "250ms", "10s", "5m", "1h30m", "1d2h3m4s5ms"] {
            assert_eq!(Millis::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Millis(90_000).to_string(), "1m30s");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "5",
            "5x",
            "m5",
            "-5s",
            "5 s x",
            "99999999999999999999d",
            "1.5s",
        ] {
            assert!(Millis::parse(bad).is_err(), "{bad} parsed");
        }
    }
}
