//! The committed head: what the ledger has made durable, kept in a file of its own beside sled.
//!
//! sled 0.34 recovers from a torn or damaged segment by cutting its log there, silently, so a
//! store that lost its tail (or everything) opens as a shorter, valid-looking ledger. The head
//! file is written after each batch is flushed and records how far the log reaches (last seq and
//! its chain hash) and the chain of kept rejections (count and digest). Every open checks the
//! log against it, so a store shorter than, or different from, what was committed is refused
//! instead of being served as the truth.
//!
//! Layout (after TigerBeetle's superblock): two copies ("slots") of a 132-byte record, at offsets
//! 0 and 4096, each with a SHA-256 of itself. A write goes to the slot of its generation's parity
//! and is synced before the batch counts as durable; the newest valid copy wins on read. A torn
//! or damaged copy is detected and named, and the other copy (one batch older at most) is used.
//!
//! ```text
//! magic "PREMIAHD" | format u32 | generation u64 | last_seq u64 | chain_hash [32]
//!                  | rejections u64 | rejection_hash [32] | checksum [32]   (integers big-endian)
//! ```

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::log::{Hash, GENESIS_HASH};

pub const HEAD_FILE: &str = "committed-head";
const MAGIC: &[u8; 8] = b"PREMIAHD";
const FORMAT: u32 = 1;
const SLOT_STRIDE: u64 = 4096;
const RECORD_LEN: usize = 8 + 4 + 8 + 8 + 32 + 8 + 32;
const SLOT_LEN: usize = RECORD_LEN + 32;
const SLOTS: usize = 2;

/// What the ledger has committed: the end of its log and of its kept rejections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedHead {
    /// How many heads were written before this one; the newest valid copy wins.
    pub generation: u64,
    /// The last log record committed (0: none).
    pub last_seq: u64,
    /// Its chain hash (all zeros when there is none).
    pub chain_hash: Hash,
    /// How many rejections are kept (their ids are `1..=rejections`).
    pub rejections: u64,
    /// The digest chained over every kept rejection (see [`chain_rejection`]).
    pub rejection_hash: Hash,
}

impl CommittedHead {
    /// The head of a ledger that has committed nothing.
    pub const EMPTY: CommittedHead = CommittedHead {
        generation: 0,
        last_seq: 0,
        chain_hash: GENESIS_HASH,
        rejections: 0,
        rejection_hash: GENESIS_HASH,
    };

    /// The bytes of one slot: the record and its checksum.
    pub fn encode(&self) -> [u8; SLOT_LEN] {
        let mut slot = [0u8; SLOT_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            slot[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(MAGIC);
        put(&FORMAT.to_be_bytes());
        put(&self.generation.to_be_bytes());
        put(&self.last_seq.to_be_bytes());
        put(&self.chain_hash);
        put(&self.rejections.to_be_bytes());
        put(&self.rejection_hash);
        assert_eq!(at, RECORD_LEN, "the head record's fields fill it exactly");
        let checksum: Hash = Sha256::digest(&slot[..RECORD_LEN]).into();
        slot[RECORD_LEN..].copy_from_slice(&checksum);
        slot
    }

    /// Reads one slot; `None` names what is wrong with it.
    pub fn decode(slot: &[u8]) -> Result<CommittedHead, SlotDamage> {
        let slot = slot.get(..SLOT_LEN).ok_or(SlotDamage::Truncated)?;
        if slot.iter().all(|&b| b == 0) {
            return Err(SlotDamage::Empty);
        }
        let checksum: Hash = Sha256::digest(&slot[..RECORD_LEN]).into();
        if slot[RECORD_LEN..] != checksum {
            return Err(SlotDamage::Checksum);
        }
        if &slot[..8] != MAGIC {
            return Err(SlotDamage::NotAHead);
        }
        let u64_at = |at: usize| u64::from_be_bytes(slot[at..at + 8].try_into().expect("8 bytes"));
        let hash_at = |at: usize| -> Hash { slot[at..at + 32].try_into().expect("32 bytes") };
        let format = u32::from_be_bytes(slot[8..12].try_into().expect("4 bytes"));
        if format != FORMAT {
            return Err(SlotDamage::Format(format));
        }
        Ok(CommittedHead {
            generation: u64_at(12),
            last_seq: u64_at(20),
            chain_hash: hash_at(28),
            rejections: u64_at(60),
            rejection_hash: hash_at(68),
        })
    }
}

/// Why one copy of the head cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotDamage {
    #[error("it is cut short")]
    Truncated,
    #[error("it was never written")]
    Empty,
    #[error("its checksum does not match its content")]
    Checksum,
    #[error("it does not start as a committed head does")]
    NotAHead,
    #[error("it is of format {0}, which this version of premia does not know")]
    Format(u32),
}

/// The head file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadRead {
    /// There is no head file.
    Absent,
    /// The newest valid copy, and what is wrong with the other copies (if anything).
    Found { head: CommittedHead, damaged: Vec<(usize, SlotDamage)> },
    /// The file is there but no copy can be read.
    Unreadable { damaged: Vec<(usize, SlotDamage)> },
}

/// Chains one kept rejection (its id and stored bytes) onto the digest of those before it.
pub fn chain_rejection(previous: &Hash, id: u64, stored: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(id.to_be_bytes());
    hasher.update((stored.len() as u64).to_be_bytes());
    hasher.update(stored);
    hasher.finalize().into()
}

