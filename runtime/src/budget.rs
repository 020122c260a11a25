//! Budgets: spend recorded per UTC day and hour, admission of a run's cost
//! against the limits, and the status a persona reports about its budget.
//!
//! Spend is kept in running sums for the current day and hour, so admission
//! and status cost the same however long the log grows. Sums and
//! comparisons are exact decimals ([`Money`]): 24 runs of 0.02 are exactly
//! 0.48, where the modelled upstream's binary floats overshoot
//! (docs/SCENARIOS.md, "Money").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::{day_start, hour_start};
use crate::config::BudgetPolicy;
use crate::money::Money;

/// An amount of US dollars, as spend, costs and limits carry it. One alias,
/// so every money field changes together.
pub type Usd = f64;

/// The running spend of one persona.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpendWindows {
    day_start_ms: Option<i64>,
    day_usd: Money,
    day_tokens: u64,
    hour_start_ms: Option<i64>,
    hour_usd: Money,
    last_usd: Money,
}

impl SpendWindows {
    /// Adds a spend record made at `at_ms`. Records arrive in non-decreasing time.
    pub fn record(&mut self, at_ms: i64, usd: f64, tokens: u64) {
        let usd = Money::from_f64(usd);
        let day = day_start(at_ms);
        if self.day_start_ms != Some(day) {
            self.day_start_ms = Some(day);
            self.day_usd = Money::ZERO;
            self.day_tokens = 0;
        }
        self.day_usd = self.day_usd + usd;
        self.day_tokens = self.day_tokens.saturating_add(tokens);
        let hour = hour_start(at_ms);
        if self.hour_start_ms != Some(hour) {
            self.hour_start_ms = Some(hour);
            self.hour_usd = Money::ZERO;
        }
        self.hour_usd = self.hour_usd + usd;
        self.last_usd = usd;
    }

    /// Spend in the UTC day containing `now_ms`.
    pub fn today_usd(&self, now_ms: i64) -> f64 {
        self.today(now_ms).to_f64()
    }

    /// Spend in the UTC day containing `now_ms`, exactly.
    pub fn today(&self, now_ms: i64) -> Money {
        if self.day_start_ms == Some(day_start(now_ms)) {
            self.day_usd
        } else {
            Money::ZERO
        }
    }

    /// Spend in the UTC hour containing `now_ms`, exactly.
    pub fn this_hour(&self, now_ms: i64) -> Money {
        if self.hour_start_ms == Some(hour_start(now_ms)) {
            self.hour_usd
        } else {
            Money::ZERO
        }
    }

    /// Tokens in the UTC day containing `now_ms`.
    pub fn today_tokens(&self, now_ms: i64) -> u64 {
        if self.day_start_ms == Some(day_start(now_ms)) {
            self.day_tokens
        } else {
            0
        }
    }

    /// Spend in the UTC hour containing `now_ms`.
    pub fn this_hour_usd(&self, now_ms: i64) -> f64 {
        self.this_hour(now_ms).to_f64()
    }

    /// The cost of the last spend record.
    pub fn last_usd(&self) -> f64 {
        self.last_usd.to_f64()
    }
}

/// A limit of a budget: the rule that refused a cost, or that a status
/// says is reached. Serialised as the policy field's name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BudgetLimit {
    /// The cost of one run against `run_usd`.
    RunUsd,
    /// The day's spend against `daily_usd`.
    DailyUsd,
    /// The hour's spend against `hourly_usd`.
    HourlyUsd,
    /// The day's tokens against `max_tokens`.
    MaxTokens,
}

impl BudgetLimit {
    /// The limit's name, as events, statuses and messages write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunUsd => "run_usd",
            Self::DailyUsd => "daily_usd",
            Self::HourlyUsd => "hourly_usd",
            Self::MaxTokens => "max_tokens",
        }
    }
}

impl std::fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount a budget rule compares: dollars or tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figure {
    Usd(f64),
    Tokens(u64),
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usd(usd) => write!(f, "{usd} USD"),
            Self::Tokens(tokens) => write!(f, "{tokens} tokens"),
        }
    }
}

/// One admission rule of a budget, evaluated: `total > limit` refuses,
/// where `total` is `spent + cost` (the cost alone for `run_usd`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitCheck {
    pub name: BudgetLimit,
    /// What the rule's window holds already; `None` for `run_usd`.
    pub spent: Option<Figure>,
    pub cost: Figure,
    pub total: Figure,
    /// `None` when the policy sets no such limit.
    pub limit: Option<Figure>,
    pub refuses: bool,
}

