//! Bad HTTP input gets a 4xx with the error envelope, never a 5xx or a panic.

mod common;

use axum::{body::Body, http::Request};
use common::{step, Net};
use serde_json::json;

fn post_raw(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::builder().method("POST").uri(path).header("authorization", "Bearer demo-op-1");
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(body.into()).unwrap()
}

#[tokio::test]
async fn malformed_json_is_400_with_the_envelope() {
    let net = Net::new();
    for body in ["{", "{\"kind\": }", "not json", "", "[1,2]", "\"text\"", "null"] {
        let reply = net.raw(post_raw("/v1/sessions", Some("application/json"), body)).await;
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
        assert!(reply.body["error"]["code"].is_string(), "{body:?}: {}", reply.body);
        assert!(reply.body["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn missing_unknown_or_wrongly_typed_fields_name_the_field() {
    let net = Net::new();
    let cases = [
        (json!({}), "kind"),
        (json!({"kind": 7}), "kind"),
        (json!({"kind": "pirate"}), "kind"),
        (json!({"kind": "warehouse", "extra": 1}), "extra"),
    ];
    for (body, field) in cases {
        let reply = net.post("demo-op-1", "/v1/sessions", body.clone()).await.expect(400);
        assert_eq!(reply.body["error"]["field"], field, "{body}: {}", reply.body);
        assert_eq!(reply.error_code(), "invalid_request");
    }
    net.committed_package("PKG-1").await;
    let session = net.start("demo-op-1", "warehouse").await;
    let cases = [
        (json!({}), "package_id"),
        (json!({"package_id": 12}), "package_id"),
        (json!({"package_id": "bad/id"}), "package_id"),
        (json!({"package_id": ""}), "package_id"),
    ];
    for (body, field) in cases {
        let reply = net.post("demo-op-1", &step(&session, "scan"), body.clone()).await.expect(400);
        assert_eq!(reply.body["error"]["field"], field, "{body}: {}", reply.body);
    }
    let supplier = net.start("demo-sup-1", "supplier").await;
    let mut body = common::register_body("sup-1", "PKG-2");
    body["items"][1]["qty"] = json!("three");
    let reply = net.post("demo-sup-1", &step(&supplier, "register_package"), body).await.expect(400);
    assert_eq!(reply.body["error"]["field"], "items[1].qty");
    let mut body = common::register_body("sup-1", "PKG-2");
    body["items"] = json!([]);
    let reply = net.post("demo-sup-1", &step(&supplier, "register_package"), body).await.expect(400);
    assert_eq!(reply.body["error"]["field"], "items");
}

#[tokio::test]
async fn oversized_bodies_are_413_before_any_handler_runs() {
    let net = Net::new();
    let huge =
        format!("{{\"kind\": \"warehouse\", \"pad\": \"{}\"}}", "x".repeat(bftws_framework::http::MAX_BODY_BYTES + 1));
    let reply = net.raw(post_raw("/v1/sessions", Some("application/json"), huge)).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.error_code(), "payload_too_large");
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_415() {
    let net = Net::new();
    let reply = net.raw(post_raw("/v1/sessions", None, "{\"kind\":\"warehouse\"}")).await;
    assert_eq!(reply.status, 415);
    assert_eq!(reply.error_code(), "unsupported_media_type");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let net = Net::new();
    let reply = net.get("demo-op-1", "/v1/nothing-here").await.expect(404);
    assert_eq!(reply.error_code(), "not_found");
    let reply = net.post("demo-op-1", "/v1/sessions/ses-1/teleport", json!({})).await.expect(404);
    assert_eq!(reply.error_code(), "not_found");
    let reply = net.call("DELETE", "/v1/sessions", Some("demo-op-1"), None).await.expect(405);
    assert_eq!(reply.error_code(), "method_not_allowed");
    let reply = net.get("demo-op-1", "/v1/sessions/bad%2Fid").await.expect(400);
    assert_eq!(reply.error_code(), "invalid_request");
    net.get("demo-op-1", "/v1/sessions/ses-unknown").await.expect(404);
    let reply = net.post("demo-op-1", "/v1/sessions/ses-unknown/scan", json!({"package_id": "P"})).await.expect(404);
    assert_eq!(reply.body["error"]["resource"], "session");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let net = Net::new();
    let reply = net.call("GET", "/openapi.json", None, None).await.expect(200);
    let paths = reply.body["paths"].as_object().unwrap();
    for path in [
        "/v1/sessions",
        "/v1/sessions/{id}",
        "/v1/sessions/{id}/register_package",
        "/v1/sessions/{id}/scan",
        "/v1/sessions/{id}/validate",
        "/v1/sessions/{id}/qc",
        "/v1/sessions/{id}/label",
        "/v1/sessions/{id}/commit",
        "/v1/sessions/{id}/abort",
        "/v1/packages/{id}",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    assert!(!paths.contains_key("/v1/sessions/{id}/commit_recorded"));
}

#[tokio::test]
async fn metrics_count_writes_and_requests_by_route_template() {
    let net = Net::new();
    let session = net.start("demo-op-1", "warehouse").await;
    net.post("demo-op-1", &step(&session, "scan"), json!({"package_id": "NOPE"})).await.expect(404);
    let request = Request::builder().uri("/metrics").body(Body::empty()).unwrap();
    let response =
        tower::ServiceExt::oneshot(bftws_framework::http::app(net.network.api.clone()), request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for series in [
        "bftws_ops_total{op=\"session.start\",result=\"ok\"} 1",
        "bftws_ops_total{op=\"warehouse.scan\",result=\"refused\"} 1",
        "bftws_sessions{status=\"open\"} 1",
        "route=\"/v1/sessions/{id}/scan\",status=\"404\"",
    ] {
        assert!(text.contains(series), "missing {series}:\n{text}");
    }
    assert!(!text.contains(&session), "raw paths never become labels");
}
