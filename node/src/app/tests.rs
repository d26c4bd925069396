//! The state machine driven block by block with fixed request ids and times: determinism, the
//! golden app hash, and bundle validation on L1.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{
    tx::{Bundle, Op, SignedBundle, SignedOp, Tx},
    App, TxCode,
};
use crate::{
    chain::{Chain, SubmitError},
    crypto::SigningKey,
    local_chain::LocalChain,
    registry::{Actor, Ctx, ExecEnv, ExecMode, Layer, Request, Role},
    store::Store,
    supply_chain::{self, demo, model::Item},
};

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
    responses: Vec<Value>,
}

fn actor(id: &str, role: Role) -> Actor {
    Actor { id: id.into(), role }
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
        Self { l1, l2, next_request: 0, l2_txs: Vec::new(), responses: Vec::new() }
    }

    /// Builds, simulates and signs an op the way an origin node does, with a fixed id and time.
    fn op(&mut self, actor: &Actor, path: &str, body: Value) -> SignedOp {
        self.next_request += 1;
        let request_id = format!("req-{}", self.next_request);
        let registry = self.l2.app().registry().clone();
        let (route, params) = registry.resolve("POST", path).expect("route");
        let session_id = route.session_id(&request_id, &params);
        let request = Request {
            method: "POST".into(),
            path: path.into(),
            params,
            body,
            actor: actor.clone(),
            request_id,
            time_ms: 1_700_000_000_000 + self.next_request,
            session_id,
        };
        let snapshot = self.l2.snapshot().unwrap();
        let mut ctx = Ctx::new(&snapshot, ExecEnv { layer: Layer::L2, mode: ExecMode::Standalone });
        let response = (route.handler)(&mut ctx, &request).unwrap_or_else(|e| panic!("{path}: {e}"));
        SignedOp::sign(Op { request, response }, NODE, &demo::node_key(NODE))
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
        let ops = super::session_ops(&self.l2.snapshot().unwrap(), session_id).unwrap();
        SignedBundle::sign(Bundle::new(L2_CHAIN, session_id, ops), key)
    }

    fn submit_l1(&self, bundle: SignedBundle) -> Result<crate::chain::Finalized, SubmitError> {
        futures_block_on(self.l1.submit(Tx::Bundle(bundle).encode()))
    }

    /// Commits a session to L1 and records the receipt on L2, as the committer does.
    fn commit(&mut self, owner: &Actor, session_id: &str) {
        self.write(owner, &format!("/v1/sessions/{session_id}/commit"), json!({}));
        let finalized = self.submit_l1(self.bundle(session_id, &demo::commit_key())).expect("L1 commits");
        let receipt = super::Receipt::committed(L1_CHAIN, finalized.ledger.as_ref().unwrap());
        let node = actor(NODE, Role::Node);
        self.write(
            &node,
            &format!("/v1/sessions/{session_id}/commit_recorded"),
            json!({"committed": true, "receipt": receipt, "reason": null}),
        );
    }

    /// A supplier session registering and committing PKG-1, then a warehouse session up to
    /// its label (not committed).
    fn fixed_workflow(&mut self) -> String {
        let supplier = actor("sup-1", Role::Supplier);
        let operator = actor("op-1", Role::Operator);
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
    a.commit(&actor("op-1", Role::Operator), &wa);
    b.commit(&actor("op-1", Role::Operator), &wb);
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
            .commit_block(&crate::store::BlockCommit {
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
    script.commit(&actor("op-1", Role::Operator), &warehouse);
    insta::assert_snapshot!(
        format!("l2 {}\nl1 {}", app_hash(&script.l2), app_hash(&script.l1)),
        @r"
        l2 f707c6622fb225aadb35ade7ad865c44eea877ec66ffe79c9715ce007c60b530
        l1 0638a90e9703c6433283ec191608214ec1fe32ca640635c400b2e813a845c865
        "
    );
}

fn refused(result: Result<crate::chain::Finalized, SubmitError>) -> (TxCode, String) {
    match result {
        Err(SubmitError::Refused { code, log }) => (code, log),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_bundle_with_one_mismatching_response_is_rejected_whole() {
    let mut script = Script::new();
    let warehouse = script.fixed_workflow();
    script.write(&actor("op-1", Role::Operator), &format!("/v1/sessions/{warehouse}/commit"), json!({}));
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
    script.write(&actor("op-1", Role::Operator), &format!("/v1/sessions/{warehouse}/commit"), json!({}));
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
    script.write(&actor("op-1", Role::Operator), &format!("/v1/sessions/{warehouse}/commit"), json!({}));
    let first = script.submit_l1(script.bundle(&warehouse, &demo::commit_key())).unwrap();
    // Submitted again (another node resuming the commit): same bytes, same receipt.
    let again = script.submit_l1(script.bundle(&warehouse, &demo::commit_key())).unwrap();
    assert_eq!(again.code, TxCode::Ok);
    assert_eq!(again.ledger, first.ledger);

    let mut shorter = script.bundle(&warehouse, &demo::commit_key()).bundle;
    shorter.ops.pop();
    let different = SignedBundle::sign(Bundle::new(L2_CHAIN, &warehouse, shorter.ops), &demo::commit_key());
    assert_eq!(refused(script.submit_l1(different)).0, TxCode::BundleConflict);
}

#[test]
fn ops_from_unknown_origins_or_with_forged_signatures_are_refused() {
    let mut script = Script::new();
    let op = script.op(&actor("op-1", Role::Operator), "/v1/sessions", json!({"kind": "warehouse"}));
    let stranger = SignedOp::sign(op.op.clone(), "l2-9", &demo::node_key("l2-9"));
    let (code, _) = refused(futures_block_on(script.l2.submit(Tx::Op(stranger).encode())));
    assert_eq!(code, TxCode::Unauthorized);
    let impostor = SignedOp::sign(op.op.clone(), NODE, &SigningKey::demo("impostor"));
    assert_eq!(refused(futures_block_on(script.l2.submit(Tx::Op(impostor).encode()))).0, TxCode::Unauthorized);
    let mut tampered = op.clone();
    tampered.op.request.actor = actor("op-2", Role::Operator);
    assert_eq!(refused(futures_block_on(script.l2.submit(Tx::Op(tampered).encode()))).0, TxCode::BadSignature);
    let bytes = b"{\"type\":\"op\"}".to_vec();
    assert_eq!(refused(futures_block_on(script.l2.submit(bytes))).0, TxCode::Malformed);
    // A node cannot invent an internal op for a user, nor a user op as itself.
    let mut as_node = script.op(&actor("op-1", Role::Operator), "/v1/sessions", json!({"kind": "warehouse"})).op;
    as_node.request.actor = actor(NODE, Role::Node);
    let signed = SignedOp::sign(as_node, NODE, &demo::node_key(NODE));
    assert_eq!(refused(futures_block_on(script.l2.submit(Tx::Op(signed).encode()))).0, TxCode::Unauthorized);
}

#[test]
fn a_conflicting_op_ordered_after_its_rival_is_refused_not_applied() {
    let mut script = Script::new();
    let operator = actor("op-1", Role::Operator);
    let other = actor("op-2", Role::Operator);
    script.fixed_workflow();
    // Two sessions both simulated a scan of a free package against the same state...
    let supplier = actor("sup-1", Role::Supplier);
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
