//! Exact money: parsing amounts in the contract's plain notation, exact multiply-divide-round,
//! and the two-decimal text form used everywhere amounts leave the ledger.
//!
//! Every amount is a [`Decimal`]. Products and quotients that RULES.md rounds are computed on
//! `i128` mantissas, so the rounding decision is made on the exact rational value, never on a
//! 28-digit approximation of it.

use rust_decimal::Decimal;

/// The largest amount an event may carry: 10 000 000 000.00 (RULES.md section 2).
pub const AMOUNT_CAP: Decimal = Decimal::from_parts(1_410_065_408, 2, 0, false, 0); // 2 * 2^32 + 1 410 065 408 = 10^10

/// Why a text is not an amount in plain notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountTextError {
    /// Not digits with an optional point and one or two digits (signs, exponents, spaces, ...).
    NotPlain,
    /// More than two digits after the point.
    TooManyDecimals,
    /// Above [`AMOUNT_CAP`].
    AboveCap,
}

/// Parses `digits[.d[d]]` exactly. Leading zeros are allowed; nothing else is.
pub fn parse_plain_amount(text: &str) -> Result<Decimal, AmountTextError> {
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountTextError::NotPlain);
    }
    if let Some(frac) = frac_part {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountTextError::NotPlain);
        }
        if frac.len() > 2 {
            return Err(AmountTextError::TooManyDecimals);
        }
    }
    let significant = int_part.trim_start_matches('0');
    // The cap has 11 integer digits; anything longer is above it without parsing.
    if significant.len() > 11 {
        return Err(AmountTextError::AboveCap);
    }
    let value = text.parse::<Decimal>().map_err(|_| AmountTextError::NotPlain)?;
    if value > AMOUNT_CAP {
        return Err(AmountTextError::AboveCap);
    }
    Ok(value)
}

/// `round(product(factors) / divisor, dp)`, half away from zero, computed exactly.
///
/// Returns `None` when an intermediate value leaves `i128` or `divisor` is zero. The scheme and
/// the validation bound every input (amounts to 10^10 with 2 decimals, rates to 6 decimals), so
/// the ledger's own uses never come near that: for them `None` is an invariant violation.
pub fn mul_div_round(factors: &[Decimal], divisor: Decimal, dp: u32) -> Option<Decimal> {
    let mut numerator: i128 = 1;
    let mut scale: u32 = 0;
    for f in factors {
        numerator = numerator.checked_mul(f.mantissa())?;
        scale += f.scale();
    }
    let divisor_mantissa = divisor.mantissa();
    if divisor_mantissa == 0 {
        return None;
    }
    // value * 10^dp = numerator * 10^(divisor.scale + dp) / (divisor_mantissa * 10^scale)
    let mut n = numerator.checked_mul(pow10(divisor.scale() + dp)?)?;
    let mut d = divisor_mantissa.checked_mul(pow10(scale)?)?;
    if d < 0 {
        n = n.checked_neg()?;
        d = d.checked_neg()?;
    }
    let quotient = n / d;
    let remainder = (n % d).abs();
    let rounded = if remainder.checked_mul(2)? >= d { quotient + n.signum() } else { quotient };
    Decimal::try_from_i128_with_scale(rounded, dp).ok()
}

/// `round(value, 2)` half away from zero.
pub fn round2(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// The text form of an amount: always two decimals, never `-0.00`.
pub fn money_text(value: Decimal) -> String {
    let v = round2(value);
    if v.is_zero() {
        return "0.00".to_string();
    }
    format!("{v:.2}")
}

/// A fixed number of decimals, for ratios such as achievement (4) and rates (3).
pub fn fixed_text(value: Decimal, dp: u32) -> String {
    let v = value.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    if v.is_zero() {
        return format!("{:.*}", dp as usize, Decimal::ZERO);
    }
    format!("{v:.prec$}", prec = dp as usize)
}

/// Groups thousands with a space: `1 000 000.00`, as the article and finance people write it.
pub fn money_grouped(value: Decimal) -> String {
    let text = money_text(value);
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", text.as_str()),
    };
    let (int_part, frac) = rest.split_once('.').unwrap_or((rest, "00"));
    let mut grouped = String::with_capacity(int_part.len() + int_part.len() / 3);
    for (i, ch) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped}.{frac}")
}

