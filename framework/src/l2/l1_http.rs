//! L1 reached over HTTP: `POST /v1/l1/bundles` on any L1 node, failing over across the list;
//! with L1's genesis as trust anchor, only receipts whose proof of finality verifies are taken.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use serde_json::Value;

use super::committer::{L1Client, L1Error};
use crate::{
    app::{tx::SignedBundle, Receipt, TxCode},
    chain::BoxFuture,
    http_client::JsonClient,
    metrics::Metrics,
    network::ChainStatus,
    proof::{self, Check, SessionProof, TrustedL1, Verified},
};

/// A live L1 node accepts a connection at once; waiting longer only means it (or its host) is
/// gone, and the next node should be tried while the attempt still has time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

pub struct HttpL1Client {
    urls: Vec<String>,
    client: JsonClient,
    /// The node that answered last, moved past a node that failed; tried first next time.
    preferred: AtomicUsize,
    /// With a trust anchor, every receipt must come with a proof that verifies against it.
    verifier: Option<ReceiptVerifier>,
}

/// What a receipt is checked against, and where failures are counted.
struct ReceiptVerifier {
    trusted: TrustedL1,
    metrics: Arc<Metrics>,
}

impl ReceiptVerifier {
    /// Reads and checks a proof an L1 node gave for `session_id`; a failure is counted.
    fn check(&self, proof: &Value, session_id: &str, check: Check) -> Result<Verified, String> {
        let checked = serde_json::from_value::<SessionProof>(proof.clone())
            .map_err(|e| format!("no readable proof: {e}"))
            .and_then(|proof| proof::verify_as(&proof, &self.trusted, session_id, check).map_err(|e| e.to_string()));
        if checked.is_err() {
            self.metrics.receipt_unverified();
        }
        checked
    }
}

impl HttpL1Client {
    /// `urls` are L1 API base URLs like `http://127.0.0.1:8101`, tried in turn within one
    /// commit attempt of `attempt`: a node gets [`CONNECT_TIMEOUT`] to accept and half the
    /// attempt to answer, so a node that is gone or hung leaves time for the next one.
    pub fn new(urls: Vec<String>, attempt: Duration) -> Self {
        let urls = urls.into_iter().map(|u| u.trim_end_matches('/').to_owned()).collect();
        let per_node = attempt / 2;
        let client = JsonClient::with_connect_timeout(per_node, CONNECT_TIMEOUT.min(per_node));
        Self { urls, client, preferred: AtomicUsize::new(0), verifier: None }
    }

    /// Accepts only receipts whose proof of finality verifies against `trusted` (L1's genesis):
    /// a node that answers anything else is logged, counted (`bftws_l1_unverified_receipts`)
    /// and passed over for the next.
    pub fn verifying(mut self, trusted: TrustedL1, metrics: Arc<Metrics>) -> Self {
        self.verifier = Some(ReceiptVerifier { trusted, metrics });
        self
    }

    /// The receipt of a 200 answer, checked against its proof when a trust anchor is set.
    fn accept(&self, bundle: &SignedBundle, body: &Value) -> Result<Receipt, String> {
        let receipt: Receipt =
            serde_json::from_value(body["data"].clone()).map_err(|e| format!("unreadable receipt: {e}"))?;
        let Some(verifier) = &self.verifier else { return Ok(receipt) };
        let verified = verifier.check(&body["proof"], &bundle.bundle.session_id, Check::Inclusion)?;
        let claims = (receipt.height, receipt.tx_hash.as_str(), receipt.bundle_hash.as_str(), receipt.code);
        let proven = (verified.height, verified.tx_hash.as_str(), verified.bundle_hash.as_str(), 0);
        if claims != proven || verified.bundle_hash != bundle.bundle.bundle_hash {
            verifier.metrics.receipt_unverified();
            return Err(format!(
                "the receipt (height {}, tx {}, bundle {}) is not what its proof shows (height {}, tx {}, bundle {}) \
                 for this bundle ({})",
                receipt.height,
                receipt.tx_hash,
                receipt.bundle_hash,
                verified.height,
                verified.tx_hash,
                verified.bundle_hash,
                bundle.bundle.bundle_hash
            ));
        }
        Ok(receipt)
    }

