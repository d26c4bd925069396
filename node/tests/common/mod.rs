//! Test client for the in-process network: requests go through the real router without a socket.

#![allow(dead_code)]

pub(crate) mod devnet;

use axum::{body::Body, http::Request};
use bftws_framework::http;
use bftws_node::local_network::{self, LocalNetwork};
use bftws_supply_chain::{demo, model::Item};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub(crate) struct Net {
    pub(crate) network: LocalNetwork,
    router: axum::Router,
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) retry_after: Option<String>,
}

impl Reply {
    pub(crate) fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub(crate) fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "unexpected reply: {}", self.body);
        self
    }
}

impl Net {
    pub(crate) fn new() -> Self {
        let network = local_network::demo(None).expect("local network");
        let router = http::app(network.api.clone());
        Self { network, router }
    }

    pub(crate) async fn raw(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("router never fails");
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
        };
        Reply { status, body, retry_after }
    }

    /// A GET whose answer is not JSON (the console's files): status, headers and text.
    pub(crate) async fn get_text(&self, path: &str) -> (u16, axum::http::HeaderMap, String) {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = self.router.clone().oneshot(request).await.expect("router never fails");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status.as_u16(), parts.headers, String::from_utf8(bytes.to_vec()).expect("UTF-8 text"))
    }

    pub(crate) async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        self.raw(request.unwrap()).await
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> Reply {
        self.call("GET", path, Some(token), None).await
    }

    /// Starts a session and returns its id.
    pub(crate) async fn start(&self, token: &str, kind: &str) -> String {
        let reply = self.post(token, "/v1/sessions", json!({"kind": kind})).await.expect(201);
        reply.data()["session_id"].as_str().unwrap().to_owned()
    }

    /// Registers and commits a package from `sup-1`, so warehouse sessions can scan it.
    pub(crate) async fn committed_package(&self, package_id: &str) {
        let session = self.start("demo-sup-1", "supplier").await;
        self.post("demo-sup-1", &step(&session, "register_package"), register_body("sup-1", package_id))
            .await
            .expect(201);
        self.post("demo-sup-1", &step(&session, "commit"), json!({})).await.expect(200);
    }

    /// A warehouse session by `token` that has scanned `package_id`.
    pub(crate) async fn scanned(&self, token: &str, package_id: &str) -> String {
        let session = self.start(token, "warehouse").await;
        self.post(token, &step(&session, "scan"), json!({"package_id": package_id})).await.expect(200);
        session
    }
}

pub(crate) fn step(session: &str, name: &str) -> String {
    format!("/v1/sessions/{session}/{name}")
}

pub(crate) fn items() -> Vec<Item> {
    vec![Item { sku: "SKU-100".into(), qty: 4 }, Item { sku: "SKU-200".into(), qty: 1 }]
}

/// A correctly signed registration body for `supplier_id`'s demo key.
pub(crate) fn register_body(supplier_id: &str, package_id: &str) -> Value {
    let items = items();
    let signature = demo::sign_manifest(supplier_id, package_id, &items);
    json!({"package_id": package_id, "items": items, "signature": signature})
}

pub(crate) fn manifest_signature(supplier_id: &str, package_id: &str) -> Value {
    json!(demo::sign_manifest(supplier_id, package_id, &items()))
}
