//! [`Chain`] on CometBFT: broadcast to the local CometBFT with `broadcast_tx_sync`, then wait
//! in-process until this node's ABCI application has committed the block holding the
//! transaction.

use std::sync::Arc;

use crate::{
    abci::AbciStatus,
    app::{tx::tx_hash, TxCode},
    chain::{BoxFuture, Chain, Finalized, SubmitError},
    cometbft::{CometRpc, Waiters},
    store::{Snapshot, Store, StoreError},
};

pub struct CometChain {
    chain_id: String,
    abci: Arc<AbciStatus>,
    rpc: CometRpc,
    waiters: Arc<Waiters>,
    store: Arc<Store>,
}

impl CometChain {
    pub fn new(
        chain_id: impl Into<String>,
        abci: Arc<AbciStatus>,
        rpc: CometRpc,
        waiters: Arc<Waiters>,
        store: Arc<Store>,
    ) -> Self {
        Self { chain_id: chain_id.into(), abci, rpc, waiters, store }
    }

    pub fn rpc(&self) -> &CometRpc {
        &self.rpc
    }

    async fn submit_and_wait(&self, tx: Vec<u8>) -> Result<Finalized, SubmitError> {
        let hash = tx_hash(&tx);
        // Registered before broadcasting, so a block committed before broadcast returns still
        // resolves it.
        let waiter = self.waiters.register(&hash);
        let guard = ForgetOnDrop { waiters: &self.waiters, hash: &hash };
        let started = std::time::Instant::now();
        let verdict = self.rpc.broadcast_tx_sync(&tx).await.map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        tracing::debug!(broadcast_us = started.elapsed().as_micros() as u64, "broadcast");
        if verdict.code != 0 {
            let code = TxCode::from_u32(verdict.code).unwrap_or(TxCode::Malformed);
            return Err(SubmitError::Refused { code, log: verdict.log });
        }
        let result = waiter.await.map_err(|_| SubmitError::Unavailable("the node is shutting down".into()))?;
        drop(guard);
        if !result.committed || result.code != TxCode::Ok {
            return Err(SubmitError::Refused { code: result.code, log: result.log });
        }
        Ok(Finalized {
            height: result.height,
            tx_hash: hash,
            code: result.code,
            log: result.log,
            ledger: result.ledger,
        })
    }
}

/// Removes a waiter whose caller stopped waiting (timeout, client gone).
struct ForgetOnDrop<'a> {
    waiters: &'a Waiters,
    hash: &'a str,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.waiters.forget(self.hash);
    }
}

impl Chain for CometChain {
    fn submit(&self, tx: Vec<u8>) -> BoxFuture<'_, Result<Finalized, SubmitError>> {
        Box::pin(self.submit_and_wait(tx))
    }

    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.store.snapshot()
    }

    fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn readiness(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if !self.abci.connected() {
                return Err("CometBFT has not connected to the application yet".into());
            }
            let status = self.rpc.status().await.map_err(|e| format!("CometBFT RPC: {e}"))?;
            if status.catching_up {
                return Err(format!("CometBFT is catching up (at height {})", status.latest_height));
            }
            Ok(())
        })
    }
}
