//! A synthetic CRM: a deterministic, realistic stream of events for benchmarks, crash tests and
//! property tests. Deals are created, paid (early, on time, late; in full or in parts), noticed
//! late, cancelled and refunded; plans are assigned each month and months are closed a few days
//! after they end, so late facts land as prior-period adjustments. With `noise`, the stream also
//! carries redeliveries, invalid lines and payments that arrive before their deal.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::{Date, Duration};

use premia_core::calendar::date_text;
use premia_core::Period;

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub managers: u32,
    pub noise: bool,
    /// Events per simulated day: with the default, 1,000,000 events span about a year.
    pub events_per_day: u64,
    pub start: Date,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions { managers: 100, noise: true, events_per_day: 3000, start: time::macros::date!(2026 - 01 - 01) }
    }
}

struct OpenDeal {
    id: u64,
    outstanding_kopecks: i64,
}

struct PaidPayment {
    id: u64,
    refundable_kopecks: i64,
}

pub struct Synth {
    rng: ChaCha8Rng,
    options: SynthOptions,
    day: Date,
    emitted: u64,
    next_event: u64,
    next_deal: u64,
    next_payment: u64,
    next_refund: u64,
    deals: Vec<OpenDeal>,
    payments: Vec<PaidPayment>,
    queue: VecDeque<String>,
    recent_lines: VecDeque<String>,
}

const WINDOW: usize = 4000;

