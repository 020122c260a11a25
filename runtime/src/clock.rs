//! Scenario time: milliseconds since the Unix epoch, formatted as RFC 3339 UTC.
//!
//! The runtime never asks the operating system what time it is; every
//! operation receives `now_ms` from its caller.

use std::fmt;

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
    ///
    /// Years 1 to 9999 are worked out with integer arithmetic on the
    /// proleptic Gregorian calendar (two value events a trigger write
    /// one); any other moment goes through `time`, which decides what it
    /// can represent. A test holds both to the same parts.
    pub fn parts(self) -> Option<[i64; 9]> {
        let days = self.0.div_euclid(DAY_MS);
        let in_day = self.0.rem_euclid(DAY_MS);
        let (year, ordinal) = year_and_ordinal(days);
        if !(1..=9999).contains(&year) {
            return self.parts_through_time();
        }
        Some([
            year,
            ordinal,
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1_000 % 60,
            in_day % 1_000 * 1_000_000,
            0,
            0,
            0,
        ])
    }

    /// [`TimeTuple::parts`] as the `time` crate works them out.
    fn parts_through_time(self) -> Option<[i64; 9]> {
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

    /// Appends the tuple as JSON: the text its `Serialize` writes.
    ///
    /// # Panics
    /// For a moment `time` cannot represent, which serialising refuses.
    pub fn write_json(self, out: &mut Vec<u8>) {
        let parts = self
            .parts()
            .unwrap_or_else(|| panic!("time {}ms is out of range", self.0));
        let [year, ordinal, hour, minute, second, nanos, zeros @ ..] = parts;
        debug_assert_eq!(zeros, [0; 3], "the last three parts are always 0");
        out.push(b'[');
        crate::json_out::int(out, year);
        for part in [ordinal, hour, minute, second] {
            out.push(b',');
            small_int(out, part);
        }
        out.push(b',');
        small_int(out, nanos);
        out.extend_from_slice(b",0,0,0]");
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

/// Appends `value` as JSON, writing a number under 100 digit by digit:
/// most parts of a time tuple are, and the general writer copies its
/// digits out of a buffer of its own.
fn small_int(out: &mut Vec<u8>, value: i64) {
    match u8::try_from(value) {
        Ok(small) if small < 10 => out.push(b'0' + small),
        Ok(small) if small < 100 => out.extend_from_slice(&[b'0' + small / 10, b'0' + small % 10]),
        _ => crate::json_out::int(out, value),
    }
}

/// The year and the day of that year (1-based) of the day `days` after
/// 1970-01-01, proleptic Gregorian (H. Hinnant's `civil_from_days`, counted
/// from 1 March so that the leap day ends the year; exact for any `i64`
/// day count a millisecond `i64` can make).
fn year_and_ordinal(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let march_based_month = (5 * doy + 2) / 153;
    let year = yoe + era * 400 + i64::from(march_based_month >= 10);
    (year, days - days_before_year(year) + 1)
}

/// The days from 1970-01-01 to 1 January of `year` (negative before).
fn days_before_year(year: i64) -> i64 {
    // 1 January is day 306 of the March-based year before it.
    let y = year - 1;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + 306 - 719_468
}

impl serde::Serialize for TimeTuple {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let parts = self.parts().ok_or_else(|| {
            serde::ser::Error::custom(format!("time {}ms is out of range", self.0))
        })?;
        parts.serialize(serializer)
    }
}

/// Reads what [`TimeTuple::from_value`] reads, straight from the input: a
/// string or a list (of whose items only the integers count, as there),
/// without building the list as a value first. Anything else is built as a
/// value and refused by `from_value`, with its error.
impl<'de> serde::Deserialize<'de> for TimeTuple {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TimeVisitor)
    }
}

struct TimeVisitor;

impl TimeVisitor {
    /// `value` as [`TimeTuple::from_value`] reads it.
    fn read<E: serde::de::Error>(value: serde_json::Value) -> Result<TimeTuple, E> {
        TimeTuple::from_value(&value).map_err(E::custom)
    }
}

