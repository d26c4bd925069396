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
    /// When CometBFT last said it was caught up: writes check readiness, and asking CometBFT
    /// on every write would cost each a round trip.
    caught_up_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long a "caught up" answer from CometBFT is trusted.
const CAUGHT_UP_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl CometChain {
    pub fn new(
        chain_id: impl Into<String>,
        abci: Arc<AbciStatus>,
        rpc: CometRpc,
        waiters: Arc<Waiters>,
        store: Arc<Store>,
    ) -> Self {
        Self { chain_id: chain_id.into(), abci, rpc, waiters, store, caught_up_at: std::sync::Mutex::new(None) }
    }

    pub fn rpc(&self) -> &CometRpc {
        &self.rpc
    }

    async fn submit_and_wait(&self, tx: Vec<u8>) -> Result<Finalized, SubmitError> {
        let hash = tx_hash(&tx);
        // Registered before broadcasting, so a block committed before broadcast returns still
        // resolves it.
        let mut waiter = self.waiters.register(&hash);
        let started = std::time::Instant::now();
        let verdict = self.rpc.broadcast_tx_sync(&tx).await.map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        tracing::debug!(broadcast_us = started.elapsed().as_micros() as u64, "broadcast");
        if verdict.code != 0 {
            let code = TxCode::from_u32(verdict.code).unwrap_or(TxCode::Malformed);
            return Err(SubmitError::Refused { code, log: verdict.log });
        }
        let result = waiter.wait().await.ok_or_else(|| SubmitError::Unavailable("the node is shutting down".into()))?;
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

    fn open_waiters(&self) -> usize {
        self.waiters.open()
    }

    fn cometbft(&self) -> Option<&CometRpc> {
        Some(&self.rpc)
    }

    fn readiness(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if !self.abci.connected() {
                return Err("CometBFT has not connected to the application yet".into());
            }
            let fresh = |at: &Option<std::time::Instant>| at.is_some_and(|at| at.elapsed() < CAUGHT_UP_FOR);
            if fresh(&self.caught_up_at.lock().unwrap_or_else(|p| p.into_inner())) {
                return Ok(());
            }
            let status = self.rpc.status().await.map_err(|e| format!("CometBFT RPC: {e}"))?;
            if status.catching_up {
                return Err(format!("CometBFT is catching up (at height {})", status.latest_height));
            }
            *self.caught_up_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thousands of writes whose broadcast fails (CometBFT gone) leave no waiter behind.
    #[tokio::test]
    async fn failed_broadcasts_leave_no_waiter() {
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let rpc = CometRpc::new(format!("http://{gone}"), std::time::Duration::from_millis(200));
        let waiters = Arc::new(Waiters::default());
        let chain = CometChain::new(
            "c",
            Arc::new(AbciStatus::default()),
            rpc,
            waiters.clone(),
            Arc::new(Store::in_memory().unwrap()),
        );
        for i in 0..2000u32 {
            let result = chain.submit(i.to_be_bytes().to_vec()).await;
            assert!(matches!(result, Err(SubmitError::Unavailable(_))), "{result:?}");
        }
        assert_eq!(chain.open_waiters(), 0);
    }
}
