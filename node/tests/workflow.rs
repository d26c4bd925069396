//! The supply-chain workflow through the HTTP API on the in-process network: the step state
//! machine, claims, commits to L1, signatures and authorization.

mod common;

use bftws_framework::{app, chain::Chain};
use common::{manifest_signature, register_body, step, Net};
use serde_json::json;

#[tokio::test]
async fn a_full_supplier_and_warehouse_workflow_commits_both_sessions_to_l1() {
    let net = Net::new();
    let supplier = net.start("demo-sup-1", "supplier").await;
    let reply =
        net.post("demo-sup-1", &step(&supplier, "register_package"), register_body("sup-1", "PKG-1")).await.expect(201);
    assert_eq!(reply.data()["status"], "pending");
    assert_eq!(reply.body["meta"]["layer"], "l2");
    let reply = net.post("demo-sup-1", &step(&supplier, "commit"), json!({})).await.expect(200);
    assert_eq!(reply.data()["status"], "committed");
    let receipt = &reply.data()["receipt"];
    assert_eq!(receipt["chain_id"], "bftws-local-l1");
    assert_eq!(receipt["code"], 0);

    let warehouse = net.start("demo-op-1", "warehouse").await;
    let scan = net.post("demo-op-1", &step(&warehouse, "scan"), json!({"package_id": "PKG-1"})).await.expect(200);
    assert_eq!(scan.data()["supplier"]["id"], "sup-1");
    assert_eq!(scan.data()["items"][0]["sku"], "SKU-100");
    let signature = manifest_signature("sup-1", "PKG-1");
    net.post("demo-op-1", &step(&warehouse, "validate"), json!({"signature": signature})).await.expect(200);
    net.post("demo-op-1", &step(&warehouse, "qc"), json!({"passed": true})).await.expect(200);
    let label = net
        .post(
            "demo-op-1",
            &step(&warehouse, "label"),
            json!({"destination": "Oslo DC", "priority": "express", "courier_id": "c-1"}),
        )
        .await
        .expect(200);
    assert!(label.data()["label_id"].as_str().unwrap().starts_with("lbl-"));
    let commit = net.post("demo-op-1", &step(&warehouse, "commit"), json!({})).await.expect(200);
    let receipt = commit.data()["receipt"].clone();

    // L2 knows the outcome; L1's ledger holds the same bundle at the receipt's height.
    let session = net.get("demo-op-1", &format!("/v1/sessions/{warehouse}")).await.expect(200);
    assert_eq!(session.data()["status"], "committed");
    assert_eq!(session.data()["receipt"], receipt);
    let package = net.get("demo-auditor", "/v1/packages/PKG-1").await.expect(200);
    assert_eq!(package.data()["status"], "processed");
    assert_eq!(package.data()["label"]["courier_id"], "c-1");
    let l1 = net.network.l1.snapshot().unwrap();
    let entry = app::ledger_entry(&l1, &warehouse).unwrap().expect("warehouse session on L1");
    assert_eq!(json!(entry.height), receipt["height"]);
    assert_eq!(json!(entry.tx_hash), receipt["tx_hash"]);
    assert_eq!(json!(entry.bundle_hash), receipt["bundle_hash"]);
    assert_eq!(entry.op_count, 6, "start, scan, validate, qc, label, commit");
}

