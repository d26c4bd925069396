//! A small JSON-over-HTTP/1.1 client with connection reuse and per-call timeouts: for CometBFT's
//! RPC, other nodes' APIs and the workflow driver. Plain HTTP only (loopback and cluster
//! networks).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use serde_json::Value;

#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpClientError {
    #[error("invalid URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: cannot connect or send: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: answer is not JSON (status {status}): {body}")]
    NotJson { url: String, status: u16, body: String },
}

impl HttpClientError {
    /// True when the request may not have reached the server (safe to try another one).
    pub fn is_transport(&self) -> bool {
        matches!(self, HttpClientError::Transport { .. } | HttpClientError::Timeout { .. })
    }
}

/// A JSON reply: status and body.
#[derive(Debug, Clone)]
pub struct JsonReply {
    pub status: u16,
    pub body: Value,
    pub elapsed: Duration,
    /// The `Retry-After` header in seconds, when the server sent one.
    pub retry_after: Option<u64>,
}

#[derive(Clone)]
pub struct JsonClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl JsonClient {
    pub fn new(timeout: Duration) -> Self {
        Self::with_connect_timeout(timeout, timeout)
    }

    /// Every call ends within `timeout`; establishing a connection within `connect_timeout`.
    pub fn with_connect_timeout(timeout: Duration, connect_timeout: Duration) -> Self {
        Self::build(timeout, connect_timeout, None)
    }

    /// A client whose connections leave from `source` (another loopback address, say, so a
    /// server tells it apart from other local clients).
    pub fn from_address(timeout: Duration, source: std::net::IpAddr) -> Self {
        Self::build(timeout, timeout, Some(source))
    }

    fn build(timeout: Duration, connect_timeout: Duration, source: Option<std::net::IpAddr>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_local_address(source);
        // Small JSON calls on loopback: Nagle's algorithm would add delays to every one.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Self { client, timeout }
    }

    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Result<JsonReply, HttpClientError> {
        self.send(Method::GET, url, bearer, &[], None).await
    }

    pub async fn post(&self, url: &str, bearer: Option<&str>, body: &Value) -> Result<JsonReply, HttpClientError> {
        self.send(Method::POST, url, bearer, &[], Some(body)).await
    }

    /// A POST with extra headers (e.g. `Idempotency-Key`).
    pub async fn post_with_headers(
        &self,
        url: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<JsonReply, HttpClientError> {
        self.send(Method::POST, url, bearer, headers, Some(body)).await
    }

    pub async fn delete(&self, url: &str, bearer: Option<&str>) -> Result<JsonReply, HttpClientError> {
        self.send(Method::DELETE, url, bearer, &[], None).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<JsonReply, HttpClientError> {
        let started = std::time::Instant::now();
        let uri: hyper::Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| HttpClientError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let payload = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body).expect("JSON values serialize"))
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| HttpClientError::Url { url: url.to_owned(), reason: e.to_string() })?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| HttpClientError::Transport { url: url.to_owned(), reason: error_chain(&e) })?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok());
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpClientError::Transport { url: url.to_owned(), reason: e.to_string() })?
                .to_bytes();
            Ok::<_, HttpClientError>((status, retry_after, bytes))
        };
        let (status, retry_after, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpClientError::Timeout { url: url.to_owned(), timeout: self.timeout })??;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| HttpClientError::NotJson {
                url: url.to_owned(),
                status,
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned(),
            })?
        };
        Ok(JsonReply { status, body, elapsed: started.elapsed(), retry_after })
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
