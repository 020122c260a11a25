//! Exact amounts of US dollars: a fixed-point count of 10^-12 USD, so
//! budget sums and comparisons are exact (24 runs of 0.02 make exactly
//! 0.48) and amounts print as the shortest decimal.
//!
//! A small type of its own rather than a decimal crate: budgets only add,
//! subtract and compare amounts, and twelve decimal places in an `i128`
//! cover any amount a scenario can state without rounding.
//!
//! A scenario's amounts are read from the file's text by
//! [`Money::parse_exact`], which refuses what an amount cannot hold, and
//! carried as the `f64` nearest them only when the shortest decimal of
//! that `f64` is the amount itself ([`Money::from_f64`] gives it back);
//! the harness refuses the rest (docs/SCENARIOS.md, "Money").

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
        // Every trigger converts its cost and its persona's limits: the
        // same few amounts, remembered by their bits in a small table.
        // A cell a slot, so that a look-up copies one entry, not the table.
        thread_local! {
            static RECENT: [std::cell::Cell<(u64, Money)>; 8] =
                const { [const { std::cell::Cell::new((u64::MAX, Money::ZERO)) }; 8] };
        }
        let bits = value.to_bits();
        let slot = ((bits ^ (bits >> 29) ^ (bits >> 52)) & 7) as usize;
        RECENT.with(|recent| {
            let (kept, money) = recent[slot].get();
            if kept == bits {
                return money;
            }
            let money = Self::from_f64_text(value);
            recent[slot].set((bits, money));
            money
        })
    }

    /// [`Money::from_f64`] through the amount's shortest text.
    fn from_f64_text(value: f64) -> Self {
        // The text is written on the stack: an amount is converted for
        // every budget check, and a plain amount's text is short.
        let parsed = match ShortText::of(format_args!("{value}")) {
            Some(text) => Self::parse(text.as_str()),
            None => Self::parse(&value.to_string()),
        };
        parsed.unwrap_or_else(|| {
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

    /// Parses an amount as written in a file, exactly, refusing what an
    /// amount cannot hold rather than rounding it: a decimal such as
    /// `0.02`, `+3`, `.5` or `25e-3`, at most twelve decimal places (after
    /// trailing zeros), within what an `i128` of 10^-12 USD holds.
    pub fn parse_exact(text: &str) -> Result<Self, MoneyTextError> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, Some(exponent)),
            None => (unsigned, None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let is_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !is_digits(whole) || !is_digits(fraction) {
            return Err(MoneyTextError::NotDecimal);
        }
        let exponent: i64 = match exponent {
            None => 0,
            Some(exponent) => {
                let digits = exponent.trim_start_matches(['+', '-']);
                if digits.is_empty() || !is_digits(digits) || exponent.len() - digits.len() > 1 {
                    return Err(MoneyTextError::NotDecimal);
                }
                // Beyond any amount's reach either way; clamped so the
                // arithmetic below stays small.
                exponent
                    .parse::<i64>()
                    .unwrap_or(if exponent.starts_with('-') {
                        -1_000
                    } else {
                        1_000
                    })
            }
        };
        let digits = format!("{whole}{fraction}");
        let significant = digits.trim_end_matches('0');
        let places = significant.len() as i64 - whole.len() as i64 - exponent;
        let significant = significant.trim_start_matches('0');
        if significant.is_empty() {
            return Ok(Self::ZERO);
        }
        if places > i64::from(SCALE) {
            return Err(MoneyTextError::TooManyPlaces(places as u64));
        }
        let shift =
            u32::try_from(i64::from(SCALE) - places).map_err(|_| MoneyTextError::TooLarge)?;
        let units = significant
            .parse::<i128>()
            .ok()
            .and_then(|units| 10_i128.checked_pow(shift)?.checked_mul(units))
            .ok_or(MoneyTextError::TooLarge)?;
        Ok(Self(if negative { -units } else { units }))
    }

    /// The nearest `f64`, for outputs that hold numbers: the shortest
    /// decimal of the amount read as a float, which prints back as that
    /// decimal.
    pub fn to_f64(self) -> f64 {
        // Below 2^53 units the amount and the unit are exact `f64`s, and
        // one correctly rounded division gives the nearest `f64` to the
        // decimal, which is what parsing its text gives.
        const EXACT: i128 = 1 << f64::MANTISSA_DIGITS;
        if self.0.abs() < EXACT {
            return self.0 as f64 / UNIT as f64;
        }
        // Above it, the decimal is parsed, written on the stack: a
        // persona's large daily budget takes this path on every trigger.
        let text = ShortText::of(format_args!("{self}"));
        let text = text.expect("an amount's decimal is under 64 bytes");
        text.as_str().parse().unwrap_or(0.0)
    }

    /// `max(self, 0)`.
    pub fn at_least_zero(self) -> Self {
        self.max(Self::ZERO)
    }
}

/// A text of at most 64 bytes written on the stack; a longer one does not
/// fit, and writing it fails.
struct ShortText {
    bytes: [u8; 64],
    len: usize,
}

impl Default for ShortText {
    fn default() -> Self {
        Self {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl ShortText {
    /// `text` written out, or `None` when it is longer than 64 bytes.
    fn of(text: fmt::Arguments<'_>) -> Option<Self> {
        let mut short = Self::default();
        fmt::Write::write_fmt(&mut short, text).ok()?;
        Some(short)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("only whole strings are written")
    }
}

impl fmt::Write for ShortText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Why a text is not an exact amount ([`Money::parse_exact`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoneyTextError {
    /// Not a decimal number at all (`.inf`, `abc`, `0x10`).
    NotDecimal,
    /// More decimal places than the twelve an amount keeps.
    TooManyPlaces(u64),
    /// More than an amount can hold.
    TooLarge,
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
    fn the_fast_conversions_agree_with_the_text_routes() {
        let mut amounts: Vec<f64> = vec![
            0.0,
            -0.0,
            0.1,
            0.2,
            0.3,
            1e-12,
            5e-13,
            0.002,
            1e6,
            9007.199254740991,
        ];
        amounts.extend([123456.789012345, 1e20, 1e300, -2.5e-7, f64::MAX]);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let digits = (state % 10_000_000_000_000) as f64;
            amounts.push(digits / 10f64.powi((state % 15) as i32));
        }
        for amount in amounts {
            let money = Money::from_f64(amount);
            let by_text = Money::parse(&format!("{amount}"))
                .unwrap_or_else(|| Money((amount * UNIT as f64).round() as i128));
            assert_eq!(money, by_text, "{amount}");
            let back: f64 = money.to_string().parse().unwrap();
            assert_eq!(money.to_f64().to_bits(), back.to_bits(), "{money}");
        }
    }

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
    }

    #[test]
    fn parses_exactly_or_refuses() {
        for (text, shown) in [
            ("0.02", "0.02"),
            ("+3", "3"),
            ("-0.005", "-0.005"),
            (".5", "0.5"),
            ("5.", "5"),
            ("25e-3", "0.025"),
            ("1.5E2", "150"),
            ("0.100000000000000000000", "0.1"),
            ("000000000000000000000000000000000000000000007", "7"),
            ("0e999999999999999999999", "0"),
            ("0.000000000001", "0.000000000001"),
        ] {
            assert_eq!(
                Money::parse_exact(text).unwrap().to_string(),
                shown,
                "{text}"
            );
        }
        for (text, error) in [
            ("0.0000000000001", MoneyTextError::TooManyPlaces(13)),
            ("1e-13", MoneyTextError::TooManyPlaces(13)),
            (
                "0.1000000000000000055511151231257827",
                MoneyTextError::TooManyPlaces(34),
            ),
            ("1e999999999999999999999", MoneyTextError::TooLarge),
            ("1e30", MoneyTextError::TooLarge),
            ("", MoneyTextError::NotDecimal),
            (".", MoneyTextError::NotDecimal),
            ("1e", MoneyTextError::NotDecimal),
            ("1e+-3", MoneyTextError::NotDecimal),
            (".inf", MoneyTextError::NotDecimal),
            ("0x10", MoneyTextError::NotDecimal),
            ("--1", MoneyTextError::NotDecimal),
        ] {
            assert_eq!(Money::parse_exact(text), Err(error), "{text}");
        }
        assert_eq!(Money::from_f64(1e20).to_string(), "100000000000000000000");
    }
}
