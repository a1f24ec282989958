//! The replay index's files in `DIR/replay-index/` (a cache of the log, like the snapshot): a
//! head (how far it covers the log, with that record's hash, and the global records), one file
//! per period (the seqs to fold), the arrival times (for `--as-of` a time) and the builder's
//! state (to extend it with records written later). Each is a checked file (`checked_file`),
//! so a damaged one is named, never read as a shorter or different list of records.

use std::collections::BTreeMap;
use std::path::Path;

use premia_core::replay_index::{PeriodRecords, ReplayIndex};
use premia_core::Period;
use serde::{Deserialize, Serialize};

use crate::checked_file::{decode_part, encode_checked, read_checked, write_checked, Checked};
use crate::log::Hash;

pub(crate) const INDEX_DIR: &str = "replay-index";
/// Bumped when the files' layout or what the index lists changes: an old index is rebuilt.
const INDEX_FORMAT: u32 = 4;
pub(crate) const HEAD_NAME: &str = "head.bin";
pub(crate) const STATE_NAME: &str = "state.bin";
pub(crate) const ARRIVALS_NAME: &str = "arrivals.bin";
const HEAD_KIND: &[u8; 4] = b"RIHD";
const STATE_KIND: &[u8; 4] = b"RIST";
const ARRIVALS_KIND: &[u8; 4] = b"RIAR";
const PERIOD_KIND: &[u8; 4] = b"RIPD";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexHead {
    /// Records `1..next_seq` are indexed.
    pub next_seq: u64,
    pub last_hash: Hash,
    /// Scheme activations, closes, unknown records: folded in every replay.
    pub globals: Vec<u64>,
    pub schemes: Vec<u64>,
    /// The periods that have a file: a period missing from here has no records, a listed one
    /// whose file is missing is damage.
    pub periods: Vec<Period>,
}

impl IndexHead {
    /// The last record indexed (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct IndexState {
    pub next_seq: u64,
    pub last_hash: Hash,
    pub index: ReplayIndex,
}

pub(crate) fn period_file_name(period: Period) -> String {
    format!("period-{period}.bin")
}

fn read_one<T: serde::de::DeserializeOwned>(path: &Path, kind: &[u8; 4]) -> std::io::Result<Checked<T>> {
    read_checked(path, kind, INDEX_FORMAT, decode_part)
}

pub(crate) fn read_head(index_dir: &Path) -> std::io::Result<Checked<IndexHead>> {
    read_one(&index_dir.join(HEAD_NAME), HEAD_KIND)
}

pub(crate) fn read_state(index_dir: &Path) -> std::io::Result<Checked<IndexState>> {
    read_one(&index_dir.join(STATE_NAME), STATE_KIND)
}

pub(crate) fn read_arrivals(index_dir: &Path) -> std::io::Result<Checked<Vec<i64>>> {
    read_one(&index_dir.join(ARRIVALS_NAME), ARRIVALS_KIND)
}

pub(crate) fn read_period(index_dir: &Path, period: Period) -> std::io::Result<Checked<PeriodRecords>> {
    read_one(&index_dir.join(period_file_name(period)), PERIOD_KIND)
}

/// The head that describes `index`, whose last record has hash `last_hash`.
fn head_of(index: &ReplayIndex, last_hash: Hash) -> IndexHead {
    IndexHead {
        next_seq: index.next_seq(),
        last_hash,
        globals: index.globals().to_vec(),
        schemes: index.schemes().to_vec(),
        periods: index.periods().into_iter().collect(),
    }
}

/// Writes what changed of the index: period files first, the head last (the head is what says
/// how far the index goes).
pub(crate) fn write_index(index_dir: &Path, mut index: ReplayIndex, last_hash: Hash) -> std::io::Result<IndexHead> {
    for period in index.take_dirty() {
        let file = index.period_file(period);
        write_checked(&index_dir.join(period_file_name(period)), PERIOD_KIND, INDEX_FORMAT, &[&file])?;
    }
    write_checked(&index_dir.join(ARRIVALS_NAME), ARRIVALS_KIND, INDEX_FORMAT, &[&index.arrivals()])?;
    let head = head_of(&index, last_hash);
    let state = IndexState { next_seq: index.next_seq(), last_hash, index };
    write_checked(&index_dir.join(STATE_NAME), STATE_KIND, INDEX_FORMAT, &[&state])?;
    write_checked(&index_dir.join(HEAD_NAME), HEAD_KIND, INDEX_FORMAT, &[&head])?;
    Ok(head)
}

/// Every file an index built to `index`'s position writes, by name, with its bytes: what the
/// stored files must be (`verify`).
pub(crate) fn expected_files(
    mut index: ReplayIndex,
    last_hash: Hash,
) -> Result<BTreeMap<String, Vec<u8>>, bincode::Error> {
    let mut files = BTreeMap::new();
    index.take_dirty();
    for period in index.periods() {
        let file = index.period_file(period);
        files.insert(period_file_name(period), encode_checked(PERIOD_KIND, INDEX_FORMAT, &[&file])?);
    }
    files.insert(ARRIVALS_NAME.to_string(), encode_checked(ARRIVALS_KIND, INDEX_FORMAT, &[&index.arrivals()])?);
    let head = head_of(&index, last_hash);
    files.insert(HEAD_NAME.to_string(), encode_checked(HEAD_KIND, INDEX_FORMAT, &[&head])?);
    let state = IndexState { next_seq: index.next_seq(), last_hash, index };
    files.insert(STATE_NAME.to_string(), encode_checked(STATE_KIND, INDEX_FORMAT, &[&state])?);
    Ok(files)
}
