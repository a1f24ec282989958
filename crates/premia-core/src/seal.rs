//! Seals of closed periods: a digest of a period's entries chained to the log position that
//! closed it, so that a statement on paper can be compared with the ledger (docs/AUDIT.md).
//!
//! ```text
//! seal = SHA-256( "premia-seal-v1" | field(period)
//!                 | for each entry of the period, in booking order: entry
//!                 | u64 entry count | u64 close seq | chain hash of the close record (32 bytes) )
//! ```
//!
//! Integers are big-endian. Every text field is `u32 length | UTF-8 bytes`, and an entry is the
//! fields `seq, source, event_id, kind, manager_id, period, amount, adjustment_of` followed by
//! its detail (the `kind`-specific figures), all as text: numbers in decimal, decimals in their
//! shortest plain notation (`0.008`, `-2000`), an absent value as the empty text. Text rather
//! than the store's binary encoding so that the definition is independent of how premia keeps
//! entries, and an auditor can recompute it from a statement and the log alone.
//!
//! The entries come first and the close last so that a seal can be computed in one pass over
//! the log ([`SealHasher`]), without holding any period's entries in memory.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::calendar::Period;
use crate::fold::{Entry, EntryDetail};

const DOMAIN: &[u8] = b"premia-seal-v1";

/// The seal of one closed period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    pub digest: [u8; 32],
    /// The ledger sequence number of the `period.closed` record.
    pub closed_seq: u64,
    /// The log's chain hash at that record.
    pub chain_hash: [u8; 32],
    /// How many entries the period holds.
    pub entries: u64,
}

impl Seal {
    pub fn digest_hex(&self) -> String {
        hex(&self.digest)
    }

    pub fn view(&self) -> SealView {
        SealView {
            digest: self.digest_hex(),
            closed_seq: self.closed_seq,
            chain_hash: hex(&self.chain_hash),
            entries: self.entries,
        }
    }
}

/// A seal as statements print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SealView {
    /// SHA-256 of the period's entries and its close, lowercase hex (docs/AUDIT.md).
    pub digest: String,
    /// The ledger sequence number of the record that closed the period.
    pub closed_seq: u64,
    /// The log's chain hash at that record, lowercase hex.
    pub chain_hash: String,
    /// How many entries the seal covers.
    pub entries: u64,
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 15)] as char);
    }
    text
}

/// A seal computed entry by entry.
#[derive(Clone)]
pub struct SealHasher {
    hasher: Sha256,
    entries: u64,
}

impl SealHasher {
    pub fn new(period: Period) -> SealHasher {
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN);
        field(&mut hasher, period.to_string().as_bytes());
        SealHasher { hasher, entries: 0 }
    }

    pub fn add(&mut self, entry: &Entry) {
        let h = &mut self.hasher;
        text(h, entry.seq);
        field(h, entry.source.as_bytes());
        field(h, entry.event_id.as_bytes());
        field(h, entry.kind.as_str().as_bytes());
        field(h, entry.manager_id.as_bytes());
        text(h, entry.period);
        decimal(h, entry.amount);
        field(h, entry.adjustment_of.map(|p| p.to_string()).unwrap_or_default().as_bytes());
        match &entry.detail {
            EntryDetail::Commission { deal_id, payment_id, timing, working_days_late, grace_working_days, rate } => {
                field(h, deal_id.as_bytes());
                field(h, payment_id.as_bytes());
                field(h, timing.as_str().as_bytes());
                text(h, working_days_late);
                text(h, grace_working_days);
                decimal(h, *rate);
            }
            EntryDetail::Clawback { deal_id, payment_id, refund_id, refunded, rate } => {
                field(h, deal_id.as_bytes());
                field(h, payment_id.as_bytes());
                field(h, refund_id.as_bytes());
                decimal(h, *refunded);
                decimal(h, *rate);
            }
            EntryDetail::Fine { deal_id } => field(h, deal_id.as_bytes()),
            EntryDetail::PlanBonus(f) => {
                for value in [f.target, f.actual, f.bonus_base, f.achievement, f.coefficient, f.bonus] {
                    decimal(h, value);
                }
            }
        }
        self.entries += 1;
    }

    pub fn finish(mut self, closed_seq: u64, chain_hash: &[u8; 32]) -> Seal {
        self.hasher.update(self.entries.to_be_bytes());
        self.hasher.update(closed_seq.to_be_bytes());
        self.hasher.update(chain_hash);
        Seal { digest: self.hasher.finalize().into(), closed_seq, chain_hash: *chain_hash, entries: self.entries }
    }
}

