//! Export and import of log records with their sequence numbers, arrival times and origins, so
//! that a copy of the log has the same hash chain (and so the same seals); docs/AUDIT.md.

use std::io::{BufRead, Write};

use premia_core::fold::Admitted;
use premia_core::seal::hex;
use serde::{Deserialize, Serialize};

use crate::counts::{tally, Counts};
use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::log::{chain_hash, verify_link, Hash, LogRecord, Origin, StreamPlace, GENESIS_HASH};
use crate::store::{decode_keyed_chunk, log_key, store_error, LOG_PREFIX};

/// The version of the export line format this premia writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// One log record in an export: a JSON object per line, `premia_export` first (docs/AUDIT.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportLine {
    /// The export format, 1. Written first: `premia ingest` recognises an export by a first
    /// line that begins with this member.
    #[schemars(range(min = 1, max = 1))]
    pub premia_export: u32,
    /// The record's ledger sequence number; an export lists consecutive records.
    #[schemars(range(min = 1))]
    pub seq: u64,
    /// When the original ledger received the record, in Unix milliseconds.
    pub arrived_ms: i64,
    /// How the event reached the ledger: `file`, `jetstream` (with `stream` and `stream_seq`),
    /// `nats` (a JetStream message taken in before premia recorded its place) or `ledger`
    /// (premia's own records).
    #[schemars(regex(pattern = "^(file|jetstream|nats|ledger)$"))]
    pub origin: String,
    /// For `jetstream`: the stream the message was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// For `jetstream`: the message's sequence number in that stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stream_seq: Option<u64>,
    /// The record's chain hash in the original ledger, lowercase hex:
    /// SHA-256(previous hash | seq | arrived_ms | origin | raw), see docs/AUDIT.md.
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub hash: String,
    /// The bytes received, as a JSON string (every logged event passed validation, so it is
    /// UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The bytes received in hex, for a record that is not UTF-8 (none should be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^([0-9a-f]{2})*$"))]
    pub raw_hex: Option<String>,
}

/// The JSON Schema of one export line (checked in as `schemas/export/record.json`).
pub fn export_schema() -> serde_json::Value {
    let mut schema = schemars::SchemaGenerator::default().root_schema_for::<ExportLine>().to_value();
    if let serde_json::Value::Object(map) = &mut schema {
        map.insert("$id".into(), "urn:premia:schema:export:record".into());
    }
    schema
}

impl ExportLine {
    pub fn of(record: &LogRecord) -> ExportLine {
        let (raw, raw_hex) = match std::str::from_utf8(&record.raw) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(hex(&record.raw))),
        };
        ExportLine {
            premia_export: EXPORT_FORMAT,
            seq: record.seq,
            arrived_ms: record.arrived_ms,
            origin: record.origin.as_str().to_string(),
            stream: record.origin.place().map(|p| p.stream.to_string()),
            stream_seq: record.origin.place().map(|p| p.seq),
            hash: hex(&record.hash),
            raw,
            raw_hex,
        }
    }
}

/// Whether a line is an export line (rather than an event): it is an object whose first
/// member is `premia_export`.
pub fn is_export_line(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii_start();
    trimmed.strip_prefix(b"{").is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"premia_export\""))
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the export: {0}")]
    Write(std::io::Error),
    #[error(
        "the hash chain breaks at log record {seq}, so the export stops; run `premia verify` to see what is damaged"
    )]
    ChainBroken { seq: u64 },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Writes the log records `from..=to` as export lines, checking every link of the chain from
