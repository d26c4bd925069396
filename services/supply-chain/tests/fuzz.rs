//! A bounded, seeded fuzz run of everything a transaction's bytes reach on a real `AbciCore`:
//! decoding, CheckTx, ProcessProposal, FinalizeBlock and Commit, on both layers, starting from
//! the committed corpus (`fuzz/corpus/`, the honest transactions of a fixed workflow).
//!
//! Mutants are byte-level (flips, insertions, deletions, splices between corpus entries) and
//! structure-aware (a JSON value changed, removed or added, then re-signed with the demo keys so
//! the mutant gets past the signature checks into the session checks and the handlers). Every
//! mutant must leave the node running, be refused with a code when it does not apply, and
//! change no state when refused. Stable Rust, no fuzzing engine: a seed makes a run repeatable.

mod fuzz_corpus;

use std::sync::Arc;

use bftws_framework::{
    abci::{AbciCore, AbciStatus},
    app::{
        tx::{Bundle, SignedBundle, SignedOp, Tx},
        App, TxCode,
    },
    cometbft::Waiters,
    metrics::Metrics,
    registry::Layer,
    store::{BlockCommit, Store},
};
use bftws_supply_chain::{self as supply_chain, demo};
use bytes::Bytes;
use serde_json::Value;
use tendermint::{
    abci::types::CommitInfo,
    block::{Height, Round},
    v0_38::abci::{
        request::{self, CheckTxKind},
        Request, Response,
    },
};

/// The chains of the corpus's fixed workflow.
const L1_CHAIN: &str = "test-l1";
const L2_CHAIN: &str = "test-l2";
/// Mutants per layer in `make test`.
const ITERATIONS: usize = 10_000;

/// A node's consensus side and its store.
struct Node {
    core: AbciCore,
    store: Arc<Store>,
}

fn node(layer: Layer, chain_id: &str) -> Node {
    let registry = Arc::new(supply_chain::registry());
    let app = App::new(registry, layer, chain_id);
    let l2 = (layer == Layer::L1).then_some(L2_CHAIN);
    let (writes, app_hash) = app.genesis(&demo::app_state(&["l1-0", "l2-0"], l2)).unwrap();
    let store = Arc::new(Store::in_memory().unwrap());
    store.commit_block(&BlockCommit { height: 0, app_hash: &app_hash, writes: &[writes] }).unwrap();
    let core = AbciCore::new(
        app,
        store.clone(),
        Arc::new(Waiters::default()),
        Arc::new(AbciStatus::default()),
        Arc::new(Metrics::new()),
    );
    Node { core, store }
}

/// Drives one block through ProcessProposal, FinalizeBlock and Commit; returns the results'
/// codes and whether the proposal was accepted.
fn run_block(node: &mut Node, txs: Vec<Bytes>) -> (bool, Vec<u32>) {
    let height = node.store.last_block().unwrap().height + 1;
    let height = Height::try_from(height).unwrap();
    let hash = tendermint::Hash::Sha256(bftws_framework::crypto::sha256(&height.value().to_be_bytes()));
    let time = tendermint::Time::unix_epoch();
    let proposer = tendermint::account::Id::new([7; 20]);
    let accepted = node.core.handle(Request::ProcessProposal(request::ProcessProposal {
        txs: txs.clone(),
        proposed_last_commit: None,
        misbehavior: Vec::new(),
        hash,
        height,
        time,
        next_validators_hash: tendermint::Hash::None,
        proposer_address: proposer,
    })) == Response::ProcessProposal(tendermint::abci::response::ProcessProposal::Accept);
    let Response::FinalizeBlock(finalized) = node.core.handle(Request::FinalizeBlock(request::FinalizeBlock {
        txs,
        decided_last_commit: CommitInfo { round: Round::default(), votes: Vec::new() },
        misbehavior: Vec::new(),
        hash,
        height,
        time,
        next_validators_hash: tendermint::Hash::None,
        proposer_address: proposer,
    })) else {
        panic!("FinalizeBlock answered something else")
    };
    node.core.handle(Request::Commit);
    (accepted, finalized.tx_results.iter().map(|r| r.code.value()).collect())
}

/// A tiny deterministic generator (xorshift64*): no dependency, repeatable from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn byte_mutant(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(bytes.len().max(1));
        match rng.below(5) {
            0 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
            1 if !bytes.is_empty() => bytes[at] = b"{}[]\",:0123456789aeftnul\\"[rng.below(25)],
            2 => bytes.insert(at.min(bytes.len()), rng.next() as u8),
            3 if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                let from = rng.below(other.len().max(1));
                let len = rng.below(64).min(other.len().saturating_sub(from));
                let cut = at.min(bytes.len());
                bytes.splice(cut..cut, other[from..from + len].iter().copied());
            }
        }
    }
    bytes
}

