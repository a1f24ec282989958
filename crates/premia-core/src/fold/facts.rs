//! The deals and payments the state knows, in dense vectors: a deal or payment is a `u32`
//! index, its id and its client's are interned names (names.rs), its manager an index into a
//! short list of shared ids, its amounts packed (stored_amount.rs), its rate an index into the
//! few rates ever booked. About 120 bytes a deal and 60 a payment with their lookups, where a
//! map of separately allocated records took about 200 and 130.
//!
//! Everything written to the snapshot is in the order the log met it; the lookups are rebuilt
//! and every index is checked when a snapshot is read, so a damaged one is refused, not misread.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::event::{DealCreated, Id};
use crate::stable_maps::StableMap;

use super::names::{NameId, Names};
use super::records::{Deal, DealRecord, Payment, PaymentRecord};
use super::stored_amount::StoredAmount;

/// No deal (or payment) has this name.
const NONE: u32 = u32::MAX;

/// A rate payments were booked at, written exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Rate(#[serde(with = "crate::money::decimal_bytes")] Decimal);

/// Every deal and every accepted payment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "StoredFacts")]
pub(crate) struct Facts {
    names: Names,
    /// The managers of deals: few, and shared with the books and entries.
    managers: Vec<Id>,
    /// The rates payments were booked at: those of the schemes in force, so a handful.
    rates: Vec<Rate>,
    deals: Vec<DealRecord>,
    payments: Vec<PaymentRecord>,
    #[serde(skip)]
    manager_index: StableMap<Id, u32>,
    /// By name: the index of the deal so named, or `NONE`.
    #[serde(skip)]
    deal_of: Vec<u32>,
    /// By name: the index of the payment so named, or `NONE`.
    #[serde(skip)]
    payment_of: Vec<u32>,
}

/// What a snapshot holds of [`Facts`]: all but the lookups.
#[derive(Deserialize)]
struct StoredFacts {
    names: Names,
    managers: Vec<Id>,
    rates: Vec<Rate>,
    deals: Vec<DealRecord>,
    payments: Vec<PaymentRecord>,
}

fn index_of(len: usize) -> u32 {
    u32::try_from(len).unwrap_or_else(|_| unreachable!("fewer than 2^32 deals, payments, managers and rates"))
}

/// Sets `by_name[name] = index`, growing the lookup to the names met so far.
fn set(by_name: &mut Vec<u32>, names: usize, name: NameId, index: u32) {
    if by_name.len() < names {
        by_name.resize(names, NONE);
    }
    debug_assert_eq!(by_name[name as usize], NONE, "name {name} is given to one deal (or payment)");
    by_name[name as usize] = index;
}

fn find(by_name: &[u32], name: Option<NameId>) -> Option<u32> {
    let index = *by_name.get(name? as usize)?;
    (index != NONE).then_some(index)
}

impl Facts {
    pub(crate) fn deal_index(&self, deal_id: &str) -> Option<u32> {
        find(&self.deal_of, self.names.get(deal_id))
    }

    pub(crate) fn payment_index(&self, payment_id: &str) -> Option<u32> {
        find(&self.payment_of, self.names.get(payment_id))
    }