/// the start of the log (a record's hash says nothing unless its predecessors are intact).
/// Returns the number of records written. It reads what is committed: call it on a ledger with
/// nothing pending (one just opened).
pub fn export(ledger: &Ledger, from: u64, to: u64, out: &mut impl Write) -> Result<u64, ExportError> {
    let db = ledger.db();
    let dir = ledger.dir();
    let mut last_hash = GENESIS_HASH;
    let mut written = 0u64;
    'chunks: for item in db.range(log_key(0)..) {
        let (key, value) = item.map_err(store_error(dir))?;
        if !key.starts_with(LOG_PREFIX) {
            break;
        }
        for record in decode_keyed_chunk(&key, &value)? {
            if record.seq > to {
                break 'chunks;
            }
            if !verify_link(&last_hash, &record) {
                return Err(ExportError::ChainBroken { seq: record.seq });
            }
            last_hash = record.hash;
            if record.seq >= from {
                let line = serde_json::to_string(&ExportLine::of(&record))
                    .map_err(|e| ExportError::Write(std::io::Error::other(e)))?;
                out.write_all(line.as_bytes()).and_then(|_| out.write_all(b"\n")).map_err(ExportError::Write)?;
                written += 1;
            }
        }
    }
    out.flush().map_err(ExportError::Write)?;
    Ok(written)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Log records appended.
    pub records: u64,
    /// Records of the export that this ledger already held (the same chain): skipped, so that
    /// ingesting an export twice changes nothing, as with any other file.
    pub already_held: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The chain hash after the last record, lowercase hex: the same as in the exporting ledger.
    pub last_hash: String,
    /// What became of the imported events (as an ingest counts them; no duplicates can occur).
    pub counts: Counts,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the input: {0}")]
    Read(std::io::Error),
    #[error("line {line} is not an export line ({reason}); an export holds only lines written by `premia export`, so nothing of this file is ingested after it")]
    NotExport { line: u64, reason: String },
    #[error("the export does not line up with this ledger: {0}")]
    OutOfLine(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Appends the records of an export to the ledger with their original sequence numbers,
/// arrival times and origins, so that the hash chain (and so every seal) is the one of the
/// ledger that wrote the export. Each record must continue this ledger's log: its seq must be
/// the next one and its hash must follow from this ledger's last hash; the first that does not
/// stops the import with a sentence saying why, before it is appended. Batches of
/// `batch_records` are committed as they go.
pub fn import_export(
    ledger: &mut Ledger,
    input: impl BufRead,
    batch_records: usize,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut import = Import::new(ledger);
    let mut in_batch = 0usize;
    let mut bytes_read = 0u64;
    for (number, line) in input.split(b'\n').enumerate() {
        let mut line = line.map_err(ImportError::Read)?;
        bytes_read += line.len() as u64 + 1;
        if line.ends_with(b"\r") {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = number as u64 + 1;
        let record = ImportedRecord::parse(&line, number)?;
        if import.already_held(&record)? {
            continue;
        }
        import.append(&record, number)?;
        in_batch += 1;
        if in_batch >= batch_records {
            import.ledger.submit()?;
            in_batch = 0;
            progress(bytes_read);
        }
    }
    import.finish()
}

/// One export line, read and checked on its own (not yet against any ledger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRecord {
    pub seq: u64,
    pub arrived_ms: i64,
    pub origin: Origin,
    pub raw: Vec<u8>,
    pub hash: Hash,
}

impl ImportedRecord {
    /// Line `number` of the export, or why it is not an export line.
    pub fn parse(line: &[u8], number: u64) -> Result<ImportedRecord, ImportError> {
        let not_export = |reason: String| ImportError::NotExport { line: number, reason };
        let parsed: ExportLine = serde_json::from_slice(line).map_err(|e| not_export(e.to_string()))?;
        if parsed.premia_export != EXPORT_FORMAT {
            return Err(not_export(format!(
                "it is of export format {}, and this premia reads format {EXPORT_FORMAT}",
                parsed.premia_export
            )));
        }
        let place = match (&parsed.stream, parsed.stream_seq) {
            (Some(stream), Some(seq)) => Some(StreamPlace { stream: stream.as_str().into(), seq }),
            (None, None) => None,
            _ => return Err(not_export("a record taken from JetStream names both its stream and stream_seq".into())),
        };
        let origin = Origin::parse(&parsed.origin, place).ok_or_else(|| {
            not_export(format!(
                "origin {:?} is not file, ledger, nats, or jetstream with its stream and stream_seq",
                parsed.origin
            ))
        })?;
        let raw = match (parsed.raw, &parsed.raw_hex) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(h)) => unhex(h).ok_or_else(|| not_export("raw_hex is not lowercase hex digits".to_string()))?,
            _ => return Err(not_export("it needs exactly one of raw and raw_hex".to_string())),
        };
        let hash: Hash = unhex(&parsed.hash)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| not_export("hash is not 64 lowercase hex digits".to_string()))?;
        Ok(ImportedRecord { seq: parsed.seq, arrived_ms: parsed.arrived_ms, origin, raw, hash })
    }
}

/// An import under way: the ledger it appends to and what it did so far.
struct Import<'a> {
    ledger: &'a mut Ledger,
    /// The ledger's `next_seq` before the import.
    first_ledger_seq: u64,
    report: ImportReport,
    /// The last record skipped as already held, to be checked against the ledger's own.
    skipped: Option<(u64, Hash)>,
}