    /// After `index` failed, start the next submission at the node after it (unless another
    /// submission already moved on).
    fn skip_failed(&self, index: usize) {
        let next = (index + 1) % self.urls.len();
        let _ = self.preferred.compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    async fn submit(&self, bundle: &SignedBundle) -> Result<Receipt, L1Error> {
        if self.urls.is_empty() {
            return Err(L1Error::Unavailable("no L1 API endpoints are configured".into()));
        }
        let body = serde_json::to_value(bundle).expect("bundles serialize");
        let start = self.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for offset in 0..self.urls.len() {
            let index = (start + offset) % self.urls.len();
            let query = if self.verifier.is_some() { "?proof=true" } else { "" };
            let url = format!("{}/v1/l1/bundles{query}", self.urls[index]);
            let reply = match self.client.post(&url, None, &body).await {
                Ok(reply) => reply,
                Err(err) => {
                    failures.push(err.to_string());
                    self.skip_failed(index);
                    continue;
                }
            };
            match reply.status {
                200 => match self.accept(bundle, &reply.body) {
                    Ok(receipt) => {
                        self.preferred.store(index, Ordering::Relaxed);
                        return Ok(receipt);
                    }
                    Err(reason) => {
                        // A lying or broken node: its answer is never recorded; another node
                        // gets the bundle (L1 applies it once, and answers again with the
                        // receipt of the first application).
                        tracing::error!(%url, session = %bundle.bundle.session_id, %reason, "L1 receipt did not verify; trying another node");
                        failures.push(format!("{url}: receipt did not verify: {reason}"));
                        self.skip_failed(index);
                    }
                },
                // L1's refusal of the bundle: final.
                422 if reply.body["error"]["code"] == "bundle_rejected" => {
                    let error = &reply.body["error"];
                    let code = error["tx_code"].as_str().and_then(TxCode::from_name).unwrap_or(TxCode::Malformed);
                    let log = error["message"].as_str().unwrap_or("refused").to_owned();
                    return Err(L1Error::Rejected { code, log });
                }
                // This source's refusal budget is spent (a neighbour flooding from the same
                // address, or this node's own refused bundles): another node may take it.
                429 => {
                    tracing::warn!(%url, error = %reply.body["error"], "L1 node limits this source's bundles; trying another");
                    failures.push(format!("{url}: HTTP 429: {}", reply.body["error"]["message"]));
                    self.skip_failed(index);
                }
                // Any other 4xx is not L1's verdict on the bundle but a disagreement about the
                // request itself (a version skew, a bug): never final, retried with backoff.
                status @ 400..=499 => {
                    tracing::error!(%url, status, error = %reply.body["error"], "L1 answered a bundle with an unexpected 4xx; will retry");
                    failures.push(format!("{url}: HTTP {status}: {}", reply.body["error"]["message"]));
                    self.skip_failed(index);
                }
                status => {
                    failures.push(format!("{url}: HTTP {status}: {}", reply.body["error"]["message"]));
                    self.skip_failed(index);
                }
            }
        }
        Err(L1Error::Unavailable(format!("no L1 node committed the bundle: {}", failures.join("; "))))
    }
}

impl HttpL1Client {
    /// A session's proof from the first L1 node that gives one (checked, with a trust anchor, as
    /// the committer checks receipts); L1's own 4xx (unknown session, bad token) is final.
    async fn proof(&self, session_id: &str, bearer: &str) -> Result<(u16, Value), L1Error> {
        let mut failures = Vec::new();
        for base in &self.urls {
            let url = format!("{base}/v1/sessions/{session_id}/proof");
            let reply = match self.client.get(&url, Some(bearer)).await {
                Ok(reply) => reply,
                Err(err) => {
                    failures.push(err.to_string());
                    continue;
                }
            };
            match reply.status {
                200 => {
                    let Some(verifier) = &self.verifier else { return Ok((200, reply.body)) };
                    match verifier.check(&reply.body["data"], session_id, Check::Finality) {
                        Ok(_) => return Ok((200, reply.body)),
                        Err(reason) => {
                            tracing::error!(%url, %reason, "L1 proof did not verify; trying another node");
                            failures.push(format!("{url}: proof did not verify: {reason}"));
                        }
                    }
                }
                status @ 400..=499 => return Ok((status, reply.body)),
                status => failures.push(format!("{url}: HTTP {status}: {}", reply.body["error"]["message"])),
            }
        }
        Err(L1Error::Unavailable(format!("no L1 node gave the proof: {}", failures.join("; "))))
    }

    /// L1's chain as the first node that answers reports it.
    async fn chain(&self, bearer: &str) -> Result<ChainStatus, L1Error> {
        let mut failures = Vec::new();
        for base in &self.urls {
            let url = format!("{base}/v1/network");
            match self.client.get(&url, Some(bearer)).await {
                Ok(reply) if reply.status == 200 => match serde_json::from_value(reply.body["data"]["chain"].clone()) {
                    Ok(status) => return Ok(status),
                    Err(err) => failures.push(format!("{url}: not a chain status: {err}")),
                },
                Ok(reply) => failures.push(format!("{url}: HTTP {}: {}", reply.status, reply.body["error"]["message"])),
                Err(err) => failures.push(err.to_string()),
            }
        }
        Err(L1Error::Unavailable(format!("no L1 node reported its chain: {}", failures.join("; "))))
    }
}

impl L1Client for HttpL1Client {
    fn submit_bundle(&self, bundle: SignedBundle) -> BoxFuture<'_, Result<Receipt, L1Error>> {
        Box::pin(async move { self.submit(&bundle).await })
    }