    pub(crate) fn deal(&self, index: u32) -> Deal<'_> {
        let d = &self.deals[index as usize];
        Deal {
            seq: d.seq,
            manager_id: &self.managers[d.manager as usize],
            client_id: self.names.name(d.client),
            amount: d.amount.get(),
            margin: d.margin.get(),
            payment_terms: d.payment_terms,
            due_date: d.due_date,
            created_on: d.created_on,
            paid: d.paid.get(),
            cancelled: d.cancelled,
            overdue: d.overdue,
        }
    }

    pub(crate) fn payment(&self, index: u32) -> Payment<'_> {
        let p = &self.payments[index as usize];
        Payment {
            seq: p.seq,
            deal_id: self.names.name(self.deals[p.deal as usize].id),
            amount: p.amount.get(),
            paid_on: p.paid_on,
            refunded: p.refunded.get(),
            rate: self.rates[p.rate as usize].0,
        }
    }

    pub(crate) fn deal_record_mut(&mut self, index: u32) -> &mut DealRecord {
        &mut self.deals[index as usize]
    }

    pub(crate) fn payment_record_mut(&mut self, index: u32) -> &mut PaymentRecord {
        &mut self.payments[index as usize]
    }

    /// The manager of deal `index`, shared.
    pub(crate) fn manager_of(&self, index: u32) -> &Id {
        &self.managers[self.deals[index as usize].manager as usize]
    }

    /// The deal payment `index` is on.
    pub(crate) fn deal_of_payment(&self, index: u32) -> u32 {
        self.payments[index as usize].deal
    }

    /// The id of deal `index`.
    pub(crate) fn deal_id(&self, index: u32) -> &str {
        self.names.name(self.deals[index as usize].id)
    }

    /// Every deal, with its id, in the order created.
    pub(crate) fn deals(&self) -> impl Iterator<Item = (&str, Deal<'_>)> {
        (0..index_of(self.deals.len())).map(|i| (self.deal_id(i), self.deal(i)))
    }

    /// Every payment, with its id, in the order accepted.
    pub(crate) fn payments(&self) -> impl Iterator<Item = (&str, Payment<'_>)> {
        (0..index_of(self.payments.len())).map(|i| (self.names.name(self.payments[i as usize].id), self.payment(i)))
    }

    /// Keeps deal `d`, created at record `seq`, whose id is new; `manager` is the shared copy.
    pub(crate) fn insert_deal(&mut self, seq: u64, d: &DealCreated, manager: &Id) -> u32 {
        let manager = match self.manager_index.get(manager) {
            Some(&m) => m,
            None => {
                let m = index_of(self.managers.len());
                self.managers.push(manager.clone());
                self.manager_index.insert(manager.clone(), m);
                m
            }
        };
        let id = self.names.intern(&d.deal_id);
        let client = self.names.intern(&d.client_id);
        let index = index_of(self.deals.len());
        self.deals.push(DealRecord {
            seq,
            id,
            manager,
            client,
            amount: StoredAmount::new(d.amount),
            margin: StoredAmount::new(d.margin),
            paid: StoredAmount::default(),
            payment_terms: d.payment_terms,
            due_date: d.due_date,
            created_on: d.created_on,
            cancelled: None,
            overdue: None,
        });
        set(&mut self.deal_of, self.names.len(), id, index);
        index
    }

    /// Keeps payment `payment_id` (new) on deal `deal`, accepted at record `seq`.
    pub(crate) fn insert_payment(
        &mut self,
        seq: u64,
        payment_id: &str,
        deal: u32,
        amount: Decimal,
        paid_on: Date,
        rate: Decimal,
    ) -> u32 {
        // Equal rates of another scale are written differently: only the same form is shared.
        let rate = match self.rates.iter().position(|r| r.0.serialize() == rate.serialize()) {
            Some(r) => index_of(r),
            None => {
                self.rates.push(Rate(rate));
                index_of(self.rates.len() - 1)
            }
        };
        let id = self.names.intern(payment_id);
        let index = index_of(self.payments.len());
        self.payments.push(PaymentRecord {
            seq,
            id,
            deal,
            amount: StoredAmount::new(amount),
            refunded: StoredAmount::default(),
            paid_on,
            rate,
        });
        set(&mut self.payment_of, self.names.len(), id, index);
        index
    }

    /// The managers, to share each with the books' copy after a snapshot is read.
    pub(crate) fn managers_mut(&mut self) -> impl Iterator<Item = &mut Id> {
        self.managers.iter_mut()
    }
}

/// The lookups follow from the rest (and grow at other moments in a state folded on than in
/// one read back), so two are equal when what a snapshot holds of them is.
impl PartialEq for Facts {
    fn eq(&self, other: &Facts) -> bool {
        self.names == other.names
            && self.managers == other.managers
            && self.rates == other.rates
            && self.deals == other.deals
            && self.payments == other.payments
    }
}

impl TryFrom<StoredFacts> for Facts {
    type Error = String;

    fn try_from(stored: StoredFacts) -> Result<Facts, String> {
        let StoredFacts { names, managers, rates, deals, payments } = stored;
        let mut facts = Facts { names, managers, rates, deals: Vec::new(), payments: Vec::new(), ..Facts::default() };
        for (m, manager) in facts.managers.iter().enumerate() {
            facts.manager_index.insert(manager.clone(), index_of(m));
        }
        if facts.manager_index.len() != facts.managers.len() {
            return Err("the snapshot lists a manager twice".to_string());
        }
        let names = facts.names.len();
        for (i, d) in deals.iter().enumerate() {
            if d.id as usize >= names || d.client as usize >= names || d.manager as usize >= facts.managers.len() {
                return Err(format!("deal {i} of the snapshot names a name or manager it does not hold"));
            }
            if find(&facts.deal_of, Some(d.id)).is_some() {
                return Err(format!("the snapshot holds deal {} twice", facts.names.name(d.id)));
            }
            set(&mut facts.deal_of, names, d.id, index_of(i));
        }
        for (i, p) in payments.iter().enumerate() {
            if p.id as usize >= names || p.deal as usize >= deals.len() || p.rate as usize >= facts.rates.len() {
                return Err(format!("payment {i} of the snapshot names a name, deal or rate it does not hold"));
            }
            if find(&facts.payment_of, Some(p.id)).is_some() {
                return Err(format!("the snapshot holds payment {} twice", facts.names.name(p.id)));
            }
            set(&mut facts.payment_of, names, p.id, index_of(i));
        }
        facts.deals = deals;
        facts.payments = payments;
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What BENCHMARKS.md counts per deal and payment: a record grown past these is a change in
    /// what a million of them cost, to be measured and written down.
    #[test]
    fn records_stay_at_their_counted_size() {
        assert!(std::mem::size_of::<DealRecord>() <= 80, "{}", std::mem::size_of::<DealRecord>());
        assert!(std::mem::size_of::<PaymentRecord>() <= 40, "{}", std::mem::size_of::<PaymentRecord>());
        assert_eq!(std::mem::size_of::<StoredAmount>(), 8);
    }
}
