//! In-process waiters keyed by transaction hash: the HTTP path registers one before it
//! broadcasts, and the ABCI application resolves it when the block holding the transaction is
//! committed (or when recheck evicts the transaction).
//!
//! A [`Waiter`] removes itself when dropped, whatever ended the wait (a refused broadcast, a
//! timeout, a client that went away), so no entry outlives its caller.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

use crate::app::{LedgerEntry, TxCode};

/// How a transaction ended on this node.
#[derive(Debug, Clone)]
pub struct TxFinal {
    pub height: u64,
    pub code: TxCode,
    pub log: String,
    pub ledger: Option<LedgerEntry>,
    /// False when the transaction was dropped from the mempool instead of committed.
    pub committed: bool,
}

type Entries = BTreeMap<String, Vec<(u64, oneshot::Sender<TxFinal>)>>;

#[derive(Default)]
pub struct Waiters {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_hash: Entries,
    next_id: u64,
    open: usize,
}

/// One caller's wait for one transaction; dropping it gives up the wait.
pub struct Waiter {
    waiters: Arc<Waiters>,
    hash: String,
    id: u64,
    receiver: oneshot::Receiver<TxFinal>,
}

impl Waiter {
    /// The transaction's end on this node; `None` if the waiters were dropped (shutdown).
    pub async fn wait(&mut self) -> Option<TxFinal> {
        (&mut self.receiver).await.ok()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut inner = self.waiters.lock();
        if let Some(list) = inner.by_hash.get_mut(&self.hash) {
            let before = list.len();
            list.retain(|(id, _)| *id != self.id);
            let removed = before - list.len();
            if list.is_empty() {
                inner.by_hash.remove(&self.hash);
            }
            inner.open -= removed;
        }
    }
}

impl Waiters {
    /// Registers interest in `tx_hash`; the waiter resolves once.
    pub fn register(self: &Arc<Self>, tx_hash: &str) -> Waiter {
        let (sender, receiver) = oneshot::channel();
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.open += 1;
        inner.by_hash.entry(tx_hash.to_owned()).or_default().push((id, sender));
        Waiter { waiters: self.clone(), hash: tx_hash.to_owned(), id, receiver }
    }

    /// Resolves every waiter of `tx_hash`.
    pub fn resolve(&self, tx_hash: &str, result: TxFinal) {
        let senders = {
            let mut inner = self.lock();
            let senders = inner.by_hash.remove(tx_hash).unwrap_or_default();
            inner.open -= senders.len();
            senders
        };
        for (_, sender) in senders {
            let _ = sender.send(result.clone());
        }
    }

    pub fn is_waiting(&self, tx_hash: &str) -> bool {
        self.lock().by_hash.contains_key(tx_hash)
    }

    /// Waits still open (the `bftws_waiters` gauge).
    pub fn open(&self) -> usize {
        self.lock().open
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_ok() -> TxFinal {
        TxFinal { height: 1, code: TxCode::Ok, log: String::new(), ledger: None, committed: true }
    }

    #[tokio::test]
    async fn every_wait_ends_with_its_entry_removed() {
        let waiters = Arc::new(Waiters::default());
        // Given up before any answer: refused broadcasts, timeouts, clients gone.
        for i in 0..1000 {
            let _gone = waiters.register(&format!("H{}", i % 7));
        }
        assert_eq!((waiters.open(), waiters.is_waiting("H1")), (0, false));
        // Two callers on one hash; one gives up, the other is answered.
        let mut kept = waiters.register("A");
        drop(waiters.register("A"));
        assert_eq!(waiters.open(), 1);
        waiters.resolve("A", final_ok());
        assert_eq!(waiters.open(), 0);
        assert_eq!(kept.wait().await.map(|f| f.height), Some(1));
        drop(kept);
        assert_eq!(waiters.open(), 0);
    }
}
