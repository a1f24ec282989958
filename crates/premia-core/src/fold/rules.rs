//! The rules of RULES.md sections 3-5 and 8-10 applied to one event: what it books, whether it
//! waits for a deal or payment not yet known, or which rule rejects it.

use std::sync::Arc;

use rust_decimal::Decimal;
use time::Date;

use crate::calendar::Period;
use crate::event::{
    DealCancelled, DealCreated, Event, EventData, Fault, Id, PaymentLate, PaymentReceived, PaymentRefunded,
    PaymentTerms,
};
use crate::money::mul_div_round;
use crate::reject::{Reason, Rejection};

use super::book::ManagerBook;
use super::entry::{Entry, EntryDetail, Timing};
use super::records::{Deal, Payment, WaitKey};
use super::state::LedgerState;
use super::stored_amount::StoredAmount;

/// What the rules made of one event applied to the state: it booked entries (and the deal or
/// payment it created is now known to whatever waits for it), it must wait for a deal or payment
/// not known yet, or a rule rejects it. [`LedgerState::settle`] turns it into an [`Outcome`].
///
/// [`Outcome`]: super::outcome::Outcome
pub(super) enum Ruling {
    Applied { entries: Vec<Entry>, now_known: Option<WaitKey> },
    Parked(WaitKey),
    Rejected(Rejection),
}

impl Ruling {
    pub(super) fn applied(entries: Vec<Entry>, now_known: Option<WaitKey>) -> Ruling {
        Ruling::Applied { entries, now_known }
    }
}

impl LedgerState {
    /// The period a fact dated `date` is booked in: its own, or the first open one after it.
    pub(super) fn booking_period(&self, date: Date) -> (Period, Option<Period>) {
        let own = Period::of(date);
        if !self.closed.contains_key(&own) {
            return (own, None);
        }
        let mut period = own.next();
        while self.closed.contains_key(&period) {
            period = period.next();
        }
        (period, Some(own))
    }

    pub(super) fn book_of(&mut self, period: Period, manager: &Id) -> &mut ManagerBook {
        self.changes.record(|changes| {
            changes.books.insert((period, manager.clone()));
        });
        self.books.entry(period).or_default().entry(manager.clone()).or_default()
    }

    pub(super) fn apply(&mut self, seq: u64, event: &Event) -> Ruling {
        match &event.data {
            EventData::DealCreated(d) => self.apply_deal_created(seq, d),
            EventData::PaymentReceived(p) => self.apply_payment(seq, event, p),
            EventData::PaymentLate(l) => self.apply_late_notice(l),
            EventData::DealCancelled(c) => self.apply_cancellation(seq, event, c),
            EventData::PaymentRefunded(r) => self.apply_refund(seq, event, r),
            EventData::PlanAssigned(p) => self.apply_plan(seq, p),
            EventData::PeriodClosed(c) => self.apply_close(seq, event, c.period),
            EventData::SchemeActivated(scheme) => {
                self.changes.record(|changes| changes.scheme = true);
                self.calendar = Arc::new(scheme.calendar());
                self.scheme = Arc::new((**scheme).clone());
                self.scheme_seq = Some(seq);
                self.scheme_history.push(seq);
                Ruling::applied(vec![], None)
            }
        }
    }

    fn apply_deal_created(&mut self, seq: u64, d: &DealCreated) -> Ruling {
        if let Some(existing) = self.deal(&d.deal_id) {
            return Ruling::Rejected(Rejection::new(
                Reason::DealIdUsed,
                format!(
                    "deal {} was already created (ledger seq {}); deal ids must be unique",
                    d.deal_id, existing.seq
                ),
            ));
        }
        let (period, _) = self.booking_period(d.created_on);
        self.book_of(period, &d.manager_id).booked += d.amount;
        self.facts.insert_deal(seq, d, &d.manager_id);
        Ruling::applied(vec![], Some(WaitKey::Deal(d.deal_id.clone())))
    }

