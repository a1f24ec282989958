//! The event log's record format and its SHA-256 hash chain.
//!
//! Records are written in chunks: one sled value holds the records of one committed batch, so a
//! batch costs one sled insert however many events it carries. A record is
//!
//! ```text
//! seq u64 | arrived_ms i64 | origin u8 | raw_len u32 | raw bytes | hash [u8; 32]
//! ```
//!
//! (integers big-endian) with `hash = SHA-256(previous hash | seq | arrived_ms | origin | raw)`
//! and the previous hash of the first record all zeros.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub const GENESIS_HASH: Hash = [0; 32];

/// How an event reached the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// `premia ingest` of a file or standard input.
    File,
    /// A JetStream message.
    Nats,
    /// premia's own commands (`close`, `scheme activate`) and records.
    Ledger,
}

impl Origin {
    fn to_byte(self) -> u8 {
        match self {
            Origin::File => 1,
            Origin::Nats => 2,
            Origin::Ledger => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Origin> {
        match b {
            1 => Some(Origin::File),
            2 => Some(Origin::Nats),
            3 => Some(Origin::Ledger),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Origin::File => "file",
            Origin::Nats => "nats",
            Origin::Ledger => "ledger",
        }
    }

    /// The origin named by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Origin> {
        [Origin::File, Origin::Nats, Origin::Ledger].into_iter().find(|o| o.as_str() == text)
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

pub fn chain_hash(previous: &Hash, seq: u64, arrived_ms: i64, origin: Origin, raw: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(seq.to_be_bytes());
    hasher.update(arrived_ms.to_be_bytes());
    hasher.update([origin.to_byte()]);
    hasher.update(raw);
    hasher.finalize().into()
}

/// Appends one record to a chunk buffer and returns its hash.
pub fn encode_record(
    chunk: &mut Vec<u8>,
    previous: &Hash,
    seq: u64,
    arrived_ms: i64,
    origin: Origin,
    raw: &[u8],
) -> Hash {
    let hash = chain_hash(previous, seq, arrived_ms, origin, raw);
    chunk.extend_from_slice(&seq.to_be_bytes());
    chunk.extend_from_slice(&arrived_ms.to_be_bytes());
    chunk.push(origin.to_byte());
    chunk.extend_from_slice(&(raw.len() as u32).to_be_bytes());
    chunk.extend_from_slice(raw);
    chunk.extend_from_slice(&hash);
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
    let err = |offset, what| ChunkError { chunk_seq, offset, what };
    while at < chunk.len() {
        let header = chunk.get(at..at + 21).ok_or_else(|| err(at, "truncated record header"))?;
        let seq = u64::from_be_bytes(header[0..8].try_into().map_err(|_| err(at, "bad seq"))?);
        let arrived_ms = i64::from_be_bytes(header[8..16].try_into().map_err(|_| err(at, "bad time"))?);
        let origin = Origin::from_byte(header[16]).ok_or_else(|| err(at + 16, "unknown origin"))?;
        let len = u32::from_be_bytes(header[17..21].try_into().map_err(|_| err(at, "bad length"))?) as usize;
        let raw = chunk.get(at + 21..at + 21 + len).ok_or_else(|| err(at, "truncated raw bytes"))?;
        let hash_at = at + 21 + len;
        let hash: Hash = chunk
            .get(hash_at..hash_at + 32)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| err(hash_at, "truncated hash"))?;
        records.push(LogRecord { seq, arrived_ms, origin, raw: raw.to_vec(), hash });
        at = hash_at + 32;
    }
    Ok(records)
}

/// Whether `record` follows `previous` in the chain.
pub fn verify_link(previous: &Hash, record: &LogRecord) -> bool {
    chain_hash(previous, record.seq, record.arrived_ms, record.origin, &record.raw) == record.hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_chain() {
        let mut chunk = Vec::new();
        let h1 = encode_record(&mut chunk, &GENESIS_HASH, 1, 1000, Origin::File, b"{\"a\":1}");
        let h2 = encode_record(&mut chunk, &h1, 2, 1001, Origin::Nats, b"");
        let records = decode_chunk(1, &chunk).unwrap();
        assert_eq!(records.len(), 2);
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
}