impl<'de> serde::de::Visitor<'de> for TimeVisitor {
    type Value = TimeTuple;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp or a nine-part time tuple")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TimeTuple, E> {
        parse_rfc3339_ms(text).map(TimeTuple).map_err(E::custom)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<TimeTuple, A::Error> {
        let mut parts = [0i64; 9];
        let mut count = 0;
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            if let Some(part) = item.as_i64() {
                if let Some(slot) = parts.get_mut(count) {
                    *slot = part;
                }
                count += 1;
            }
        }
        if count != parts.len() {
            return Err(serde::de::Error::custom(TimeError::TupleLength));
        }
        tuple_ms(parts)
            .map(TimeTuple)
            .map_err(serde::de::Error::custom)
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<TimeTuple, E> {
        Self::read(value.into())
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<TimeTuple, E> {
        Self::read(value.into())
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<TimeTuple, E> {
        Self::read(value.into())
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<TimeTuple, E> {
        Self::read(value.into())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<TimeTuple, E> {
        Self::read(serde_json::Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<TimeTuple, E> {
        Self::read(serde_json::Value::Null)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<TimeTuple, A::Error> {
        use serde::Deserialize;
        let value =
            serde_json::Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Self::read(value)
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

    /// Read from text, a time reads as `from_value` reads the same JSON,
    /// in success and in error, whatever its shape.
    #[test]
    fn a_time_reads_as_from_value_reads_it() {
        for text in [
            r#"[2026,1,0,0,1,0,0,0,0]"#,
            r#"[2026,366,23,59,59,999000000,0,0,0]"#,
            r#"[2026,1,0,0,1,0,1,30,0]"#,
            r#"[2026,"x",1,0,0,1,0,0,0,0]"#,
            r#"[2026,1.5,1,0,0,1,0,0,0,0]"#,
            r#"[2026,1,0,0,1,0,0,0]"#,
            r#"[2026,1,0,0,1,0,0,0,0,0]"#,
            r#"[2026,400,0,0,1,0,0,0,0]"#,
            r#"[2026,1,25,0,0,0,0,0,0]"#,
            r#"[99999999999,1,0,0,0,0,0,0,0]"#,
            r#"[]"#,
            r#"[[1],{"a":2}]"#,
            r#"[18446744073709551615,2026,1,0,0,1,0,0,0,0]"#,
            r#"[null,true,2026,1,0,0,1,0,0,0,0,{"a":[1]},"x"]"#,
            r#"[-9223372036854775808,1,0,0,1,0,0,0,0]"#,
            r#""2026-01-01T00:00:01Z""#,
            r#""2026-01-01T00:00:01+02:00""#,
            r#""yesterday""#,
            r#"17"#,
            r#"-3"#,
            r#"1.5"#,
            r#"true"#,
            r#"null"#,
            r#"{"at":[2026]}"#,
        ] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let expected = TimeTuple::from_value(&value).map_err(|e| e.to_string());
            let read = serde_json::from_str::<TimeTuple>(text).map_err(|e| e.to_string());
            let read_yaml = serde_yaml::from_str::<TimeTuple>(text).map_err(|e| e.to_string());
            match (&expected, &read) {
                (Ok(a), Ok(b)) => assert_eq!(a.ms(), b.ms(), "{text}"),
                (Err(a), Err(b)) => assert!(b.starts_with(a.as_str()), "{text}: {b} vs {a}"),
                _ => panic!("{text}: {read:?} vs {expected:?}"),
            }
            assert_eq!(
                read.is_ok(),
                read_yaml.is_ok(),
                "{text}: yaml {read_yaml:?}"
            );
        }
    }

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

    proptest::proptest! {
        /// The arithmetic parts are `time`'s, for every moment of years 1
        /// to 9999 and around their ends (where `time` takes over).
        #[test]
        fn the_parts_worked_out_are_times_parts(
            ms in -62_135_596_800_000i64 - 5 * DAY_MS..=253_402_300_799_999i64 + 5 * DAY_MS
        ) {
            let tuple = TimeTuple(ms);
            proptest::prop_assert_eq!(tuple.parts(), tuple.parts_through_time());
        }

        /// The hand-written tuple is serde's for every moment of years 1 to
        /// 9999 and around their ends.
        #[test]
        fn any_time_tuple_writes_what_serde_writes(
            ms in -62_135_596_800_000i64 - 5 * DAY_MS..=253_402_300_799_999i64 + 5 * DAY_MS
        ) {
            let tuple = TimeTuple(ms);
            let mut written = Vec::new();
            tuple.write_json(&mut written);
            proptest::prop_assert_eq!(written, serde_json::to_vec(&tuple).unwrap());
        }
    }

    #[test]
    fn the_parts_at_calendar_edges_are_times_parts() {
        let edges = [
            "0001-01-01T00:00:00Z",
            "1600-02-29T12:00:00Z",
            "1700-03-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
            "2000-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00Z",
            "2100-02-28T23:59:59.999Z",
            "2100-03-01T00:00:00Z",
            "9999-12-31T23:59:59.999Z",
        ];
        for text in edges {
            let ms = parse_rfc3339_ms(text).unwrap();
            for at in [ms - 1, ms, ms + 1] {
                assert_eq!(
                    TimeTuple(at).parts(),
                    TimeTuple(at).parts_through_time(),
                    "{text} {at}"
                );
            }
        }
        for ms in [i64::MIN, i64::MIN / 2, i64::MAX / 2, i64::MAX] {
            assert_eq!(
                TimeTuple(ms).parts(),
                TimeTuple(ms).parts_through_time(),
                "{ms}"
            );
        }
    }

    /// The hand-written tuple is the serde one, byte for byte, across
    /// years, leap days, the epoch and before it.
    #[test]
    fn a_time_tuple_writes_what_serde_writes() {
        for text in [
            "2026-04-24T12:00:00.25Z",
            "2024-02-29T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.001Z",
            "0001-01-01T00:00:00Z",
            "0042-01-05T03:04:05.006Z",
            "0999-07-15T10:10:10.010Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            let tuple = TimeTuple(parse_rfc3339_ms(text).unwrap());
            let mut written = Vec::new();
            tuple.write_json(&mut written);
            assert_eq!(written, serde_json::to_vec(&tuple).unwrap(), "{text}");
        }
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