/// The seal of `period`, closed by log record `closed_seq` whose chain hash is `chain_hash`.
/// `entries` are the entries booked in the period in booking order; others are skipped.
pub fn seal(period: Period, entries: &[Entry], closed_seq: u64, chain_hash: &[u8; 32]) -> Seal {
    let mut hasher = SealHasher::new(period);
    for entry in entries.iter().filter(|e| e.period == period) {
        hasher.add(entry);
    }
    hasher.finish(closed_seq, chain_hash)
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    // Ids are at most 256 characters and events at most 1 MiB, so every field fits a u32.
    hasher.update((bytes.len() as u32).to_be_bytes());
    hasher.update(bytes);
}

fn text(hasher: &mut Sha256, value: impl std::fmt::Display) {
    field(hasher, value.to_string().as_bytes());
}

fn decimal(hasher: &mut Sha256, value: Decimal) {
    // `normalize` drops trailing zeros, so 0.0080 and 0.008 (equal values) seal alike.
    text(hasher, value.normalize());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::{EntryKind, Timing};
    use std::str::FromStr;

    fn period(text: &str) -> Period {
        Period::parse(text).expect("a valid period")
    }

    fn commission(seq: u64, amount: &str) -> Entry {
        Entry {
            seq,
            source: "crm/acme".into(),
            event_id: format!("evt-{seq}").into(),
            kind: EntryKind::Commission,
            manager_id: "M-1".into(),
            period: period("2026-11"),
            amount: Decimal::from_str(amount).expect("an amount"),
            adjustment_of: None,
            detail: EntryDetail::Commission {
                deal_id: "D-1".into(),
                payment_id: format!("P-{seq}").into(),
                timing: Timing::OnTime,
                working_days_late: 3,
                grace_working_days: 10,
                rate: Decimal::from_str("0.008").expect("a rate"),
            },
        }
    }

    #[test]
    fn a_seal_depends_on_every_entry_their_order_and_the_close() {
        let p = period("2026-11");
        let hash = [7u8; 32];
        let entries = vec![commission(5, "400.00"), commission(9, "12.50")];
        let base = seal(p, &entries, 20, &hash);
        assert_eq!(base, seal(p, &entries, 20, &hash), "deterministic");
        assert_eq!(base.entries, 2);
        assert_eq!(base.closed_seq, 20);

        let mut changed = entries.clone();
        changed[1].amount = Decimal::from_str("12.51").expect("an amount");
        assert_ne!(base.digest, seal(p, &changed, 20, &hash).digest, "one kopeck");

        let reversed: Vec<Entry> = entries.iter().rev().cloned().collect();
        assert_ne!(base.digest, seal(p, &reversed, 20, &hash).digest, "order");
        assert_ne!(base.digest, seal(p, &entries[..1], 20, &hash).digest, "a missing entry");
        assert_ne!(base.digest, seal(p, &entries, 21, &hash).digest, "close position");
        assert_ne!(base.digest, seal(p, &entries, 20, &[8u8; 32]).digest, "chain hash");
        assert_ne!(base.digest, seal(period("2026-12"), &[], 20, &hash).digest);

        // Equal values in another notation seal alike: the seal is of amounts, not of bytes.
        let mut renoted = entries.clone();
        renoted[0].amount = Decimal::from_str("400").expect("an amount");
        assert_eq!(base.digest, seal(p, &renoted, 20, &hash).digest);

        // Entries of other periods are not the period's.
        let mut mixed = entries.clone();
        let mut other = commission(7, "1.00");
        other.period = period("2026-12");
        mixed.insert(1, other);
        assert_eq!(base.digest, seal(p, &mixed, 20, &hash).digest);
    }

    #[test]
    fn the_encoding_is_the_documented_one() {
        // Recomputed here by hand from the definition at the top of this file, for an empty
        // period, so that a change of the encoding cannot pass unnoticed.
        let hash = [1u8; 32];
        let mut expected = Sha256::new();
        expected.update(b"premia-seal-v1");
        expected.update(7u32.to_be_bytes());
        expected.update(b"2026-11");
        expected.update(0u64.to_be_bytes());
        expected.update(42u64.to_be_bytes());
        expected.update([1u8; 32]);
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(seal(period("2026-11"), &[], 42, &hash).digest, expected);
        assert_eq!(hex(&[0x00, 0xab, 0x0f]), "00ab0f");

        // One commission entry of 400.00, field by field as docs/AUDIT.md lists them.
        let mut expected = Sha256::new();
        expected.update(b"premia-seal-v1");
        let fields = [
            "2026-11",
            "5",
            "crm/acme",
            "evt-5",
            "commission",
            "M-1",
            "2026-11",
            "400",
            "",
            "D-1",
            "P-5",
            "on_time",
            "3",
            "10",
            "0.008",
        ];
        for f in fields {
            expected.update((f.len() as u32).to_be_bytes());
            expected.update(f.as_bytes());
        }
        expected.update(1u64.to_be_bytes());
        expected.update(42u64.to_be_bytes());
        expected.update([1u8; 32]);
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(seal(period("2026-11"), &[commission(5, "400.00")], 42, &hash).digest, expected);
    }
}
