//! An amount as the state keeps it for every deal and payment: 8 bytes instead of a 16-byte
//! `Decimal`, and exact.
//!
//! Validation admits amounts of at most 2 decimals up to 10^10 (money.rs, event.rs), and the
//! sums the state keeps (paid on a deal, refunded of a payment) never exceed the amount they
//! are of. So each is `mantissa / 10^scale` with `scale <= 2` and `|mantissa| < 2^61`: the word
//! holds `mantissa * 4 + scale`. The scale is kept, not only the value in kopecks, because the
//! ledger's texts write an amount as it was given ("1000000" stays "1000000", not "1000000.00").

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `mantissa * 4 + scale` of an amount of at most 2 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct StoredAmount(i64);

const MAX_MANTISSA: i128 = 1 << 60;

impl StoredAmount {
    /// Packs `amount`. Panics when it has more than 2 decimals or is beyond 2^60 units of its
    /// last decimal: validation and the rules rule both out, so that is a bug, never input.
    pub(crate) fn new(amount: Decimal) -> StoredAmount {
        let (mantissa, scale) = (amount.mantissa(), amount.scale());
        assert!(
            scale <= 2 && mantissa.abs() < MAX_MANTISSA,
            "the state keeps amounts of at most 2 decimals within the cap, not {amount}"
        );
        StoredAmount(mantissa as i64 * 4 + i64::from(scale))
    }

    /// The amount packed, with the scale it had.
    pub(crate) fn get(self) -> Decimal {
        Decimal::new(self.0 >> 2, (self.0 & 3) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_read_back_as_written() {
        for text in ["0", "0.00", "1000000", "1000000.00", "5.5", "10000000000.00", "-0.01", "-250", "0.07"] {
            let amount = Decimal::from_str(text).unwrap();
            let back = StoredAmount::new(amount).get();
            assert_eq!(back.to_string(), text, "{text} keeps its value and its decimals");
        }
        assert_eq!(StoredAmount::default().get(), Decimal::ZERO);
    }

    #[test]
    #[should_panic(expected = "at most 2 decimals")]
    fn a_third_decimal_is_a_bug_not_a_rounding() {
        StoredAmount::new(Decimal::from_str("1.005").unwrap());
    }
}
