//! The thread that writes and flushes committed batches, so that folding the next batch overlaps
//! the disk, and the progress it reports (which batch tickets are durable).

use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};

use premia_core::fold::Entry;

use crate::head::{CommittedHead, HeadFile};
use crate::store::{cursor_key, entry_key, log_key, rejection_key, HEAD_KEY};

/// Writes not yet committed: one chunk of log records, the entries they booked, the
/// rejections that came with them (id and stored bytes), and the head after them.
pub(crate) struct PendingBatch {
    pub chunk: Vec<u8>,
    pub first_seq: Option<u64>,
    pub records: usize,
    pub entries: Vec<Entry>,
    pub rejections: Vec<(u64, Vec<u8>)>,
    pub cursors: Vec<(String, u64)>,
    /// What the ledger has committed once this batch is durable; set when it is submitted.
    pub head: CommittedHead,
}

impl Default for PendingBatch {
    fn default() -> Self {
        PendingBatch {
            chunk: Vec::new(),
            first_seq: None,
            records: 0,
            entries: Vec::new(),
            rejections: Vec::new(),
            cursors: Vec::new(),
            head: CommittedHead::EMPTY,
        }
    }
}

/// Hands batches to the writer thread. Batches are written in the order submitted; a failure
/// stops all later writes. Nothing on the thread may panic: a waiter would wait forever.
pub(crate) struct Writer {
    sender: Option<mpsc::SyncSender<(u64, PendingBatch)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    progress: Arc<(Mutex<WriterProgress>, Condvar)>,
    submitted: u64,
}

#[derive(Default)]
struct WriterProgress {
    durable: u64,
    /// The committed head after the last durable batch (none before the first).
    durable_head: Option<CommittedHead>,
    failure: Option<sled::Error>,
    /// Told the ticket of every batch made durable (and of a failure, as 0): async callers
    /// wake on it instead of blocking a thread in `wait`.
    on_durable: Option<Box<dyn Fn(u64) + Send>>,
}

impl WriterProgress {
    /// Records how writing the batch `ticket` went, and tells the hook.
    fn record(&mut self, ticket: u64, result: Result<(), sled::Error>, head: CommittedHead) {
        match result {
            Ok(()) if self.failure.is_none() => {
                self.durable = ticket;
                self.durable_head = Some(head);
            }
            Ok(()) => {}
            Err(e) => self.failure = Some(e),
        }
        if let Some(hook) = &self.on_durable {
            hook(if self.failure.is_some() { 0 } else { ticket });
        }
    }

