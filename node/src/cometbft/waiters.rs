//! In-process waiters keyed by transaction hash: the HTTP path registers one before it
//! broadcasts, and the ABCI application resolves it when the block holding the transaction is
//! committed (or when recheck evicts the transaction).

use std::{collections::BTreeMap, sync::Mutex};

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

#[derive(Default)]
pub struct Waiters {
    by_hash: Mutex<BTreeMap<String, Vec<oneshot::Sender<TxFinal>>>>,
}

impl Waiters {
    /// Registers interest in `tx_hash`; the receiver resolves once.
    pub fn register(&self, tx_hash: &str) -> oneshot::Receiver<TxFinal> {
        let (sender, receiver) = oneshot::channel();
        self.lock().entry(tx_hash.to_owned()).or_default().push(sender);
        receiver
    }

    /// Drops interest (the caller gave up).
    pub fn forget(&self, tx_hash: &str) {
        let mut map = self.lock();
        if let Some(list) = map.get_mut(tx_hash) {
            list.retain(|s| !s.is_closed());
            if list.is_empty() {
                map.remove(tx_hash);
            }
        }
    }

    /// Resolves every waiter of `tx_hash`.
    pub fn resolve(&self, tx_hash: &str, result: TxFinal) {
        let senders = self.lock().remove(tx_hash).unwrap_or_default();
        for sender in senders {
            let _ = sender.send(result.clone());
        }
    }

    pub fn is_waiting(&self, tx_hash: &str) -> bool {
        self.lock().contains_key(tx_hash)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<oneshot::Sender<TxFinal>>>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }
}
