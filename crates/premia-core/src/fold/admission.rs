//! Admission: an offered line is validated, checked against the events already logged (a
//! duplicate is counted, a conflict rejected) and numbered; a log record read back is folded
//! again at its own number.

use std::sync::Arc;

use crate::event::{parse_event, parses_alike, Admission, Event, EventType};
use crate::reject::{Reason, Rejection};
use crate::scheme::Scheme;

use super::outcome::{Admitted, Folded, OwnRecord, ReplayError};
use super::state::{fingerprint, Identity, LedgerState};

/// The source premia's own records carry.
pub const OWN_SOURCE: &str = "premia/ledger";

impl LedgerState {
    /// Offers one input line. On `Logged` the caller must append the preamble (if any) and the
    /// line to the log, in that order, before reporting anything as done.
    pub fn admit(&mut self, raw: &[u8], admission: Admission) -> Admitted {
        let parsed = parse_event(raw, &self.scheme, admission);
        let scheme = self.scheme.clone();
        self.admit_parsed(raw, parsed, &scheme, admission)
    }

    /// [`admit`](Self::admit) for a line already parsed (on another thread, say) under
    /// `parsed_with`. When a scheme activated since then is in force, the line is parsed again.
    pub fn admit_parsed(
        &mut self,
        raw: &[u8],
        parsed: Result<Event, Rejection>,
        parsed_with: &Arc<Scheme>,
        admission: Admission,
    ) -> Admitted {
        let parsed =
            if Arc::ptr_eq(parsed_with, &self.scheme) { parsed } else { parse_event(raw, &self.scheme, admission) };
        let event = match parsed {
            Ok(e) => e,
            Err(rejection) => return Admitted::Rejected(rejection),
        };
        if let Some(seen) = self.seen_before(&event) {
            return seen;
        }
        let preamble = self.log_scheme_first(event.data.event_type());
        let seq = self.take_seq();
        self.seen.insert(Identity::of(event.identity), fingerprint(event.fingerprint));
        let folded = self.fold(seq, event);
        Admitted::Logged { seq, preamble, folded }
    }

    /// What an event with the source and id of one already logged is: a duplicate when its
    /// content is the same, a conflict when not (RULES.md section 10). `None` for a new one.
    fn seen_before(&self, event: &Event) -> Option<Admitted> {
        let &first = self.seen.get(&Identity::of(event.identity))?;
        if first == fingerprint(event.fingerprint) {
            return Some(Admitted::Duplicate);
        }
        Some(Admitted::Rejected(Rejection::new(
            Reason::Conflict,
            format!(
                "an event with source {:?} and id {:?} was already received with other content; the first copy stands. Use a new id for a new fact",
                event.source, event.id
            ),
        )))
    }

    /// Before the first event that is not a scheme activation, the ledger logs (and folds) the
    /// scheme in force, so a replay never depends on which scheme was built in.
    fn log_scheme_first(&mut self, event_type: EventType) -> Option<OwnRecord> {
        if self.scheme_seq.is_some() || event_type == EventType::SchemeActivated {
            return None;
        }
        let raw = scheme_activation_record(&self.scheme, self.next_seq);
        let seq = self.next_seq;
        match self.replay(seq, &raw) {
            Ok(_) => Some(OwnRecord { seq, raw }),
            Err(e) => unreachable!("the ledger's own scheme record must fold: {e}"),
        }
    }

    /// The next sequence number, taken: each is given to one record, in increasing order.
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        debug_assert!(seq >= 1, "sequence numbers start at 1");
        self.next_seq += 1;
        seq
    }

    /// Folds a record read back from the log. The log holds only events that were admitted, so
    /// anything but a clean fold means the log or the code changed.
    pub fn replay(&mut self, seq: u64, raw: &[u8]) -> Result<Vec<Folded>, ReplayError> {
        if seq != self.next_seq {
            return Err(ReplayError::OutOfOrder { seq, expected: self.next_seq });
        }
        let parsed = parse_event(raw, &self.scheme, Admission::Operator);
        self.replay_event(seq, parsed)
    }

    /// [`replay`](Self::replay) for a record read back after records before it were skipped on
    /// purpose: a replay of one period folds only the records that period depends on
    /// (`replay_index::ReplayIndex`), and the gaps are records that cannot change its outcome.
    pub fn replay_selected(&mut self, seq: u64, raw: &[u8]) -> Result<Vec<Folded>, ReplayError> {
        if seq < self.next_seq {
            return Err(ReplayError::OutOfOrder { seq, expected: self.next_seq });
        }
        self.next_seq = seq;
        self.replay(seq, raw)
    }

    /// [`replay_selected`](Self::replay_selected) for a record already parsed (on another
    /// thread, say) under `parsed_with`. When the scheme in force validates otherwise
    /// ([`parses_alike`]), the record is parsed again, so the outcome is the same as
    /// `replay_selected`'s.
    pub fn replay_selected_parsed(
        &mut self,
        seq: u64,
        raw: &[u8],
        parsed: Result<Event, Rejection>,
        parsed_with: &Scheme,
    ) -> Result<Vec<Folded>, ReplayError> {
        if seq < self.next_seq {
            return Err(ReplayError::OutOfOrder { seq, expected: self.next_seq });
        }
        self.next_seq = seq;
        let parsed = if parses_alike(parsed_with, &self.scheme) {
            parsed
        } else {
            parse_event(raw, &self.scheme, Admission::Operator)
        };
        self.replay_event(seq, parsed)
    }

    /// Folds a parsed record at `seq`, which must be the next seq.
    fn replay_event(&mut self, seq: u64, parsed: Result<Event, Rejection>) -> Result<Vec<Folded>, ReplayError> {
        debug_assert_eq!(seq, self.next_seq, "a record is folded at the next seq");
        let event = parsed.map_err(|rejection| ReplayError::Invalid { seq, rejection })?;
        if self.seen.insert(Identity::of(event.identity), fingerprint(event.fingerprint)).is_some() {
            return Err(ReplayError::Repeated { seq });
        }
        let taken = self.take_seq();
        debug_assert_eq!(taken, seq, "record {seq} is folded at its own number");
        Ok(self.fold(seq, event))
    }
}

/// The `scheme.activated` record premia writes itself, as canonical JSON bytes (no clock).
pub fn scheme_activation_record(scheme: &Scheme, seq: u64) -> Vec<u8> {
    let event = serde_json::json!({
        "specversion": "1.0",
        "id": format!("scheme-{seq}"),
        "source": OWN_SOURCE,
        "type": EventType::SchemeActivated.as_str(),
        "data": scheme.to_json(),
    });
    match serde_json::to_vec(&event) {
        Ok(bytes) => bytes,
        Err(e) => unreachable!("a JSON value, whose keys are strings, always serializes: {e}"),
    }
}
