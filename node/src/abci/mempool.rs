//! CheckTx: the full re-execution against committed state, so the mempool holds only
//! transactions that would apply now. Recheck (after every block) drops those that no longer do
//! and resolves their waiters, so the client hears "conflict" at once rather than a timeout.

use tendermint::{
    abci::response,
    v0_38::abci::request::{self, CheckTxKind},
};

use super::AbciCore;
use crate::{app::TxCode, cometbft::TxFinal};

impl AbciCore {
    pub(super) fn check_tx(&mut self, check: request::CheckTx) -> response::CheckTx {
        let snapshot = self.store.snapshot().expect("store readable at CheckTx");
        let height = self.status.height() + 1;
        let outcome = self.app.execute_tx(&snapshot, height, &check.tx).unwrap_or_else(|e| panic!("CheckTx: {e}"));
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
