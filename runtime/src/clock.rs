//! Scenario time: milliseconds since the Unix epoch, formatted as RFC 3339 UTC.
//!
//! The runtime never asks the operating system what time it is; every
//! operation receives `now_ms` from its caller.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds in one UTC hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in one UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// Formats scenario milliseconds as RFC 3339 in UTC (`2026-04-24T12:00:00Z`).
///
/// Sub-second precision is printed only when present, so whole seconds stay
/// short and stable.
pub fn format_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(at) => at.format(&Rfc3339).unwrap_or_else(|_| format!("@{ms}ms")),
        Err(_) => format!("@{ms}ms"),
    }
}

/// Why a moment could not be read, in either of its two forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid RFC 3339 timestamp `{value}`: {source}")]
    Rfc3339 {
        value: String,
        source: time::error::Parse,
    },
    #[error("timestamp `{0}` is out of range")]
    OutOfRange(String),
    #[error("a time tuple has nine integers: year, ordinal day, hour, minute, second, nanosecond, offset hours, offset minutes, offset seconds")]
    TupleLength,
    #[error("expected an RFC 3339 timestamp or a nine-part time tuple, found {0}")]
    NotATime(serde_json::Value),
    #[error("{what} {value} is out of range")]
    Part { what: &'static str, value: i64 },
    #[error("year {year} and ordinal day {ordinal} are not a date")]
    NotADate { year: i64, ordinal: i64 },
    #[error("{hour}:{minute}:{second} and {nanosecond} ns are not a time of day")]
    NotATimeOfDay {
        hour: i64,
        minute: i64,
        second: i64,
        nanosecond: i64,
    },
    #[error("invalid offset: {0}")]
    Offset(time::error::ComponentRange),
    #[error("the time is out of range")]
    TupleOutOfRange,
}

/// Parses an RFC 3339 timestamp into scenario milliseconds.
pub fn parse_rfc3339_ms(value: &str) -> Result<i64, TimeError> {
    let at = OffsetDateTime::parse(value, &Rfc3339).map_err(|source| TimeError::Rfc3339 {
        value: value.to_string(),
        source,
    })?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).map_err(|_| TimeError::OutOfRange(value.to_string()))
}

/// The start of the UTC day that contains `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// The start of the UTC hour that contains `ms`.
pub fn hour_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// A moment written as the `time` crate's compact serde form of an
/// `OffsetDateTime`: `[year, ordinal day, hour, minute, second, nanosecond,
/// offset hours, offset minutes, offset seconds]`, always in UTC here
/// (`[2026,114,12,0,0,0,0,0,0]`). This is the one form the modelled
/// runtime's status fold reads a value event's `occurred_at` in, so the
/// runtime writes it; it reads RFC 3339 too (docs/SCENARIOS.md, "Log
/// interchange").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeTuple(pub i64);

impl TimeTuple {
    /// The moment in scenario milliseconds.
    pub fn ms(self) -> i64 {
        self.0
    }

    /// The nine parts, or `None` for a moment `time` cannot represent.
    pub fn parts(self) -> Option<[i64; 9]> {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()?;
        Some([
            i64::from(at.year()),
            i64::from(at.ordinal()),
            i64::from(at.hour()),
            i64::from(at.minute()),
            i64::from(at.second()),
            i64::from(at.nanosecond()),
            0,
            0,
            0,
        ])
    }

    /// Reads either form: an RFC 3339 string or the nine-part tuple.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, TimeError> {
        match value {
            serde_json::Value::String(text) => parse_rfc3339_ms(text).map(Self),
            serde_json::Value::Array(items) => {
                let parts: Vec<i64> = items.iter().filter_map(serde_json::Value::as_i64).collect();
                let parts: [i64; 9] = parts.try_into().map_err(|_| TimeError::TupleLength)?;
                tuple_ms(parts).map(Self)
            }
            other => Err(TimeError::NotATime(other.clone())),
        }
    }
}

