//! Cron schedules of a persona, parsed once, and the next occurrence after a
//! given instant.

use chrono::{TimeZone, Utc};
use croner::Cron;

/// A cron expression that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid cron expression `{expr}`: {source}")]
pub struct ScheduleError {
    pub expr: String,
    pub source: croner::errors::CronError,
}

/// A parsed cron expression with the text it came from.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub expr: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a 5-field cron expression (`*/30 * * * *`).
    pub fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let cron = Cron::new(expr).parse().map_err(|source| ScheduleError {
            expr: expr.to_string(),
            source,
        })?;
        Ok(Self {
            expr: expr.to_string(),
            cron,
        })
    }

    /// The first occurrence strictly after `after_ms`, if any.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let after = Utc.timestamp_millis_opt(after_ms).single()?;
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(|next| next.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{format_ms, parse_rfc3339_ms};

    #[test]
    fn next_is_strictly_after() {
        let schedule = Schedule::parse("*/30 * * * *").unwrap();
        let at = parse_rfc3339_ms("2026-04-24T12:30:00Z").unwrap();
        assert_eq!(
            format_ms(schedule.next_after(at).unwrap()),
            "2026-04-24T13:00:00Z"
        );
        assert_eq!(
            format_ms(schedule.next_after(at - 1).unwrap()),
            "2026-04-24T12:30:00Z"
        );
    }

    #[test]
    fn bad_expressions_are_errors() {
        for bad in ["", "not a cron", "61 * * * *", "* * * *"] {
            let error = Schedule::parse(bad).unwrap_err();
            assert!(
                error.to_string().starts_with("invalid cron expression"),
                "{error}"
            );
        }
    }
}
