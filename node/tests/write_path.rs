//! The client-facing write path: idempotent retries, request ids, error envelopes from every
//! layer, and what package reads show to whom.

mod common;

use axum::{body::Body, http::Request};
use common::{step, Net};
use serde_json::json;

fn post_with(path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut builder = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", "Bearer demo-op-1")
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_gets_the_first_answer_and_no_second_session() {
    let net = Net::new();
    let key = [("idempotency-key", "start-1")];
    let first = net.raw(post_with("/v1/sessions", &key, r#"{"kind":"warehouse"}"#)).await.expect(201);
    let again = net.raw(post_with("/v1/sessions", &key, r#"{"kind":"warehouse"}"#)).await.expect(201);
    assert_eq!(first.body["data"], again.body["data"]);
    assert_eq!(first.body["meta"]["tx_hash"], again.body["meta"]["tx_hash"]);
    assert_eq!(first.body["meta"]["height"], again.body["meta"]["height"]);
    let listed = net.get("demo-op-1", "/v1/sessions").await.expect(200);
    assert_eq!(listed.body["meta"]["count"], 1, "one session, not two: {}", listed.body);

    // The same key for another request is refused, and creates nothing.
    let other = net.raw(post_with("/v1/sessions", &key, r#"{"kind":"supplier"}"#)).await.expect(422);
    assert_eq!(other.error_code(), "idempotency_key_reused");
    // Another actor's same key is another request.
    let mut theirs = post_with("/v1/sessions", &key, r#"{"kind":"warehouse"}"#);
    theirs.headers_mut().insert("authorization", "Bearer demo-op-2".parse().unwrap());
    let theirs = net.raw(theirs).await.expect(201);
    assert_ne!(theirs.body["data"]["session_id"], first.body["data"]["session_id"]);

    // Steps are idempotent the same way.
    net.committed_package("PKG-1").await;
    let session = first.body["data"]["session_id"].as_str().unwrap().to_owned();
    let scan_key = [("idempotency-key", "scan-1")];
    let scan = r#"{"package_id":"PKG-1"}"#;
    let a = net.raw(post_with(&step(&session, "scan"), &scan_key, scan)).await.expect(200);
    let b = net.raw(post_with(&step(&session, "scan"), &scan_key, scan)).await.expect(200);
    assert_eq!(a.body["data"], b.body["data"]);
    let read = net.get("demo-op-1", &format!("/v1/sessions/{session}")).await.expect(200);
    assert_eq!(read.body["meta"]["expected_step"], "validate", "the scan applied once: {}", read.body);

    let bad = net.raw(post_with("/v1/sessions", &[("idempotency-key", "has space")], "{}")).await.expect(400);
    assert_eq!(bad.body["error"]["field"], "idempotency-key");
}

#[tokio::test]
async fn every_response_carries_a_request_id_echoing_the_clients() {
    let net = Net::new();
    let request = Request::builder().uri("/healthz").header("x-request-id", "client-42").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(axum_app(&net), request).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-42");
    let request = Request::builder().uri("/nowhere").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(axum_app(&net), request).await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-request-id"].len(), 24, "a generated id");
}

fn axum_app(net: &Net) -> axum::Router {
    bftws_framework::http::app(net.network.api.clone())
}

/// An L1 node's API over the network's L1 chain, with `budget` for refused bundles.
fn l1_api(net: &Net, budget: bftws_framework::http::RefusalBudget) -> bftws_framework::http::ApiState {
    use std::{sync::Arc, time::Duration};

    use bftws_framework::{
        auth::Authenticator, chain::Chain, metrics::Metrics, origin::Origin, registry::Layer, registry::Service,
    };
    use bftws_supply_chain::{demo, SupplyChain};
    let l1 = Arc::new(Origin::new(
        "l1-0",
        Layer::L1,
        demo::node_key("l1-0"),
        net.network.origin.registry().clone(),
        net.network.l1.clone() as Arc<dyn Chain>,
        Duration::from_secs(5),
        Arc::new(Metrics::new()),
    ));
    let auth = Authenticator::new(&demo::token_file(), SupplyChain.roles()).unwrap();
    bftws_framework::http::ApiState::with_refusal_budget(l1, None, auth, budget)
}

#[tokio::test]
async fn a_body_over_the_limit_is_the_envelope_on_every_route() {
    use tower::ServiceExt;

    let net = Net::new();
    let big = format!("{{\"kind\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let reply = net.raw(post_with("/v1/sessions", &[], &big)).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.error_code(), "payload_too_large", "{}", reply.body);
    // The bundle route of an L1 node (an L2 node answers 404 without reading the body).
    let l1 = bftws_framework::http::app(l1_api(&net, Default::default()));
    let response = l1.oneshot(post_with("/v1/l1/bundles", &[], &big)).await.unwrap();
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let reply = net.raw(post_with("/v1/l1/bundles", &[], &big)).await;
    assert_eq!((reply.status, reply.error_code()), (404, "not_found"), "{}", reply.body);
}

#[tokio::test]
async fn only_the_supplier_admins_and_auditors_read_a_manifest_signature() {
    let net = Net::new();
    net.committed_package("PKG-1").await;
    for (token, shown) in [
        ("demo-sup-1", true),
        ("demo-admin", true),
        ("demo-auditor", true),
        ("demo-op-1", false),
        ("demo-sup-2", false),
    ] {
        let package = net.get(token, "/v1/packages/PKG-1").await.expect(200);
        assert_eq!(package.body["data"].get("signature").is_some(), shown, "{token}: {}", package.body);
        assert_eq!(package.body["data"]["items"], json!(common::items()));
    }
}

/// A node whose CometBFT is not connected (or is catching up) answers writes and `/readyz` with
/// `503` and `Retry-After`, never a 5xx of its own or a refusal from stale state.
#[tokio::test]
async fn a_node_that_is_not_ready_answers_503_with_retry_after() {
    use std::{sync::Arc, time::Duration};

    use bftws_framework::{
        abci::AbciStatus,
        auth::Authenticator,
        cometbft::{CometChain, CometRpc, Waiters},
        metrics::Metrics,
        origin::Origin,
        registry::Layer,
        registry::Service,
        store::Store,
    };

    use bftws_supply_chain::{self as supply_chain, demo, SupplyChain};
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let chain = Arc::new(CometChain::new(
        "l2",
        Arc::new(AbciStatus::default()),
        CometRpc::new(format!("http://{gone}"), Duration::from_millis(200)),
        Arc::new(Waiters::default()),
        Arc::new(Store::in_memory().unwrap()),
    ));
    let origin = Arc::new(Origin::new(
        "l2-0",
        Layer::L2,
        demo::node_key("l2-0"),
        Arc::new(supply_chain::registry()),
        chain,
        Duration::from_secs(1),
        Arc::new(Metrics::new()),
    ));
    let api = bftws_framework::http::ApiState::new(
        origin,
        None,
        Authenticator::new(&demo::token_file(), SupplyChain.roles()).unwrap(),
    );
    let app = bftws_framework::http::app(api);
    for (path, request) in [
        ("post", post_with("/v1/sessions", &[], r#"{"kind":"warehouse"}"#)),
        ("readyz", Request::builder().uri("/readyz").body(Body::empty()).unwrap()),
    ] {
        let response = tower::ServiceExt::oneshot(app.clone(), request).await.unwrap();
        let (status, retry_after) = (response.status(), response.headers().contains_key("retry-after"));
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        assert_eq!(status, 503, "{}: {}", path, String::from_utf8_lossy(&body));
        assert!(retry_after);
    }
}

/// Slow or greedy clients cannot hold a node: a client that never finishes its headers, or
/// sits idle, is disconnected, and connections beyond the limit are closed at once while the
/// node keeps answering others.
#[tokio::test]
async fn listeners_drop_slow_idle_and_excess_connections() {
    use std::time::{Duration, Instant};

    use bftws_framework::http::{serve_with, ListenerLimits};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let net = Net::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ListenerLimits {
        header_read: Duration::from_millis(300),
        body_read: Duration::from_millis(300),
        idle: Duration::from_millis(600),
        max_age: Duration::from_secs(60),
        max_connections: 2,
    };
    tokio::spawn(serve_with(listener, net.network.api.clone(), limits, std::future::pending()));
    /// Reads until the server closes the connection; how long that took.
    async fn closed_after(socket: &mut tokio::net::TcpStream) -> Duration {
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                Ok(Ok(_)) => {}
                Err(_) => panic!("the server kept the connection open"),
            }
        }
    }
    // Headers that never end.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(closed_after(&mut slow).await < Duration::from_secs(3));
    // A connection that never sends anything.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_after(&mut idle).await < Duration::from_secs(3));

    // Two connections held open; a third is closed at accept.
    let mut held_open = Vec::new();
    for _ in 0..2 {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        assert!(socket.read(&mut buf).await.unwrap() > 0, "a served connection answers");
        held_open.push(socket);
    }
    let mut excess = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = excess.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(closed_after(&mut excess).await < Duration::from_secs(1), "the connection beyond the limit was served");
    drop(held_open);
    // Once those are gone, the node serves again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = tokio::net::TcpStream::connect(addr).await.unwrap();
    again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    again.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// A source whose bundles keep being refused spends its budget and then gets `429` with
/// `Retry-After` before its body is read; another source, like an honest committer, is
/// untouched.
#[tokio::test]
async fn a_source_of_refused_bundles_is_limited_before_its_body_is_read_and_others_are_not() {
    use std::time::Duration;

    use bftws_framework::http::{serve_with, ListenerLimits, RefusalBudget};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let net = Net::new();
    let budget = RefusalBudget { burst: 3, per_second: 0.2, max_sources: 64 };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api = l1_api(&net, budget);
    tokio::spawn(serve_with(listener, api, ListenerLimits::default(), std::future::pending()));

    /// One request from `source`; the reply's head (status line and headers).
    async fn post_from(source: &str, addr: std::net::SocketAddr, head_only: bool) -> String {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let body = r#"{"not":"a bundle"}"#;
        let request = if head_only {
            // Announces a large body and never sends it: only a refusal before the body
            // answers this.
            "POST /v1/l1/bundles HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 900000\r\n\r\n"
                .to_owned()
        } else {
            format!(
                "POST /v1/l1/bundles HTTP/1.1\r\nHost: x\r\nConnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut reply))
            .await
            .expect("the node answers at once")
            .unwrap();
        String::from_utf8_lossy(&reply[..n]).into_owned()
    }
    for _ in 0..3 {
        let reply = post_from("127.0.0.2", addr, false).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    }
    let limited = post_from("127.0.0.2", addr, true).await;
    assert!(limited.starts_with("HTTP/1.1 429"), "{limited}");
    assert!(limited.to_ascii_lowercase().contains("retry-after: 5"), "{limited}");
    assert!(limited.contains(r#""code":"too_many_refusals""#), "{limited}");
    // Another address keeps its own budget.
    let other = post_from("127.0.0.1", addr, false).await;
    assert!(other.starts_with("HTTP/1.1 400"), "{other}");
}
