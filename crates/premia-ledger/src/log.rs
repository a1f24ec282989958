//! The event log's record format and its SHA-256 hash chain.
//!
//! Records are written in chunks: one sled value holds the records of one committed batch, so a
//! batch costs one sled insert however many events it carries. A record is
//!
//! ```text
//! seq u64 | arrived_ms i64 | origin u8 | raw_len u32 | raw bytes | [place] | hash [u8; 32]
//! ```
//!
//! (integers big-endian) with `hash = SHA-256(previous hash | seq | arrived_ms | origin | raw)`,
//! where `origin` is the origin byte followed, for a record taken from a JetStream stream, by its
//! place there (`place` = `name_len u8 | stream name | stream_seq u64`), and the previous hash of
//! the first record all zeros. A record from a stream arrives at the message's stream timestamp,
//! so every ledger that takes in one stream builds the same chain. The offsets below name the
//! fixed part of that layout once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The length of a chain hash (SHA-256).
pub const HASH_LEN: usize = 32;
/// Where a record's `seq` starts.
pub const SEQ_AT: usize = 0;
/// Where a record's `arrived_ms` starts.
pub const ARRIVED_AT: usize = 8;
/// Where a record's origin byte is.
pub const ORIGIN_AT: usize = 16;
/// Where the length of a record's raw bytes starts.
pub const RAW_LEN_AT: usize = 17;
/// The fixed part before a record's raw bytes (seq, arrived_ms, origin, raw length); the raw
/// bytes start here.
pub const RECORD_HEADER_LEN: usize = 21;

pub type Hash = [u8; HASH_LEN];

pub const GENESIS_HASH: Hash = [0; HASH_LEN];

/// How an event reached the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// `premia ingest` of a file or standard input.
    File,
    /// A JetStream message, taken in by a premia that did not record its place (before 0.2).
    Nats,
    /// premia's own commands (`close`, `scheme activate`) and records.
    Ledger,
    /// A JetStream message, at its place in its stream.
    Stream(StreamPlace),
}

/// Where a message sits in a JetStream stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPlace {
    pub stream: std::sync::Arc<str>,
    pub seq: u64,
}

const FILE: u8 = 1;
const NATS: u8 = 2;
const LEDGER: u8 = 3;
const STREAM: u8 = 4;

impl Origin {
    fn tag(&self) -> u8 {
        match self {
            Origin::File => FILE,
            Origin::Nats => NATS,
            Origin::Ledger => LEDGER,
            Origin::Stream(_) => STREAM,
        }
    }

    /// The place bytes that follow a stream record's raw bytes (none for other origins).
    fn place_bytes(&self, into: &mut Vec<u8>) {
        if let Origin::Stream(place) = self {
            let name = place.stream.as_bytes();
            assert!(name.len() <= usize::from(u8::MAX), "JetStream stream names are at most 255 bytes");
            into.push(name.len() as u8);
            into.extend_from_slice(name);
            into.extend_from_slice(&place.seq.to_be_bytes());
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::File => "file",
            Origin::Nats => "nats",
            Origin::Ledger => "ledger",
            Origin::Stream(_) => "jetstream",
        }
    }

    /// The origin named by [`as_str`](Self::as_str), with its stream place when it has one.
    pub fn parse(text: &str, place: Option<StreamPlace>) -> Option<Origin> {
        match (text, place) {
            ("file", None) => Some(Origin::File),
            ("nats", None) => Some(Origin::Nats),
            ("ledger", None) => Some(Origin::Ledger),
            ("jetstream", Some(place)) => Some(Origin::Stream(place)),
            _ => None,
        }
    }

    /// The stream place of a record taken from JetStream.
    pub fn place(&self) -> Option<&StreamPlace> {
        match self {
            Origin::Stream(place) => Some(place),
            _ => None,
        }
    }
}

/// One logged event, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: u64,
    /// Unix time in milliseconds when the ledger received it.
    pub arrived_ms: i64,
    pub origin: Origin,
    pub raw: Vec<u8>,
    pub hash: Hash,
}

