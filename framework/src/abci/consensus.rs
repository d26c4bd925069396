//! InitChain, PrepareProposal, ProcessProposal, FinalizeBlock and Commit.
//!
//! PrepareProposal and ProcessProposal execute on a read snapshot of committed state and keep
//! their outcome in memory; only Commit writes the store, in one transaction per block. A store
//! failure here panics: continuing with a state this node cannot vouch for would fork it.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tendermint::{
    abci::{response, Event, EventAttributeIndexExt},
    v0_38::abci::request,
};

use super::{AbciCore, FaultMode};
use crate::{
    app::{BlockOutcome, TxCode, TxOutcome},
    cometbft::TxFinal,
    store::BlockCommit,
};

impl AbciCore {
    pub(super) fn init_chain(&mut self, init: request::InitChain) -> response::InitChain {
        let app_state: serde_json::Value = if init.app_state_bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&init.app_state_bytes)
                .unwrap_or_else(|e| panic!("genesis app_state is not JSON: {e}"))
        };
        if init.chain_id != self.app.chain_id() {
            panic!("genesis chain id '{}' differs from this node's '{}'", init.chain_id, self.app.chain_id());
        }
        let (writes, app_hash) = self.app.genesis(&app_state).unwrap_or_else(|e| panic!("{e}"));
        let last = self.store.last_block().expect("store readable at InitChain");
        if last.app_hash.is_empty() {
            self.store
                .commit_block(&BlockCommit { height: 0, app_hash: &app_hash, writes: &[writes] })
                .expect("store writable at InitChain");
        } else if last.height != 0 || last.app_hash != app_hash {
            // CometBFT repeats InitChain only while the app reports height 0; anything else
            // means this store belongs to another chain.
            panic!("store already holds another chain (height {}); refusing InitChain", last.height);
        }
        tracing::info!(chain_id = %init.chain_id, app_hash = %hex::encode(app_hash), "genesis applied");
        response::InitChain {
            consensus_params: None,
            validators: Vec::new(),
            app_hash: app_hash.to_vec().try_into().expect("any byte string is an app hash"),
        }
    }

    pub(super) fn prepare_proposal(&mut self, prepare: request::PrepareProposal) -> response::PrepareProposal {
        let max_bytes = usize::try_from(prepare.max_tx_bytes).unwrap_or(usize::MAX);
        let mut candidates = Vec::new();
        let mut size = 0usize;
        for tx in prepare.txs {
            if size + tx.len() > max_bytes {
                break;
            }
            size += tx.len();
            candidates.push(tx);
        }
        let height = prepare.height.value();
        let outcome = self.execute(height, &candidates);
        // An honest proposer leaves out what no longer matches: it would only get the block
        // rejected.
        let mut txs: Vec<Bytes> = candidates
            .iter()
            .zip(&outcome.txs)
            .filter(|(_, result)| result.code == TxCode::Ok)
            .map(|(tx, _)| tx.clone())
            .collect();
        self.inject_fault(&mut txs);
        // The outcome is the block's only if nothing was left out or added; FinalizeBlock also
        // compares the transactions before reusing it.
        self.proposed = (txs == candidates).then_some((height, candidates, outcome));
        response::PrepareProposal { txs }
    }

    pub(super) fn process_proposal(&mut self, process: request::ProcessProposal) -> response::ProcessProposal {
        let outcome = self.execute(process.height.value(), &process.txs);
        if let Some((index, bad)) = outcome.txs.iter().enumerate().find(|(_, t)| t.code != TxCode::Ok) {
            tracing::warn!(
                height = process.height.value(),
                proposer = %process.proposer_address,
                index,
                code = bad.code.name(),
                log = %bad.log,
                "rejecting proposal: it holds a transaction that does not re-execute"
            );
            return response::ProcessProposal::Reject;
        }
        self.validated.retain(|(hash, _)| hash.as_slice() != process.hash.as_bytes());
        self.validated.push((process.hash.as_bytes().to_vec(), outcome));
        response::ProcessProposal::Accept
    }

    pub(super) fn finalize_block(&mut self, block: request::FinalizeBlock) -> response::FinalizeBlock {
        let started = std::time::Instant::now();
        let height = block.height.value();
        let last = self.store.last_block().expect("store readable at FinalizeBlock");
        assert_eq!(height, last.height + 1, "FinalizeBlock for height {height} after committed height {}", last.height);
        let validated = self
            .validated
            .iter()
            .position(|(hash, outcome)| hash.as_slice() == block.hash.as_bytes() && outcome.height == height)
            .map(|i| self.validated.swap_remove(i).1);
        let proposed = match self.proposed.take() {
            Some((proposed_height, txs, outcome)) if proposed_height == height && txs == block.txs => Some(outcome),
            _ => None,
        };
        let mut outcome = validated.or(proposed).unwrap_or_else(|| self.execute(height, &block.txs));
        self.diverge(&mut outcome);
        let tx_results = outcome.txs.iter().map(exec_tx_result).collect();
        let app_hash = outcome.app_hash.to_vec().try_into().expect("any byte string is an app hash");
        self.finalized = Some(outcome);
        self.metrics.block_finalized(self.app.layer(), started.elapsed());
        response::FinalizeBlock {
            events: Vec::new(),
            tx_results,
            validator_updates: Vec::new(),
            consensus_param_updates: None,
            app_hash,
        }
    }

    pub(super) fn commit(&mut self) -> response::Commit {
        let outcome = self.finalized.take().expect("Commit without FinalizeBlock");
        let writes = outcome.writes();
        let written = writes.iter().flat_map(|set| set.iter().map(|(key, _)| key.clone())).collect();
        self.rechecks.block_committed(outcome.height, written, outcome.txs.iter().map(|tx| tx.tx_hash.as_str()));
        self.store
            .commit_block(&BlockCommit { height: outcome.height, app_hash: &outcome.app_hash, writes: &writes })
            .unwrap_or_else(|e| panic!("cannot persist block {}: {e}", outcome.height));
        self.status.height.store(outcome.height, Ordering::Relaxed);
        self.metrics.set_height(self.app.layer(), outcome.height);
        self.validated.clear();
        self.proposed = None;
        // Waiters resolve after the store commit, so a client's next request sees its write.
        for tx in outcome.txs {
            self.waiters.resolve(
                &tx.tx_hash,
                TxFinal { height: outcome.height, code: tx.code, log: tx.log, ledger: tx.ledger, committed: true },
            );
        }
        response::Commit { data: Bytes::new(), retain_height: 0u32.into() }
    }

    /// Executes a block's transactions on top of committed state.
    pub(super) fn execute(&self, height: u64, txs: &[Bytes]) -> BlockOutcome {
        let last = self.store.last_block().expect("store readable");
        let snapshot = self.store.snapshot().expect("store readable");
        self.app
            .execute_block(&snapshot, &last.app_hash, height, txs)
            .unwrap_or_else(|e| panic!("cannot execute block {height}: {e}"))
    }

    #[cfg(feature = "byzantine-test")]
    fn inject_fault(&self, txs: &mut Vec<Bytes>) {
        use crate::app::tx::{SignedOp, Tx};
        if self.fault != FaultMode::ProposeMismatch {
            return;
        }
        let Some((node_id, key)) = &self.forger else { return };
        let forged = txs.iter().find_map(|tx| match Tx::decode(tx) {
            Ok(Tx::Op(op)) => {
                let mut op = op.op;
                op.response.body["forged"] = serde_json::json!(true);
                Some(Tx::Op(SignedOp::sign(op, node_id, key)).encode())
            }
            _ => None,
        });
        if let Some(forged) = forged {
            tracing::warn!("BYZANTINE TEST MODE: proposing a forged transaction");
            txs.push(Bytes::from(forged));
        }
    }

    #[cfg(feature = "byzantine-test")]
    fn diverge(&self, outcome: &mut BlockOutcome) {
        let FaultMode::DivergeApply { from_height } = self.fault else { return };
        if outcome.height < from_height {
            return;
        }
        let Some(tx) = outcome.txs.iter_mut().find(|tx| tx.code == TxCode::Ok) else { return };
        tx.writes.put(format!("byzantine/{}", outcome.height).into_bytes(), b"diverged".to_vec());
        outcome.app_hash = crate::crypto::sha256(&[outcome.app_hash.as_slice(), b"byzantine"].concat());
        tracing::warn!(height = outcome.height, "BYZANTINE TEST MODE: applying a write the block does not hold");
    }

    #[cfg(not(feature = "byzantine-test"))]
    fn diverge(&self, _outcome: &mut BlockOutcome) {}

    #[cfg(not(feature = "byzantine-test"))]
    fn inject_fault(&self, _txs: &mut Vec<Bytes>) {
        debug_assert_eq!(self.fault, FaultMode::Honest);
    }
}

fn exec_tx_result(tx: &TxOutcome) -> tendermint::abci::types::ExecTxResult {
    let mut attributes = vec![("code", tx.code.name()).no_index()];
    if let Some(op) = tx.op {
        attributes.push(("op", op).index());
    }
    if let Some(session_id) = &tx.session_id {
        attributes.push(("session_id", session_id.as_str()).index());
    }
    let data =
        tx.ledger.as_ref().map(|l| Bytes::from(serde_json::to_vec(l).expect("ledger serializes"))).unwrap_or_default();
    tendermint::abci::types::ExecTxResult {
        code: tx.code.as_u32().into(),
        data,
        log: tx.log.clone(),
        events: vec![Event::new("bftws", attributes)],
        ..Default::default()
    }
}