#[tokio::test]
async fn every_out_of_order_step_is_409_with_the_expected_step() {
    let net = Net::new();
    net.committed_package("PKG-1").await;
    let session = net.start("demo-op-1", "warehouse").await;
    let validate = json!({"signature": manifest_signature("sup-1", "PKG-1")});
    let label = json!({"destination": "Oslo", "priority": "standard", "courier_id": "c-1"});
    let attempts = [
        ("validate", validate.clone(), "scan"),
        ("qc", json!({"passed": true}), "scan"),
        ("label", label.clone(), "scan"),
        ("commit", json!({}), "scan"),
        ("register_package", common::register_body("sup-1", "PKG-X"), "scan"),
    ];
    for (name, body, expected) in attempts {
        let reply = net.post("demo-op-1", &step(&session, name), body).await.expect(409);
        assert_eq!(reply.body["error"]["expected_step"], expected, "{name}");
        assert_eq!(reply.error_code(), "out_of_order");
    }
    net.post("demo-op-1", &step(&session, "scan"), json!({"package_id": "PKG-1"})).await.expect(200);
    for (name, body) in
        [("scan", json!({"package_id": "PKG-1"})), ("qc", json!({"passed": true})), ("label", label.clone())]
    {
        let reply = net.post("demo-op-1", &step(&session, name), body).await.expect(409);
        assert_eq!(reply.body["error"]["expected_step"], "validate", "{name}");
    }
    net.post("demo-op-1", &step(&session, "validate"), validate).await.expect(200);
    let reply = net.post("demo-op-1", &step(&session, "label"), label.clone()).await.expect(409);
    assert_eq!(reply.body["error"]["expected_step"], "qc");
    net.post("demo-op-1", &step(&session, "qc"), json!({"passed": true})).await.expect(200);
    let reply = net.post("demo-op-1", &step(&session, "commit"), json!({})).await.expect(409);
    assert_eq!(reply.body["error"]["expected_step"], "label");

    // A supplier session cannot commit before it registers anything.
    let supplier = net.start("demo-sup-1", "supplier").await;
    let reply = net.post("demo-sup-1", &step(&supplier, "commit"), json!({})).await.expect(409);
    assert_eq!(reply.body["error"]["expected_step"], "register_package");
    let reply = net.post("demo-sup-1", &step(&supplier, "scan"), json!({"package_id": "PKG-1"})).await.expect(409);
    assert_eq!(reply.body["error"]["expected_step"], "register_package");
}

#[tokio::test]
async fn a_failed_quality_check_blocks_label_and_commit_until_abort() {
    let net = Net::new();
    net.committed_package("PKG-1").await;
    let session = net.scanned("demo-op-1", "PKG-1").await;
    net.post("demo-op-1", &step(&session, "validate"), json!({"signature": manifest_signature("sup-1", "PKG-1")}))
        .await
        .expect(200);
    let qc = net.post("demo-op-1", &step(&session, "qc"), json!({"passed": false, "issues": ["crushed corner"]})).await;
    assert_eq!(qc.expect(200).data()["next_step"], "abort");
    let label = json!({"destination": "Oslo", "priority": "standard", "courier_id": "c-1"});
    for (name, body) in [("label", label), ("commit", json!({}))] {
        let reply = net.post("demo-op-1", &step(&session, name), body).await.expect(409);
        assert_eq!(reply.body["error"]["expected_step"], "abort", "{name}");
    }
    net.post("demo-op-1", &step(&session, "abort"), json!({})).await.expect(200);
}

#[tokio::test]
async fn a_package_cannot_be_claimed_by_two_open_sessions_and_abort_releases_it() {
    let net = Net::new();
    net.committed_package("PKG-1").await;
    let first = net.scanned("demo-op-1", "PKG-1").await;
    let second = net.start("demo-op-2", "warehouse").await;
    let reply = net.post("demo-op-2", &step(&second, "scan"), json!({"package_id": "PKG-1"})).await.expect(409);
    assert_eq!(reply.error_code(), "package_claimed");
    assert_eq!(reply.body["error"]["claimed_by"], first.as_str());

    net.post("demo-op-1", &step(&first, "abort"), json!({})).await.expect(200);
    net.post("demo-op-2", &step(&second, "scan"), json!({"package_id": "PKG-1"})).await.expect(200);
    let package = net.get("demo-op-1", "/v1/packages/PKG-1").await.expect(200);
    assert_eq!(package.data()["claimed_by"], second.as_str());
}

#[tokio::test]
async fn packages_not_committed_on_l1_cannot_be_scanned() {
    let net = Net::new();
    let supplier = net.start("demo-sup-1", "supplier").await;
    net.post("demo-sup-1", &step(&supplier, "register_package"), register_body("sup-1", "PKG-9")).await.expect(201);
    let warehouse = net.start("demo-op-1", "warehouse").await;
    let reply = net.post("demo-op-1", &step(&warehouse, "scan"), json!({"package_id": "PKG-9"})).await.expect(409);
    assert_eq!(reply.error_code(), "package_not_committed");
    let reply = net.post("demo-op-1", &step(&warehouse, "scan"), json!({"package_id": "NOPE"})).await.expect(404);
    assert_eq!(reply.error_code(), "not_found");
}

