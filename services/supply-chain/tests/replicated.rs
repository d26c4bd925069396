//! The replicated state machine driven block by block with the supply-chain service, fixed
//! request ids and times: determinism, the golden app hash, and bundle validation on L1, with
//! property tests over mutated bundles.

use std::sync::Arc;

mod fuzz_corpus;

use proptest::prelude::*;
use serde_json::{json, Value};

use bftws_framework::{
    app::{
        self as app,
        session::SessionLog,
        tx::{Bundle, Op, SignedBundle, SignedOp, Tx},
        App, TxCode, TxOutcome,
    },
    chain::{Chain, Finalized, SubmitError},
    crypto::SigningKey,
    local_chain::LocalChain,
    registry::{Actor, ExecEnv, ExecMode, Layer, Request, Role},
    store::{keys, Snapshot, Store},
};
use bftws_supply_chain::{self as supply_chain, demo, model::Item};

const L1_CHAIN: &str = "test-l1";
const L2_CHAIN: &str = "test-l2";
const NODE: &str = "l2-0";

/// An L2 and an L1 chain plus a deterministic origin: request ids count up, time is fixed.
struct Script {
    l1: Arc<LocalChain>,
    l2: Arc<LocalChain>,
    next_request: u64,
    /// Every transaction submitted to L2, in order.
    l2_txs: Vec<Vec<u8>>,
    /// Every bundle submitted to L1 by [`Script::commit`], in order.
    l1_txs: Vec<Vec<u8>>,
    responses: Vec<Value>,
}

fn actor(id: &str, role: &str) -> Actor {
    Actor { id: id.into(), role: Role::new(role) }
}

fn items() -> Vec<Item> {
    vec![Item { sku: "SKU-1".into(), qty: 2 }]
}

impl Script {
    fn new() -> Self {
        let registry = Arc::new(supply_chain::registry());
        let l1 = LocalChain::new(
            App::new(registry.clone(), Layer::L1, L1_CHAIN),
            Store::in_memory().unwrap(),
            &demo::app_state(&["l1-0"], Some(L2_CHAIN)),
        )
        .unwrap();
        let l2 = LocalChain::new(
            App::new(registry, Layer::L2, L2_CHAIN),
            Store::in_memory().unwrap(),
            &demo::app_state(&[NODE], None),
        )
        .unwrap();
        Self { l1, l2, next_request: 0, l2_txs: Vec::new(), l1_txs: Vec::new(), responses: Vec::new() }
    }

    /// Builds, simulates and signs an op the way an origin node does, with a fixed id and time.
    fn op(&mut self, actor: &Actor, path: &str, body: Value) -> SignedOp {
        self.next_request += 1;
        let request_id = format!("req-{}", self.next_request);
        let registry = self.l2.app().registry().clone();
        let (route, params) = registry.resolve("POST", path).expect("route");
        let session_id = route.session_id(&request_id, &params);
        let snapshot = self.l2.snapshot().unwrap();
        let session_seq = match (&session_id, route.bundled()) {
            (Some(id), true) => Some(SessionLog::read(&snapshot, id).unwrap().map_or(0, |log| log.ops)),
            _ => None,
        };
        let request = Request {
            method: "POST".into(),
            path: path.into(),
            params,
            body,
            actor: actor.clone(),
            request_id,
            time_ms: 1_700_000_000_000 + self.next_request,
            session_id,
            session_seq,
            idempotency_key: None,
        };
        let mut ctx = registry.service_ctx(&snapshot, ExecEnv { layer: Layer::L2, mode: ExecMode::Standalone });
        let response = app::run_route(&registry, &mut ctx, route, &request).unwrap_or_else(|e| panic!("{path}: {e}"));
        SignedOp::sign(Op { request, response }, NODE, &demo::node_key(NODE))
    }