impl<'a> Import<'a> {
    fn new(ledger: &'a mut Ledger) -> Import<'a> {
        let report = ImportReport {
            records: 0,
            already_held: 0,
            first_seq: None,
            last_seq: None,
            last_hash: hex(&ledger.last_hash()),
            counts: Counts::default(),
        };
        Import { first_ledger_seq: ledger.state().next_seq(), ledger, report, skipped: None }
    }

    /// Whether the ledger holds `record` already (at the start of the export, with nothing
    /// appended yet). The chain commits to everything before a record, so equal hashes at seq
    /// `next - 1` mean the whole prefix is the same.
    fn already_held(&mut self, record: &ImportedRecord) -> Result<bool, ImportError> {
        let next = self.ledger.state().next_seq();
        let follows_skipped = self.skipped.is_none_or(|(seq, _)| seq + 1 == record.seq);
        if record.seq >= next || self.report.records > 0 || !follows_skipped {
            return Ok(false);
        }
        if record.seq == next - 1 && record.hash != self.ledger.last_hash() {
            return Err(ImportError::OutOfLine(format!(
                "this ledger already holds a record {} that differs from the export's: it holds another log. Ingest the export into an empty data dir",
                record.seq
            )));
        }
        self.skipped = Some((record.seq, record.hash));
        self.report.already_held += 1;
        Ok(true)
    }

    /// Appends `record` (line `number` of the export) when it continues the ledger's log.
    fn append(&mut self, record: &ImportedRecord, number: u64) -> Result<(), ImportError> {
        let next = self.ledger.state().next_seq();
        if record.seq != next {
            return Err(ImportError::OutOfLine(if self.report.records == 0 && self.skipped.is_none() {
                format!(
                    "it starts at ledger seq {}, but this ledger's next seq is {next}. An export can only be ingested into a ledger that holds exactly the records before it: an empty data dir for an export that starts at seq 1 (`premia export --from-seq 1`)",
                    record.seq
                )
            } else {
                format!(
                    "line {number} holds seq {} where seq {next} should follow; the export is incomplete or was edited",
                    record.seq
                )
            }));
        }
        if chain_hash(&self.ledger.last_hash(), record.seq, record.arrived_ms, &record.origin, &record.raw)
            != record.hash
        {
            return Err(ImportError::OutOfLine(if self.report.records == 0 && next > 1 {
                format!(
                    "record {next} of the export does not follow this ledger's record {}: the ledger holds other records than the one the export was taken from. Ingest the export into an empty data dir",
                    next - 1
                )
            } else {
                format!(
                    "record {} (line {number}) does not have the hash it was exported with: the export was edited or damaged",
                    record.seq
                )
            }));
        }
        let folded = self.ledger.append_replayed(record.seq, record.arrived_ms, record.origin.clone(), &record.raw)?;
        assert_eq!(self.ledger.last_hash(), record.hash, "an appended record has the hash its link was checked with");
        let seq = record.seq;
        tally(&mut self.report.counts, &Admitted::Logged { seq, preamble: None, folded }, self.first_ledger_seq);
        self.report.first_seq.get_or_insert(seq);
        self.report.last_seq = Some(seq);
        self.report.records += 1;
        Ok(())
    }

    /// Commits what is left and completes the report.
    fn finish(self) -> Result<ImportReport, ImportError> {
        let Import { ledger, first_ledger_seq, mut report, skipped } = self;
        // An export that ends inside what this ledger holds: its last record must be the ledger's.
        if let Some((seq, hash)) = skipped {
            if seq + 1 < ledger.state().next_seq() && ledger.record(seq)?.map(|r| r.hash) != Some(hash) {
                return Err(ImportError::OutOfLine(format!(
                    "this ledger already holds a record {seq} that differs from the export's: it holds another log. Ingest the export into an empty data dir"
                )));
            }
        }
        ledger.commit()?;
        report.counts.parked = ledger.state().parked().range(first_ledger_seq..).count() as u64;
        report.last_hash = hex(&ledger.last_hash());
        Ok(report)
    }
}

/// Lowercase hex, as an export writes it (`u8::from_str_radix` alone would also take "+f" and
/// "AB", so a hash or raw_hex that differs from what was written would read as the same bytes).
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lines_are_recognised_by_their_first_member() {
        assert!(is_export_line(br#"{"premia_export":1,"seq":1}"#));
        assert!(is_export_line(br#"  { "premia_export" : 1}"#));
        assert!(!is_export_line(br#"{"specversion":"1.0","premia_export":1}"#));
        assert!(!is_export_line(b"premia_export"));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 0xfe, 0xff])), Some(vec![0, 1, 0xfe, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    /// Found by the export fuzz target: "+f" and "AB" were read as hex.
    #[test]
    fn only_lowercase_hex_digits_are_hex() {
        assert_eq!(unhex("+f"), None);
        assert_eq!(unhex("AB"), None);
        assert_eq!(unhex("-0"), None);
        assert_eq!(unhex("0f"), Some(vec![15]));
    }
}
