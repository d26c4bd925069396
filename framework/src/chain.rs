//! The interface between a node's HTTP front and the chain under it: "submit this transaction
//! and wait until it is final here", plus the node's view of committed state.

use std::{future::Future, pin::Pin};

use crate::{
    app::{LedgerEntry, TxCode},
    cometbft::CometRpc,
    store::{Snapshot, StoreError},
};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A transaction applied in a block of this node's chain (and visible in its state).
#[derive(Debug, Clone)]
pub struct Finalized {
    pub height: u64,
    pub tx_hash: String,
    pub code: TxCode,
    pub log: String,
    pub ledger: Option<LedgerEntry>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// The transaction was refused before or during ordering (CheckTx, recheck, re-execution).
    #[error("transaction refused ({}): {log}", code.name())]
    Refused { code: TxCode, log: String },
    /// Nothing final arrived in time; the transaction may still be applied later.
    #[error("no final result within {0} ms")]
    Timeout(u64),
    /// The chain could not be reached.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
}

pub trait Chain: Send + Sync + 'static {
    /// Submits `tx` and resolves once it is final and applied to this node's state.
    fn submit(&self, tx: Vec<u8>) -> BoxFuture<'_, Result<Finalized, SubmitError>>;

    /// A snapshot of this node's committed state.
    fn snapshot(&self) -> Result<Snapshot, StoreError>;

    /// The chain id.
    fn chain_id(&self) -> &str;

    /// Callers waiting for a transaction to end (the `bftws_waiters` gauge).
    fn open_waiters(&self) -> usize {
        0
    }

    /// `Ok` when this node can serve: its application is connected and its chain caught up.
    fn readiness(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// The CometBFT node under this chain, where blocks, commits and results are read for
    /// proofs; `None` for a chain without one (the in-process sequencer).
    fn cometbft(&self) -> Option<&CometRpc> {
        None
    }
}