pub fn chain_hash(previous: &Hash, seq: u64, arrived_ms: i64, origin: &Origin, raw: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(seq.to_be_bytes());
    hasher.update(arrived_ms.to_be_bytes());
    hasher.update([origin.tag()]);
    if origin.place().is_some() {
        let mut place = Vec::new();
        origin.place_bytes(&mut place);
        hasher.update(place);
    }
    hasher.update(raw);
    hasher.finalize().into()
}

/// Appends one record to a chunk buffer and returns its hash.
pub fn encode_record(
    chunk: &mut Vec<u8>,
    previous: &Hash,
    seq: u64,
    arrived_ms: i64,
    origin: &Origin,
    raw: &[u8],
) -> Hash {
    let hash = chain_hash(previous, seq, arrived_ms, origin, raw);
    let start = chunk.len();
    let raw_len = u32::try_from(raw.len()).expect("an input line is at most 1 MiB, far below 4 GiB");
    chunk.extend_from_slice(&seq.to_be_bytes());
    chunk.extend_from_slice(&arrived_ms.to_be_bytes());
    chunk.push(origin.tag());
    chunk.extend_from_slice(&raw_len.to_be_bytes());
    chunk.extend_from_slice(raw);
    let place_at = chunk.len();
    origin.place_bytes(chunk);
    let place_len = chunk.len() - place_at;
    chunk.extend_from_slice(&hash);
    debug_assert_eq!(
        chunk.len() - start,
        RECORD_HEADER_LEN + raw.len() + place_len + HASH_LEN,
        "a record as the layout says"
    );
    hash
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log chunk starting at seq {chunk_seq} is damaged at byte {offset}: {what}")]
pub struct ChunkError {
    pub chunk_seq: u64,
    pub offset: usize,
    pub what: &'static str,
}

/// Reads the records of one chunk, without checking hashes (see [`verify_link`]).
pub fn decode_chunk(chunk_seq: u64, chunk: &[u8]) -> Result<Vec<LogRecord>, ChunkError> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < chunk.len() {
        let (record, next) = decode_record(chunk_seq, chunk, at)?;
        records.push(record);
        at = next;
    }
    Ok(records)
}

/// The records of a damaged chunk before the first one that cannot be decoded.
pub fn decode_readable_prefix(chunk_seq: u64, chunk: &[u8]) -> Vec<LogRecord> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while let Ok((record, next)) = decode_record(chunk_seq, chunk, at) {
        records.push(record);
        at = next;
    }
    records
}

/// The record that starts at byte `at` of `chunk`, and where the next one starts.
fn decode_record(chunk_seq: u64, chunk: &[u8], at: usize) -> Result<(LogRecord, usize), ChunkError> {
    let err = |offset, what| ChunkError { chunk_seq, offset, what };
    let header = chunk.get(at..at + RECORD_HEADER_LEN).ok_or_else(|| err(at, "truncated record header"))?;
    let seq = u64::from_be_bytes(header_field(&header[SEQ_AT..ARRIVED_AT]));
    let arrived_ms = i64::from_be_bytes(header_field(&header[ARRIVED_AT..ORIGIN_AT]));
    let len = u32::from_be_bytes(header_field(&header[RAW_LEN_AT..RECORD_HEADER_LEN])) as usize;
    let raw_at = at + RECORD_HEADER_LEN;
    let raw = chunk.get(raw_at..raw_at + len).ok_or_else(|| err(at, "truncated raw bytes"))?;
    let place_at = raw_at + len;
    let (origin, hash_at) = match header[ORIGIN_AT] {
        FILE => (Origin::File, place_at),
        NATS => (Origin::Nats, place_at),
        LEDGER => (Origin::Ledger, place_at),
        STREAM => decode_place(chunk, place_at).ok_or_else(|| err(place_at, "truncated stream place"))?,
        _ => return Err(err(at + ORIGIN_AT, "unknown origin")),
    };
    let hash: Hash = chunk
        .get(hash_at..hash_at + HASH_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| err(hash_at, "truncated hash"))?;
    Ok((LogRecord { seq, arrived_ms, origin, raw: raw.to_vec(), hash }, hash_at + HASH_LEN))
}

