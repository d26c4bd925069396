//! L1 reached over HTTP: `POST /v1/l1/bundles` on any L1 node, failing over across the list.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use super::committer::{L1Client, L1Error};
use crate::{
    app::{tx::SignedBundle, Receipt, TxCode},
    chain::BoxFuture,
    http_client::JsonClient,
};

pub struct HttpL1Client {
    urls: Vec<String>,
    client: JsonClient,
    /// The node that answered last; tried first next time.
    preferred: AtomicUsize,
}

impl HttpL1Client {
    /// `urls` are L1 API base URLs like `http://127.0.0.1:8101`; each attempt waits at most
    /// `per_node_timeout` for a node before trying the next.
    pub fn new(urls: Vec<String>, per_node_timeout: Duration) -> Self {
        let urls = urls.into_iter().map(|u| u.trim_end_matches('/').to_owned()).collect();
        Self { urls, client: JsonClient::new(per_node_timeout), preferred: AtomicUsize::new(0) }
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
            let url = format!("{}/v1/l1/bundles", self.urls[index]);
            let reply = match self.client.post(&url, None, &body).await {
                Ok(reply) => reply,
                Err(err) => {
                    failures.push(err.to_string());
                    continue;
                }
            };
            match reply.status {
                200 => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return serde_json::from_value(reply.body["data"].clone())
                        .map_err(|e| L1Error::Unavailable(format!("{url}: unreadable receipt: {e}")));
                }
                422 | 400 => {
                    let error = &reply.body["error"];
                    let code = error["tx_code"].as_str().and_then(TxCode::from_name).unwrap_or(TxCode::Malformed);
                    let log = error["message"].as_str().unwrap_or("refused").to_owned();
                    return Err(L1Error::Rejected { code, log });
                }
                status => failures.push(format!("{url}: HTTP {status}: {}", reply.body["error"]["message"])),
            }
        }
        Err(L1Error::Unavailable(format!("no L1 node committed the bundle: {}", failures.join("; "))))
    }
}

impl L1Client for HttpL1Client {
    fn submit_bundle(&self, bundle: SignedBundle) -> BoxFuture<'_, Result<Receipt, L1Error>> {
        Box::pin(async move { self.submit(&bundle).await })
    }
}