/// Every budget rule for a cost, in the modelled runtime's order (run, daily, hourly,
/// tokens), each with its figures; strict `>`. [`refusal`] is the first
/// that refuses.
pub fn checks(
    policy: &BudgetPolicy,
    spend: &SpendWindows,
    usd: f64,
    tokens: u64,
    now_ms: i64,
) -> [LimitCheck; 4] {
    // Exact decimal sums (see `money.rs`); the figures show them as numbers.
    let cost = Money::from_f64(usd);
    let usd_check = |name, spent: Option<Money>, limit: Option<f64>| {
        let total = spent.map_or(cost, |spent| spent + cost);
        let limit = limit.map(Money::from_f64);
        LimitCheck {
            name,
            spent: spent.map(|m| Figure::Usd(m.to_f64())),
            cost: Figure::Usd(cost.to_f64()),
            total: Figure::Usd(total.to_f64()),
            limit: limit.map(|m| Figure::Usd(m.to_f64())),
            refuses: limit.is_some_and(|limit| total > limit),
        }
    };
    let tokens_total = spend.today_tokens(now_ms).saturating_add(tokens);
    [
        usd_check(BudgetLimit::RunUsd, None, policy.run_usd),
        usd_check(
            BudgetLimit::DailyUsd,
            Some(spend.today(now_ms)),
            policy.daily_usd,
        ),
        usd_check(
            BudgetLimit::HourlyUsd,
            Some(spend.this_hour(now_ms)),
            policy.hourly_usd,
        ),
        LimitCheck {
            name: BudgetLimit::MaxTokens,
            spent: Some(Figure::Tokens(spend.today_tokens(now_ms))),
            cost: Figure::Tokens(tokens),
            total: Figure::Tokens(tokens_total),
            limit: policy.max_tokens.map(Figure::Tokens),
            refuses: policy.max_tokens.is_some_and(|limit| tokens_total > limit),
        },
    ]
}

/// The limit a cost would break, checked with strict `>` in the modelled runtime's order:
/// run, daily, hourly, tokens. `None` admits the cost.
pub fn refusal(
    policy: &BudgetPolicy,
    spend: &SpendWindows,
    usd: f64,
    tokens: u64,
    now_ms: i64,
) -> Option<BudgetLimit> {
    // The same rules as `checks`, without building their figures: this runs
    // for every trigger. The test `refusal_is_the_first_check_that_refuses`
    // holds the two together.
    let cost = Money::from_f64(usd);
    let over = |spent: Money, limit: Option<f64>| {
        limit.is_some_and(|limit| spent + cost > Money::from_f64(limit))
    };
    if over(Money::ZERO, policy.run_usd) {
        Some(BudgetLimit::RunUsd)
    } else if over(spend.today(now_ms), policy.daily_usd) {
        Some(BudgetLimit::DailyUsd)
    } else if over(spend.this_hour(now_ms), policy.hourly_usd) {
        Some(BudgetLimit::HourlyUsd)
    } else if policy
        .max_tokens
        .is_some_and(|limit| spend.today_tokens(now_ms).saturating_add(tokens) > limit)
    {
        Some(BudgetLimit::MaxTokens)
    } else {
        None
    }
}

/// A persona's budget as its status reports it (the modelled runtime's `PersonaBudgetStatus`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BudgetStatus {
    pub daily_usd: Option<f64>,
    pub hourly_usd: Option<f64>,
    pub run_usd: Option<f64>,
    pub max_tokens: Option<u64>,
    pub spent_today_usd: f64,
    pub spent_this_hour_usd: f64,
    pub spent_last_run_usd: f64,
    pub tokens_today: u64,
    pub remaining_today_usd: Option<f64>,
    pub remaining_hour_usd: Option<f64>,
    pub exhausted: bool,
    pub reason: Option<BudgetLimit>,
    pub last_receipt_id: Option<String>,
}