    /// An op with a made-up response, for ops the handler would refuse to simulate.
    fn unsimulated(&mut self, actor: &Actor, path: &str, body: Value) -> Op {
        self.next_request += 1;
        let request_id = format!("req-{}", self.next_request);
        let (route, params) = self.l2.app().registry().resolve("POST", path).expect("route");
        let session_id = route.session_id(&request_id, &params);
        Op {
            request: Request {
                method: "POST".into(),
                path: path.into(),
                params,
                body,
                actor: actor.clone(),
                request_id,
                time_ms: 1_700_000_000_000 + self.next_request,
                session_id,
                session_seq: None,
                idempotency_key: None,
            },
            response: bftws_framework::registry::Response { status: 200, body: json!({}) },
        }
    }

    fn write(&mut self, actor: &Actor, path: &str, body: Value) -> Value {
        let op = self.op(actor, path, body);
        let tx = Tx::Op(op.clone()).encode();
        self.l2_txs.push(tx.clone());
        futures_block_on(self.l2.submit(tx)).unwrap_or_else(|e| panic!("{path}: {e}"));
        self.responses.push(op.op.response.body.clone());
        op.op.response.body
    }

    fn bundle(&self, session_id: &str, key: &SigningKey) -> SignedBundle {
        let ops = app::session_ops(&self.l2.snapshot().unwrap(), session_id).unwrap();
        SignedBundle::sign(Bundle::new(L2_CHAIN, session_id, ops), key)
    }

    fn submit_l1(&self, bundle: SignedBundle) -> Result<Finalized, SubmitError> {
        futures_block_on(self.l1.submit(Tx::Bundle(bundle).encode()))
    }

    /// Commits a session to L1 and records the receipt on L2, as the committer does.
    fn commit(&mut self, owner: &Actor, session_id: &str) {
        self.write(owner, &format!("/v1/sessions/{session_id}/commit"), json!({}));
        let bundle = self.bundle(session_id, &demo::commit_key());
        self.l1_txs.push(Tx::Bundle(bundle.clone()).encode());
        let finalized = self.submit_l1(bundle).expect("L1 commits");
        let receipt = app::Receipt::committed(L1_CHAIN, finalized.ledger.as_ref().unwrap());
        let node = actor(NODE, "node");
        self.write(
            &node,
            &format!("/v1/sessions/{session_id}/commit_recorded"),
            json!({"committed": true, "receipt": receipt, "reason": null}),
        );
    }

    /// A supplier session registering and committing PKG-1, then a warehouse session up to
    /// its label (not committed).
    fn fixed_workflow(&mut self) -> String {
        let supplier = actor("sup-1", "supplier");
        let operator = actor("op-1", "operator");
        let started = self.write(&supplier, "/v1/sessions", json!({"kind": "supplier"}));
        let sup_session = started["session_id"].as_str().unwrap().to_owned();
        let signature = demo::sign_manifest("sup-1", "PKG-1", &items());
        self.write(
            &supplier,
            &format!("/v1/sessions/{sup_session}/register_package"),
            json!({"package_id": "PKG-1", "items": items(), "signature": signature}),
        );
        self.commit(&supplier, &sup_session);
        let started = self.write(&operator, "/v1/sessions", json!({"kind": "warehouse"}));
        let wh = started["session_id"].as_str().unwrap().to_owned();
        self.write(&operator, &format!("/v1/sessions/{wh}/scan"), json!({"package_id": "PKG-1"}));
        self.write(&operator, &format!("/v1/sessions/{wh}/validate"), json!({"signature": signature}));
        self.write(&operator, &format!("/v1/sessions/{wh}/qc"), json!({"passed": true, "issues": []}));
        self.write(
            &operator,
            &format!("/v1/sessions/{wh}/label"),
            json!({"destination": "Oslo", "priority": "express", "courier_id": "c-2"}),
        );
        wh
    }
}

/// The in-process chain completes futures without awaiting anything.
fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}

fn state_dump(chain: &LocalChain) -> Vec<(Vec<u8>, Vec<u8>)> {
    chain.store().snapshot().unwrap().scan_prefix(b"").unwrap().into_iter().collect()
}

fn app_hash(chain: &LocalChain) -> String {
    hex::encode(chain.store().last_block().unwrap().app_hash)
}

