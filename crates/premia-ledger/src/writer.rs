//! The thread that writes and flushes committed batches, so that folding the next batch overlaps
//! the disk, and the progress it reports (which batch tickets are durable).

use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};

use premia_core::fold::Entry;

use crate::store::{cursor_key, entry_key, log_key, rejection_key, StoredRejection};

/// Writes not yet committed: one chunk of log records, the entries they booked and the
/// rejections that came with them.
#[derive(Default)]
pub(crate) struct PendingBatch {
    pub chunk: Vec<u8>,
    pub first_seq: Option<u64>,
    pub records: usize,
    pub entries: Vec<Entry>,
    pub rejections: Vec<StoredRejection>,
    pub cursors: Vec<(String, u64)>,
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
    failure: Option<sled::Error>,
    /// Told the ticket of every batch made durable (and of a failure, as 0): async callers
    /// wake on it instead of blocking a thread in `wait`.
    on_durable: Option<Box<dyn Fn(u64) + Send>>,
}

impl WriterProgress {
    /// Records how writing the batch `ticket` went, and tells the hook.
    fn record(&mut self, ticket: u64, result: Result<(), sled::Error>) {
        match result {
            Ok(()) if self.failure.is_none() => self.durable = ticket,
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
    pub(crate) fn start(db: sled::Db) -> std::io::Result<Writer> {
        let (sender, receiver) = mpsc::sync_channel::<(u64, PendingBatch)>(2);
        let progress = Arc::new((Mutex::new(WriterProgress::default()), Condvar::new()));
        let shared = progress.clone();
        let thread = std::thread::Builder::new().name("premia-writer".into()).spawn(move || {
            for (ticket, pending) in receiver {
                let result = write_batch(&db, pending);
                let (lock, condvar) = &*shared;
                lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).record(ticket, result);
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

fn write_batch(db: &sled::Db, pending: PendingBatch) -> Result<(), sled::Error> {
    let encode = |e: bincode::Error| sled::Error::Unsupported(format!("cannot encode a batch: {e}"));
    let mut batch = sled::Batch::default();
    if let Some(first_seq) = pending.first_seq {
        batch.insert(&log_key(first_seq), lz4_flex::compress_prepend_size(&pending.chunk));
        if !pending.entries.is_empty() {
            let bytes = bincode::serialize(&pending.entries).map_err(encode)?;
            batch.insert(&entry_key(first_seq), lz4_flex::compress_prepend_size(&bytes));
        }
    }
    for rejection in &pending.rejections {
        batch.insert(&rejection_key(rejection.id), bincode::serialize(rejection).map_err(encode)?);
    }
    for (name, position) in &pending.cursors {
        batch.insert(cursor_key(name), &position.to_be_bytes());
    }
    db.apply_batch(batch)?;
    db.flush()?;
    Ok(())
}