/// The budget status at `now_ms`. The flag uses `>=` (daily, hourly, tokens);
/// when no limit is reached now, a past exhaustion reason stays.
pub fn status(
    policy: &BudgetPolicy,
    spend: &SpendWindows,
    sticky_reason: Option<BudgetLimit>,
    last_receipt_id: Option<&str>,
    now_ms: i64,
) -> BudgetStatus {
    let spent_today = spend.today(now_ms);
    let spent_this_hour = spend.this_hour(now_ms);
    let tokens_today = spend.today_tokens(now_ms);
    let daily = policy.daily_usd.map(Money::from_f64);
    let hourly = policy.hourly_usd.map(Money::from_f64);
    let reason = if daily.is_some_and(|limit| limit >= Money::ZERO && spent_today >= limit) {
        Some(BudgetLimit::DailyUsd)
    } else if hourly.is_some_and(|limit| limit >= Money::ZERO && spent_this_hour >= limit) {
        Some(BudgetLimit::HourlyUsd)
    } else if policy
        .max_tokens
        .is_some_and(|limit| limit > 0 && tokens_today >= limit)
    {
        Some(BudgetLimit::MaxTokens)
    } else {
        sticky_reason
    };
    BudgetStatus {
        daily_usd: policy.daily_usd,
        hourly_usd: policy.hourly_usd,
        run_usd: policy.run_usd,
        max_tokens: policy.max_tokens,
        spent_today_usd: spent_today.to_f64(),
        spent_this_hour_usd: spent_this_hour.to_f64(),
        spent_last_run_usd: spend.last_usd(),
        tokens_today,
        remaining_today_usd: daily.map(|limit| (limit - spent_today).at_least_zero().to_f64()),
        remaining_hour_usd: hourly.map(|limit| (limit - spent_this_hour).at_least_zero().to_f64()),
        exhausted: reason.is_some(),
        reason,
        last_receipt_id: last_receipt_id.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_rfc3339_ms;

    fn at(text: &str) -> i64 {
        parse_rfc3339_ms(text).unwrap()
    }

    #[test]
    fn windows_reset_at_day_and_hour_boundaries() {
        let mut spend = SpendWindows::default();
        spend.record(at("2026-04-24T23:59:00Z"), 0.5, 10);
        assert_eq!(spend.today_usd(at("2026-04-24T23:59:59Z")), 0.5);
        assert_eq!(spend.today_usd(at("2026-04-25T00:00:00Z")), 0.0);
        assert_eq!(spend.this_hour_usd(at("2026-04-25T00:00:00Z")), 0.0);
        spend.record(at("2026-04-25T00:00:00Z"), 0.25, 1);
        assert_eq!(spend.today_usd(at("2026-04-25T00:10:00Z")), 0.25);
        assert_eq!(spend.today_tokens(at("2026-04-25T00:10:00Z")), 1);
        assert_eq!(spend.last_usd(), 0.25);
    }

    #[test]
    fn refusal_is_the_first_check_that_refuses() {
        let limits = [None, Some(0.0), Some(0.01), Some(0.02), Some(0.03)];
        let mut spend = SpendWindows::default();
        let now = at("2026-04-24T12:30:00Z");
        for step in 0..4 {
            let mut triples = Vec::new();
            for run in limits {
                for daily in limits {
                    triples.extend(limits.map(|hourly| (run, daily, hourly)));
                }
            }
            for (run, daily, hourly) in triples {
                for max_tokens in [None, Some(0), Some(10), Some(25)] {
                    let policy = BudgetPolicy {
                        run_usd: run,
                        daily_usd: daily,
                        hourly_usd: hourly,
                        max_tokens,
                    };
                    for (usd, tokens) in [(0.0, 0), (0.01, 5), (0.02, 10), (0.015, 30)] {
                        let first = checks(&policy, &spend, usd, tokens, now)
                            .into_iter()
                            .find(|check| check.refuses)
                            .map(|check| check.name);
                        assert_eq!(refusal(&policy, &spend, usd, tokens, now), first, "{step}");
                    }
                }
            }
            spend.record(now, 0.005, 5);
        }
    }

    #[test]
    fn admission_is_strict_and_ordered() {
        let policy = BudgetPolicy {
            daily_usd: Some(0.02),
            run_usd: Some(0.01),
            hourly_usd: Some(0.015),
            max_tokens: Some(10),
        };
        let mut spend = SpendWindows::default();
        let now = at("2026-04-24T12:00:00Z");
        assert_eq!(
            refusal(&policy, &spend, 0.02, 0, now),
            Some(BudgetLimit::RunUsd)
        );
        assert_eq!(refusal(&policy, &spend, 0.01, 10, now), None);
        spend.record(now, 0.01, 10);
        assert_eq!(
            refusal(&policy, &spend, 0.01, 0, now),
            Some(BudgetLimit::HourlyUsd)
        );
        assert_eq!(
            refusal(&policy, &spend, 0.0, 1, now),
            Some(BudgetLimit::MaxTokens)
        );
        assert_eq!(refusal(&policy, &spend, 0.0, 0, now), None);
    }

    #[test]
    fn status_flags_at_the_limit_and_keeps_a_past_reason() {
        let policy = BudgetPolicy {
            daily_usd: Some(0.02),
            ..Default::default()
        };
        let mut spend = SpendWindows::default();
        let now = at("2026-04-24T12:00:00Z");
        spend.record(now, 0.02, 0);
        let status = status(&policy, &spend, None, Some("r"), now);
        assert!(status.exhausted);
        assert_eq!(status.reason, Some(BudgetLimit::DailyUsd));
        assert_eq!(status.remaining_today_usd, Some(0.0));
        let tomorrow = super::status(
            &policy,
            &spend,
            Some(BudgetLimit::RunUsd),
            None,
            now + crate::clock::DAY_MS,
        );
        assert_eq!(tomorrow.reason, Some(BudgetLimit::RunUsd));
        assert_eq!(tomorrow.spent_today_usd, 0.0);
    }
}