#[test]
fn the_same_workflow_gives_identical_responses_state_and_app_hashes() {
    let (mut a, mut b) = (Script::new(), Script::new());
    let (wa, wb) = (a.fixed_workflow(), b.fixed_workflow());
    a.commit(&actor("op-1", "operator"), &wa);
    b.commit(&actor("op-1", "operator"), &wb);
    assert_eq!(a.responses, b.responses);
    assert_eq!(a.l2_txs, b.l2_txs);
    assert_eq!(state_dump(&a.l2), state_dump(&b.l2));
    assert_eq!(state_dump(&a.l1), state_dump(&b.l1));
    assert_eq!(app_hash(&a.l2), app_hash(&b.l2));
    assert_eq!(app_hash(&a.l1), app_hash(&b.l1));
}

#[test]
fn replaying_the_ops_on_a_fresh_store_gives_byte_identical_writes_and_app_hash() {
    let mut script = Script::new();
    script.fixed_workflow();
    let replica = Script::new();
    let app = replica.l2.app();
    let store = replica.l2.store();
    for (height, tx) in script.l2_txs.iter().enumerate() {
        let last = store.last_block().unwrap();
        let block = app.execute_block(&store.snapshot().unwrap(), &last.app_hash, height as u64 + 1, &[tx]).unwrap();
        assert_eq!(block.txs[0].code, TxCode::Ok, "{}", block.txs[0].log);
        let writes = block.writes();
        store
            .commit_block(&bftws_framework::store::BlockCommit {
                height: height as u64 + 1,
                app_hash: &block.app_hash,
                writes: &writes,
            })
            .unwrap();
    }
    assert_eq!(state_dump(&script.l2), state_dump(&replica.l2));
    assert_eq!(app_hash(&script.l2), app_hash(&replica.l2));
}

/// The app hash after a fixed workflow. A change here is consensus-breaking: every existing
/// chain would fork. Review it as such and never update the snapshot casually.
#[test]
fn golden_app_hash_after_a_fixed_workflow() {
    let mut script = Script::new();
    let warehouse = script.fixed_workflow();
    script.commit(&actor("op-1", "operator"), &warehouse);
    insta::assert_snapshot!(
        format!("l2 {}\nl1 {}", app_hash(&script.l2), app_hash(&script.l1)),
        @r"
        l2 4e3bc3117d0e56b7cf52ae3bed5939abc21247af06755b7104e4a88440e7d6fb
        l1 b9540502bdad059f02c5b343c9cc8d88f4e0893bebee77c586bf0b9083040790
        "
    );
}

