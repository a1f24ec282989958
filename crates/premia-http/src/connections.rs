//! The open connections, oldest first, and the cap on how many there are. A connection is idle
//! while no request of its own is being answered: it has not sent a whole request head yet
//! (perhaps never will), or waits between keep-alive requests. At the cap, a new connection
//! closes the oldest idle one and takes its place; a client that never finishes its request so
//! cannot keep out one that does, and one whose request is being answered (a feed, a slow
//! statement) is never cut. With every connection busy, the new one is refused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// The open connections; at most `max` of them, but for those told to close that have not yet.
#[derive(Debug)]
pub(crate) struct Connections {
    max: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    /// By id, which is by age: the oldest first.
    by_age: BTreeMap<u64, Arc<Shared>>,
}

/// What a connection's task and the registry share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Requests being answered (until their response body is dropped).
    in_flight: AtomicUsize,
    /// Told when the connection is to close to make room for a new one.
    evicted: Notify,
}

/// One admitted connection; leaves the registry when dropped.
#[derive(Debug)]
pub(crate) struct Connection {
    id: u64,
    shared: Arc<Shared>,
    registry: Arc<Connections>,
}

/// A request being answered on a connection; it is busy until this is dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Shared>);

impl Connections {
    pub(crate) fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections { max, open: Mutex::new(Open::default()) })
    }

    /// A place for a new connection: a free one, or the oldest idle connection's, which is told
    /// to close; `None` when all `max` are busy.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Connection> {
        // The map is plain data, right whatever panicked while holding the lock.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.by_age.len() >= self.max {
            let idle = open.by_age.iter().find(|(_, c)| c.in_flight.load(Ordering::SeqCst) == 0).map(|(id, _)| *id)?;
            if let Some(evicted) = open.by_age.remove(&idle) {
                evicted.evicted.notify_one();
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let shared = Arc::new(Shared::default());
        open.by_age.insert(id, shared.clone());
        Some(Connection { id, shared, registry: self.clone() })
    }

    /// Connections admitted and not yet closed or told to close.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).by_age.len()
    }
}

impl Connection {
    /// Marks a request of this connection as being answered until the guard is dropped.
    pub(crate) fn begin(&self) -> InFlight {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.shared.clone())
    }

    /// Whether a request of this connection is being answered.
    pub(crate) fn is_busy(&self) -> bool {
        self.shared.in_flight.load(Ordering::SeqCst) > 0
    }

    /// Resolves when a newer connection took this one's place.
    pub(crate) async fn evicted(&self) {
        self.shared.evicted.notified().await
    }
}

impl InFlight {
    /// Does nothing: a response body's closure calls it so that it owns the guard.
    pub(crate) fn hold(&self) {}
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut open = self.registry.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.by_age.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room_and_busy_ones_are_never_cut() {
        let connections = Connections::new(3);
        let (a, b, c) = (connections.admit().unwrap(), connections.admit().unwrap(), connections.admit().unwrap());
        assert_eq!(connections.len(), 3);
        // a is answering a request: b is the oldest idle one, and makes room for d.
        let request = a.begin();
        let d = connections.admit().unwrap();
        assert_eq!(connections.len(), 3);
        tokio::time::timeout(std::time::Duration::from_secs(5), b.evicted()).await.unwrap();
        assert!(a.is_busy() && !c.is_busy());
        // Every one busy: a new connection is refused.
        let (c_request, d_request) = (c.begin(), d.begin());
        assert!(connections.admit().is_none());
        // A request answered frees its connection to be closed for a newer one: here a's.
        drop(request);
        let e = connections.admit().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), a.evicted()).await.unwrap();
        // A connection that ends leaves room without closing another.
        drop((c_request, c));
        assert_eq!(connections.len(), 2);
        let _f = connections.admit().unwrap();
        assert_eq!(connections.len(), 3);
        drop((d_request, d, e, b, a));
        assert_eq!(connections.len(), 1);
    }
}
