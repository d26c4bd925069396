//! End-to-end tests on real CometBFT processes: 4 L1 validators and 1 L2 validator on loopback
//! unless a test says otherwise. Each test starts its own devnet; they run one at a time.

// Amounts in cents are written as units_cents (100_00 is 100.00).
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use std::time::Duration;

use bftws_node::{
    devnet::{Devnet, DevnetSpec, L1_CHAIN_ID, L2_CHAIN_ID},
    local_network,
    workflow::WorkflowClient,
};

use bftws_framework::{
    app::{
        self,
        tx::{Bundle, SignedBundle, SignedOp},
    },
    chain::Chain,
    cometbft::CometRpc,
    crypto::SigningKey,
    http_client::JsonClient,
    registry::{Actor, Layer, Role},
};

use bftws_supply_chain::demo;
use common::devnet::{spec, start};
use serde_json::{json, Value};
use tokio::sync::Mutex;

/// Devnets are heavy for a 2-core machine: one at a time. New tests take base ports below the
/// kernel's ephemeral range (32768 and up), where an outgoing connection can hold a port first.
static ONE_DEVNET_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn api(devnet: &Devnet, name: &str) -> String {
    devnet.node(name).unwrap_or_else(|| panic!("no node {name}")).api_url.clone()
}

struct Client {
    http: JsonClient,
}

impl Client {
    fn new() -> Self {
        Self { http: JsonClient::new(Duration::from_secs(30)) }
    }

    async fn post(&self, base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
        let reply = self.http.post(&format!("{base}{path}"), Some(token), &body).await.expect("reply");
        (reply.status, reply.body)
    }

    async fn get(&self, base: &str, token: &str, path: &str) -> (u16, Value) {
        let reply = self.http.get(&format!("{base}{path}"), Some(token)).await.expect("reply");
        (reply.status, reply.body)
    }

    async fn start_session(&self, base: &str, token: &str, kind: &str) -> String {
        let (status, body) = self.post(base, token, "/v1/sessions", json!({"kind": kind})).await;
        assert_eq!(status, 201, "{body}");
        body["data"]["session_id"].as_str().unwrap().to_owned()
    }

    /// A supplier session with one package, stopped before commit.
    async fn registered(&self, base: &str, package_id: &str) -> String {
        let session = self.start_session(base, "demo-sup-1", "supplier").await;
        let items = json!([{"sku": "SKU-1", "qty": 1}]);
        let signature =
            demo::sign_manifest("sup-1", package_id, &serde_json::from_value::<Vec<_>>(items.clone()).unwrap());
        let body = json!({"package_id": package_id, "items": items, "signature": signature});
        let (status, reply) =
            self.post(base, "demo-sup-1", &format!("/v1/sessions/{session}/register_package"), body).await;
        assert_eq!(status, 201, "{reply}");
        session
    }

    async fn session_status(&self, base: &str, session: &str) -> String {
        let (status, body) = self.get(base, "demo-auditor", &format!("/v1/sessions/{session}")).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["status"].as_str().unwrap().to_owned()
    }
}

/// Looks a receipt's transaction up in an L1 node's CometBFT (`/tx?hash=`); that node may trail
/// the one that answered the commit by a block, so it gets a few seconds.
async fn assert_on_l1(devnet: &Devnet, receipt: &Value) {
    let rpc = CometRpc::new(devnet.node("l1-0").unwrap().rpc_url.clone(), Duration::from_secs(5));
    let hash = receipt["tx_hash"].as_str().expect("receipt has a tx hash");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let tx = loop {
        match rpc.tx(hash).await.expect("RPC answers") {
            Some(tx) => break tx,
            None if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            None => panic!("tx {hash} is not on L1"),
        }
    };
    assert_eq!(tx["height"].as_str().and_then(|h| h.parse::<u64>().ok()), receipt["height"].as_u64(), "{tx}");
    assert_eq!(tx["tx_result"]["code"].as_u64().unwrap_or(0), 0, "{tx}");
}