#[tokio::test]
async fn a_committed_or_aborted_session_takes_no_further_ops() {
    let net = Net::new();
    let supplier = net.start("demo-sup-1", "supplier").await;
    net.post("demo-sup-1", &step(&supplier, "register_package"), register_body("sup-1", "PKG-1")).await.expect(201);
    net.post("demo-sup-1", &step(&supplier, "commit"), json!({})).await.expect(200);
    for (name, body) in
        [("register_package", register_body("sup-1", "PKG-2")), ("commit", json!({})), ("abort", json!({}))]
    {
        let reply = net.post("demo-sup-1", &step(&supplier, name), body).await.expect(409);
        assert_eq!(reply.error_code(), "session_closed", "{name}");
        assert_eq!(reply.body["error"]["status"], "committed");
    }
    let aborted = net.start("demo-sup-1", "supplier").await;
    net.post("demo-sup-1", &step(&aborted, "abort"), json!({})).await.expect(200);
    let reply = net.post("demo-sup-1", &step(&aborted, "register_package"), register_body("sup-1", "PKG-3")).await;
    assert_eq!(reply.expect(409).body["error"]["status"], "aborted");
}

#[tokio::test]
async fn aborting_a_supplier_session_withdraws_its_pending_packages() {
    let net = Net::new();
    let session = net.start("demo-sup-1", "supplier").await;
    net.post("demo-sup-1", &step(&session, "register_package"), register_body("sup-1", "PKG-1")).await.expect(201);
    net.post("demo-sup-1", &step(&session, "abort"), json!({})).await.expect(200);
    net.get("demo-sup-1", "/v1/packages/PKG-1").await.expect(404);
    // The id is free again.
    net.committed_package("PKG-1").await;
}

#[tokio::test]
async fn a_tampered_manifest_a_wrong_key_or_a_malformed_signature_is_refused() {
    let net = Net::new();
    let session = net.start("demo-sup-1", "supplier").await;
    let path = step(&session, "register_package");

    let mut tampered = register_body("sup-1", "PKG-1");
    tampered["items"][0]["qty"] = json!(40);
    let reply = net.post("demo-sup-1", &path, tampered).await.expect(422);
    assert_eq!(reply.error_code(), "invalid_signature");

    let signed_by_other_supplier = json!({
        "package_id": "PKG-1",
        "items": common::items(),
        "signature": bftws_supply_chain::manifest::sign(
            &bftws_supply_chain::demo::supplier_key("sup-2"), "PKG-1", "sup-1", &common::items()),
    });
    let reply = net.post("demo-sup-1", &path, signed_by_other_supplier).await.expect(422);
    assert_eq!(reply.error_code(), "invalid_signature");

    for (bad, why) in [
        ("zz".repeat(64), "not lowercase hex"),
        ("AB".repeat(64), "not lowercase hex"),
        ("ab".repeat(10), "must be 64 bytes"),
    ] {
        let mut body = register_body("sup-1", "PKG-1");
        body["signature"] = json!(bad);
        let reply = net.post("demo-sup-1", &path, body).await.expect(400);
        assert_eq!(reply.body["error"]["field"], "signature");
        assert!(reply.body["error"]["message"].as_str().unwrap().contains(why), "{}", reply.body);
    }
    // Nothing of the refused attempts was recorded.
    net.get("demo-sup-1", "/v1/packages/PKG-1").await.expect(404);

    // At the warehouse, a signature that is not the supplier's over the registered manifest.
    net.committed_package("PKG-2").await;
    let warehouse = net.scanned("demo-op-1", "PKG-2").await;
    let wrong = manifest_signature("sup-1", "PKG-OTHER");
    let reply = net.post("demo-op-1", &step(&warehouse, "validate"), json!({"signature": wrong})).await.expect(422);
    assert_eq!(reply.error_code(), "invalid_signature");
    let reply = net.post("demo-op-1", &step(&warehouse, "validate"), json!({"signature": "12"})).await.expect(400);
    assert_eq!(reply.body["error"]["field"], "signature");
}

