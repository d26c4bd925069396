//! CometBFT's JSON-RPC over HTTP: the few calls a node makes.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::http_client::{HttpClientError, JsonClient};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Http(#[from] HttpClientError),
    #[error("CometBFT RPC {method} failed: {message}")]
    Rpc { method: &'static str, message: String },
}

/// CheckTx's verdict on a broadcast transaction.
#[derive(Debug, Clone)]
pub struct BroadcastResult {
    pub code: u32,
    pub log: String,
    /// CometBFT already holds this exact transaction (in its mempool or its cache).
    pub already_known: bool,
}

/// What `/status` says about the node.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub latest_height: u64,
    pub catching_up: bool,
    pub node_id: String,
    /// This node's voting power: 0 for a full node.
    pub voting_power: u64,
}

/// Heights consensus works on (one past the last committed block), this node's and its peers'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusHeights {
    pub own: u64,
    pub peers: Vec<u64>,
}

impl ConsensusHeights {
    /// The highest peer height, when a peer is ahead of this node: it has blocks this node
    /// has not applied.
    pub fn peer_ahead(&self) -> Option<u64> {
        self.peers.iter().copied().max().filter(|peer| *peer > self.own)
    }

    /// The highest peer height, when a peer has decided at least two blocks past `committed`
    /// (this node's last committed height, which moves during block sync too, unlike its
    /// consensus height): more than the ordinary lag of a block being applied.
    pub fn peer_ahead_of_committed(&self, committed: u64) -> Option<u64> {
        self.peers.iter().copied().max().filter(|peer| *peer > committed + 2)
    }
}

#[derive(Clone)]
pub struct CometRpc {
    base: String,
    client: JsonClient,
}

impl CometRpc {
    /// `base` is like `http://127.0.0.1:26657`.
    pub fn new(base: impl Into<String>, timeout: Duration) -> Self {
        Self { base: base.into().trim_end_matches('/').to_owned(), client: JsonClient::new(timeout) }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One JSON-RPC call; the `result` object.
    pub(crate) async fn call(&self, method: &'static str, params: Value) -> Result<Value, RpcError> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let reply = self.client.post(&self.base, None, &request).await?;
        if let Some(error) = reply.body.get("error").filter(|e| !e.is_null()) {
            let message = error["data"].as_str().or(error["message"].as_str()).unwrap_or("unknown error").to_owned();
            return Err(RpcError::Rpc { method, message });
        }
        Ok(reply.body["result"].clone())
    }

    pub async fn broadcast_tx_sync(&self, tx: &[u8]) -> Result<BroadcastResult, RpcError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(tx);
        match self.call("broadcast_tx_sync", json!({"tx": encoded})).await {
            Ok(result) => Ok(BroadcastResult {
                code: result["code"].as_u64().unwrap_or(0) as u32,
                log: result["log"].as_str().unwrap_or("").to_owned(),
                already_known: false,
            }),
            Err(RpcError::Rpc { message, .. }) if message.contains("tx already exists in cache") => {
                Ok(BroadcastResult { code: 0, log: message, already_known: true })
            }
            Err(err) => Err(err),
        }
    }

    pub async fn status(&self) -> Result<NodeStatus, RpcError> {
        let result = self.call("status", json!({})).await?;
        let sync = &result["sync_info"];
        Ok(NodeStatus {
            latest_height: sync["latest_block_height"].as_str().and_then(|h| h.parse().ok()).unwrap_or(0),
            catching_up: sync["catching_up"].as_bool().unwrap_or(true),
            node_id: result["node_info"]["id"].as_str().unwrap_or("").to_owned(),
            voting_power: result["validator_info"]["voting_power"].as_str().and_then(|p| p.parse().ok()).unwrap_or(0),
        })
    }

    /// The height this node's consensus works on, and the one each connected peer works on
    /// (`/dump_consensus_state`): a peer ahead has blocks this node has not applied.
    pub async fn consensus_heights(&self) -> Result<ConsensusHeights, RpcError> {
        let result = self.call("dump_consensus_state", json!({})).await?;
        let height = |value: &Value| value.as_str().and_then(|h| h.parse::<u64>().ok());
        let own = height(&result["round_state"]["height"])
            .ok_or_else(|| RpcError::Rpc { method: "dump_consensus_state", message: "no round state height".into() })?;
        let peers = result["peers"]
            .as_array()
            .map(|peers| peers.iter().filter_map(|p| height(&p["peer_state"]["round_state"]["height"])).collect())
            .unwrap_or_default();
        Ok(ConsensusHeights { own, peers })
    }

    /// Looks a transaction up by hash (`/tx`); `None` when CometBFT does not know it.
    pub async fn tx(&self, hash_hex: &str) -> Result<Option<Value>, RpcError> {
        let hash = hex::decode(hash_hex).map_err(|_| RpcError::Rpc { method: "tx", message: "bad hash".into() })?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(hash);
        match self.call("tx", json!({"hash": encoded, "prove": false})).await {
            Ok(result) => Ok(Some(result)),
            Err(RpcError::Rpc { message, .. }) if message.contains("not found") => Ok(None),
            Err(err) => Err(err),
        }
    }
}
