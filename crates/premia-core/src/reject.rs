//! Why an input was refused: a stable reason code for machines and a sentence for people.

use serde::{Deserialize, Serialize};

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, $stage:ident; )*) => {
        /// Every reason an input can be rejected for. The codes are part of the public contract
        /// (they appear in `premia rejected`, in JSON output and in NATS subjects): never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            pub fn code(self) -> &'static str {
                match self { $(Reason::$variant => $code,)* }
            }

            /// Whether the reason is found by looking at the event alone (rejected every time it
            /// arrives) or needs the ledger's state (rejected when applied).
            pub fn stage(self) -> Stage {
                match self { $(Reason::$variant => Stage::$stage,)* }
            }

            pub fn from_code(code: &str) -> Option<Reason> {
                match code { $($code => Some(Reason::$variant),)* _ => None }
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// RULES.md section 10, "Validation".
    Validation,
    /// Same source and id as an earlier event, different content.
    Conflict,
    /// RULES.md section 10, "Rules".
    Rule,
}

reasons! {
    /// The line is not valid UTF-8.
    InvalidUtf8 => "invalid_utf8", Validation;
    /// The line is longer than 1 MiB.
    LineTooLong => "line_too_long", Validation;
    /// The line is not one JSON value.
    InvalidJson => "invalid_json", Validation;
    /// The JSON value is not an object.
    NotAnObject => "not_an_object", Validation;
    /// An object has the same key twice.
    DuplicateKey => "duplicate_key", Validation;
    /// Objects and arrays nested deeper than 64 levels.
    NestingTooDeep => "nesting_too_deep", Validation;
    /// `specversion` is not "1.0".
    InvalidSpecversion => "invalid_specversion", Validation;
    /// The envelope `id` is not a string of 1 to 256 characters.
    InvalidId => "invalid_id", Validation;
    /// The envelope `source` is not a string of 1 to 256 characters.
    InvalidSource => "invalid_source", Validation;
    /// `type` is not one of the event types premia knows.
    UnknownType => "unknown_type", Validation;
    /// `scheme.activated` arrived on a path where publishers may not change the rules.
    TypeNotAccepted => "type_not_accepted", Validation;
    /// `time` is present but not an RFC 3339 timestamp.
    InvalidTime => "invalid_time", Validation;
    /// `data` is missing or not an object.
    InvalidData => "invalid_data", Validation;
    /// A required field of `data` is missing or null.
    MissingField => "missing_field", Validation;
    /// A field of `data` has the wrong JSON type.
    WrongType => "wrong_type", Validation;
    /// An id inside `data` is not a string of 1 to 256 characters.
    InvalidIdField => "invalid_id_field", Validation;
    /// A date is not a real `YYYY-MM-DD` calendar date.
    InvalidDate => "invalid_date", Validation;
    /// A period is not `YYYY-MM` with month 01-12.
    InvalidPeriod => "invalid_period", Validation;
    /// An amount is not in plain notation or has more than two decimals.
    InvalidAmount => "invalid_amount", Validation;
    /// An amount is zero or negative where it must be positive, or above the cap.
    AmountOutOfRange => "amount_out_of_range", Validation;
    /// `margin` is greater than `amount`.
    MarginExceedsAmount => "margin_exceeds_amount", Validation;
    /// The currency is not the ledger's.
    CurrencyMismatch => "currency_mismatch", Validation;
    /// `payment_terms`, `fault` or another closed set of values got something else.
    InvalidValue => "invalid_value", Validation;
    /// The scheme carried by `scheme.activated` is not a valid scheme.
    InvalidScheme => "invalid_scheme", Validation;
    /// Same `source` and `id` as an earlier event, but other content.
    Conflict => "conflict", Conflict;
    /// A deal with this `deal_id` was already created.
    DealIdUsed => "deal_id_used", Rule;
    /// A payment with this `payment_id` was already received.
    PaymentIdUsed => "payment_id_used", Rule;
    /// A refund with this `refund_id` was already booked.
    RefundIdUsed => "refund_id_used", Rule;
    /// A payment or late notice on a cancelled deal.
    DealCancelled => "deal_cancelled", Rule;
    /// A payment above what is still owed on the deal.
    PaymentExceedsBalance => "payment_exceeds_balance", Rule;
    /// A refund above what is left of the payment.
    RefundExceedsPayment => "refund_exceeds_payment", Rule;
    /// A late notice on a deal that is fully paid.
    DealFullyPaid => "deal_fully_paid", Rule;
    /// A second cancellation of the same deal.
    DealAlreadyCancelled => "deal_already_cancelled", Rule;
    /// A plan for a period that is already closed.
    PeriodClosed => "period_closed", Rule;
    /// Closing a period that is already closed.
    PeriodAlreadyClosed => "period_already_closed", Rule;
}

/// A refusal: the code, and a sentence a CRM developer understands and can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub reason: Reason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: Reason, message: impl Into<String>) -> Rejection {
        Rejection { reason, message: message.into() }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
            assert_eq!(Reason::from_code(r.code()), Some(*r));
            // The serde name is the code too, so JSON output and the code agree.
            assert_eq!(serde_json::to_value(r).unwrap(), serde_json::Value::String(r.code().into()));
        }
    }
}
