//! Exact amounts of US dollars: a fixed-point count of 10^-12 USD, so
//! budget sums and comparisons are exact (24 runs of 0.02 make exactly
//! 0.48) and amounts print as the shortest decimal.
//!
//! A small type of its own rather than a decimal crate: budgets only add,
//! subtract and compare amounts, and twelve decimal places in an `i128`
//! cover any amount a scenario can state without rounding.
//!
//! Amounts arrive as the `f64` serde read from the file; the shortest
//! decimal that reads back as that `f64` is exactly the text written for
//! any amount of up to 15 significant digits, and that decimal is what is
//! kept (docs/SCENARIOS.md, "Money").

use std::fmt;
use std::ops::{Add, Sub};

/// Decimal places kept.
const SCALE: u32 = 12;
const UNIT: i128 = 10_i128.pow(SCALE);

/// An exact amount of USD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i128);

impl Money {
    pub const ZERO: Money = Money(0);

    /// The decimal an `f64` amount was written as: its shortest
    /// round-trip text, rounded half away from zero at twelve places.
    /// A non-finite amount (refused by validation) reads as zero.
    pub fn from_f64(value: f64) -> Self {
        if !value.is_finite() {
            return Self::ZERO;
        }
        Self::parse(&format!("{value}")).unwrap_or_else(|| {
            // Too large for the text route (exponent form): scale directly.
            Self((value * UNIT as f64).round() as i128)
        })
    }

    /// Parses a plain decimal such as `0.02`, `-1.5` or `3`.
    pub fn parse(text: &str) -> Option<Self> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut units = whole.checked_mul(UNIT)?;
        let mut scale = UNIT / 10;
        let mut digits = fraction.bytes();
        for byte in digits.by_ref().take(SCALE as usize) {
            units = units.checked_add(i128::from(byte - b'0') * scale)?;
            scale /= 10;
        }
        if digits.next().is_some_and(|next| next >= b'5') {
            units = units.checked_add(1)?;
        }
        Some(Self(if negative { -units } else { units }))
    }

    /// The nearest `f64`, for outputs that hold numbers: the shortest
    /// decimal of the amount read as a float, which prints back as that
    /// decimal.
    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(0.0)
    }

    /// `max(self, 0)`.
    pub fn at_least_zero(self) -> Self {
        self.max(Self::ZERO)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Money {
    /// The shortest decimal: `0.48`, `3`, `-0.005`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let unit = UNIT.unsigned_abs();
        let whole = magnitude / unit;
        let fraction = magnitude % unit;
        if fraction == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{fraction:012}");
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_exact_and_print_shortest() {
        let step = Money::from_f64(0.02);
        let mut total = Money::ZERO;
        for _ in 0..24 {
            total = total + step;
        }
        assert_eq!(total.to_string(), "0.48");
        assert_eq!(total.to_f64(), 0.48);
        assert!(total + step <= Money::from_f64(0.5));
        assert_eq!((total + step).to_string(), "0.5");
        let mut float = 0.0_f64;
        for _ in 0..25 {
            float += 0.02;
        }
        assert!(float > 0.5, "binary floats overshoot: {float}");
    }

    #[test]
    fn parses_and_prints() {
        for (text, shown) in [
            ("0.02", "0.02"),
            ("3", "3"),
            ("-0.005", "-0.005"),
            (".5", "0.5"),
            ("1.0000000000004", "1"),
            ("1.0000000000005", "1.000000000001"),
        ] {
            assert_eq!(Money::parse(text).unwrap().to_string(), shown, "{text}");
        }
        for bad in ["", ".", "1e3", "abc", "1.2.3"] {
            assert_eq!(Money::parse(bad), None, "{bad}");
        }
        assert_eq!(Money::from_f64(0.1 + 0.2).to_string(), "0.3");
        assert_eq!(Money::from_f64(1e20).to_string(), "100000000000000000000");
    }
}
