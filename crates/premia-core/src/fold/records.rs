//! What the state keeps of each fact it applied (deals, payments, plans) and of each parked
//! event (the event and what it waits for).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::event::{Event, Fault, Id, PaymentTerms};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    pub seq: u64,
    pub manager_id: Id,
    pub client_id: Id,
    #[serde(with = "crate::money::decimal_bytes")]
    pub amount: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub margin: Decimal,
    pub payment_terms: PaymentTerms,
    pub due_date: Date,
    pub created_on: Date,
    /// Sum of accepted payments; refunds do not restore the balance.
    #[serde(with = "crate::money::decimal_bytes")]
    pub paid: Decimal,
    pub cancelled: Option<(Date, Fault)>,
    /// The latest late notice: as of, days overdue.
    pub overdue: Option<(Date, Option<u32>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub seq: u64,
    pub deal_id: Id,
    #[serde(with = "crate::money::decimal_bytes")]
    pub amount: Decimal,
    pub paid_on: Date,
    #[serde(with = "crate::money::decimal_bytes")]
    pub refunded: Decimal,
    /// The rate its commission was booked at: refunds claw back at the same rate.
    #[serde(with = "crate::money::decimal_bytes")]
    pub rate: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub seq: u64,
    #[serde(with = "crate::money::decimal_bytes")]
    pub target: Decimal,
    #[serde(with = "crate::money::decimal_bytes::option")]
    pub bonus_base: Option<Decimal>,
}

/// What a parked event waits for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WaitKey {
    Deal(Id),
    Payment(Id),
}

impl std::fmt::Display for WaitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitKey::Deal(id) => write!(f, "deal {id}"),
            WaitKey::Payment(id) => write!(f, "payment {id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parked {
    pub event: Event,
    pub waits_for: WaitKey,
}
