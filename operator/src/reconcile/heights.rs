//! The chain heights shown in status (and in the HEIGHT printer column): asked of each layer's
//! API Service (`GET /readyz`, which reports the node's committed height). Best effort: a layer
//! that does not answer keeps the height status showed before.

use std::{future::Future, pin::Pin, time::Duration};

use bftws_home::cluster::{ClusterLayer, HTTP_PORT};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

use crate::{resources::names::Names, PerLayer};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where heights come from.
pub trait HeightProbe: Send + Sync {
    fn heights<'a>(&'a self, names: &'a Names) -> BoxFuture<'a, PerLayer<Option<i64>>>;
}

/// No probing (tests, or an operator that cannot reach the pods).
pub struct NoHeights;

impl HeightProbe for NoHeights {
    fn heights<'a>(&'a self, _names: &'a Names) -> BoxFuture<'a, PerLayer<Option<i64>>> {
        Box::pin(std::future::ready(PerLayer { l1: None, l2: None }))
    }
}

/// Asks `http://<layer API Service>.<namespace>.svc:8080/readyz` with a short timeout.
pub struct HttpHeights {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl Default for HttpHeights {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        Self { client: Client::builder(TokioExecutor::new()).build(connector), timeout: Duration::from_secs(2) }
    }
}

impl HttpHeights {
    async fn height(&self, names: &Names, layer: ClusterLayer) -> Option<i64> {
        let url = format!("http://{}.{}.svc:{HTTP_PORT}/readyz", names.api_service(layer), names.namespace);
        let exchange = async {
            let response = self.client.get(url.parse().ok()?).await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let body = response.into_body().collect().await.ok()?.to_bytes();
            serde_json::from_slice::<serde_json::Value>(&body).ok()?["height"].as_i64()
        };
        tokio::time::timeout(self.timeout, exchange).await.ok().flatten()
    }
}

impl HeightProbe for HttpHeights {
    fn heights<'a>(&'a self, names: &'a Names) -> BoxFuture<'a, PerLayer<Option<i64>>> {
        Box::pin(async move {
            let (l1, l2) = tokio::join!(self.height(names, ClusterLayer::L1), self.height(names, ClusterLayer::L2));
            PerLayer { l1, l2 }
        })
    }
}
