//! How many Server-Sent Events feeds each token holds open: each one holds a connection and a
//! JetStream consumer for as long as it lasts, so one token (a leaked one, a page reloaded in a
//! loop) may hold only a few. A slot is taken before the feed's consumer is made and given back
//! when the feed's stream is dropped, which is when its connection ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Open feeds per token, by the token's place among the configured ones.
#[derive(Debug)]
pub(crate) struct FeedSlots {
    per_token: usize,
    open: Mutex<HashMap<usize, usize>>,
}

/// One open feed of a token; its slot is free again when this is dropped.
#[derive(Debug)]
pub(crate) struct FeedSlot {
    slots: Arc<FeedSlots>,
    token: usize,
}

impl FeedSlots {
    pub(crate) fn new(per_token: usize) -> Arc<FeedSlots> {
        Arc::new(FeedSlots { per_token, open: Mutex::new(HashMap::new()) })
    }

    /// How many feeds one token may hold open.
    pub(crate) fn per_token(&self) -> usize {
        self.per_token
    }

    /// A slot for one more feed of `token`, or `None` when it holds as many as it may.
    pub(crate) fn take(self: &Arc<Self>, token: usize) -> Option<FeedSlot> {
        // The count is plain data, right whatever panicked while holding the lock.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(token).or_insert(0);
        if *count >= self.per_token {
            return None;
        }
        *count += 1;
        Some(FeedSlot { slots: self.clone(), token })
    }

    #[cfg(test)]
    fn open(&self, token: usize) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).get(&token).copied().unwrap_or(0)
    }
}

impl FeedSlot {
    /// Does nothing: a stream's closure calls it so that it owns the slot for as long as it lives.
    pub(crate) fn hold(&self) {}
}

impl Drop for FeedSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.token) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_at_most_its_share_and_a_dropped_feed_frees_its_slot() {
        let slots = FeedSlots::new(2);
        let first = slots.take(0).unwrap();
        let second = slots.take(0).unwrap();
        assert!(slots.take(0).is_none(), "a third feed of token 0 is over the limit of 2");
        // Another token has slots of its own.
        let other = slots.take(1).unwrap();
        assert_eq!((slots.open(0), slots.open(1)), (2, 1));
        drop(first);
        assert_eq!(slots.open(0), 1);
        let again = slots.take(0).unwrap();
        drop((second, again, other));
        assert_eq!((slots.open(0), slots.open(1)), (0, 0));
    }
}
