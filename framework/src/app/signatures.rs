//! Signature checks remembered per transaction.
//!
//! CometBFT hands a node the same transaction bytes at CheckTx, at every recheck while it waits
//! in the mempool, at ProcessProposal and at FinalizeBlock. Verifying every ed25519 signature
//! (and re-encoding the signed bytes) each time was the largest share of an L1 node's CPU under
//! load. Whether a transaction's signatures verify is a pure function of its bytes, so the
//! answer is kept by transaction hash: no execution outcome can differ, only the work is saved.
//! Nothing is verified until asked for, so cheap refusals stay cheap.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, OnceLock},
};

use super::tx::Tx;

/// Which signatures of one transaction verify: the op's own, or the bundle's and each op's.
/// Each is verified the first time it is asked for, so a bundle refused before its ops are
/// looked at (an unknown committer, a bad envelope signature) never costs an op verification.
#[derive(Debug, Default)]
pub(super) struct TxSignatures {
    /// The op's signature (`Tx::Op`) or the committer's signature over the bundle.
    envelope: OnceLock<bool>,
    /// Each bundled op's signature, in bundle order (empty for `Tx::Op`).
    ops: OnceLock<Vec<bool>>,
}

impl TxSignatures {
    /// Whether the op's or the bundle's own signature verifies; `tx` is the transaction these
    /// checks belong to.
    pub(super) fn envelope(&self, tx: &Tx) -> bool {
        *self.envelope.get_or_init(|| match tx {
            Tx::Op(op) => op.verify_signature().is_ok(),
            Tx::Bundle(bundle) => bundle.verify_signature().is_ok(),
        })
    }

    /// Whether the `step`-th op of the bundle verifies.
    pub(super) fn op(&self, tx: &Tx, step: usize) -> bool {
        let ops = self.ops.get_or_init(|| match tx {
            Tx::Op(_) => Vec::new(),
            Tx::Bundle(bundle) => bundle.bundle.ops.iter().map(|op| op.verify_signature().is_ok()).collect(),
        });
        ops.get(step).copied().unwrap_or(false)
    }
}

/// The last [`SignatureCache::CAPACITY`] transactions' signature checks, by transaction hash.
#[derive(Default)]
pub(super) struct SignatureCache {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_hash: BTreeMap<[u8; 32], Arc<TxSignatures>>,
    /// Insertion order, for evicting the oldest.
    order: VecDeque<[u8; 32]>,
}

impl SignatureCache {
    /// More than a full mempool's worth of bundles, a few MB at most.
    pub(super) const CAPACITY: usize = 16_384;

    /// The checks of the transaction whose bytes hash to `hash`: remembered, or new and
    /// verified as they are asked for (outside the lock).
    pub(super) fn for_tx(&self, hash: [u8; 32]) -> Arc<TxSignatures> {
        let mut entries = self.lock();
        if let Some(known) = entries.by_hash.get(&hash) {
            return known.clone();
        }
        let checks = Arc::new(TxSignatures::default());
        entries.by_hash.insert(hash, checks.clone());
        entries.order.push_back(hash);
        while entries.order.len() > Self::CAPACITY {
            if let Some(oldest) = entries.order.pop_front() {
                entries.by_hash.remove(&oldest);
            }
        }
        checks
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.lock().by_hash.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The entries stay consistent even if a holder panicked: every update is one insert
        // followed by evictions.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        app::tx::{Bundle, SignedBundle},
        crypto::{sha256, SigningKey},
    };

    fn bundle_tx(session: &str) -> Tx {
        Tx::Bundle(SignedBundle::sign(Bundle::new("l2", session, Vec::new()), &SigningKey::from_seed([3; 32])))
    }

    #[test]
    fn a_forged_signature_is_remembered_as_forged() {
        let cache = SignatureCache::default();
        let Tx::Bundle(mut forged) = bundle_tx("ses-1") else { unreachable!() };
        forged.bundle.session_id = "ses-2".into();
        let forged = Tx::Bundle(forged);
        let hash = sha256(b"forged");
        assert!(!cache.for_tx(hash).envelope(&forged));
        assert!(!cache.for_tx(hash).envelope(&forged));
        assert!(cache.for_tx(sha256(b"good")).envelope(&bundle_tx("ses-1")));
        // Remembered by hash, not re-verified: the same hash answers as first checked.
        assert!(!cache.for_tx(hash).envelope(&bundle_tx("ses-1")));
    }

    #[test]
    fn the_oldest_entries_are_evicted_beyond_capacity() {
        let cache = SignatureCache::default();
        for i in 0..SignatureCache::CAPACITY + 10 {
            cache.for_tx(sha256(&i.to_le_bytes()));
        }
        assert_eq!(cache.entries(), SignatureCache::CAPACITY);
    }
}