#[tokio::test]
async fn the_full_workflow_returns_receipts_found_on_l1() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("workflow", 31000);
    let devnet = start(spec).await;
    let client = WorkflowClient::new(api(&devnet, "l2-0"), Duration::from_secs(30));
    let supplier = client.supplier_session("demo-sup-1", "sup-1", "PKG-E2E-1").await.expect("supplier session");
    assert_on_l1(&devnet, &supplier.receipt).await;
    let warehouse = client.warehouse_session("demo-op-1", "sup-1", "PKG-E2E-1").await.expect("warehouse session");
    assert_on_l1(&devnet, &warehouse.receipt).await;
    assert_eq!(warehouse.steps.len(), 6);
    // Every L1 node serves the same ledger entry.
    let http = Client::new();
    for node in devnet.layer(Layer::L1) {
        let (status, body) =
            http.get(&node.api_url, "demo-auditor", &format!("/v1/l1/sessions/{}", warehouse.session_id)).await;
        assert_eq!(status, 200, "{}: {body}", node.name);
        assert_eq!(body["data"]["receipt"], warehouse.receipt);
    }
    // The package's audit history, from L2 and from L1: both sessions, each with a proof that
    // verifies against the L1 genesis alone.
    let genesis =
        std::fs::read_to_string(devnet.node("l1-0").unwrap().dir.join("cometbft/config/genesis.json")).unwrap();
    let trusted = bftws_framework::proof::TrustedL1::from_genesis_json(&genesis).unwrap();
    for base in [api(&devnet, "l2-0"), api(&devnet, "l1-3")] {
        let (status, body) = http.get(&base, "demo-auditor", "/v1/packages/PKG-E2E-1/history").await;
        assert_eq!(status, 200, "{base}: {body}");
        assert_eq!(body["data"]["record"]["package_id"], "PKG-E2E-1");
        let sessions = body["data"]["sessions"].as_array().unwrap();
        let ids: Vec<&str> = sessions.iter().map(|s| s["session_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [supplier.session_id.as_str(), warehouse.session_id.as_str()], "{base}");
        for entry in sessions {
            assert_eq!(entry["committed"], true, "{base}: {entry}");
            let proof = serde_json::from_value(entry["proof"].clone()).unwrap();
            bftws_framework::proof::verify(&proof, &trusted, entry["session_id"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{base}: {e}"));
        }
    }
}

/// Builds a real supplier-session bundle for the devnet's chains on an in-process network.
async fn supplier_bundle(package_id: &str) -> (String, Vec<SignedOp>) {
    local_network::supplier_session_ops(package_id).await.unwrap()
}

#[tokio::test]
async fn forged_bundles_are_rejected_with_a_clear_code_and_nothing_applied() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("forged", 31200);
    let devnet = start(spec).await;
    let l1 = api(&devnet, "l1-1");
    let http = JsonClient::new(Duration::from_secs(30));
    let (session, ops) = supplier_bundle("PKG-FORGED").await;
    let commit_key = demo::commit_key();
    let submit = |bundle: SignedBundle| {
        let http = http.clone();
        let url = format!("{l1}/v1/l1/bundles");
        async move {
            let reply = http.post(&url, None, &serde_json::to_value(bundle).unwrap()).await.unwrap();
            (reply.status, reply.body)
        }
    };

    // One op's response tampered (and re-signed by its origin, so only the response is wrong).
    let mut tampered = ops.clone();
    let mut op = tampered[1].op.clone();
    op.response.body["items"][0]["qty"] = json!(30);
    tampered[1] = SignedOp::sign(op, "l2-0", &demo::node_key("l2-0"));
    let (status, body) = submit(SignedBundle::sign(Bundle::new(L2_CHAIN_ID, &session, tampered), &commit_key)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["tx_code"], "RESPONSE_MISMATCH");
    assert_eq!(body["error"]["step"], 1, "{body}");

    // A bundle whose signature is not the commit key's.
    let mut bad_signature = SignedBundle::sign(Bundle::new(L2_CHAIN_ID, &session, ops.clone()), &commit_key);
    bad_signature.signature = SigningKey::demo("intruder").sign(b"bundle");
    let (status, body) = submit(bad_signature).await;
    assert_eq!((status, body["error"]["tx_code"].as_str()), (422, Some("BAD_SIGNATURE")), "{body}");

    // A bundle signed by a key L1 does not authorise.
    let rogue = SignedBundle::sign(Bundle::new(L2_CHAIN_ID, &session, ops.clone()), &SigningKey::demo("rogue"));
    let (status, body) = submit(rogue).await;
    assert_eq!((status, body["error"]["tx_code"].as_str()), (422, Some("UNAUTHORIZED")), "{body}");

    // Nothing of them was applied, on any L1 node.
    let client = Client::new();
    for node in devnet.layer(Layer::L1) {
        let (status, _) = client.get(&node.api_url, "demo-auditor", &format!("/v1/l1/sessions/{session}")).await;
        assert_eq!(status, 404, "{}", node.name);
    }
    // The honest bundle of the same session commits, and a retry answers the same receipt.
    let honest = SignedBundle::sign(Bundle::new(L2_CHAIN_ID, &session, ops), &commit_key);
    let (status, first) = submit(honest.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = submit(honest).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(first["data"], again["data"]);
    assert_on_l1(&devnet, &first["data"]).await;
}

#[tokio::test]
async fn commits_survive_one_lost_l1_validator_and_wait_out_the_loss_of_quorum() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("quorum", 31400);
    let mut devnet = start(spec).await;
    let l2 = api(&devnet, "l2-0");
    let client = Client::new();

    devnet.kill("l1-3").unwrap();
    let session = client.registered(&l2, "PKG-Q1").await;
    let (status, body) = client.post(&l2, "demo-sup-1", &format!("/v1/sessions/{session}/commit"), json!({})).await;
    assert_eq!(status, 200, "one of four validators down must not stop commits: {body}");
    assert_on_l1(&devnet, &body["data"]["receipt"]).await;

    devnet.kill("l1-2").unwrap();
    let session = client.registered(&l2, "PKG-Q2").await;
    let started = std::time::Instant::now();
    let (status, body) = client.post(&l2, "demo-sup-1", &format!("/v1/sessions/{session}/commit"), json!({})).await;
    assert_eq!(status, 202, "without quorum the commit is accepted, not final: {body}");
    assert!(started.elapsed() < Duration::from_secs(20), "answered within a bounded time: {:?}", started.elapsed());
    assert_eq!(body["data"]["status"], "committing");
    assert!(body["data"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
    assert_eq!(client.session_status(&l2, &session).await, "committing");

    devnet.start(&["l1-2".to_owned(), "l1-3".to_owned()], Duration::from_secs(90)).await.expect("validators return");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let status = client.session_status(&l2, &session).await;
        if status == "committed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "session still {status} long after quorum returned");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, body) = client.get(&l2, "demo-auditor", &format!("/v1/sessions/{session}")).await;
    assert_on_l1(&devnet, &body["data"]["receipt"]).await;
}

#[tokio::test]
async fn an_l2_node_killed_mid_session_continues_it_after_restart() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("restart", 31600);
    let mut devnet = start(spec).await;
    let l2 = api(&devnet, "l2-0");
    let client = WorkflowClient::new(l2.clone(), Duration::from_secs(30));
    client.supplier_session("demo-sup-1", "sup-1", "PKG-R1").await.expect("supplier session");
    let http = Client::new();
    let session = http.start_session(&l2, "demo-op-1", "warehouse").await;
    let step = |name: &str| format!("/v1/sessions/{session}/{name}");
    let (status, body) = http.post(&l2, "demo-op-1", &step("scan"), json!({"package_id": "PKG-R1"})).await;
    assert_eq!(status, 200, "{body}");
    let signature = demo::sign_manifest("sup-1", "PKG-R1", &bftws_node::workflow::package_items());
    let (status, body) = http.post(&l2, "demo-op-1", &step("validate"), json!({"signature": signature})).await;
    assert_eq!(status, 200, "{body}");

    devnet.kill("l2-0").unwrap();
    devnet.start(&["l2-0".to_owned()], Duration::from_secs(90)).await.expect("l2-0 restarts");

    // Every acknowledged op is still there: the session expects qc next.
    let (status, body) = http.get(&l2, "demo-op-1", &format!("/v1/sessions/{session}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["validated"], true);
    assert_eq!(body["meta"]["expected_step"], "qc");
    let (status, body) = http.post(&l2, "demo-op-1", &step("qc"), json!({"passed": true})).await;
    assert_eq!(status, 200, "{body}");
    let label = json!({"destination": "Bergen", "priority": "standard", "courier_id": "c-2"});
    let (status, body) = http.post(&l2, "demo-op-1", &step("label"), label).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http.post(&l2, "demo-op-1", &step("commit"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_on_l1(&devnet, &body["data"]["receipt"]).await;
}

#[tokio::test]
async fn a_client_served_by_an_l2_full_node_completes_a_session() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("fullnode", 31800);
    let spec = DevnetSpec { l2_validators: 2, l2_full_nodes: 1, ..spec };
    let devnet = start(spec).await;
    let full_node = devnet.node("l2-2").unwrap();
    assert!(!full_node.is_validator);
    let client = WorkflowClient::new(full_node.api_url.clone(), Duration::from_secs(30));
    let supplier =
        client.supplier_session("demo-sup-1", "sup-1", "PKG-F1").await.expect("supplier session via full node");
    assert_on_l1(&devnet, &supplier.receipt).await;
    let warehouse =
        client.warehouse_session("demo-op-1", "sup-1", "PKG-F1").await.expect("warehouse session via full node");
    assert_on_l1(&devnet, &warehouse.receipt).await;
    // The validators hold the same session (they may trail the full node by a block).
    let http = Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while http.session_status(&api(&devnet, "l2-0"), &warehouse.session_id).await != "committed" {
        assert!(std::time::Instant::now() < deadline, "the L2 validator never saw the commit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(feature = "byzantine-test")]
#[tokio::test]
async fn a_byzantine_proposer_has_its_block_rejected_and_the_chain_goes_on() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("byzantine", 32000);
    let spec = DevnetSpec { fault: Some(("l1-0".into(), "propose-mismatch".into())), ..spec };
    let devnet = start(spec).await;
    // Direct-L1 mode: each op is its own L1 transaction, sent to an honest node.
    let l1 = api(&devnet, "l1-1");
    let client = Client::new();
    let mut heights = Vec::new();
    for i in 0..8 {
        let session = client.start_session(&l1, "demo-sup-1", "supplier").await;
        let items = json!([{"sku": "SKU-1", "qty": 1}]);
        let package = format!("PKG-B{i}");
        let signature =
            demo::sign_manifest("sup-1", &package, &serde_json::from_value::<Vec<_>>(items.clone()).unwrap());
        let body = json!({"package_id": package, "items": items, "signature": signature});
        let (status, reply) =
            client.post(&l1, "demo-sup-1", &format!("/v1/sessions/{session}/register_package"), body).await;
        assert_eq!(status, 201, "{reply}");
        heights.push(reply["meta"]["height"].as_u64().unwrap());
    }
    let byzantine_log = std::fs::read_to_string(devnet.node("l1-0").unwrap().dir().join("app.log")).unwrap();
    let proposals = byzantine_log.matches("BYZANTINE TEST MODE").count();
    assert!(proposals > 0, "the Byzantine node never proposed a forged block");
    let rejections: usize = ["l1-1", "l1-2", "l1-3"]
        .iter()
        .map(|n| std::fs::read_to_string(devnet.node(n).unwrap().dir().join("app.log")).unwrap())
        .map(|log| log.matches("rejecting proposal").count())
        .sum();
    assert!(rejections > 0, "honest validators never rejected a forged proposal");
    // The chain went on: every op was applied, at increasing heights.
    assert!(heights.windows(2).all(|w| w[0] < w[1]), "{heights:?}");
}

/// Waits until the session is `committed` on `l2` and returns its receipt; panics after `within`.
async fn committed_receipt(client: &Client, l2: &str, session: &str, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (status, body) = client.get(l2, "demo-auditor", &format!("/v1/sessions/{session}")).await;
        assert_eq!(status, 200, "{body}");
        match body["data"]["status"].as_str() {
            Some("committed") => return body["data"]["receipt"].clone(),
            Some("committing") | Some("open") => {}
            other => panic!("session ended {other:?}: {body}"),
        }
        assert!(std::time::Instant::now() < deadline, "session {session} not committed after {within:?}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every L1 node holds one ledger entry for the session: the receipt's.
async fn committed_once_on_every_l1_node(devnet: &Devnet, client: &Client, session: &str, receipt: &Value) {
    assert_on_l1(devnet, receipt).await;
    for node in devnet.layer(Layer::L1) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let body = loop {
            let (status, body) = client.get(&node.api_url, "demo-auditor", &format!("/v1/l1/sessions/{session}")).await;
            if status == 200 {
                break body;
            }
            assert!(std::time::Instant::now() < deadline, "{}: {status} {body}", node.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(body["data"]["receipt"]["tx_hash"], receipt["tx_hash"], "{}: {body}", node.name);
        assert_eq!(body["data"]["receipt"]["height"], receipt["height"], "{}: {body}", node.name);
    }
}

#[tokio::test]
async fn commits_finish_whatever_happens_to_the_client_the_node_or_l1() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("liveness", 32200);
    let mut devnet = start(spec).await;
    let l2 = api(&devnet, "l2-0");
    let client = Client::new();

    // The client goes away right after sending the commit: the node still finishes it.
    let session = client.registered(&l2, "PKG-L1").await;
    let impatient = JsonClient::new(Duration::from_millis(5));
    let _ = impatient.post(&format!("{l2}/v1/sessions/{session}/commit"), Some("demo-sup-1"), &json!({})).await;
    let receipt = committed_receipt(&client, &l2, &session, Duration::from_secs(30)).await;
    committed_once_on_every_l1_node(&devnet, &client, &session, &receipt).await;

    // L1 gone entirely: the commit is accepted, not final. The committing node restarts while
    // L1 is away; when L1 returns the session commits, once.
    let session = client.registered(&l2, "PKG-L2").await;
    let l1_nodes: Vec<String> = devnet.layer(Layer::L1).map(|n| n.name.clone()).collect();
    for name in &l1_nodes {
        devnet.kill(name).unwrap();
    }
    let (status, body) = client.post(&l2, "demo-sup-1", &format!("/v1/sessions/{session}/commit"), json!({})).await;
    assert_eq!(status, 202, "{body}");
    devnet.kill("l2-0").unwrap();
    devnet.start(&["l2-0".to_owned()], Duration::from_secs(90)).await.expect("l2-0 restarts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(client.session_status(&l2, &session).await, "committing");
    devnet.start(&l1_nodes, Duration::from_secs(90)).await.expect("L1 returns");
    let receipt = committed_receipt(&client, &l2, &session, Duration::from_secs(90)).await;
    committed_once_on_every_l1_node(&devnet, &client, &session, &receipt).await;
}

#[tokio::test]
async fn a_flood_of_refused_bundles_stops_no_validator_and_honest_sessions_commit() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("flood", 29400);
    let devnet = start(spec).await;
    let l2 = api(&devnet, "l2-0");
    let client = Client::new();

    // Large bundles each refused before any op is verified or executed: an unknown committer,
    // over the op cap, a bad signature from the real commit key.
    let floods: Vec<(Value, &str)> = local_network::refused_bundles()
        .await
        .unwrap()
        .into_iter()
        .map(|(bundle, code)| (serde_json::to_value(bundle).unwrap(), code))
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let limited = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut flooders = Vec::new();
    for node in devnet.layer(Layer::L1) {
        let url = format!("{}/v1/l1/bundles", node.api_url);
        let (floods, stop, sent, limited) = (floods.clone(), stop.clone(), sent.clone(), limited.clone());
        flooders.push(tokio::spawn(async move {
            // From its own loopback address, as a flooder elsewhere would be: its refusals
            // spend its budget, not that of the L2 committer on 127.0.0.1.
            let http = JsonClient::from_address(Duration::from_secs(30), "127.0.0.2".parse().unwrap());
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (body, code) = &floods[i % floods.len()];
                let reply = http.post(&url, None, body).await.expect("L1 answers the flood");
                if reply.status == 429 {
                    assert_eq!(reply.body["error"]["code"], "too_many_refusals", "{}", reply.body);
                    limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else {
                    assert_eq!(reply.status, 422, "{}", reply.body);
                    assert_eq!(reply.body["error"]["tx_code"], *code, "{}", reply.body);
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    // Every L1 node's budget for the flooder's address runs out (32 refusals each) before the
    // honest sessions commit, so they commit while the flood is being limited.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while limited.load(std::sync::atomic::Ordering::Relaxed) < 4 * devnet.layer(Layer::L1).count() as u64 {
        assert!(std::time::Instant::now() < deadline, "a source of refused bundles is limited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = Vec::new();
    for i in 0..5 {
        let session = client.registered(&l2, &format!("PKG-HONEST-{i}")).await;
        let started = std::time::Instant::now();
        let (status, body) = client.post(&l2, "demo-sup-1", &format!("/v1/sessions/{session}/commit"), json!({})).await;
        latencies.push(started.elapsed());
        assert_eq!(status, 200, "an honest commit under the flood: {body}");
        assert_on_l1(&devnet, &body["data"]["receipt"]).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for flooder in flooders {
        flooder.await.expect("flooder");
    }
    let (sent, limited) =
        (sent.load(std::sync::atomic::Ordering::Relaxed), limited.load(std::sync::atomic::Ordering::Relaxed));
    eprintln!("flood: {sent} bad bundles sent, {limited} of them answered 429; honest commits took {latencies:?}");
    // Every validator is still up and in consensus.
    for node in devnet.layer(Layer::L1) {
        let (status, body) = client.get(&node.api_url, "demo-auditor", "/readyz").await;
        assert_eq!(status, 200, "{}: {body}", node.name);
    }
}

#[tokio::test]
async fn the_escrow_service_commits_purchases_to_l1_and_l1_refuses_a_tampered_bundle() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("escrow", 29600);
    let devnet = start(DevnetSpec { service: bftws_escrow::NAME.into(), ..spec }).await;
    let l2 = api(&devnet, "l2-0");
    let client = Client::new();

    let seller = client.start_session(&l2, "demo-s-1", "seller").await;
    let listing = json!({"listing_id": "L-E2E", "title": "a lamp", "price": 60_00});
    let (status, body) = client.post(&l2, "demo-s-1", &format!("/v1/sessions/{seller}/list_item"), listing).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = client.post(&l2, "demo-s-1", &format!("/v1/sessions/{seller}/commit"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_on_l1(&devnet, &body["data"]["receipt"]).await;

    let buyer = client.start_session(&l2, "demo-b-1", "buyer").await;
    for (step, body) in [("reserve", json!({"listing_id": "L-E2E"})), ("pay", json!({})), ("confirm", json!({}))] {
        let (status, reply) = client.post(&l2, "demo-b-1", &format!("/v1/sessions/{buyer}/{step}"), body).await;
        assert_eq!(status, 200, "{step}: {reply}");
    }
    let (status, body) = client.post(&l2, "demo-b-1", &format!("/v1/sessions/{buyer}/commit"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_on_l1(&devnet, &body["data"]["receipt"]).await;
    // Every L1 node holds the buyer's balance after the purchase.
    for node in devnet.layer(Layer::L1) {
        let (status, body) = client.get(&node.api_url, "demo-b-1", "/v1/accounts/b-1").await;
        assert_eq!((status, body["data"]["balance"].as_u64()), (200, Some(40_00)), "{}: {body}", node.name);
    }

    // A seller session built for these chains, one answer tampered (re-signed by its origin).
    let local = bftws_framework::local_network::LocalNetwork::new(
        bftws_escrow::registry(),
        bftws_framework::local_network::LocalNetworkSpec {
            dir: None,
            l1_chain_id: L1_CHAIN_ID,
            l2_chain_id: L2_CHAIN_ID,
            reference_data: serde_json::to_value(bftws_escrow::demo::reference_data()).unwrap(),
            tokens: bftws_escrow::demo::token_file(),
        },
    )
    .unwrap();
    let seller = Actor { id: "s-1".into(), role: Role::new("seller") };
    let started = local.origin.write(&seller, "POST", "/v1/sessions", json!({"kind": "seller"})).await.unwrap();
    let session = started.session_id.unwrap();
    let item = json!({"listing_id": "L-FORGED", "title": "a forgery", "price": 1});
    local.origin.write(&seller, "POST", &format!("/v1/sessions/{session}/list_item"), item).await.unwrap();
    local.origin.write(&seller, "POST", &format!("/v1/sessions/{session}/commit"), json!({})).await.unwrap();
    let mut ops = app::session_ops(&local.l2.snapshot().unwrap(), &session).unwrap();
    let mut op = ops[1].op.clone();
    op.response.body["listing"]["price"] = json!(1_000_00);
    ops[1] = SignedOp::sign(op, "l2-0", &demo::node_key("l2-0"));
    let bundle = SignedBundle::sign(Bundle::new(L2_CHAIN_ID, &session, ops), &demo::commit_key());
    let reply = JsonClient::new(Duration::from_secs(30))
        .post(&format!("{}/v1/l1/bundles", api(&devnet, "l1-2")), None, &serde_json::to_value(bundle).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.body["error"]["tx_code"], "RESPONSE_MISMATCH", "{}", reply.body);
    assert_eq!(reply.body["error"]["step"], 1, "{}", reply.body);
    let (status, _) = client.get(&api(&devnet, "l1-0"), "demo-auditor", "/v1/listings/L-FORGED").await;
    assert_eq!(status, 404, "nothing of the tampered bundle applied");
}

/// A committed session's proof verifies against the L1 genesis alone (fetched from a node, and
/// again from a saved file); the same proof with one thing changed fails, naming the check.
#[tokio::test]
async fn session_proofs_verify_against_the_l1_genesis_and_any_change_is_caught() {
    use bftws_framework::proof::{self, ProofError, TrustedL1};
    use bftws_node::verify::{self, ProofSource};

    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (dir, spec) = spec("proofs", 29000);
    let devnet = start(spec).await;
    let client = WorkflowClient::new(api(&devnet, "l2-0"), Duration::from_secs(30));
    let run = client.supplier_session("demo-sup-1", "sup-1", "PKG-PROOF-1").await.expect("supplier session");
    let genesis = devnet.node("l1-0").unwrap().dir.join("cometbft/config/genesis.json");
    let l1 = api(&devnet, "l1-1");
    let (proof, verified) =
        verify::verify(ProofSource::Node { l1: &l1, token: "demo-auditor" }, &genesis, &run.session_id)
            .await
            .expect("the proof of a committed session verifies");
    assert_eq!(Some(verified.height), run.receipt["height"].as_u64());
    assert_eq!(Some(verified.tx_hash.as_str()), run.receipt["tx_hash"].as_str());
    assert_eq!(Some(verified.bundle_hash.as_str()), run.receipt["bundle_hash"].as_str());
    assert!(3 * verified.signed_power > 2 * verified.total_power, "{verified:?}");
    // An L2 node serves the same proof (asked of L1, checked against the genesis) to the
    // session's owner, and not to another supplier.
    let l2 = api(&devnet, "l2-0");
    let (from_l2, _) = verify::verify(ProofSource::Node { l1: &l2, token: "demo-sup-1" }, &genesis, &run.session_id)
        .await
        .expect("the owner gets the proof from L2");
    assert_eq!(from_l2.tx_hash, proof.tx_hash);
    let (status, body) = Client::new().get(&l2, "demo-sup-2", &format!("/v1/sessions/{}/proof", run.session_id)).await;
    assert_eq!(status, 403, "{body}");
    let saved = dir.path().join("proof.json");
    std::fs::write(&saved, serde_json::to_vec(&proof).unwrap()).unwrap();
    verify::verify(ProofSource::File(&saved), &genesis, &run.session_id).await.expect("the saved proof verifies");

    let trusted = TrustedL1::from_genesis_json(&std::fs::read_to_string(&genesis).unwrap()).unwrap();
    let check = |edit: &dyn Fn(&mut proof::SessionProof)| {
        let mut changed = proof.clone();
        edit(&mut changed);
        proof::verify(&changed, &trusted, &run.session_id).expect_err("a changed proof must not verify")
    };
    let flip_base64 = |text: &mut String| {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut bytes = engine.decode(&*text).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        *text = engine.encode(bytes);
    };
    // One byte of the transaction.
    assert!(matches!(check(&|p| flip_base64(&mut p.tx)), ProofError::TxInclusion(_)));
    // One byte of header H (its app hash): the commit is no longer for it.
    let err = check(&|p| {
        let hash = p.signed_header["header"]["app_hash"].as_str().unwrap().to_owned();
        let first = if hash.starts_with('0') { '1' } else { '0' };
        let flipped = format!("{first}{}", &hash[1..]);
        p.signed_header["header"]["app_hash"] = json!(flipped);
    });
    assert!(matches!(err, ProofError::Signatures(_)), "{err}");
    // One byte of a signature.
    let err = check(&|p| {
        let signatures = p.next_signed_header["commit"]["signatures"].as_array_mut().unwrap();
        let present = signatures.iter_mut().find(|s| s["signature"].is_string()).expect("a signature");
        let mut signature = present["signature"].as_str().unwrap().to_owned();
        flip_base64(&mut signature);
        present["signature"] = json!(signature);
    });
    assert!(matches!(err, ProofError::Signatures(_)), "{err}");
    // The result: a code other than the one committed.
    let err = check(&|p| p.block_results[p.tx_index as usize].code = 7);
    assert!(matches!(err, ProofError::TxResult(_)), "{err}");
    // The chain id.
    let err = check(&|p| p.next_signed_header["header"]["chain_id"] = json!("another-chain"));
    assert!(matches!(err, ProofError::ChainId(_)), "{err}");
    // Signatures of only half the voting power (two of four validators marked absent).
    let err = check(&|p| {
        for i in [0, 1] {
            p.next_signed_header["commit"]["signatures"][i] = json!({"block_id_flag": 1,
                "validator_address": "", "timestamp": "0001-01-01T00:00:00Z", "signature": null});
        }
    });
    assert!(matches!(&err, ProofError::Signatures(m) if m.contains("more than 2/3")), "{err}");
    // Without block H+1 the proof shows inclusion (what the L2 committer checks) but not the
    // result: a client's finality check refuses it.
    let mut inclusion = proof.clone();
    inclusion.next_signed_header = Value::Null;
    inclusion.block_results.clear();
    proof::verify_as(&inclusion, &trusted, &run.session_id, proof::Check::Inclusion).expect("inclusion verifies");
    let err = proof::verify(&inclusion, &trusted, &run.session_id).expect_err("no finality without H+1");
    assert!(matches!(err, ProofError::Height(_)), "{err}");
    // Another session's name on this proof.
    let err = proof::verify(&proof, &trusted, "some-other-session").expect_err("another session");
    assert!(matches!(err, ProofError::Session(_)), "{err}");
    // Another network's genesis (same chain id, other validators) trusts none of these signers.
    let mut other: Value = serde_json::from_str(&std::fs::read_to_string(&genesis).unwrap()).unwrap();
    let first = other["validators"][0].clone();
    other["validators"] = json!([first]);
    let lone = TrustedL1::from_genesis_json(&other.to_string()).unwrap();
    let err = proof::verify(&proof, &lone, &run.session_id).expect_err("other validators");
    assert!(matches!(err, ProofError::Validators(_)), "{err}");
}

/// An L1 node that lies about a bundle is caught by the L2 committer's client: its answer's
/// proof does not verify against the L1 genesis (or is missing, or proves another receipt), the
/// lie is counted, and the bundle commits through an honest node, whose proven receipt is the one
/// taken. The liar relays each bundle to an honest node and alters the answer.
#[tokio::test]
async fn a_lying_l1_node_is_caught_and_the_bundle_commits_through_another() {
    use std::sync::Arc;

    use axum::{extract::RawQuery, routing::post, Router};
    use bftws_framework::{
        l2::{HttpL1Client, L1Client},
        metrics::Metrics,
        proof::TrustedL1,
    };

    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("liar", 29200);
    let devnet = start(spec).await;
    let honest = api(&devnet, "l1-2");
    let genesis = devnet.node("l1-0").unwrap().dir.join("cometbft/config/genesis.json");
    let trusted = TrustedL1::from_genesis_json(&std::fs::read_to_string(&genesis).unwrap()).unwrap();

    type Lie = fn(&mut Value);
    let lies: [(&str, Lie); 4] = [
        ("a receipt at another height", |answer| answer["data"]["height"] = json!(1)),
        ("no proof", |answer| answer["proof"] = Value::Null),
        ("a forged commit signature", |answer| {
            let signatures = answer["proof"]["signed_header"]["commit"]["signatures"].as_array_mut().unwrap();
            let present = signatures.iter_mut().find(|s| s["signature"].is_string()).unwrap();
            present["signature"] = json!(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]));
        }),
        ("a tx that is not in the block", |answer| answer["proof"]["block_tx_hashes"][0] = json!("00".repeat(32))),
    ];
    for (n, (lie, alter)) in lies.into_iter().enumerate() {
        let relay = JsonClient::new(Duration::from_secs(30));
        let target = format!("{honest}/v1/l1/bundles");
        let liar = Router::new().route(
            "/v1/l1/bundles",
            post(move |RawQuery(query): RawQuery, axum::Json(bundle): axum::Json<Value>| async move {
                let url = format!("{target}?{}", query.unwrap_or_default());
                let mut answer = match relay.post(&url, None, &bundle).await {
                    Ok(reply) => reply.body,
                    Err(e) => json!({"relay_error": e.to_string()}),
                };
                alter(&mut answer);
                axum::Json(answer)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let liar_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, liar).await });

        let metrics = Arc::new(Metrics::new());
        let client = HttpL1Client::new(vec![liar_url, honest.clone()], Duration::from_secs(20))
            .verifying(trusted.clone(), metrics.clone());
        let (session, ops) = supplier_bundle(&format!("PKG-LIAR-{n}")).await;
        let bundle = SignedBundle::sign(Bundle::new(L2_CHAIN_ID, &session, ops), &demo::commit_key());
        let receipt = client.submit_bundle(bundle).await.unwrap_or_else(|e| panic!("{lie}: no commit: {e}"));
        let receipt = serde_json::to_value(receipt).unwrap();
        let counted =
            metrics.encode().lines().find(|l| l.starts_with("bftws_l1_unverified_receipts_total")).map(str::to_owned);
        assert_eq!(counted.as_deref(), Some("bftws_l1_unverified_receipts_total 1"), "{lie}: receipt {receipt}");
        assert_ne!(receipt["height"], 1, "{lie}: the liar's receipt was taken");
        assert_on_l1(&devnet, &receipt).await;
    }
}

/// A client may send a session's next step to another replica at once: an L2 full node that has
/// not applied the previous step's block yet waits for it rather than answering that the session
/// does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_sent_to_a_full_node_right_after_the_last_one_finds_its_session() {
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("catch-up", 30000);
    let devnet = start(DevnetSpec { l2_full_nodes: 1, ..spec }).await;
    let (validator, full_node) = (api(&devnet, "l2-0"), api(&devnet, "l2-1"));
    let client = JsonClient::new(Duration::from_secs(20));
    let items = vec![bftws_supply_chain::model::Item { sku: "SKU-1".into(), qty: 1 }];
    for i in 0..20 {
        let started = client
            .post(&format!("{validator}/v1/sessions"), Some("demo-sup-1"), &json!({"kind": "supplier"}))
            .await
            .unwrap();
        assert_eq!(started.status, 201, "{}", started.body);
        let session = started.body["data"]["session_id"].as_str().unwrap().to_owned();
        let package = format!("PKG-CATCH-UP-{i}");
        let signature = demo::sign_manifest("sup-1", &package, &items);
        let body = json!({"package_id": package, "items": items, "signature": signature});
        let step = client
            .post(&format!("{full_node}/v1/sessions/{session}/register_package"), Some("demo-sup-1"), &body)
            .await
            .unwrap();
        assert_eq!(step.status, 201, "step {i} on the full node: {}", step.body);
    }
    // A refusal that no newer block changes is still a refusal.
    let unknown = client
        .post(&format!("{full_node}/v1/sessions/ses-00000000000000000000/commit"), Some("demo-sup-1"), &json!({}))
        .await
        .unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

/// Tokens are read again from the token file while the nodes run (a Kubernetes Secret is updated
/// in place): a token added there is served, one removed is refused, without a restart; a
/// broken file changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_edited_while_nodes_run_takes_effect_without_a_restart() {
    use bftws_framework::auth::{TokenEntry, TokenFile};
    let _one = ONE_DEVNET_AT_A_TIME.lock().await;
    let (_dir, spec) = spec("tokens", 30200);
    let devnet = start(DevnetSpec { l1_validators: 1, ..spec }).await;
    let node = api(&devnet, "l2-0");
    let client = JsonClient::new(Duration::from_secs(10));
    let me = |token: &'static str| {
        let (client, url) = (client.clone(), format!("{node}/v1/me"));
        async move { client.get(&url, Some(token)).await.unwrap().status }
    };
    assert_eq!((me("demo-op-1").await, me("rotated").await), (200, 401));
    let operator = Actor { id: "op-9".into(), role: Role::new("operator") };
    let tokens = devnet.dir().join("tokens.json");
    std::fs::write(&tokens, "{broken").unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(me("demo-op-1").await, 200, "a broken token file keeps the tokens in use");
    let file = TokenFile { tokens: vec![TokenEntry::for_token("rotated", operator)] };
    std::fs::write(&tokens, serde_json::to_vec(&file).unwrap()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while me("rotated").await != 200 {
        assert!(std::time::Instant::now() < deadline, "the new token is not served after 15 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(me("demo-op-1").await, 401, "a token gone from the file is refused");
}