/// A rate as a percentage for humans: 0.008 -> "0.8 %".
pub fn percent_text(rate: Decimal) -> String {
    let pct = (rate * Decimal::ONE_HUNDRED).normalize();
    let text = if pct.scale() == 0 { format!("{pct}.0") } else { pct.to_string() };
    format!("{text} %")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn cap_constant_is_ten_billion() {
        assert_eq!(AMOUNT_CAP, d("10000000000.00"));
    }

    #[test]
    fn plain_notation() {
        assert_eq!(parse_plain_amount("150000.00"), Ok(d("150000.00")));
        assert_eq!(parse_plain_amount("0"), Ok(d("0")));
        assert_eq!(parse_plain_amount("007.5"), Ok(d("7.5")));
        assert_eq!(parse_plain_amount("10000000000.00"), Ok(AMOUNT_CAP));
        assert_eq!(parse_plain_amount("10000000000.01"), Err(AmountTextError::AboveCap));
        assert_eq!(parse_plain_amount("1234567890123456789012345678901234567890"), Err(AmountTextError::AboveCap));
        for bad in ["1e3", "1 000", "-5", "+5", "", ".5", "5.", "1,5", "0x10", " 1"] {
            assert_eq!(parse_plain_amount(bad), Err(AmountTextError::NotPlain), "{bad:?}");
        }
        assert_eq!(parse_plain_amount("12.345"), Err(AmountTextError::TooManyDecimals));
    }

    #[test]
    fn mul_div_round_is_half_away_from_zero_on_the_exact_value() {
        // 100000 * 500000 * 0.008 / 1000000 = 400
        assert_eq!(mul_div_round(&[d("100000.00"), d("500000.00"), d("0.008")], d("1000000.00"), 2), Some(d("400.00")));
        // 1 * 0.005 = 0.005 exactly -> 0.01
        assert_eq!(mul_div_round(&[d("1.00"), d("0.005")], Decimal::ONE, 2), Some(d("0.01")));
        assert_eq!(mul_div_round(&[d("-1.00"), d("0.005")], Decimal::ONE, 2), Some(d("-0.01")));
        // 0.01 * 0.004 = 0.00004 -> 0.00
        assert_eq!(mul_div_round(&[d("0.01"), d("0.004")], Decimal::ONE, 2), Some(d("0.00")));
        // 1/3 -> 0.33 ; 2/3 -> 0.67
        assert_eq!(mul_div_round(&[d("1")], d("3"), 2), Some(d("0.33")));
        assert_eq!(mul_div_round(&[d("2")], d("3"), 2), Some(d("0.67")));
        assert_eq!(mul_div_round(&[d("2")], d("-3"), 2), Some(d("-0.67")));
        assert_eq!(mul_div_round(&[d("1")], Decimal::ZERO, 2), None);
    }

    #[test]
    fn extreme_commission_inputs_stay_exact() {
        // margin = amount = paid = cap, rate with 6 decimals: the largest commission possible.
        let got = mul_div_round(&[AMOUNT_CAP, AMOUNT_CAP, d("0.123456")], AMOUNT_CAP, 2);
        assert_eq!(got, Some(d("1234560000.00")));
        // Just below and exactly on a half-kopeck boundary.
        // 0.01 * 9999999999.99 / 20000000000.00 = 0.0049999999999995 -> 0.00
        let below = mul_div_round(&[d("0.01"), d("9999999999.99")], d("20000000000.00"), 2);
        assert_eq!(below, Some(d("0.00")));
        // 0.01 * 10000000000.00 / 20000000000.00 = 0.005 -> 0.01
        let on = mul_div_round(&[d("0.01"), d("10000000000.00")], d("20000000000.00"), 2);
        assert_eq!(on, Some(d("0.01")));
    }

    #[test]
    fn text_forms() {
        assert_eq!(money_text(d("-0.00")), "0.00");
        assert_eq!(money_text(d("17000")), "17000.00");
        assert_eq!(money_text(d("-1600.5")), "-1600.50");
        assert_eq!(fixed_text(d("0.4"), 4), "0.4000");
        assert_eq!(fixed_text(d("0.66665"), 4), "0.6667");
        assert_eq!(money_grouped(d("1234567.8")), "1 234 567.80");
        assert_eq!(money_grouped(d("-100000")), "-100 000.00");
        assert_eq!(money_grouped(d("999")), "999.00");
        assert_eq!(percent_text(d("0.008")), "0.8 %");
        assert_eq!(percent_text(d("0.010")), "1.0 %");
        assert_eq!(percent_text(d("0.0125")), "1.25 %");
    }
}

/// Serde for a `Decimal` as its 16-byte binary form: exact, and far faster than text in the
/// snapshot. Used on the fold state only; the wire keeps decimal strings.
pub mod decimal_bytes {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        value.serialize().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        <[u8; 16]>::deserialize(d).map(Decimal::deserialize)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
            value.map(|v| v.serialize()).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
            <Option<[u8; 16]>>::deserialize(d).map(|o| o.map(Decimal::deserialize))
        }
    }
}