fn refused(result: Result<Finalized, SubmitError>) -> (TxCode, String) {
    match result {
        Err(SubmitError::Refused { code, log }) => (code, log),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_bundle_with_one_mismatching_response_is_rejected_whole() {
    let mut script = Script::new();
    let warehouse = script.fixed_workflow();
    script.write(&actor("op-1", "operator"), &format!("/v1/sessions/{warehouse}/commit"), json!({}));
    let before = (state_dump(&script.l1), app_hash(&script.l1));
    let mut bundle = script.bundle(&warehouse, &demo::commit_key()).bundle;
    // The qc step (index 3) claims a different outcome, re-signed by the origin so only the
    // response is wrong.
    let mut op = bundle.ops[3].op.clone();
    op.response.body["passed"] = json!(false);
    bundle.ops[3] = SignedOp::sign(op, NODE, &demo::node_key(NODE));
    let bundle = SignedBundle::sign(Bundle::new(L2_CHAIN, &warehouse, bundle.ops), &demo::commit_key());
    let (code, log) = refused(script.submit_l1(bundle));
    assert_eq!(code, TxCode::ResponseMismatch);
    assert!(log.starts_with("step 3 (warehouse.qc)"), "{log}");
    assert_eq!((state_dump(&script.l1), app_hash(&script.l1)), before, "nothing applied");
}

#[test]
fn bundles_with_a_bad_signature_or_an_unauthorised_key_are_rejected() {
    let mut script = Script::new();
    let warehouse = script.fixed_workflow();
    script.write(&actor("op-1", "operator"), &format!("/v1/sessions/{warehouse}/commit"), json!({}));
    let before = state_dump(&script.l1);

    let mut forged = script.bundle(&warehouse, &demo::commit_key());
    forged.signature = SigningKey::demo("someone else").sign(b"anything");
    assert_eq!(refused(script.submit_l1(forged)).0, TxCode::BadSignature);

    let unauthorised = script.bundle(&warehouse, &SigningKey::demo("rogue committer"));
    let (code, log) = refused(script.submit_l1(unauthorised));
    assert_eq!(code, TxCode::Unauthorized);
    assert!(log.contains("not authorised"), "{log}");

    let mut tampered_op = script.bundle(&warehouse, &demo::commit_key()).bundle;
    tampered_op.ops[1].op.request.body = json!({"package_id": "PKG-OTHER"});
    let resigned = SignedBundle::sign(Bundle::new(L2_CHAIN, &warehouse, tampered_op.ops), &demo::commit_key());
    assert_eq!(refused(script.submit_l1(resigned)).0, TxCode::BadSignature);

    assert_eq!(state_dump(&script.l1), before);
}

#[test]
fn a_retried_bundle_returns_the_original_receipt_and_a_different_one_is_refused() {
    let mut script = Script::new();
    let warehouse = script.fixed_workflow();
    script.write(&actor("op-1", "operator"), &format!("/v1/sessions/{warehouse}/commit"), json!({}));
    let first = script.submit_l1(script.bundle(&warehouse, &demo::commit_key())).unwrap();
    // Submitted again (another node resuming the commit): same bytes, same receipt.
    let again = script.submit_l1(script.bundle(&warehouse, &demo::commit_key())).unwrap();
    assert_eq!(again.code, TxCode::Ok);
    assert_eq!(again.ledger, first.ledger);

    // A whole session of the same id whose op differs (re-signed by its origin).
    let mut other = script.bundle(&warehouse, &demo::commit_key()).bundle;
    let mut op = other.ops[1].op.clone();
    op.request.time_ms += 1;
    other.ops[1] = SignedOp::sign(op, NODE, &demo::node_key(NODE));
    let different = SignedBundle::sign(Bundle::new(L2_CHAIN, &warehouse, other.ops), &demo::commit_key());
    assert_eq!(refused(script.submit_l1(different)).0, TxCode::BundleConflict);
}

#[test]
fn ops_from_unknown_origins_or_with_forged_signatures_are_refused() {
    let mut script = Script::new();
    let op = script.op(&actor("op-1", "operator"), "/v1/sessions", json!({"kind": "warehouse"}));
    let stranger = SignedOp::sign(op.op.clone(), "l2-9", &demo::node_key("l2-9"));
    let (code, _) = refused(futures_block_on(script.l2.submit(Tx::Op(stranger).encode())));
    assert_eq!(code, TxCode::Unauthorized);
    let impostor = SignedOp::sign(op.op.clone(), NODE, &SigningKey::demo("impostor"));
    assert_eq!(refused(futures_block_on(script.l2.submit(Tx::Op(impostor).encode()))).0, TxCode::Unauthorized);
    let mut tampered = op.clone();
    tampered.op.request.actor = actor("op-2", "operator");
    assert_eq!(refused(futures_block_on(script.l2.submit(Tx::Op(tampered).encode()))).0, TxCode::BadSignature);
    let bytes = b"{\"type\":\"op\"}".to_vec();
    assert_eq!(refused(futures_block_on(script.l2.submit(bytes))).0, TxCode::Malformed);
    // A node cannot invent an internal op for a user, nor a user op as itself.
    let mut as_node = script.op(&actor("op-1", "operator"), "/v1/sessions", json!({"kind": "warehouse"})).op;
    as_node.request.actor = actor(NODE, "node");
    let signed = SignedOp::sign(as_node, NODE, &demo::node_key(NODE));
    assert_eq!(refused(futures_block_on(script.l2.submit(Tx::Op(signed).encode()))).0, TxCode::Unauthorized);
}

#[test]
fn a_conflicting_op_ordered_after_its_rival_is_refused_not_applied() {
    let mut script = Script::new();
    let operator = actor("op-1", "operator");
    let other = actor("op-2", "operator");
    script.fixed_workflow();
    // Two sessions both simulated a scan of a free package against the same state...
    let supplier = actor("sup-1", "supplier");
    let s =
        script.write(&supplier, "/v1/sessions", json!({"kind": "supplier"}))["session_id"].as_str().unwrap().to_owned();
    let signature = demo::sign_manifest("sup-1", "PKG-2", &items());
    script.write(
        &supplier,
        &format!("/v1/sessions/{s}/register_package"),
        json!({"package_id": "PKG-2", "items": items(), "signature": signature}),
    );
    script.commit(&supplier, &s);
    let a = script.write(&operator, "/v1/sessions", json!({"kind": "warehouse"}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b =
        script.write(&other, "/v1/sessions", json!({"kind": "warehouse"}))["session_id"].as_str().unwrap().to_owned();
    let scan_a = script.op(&operator, &format!("/v1/sessions/{a}/scan"), json!({"package_id": "PKG-2"}));
    let scan_b = script.op(&other, &format!("/v1/sessions/{b}/scan"), json!({"package_id": "PKG-2"}));
    // ...and are ordered into one block: the first applies, the second is refused.
    let store = script.l2.store();
    let last = store.last_block().unwrap();
    let txs = [Tx::Op(scan_a).encode(), Tx::Op(scan_b).encode()];
    let block =
        script.l2.app().execute_block(&store.snapshot().unwrap(), &last.app_hash, last.height + 1, &txs).unwrap();
    assert_eq!(block.txs[0].code, TxCode::Ok);
    assert_eq!(block.txs[1].code, TxCode::Refused, "{}", block.txs[1].log);
    assert!(block.txs[1].writes.is_empty());
}

/// An honest warehouse session frozen for commit on L2, with its bundle, and a second
/// committed supplier session to splice from.
fn frozen_warehouse_session() -> (Script, String, SignedBundle) {
    let mut script = Script::new();
    let warehouse = script.fixed_workflow();
    script.write(&actor("op-1", "operator"), &format!("/v1/sessions/{warehouse}/commit"), json!({}));
    let bundle = script.bundle(&warehouse, &demo::commit_key());
    (script, warehouse, bundle)
}

/// Every session on a chain but `except`, by id.
fn other_sessions(snapshot: &Snapshot, except: &str) -> Vec<String> {
    let prefix = keys::session_prefix();
    snapshot
        .scan_prefix(&prefix)
        .unwrap()
        .keys()
        .map(|k| String::from_utf8(k[prefix.len()..].to_vec()).unwrap())
        .filter(|s| s != except)
        .collect()
}

/// Executes `bytes` on L1's committed state without applying it.
fn l1_outcome(script: &Script, bytes: &[u8]) -> TxOutcome {
    let store = script.l1.store();
    let height = store.last_block().unwrap().height + 1;
    script.l1.app().execute_tx(&store.snapshot().unwrap(), height, bytes).unwrap()
}

fn resigned(session_id: &str, ops: Vec<SignedOp>) -> SignedBundle {
    SignedBundle::sign(Bundle::new(L2_CHAIN, session_id, ops), &demo::commit_key())
}

#[test]
fn bundles_that_are_not_whole_sessions_are_refused_with_the_step() {
    let (script, warehouse, honest) = frozen_warehouse_session();
    let ops = honest.bundle.ops.clone();
    let last = ops.len() - 1;
    let supplier_ops = {
        let snapshot = script.l2.snapshot().unwrap();
        let supplier_session = ops[1].op.response.body["supplier"]["id"].clone();
        assert_eq!(supplier_session, "sup-1");
        // The committed supplier session of the fixed workflow.
        let id = app::pending_commits(&snapshot).unwrap();
        assert_eq!(id, vec![warehouse.clone()]);
        let sessions: Vec<String> = other_sessions(&snapshot, &warehouse);
        app::session_ops(&snapshot, &sessions[0]).unwrap()
    };
    let prefix_step = format!("step {}", last - 1);
    let cases: Vec<(&str, Vec<SignedOp>, TxCode, &str)> = vec![
        ("a prefix", ops[..last].to_vec(), TxCode::SessionShape, &prefix_step),
        ("no start", ops[1..].to_vec(), TxCode::SessionShape, "step 0"),
        (
            "reordered",
            {
                let mut o = ops.clone();
                o.swap(2, 3);
                o
            },
            TxCode::SessionShape,
            "step 2",
        ),
        (
            "an op twice",
            {
                let mut o = ops.clone();
                o.insert(2, o[1].clone());
                o
            },
            TxCode::SessionShape,
            "step 2",
        ),
        (
            "after the commit",
            {
                let mut o = ops.clone();
                o.push(o[1].clone());
                o
            },
            TxCode::SessionShape,
            "step",
        ),
        (
            "spliced",
            {
                let mut o = ops.clone();
                o[1] = supplier_ops[1].clone();
                o
            },
            TxCode::SessionShape,
            "step 1",
        ),
        ("empty", Vec::new(), TxCode::SessionShape, "at least one op"),
    ];
    let before = (state_dump(&script.l1), app_hash(&script.l1));
    for (what, ops, code, step) in cases {
        let outcome = l1_outcome(&script, &Tx::Bundle(resigned(&warehouse, ops)).encode());
        assert_eq!(outcome.code, code, "{what}: {}", outcome.log);
        assert!(outcome.log.contains(step), "{what}: {}", outcome.log);
        assert!(outcome.writes.is_empty(), "{what}");
    }
    assert_eq!((state_dump(&script.l1), app_hash(&script.l1)), before);
    // The honest bundle still commits.
    script.submit_l1(honest).expect("the honest bundle commits");
}

#[test]
fn an_op_from_an_l2_node_its_committer_does_not_list_is_refused() {
    let (script, warehouse, honest) = frozen_warehouse_session();
    let mut ops = honest.bundle.ops.clone();
    // A key that L2 would never accept, but that signs its own op validly.
    let op = ops[2].op.clone();
    ops[2] = SignedOp::sign(op.clone(), "l2-100", &demo::node_key("l2-100"));
    let outcome = l1_outcome(&script, &Tx::Bundle(resigned(&warehouse, ops.clone())).encode());
    assert_eq!(outcome.code, TxCode::Unauthorized, "{}", outcome.log);
    assert!(outcome.log.starts_with("step 2: origin 'l2-100' is not an L2 node"), "{}", outcome.log);
    ops[2] = SignedOp::sign(op, NODE, &SigningKey::demo("stolen name"));
    let outcome = l1_outcome(&script, &Tx::Bundle(resigned(&warehouse, ops)).encode());
    assert_eq!(outcome.code, TxCode::Unauthorized, "{}", outcome.log);
}

#[test]
fn a_request_applies_at_most_once_per_chain() {
    let mut script = Script::new();
    let supplier = actor("sup-1", "supplier");
    let start = script.op(&supplier, "/v1/sessions", json!({"kind": "supplier"}));
    futures_block_on(script.l2.submit(Tx::Op(start.clone()).encode())).unwrap();
    // The same op again, and the same request re-timed and re-signed: both refused.
    let (code, _) = refused(futures_block_on(script.l2.submit(Tx::Op(start.clone()).encode())));
    assert_eq!(code, TxCode::Replayed);
    let mut again = start.op.clone();
    again.request.time_ms += 5;
    let again = SignedOp::sign(again, NODE, &demo::node_key(NODE));
    assert_eq!(refused(futures_block_on(script.l2.submit(Tx::Op(again).encode()))).0, TxCode::Replayed);
}

#[test]
fn a_step_out_of_sequence_or_after_the_commit_is_refused_on_l2() {
    let (mut script, warehouse, _) = frozen_warehouse_session();
    let operator = actor("op-1", "operator");
    // After the commit op nothing joins the session, whatever the handler would say.
    let mut late = script.unsimulated(&operator, &format!("/v1/sessions/{warehouse}/abort"), json!({}));
    late.request.session_seq = Some(7);
    let late = SignedOp::sign(late, NODE, &demo::node_key(NODE));
    let (code, log) = refused(futures_block_on(script.l2.submit(Tx::Op(late).encode())));
    assert_eq!(code, TxCode::Refused, "{log}");
    assert!(log.contains("the session is committing; nothing more can join it"), "{log}");
}

#[test]
fn non_canonical_transactions_are_refused_before_execution() {
    let (script, _, honest) = frozen_warehouse_session();
    let bytes = Tx::Bundle(honest.clone()).encode();
    let text = String::from_utf8(bytes.clone()).unwrap();
    // The same value with whitespace, with a key out of order, and with upper-case hex.
    let spaced = text.replacen(",", ", ", 1);
    let upper_sig = text.replace(&honest.signature.0, &honest.signature.0.to_uppercase());
    let reordered = {
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let map = value.as_object().unwrap();
        let mut out = String::from("{\"type\":\"bundle\"");
        for (k, v) in map.iter().filter(|(k, _)| *k != "type") {
            out.push_str(&format!(",\"{k}\":{}", serde_json::to_string(v).unwrap()));
        }
        out.push('}');
        out
    };
    for (what, variant) in [("spaced", spaced), ("reordered", reordered)] {
        let outcome = l1_outcome(&script, variant.as_bytes());
        assert_eq!(outcome.code, TxCode::NonCanonical, "{what}: {}", outcome.log);
    }
    let outcome = l1_outcome(&script, upper_sig.as_bytes());
    assert_eq!(outcome.code, TxCode::BadSignature, "{}", outcome.log);
    assert_eq!(l1_outcome(&script, &bytes).code, TxCode::Ok);
}

/// A bundle mutated in one of the ways an attacker (or a broken committer) could.
#[derive(Debug, Clone)]
enum Mutation {
    Drop(usize),
    Duplicate(usize, usize),
    Swap(usize, usize),
    Truncate(usize),
    Splice(usize),
    FlipByte(usize, u8),
    ResignWithAnotherKey(u8),
    ChangeResponse(usize),
    ChangeSeq(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0usize..16).prop_map(Mutation::Drop),
        (0usize..16, 0usize..16).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
        (0usize..16, 0usize..16).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (0usize..16).prop_map(Mutation::Truncate),
        (0usize..16).prop_map(Mutation::Splice),
        (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Mutation::FlipByte(at, x)),
        any::<u8>().prop_map(Mutation::ResignWithAnotherKey),
        (0usize..16).prop_map(Mutation::ChangeResponse),
        (0usize..16, any::<u64>()).prop_map(|(i, s)| Mutation::ChangeSeq(i, s)),
    ]
}

/// The mutated transaction bytes, or `None` when the mutation leaves the bundle as it was.
fn mutate(honest: &SignedBundle, foreign: &[SignedOp], mutation: &Mutation) -> Option<Vec<u8>> {
    let session = &honest.bundle.session_id;
    let mut ops = honest.bundle.ops.clone();
    let n = ops.len();
    let by_index = !matches!(mutation, Mutation::FlipByte(..) | Mutation::ResignWithAnotherKey(_));
    if n == 0 && by_index {
        return None;
    }
    let resign = |ops: Vec<SignedOp>| Some(Tx::Bundle(resigned(session, ops)).encode());
    match *mutation {
        Mutation::Drop(i) => {
            ops.remove(i % n);
            resign(ops)
        }
        Mutation::Duplicate(i, at) => {
            let op = ops[i % n].clone();
            ops.insert(at % (n + 1), op);
            resign(ops)
        }
        Mutation::Swap(a, b) if a % n != b % n => {
            ops.swap(a % n, b % n);
            resign(ops)
        }
        Mutation::Swap(..) => None,
        Mutation::Truncate(k) => resign(ops[..k % n].to_vec()),
        Mutation::Splice(i) => {
            ops[i % n] = foreign[(i + 1) % foreign.len()].clone();
            resign(ops)
        }
        Mutation::FlipByte(at, x) => {
            let mut bytes = Tx::Bundle(honest.clone()).encode();
            let at = at % bytes.len();
            bytes[at] ^= x;
            Some(bytes)
        }
        Mutation::ResignWithAnotherKey(seed) => {
            let key = SigningKey::from_seed([seed; 32]);
            Some(Tx::Bundle(SignedBundle::sign(honest.bundle.clone(), &key)).encode())
        }
        Mutation::ChangeResponse(i) => {
            let mut op = ops[i % n].op.clone();
            op.response.body["tampered"] = json!(true);
            ops[i % n] = SignedOp::sign(op, NODE, &demo::node_key(NODE));
            resign(ops)
        }
        Mutation::ChangeSeq(i, seq) => {
            let mut op = ops[i % n].op.clone();
            if op.request.session_seq == Some(seq) {
                return None;
            }
            op.request.session_seq = Some(seq);
            ops[i % n] = SignedOp::sign(op, NODE, &demo::node_key(NODE));
            resign(ops)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any mutation of an honest bundle is refused on L1 and writes nothing, while the honest
    /// bundle still commits.
    #[test]
    fn every_mutation_of_an_honest_bundle_is_refused(mutations in proptest::collection::vec(mutation(), 1..4)) {
        thread_local! {
            static FIXTURE: (Script, SignedBundle, Vec<SignedOp>) = {
                let (script, _, honest) = frozen_warehouse_session();
                let snapshot = script.l2.snapshot().unwrap();
                let foreign = other_sessions(&snapshot, &honest.bundle.session_id)
                    .iter()
                    .flat_map(|s| app::session_ops(&snapshot, s).unwrap())
                    .collect();
                (script, honest, foreign)
            };
        }
        FIXTURE.with(|(script, honest, foreign)| {
            let honest_bytes = Tx::Bundle(honest.clone()).encode();
            let mut current = honest.clone();
            let mut bytes = honest_bytes.clone();
            for m in &mutations {
                if let Some(next) = mutate(&current, foreign, m) {
                    bytes = next;
                    if let Ok(Tx::Bundle(b)) = Tx::decode(&bytes) {
                        current = b;
                    }
                }
            }
            prop_assume!(bytes != honest_bytes);
            let outcome = l1_outcome(script, &bytes);
            prop_assert_ne!(outcome.code, TxCode::Ok, "{:?} was accepted: {}", mutations, outcome.log);
            prop_assert!(outcome.writes.is_empty());
            prop_assert_eq!(l1_outcome(script, &honest_bytes).code, TxCode::Ok);
            Ok(())
        })?;
    }
}

/// The fuzz corpus (`services/supply-chain/fuzz/corpus/`) is the fixed workflow's transactions: on L2 every op up
/// to the warehouse session's commit, on L1 the supplier and the warehouse bundles. Set
/// `BFTWS_UPDATE_FUZZ_CORPUS=1` to rewrite it after a deliberate encoding change.
#[test]
fn the_fuzz_corpus_is_the_fixed_workflow() {
    let (script, _, warehouse_bundle) = frozen_warehouse_session();
    let mut l1 = script.l1_txs.clone();
    l1.push(Tx::Bundle(warehouse_bundle).encode());
    let update = std::env::var_os("BFTWS_UPDATE_FUZZ_CORPUS").is_some();
    for (layer, txs) in [(Layer::L2, &script.l2_txs), (Layer::L1, &l1)] {
        let dir = fuzz_corpus::dir().join(layer.as_str());
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, tx) in txs.iter().enumerate() {
                std::fs::write(dir.join(format!("{i:03}.tx")), tx).unwrap();
            }
        }
        assert_eq!(
            &fuzz_corpus::read(layer),
            txs,
            "{} is stale: run with BFTWS_UPDATE_FUZZ_CORPUS=1 and review the diff",
            dir.display()
        );
    }
}
