//! A client that drives a service's workflow over HTTP, timing every step: the supply chain's
//! demo run of `make run`, and the sessions of the benchmark's workloads (supply chain, escrow).

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use bftws_framework::http_client::{HttpClientError, JsonClient};

use bftws_supply_chain::{demo, model::Item};

/// The items of every package the workflow registers (the warehouse side re-signs the same
/// manifest as the supplier presented it).
pub fn package_items() -> Vec<Item> {
    vec![Item { sku: "SKU-100".into(), qty: 4 }, Item { sku: "SKU-200".into(), qty: 1 }]
}

/// One timed HTTP call of the workflow (the paper's CSV columns).
#[derive(Debug, Clone, Serialize)]
pub struct StepTiming {
    pub step: &'static str,
    pub method: &'static str,
    pub endpoint: String,
    pub layer: String,
    pub latency_ms: f64,
    pub block_height: u64,
    pub status: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Http(#[from] HttpClientError),
    #[error("{step}: expected HTTP {expected}, got {status}: {body}")]
    Status { step: &'static str, expected: u16, status: u16, body: String },
}

/// What a finished session produced.
#[derive(Debug, Clone)]
pub struct SessionRun {
    pub session_id: String,
    pub steps: Vec<StepTiming>,
    pub receipt: Value,
}

pub struct WorkflowClient {
    client: JsonClient,
    api: String,
    /// Pause between steps (the paper waits 100 ms).
    pub pause: Duration,
}

impl WorkflowClient {
    pub fn new(api: impl Into<String>, timeout: Duration) -> Self {
        Self {
            client: JsonClient::new(timeout),
            api: api.into().trim_end_matches('/').to_owned(),
            pause: Duration::ZERO,
        }
    }

    async fn step(
        &self,
        steps: &mut Vec<StepTiming>,
        step: &'static str,
        token: &str,
        path: &str,
        body: Value,
        expected: u16,
    ) -> Result<Value, WorkflowError> {
        if !steps.is_empty() && !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        let reply = self.client.post(&format!("{}{path}", self.api), Some(token), &body).await?;
        if reply.status != expected {
            return Err(WorkflowError::Status { step, expected, status: reply.status, body: reply.body.to_string() });
        }
        let meta = &reply.body["meta"];
        let receipt_height = reply.body["data"]["receipt"]["height"].as_u64();
        steps.push(StepTiming {
            step,
            method: "POST",
            endpoint: path.to_owned(),
            layer: if step == "commit" { "l1".into() } else { meta["layer"].as_str().unwrap_or("").to_owned() },
            latency_ms: reply.elapsed.as_secs_f64() * 1e3,
            block_height: receipt_height.or(meta["height"].as_u64()).unwrap_or(0),
            status: reply.status,
        });
        Ok(reply.body)
    }

    /// Starts a session of `kind`; returns its id.
    async fn start(&self, steps: &mut Vec<StepTiming>, token: &str, kind: &str) -> Result<String, WorkflowError> {
        let started = self.step(steps, "start_session", token, "/v1/sessions", json!({"kind": kind}), 201).await?;
        Ok(started["data"]["session_id"].as_str().unwrap_or_default().to_owned())
    }

    /// A supplier session registering one signed package (demo key) and committing it.
    pub async fn supplier_session(
        &self,
        token: &str,
        supplier_id: &str,
        package_id: &str,
    ) -> Result<SessionRun, WorkflowError> {
        let mut steps = Vec::new();
        let id = self.start(&mut steps, token, "supplier").await?;
        let items = package_items();
        let signature = demo::sign_manifest(supplier_id, package_id, &items);
        let body = json!({"package_id": package_id, "items": items, "signature": signature});
        self.step(&mut steps, "create_package", token, &format!("/v1/sessions/{id}/register_package"), body, 201)
            .await?;
        let committed =
            self.step(&mut steps, "commit", token, &format!("/v1/sessions/{id}/commit"), json!({}), 200).await?;
        Ok(SessionRun { session_id: id, steps, receipt: committed["data"]["receipt"].clone() })
    }

    /// A warehouse session: start, scan, validate, qc, label, commit.
    pub async fn warehouse_session(
        &self,
        token: &str,
        supplier_id: &str,
        package_id: &str,
    ) -> Result<SessionRun, WorkflowError> {
        let mut steps = Vec::new();
        let id = self.start(&mut steps, token, "warehouse").await?;
        let path = |step: &str| format!("/v1/sessions/{id}/{step}");
        let items = package_items();
        let signature = demo::sign_manifest(supplier_id, package_id, &items);
        self.step(&mut steps, "scan_package", token, &path("scan"), json!({"package_id": package_id}), 200).await?;
        self.step(&mut steps, "validate_package", token, &path("validate"), json!({"signature": signature}), 200)
            .await?;
        self.step(&mut steps, "quality_check", token, &path("qc"), json!({"passed": true, "issues": []}), 200).await?;
        let label = json!({"destination": "Oslo DC", "priority": "express", "courier_id": "c-1"});
        self.step(&mut steps, "label_package", token, &path("label"), label, 200).await?;
        let committed = self.step(&mut steps, "commit", token, &path("commit"), json!({}), 200).await?;
        Ok(SessionRun { session_id: id, steps, receipt: committed["data"]["receipt"].clone() })
    }
}

/// The escrow service's sessions (demo tokens `demo-s-1`, `demo-b-1`, …).
impl WorkflowClient {
    /// A seller session listing one item at `price` cents, committed: the listing opens.
    pub async fn seller_session(&self, token: &str, listing_id: &str, price: u64) -> Result<SessionRun, WorkflowError> {
        let mut steps = Vec::new();
        let id = self.start(&mut steps, token, "seller").await?;
        let body = json!({"listing_id": listing_id, "title": format!("item {listing_id}"), "price": price});
        self.step(&mut steps, "list_item", token, &format!("/v1/sessions/{id}/list_item"), body, 201).await?;
        let committed =
            self.step(&mut steps, "commit", token, &format!("/v1/sessions/{id}/commit"), json!({}), 200).await?;
        Ok(SessionRun { session_id: id, steps, receipt: committed["data"]["receipt"].clone() })
    }

    /// A buyer session: start, reserve, pay, confirm, commit.
    pub async fn buyer_session(&self, token: &str, listing_id: &str) -> Result<SessionRun, WorkflowError> {
        let mut steps = Vec::new();
        let id = self.start(&mut steps, token, "buyer").await?;
        let path = |step: &str| format!("/v1/sessions/{id}/{step}");
        self.step(&mut steps, "reserve", token, &path("reserve"), json!({"listing_id": listing_id}), 200).await?;
        self.step(&mut steps, "pay", token, &path("pay"), json!({}), 200).await?;
        self.step(&mut steps, "confirm", token, &path("confirm"), json!({}), 200).await?;
        let committed = self.step(&mut steps, "commit", token, &path("commit"), json!({}), 200).await?;
        Ok(SessionRun { session_id: id, steps, receipt: committed["data"]["receipt"].clone() })
    }
}
