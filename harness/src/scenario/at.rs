//! Scenario times as written: an offset from `start` with units, or an
//! absolute RFC 3339 UTC timestamp; and the range every resolved time must lie in.

use std::fmt;

use rehearse_runtime::duration::DurationError;
use rehearse_runtime::{format_ms, parse_rfc3339_ms, Millis, TimeError};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The earliest scenario time: 1970-01-01T00:00:00Z. Ids embed scenario
/// time as unsigned milliseconds, so earlier times cannot be represented.
pub const MIN_TIME_MS: i64 = 0;

/// The latest scenario time: 9999-12-31T23:59:59.999Z, the last instant
/// RFC 3339 can write.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// An example timestamp for error messages.
pub(crate) const EXAMPLE_TIME: &str = "2026-04-24T12:00:00Z";

/// When something happens, as the scenario wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum At {
    /// An offset from the scenario's `start` (`0s`, `1h30m`).
    Offset(Millis),
    /// An absolute time, in milliseconds since the epoch (written as RFC 3339 UTC).
    Time(i64),
}

impl At {
    /// The absolute time in milliseconds, or `None` when `start` plus the
    /// offset overflows.
    pub fn resolve(self, start_ms: i64) -> Option<i64> {
        match self {
            Self::Offset(offset) => start_ms.checked_add(i64::try_from(offset.0).ok()?),
            Self::Time(ms) => Some(ms),
        }
    }

    /// Parses an offset with units or an RFC 3339 UTC timestamp.
    pub fn parse(text: &str) -> Result<Self, AtError> {
        let trimmed = text.trim();
        if looks_like_timestamp(trimmed) {
            return Ok(parse_utc(trimmed).map(Self::Time)?);
        }
        Millis::parse(trimmed)
            .map(Self::Offset)
            .map_err(AtError::Offset)
    }
}

/// Why a step's `at` could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AtError {
    #[error("{0}, or an RFC 3339 UTC timestamp such as `{EXAMPLE_TIME}`")]
    Offset(DurationError),
    #[error(transparent)]
    Time(#[from] UtcError),
}

/// Why a timestamp is not one a scenario may give.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UtcError {
    #[error("{0}, expected an RFC 3339 UTC timestamp such as `{EXAMPLE_TIME}`")]
    Invalid(TimeError),
    #[error("timestamp `{0}` is not in UTC, expected a `Z` suffix such as `{EXAMPLE_TIME}`")]
    NotUtc(String),
    #[error("timestamp `{text}` is {range}")]
    Range { text: String, range: OutOfRange },
}

/// A time the outputs cannot write; the message is a fragment to follow
/// "… is".
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "out of range, expected a time from {} to {}",
    format_ms(MIN_TIME_MS),
    format_ms(MAX_TIME_MS)
)]
pub struct OutOfRange;

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Offset(offset) => write!(f, "{offset}"),
            Self::Time(ms) => f.write_str(&format_ms(*ms)),
        }
    }
}

/// A timestamp starts with a four-digit year and a dash; an offset starts
/// with digits and a unit, so the two never look alike.
fn looks_like_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() > 4 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-'
}

/// Parses an RFC 3339 timestamp that must be in UTC and within
/// [`MIN_TIME_MS`]..=[`MAX_TIME_MS`].
/// A timestamp in UTC ends with `Z` or a zero offset, as [`parse_utc`] reads it.
pub(crate) const UTC_PATTERN: &str = "([zZ]|[+-]00:00)$";

pub fn parse_utc(text: &str) -> Result<i64, UtcError> {
    let ms = parse_rfc3339_ms(text).map_err(UtcError::Invalid)?;
    let upper = text.to_ascii_uppercase();
    if !(upper.ends_with('Z') || upper.ends_with("+00:00") || upper.ends_with("-00:00")) {
        return Err(UtcError::NotUtc(text.to_string()));
    }
    check_range(ms).map_err(|range| UtcError::Range {
        text: text.to_string(),
        range,
    })?;
    Ok(ms)
}

/// Checks that a resolved time is one the outputs can write.
pub(crate) fn check_range(ms: i64) -> Result<(), OutOfRange> {
    if (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        Ok(())
    } else {
        Err(OutOfRange)
    }
}

impl Serialize for At {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = At;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "an offset from `start` such as `10s` or an RFC 3339 UTC timestamp such as `{EXAMPLE_TIME}`"
                )
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<At, E> {
                At::parse(value).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<At, E> {
                if value == 0 {
                    Ok(At::Offset(Millis(0)))
                } else {
                    Err(E::custom(format!(
                        "offset `{value}` has no unit, expected an offset such as `{value}s` or `{value}ms`"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<At, E> {
                if value < 0 {
                    Err(E::custom(format!(
                        "negative offset `{value}`, expected an offset from `start` such as `10s`"
                    )))
                } else {
                    self.visit_u64(value.unsigned_abs())
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for At {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "At".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An offset from `start` with units (`0s`, `250ms`, `1h30m`) or an RFC 3339 UTC timestamp (`2026-04-24T12:00:00Z`).",
            "anyOf": [
                { "type": "string", "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$" },
                { "type": "string", "format": "date-time", "pattern": UTC_PATTERN },
                { "const": 0 },
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_timestamps_parse() {
        assert_eq!(At::parse("1h30m"), Ok(At::Offset(Millis(5_400_000))));
        let ms = parse_rfc3339_ms("2026-04-24T12:00:01Z").unwrap();
        assert_eq!(At::parse("2026-04-24T12:00:01Z"), Ok(At::Time(ms)));
        assert_eq!(At::Time(ms).resolve(0), Some(ms));
        assert_eq!(At::Offset(Millis(5)).resolve(10), Some(15));
        assert_eq!(At::Offset(Millis(u64::MAX)).resolve(10), None);
    }

    #[test]
    fn non_utc_and_out_of_range_times_are_refused() {
        assert_eq!(
            parse_utc("2026-04-24T12:00:00+02:00")
                .unwrap_err()
                .to_string(),
            "timestamp `2026-04-24T12:00:00+02:00` is not in UTC, expected a `Z` suffix such as `2026-04-24T12:00:00Z`"
        );
        assert!(parse_utc("1969-12-31T23:59:59Z")
            .unwrap_err()
            .to_string()
            .contains("is out of range"));
        assert_eq!(
            At::parse("5x").unwrap_err().to_string(),
            "unknown unit `x` in duration `5x`, expected a duration such as `250ms`, `10s`, `5m`, `2h` or `1d`, or an RFC 3339 UTC timestamp such as `2026-04-24T12:00:00Z`"
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["0s", "1m30s", "2026-04-24T12:00:00.25Z"] {
            let at = At::parse(text).unwrap();
            assert_eq!(at.to_string(), text);
            assert_eq!(At::parse(&at.to_string()), Ok(at));
        }
    }
}
