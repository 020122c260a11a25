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

/// Parses an RFC 3339 timestamp into scenario milliseconds.
pub fn parse_rfc3339_ms(value: &str) -> Result<i64, String> {
    let at = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|error| format!("invalid RFC 3339 timestamp `{value}`: {error}"))?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).map_err(|_| format!("timestamp `{value}` is out of range"))
}

/// The start of the UTC day that contains `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// The start of the UTC hour that contains `ms`.
pub fn hour_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
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
}
