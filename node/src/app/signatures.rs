//! Signature checks remembered per transaction.
//!
//! CometBFT hands a node the same transaction bytes at CheckTx, at every recheck while it waits
//! in the mempool, at ProcessProposal and at FinalizeBlock. Verifying every ed25519 signature
//! (and re-encoding the signed bytes) each time was the largest share of an L1 node's CPU under
//! load. Whether a transaction's signatures verify is a pure function of its bytes, so the
//! answer is kept by transaction hash: no execution outcome can differ, only the work is saved.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
};

use super::tx::Tx;

/// Which signatures of one transaction verify: the op's own, or the bundle's and each op's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TxSignatures {
    /// The op's signature (`Tx::Op`) or the committer's signature over the bundle.
    pub(super) envelope: bool,
    /// Each bundled op's signature, in bundle order (empty for `Tx::Op`).
    pub(super) ops: Vec<bool>,
}

impl TxSignatures {
    fn verify(tx: &Tx) -> Self {
        match tx {
            Tx::Op(op) => Self { envelope: op.verify_signature().is_ok(), ops: Vec::new() },
            Tx::Bundle(bundle) => Self {
                envelope: bundle.verify_signature().is_ok(),
                ops: bundle.bundle.ops.iter().map(|op| op.verify_signature().is_ok()).collect(),
            },
        }
    }

    pub(super) fn op(&self, step: usize) -> bool {
        self.ops.get(step).copied().unwrap_or(false)
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

    /// The checks of `tx`, whose bytes hash to `hash`: remembered, or verified now.
    pub(super) fn get_or_verify(&self, hash: [u8; 32], tx: &Tx) -> Arc<TxSignatures> {
        if let Some(known) = self.lock().by_hash.get(&hash) {
            return known.clone();
        }
        // Verified outside the lock: concurrent callers may verify the same tx twice, harmlessly.
        let checked = Arc::new(TxSignatures::verify(tx));
        let mut entries = self.lock();
        if entries.by_hash.insert(hash, checked.clone()).is_none() {
            entries.order.push_back(hash);
            while entries.order.len() > Self::CAPACITY {
                if let Some(oldest) = entries.order.pop_front() {
                    entries.by_hash.remove(&oldest);
                }
            }
        }
        checked
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
        assert!(!cache.get_or_verify(hash, &forged).envelope);
        assert!(!cache.get_or_verify(hash, &forged).envelope);
        assert!(cache.get_or_verify(sha256(b"good"), &bundle_tx("ses-1")).envelope);
        // Remembered by hash, not re-verified: the same hash answers as first checked.
        assert!(!cache.get_or_verify(hash, &bundle_tx("ses-1")).envelope);
    }

    #[test]
    fn the_oldest_entries_are_evicted_beyond_capacity() {
        let cache = SignatureCache::default();
        let tx = bundle_tx("ses-1");
        for i in 0..SignatureCache::CAPACITY + 10 {
            cache.get_or_verify(sha256(&i.to_le_bytes()), &tx);
        }
        assert_eq!(cache.entries(), SignatureCache::CAPACITY);
    }
}