impl serde::Serialize for TimeTuple {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let parts = self.parts().ok_or_else(|| {
            serde::ser::Error::custom(format!("time {}ms is out of range", self.0))
        })?;
        parts.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for TimeTuple {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Self::from_value(&value).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for TimeTuple {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeTuple".into()
    }

    /// The tuple the runtime writes, or the RFC 3339 string it also reads.
    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A moment as the `time` crate's compact tuple [year, ordinal day, hour, minute, second, nanosecond, offset hours, offset minutes, offset seconds], written in UTC; an RFC 3339 string is read too.",
            "anyOf": [
                { "type": "array", "items": { "type": "integer" }, "minItems": 9, "maxItems": 9 },
                { "type": "string", "format": "date-time" },
            ],
        })
    }
}

/// Milliseconds since the epoch of a compact `OffsetDateTime` tuple; the
/// error says which part is out of range.
pub fn tuple_ms(parts: [i64; 9]) -> Result<i64, TimeError> {
    let [year, ordinal, hour, minute, second, nanosecond, off_h, off_m, off_s] = parts;
    let small = |value: i64, what: &'static str| -> Result<i8, TimeError> {
        i8::try_from(value).map_err(|_| TimeError::Part { what, value })
    };
    let date = i32::try_from(year)
        .ok()
        .zip(u16::try_from(ordinal).ok())
        .and_then(|(year, ordinal)| time::Date::from_ordinal_date(year, ordinal).ok())
        .ok_or(TimeError::NotADate { year, ordinal })?;
    let clock = u8::try_from(hour)
        .ok()
        .zip(u8::try_from(minute).ok())
        .zip(u8::try_from(second).ok())
        .zip(u32::try_from(nanosecond).ok())
        .and_then(|(((h, m), s), n)| time::Time::from_hms_nano(h, m, s, n).ok())
        .ok_or(TimeError::NotATimeOfDay {
            hour,
            minute,
            second,
            nanosecond,
        })?;
    let offset = time::UtcOffset::from_hms(
        small(off_h, "offset hours")?,
        small(off_m, "offset minutes")?,
        small(off_s, "offset seconds")?,
    )
    .map_err(TimeError::Offset)?;
    let at = time::PrimitiveDateTime::new(date, clock).assume_offset(offset);
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| TimeError::TupleOutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let ms = parse_rfc3339_ms("2026-04-24T12:30:00Z").unwrap();
        assert_eq!(format_ms(ms), "2026-04-24T12:30:00Z");
        assert_eq!(format_ms(ms + 250), "2026-04-24T12:30:00.25Z");
    }

    #[test]
    fn windows_are_utc_days_and_hours() {
        let ms = parse_rfc3339_ms("2026-04-24T12:30:00Z").unwrap();
        assert_eq!(format_ms(day_start(ms)), "2026-04-24T00:00:00Z");
        assert_eq!(format_ms(hour_start(ms)), "2026-04-24T12:00:00Z");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_rfc3339_ms("yesterday").is_err());
    }

    #[test]
    fn time_tuples_write_the_compact_form_and_read_both() {
        let ms = parse_rfc3339_ms("2026-04-24T12:00:00.25Z").unwrap();
        let written = serde_json::to_string(&TimeTuple(ms)).unwrap();
        assert_eq!(written, "[2026,114,12,0,0,250000000,0,0,0]");
        let back: TimeTuple = serde_json::from_str(&written).unwrap();
        assert_eq!(back.ms(), ms);
        let text: TimeTuple = serde_json::from_str("\"2026-04-24T12:00:00.25Z\"").unwrap();
        assert_eq!(text.ms(), ms);
        let shifted: TimeTuple = serde_json::from_str("[2026,114,14,0,0,250000000,2,0,0]").unwrap();
        assert_eq!(shifted.ms(), ms);
    }

    #[test]
    fn time_tuples_refuse_garbage() {
        for bad in [
            "[2026,114,12]",
            "[2026,400,12,0,0,0,0,0,0]",
            "[2026,114,25,0,0,0,0,0,0]",
            "[2026,114,12,0,0,0,99,0,0]",
            "[2026,114,12,0,0,0,0,0,\"x\"]",
            "\"yesterday\"",
            "7",
            "null",
        ] {
            assert!(serde_json::from_str::<TimeTuple>(bad).is_err(), "{bad}");
        }
    }
}