    fn apply_payment(&mut self, seq: u64, event: &Event, p: &PaymentReceived) -> Ruling {
        let Some(deal_index) = self.facts.deal_index(&p.deal_id) else {
            return Ruling::Parked(WaitKey::Deal(p.deal_id.clone()));
        };
        let deal = self.facts.deal(deal_index);
        if let Some(rejection) = self.payment_refusal(&deal, p) {
            return Ruling::Rejected(rejection);
        }
        let (timing, working_days_late, rate) = self.payment_timing(&deal, p.paid_on);
        let commission = exact(mul_div_round(&[deal.margin, p.amount, rate], deal.amount, 2));
        let margin_share = exact(mul_div_round(&[deal.margin, p.amount], deal.amount, 2));
        let paid = deal.paid + p.amount;
        debug_assert!(paid <= deal.amount, "deal {} is paid {paid} of {}: never more", p.deal_id, deal.amount);
        let manager_id = self.facts.manager_of(deal_index).clone();
        let grace_working_days = self.scheme.commission.grace_working_days;
        let detail = EntryDetail::Commission {
            deal_id: p.deal_id.clone(),
            payment_id: p.payment_id.clone(),
            timing,
            working_days_late,
            grace_working_days,
            rate,
        };
        let booking = self.booking_period(p.paid_on);
        let entry = Entry::booked(seq, event, manager_id, booking, commission, detail);
        let book = self.book_of(entry.period, &entry.manager_id);
        book.received += p.amount;
        book.margin_received += margin_share;
        book.book(&entry);
        self.facts.deal_record_mut(deal_index).paid = StoredAmount::new(paid);
        self.facts.insert_payment(seq, &p.payment_id, deal_index, p.amount, p.paid_on, rate);
        Ruling::applied(vec![entry], Some(WaitKey::Payment(p.payment_id.clone())))
    }

    /// The rule a payment on `deal` breaks, if any: its id is used, the deal is cancelled, or it
    /// is more than the deal still owes.
    fn payment_refusal(&self, deal: &Deal<'_>, p: &PaymentReceived) -> Option<Rejection> {
        if let Some(existing) = self.payment(&p.payment_id) {
            return Some(Rejection::new(
                Reason::PaymentIdUsed,
                format!(
                    "payment {} was already received (ledger seq {}); payment ids must be unique",
                    p.payment_id, existing.seq
                ),
            ));
        }
        if let Some((cancelled_on, _)) = deal.cancelled {
            return Some(Rejection::new(
                Reason::DealCancelled,
                format!("deal {} was cancelled on {}; no payment is accepted on a cancelled deal (send a refund instead if money must go back)", p.deal_id, crate::calendar::date_text(cancelled_on)),
            ));
        }
        let outstanding = deal.amount - deal.paid;
        if p.amount > outstanding {
            return Some(Rejection::new(
                Reason::PaymentExceedsBalance,
                format!(
                    "payment {} of {} is above the {} still owed on deal {} (amount {}, paid so far {})",
                    p.payment_id, p.amount, outstanding, p.deal_id, deal.amount, deal.paid
                ),
            ));
        }
        None
    }

    /// How fast a payment on `deal` made on `paid_on` came (RULES.md section 3): its timing
    /// class, the working days after the due date, and the rate it earns.
    fn payment_timing(&self, deal: &Deal<'_>, paid_on: Date) -> (Timing, u32, Decimal) {
        let rules = &self.scheme.commission;
        if deal.payment_terms == PaymentTerms::Prepayment && paid_on <= deal.due_date {
            return (Timing::Prepaid, 0, rules.prepaid_rate);
        }
        let late = self.calendar.working_days_between(deal.due_date, paid_on);
        if late <= rules.grace_working_days {
            (Timing::OnTime, late, rules.on_time_rate)
        } else {
            (Timing::Late, late, rules.late_rate)
        }
    }

    fn apply_late_notice(&mut self, l: &PaymentLate) -> Ruling {
        let Some(deal_index) = self.facts.deal_index(&l.deal_id) else {
            return Ruling::Parked(WaitKey::Deal(l.deal_id.clone()));
        };
        let deal = self.facts.deal(deal_index);
        if deal.cancelled.is_some() {
            return Ruling::Rejected(Rejection::new(
                Reason::DealCancelled,
                format!("deal {} is cancelled; a late notice applies only to a deal still being paid", l.deal_id),
            ));
        }
        if deal.paid >= deal.amount {
            return Ruling::Rejected(Rejection::new(
                Reason::DealFullyPaid,
                format!("deal {} is fully paid ({}); nothing can be overdue on it", l.deal_id, deal.amount),
            ));
        }
        self.facts.deal_record_mut(deal_index).overdue = Some((l.as_of, l.days_overdue));
        Ruling::applied(vec![], None)
    }

