//! What the state keeps of each fact it applied (deals, payments, plans) and of each parked
//! event (the event and what it waits for).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::event::{Event, Fault, Id, PaymentTerms};

use super::names::NameId;
use super::stored_amount::StoredAmount;

/// A deal as the ledger knows it, read from the state ([`LedgerState::deal`]).
///
/// [`LedgerState::deal`]: super::LedgerState::deal
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deal<'a> {
    pub seq: u64,
    pub manager_id: &'a str,
    pub client_id: &'a str,
    pub amount: Decimal,
    pub margin: Decimal,
    pub payment_terms: PaymentTerms,
    pub due_date: Date,
    pub created_on: Date,
    /// Sum of accepted payments; refunds do not restore the balance.
    pub paid: Decimal,
    pub cancelled: Option<(Date, Fault)>,
    /// The latest late notice: as of, days overdue.
    pub overdue: Option<(Date, Option<u32>)>,
}

/// An accepted payment, read from the state ([`LedgerState::payment`]).
///
/// [`LedgerState::payment`]: super::LedgerState::payment
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment<'a> {
    pub seq: u64,
    pub deal_id: &'a str,
    pub amount: Decimal,
    pub paid_on: Date,
    pub refunded: Decimal,
    /// The rate its commission was booked at: refunds claw back at the same rate.
    pub rate: Decimal,
}

/// What the state keeps of a deal: its names as numbers, its amounts packed (about 80 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DealRecord {
    pub seq: u64,
    pub id: NameId,
    /// Index into the state's managers.
    pub manager: u32,
    pub client: NameId,
    pub amount: StoredAmount,
    pub margin: StoredAmount,
    pub paid: StoredAmount,
    pub payment_terms: PaymentTerms,
    pub due_date: Date,
    pub created_on: Date,
    pub cancelled: Option<(Date, Fault)>,
    pub overdue: Option<(Date, Option<u32>)>,
}

/// What the state keeps of a payment (40 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PaymentRecord {
    pub seq: u64,
    pub id: NameId,
    /// Index into the state's deals.
    pub deal: u32,
    pub amount: StoredAmount,
    pub refunded: StoredAmount,
    pub paid_on: Date,
    /// Index into the state's rates.
    pub rate: u32,
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
