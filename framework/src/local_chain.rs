//! An in-process, single-node sequencer: each submitted transaction is executed as its own block
//! and committed to the store at once. It runs the same [`App`] as the ABCI application, so the
//! whole request model is usable (and tested) without CometBFT.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::{
    app::{App, GenesisError, TxCode},
    chain::{BoxFuture, Chain, Finalized, SubmitError},
    store::{BlockCommit, Snapshot, Store, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum LocalChainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The network's own set-up is inconsistent (tokens naming roles the service lacks).
    #[error("invalid local network: {0}")]
    Config(String),
}

pub struct LocalChain {
    app: App,
    store: Store,
    /// Serialises block production: one block at a time, like consensus.
    producing: Mutex<()>,
}

impl LocalChain {
    /// A chain on `store`, initialised from `app_state` if the store is empty.
    pub fn new(app: App, store: Store, app_state: &Value) -> Result<Arc<Self>, LocalChainError> {
        let last = store.last_block()?;
        if last.app_hash.is_empty() {
            let (writes, app_hash) = app.genesis(app_state)?;
            store.commit_block(&BlockCommit { height: 0, app_hash: &app_hash, writes: &[writes] })?;
        }
        Ok(Arc::new(Self { app, store, producing: Mutex::new(()) }))
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn produce(&self, tx: &[u8]) -> Result<Finalized, SubmitError> {
        let _guard = self.producing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let fatal = |e: &dyn std::fmt::Display| SubmitError::Unavailable(format!("local chain failed: {e}"));
        let last = self.store.last_block().map_err(|e| fatal(&e))?;
        let snapshot = self.store.snapshot().map_err(|e| fatal(&e))?;
        let height = last.height + 1;
        let block = self.app.execute_block(&snapshot, &last.app_hash, height, &[tx]).map_err(|e| fatal(&e))?;
        let outcome = block.txs[0].clone();
        if outcome.code != TxCode::Ok {
            return Err(SubmitError::Refused { code: outcome.code, log: outcome.log });
        }
        let writes = block.writes();
        self.store
            .commit_block(&BlockCommit { height, app_hash: &block.app_hash, writes: &writes })
            .map_err(|e| fatal(&e))?;
        Ok(Finalized { height, tx_hash: outcome.tx_hash, code: outcome.code, log: outcome.log, ledger: outcome.ledger })
    }
}

impl Chain for LocalChain {
    fn submit(&self, tx: Vec<u8>) -> BoxFuture<'_, Result<Finalized, SubmitError>> {
        Box::pin(async move { self.produce(&tx) })
    }

    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.store.snapshot()
    }

    fn chain_id(&self) -> &str {
        self.app.chain_id()
    }
}
