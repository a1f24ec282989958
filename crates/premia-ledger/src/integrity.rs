//! What every command checks when it opens a data dir, before it believes a byte of the store:
//! the log reaches the committed head with the same hash, and the kept rejections are all
//! there. sled recovers from a damaged or torn file by cutting its log at the damage, silently;
//! this is where such a store is refused, with a sentence saying what is missing and what to
//! do, instead of being served, appended to, exported or verified as sound.

use std::path::{Path, PathBuf};

use crate::error::LedgerError;
use crate::head::{chain_rejection, read_head, CommittedHead, HeadFile, HeadRead};
use crate::log::{Hash, GENESIS_HASH};
use crate::store::{
    find_record, for_each_stored_rejection, log_end, next_rejection_id, open_sled, read_store_head, sled_config,
    store_error, LedgerOptions, HEAD_KEY,
};

/// Who opens the store: a writer records the head (creating it for a new ledger, adopting a
/// ledger written before heads existed); a reader writes nothing of premia's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Write,
    Read,
}

/// A store that reaches its committed head.
pub(crate) struct CheckedStore {
    pub db: sled::Db,
    /// The head as of the end of the store (last record, its hash, rejections and their
    /// digest): what the next batch continues from.
    pub end: CommittedHead,
    /// The head file, open for writing (writers only).
    pub head_file: Option<HeadFile>,
}

/// Opens the sled store of `sled_dir` (the data dir's own, or a private copy of it) and checks
/// it against the committed head of the data dir `dir`.
pub(crate) fn open_checked(
    dir: &Path,
    sled_dir: &Path,
    options: &LedgerOptions,
    access: Access,
) -> Result<CheckedStore, LedgerError> {
    let head_path = dir.join(crate::head::HEAD_FILE);
    let head_read = read_head(dir).map_err(|source| LedgerError::HeadIo { path: head_path.clone(), source })?;
    let db = open_store(sled_dir, options)?;
    let store_head = read_store_head(&db, dir)?;
    let (last_seq, last_hash) = log_end(&db, dir)?;
    let rejections = next_rejection_id(&db, dir)? - 1;
    let committed = match head_read {
        HeadRead::Unreadable { damaged } => {
            let what = damaged.iter().map(|(slot, d)| format!("copy {slot}: {d}")).collect::<Vec<_>>().join("; ");
            return Err(LedgerError::HeadUnreadable { path: head_path, damage: what });
        }
        HeadRead::Found { head, damaged } => {
            // The other copy is at most one batch older, and the log is checked against it.
            for (slot, damage) in damaged {
                tracing::warn!(
                    "copy {slot} of the committed head {} is damaged ({damage}); the other copy is used. `premia verify` reports it until the next commit writes it again",
                    head_path.display()
                );
            }
            Some(head)
        }
        HeadRead::Absent => match &store_head {
            Some(head) => return Err(LedgerError::HeadMissing { path: head_path, committed_seq: head.last_seq }),
            None => None,
        },
    };
    if let Some(head) = &committed {
        check_reaches(&db, dir, head, last_seq, rejections)?;
    }
    let end = match store_head {
        Some(head) => {
            check_store_head(dir, &head, last_seq, last_hash, rejections)?;
            head
        }
        // A ledger written before heads existed (or a new one): the digest of its rejections
        // is worked out once.
        None => CommittedHead {
            generation: 0,
            last_seq,
            chain_hash: last_hash,
            rejections,
            rejection_hash: rejection_digest(&db, dir)?,
        },
    };
    let head_file = match access {
        Access::Read => None,
        Access::Write => Some(open_head_file(dir, &db, committed.as_ref(), &end)?),
    };
    Ok(CheckedStore { db, end, head_file })
}

/// Opens sled. A damaged file can make sled itself panic while it recovers; that is taken as
/// the damage it is, not as a crash of premia.
fn open_store(sled_dir: &Path, options: &LedgerOptions) -> Result<sled::Db, LedgerError> {
    let config = sled_config(sled_dir, options);
    let store = sled_dir.join("sled");
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open_sled(&config))) {
        Ok(result) => result.map_err(store_error(sled_dir)),
        Err(_) => Err(LedgerError::StorePanicked { dir: store }),
    }
}

/// The log must hold the committed head's record with its hash, and every kept rejection.
fn check_reaches(
    db: &sled::Db,
    dir: &Path,
    head: &CommittedHead,
    last_seq: u64,
    rejections: u64,
) -> Result<(), LedgerError> {
    if last_seq < head.last_seq {
        return Err(LedgerError::LogShort {
            dir: dir.to_path_buf(),
            committed_seq: head.last_seq,
            committed_hash: hex(&head.chain_hash),
            found_seq: last_seq,
        });
    }
    if head.last_seq > 0 {
        let found = find_record(db, dir, head.last_seq)?.map(|r| r.hash);
        if found != Some(head.chain_hash) {
            return Err(LedgerError::LogDiffers {
                dir: dir.to_path_buf(),
                seq: head.last_seq,
                committed_hash: hex(&head.chain_hash),
                found_hash: found.map_or_else(|| "nothing".to_string(), |h| hex(&h)),
            });
        }
    }
    if rejections < head.rejections {
        return Err(LedgerError::RejectionsShort {
            dir: dir.to_path_buf(),
            committed: head.rejections,
            found: rejections,
        });
    }
    Ok(())
}

/// The head the store keeps is written in the same atomic batch as the log it describes: it
/// must describe exactly the end of the log.
fn check_store_head(
    dir: &Path,
    head: &CommittedHead,
    last_seq: u64,
    last_hash: Hash,
    rejections: u64,
) -> Result<(), LedgerError> {
    if head.last_seq != last_seq || head.chain_hash != last_hash || head.rejections != rejections {
        return Err(LedgerError::StoreInconsistent {
            dir: dir.to_path_buf(),
            head_seq: head.last_seq,
            head_rejections: head.rejections,
            last_seq,
            rejections,
        });
    }
    Ok(())
}

/// The digest chained over every kept rejection, in id order.
pub(crate) fn rejection_digest(db: &sled::Db, dir: &Path) -> Result<Hash, LedgerError> {
    let mut digest = GENESIS_HASH;
    for_each_stored_rejection(db, dir, |id, stored| {
        digest = chain_rejection(&digest, id, stored);
        Ok(())
    })?;
    Ok(digest)
}

/// The head file of a writer: created for a new ledger, and for one written before heads
/// existed (adopted at the end of its log, which is all it has to go on).
fn open_head_file(
    dir: &Path,
    db: &sled::Db,
    committed: Option<&CommittedHead>,
    end: &CommittedHead,
) -> Result<HeadFile, LedgerError> {
    let io = |source| LedgerError::HeadIo { path: dir.join(crate::head::HEAD_FILE), source };
    if let Some(head) = committed {
        return HeadFile::open(dir, Some(head)).map_err(io);
    }
    let mut file = HeadFile::open(dir, None).map_err(io)?;
    if end.last_seq > 0 || end.rejections > 0 {
        tracing::warn!(
            last_seq = end.last_seq,
            rejections = end.rejections,
            "this data dir was written by an earlier premia, without a committed head; its head is now recorded at the end of its log"
        );
        let head = file.write(end).map_err(io)?;
        db.insert(HEAD_KEY, head.encode().to_vec()).map_err(store_error(dir))?;
        db.flush().map_err(store_error(dir))?;
    }
    Ok(file)
}

pub(crate) fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the data dir's committed head file is.
pub fn head_path(dir: &Path) -> PathBuf {
    dir.join(crate::head::HEAD_FILE)
}
