//! The ledger's sled store: its one tree's key layout, opening it, and reading it back.
//!
//! Keys of the one tree (one tree, so that one `apply_batch` is atomic for all of them):
//!
//! | key                    | value |
//! |------------------------|-------|
//! | `log` + first seq (BE) | a chunk of log records (see `log`), LZ4-compressed |
//! | `ent` + first seq (BE) | the entries the records of that chunk booked, LZ4-compressed |
//! | `rej` + id (BE)        | a line rejected by validation or as a conflict, raw bytes kept |
//! | `cur` + name           | an input's position (a JetStream stream sequence), written in the same batch as what it covers |
//! | `hed`                  | the committed head after the last batch (`head.rs`), written in every batch |
//!
//! Entries are derived data, but they are kept in the store rather than in memory: a statement
//! reads the entry chunks of its period (an in-memory index, [`EntryIndex`], says which), and
//! the fold state holds only totals.

use std::collections::BTreeMap;
use std::path::Path;

use premia_core::fold::{Entry, Folded, Outcome};
use premia_core::{Period, Reason};
use serde::{Deserialize, Serialize};

use crate::checked_file::decode_exact;
use crate::error::LedgerError;
use crate::head::CommittedHead;
use crate::log::{decode_chunk, ChunkError, LogRecord, Origin};

pub(crate) const LOG_PREFIX: &[u8] = b"log";
pub(crate) const ENTRY_PREFIX: &[u8] = b"ent";
pub(crate) const REJECTION_PREFIX: &[u8] = b"rej";
pub(crate) const CURSOR_PREFIX: &[u8] = b"cur";
/// The committed head as of the last batch, kept in the store too: a head file that goes
/// missing while the store still says what it committed is damage, not a new ledger.
pub(crate) const HEAD_KEY: &[u8] = b"hed";
/// Every prefix is this long.
const PREFIX_LEN: usize = 3;
/// A prefix and a big-endian `u64`: the keys of log chunks, entry chunks and rejections.
const NUMBERED_KEY_LEN: usize = PREFIX_LEN + 8;

/// Tuning of the store.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// sled's page cache, in bytes. The log is read sequentially, so a small cache is enough.
    pub cache_bytes: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions { cache_bytes: 8 << 20 }
    }
}

/// A line rejected before it reached the log (validation or conflict), kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRejection {
    pub id: u64,
    pub arrived_ms: i64,
    pub origin: Origin,
    /// The log's length when it arrived: it came after log record `after_seq`.
    pub after_seq: u64,
    pub reason: Reason,
    pub message: String,
    pub raw: Vec<u8>,
}

/// Which chunks hold entries of which period, in order.
pub type EntryIndex = BTreeMap<Period, Vec<u64>>;

/// Adds the chunk starting at `chunk_seq`, which holds `entries`, to the index.
pub(crate) fn index_entries(index: &mut EntryIndex, chunk_seq: u64, entries: &[Entry]) {
    for entry in entries {
        let chunks = index.entry(entry.period).or_default();
        if chunks.last() != Some(&chunk_seq) {
            chunks.push(chunk_seq);
        }
    }
}

/// The entries a fold booked, in booking order: what is stored beside the log chunk.
pub(crate) fn applied_entries(folded: &[Folded]) -> impl Iterator<Item = &Entry> {
    folded.iter().flat_map(|f| match &f.outcome {
        Outcome::Applied { entries } => entries.as_slice(),
        _ => &[],
    })
}

fn numbered_key(prefix: &[u8], number: u64) -> [u8; NUMBERED_KEY_LEN] {
    debug_assert_eq!(prefix.len(), PREFIX_LEN, "every prefix of the store is {PREFIX_LEN} bytes");
    let mut key = [0u8; NUMBERED_KEY_LEN];
    key[..PREFIX_LEN].copy_from_slice(prefix);
    key[PREFIX_LEN..].copy_from_slice(&number.to_be_bytes());
    key
}

pub(crate) fn log_key(seq: u64) -> [u8; NUMBERED_KEY_LEN] {
    numbered_key(LOG_PREFIX, seq)
}

pub(crate) fn entry_key(seq: u64) -> [u8; NUMBERED_KEY_LEN] {
    numbered_key(ENTRY_PREFIX, seq)
}

pub(crate) fn rejection_key(id: u64) -> [u8; NUMBERED_KEY_LEN] {
    numbered_key(REJECTION_PREFIX, id)
}

pub(crate) fn cursor_key(name: &str) -> Vec<u8> {
    let mut key = CURSOR_PREFIX.to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

/// The number of a log chunk's, entry chunk's or rejection's key.
pub(crate) fn seq_of_key(key: &[u8]) -> Result<u64, LedgerError> {
    let number: [u8; 8] = key
        .get(PREFIX_LEN..)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| LedgerError::BadKey { key: key.escape_ascii().to_string() })?;
    Ok(u64::from_be_bytes(number))
}