/// Changes one JSON value somewhere inside `value`.
fn mutate_json(rng: &mut Rng, value: &mut Value, depth: usize) {
    let descend = depth < 8 && rng.below(3) != 0;
    match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap_or_default();
            if descend {
                if let Some(inner) = map.get_mut(&key) {
                    return mutate_json(rng, inner, depth + 1);
                }
            }
            match rng.below(3) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(format!("{key}_x"), Value::Null);
                }
                _ => {
                    map.insert(key, Value::Null);
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = rng.below(items.len());
            if descend {
                return mutate_json(rng, &mut items[i], depth + 1);
            }
            match rng.below(3) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let copy = items[i].clone();
                    items.insert(rng.below(items.len() + 1), copy);
                }
                _ => {
                    let j = rng.below(items.len());
                    items.swap(i, j);
                }
            }
        }
        Value::Number(n) => {
            let v = n.as_u64().unwrap_or(0);
            *value = match rng.below(4) {
                0 => Value::from(v.wrapping_add(1)),
                1 => Value::from(v.wrapping_sub(1)),
                2 => Value::from(u64::MAX),
                _ => Value::from(-1),
            };
        }
        Value::String(s) => {
            *value = match rng.below(4) {
                0 => Value::String(String::new()),
                1 => Value::String(format!("{s}/x")),
                2 => Value::String(s.to_uppercase()),
                _ => Value::from(7),
            };
        }
        _ => *value = Value::String("x".into()),
    }
}

/// A structure-aware mutant: one JSON change, then every signature made valid again with the
/// demo keys, so it reaches the checks behind the signatures.
fn structured_mutant(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(seed) else { return seed.to_vec() };
    mutate_json(rng, &mut value, 0);
    match serde_json::from_value::<Tx>(value.clone()) {
        Ok(Tx::Op(op)) => Tx::Op(resign_op(op)).encode(),
        Ok(Tx::Bundle(bundle)) => {
            let ops = bundle.bundle.ops.into_iter().map(resign_op).collect();
            let rebuilt = Bundle::new(&bundle.bundle.l2_chain_id, &bundle.bundle.session_id, ops);
            Tx::Bundle(SignedBundle::sign(rebuilt, &demo::commit_key())).encode()
        }
        Err(_) => bftws_framework::encoding::value_to_canonical_bytes(&value),
    }
}

fn resign_op(op: SignedOp) -> SignedOp {
    let origin = op.origin.clone();
    SignedOp::sign(op.op, &origin, &demo::node_key(&origin))
}

/// Every replicated key and value, and the app hash.
type State = (Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

fn state(node: &Node) -> State {
    let snapshot = node.store.snapshot().unwrap();
    let entries: Vec<_> = snapshot.scan_prefix(b"").unwrap().into_iter().collect();
    (entries, node.store.last_block().unwrap().app_hash)
}

/// Builds each layer's state from all but the last `held_back` corpus transactions, then runs
/// `ITERATIONS` mutants of the whole corpus through CheckTx and a block.
fn fuzz_layer(layer: Layer, chain_id: &str, held_back: usize, seed: u64) {
    let corpus = fuzz_corpus::read(layer);
    let mut node = node(layer, chain_id);
    for tx in &corpus[..corpus.len() - held_back] {
        let (accepted, codes) = run_block(&mut node, vec![Bytes::from(tx.clone())]);
        assert!(accepted && codes == [0], "corpus transaction refused on {layer:?}: {codes:?}");
    }
    let mut rng = Rng(seed);
    let started = std::time::Instant::now();
    let (mut refused, mut applied) = (0usize, 0usize);
    for _ in 0..ITERATIONS {
        let seed_tx = &corpus[rng.below(corpus.len())];
        let other = &corpus[rng.below(corpus.len())];
        let mutant = if rng.below(2) == 0 {
            byte_mutant(&mut rng, seed_tx, other)
        } else {
            structured_mutant(&mut rng, seed_tx)
        };
        let before = state(&node);
        let check = match node
            .core
            .handle(Request::CheckTx(request::CheckTx { tx: Bytes::from(mutant.clone()), kind: CheckTxKind::New }))
        {
            Response::CheckTx(check) => check,
            _ => panic!("CheckTx answered something else"),
        };
        let (accepted, codes) = run_block(&mut node, vec![Bytes::from(mutant.clone())]);
        let code = codes[0];
        assert!(TxCode::from_u32(code).is_some(), "unknown result code {code}");
        if code == 0 {
            applied += 1;
            assert!(accepted, "a proposal of applying transactions was rejected");
        } else {
            refused += 1;
            assert!(!accepted, "ProcessProposal accepted a block holding a refused transaction (code {code})");
            assert_eq!(state(&node), before, "a refused transaction changed state (code {code})");
        }
        // CheckTx saw the state before the block: what it accepts, the block applies.
        if check.code.value() == 0 {
            assert_eq!(code, 0, "CheckTx accepted what the block refused");
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "fuzz {layer:?}: {ITERATIONS} mutants in {:.1} s ({:.0}/s): {refused} refused, {applied} applied",
        elapsed.as_secs_f64(),
        ITERATIONS as f64 / elapsed.as_secs_f64()
    );
}

#[test]
fn fuzzed_transactions_never_stop_a_validator_nor_change_state_when_refused() {
    // L2: the fixed workflow's ops, the warehouse session's last steps held back.
    fuzz_layer(Layer::L2, L2_CHAIN, 3, 0x5eed_0001);
    // L1: the supplier bundle applied, the warehouse bundle held back.
    fuzz_layer(Layer::L1, L1_CHAIN, 1, 0x5eed_0002);
}
