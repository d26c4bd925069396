//! Rechecks answered without re-executing.
//!
//! After every block CometBFT rechecks every transaction left in the mempool, and under load
//! those re-executions were most of a node's execution work (each block rechecks every waiting
//! bundle). Execution reads state only through point reads ([`StateView::get`]), and whether a
//! transaction applies is a function of the values it read (the height only labels L1 ledger
//! entries). So a transaction that applied against committed height `h` still applies at a
//! later height if no block since `h` wrote a key it read; only then is its recheck answered
//! from memory. This is mempool admission only: proposals and blocks are always executed in full.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet, VecDeque},
};

use crate::store::{StateView, StoreError};

/// A state view that remembers every key read through it.
pub(super) struct RecordingView<'a> {
    base: &'a dyn StateView,
    reads: RefCell<BTreeSet<Vec<u8>>>,
}

impl<'a> RecordingView<'a> {
    pub(super) fn new(base: &'a dyn StateView) -> Self {
        Self { base, reads: RefCell::default() }
    }

    pub(super) fn into_reads(self) -> BTreeSet<Vec<u8>> {
        self.reads.into_inner()
    }
}

impl StateView for RecordingView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.reads.borrow_mut().insert(key.to_vec());
        self.base.get(key)
    }
}

/// A transaction that passed CheckTx: what it read, and the committed height it read it at.
struct Passed {
    checked_at: u64,
    reads: BTreeSet<Vec<u8>>,
}

/// What passed CheckTx, and which keys recent blocks wrote.
#[derive(Default)]
pub(super) struct Rechecks {
    passed: BTreeMap<String, Passed>,
    /// Insertion order of `passed`, to bound it.
    order: VecDeque<String>,
    /// Keys written by each recent committed block (empty for a block without writes).
    written: BTreeMap<u64, BTreeSet<Vec<u8>>>,
}

impl Rechecks {
    /// Transactions remembered; the oldest are forgotten first (they are re-executed).
    const TXS: usize = 65_536;
    /// Blocks of write history; a transaction checked before them is re-executed.
    const BLOCKS: usize = 256;

    /// True when `tx_hash` passed against some committed height and no block up to `committed`
    /// has written a key it read since. Moves its check to `committed`.
    pub(super) fn still_passes(&mut self, tx_hash: &str, committed: u64) -> bool {
        let Some(passed) = self.passed.get_mut(tx_hash) else { return false };
        let unchanged = (passed.checked_at + 1..=committed)
            .all(|height| self.written.get(&height).is_some_and(|keys| keys.is_disjoint(&passed.reads)));
        if unchanged {
            passed.checked_at = committed;
        }
        unchanged
    }

    /// `tx_hash` applied against `committed`, reading `reads`.
    pub(super) fn passed(&mut self, tx_hash: String, committed: u64, reads: BTreeSet<Vec<u8>>) {
        if self.passed.insert(tx_hash.clone(), Passed { checked_at: committed, reads }).is_none() {
            self.order.push_back(tx_hash);
        }
        while self.passed.len() > Self::TXS {
            let Some(oldest) = self.order.pop_front() else { break };
            self.passed.remove(&oldest);
        }
    }

    /// `tx_hash` no longer applies.
    pub(super) fn failed(&mut self, tx_hash: &str) {
        self.passed.remove(tx_hash);
    }

    /// Block `height` is committed: it wrote `keys` and included `txs`, which leave the mempool.
    pub(super) fn block_committed<'t>(
        &mut self,
        height: u64,
        keys: BTreeSet<Vec<u8>>,
        txs: impl IntoIterator<Item = &'t str>,
    ) {
        self.written.insert(height, keys);
        while self.written.len() > Self::BLOCKS {
            self.written.pop_first();
        }
        for tx_hash in txs {
            self.passed.remove(tx_hash);
        }
        if self.order.len() > 2 * self.passed.len() + Self::BLOCKS {
            // Drop the order entries of transactions that left, so `order` stays bounded too.
            let passed = &self.passed;
            self.order.retain(|tx_hash| passed.contains_key(tx_hash));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> BTreeSet<Vec<u8>> {
        names.iter().map(|name| name.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_transaction_passes_again_until_a_block_writes_what_it_read() {
        let mut rechecks = Rechecks::default();
        rechecks.passed("A".into(), 4, keys(&["pkg/1", "session/a"]));
        rechecks.block_committed(5, keys(&["pkg/2"]), []);
        assert!(rechecks.still_passes("A", 5));
        rechecks.block_committed(6, BTreeSet::new(), ["B"]);
        assert!(rechecks.still_passes("A", 6));
        rechecks.block_committed(7, keys(&["pkg/1"]), []);
        assert!(!rechecks.still_passes("A", 7), "block 7 wrote pkg/1, which A read");
    }

    #[test]
    fn rechecks_that_arrive_after_several_blocks_see_every_one_of_them() {
        let mut rechecks = Rechecks::default();
        rechecks.passed("A".into(), 4, keys(&["pkg/1"]));
        rechecks.block_committed(5, keys(&["pkg/1"]), []);
        rechecks.block_committed(6, keys(&["pkg/9"]), []);
        assert!(!rechecks.still_passes("A", 6), "block 5 wrote pkg/1 even though block 6 did not");
    }

    #[test]
    fn unknown_history_unknown_transactions_and_included_ones_are_re_executed() {
        let mut rechecks = Rechecks::default();
        assert!(!rechecks.still_passes("never-seen", 3));
        rechecks.passed("A".into(), 4, keys(&["pkg/1"]));
        assert!(!rechecks.still_passes("A", 5), "no record of block 5's writes");
        rechecks.passed("B".into(), 5, keys(&["pkg/2"]));
        rechecks.block_committed(6, BTreeSet::new(), ["B"]);
        assert!(!rechecks.still_passes("B", 6), "B was included in block 6");
        rechecks.passed("C".into(), 6, keys(&["pkg/3"]));
        rechecks.failed("C");
        assert!(!rechecks.still_passes("C", 6));
    }

    #[test]
    fn history_and_transactions_stay_bounded() {
        let mut rechecks = Rechecks::default();
        rechecks.passed("A".into(), 0, keys(&["pkg/1"]));
        for height in 1..=(Rechecks::BLOCKS as u64 + 10) {
            rechecks.block_committed(height, BTreeSet::new(), []);
        }
        assert_eq!(rechecks.written.len(), Rechecks::BLOCKS);
        assert!(!rechecks.still_passes("A", Rechecks::BLOCKS as u64 + 10), "its check predates the history");
        for i in 0..Rechecks::TXS + 5 {
            rechecks.passed(format!("T{i}"), 0, BTreeSet::new());
        }
        assert_eq!(rechecks.passed.len(), Rechecks::TXS);
    }

    #[test]
    fn the_recording_view_sees_every_read() {
        struct Empty;
        impl StateView for Empty {
            fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(None)
            }
        }
        let view = RecordingView::new(&Empty);
        view.get(b"a").unwrap();
        view.get(b"b").unwrap();
        view.get(b"a").unwrap();
        assert_eq!(view.into_reads(), keys(&["a", "b"]));
    }
}
