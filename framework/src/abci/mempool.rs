//! CheckTx: the full re-execution against committed state, so the mempool holds only
//! transactions that would apply now. Recheck (after every block) drops those that no longer do
//! and resolves their waiters, so the client hears "conflict" at once rather than a timeout; a
//! recheck of a transaction whose reads no block has written since is answered from memory
//! ([`super::recheck`]).

use tendermint::{
    abci::response,
    v0_38::abci::request::{self, CheckTxKind},
};

use super::{recheck::RecordingView, AbciCore};
use crate::{
    app::{tx::tx_hash, TxCode},
    cometbft::TxFinal,
};

impl AbciCore {
    pub(super) fn check_tx(&mut self, check: request::CheckTx) -> response::CheckTx {
        let committed = self.status.height();
        if check.kind == CheckTxKind::Recheck && self.rechecks.still_passes(&tx_hash(&check.tx), committed) {
            return response::CheckTx::default();
        }
        let height = committed + 1;
        let snapshot = self.store.snapshot().expect("store readable at CheckTx");
        let view = RecordingView::new(&snapshot);
        let outcome = self.app.execute_tx(&view, height, &check.tx).unwrap_or_else(|e| panic!("CheckTx: {e}"));
        if outcome.code == TxCode::Ok {
            self.rechecks.passed(outcome.tx_hash.clone(), committed, view.into_reads());
        } else {
            self.rechecks.failed(&outcome.tx_hash);
        }
        if outcome.code != TxCode::Ok && check.kind == CheckTxKind::Recheck {
            self.waiters.resolve(
                &outcome.tx_hash,
                TxFinal { height, code: outcome.code, log: outcome.log.clone(), ledger: None, committed: false },
            );
        }
        response::CheckTx {
            code: outcome.code.as_u32().into(),
            log: outcome.log,
            codespace: if outcome.code == TxCode::Ok { String::new() } else { "bftws".into() },
            ..Default::default()
        }
    }
}