    fn failed(&self) -> Result<(), sled::Error> {
        match &self.failure {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Writer {
    pub(crate) fn start(db: sled::Db, mut head_file: HeadFile) -> std::io::Result<Writer> {
        let (sender, receiver) = mpsc::sync_channel::<(u64, PendingBatch)>(2);
        let progress = Arc::new((Mutex::new(WriterProgress::default()), Condvar::new()));
        let shared = progress.clone();
        let thread = std::thread::Builder::new().name("premia-writer".into()).spawn(move || {
            for (ticket, pending) in receiver {
                let head = pending.head;
                let result = write_batch(&db, &mut head_file, pending);
                let (lock, condvar) = &*shared;
                lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).record(ticket, result, head);
                condvar.notify_all();
            }
        })?;
        Ok(Writer { sender: Some(sender), thread: Some(thread), progress, submitted: 0 })
    }

    fn progress(&self) -> MutexGuard<'_, WriterProgress> {
        self.progress.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The ticket of the last batch submitted (0 before the first).
    pub(crate) fn submitted(&self) -> u64 {
        self.submitted
    }

    pub(crate) fn submit(&mut self, pending: PendingBatch) -> Result<u64, sled::Error> {
        self.progress().failed()?;
        let ticket = self.submitted + 1;
        match &self.sender {
            Some(sender) if self.thread.is_some() && sender.send((ticket, pending)).is_ok() => {}
            _ => return Err(sled::Error::ReportableBug("the ledger's writer thread is gone".into())),
        }
        self.submitted = ticket;
        Ok(ticket)
    }

    pub(crate) fn is_durable(&self, ticket: u64) -> Result<bool, sled::Error> {
        let progress = self.progress();
        progress.failed()?;
        Ok(progress.durable >= ticket)
    }

    pub(crate) fn wait(&self, ticket: u64) -> Result<(), sled::Error> {
        let (lock, condvar) = &*self.progress;
        let mut progress = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while progress.durable < ticket && progress.failure.is_none() {
            progress = condvar.wait(progress).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        progress.failed()
    }

    /// The committed head after the last durable batch of this run, if any.
    pub(crate) fn durable_head(&self) -> Option<CommittedHead> {
        self.progress().durable_head
    }

    pub(crate) fn on_durable(&self, hook: Box<dyn Fn(u64) + Send>) {
        self.progress().on_durable = Some(hook);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the thread finish what it was given, then end.
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes one batch as one atomic sled batch, flushes it, then records the head after it in the
/// head file (synced): only then is the batch durable, and may what it holds be acknowledged.
fn write_batch(db: &sled::Db, head_file: &mut HeadFile, pending: PendingBatch) -> Result<(), sled::Error> {
    let encode = |e: bincode::Error| sled::Error::Unsupported(format!("cannot encode a batch: {e}"));
    crash_point(CrashPoint::BeforeWrite);
    let mut batch = sled::Batch::default();
    if let Some(first_seq) = pending.first_seq {
        batch.insert(&log_key(first_seq), lz4_flex::compress_prepend_size(&pending.chunk));
        if !pending.entries.is_empty() {
            let bytes = bincode::serialize(&pending.entries).map_err(encode)?;
            batch.insert(&entry_key(first_seq), lz4_flex::compress_prepend_size(&bytes));
        }
    }
    for (id, bytes) in pending.rejections {
        batch.insert(&rejection_key(id), bytes);
    }
    for (name, position) in &pending.cursors {
        batch.insert(cursor_key(name), &position.to_be_bytes());
    }
    batch.insert(HEAD_KEY, pending.head.encode().to_vec());
    db.apply_batch(batch)?;
    crash_point(CrashPoint::AfterWrite);
    db.flush()?;
    crash_point(CrashPoint::AfterFlush);
    head_file.write(&pending.head).map_err(sled::Error::Io)?;
    crash_point(CrashPoint::AfterHead);
    Ok(())
}

/// The phases of writing a batch at which a crash test may stop the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashPoint {
    BeforeWrite,
    AfterWrite,
    AfterFlush,
    AfterHead,
}

impl CrashPoint {
    const ALL: [CrashPoint; 4] =
        [CrashPoint::BeforeWrite, CrashPoint::AfterWrite, CrashPoint::AfterFlush, CrashPoint::AfterHead];

    fn name(self) -> &'static str {
        match self {
            CrashPoint::BeforeWrite => "before-write",
            CrashPoint::AfterWrite => "after-write",
            CrashPoint::AfterFlush => "after-flush",
            CrashPoint::AfterHead => "after-head",
        }
    }
}

/// For crash tests only: `PREMIA_TEST_CRASH_AT=PHASE:N` makes the process abort (as a SIGKILL
/// would stop it: nothing flushed, nothing cleaned up) when the writer reaches PHASE for the
/// N-th time. Read once; without the variable this is one comparison per phase.
fn crash_point(at: CrashPoint) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PLAN: OnceLock<Option<(CrashPoint, u64)>> = OnceLock::new();
    static REACHED: AtomicU64 = AtomicU64::new(0);
    let plan = PLAN.get_or_init(|| {
        let text = std::env::var("PREMIA_TEST_CRASH_AT").ok()?;
        let (phase, count) = text.split_once(':').unwrap_or((text.as_str(), "1"));
        let phase = CrashPoint::ALL.into_iter().find(|p| p.name() == phase)?;
        Some((phase, count.parse().ok()?))
    });
    if let Some((phase, count)) = plan {
        if *phase == at && REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *count {
            std::process::abort();
        }
    }
}