fn money(kopecks: i64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

impl Synth {
    pub fn new(seed: u64, options: SynthOptions) -> Synth {
        let mut synth = Synth {
            rng: ChaCha8Rng::seed_from_u64(seed),
            day: options.start,
            options,
            emitted: 0,
            next_event: 1,
            next_deal: 1,
            next_payment: 1,
            next_refund: 1,
            deals: Vec::new(),
            payments: Vec::new(),
            queue: VecDeque::new(),
            recent_lines: VecDeque::new(),
        };
        synth.assign_plans(Period::of(synth.day));
        synth
    }

    fn envelope(&mut self, event_type: &str, data: String) -> String {
        let id = self.next_event;
        self.next_event += 1;
        format!(
            r#"{{"specversion":"1.0","id":"e-{id}","source":"crm/synth","type":"{event_type}","time":"{}T12:00:00Z","data":{data}}}"#,
            date_text(self.day)
        )
    }

    fn assign_plans(&mut self, period: Period) {
        for m in 1..=self.options.managers {
            let target = self.rng.gen_range(20_000..400_000) * 10_000; // 200 000.00 .. 4 000 000.00
            let line = self.envelope(
                "plan.assigned",
                format!(r#"{{"manager_id":"M-{m}","period":"{period}","target":"{}"}}"#, money(target)),
            );
            self.queue.push_back(line);
        }
    }

    fn advance_day(&mut self) {
        let before = Period::of(self.day);
        self.day += Duration::days(1);
        let now = Period::of(self.day);
        if now != before {
            self.assign_plans(now);
        }
        if self.day.day() == 5 {
            let line = self.envelope("period.closed", format!(r#"{{"period":"{}"}}"#, now.previous()));
            self.queue.push_back(line);
        }
    }

    fn deal_created(&mut self) -> (u64, String) {
        let id = self.next_deal;
        self.next_deal += 1;
        let manager = self.rng.gen_range(1..=self.options.managers);
        let client = self.rng.gen_range(1..=self.options.managers * 20);
        let amount = self.rng.gen_range(1_000_000..200_000_000i64);
        let margin = amount * self.rng.gen_range(5..40) / 100;
        let terms = if self.rng.gen_bool(0.4) { "prepayment" } else { "postpayment" };
        let due = self.day + Duration::days(self.rng.gen_range(3..30));
        self.deals.push(OpenDeal { id, outstanding_kopecks: amount });
        if self.deals.len() > WINDOW {
            self.deals.swap_remove(0);
        }
        let line = self.envelope(
            "deal.created",
            format!(
                r#"{{"deal_id":"D-{id}","manager_id":"M-{manager}","client_id":"C-{client}","amount":"{}","margin":"{}","currency":"RUB","payment_terms":"{terms}","due_date":"{}","created_on":"{}"}}"#,
                money(amount),
                money(margin),
                date_text(due),
                date_text(self.day)
            ),
        );
        (id, line)
    }

    /// A payment on open deal `index`, or `None` when it is paid up.
    fn payment(&mut self, index: usize) -> Option<String> {
        let outstanding = self.deals[index].outstanding_kopecks;
        if outstanding <= 0 {
            self.deals.swap_remove(index);
            return None;
        }
        let amount = if outstanding > 200 && self.rng.gen_bool(0.4) { outstanding / 2 } else { outstanding };
        self.deals[index].outstanding_kopecks -= amount;
        let deal = self.deals[index].id;
        let id = self.next_payment;
        self.next_payment += 1;
        // Now and then a payment is reported late, dated back into a month that may be closed.
        let paid_on = if self.rng.gen_bool(0.01) { self.day - Duration::days(20) } else { self.day };
        self.payments.push(PaidPayment { id, refundable_kopecks: amount });
        if self.payments.len() > WINDOW {
            self.payments.swap_remove(0);
        }
        Some(self.envelope(
            "payment.received",
            format!(
                r#"{{"payment_id":"P-{id}","deal_id":"D-{deal}","amount":"{}","currency":"RUB","paid_on":"{}"}}"#,
                money(amount),
                date_text(paid_on)
            ),
        ))
    }

    fn step(&mut self) {
        if self.emitted > 0 && self.emitted.is_multiple_of(self.options.events_per_day) {
            self.advance_day();
            if !self.queue.is_empty() {
                return;
            }
        }
        let roll: f64 = self.rng.gen();
        let noise = self.options.noise;
        let line = if roll < 0.30 || self.deals.is_empty() {
            let (_, deal) = self.deal_created();
            if noise && self.rng.gen_bool(0.02) {
                // The payment overtakes its deal on the wire.
                let index = self.deals.len() - 1;
                if let Some(payment) = self.payment(index) {
                    self.queue.push_back(payment);
                }
            }
            deal
        } else if roll < 0.72 {
            let index = self.rng.gen_range(0..self.deals.len());
            match self.payment(index) {
                Some(line) => line,
                None => return,
            }
        } else if roll < 0.77 {
            let index = self.rng.gen_range(0..self.deals.len());
            let deal = self.deals[index].id;
            let days = self.rng.gen_range(1..20);
            self.envelope(
                "payment.late",
                format!(r#"{{"deal_id":"D-{deal}","as_of":"{}","days_overdue":{days}}}"#, date_text(self.day)),
            )
        } else if roll < 0.81 {
            let index = self.rng.gen_range(0..self.deals.len());
            let deal = self.deals.swap_remove(index).id;
            let fault = ["manager", "client", "other"][self.rng.gen_range(0..3)];
            self.envelope(
                "deal.cancelled",
                format!(r#"{{"deal_id":"D-{deal}","cancelled_on":"{}","fault":"{fault}"}}"#, date_text(self.day)),
            )
        } else if roll < 0.87 && !self.payments.is_empty() {
            let index = self.rng.gen_range(0..self.payments.len());
            let left = self.payments[index].refundable_kopecks;
            if left <= 0 {
                self.payments.swap_remove(index);
                return;
            }
            let amount = if left > 100 && self.rng.gen_bool(0.5) { left / 2 } else { left };
            self.payments[index].refundable_kopecks -= amount;
            let payment = self.payments[index].id;
            let id = self.next_refund;
            self.next_refund += 1;
            self.envelope(
                "payment.refunded",
                format!(r#"{{"refund_id":"R-{id}","payment_id":"P-{payment}","amount":"{}","currency":"RUB","refunded_on":"{}"}}"#, money(amount), date_text(self.day)),
            )
        } else if noise && roll < 0.90 && !self.recent_lines.is_empty() {
            // A redelivery: the very same bytes again.
            let index = self.rng.gen_range(0..self.recent_lines.len());
            self.recent_lines[index].clone()
        } else if noise && roll < 0.91 {
            let deal = self.deals[self.rng.gen_range(0..self.deals.len())].id;
            self.envelope(
                "payment.received",
                format!(
                    r#"{{"payment_id":"P-x{}","deal_id":"D-{deal}","amount":"10.00","currency":"USD","paid_on":"{}"}}"#,
                    self.next_event,
                    date_text(self.day)
                ),
            )
        } else {
            let index = self.rng.gen_range(0..self.deals.len());
            match self.payment(index) {
                Some(line) => line,
                None => return,
            }
        };
        self.queue.push_back(line);
    }
}

impl Iterator for Synth {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        while self.queue.is_empty() {
            self.step();
        }
        let line = self.queue.pop_front()?;
        self.emitted += 1;
        if self.options.noise {
            self.recent_lines.push_back(line.clone());
            if self.recent_lines.len() > 1000 {
                self.recent_lines.pop_front();
            }
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let a: Vec<String> = Synth::new(7, SynthOptions::default()).take(2000).collect();
        let b: Vec<String> = Synth::new(7, SynthOptions::default()).take(2000).collect();
        let c: Vec<String> = Synth::new(8, SynthOptions::default()).take(2000).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
