//! `verify`'s check of the replay index (a cache of the log in `DIR/replay-index/`): the index
//! is built again from the log as verify walks it, up to the position the stored one covers,
//! and every stored file must be the bytes that index writes. A damaged, changed, missing or
//! foreign file is named.

use std::path::Path;

use premia_core::replay_index::ReplayIndex;

use crate::checked_file::Checked;
use crate::index_files::{expected_files, read_head, INDEX_DIR};
use crate::log::{Hash, LogRecord};
use crate::verify::{Problem, ProblemKind};

/// The replay index being rebuilt alongside verify's walk.
pub(crate) struct IndexCheck {
    /// Records `1..until` are indexed by the stored index.
    until: u64,
    builder: ReplayIndex,
    /// The hash of record `until - 1`, once the walk has passed it.
    last_hash: Option<Hash>,
}

fn problem(message: String) -> Problem {
    Problem { seq: 0, kind: ProblemKind::ReplayIndex, message }
}

impl IndexCheck {
    /// Starts the check when the data dir has a replay index this version wrote; a damaged
    /// head is reported at once.
    pub(crate) fn start(dir: &Path, problems: &mut Vec<Problem>) -> Option<IndexCheck> {
        let index_dir = dir.join(INDEX_DIR);
        if !index_dir.is_dir() {
            return None;
        }
        match read_head(&index_dir) {
            Ok(Checked::Read(head)) => Some(IndexCheck {
                until: head.next_seq,
                builder: ReplayIndex::new(),
                last_hash: (head.next_seq == 1).then_some(crate::log::GENESIS_HASH),
            }),
            Ok(Checked::Absent | Checked::OtherFormat(_)) => None,
            Ok(Checked::Damaged(damage)) => {
                problems.push(problem(format!(
                    "the replay index's head {} is damaged ({damage}); delete {} (a cache of the log: the next replay rebuilds it)",
                    index_dir.join(crate::index_files::HEAD_NAME).display(),
                    index_dir.display()
                )));
                None
            }
            Err(e) => {
                problems.push(problem(format!("the replay index {} cannot be read: {e}", index_dir.display())));
                None
            }
        }
    }

    /// Adds a record the walk has checked and folded.
    pub(crate) fn add(&mut self, record: &LogRecord) {
        if record.seq >= self.until {
            return;
        }
        // The walk checked the record's place, so the builder cannot be given a gap.
        self.builder.add(record.seq, record.arrived_ms, &record.raw).expect("verify adds records in log order");
        if record.seq + 1 == self.until {
            self.last_hash = Some(record.hash);
        }
    }

    /// Compares every stored file with what the rebuilt index writes.
    pub(crate) fn finish(self, dir: &Path, problems: &mut Vec<Problem>) {
        let index_dir = dir.join(INDEX_DIR);
        let Some(last_hash) = self.last_hash else {
            problems.push(problem(format!(
                "the replay index {} covers the log up to record {}, which the log does not reach",
                index_dir.display(),
                self.until - 1
            )));
            return;
        };
        let expected = match expected_files(self.builder, last_hash) {
            Ok(expected) => expected,
            Err(e) => return problems.push(problem(format!("the replay index cannot be encoded: {e}"))),
        };
        let mut stored: Vec<String> = match std::fs::read_dir(&index_dir) {
            Ok(entries) => {
                entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
            }
            Err(e) => {
                return problems.push(problem(format!("the replay index {} cannot be read: {e}", index_dir.display())))
            }
        };
        // A temporary file is what a write cut short leaves; it is never read.
        stored.retain(|name| !name.ends_with(".tmp"));
        stored.sort();
        for name in &stored {
            let path = index_dir.join(name);
            match (expected.get(name), std::fs::read(&path)) {
                (None, _) => problems.push(problem(format!("{} is not a file the replay index writes", path.display()))),
                (Some(_), Err(e)) => problems.push(problem(format!("{} cannot be read: {e}", path.display()))),
                (Some(bytes), Ok(found)) if *bytes != found => problems.push(problem(format!(
                    "{} differs from what the log gives (damaged or changed); delete {} (a cache of the log: the next replay rebuilds it)",
                    path.display(),
                    index_dir.display()
                ))),
                _ => {}
            }
        }
        for name in expected.keys().filter(|name| !stored.contains(name)) {
            problems.push(problem(format!("{} is missing from the replay index", index_dir.join(name).display())));
        }
    }
}