/// Reads `DIR/committed-head` without writing anything.
pub fn read_head(dir: &Path) -> std::io::Result<HeadRead> {
    let bytes = match std::fs::read(dir.join(HEAD_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HeadRead::Absent),
        Err(e) => return Err(e),
    };
    let mut newest: Option<CommittedHead> = None;
    let mut damaged = Vec::new();
    for slot in 0..SLOTS {
        let at = slot * SLOT_STRIDE as usize;
        match CommittedHead::decode(bytes.get(at..).unwrap_or_default()) {
            Ok(head) if newest.is_none_or(|n| head.generation > n.generation) => newest = Some(head),
            Ok(_) => {}
            Err(damage) => damaged.push((slot, damage)),
        }
    }
    Ok(match newest {
        Some(head) => {
            // A copy that was never written is not damage while nothing has been written to it:
            // a new head file has one written copy.
            damaged.retain(|&(_, d)| !(d == SlotDamage::Empty && head.generation < 2));
            HeadRead::Found { head, damaged }
        }
        None => HeadRead::Unreadable { damaged },
    })
}

/// The head file, open for writing: each [`write`](HeadFile::write) is synced before it returns.
#[derive(Debug)]
pub struct HeadFile {
    path: PathBuf,
    file: File,
    generation: u64,
}

impl HeadFile {
    /// Creates the head file of a new ledger (holding [`CommittedHead::EMPTY`]'s successor
    /// `first`), synced with its directory entry, or opens the existing one to write heads after
    /// `current`.
    pub fn open(dir: &Path, current: Option<&CommittedHead>) -> std::io::Result<HeadFile> {
        let path = dir.join(HEAD_FILE);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let mut head = HeadFile { path, file, generation: current.map_or(0, |c| c.generation) };
        if current.is_none() {
            head.file.set_len(SLOT_STRIDE * SLOTS as u64)?;
            head.write(&CommittedHead::EMPTY)?;
            File::open(dir)?.sync_all()?;
        }
        Ok(head)
    }

    /// Writes `head` (with the next generation) into the older slot and syncs it.
    pub fn write(&mut self, head: &CommittedHead) -> std::io::Result<CommittedHead> {
        let head = CommittedHead { generation: self.generation + 1, ..*head };
        let slot = head.generation % SLOTS as u64;
        self.file.write_all_at(&head.encode(), slot * SLOT_STRIDE)?;
        self.file.sync_data()?;
        self.generation = head.generation;
        Ok(head)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(last_seq: u64) -> CommittedHead {
        CommittedHead {
            generation: 0,
            last_seq,
            chain_hash: [last_seq as u8; 32],
            rejections: 3,
            rejection_hash: [7; 32],
        }
    }

    #[test]
    fn a_slot_round_trips_and_any_changed_byte_is_caught() {
        let original = CommittedHead { generation: 9, ..head(41) };
        let slot = original.encode();
        assert_eq!(CommittedHead::decode(&slot), Ok(original));
        for at in 0..SLOT_LEN {
            let mut damaged = slot;
            damaged[at] ^= 0x01;
            assert!(CommittedHead::decode(&damaged).is_err(), "a flip at byte {at} went unnoticed");
        }
        assert_eq!(CommittedHead::decode(&slot[..SLOT_LEN - 1]), Err(SlotDamage::Truncated));
        assert_eq!(CommittedHead::decode(&[0u8; SLOT_LEN]), Err(SlotDamage::Empty));
    }

    #[test]
    fn the_newest_valid_copy_wins_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_head(dir.path()).unwrap(), HeadRead::Absent);
        let mut file = HeadFile::open(dir.path(), None).unwrap();
        assert_eq!(
            read_head(dir.path()).unwrap(),
            HeadRead::Found { head: CommittedHead { generation: 1, ..CommittedHead::EMPTY }, damaged: vec![] }
        );
        let second = file.write(&head(10)).unwrap();
        let third = file.write(&head(20)).unwrap();
        assert_eq!((second.generation, third.generation), (2, 3));
        assert_eq!(read_head(dir.path()).unwrap(), HeadRead::Found { head: third, damaged: vec![] });

        // Damage the newest copy (generation 3, slot 1): the one before it is used, and named.
        let path = dir.path().join(HEAD_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT_STRIDE as usize + 30] ^= 0x80;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read_head(dir.path()).unwrap(),
            HeadRead::Found { head: second, damaged: vec![(1, SlotDamage::Checksum)] }
        );
        // Reopened after the older copy, the next write goes to the damaged slot and mends it.
        let mut file = HeadFile::open(dir.path(), Some(&second)).unwrap();
        let mended = file.write(&head(30)).unwrap();
        assert_eq!(mended.generation, 3);
        assert_eq!(read_head(dir.path()).unwrap(), HeadRead::Found { head: mended, damaged: vec![] });

        // Both copies damaged, or the file cut short: nothing can be read, and that is said.
        bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 1;
        bytes[SLOT_STRIDE as usize + 3] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read_head(dir.path()).unwrap(), HeadRead::Unreadable { damaged } if damaged.len() == 2));
        std::fs::write(&path, &bytes[..100]).unwrap();
        assert_eq!(
            read_head(dir.path()).unwrap(),
            HeadRead::Unreadable { damaged: vec![(0, SlotDamage::Truncated), (1, SlotDamage::Truncated)] }
        );
    }
}