    fn session_proof<'a>(
        &'a self,
        session_id: &'a str,
        bearer: &'a str,
    ) -> BoxFuture<'a, Result<(u16, Value), L1Error>> {
        Box::pin(self.proof(session_id, bearer))
    }

    fn chain_status<'a>(&'a self, bearer: &'a str) -> BoxFuture<'a, Result<ChainStatus, L1Error>> {
        Box::pin(self.chain(bearer))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::{routing::post, Json, Router};
    use serde_json::json;

    use super::*;
    use crate::{app::tx::Bundle, crypto::SigningKey};

    /// An L1 node that accepts connections and never answers (a hung process, or a host that
    /// is gone behind a still-open connection).
    async fn hung_node() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        url
    }

    /// An L1 node that commits every bundle at height 7.
    async fn healthy_node() -> String {
        let receipt = json!({"data": {"chain_id": "l1", "height": 7, "tx_hash": "AB", "code": 0,
            "bundle_hash": "00", "session_id": "ses-1"}});
        let app = Router::new().route("/v1/l1/bundles", post(move || async move { Json(receipt) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn bundle() -> SignedBundle {
        SignedBundle::sign(Bundle::new("l2", "ses-1", Vec::new()), &SigningKey::from_seed([7; 32]))
    }

    #[tokio::test]
    async fn a_hung_first_node_leaves_time_for_the_next_and_is_skipped_afterwards() {
        let attempt = Duration::from_secs(2);
        let client = HttpL1Client::new(vec![hung_node().await, healthy_node().await], attempt);

        let started = Instant::now();
        let receipt = client.submit(&bundle()).await.expect("the second node commits");
        assert_eq!(receipt.height, 7);
        assert!(started.elapsed() < attempt, "failover took {:?}, the whole attempt", started.elapsed());

        // The next submission starts at the node that answered, not at the hung one.
        let started = Instant::now();
        client.submit(&bundle()).await.expect("committed again");
        assert!(started.elapsed() < Duration::from_millis(500), "retried the hung node first");
    }

    #[tokio::test]
    async fn a_node_that_refuses_connections_is_passed_over() {
        let gone = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let client = HttpL1Client::new(vec![gone, healthy_node().await], Duration::from_secs(2));
        assert_eq!(client.submit(&bundle()).await.expect("committed").height, 7);
        assert_eq!(client.preferred.load(Ordering::Relaxed), 1);
    }

    /// An L1 node that answers every bundle with `status` and this error body.
    async fn answering_node(status: u16, error: serde_json::Value) -> String {
        let app = Router::new().route(
            "/v1/l1/bundles",
            post(move || {
                let error = error.clone();
                async move { (axum::http::StatusCode::from_u16(status).unwrap(), Json(json!({"error": error}))) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn only_a_refusal_is_final_other_answers_are_retried() {
        let refusal = json!({"code": "bundle_rejected", "message": "step 2: no", "tx_code": "SESSION_SHAPE"});
        let client = HttpL1Client::new(vec![answering_node(422, refusal).await], Duration::from_secs(2));
        match client.submit(&bundle()).await {
            Err(L1Error::Rejected { code, .. }) => assert_eq!(code, TxCode::SessionShape),
            other => panic!("expected Rejected, got {other:?}"),
        }
        for (status, error) in [
            (400, json!({"code": "invalid_request", "message": "not a signed bundle"})),
            (422, json!({"code": "something_else", "message": "?"})),
            (404, json!({"code": "not_found", "message": "this route is served by L1 nodes only"})),
            (503, json!({"code": "unavailable", "message": "catching up"})),
        ] {
            let client = HttpL1Client::new(vec![answering_node(status, error).await], Duration::from_secs(2));
            assert!(
                matches!(client.submit(&bundle()).await, Err(L1Error::Unavailable(_))),
                "HTTP {status} must be retried, not final"
            );
        }
    }

    #[tokio::test]
    async fn no_node_answering_is_unavailable_with_every_reason() {
        let client = HttpL1Client::new(vec![hung_node().await, hung_node().await], Duration::from_millis(400));
        match client.submit(&bundle()).await {
            Err(L1Error::Unavailable(reason)) => assert_eq!(reason.matches("no answer within").count(), 2, "{reason}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