    fn apply_cancellation(&mut self, seq: u64, event: &Event, c: &DealCancelled) -> Ruling {
        let fine_amount = self.scheme.fines.manager_fault;
        let Some(deal_index) = self.facts.deal_index(&c.deal_id) else {
            return Ruling::Parked(WaitKey::Deal(c.deal_id.clone()));
        };
        if let Some((on, _)) = self.facts.deal(deal_index).cancelled {
            return Ruling::Rejected(Rejection::new(
                Reason::DealAlreadyCancelled,
                format!(
                    "deal {} was already cancelled on {}; a deal is cancelled once",
                    c.deal_id,
                    crate::calendar::date_text(on)
                ),
            ));
        }
        self.facts.deal_record_mut(deal_index).cancelled = Some((c.cancelled_on, c.fault));
        self.cancellations.insert(c.deal_id.clone(), seq);
        if c.fault != Fault::Manager {
            return Ruling::applied(vec![], None);
        }
        let manager_id = self.facts.manager_of(deal_index).clone();
        let booking = self.booking_period(c.cancelled_on);
        let detail = EntryDetail::Fine { deal_id: c.deal_id.clone() };
        let entry = Entry::booked(seq, event, manager_id, booking, -fine_amount, detail);
        self.book_of(entry.period, &entry.manager_id).book(&entry);
        Ruling::applied(vec![entry], None)
    }

    fn apply_refund(&mut self, seq: u64, event: &Event, r: &PaymentRefunded) -> Ruling {
        let Some(payment_index) = self.facts.payment_index(&r.payment_id) else {
            return Ruling::Parked(WaitKey::Payment(r.payment_id.clone()));
        };
        let payment = self.facts.payment(payment_index);
        if let Some(rejection) = self.refund_refusal(&payment, r) {
            return Ruling::Rejected(rejection);
        }
        let deal_index = self.facts.deal_of_payment(payment_index);
        let deal = self.facts.deal(deal_index);
        let clawback = -exact(mul_div_round(&[deal.margin, r.amount, payment.rate], deal.amount, 2));
        let margin_share = exact(mul_div_round(&[deal.margin, r.amount], deal.amount, 2));
        let refunded = payment.refunded + r.amount;
        debug_assert!(
            refunded <= payment.amount,
            "payment {} is refunded {refunded} of {}: never more",
            r.payment_id,
            payment.amount
        );
        let detail = EntryDetail::Clawback {
            deal_id: Id::from(payment.deal_id),
            payment_id: r.payment_id.clone(),
            refund_id: r.refund_id.clone(),
            refunded: r.amount,
            rate: payment.rate,
        };
        let manager_id = self.facts.manager_of(deal_index).clone();
        let booking = self.booking_period(r.refunded_on);
        let entry = Entry::booked(seq, event, manager_id, booking, clawback, detail);
        let book = self.book_of(entry.period, &entry.manager_id);
        book.received -= r.amount;
        book.margin_received -= margin_share;
        book.book(&entry);
        self.facts.payment_record_mut(payment_index).refunded = StoredAmount::new(refunded);
        self.refunds.insert(r.refund_id.clone());
        self.refunds_of.entry(r.payment_id.clone()).or_default().push(seq);
        Ruling::applied(vec![entry], None)
    }

    /// The rule a refund of `payment` breaks, if any: its id is used, or it is more than is
    /// left of the payment.
    fn refund_refusal(&self, payment: &Payment<'_>, r: &PaymentRefunded) -> Option<Rejection> {
        if self.refunds.contains(&r.refund_id) {
            return Some(Rejection::new(
                Reason::RefundIdUsed,
                format!("refund {} was already booked; refund ids must be unique", r.refund_id),
            ));
        }
        let left = payment.amount - payment.refunded;
        if r.amount > left {
            return Some(Rejection::new(
                Reason::RefundExceedsPayment,
                format!(
                    "refund {} of {} is above the {} left of payment {} (paid {}, refunded so far {})",
                    r.refund_id, r.amount, left, r.payment_id, payment.amount, payment.refunded
                ),
            ));
        }
        None
    }
}

/// Unwraps an exact computation whose inputs validation has bounded.
pub(super) fn exact(value: Option<Decimal>) -> Decimal {
    match value {
        Some(v) => v,
        None => unreachable!("validated amounts and scheme parameters keep every product within i128"),
    }
}