/// A stream record's place, which starts at byte `at`, and where its hash starts.
fn decode_place(chunk: &[u8], at: usize) -> Option<(Origin, usize)> {
    let name_len = usize::from(*chunk.get(at)?);
    let name = std::str::from_utf8(chunk.get(at + 1..at + 1 + name_len)?).ok()?;
    let seq_at = at + 1 + name_len;
    let seq = u64::from_be_bytes(chunk.get(seq_at..seq_at + 8)?.try_into().ok()?);
    Some((Origin::Stream(StreamPlace { stream: name.into(), seq }), seq_at + 8))
}

/// A fixed-size field of a record header, whose length the layout's offsets give.
fn header_field<const N: usize>(bytes: &[u8]) -> [u8; N] {
    assert_eq!(bytes.len(), N, "the record layout's offsets give a {N}-byte field");
    let mut field = [0u8; N];
    field.copy_from_slice(bytes);
    field
}

/// Whether `record` follows `previous` in the chain.
pub fn verify_link(previous: &Hash, record: &LogRecord) -> bool {
    chain_hash(previous, record.seq, record.arrived_ms, &record.origin, &record.raw) == record.hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_chain() {
        let mut chunk = Vec::new();
        let h1 = encode_record(&mut chunk, &GENESIS_HASH, 1, 1000, &Origin::File, b"{\"a\":1}");
        let h2 = encode_record(&mut chunk, &h1, 2, 1001, &Origin::Nats, b"");
        let place = StreamPlace { stream: "PREMIA_EVENTS".into(), seq: 77 };
        let h3 = encode_record(&mut chunk, &h2, 3, 1002, &Origin::Stream(place.clone()), b"{}");
        let records = decode_chunk(1, &chunk).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].origin, Origin::Stream(place.clone()));
        assert!(verify_link(&h2, &records[2]));
        assert_eq!(records[2].hash, h3);
        // The place is part of the hash: another stream sequence is another record.
        let mut moved = records[2].clone();
        moved.origin = Origin::Stream(StreamPlace { seq: 78, ..place });
        assert!(!verify_link(&h2, &moved));
        assert_eq!(records[0].raw, b"{\"a\":1}");
        assert_eq!(records[1].hash, h2);
        assert!(verify_link(&GENESIS_HASH, &records[0]));
        assert!(verify_link(&h1, &records[1]));
        assert!(!verify_link(&GENESIS_HASH, &records[1]));
        // Any changed byte of the raw event breaks its link.
        let mut tampered = records[0].clone();
        tampered.raw[3] ^= 1;
        assert!(!verify_link(&GENESIS_HASH, &tampered));
        assert!(decode_chunk(1, &chunk[..chunk.len() - 1]).is_err());
    }

    #[test]
    fn a_damaged_chunk_reads_up_to_its_first_bad_record() {
        let mut chunk = Vec::new();
        let h1 = encode_record(&mut chunk, &GENESIS_HASH, 1, 1000, &Origin::File, b"one");
        let second_at = chunk.len();
        encode_record(&mut chunk, &h1, 2, 1001, &Origin::File, b"two");
        assert_eq!(chunk.len() - second_at, RECORD_HEADER_LEN + 3 + HASH_LEN);
        assert_eq!(decode_readable_prefix(1, &chunk).len(), 2);
        chunk[second_at + ORIGIN_AT] = 9;
        let err = decode_chunk(1, &chunk).unwrap_err();
        assert_eq!((err.offset, err.what), (second_at + ORIGIN_AT, "unknown origin"));
        let readable = decode_readable_prefix(1, &chunk);
        assert_eq!(readable.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
    }
}
