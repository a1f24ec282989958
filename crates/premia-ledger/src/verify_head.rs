//! `verify`'s checks of what lies outside the hash chain of the log: the committed head (the
//! file and the store's own copy) against the log's end, and the kept rejections against the
//! digest chained over them in the head. Each damage becomes a [`Problem`] with a sentence.

use std::path::Path;

use crate::checked_file::decode_exact;
use crate::head::{chain_rejection, read_head, CommittedHead, HeadRead, HEAD_FILE};
use crate::integrity::hex;
use crate::log::{Hash, GENESIS_HASH};
use crate::store::{find_record, for_each_stored_rejection, read_store_head, StoredRejection};
use crate::verify::{Problem, ProblemKind};

/// The committed head as verify found it.
pub(crate) struct HeadFound {
    /// The head the data dir says it committed: the file's newest valid copy, else the store's.
    pub committed: Option<CommittedHead>,
    pub problems: Vec<Problem>,
}

/// Reads the head file of `dir` and the head kept in the store `db`, naming what is damaged.
pub(crate) fn read_heads(dir: &Path, db: &sled::Db) -> HeadFound {
    let path = dir.join(HEAD_FILE);
    let mut problems = Vec::new();
    let mut problem = |message: String| problems.push(Problem { seq: 0, kind: ProblemKind::Head, message });
    let store_head = match read_store_head(db, dir) {
        Ok(head) => head,
        Err(e) => {
            problem(e.to_string());
            None
        }
    };
    let file_head = match read_head(dir) {
        Err(e) => {
            problem(format!("the committed head {} cannot be read: {e}", path.display()));
            None
        }
        Ok(HeadRead::Absent) => {
            if let Some(head) = &store_head {
                problem(format!(
                    "the committed head {} is missing, but the store says the ledger committed up to log record {}",
                    path.display(),
                    head.last_seq
                ));
            }
            None
        }
        Ok(HeadRead::Unreadable { damaged }) => {
            let what = damaged.iter().map(|(slot, d)| format!("copy {slot}: {d}")).collect::<Vec<_>>().join("; ");
            problem(format!("the committed head {} is damaged ({what}): no copy can be read", path.display()));
            None
        }
        Ok(HeadRead::Found { head, damaged }) => {
            for (slot, damage) in damaged {
                problem(format!(
                    "copy {slot} of the committed head {} is damaged ({damage}); the other copy (log record {}) is whole",
                    path.display(),
                    head.last_seq
                ));
            }
            Some(head)
        }
    };
    HeadFound { committed: file_head.or(store_head), problems }
}

/// Checks that the log, which ends at `last_seq`, reaches the committed head with its hash.
pub(crate) fn check_log_reaches(
    head: &CommittedHead,
    db: &sled::Db,
    dir: &Path,
    last_seq: u64,
    problems: &mut Vec<Problem>,
) {
    if last_seq < head.last_seq {
        problems.push(Problem {
            seq: last_seq + 1,
            kind: ProblemKind::Head,
            message: format!(
                "the log ends at record {last_seq}, but the ledger committed up to record {} (chain hash {}): records {} to {} are missing",
                head.last_seq,
                hex(&head.chain_hash),
                last_seq + 1,
                head.last_seq
            ),
        });
        return;
    }
    if head.last_seq == 0 {
        return;
    }
    let found = find_record(db, dir, head.last_seq).ok().flatten().map(|r| r.hash);
    if found != Some(head.chain_hash) {
        problems.push(Problem {
            seq: head.last_seq,
            kind: ProblemKind::Head,
            message: format!(
                "the ledger committed chain hash {} at log record {}, but the log has {} there",
                hex(&head.chain_hash),
                head.last_seq,
                found.map_or_else(|| "nothing".to_string(), |h| hex(&h))
            ),
        });
    }
}

/// Reads every kept rejection, chains the digest over them and compares it with the head's.
/// Returns how many were read.
pub(crate) fn check_rejections(
    head: Option<&CommittedHead>,
    db: &sled::Db,
    dir: &Path,
    problems: &mut Vec<Problem>,
) -> u64 {
    let mut digest: Hash = GENESIS_HASH;
    let mut count = 0u64;
    let mut at_committed: Option<Hash> = None;
    let walked = for_each_stored_rejection(db, dir, |id, stored| {
        count += 1;
        if id != count {
            problems.push(Problem {
                seq: 0,
                kind: ProblemKind::Rejections,
                message: format!("kept rejection {count} is missing: the next one stored is {id}"),
            });
            count = id;
        }
        if let Err(e) = decode_exact::<StoredRejection>(stored) {
            problems.push(Problem {
                seq: 0,
                kind: ProblemKind::Rejections,
                message: format!("kept rejection {id} cannot be read: {e}"),
            });
        }
        digest = chain_rejection(&digest, id, stored);
        if head.is_some_and(|h| h.rejections == id) {
            at_committed = Some(digest);
        }
        Ok(())
    });
    if let Err(e) = walked {
        problems.push(Problem { seq: 0, kind: ProblemKind::Rejections, message: e.to_string() });
    }
    let Some(head) = head else { return count };
    if count < head.rejections {
        problems.push(Problem {
            seq: 0,
            kind: ProblemKind::Rejections,
            message: format!("the ledger kept {} rejected lines, but only {count} are in the store", head.rejections),
        });
    } else if at_committed.unwrap_or(GENESIS_HASH) != head.rejection_hash {
        problems.push(Problem {
            seq: 0,
            kind: ProblemKind::Rejections,
            message: format!(
                "the kept rejections 1 to {} do not digest to what the ledger committed: one was changed after it was kept",
                head.rejections
            ),
        });
    }
    count
}