/// A sled error on the store of `dir`: damage it detected is named as damage, anything else
/// (permissions, space) as what it is.
pub(crate) fn store_error(dir: &Path) -> impl Fn(sled::Error) -> LedgerError + '_ {
    move |source| match source {
        sled::Error::Corruption { .. } => LedgerError::StoreDamaged { dir: dir.to_path_buf() },
        source => LedgerError::Store { dir: dir.to_path_buf(), source },
    }
}

pub(crate) fn sled_config(dir: &Path, options: &LedgerOptions) -> sled::Config {
    sled::Config::new().path(dir.join("sled")).cache_capacity(options.cache_bytes).flush_every_ms(None)
}

/// Opens sled. Our own lock already keeps other processes out, so sled's file lock can only be
/// held by a handle of this process that was just dropped: sled releases it a moment later on a
/// background thread. Such a conflict is waited out (up to two seconds); anything else is not.
pub(crate) fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match config.open() {
            // sled wraps the lock failure in an `Other` error that names it.
            Err(sled::Error::Io(e))
                if (e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock"))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// The entries stored beside the log chunk starting at `chunk_seq` (none when it booked none).
pub(crate) fn read_entries(db: &sled::Db, dir: &Path, chunk_seq: u64) -> Result<Vec<Entry>, LedgerError> {
    let Some(value) = db.get(entry_key(chunk_seq)).map_err(store_error(dir))? else { return Ok(Vec::new()) };
    let bytes = lz4_flex::decompress_size_prepended(&value)
        .map_err(|e| LedgerError::Decode(format!("entries of chunk {chunk_seq}: {e}")))?;
    decode_exact(&bytes).map_err(|e| LedgerError::Decode(format!("entries of chunk {chunk_seq}: {e}")))
}

/// Writes the entries of the log chunk starting at `chunk_seq` over the stored ones.
pub(crate) fn write_entries(db: &sled::Db, dir: &Path, chunk_seq: u64, entries: &[Entry]) -> Result<(), LedgerError> {
    let bytes = bincode::serialize(entries).map_err(|e| LedgerError::Decode(e.to_string()))?;
    db.insert(entry_key(chunk_seq), lz4_flex::compress_prepend_size(&bytes)).map_err(store_error(dir))?;
    Ok(())
}

/// The bytes of a stored log chunk, decompressed.
pub(crate) fn decompress_chunk(chunk_seq: u64, value: &[u8]) -> Result<Vec<u8>, ChunkError> {
    lz4_flex::decompress_size_prepended(value).map_err(|_| ChunkError {
        chunk_seq,
        offset: 0,
        what: "the compressed chunk does not decompress",
    })
}

pub(crate) fn decode_stored_chunk(chunk_seq: u64, value: &[u8]) -> Result<Vec<LogRecord>, LedgerError> {
    Ok(decode_chunk(chunk_seq, &decompress_chunk(chunk_seq, value)?)?)
}

/// The log records of the chunk stored under `key`.
pub(crate) fn decode_keyed_chunk(key: &[u8], value: &[u8]) -> Result<Vec<LogRecord>, LedgerError> {
    decode_stored_chunk(seq_of_key(key)?, value)
}

/// The records of the last stored log chunk that starts at or before `seq`: the one that holds
/// `seq`, when the log does.
pub(crate) fn chunk_holding(db: &sled::Db, dir: &Path, seq: u64) -> Result<Vec<LogRecord>, LedgerError> {
    let Some(entry) = db.range(log_key(0)..=log_key(seq)).next_back() else { return Ok(Vec::new()) };
    let (key, chunk) = entry.map_err(store_error(dir))?;
    decode_keyed_chunk(&key, &chunk)
}

pub(crate) fn find_record(db: &sled::Db, dir: &Path, seq: u64) -> Result<Option<LogRecord>, LedgerError> {
    Ok(chunk_holding(db, dir, seq)?.into_iter().find(|r| r.seq == seq))
}

/// Calls `f(chunk_seq, record)` for every log record with `seq >= from_seq`, in order.
pub(crate) fn for_each_record(
    db: &sled::Db,
    dir: &Path,
    from_seq: u64,
    mut f: impl FnMut(u64, LogRecord) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    // The chunk holding `from_seq` starts at or before it.
    let start = match db.range(..=log_key(from_seq)).next_back() {
        Some(entry) => {
            let (key, _) = entry.map_err(store_error(dir))?;
            if key.starts_with(LOG_PREFIX) {
                key.to_vec()
            } else {
                log_key(0).to_vec()
            }
        }
        None => log_key(0).to_vec(),
    };
    for entry in db.range(start..) {
        let (key, chunk) = entry.map_err(store_error(dir))?;
        if !key.starts_with(LOG_PREFIX) {
            break;
        }
        let chunk_seq = seq_of_key(&key)?;
        for record in decode_stored_chunk(chunk_seq, &chunk)? {
            if record.seq >= from_seq {
                f(chunk_seq, record)?;
            }
        }
    }
    Ok(())
}

/// The id the next stored rejection gets: one past the last stored (1 when there is none).
pub(crate) fn next_rejection_id(db: &sled::Db, dir: &Path) -> Result<u64, LedgerError> {
    match db.scan_prefix(REJECTION_PREFIX).next_back().transpose().map_err(store_error(dir))? {
        Some((key, _)) => Ok(seq_of_key(&key)? + 1),
        None => Ok(1),
    }
}

/// The last log record's seq and hash (0 and the genesis hash for an empty log).
pub(crate) fn log_end(db: &sled::Db, dir: &Path) -> Result<(u64, crate::log::Hash), LedgerError> {
    let Some(last) = db.scan_prefix(LOG_PREFIX).next_back() else { return Ok((0, crate::log::GENESIS_HASH)) };
    let (key, chunk) = last.map_err(store_error(dir))?;
    let chunk_seq = seq_of_key(&key)?;
    match decode_stored_chunk(chunk_seq, &chunk)?.last() {
        Some(record) => Ok((record.seq, record.hash)),
        // A batch's log chunk is stored only when it logged a record.
        None => Err(ChunkError { chunk_seq, offset: 0, what: "the last chunk of the log holds no record" }.into()),
    }
}

/// The committed head the store holds (written with every batch), if any.
pub(crate) fn read_store_head(db: &sled::Db, dir: &Path) -> Result<Option<CommittedHead>, LedgerError> {
    match db.get(HEAD_KEY).map_err(store_error(dir))? {
        None => Ok(None),
        Some(bytes) => CommittedHead::decode(&bytes)
            .map(Some)
            .map_err(|damage| LedgerError::StoreHeadDamaged { dir: dir.to_path_buf(), damage: damage.to_string() }),
    }
}

/// The stored rejections' raw values, in id order, for the digest chained over them.
pub(crate) fn for_each_stored_rejection(
    db: &sled::Db,
    dir: &Path,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    for item in db.scan_prefix(REJECTION_PREFIX) {
        let (key, value) = item.map_err(store_error(dir))?;
        f(seq_of_key(&key)?, &value)?;
    }
    Ok(())
}

/// The stored position of every input, by name.
pub(crate) fn read_cursors(db: &sled::Db, dir: &Path) -> Result<BTreeMap<String, u64>, LedgerError> {
    let mut cursors = BTreeMap::new();
    for item in db.scan_prefix(CURSOR_PREFIX) {
        let (key, value) = item.map_err(store_error(dir))?;
        let name = String::from_utf8_lossy(&key[CURSOR_PREFIX.len()..]).into_owned();
        let position: [u8; 8] = match value.as_ref().try_into() {
            Ok(position) => position,
            Err(_) => return Err(LedgerError::BadCursor { name, len: value.len() }),
        };
        cursors.insert(name, u64::from_be_bytes(position));
    }
    Ok(cursors)
}

/// The stored rejections, oldest first.
pub(crate) fn read_rejections(db: &sled::Db, dir: &Path) -> Result<Vec<StoredRejection>, LedgerError> {
    db.scan_prefix(REJECTION_PREFIX)
        .values()
        .map(|v| {
            let bytes = v.map_err(store_error(dir))?;
            decode_exact(&bytes).map_err(|e| LedgerError::Decode(format!("a kept rejection: {e}")))
        })
        .collect()
}

pub(crate) fn read_rejection(db: &sled::Db, dir: &Path, id: u64) -> Result<Option<StoredRejection>, LedgerError> {
    match db.get(rejection_key(id)).map_err(store_error(dir))? {
        Some(bytes) => decode_exact(&bytes).map(Some).map_err(|e| LedgerError::Decode(format!("rejection {id}: {e}"))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_keys_sort_by_number_and_give_it_back() {
        assert!(log_key(2) < log_key(256));
        assert!(entry_key(u64::MAX) < log_key(0), "every entry chunk sorts before every log chunk");
        assert_eq!(seq_of_key(&rejection_key(70_000)).unwrap(), 70_000);
        let err = seq_of_key(b"log\x00\x01").unwrap_err().to_string();
        assert!(err.contains(r"log\x00\x01"), "{err}");
    }
}