#[tokio::test]
async fn a_package_id_cannot_be_registered_twice() {
    let net = Net::new();
    net.committed_package("PKG-1").await;
    let session = net.start("demo-sup-1", "supplier").await;
    let reply = net.post("demo-sup-1", &step(&session, "register_package"), register_body("sup-1", "PKG-1")).await;
    assert_eq!(reply.expect(409).error_code(), "package_exists");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let net = Net::new();
    for token in [None, Some("not-a-token")] {
        let reply = net.call("POST", "/v1/sessions", token, Some(json!({"kind": "supplier"}))).await.expect(401);
        assert_eq!(reply.error_code(), "unauthenticated");
        net.call("GET", "/v1/packages/PKG-1", token, None).await.expect(401);
    }
    let reply = net
        .raw(
            axum::http::Request::builder()
                .method("GET")
                .uri("/v1/sessions")
                .header("authorization", "Basic abc")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    reply.expect(401);
}

#[tokio::test]
async fn the_wrong_role_or_not_the_owner_is_403() {
    let net = Net::new();
    for (token, kind) in [("demo-op-1", "supplier"), ("demo-sup-1", "warehouse"), ("demo-auditor", "warehouse")] {
        let reply = net.post(token, "/v1/sessions", json!({"kind": kind})).await.expect(403);
        assert_eq!(reply.error_code(), "forbidden");
    }
    net.committed_package("PKG-1").await;
    let session = net.start("demo-op-1", "warehouse").await;
    let reply = net.post("demo-op-2", &step(&session, "scan"), json!({"package_id": "PKG-1"})).await.expect(403);
    assert_eq!(reply.error_code(), "forbidden");
    net.post("demo-op-2", &step(&session, "abort"), json!({})).await.expect(403);
    net.get("demo-op-2", &format!("/v1/sessions/{session}")).await.expect(403);
    net.get("demo-auditor", &format!("/v1/sessions/{session}")).await.expect(200);
    net.get("demo-op-1", &format!("/v1/sessions/{session}")).await.expect(200);
}

#[tokio::test]
async fn session_lists_show_your_own_sessions_or_all_for_auditors() {
    let net = Net::new();
    let mine = net.start("demo-op-1", "warehouse").await;
    let theirs = net.start("demo-op-2", "warehouse").await;
    let list = net.get("demo-op-1", "/v1/sessions").await.expect(200);
    let ids: Vec<&str> = list.data().as_array().unwrap().iter().map(|s| s["session_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![mine.as_str()]);
    let all = net.get("demo-auditor", "/v1/sessions").await.expect(200);
    let ids: Vec<&str> = all.data().as_array().unwrap().iter().map(|s| s["session_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&mine.as_str()) && ids.contains(&theirs.as_str()));
}

#[tokio::test]
async fn the_internal_commit_record_route_is_not_reachable_from_http() {
    let net = Net::new();
    let session = net.start("demo-sup-1", "supplier").await;
    let reply = net
        .post(
            "demo-sup-1",
            &step(&session, "commit_recorded"),
            json!({"committed": true, "receipt": null, "reason": null}),
        )
        .await
        .expect(404);
    assert_eq!(reply.error_code(), "not_found");
}

/// Direct-L1 sessions (each op its own L1 transaction) and two-layer sessions share one L1
/// ledger with one set of rules: a package registered directly on L1 cannot be registered again
/// by a bundle, and the package a bundle registered cannot be registered directly.
#[tokio::test]
async fn direct_l1_and_two_layer_sessions_cannot_contradict_each_other_on_l1() {
    use std::{sync::Arc, time::Duration};

    use bftws_framework::{
        metrics::Metrics,
        origin::{Origin, WriteError},
        registry::{Actor, Layer, Role},
    };
    let net = Net::new();
    let direct = Origin::new(
        "l1-0",
        Layer::L1,
        bftws_supply_chain::demo::node_key("l1-0"),
        net.network.l1.app().registry().clone(),
        net.network.l1.clone() as Arc<dyn Chain>,
        Duration::from_secs(5),
        Arc::new(Metrics::new()),
    );
    let supplier = Actor { id: "sup-1".into(), role: Role::new("supplier") };
    // A direct-L1 supplier session registers PKG-D and commits: final on L1 at once.
    let session = direct.write(&supplier, "POST", "/v1/sessions", json!({"kind": "supplier"})).await.unwrap();
    let session = session.session_id.unwrap();
    let register = |id: &str| register_body("sup-1", id);
    direct.write(&supplier, "POST", &step(&session, "register_package"), register("PKG-D")).await.unwrap();
    direct.write(&supplier, "POST", &step(&session, "commit"), json!({})).await.unwrap();

    // A two-layer session registers the same package on L2 (which knows nothing of it) and
    // commits: L1 re-executes the bundle against the one ledger and refuses it.
    let on_l2 = net.start("demo-sup-1", "supplier").await;
    net.post("demo-sup-1", &step(&on_l2, "register_package"), register("PKG-D")).await.expect(201);
    let refused = net.post("demo-sup-1", &step(&on_l2, "commit"), json!({})).await.expect(422);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("package_exists"), "{}", refused.body);
    let read = net.get("demo-sup-1", &format!("/v1/sessions/{on_l2}")).await.expect(200);
    assert_eq!(read.data()["status"], "rejected");

    // The other way round: a package a bundle registered cannot be registered directly.
    net.committed_package("PKG-B").await;
    let second = direct.write(&supplier, "POST", "/v1/sessions", json!({"kind": "supplier"})).await.unwrap();
    let second = second.session_id.unwrap();
    match direct.write(&supplier, "POST", &step(&second, "register_package"), register("PKG-B")).await {
        Err(WriteError::Refused(err)) => assert_eq!(err.code, "package_exists"),
        other => panic!("expected package_exists, got {other:?}"),
    }
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_and_its_reads_answer() {
    let net = Net::new();
    let (status, headers, page) = net.get_text("/").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(page.contains("/console/app.js"), "the page loads its script");
    let (status, headers, script) = net.get_text("/console/app.js").await;
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "text/javascript; charset=utf-8"));
    assert!(script.contains("/v1/network"));
    assert_eq!(net.get_text("/console/style.css").await.0, 200);
    assert_eq!(net.call("GET", "/console/nothing.js", None, None).await.expect(404).error_code(), "not_found");

    // Who a token speaks for; no token, no answer.
    let me = net.get("demo-op-1", "/v1/me").await.expect(200);
    assert_eq!(me.data(), &json!({"id": "op-1", "role": "operator"}));
    net.call("GET", "/v1/me", None, None).await.expect(401);
    net.call("GET", "/v1/network", None, None).await.expect(401);

    // The network report after one committed session and one left open.
    net.committed_package("PKG-NET").await;
    net.start("demo-op-1", "warehouse").await;
    let report = net.get("demo-auditor", "/v1/network").await.expect(200);
    let data = report.data();
    assert_eq!(data["node"]["layer"], "l2");
    assert_eq!(data["sessions"], json!({"committed": 1, "open": 1}));
    assert_eq!(data["latency"]["window_seconds"], 300);
    assert_eq!(data["latency"]["l2_op"]["count"], 5, "two starts, register, the commit op and its record");
    assert_eq!(data["latency"]["l1_commit"]["count"], 1);
    assert!(data["latency"]["l1_commit"]["p99_ms"].as_f64().unwrap() > 0.0);
    assert!(data["l1"]["height"].as_u64().unwrap() >= 1, "an L2 node reports its L1: {data}");
    assert_eq!(data["l1"]["chain_id"], net.network.l1.chain_id());
    assert_eq!(data["committing"], json!([]));
}

#[tokio::test]
async fn replaced_tokens_take_effect_on_the_next_request() {
    use bftws_framework::auth::{Authenticator, TokenEntry, TokenFile};
    let net = Net::new();
    net.get("demo-op-1", "/v1/me").await.expect(200);
    let operator =
        bftws_framework::registry::Actor { id: "op-2".into(), role: bftws_framework::registry::Role::new("operator") };
    let file = TokenFile { tokens: vec![TokenEntry::for_token("rotated-token", operator)] };
    let roles = bftws_supply_chain::registry().service().roles();
    net.network.api.replace_tokens(Authenticator::new(&file, roles).unwrap());
    net.get("demo-op-1", "/v1/me").await.expect(401);
    let me = net.get("rotated-token", "/v1/me").await.expect(200);
    assert_eq!(me.data()["id"], "op-2");
}
