//! What a node reports of a chain for people watching it (the console's network page): height,
//! recent blocks, the validators with their voting power and which of them signed the last
//! blocks. Read from the node's own CometBFT; nothing here is replicated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cometbft::{CometRpc, RpcError};

/// How many of the last blocks' signatures are reported per validator.
pub const SIGNED_BLOCKS: u64 = 5;
/// How far back `blocks_last_minute` counts.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// A chain as one of its nodes sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainStatus {
    pub chain_id: String,
    pub height: u64,
    /// When the last block was made (RFC 3339, its proposer's clock); absent without CometBFT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_block_time: Option<String>,
    /// Blocks made in the last minute by this node's clock (a chain makes blocks only when
    /// there is something to commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_last_minute: Option<u32>,
    /// The heights `validators[].signed` reports on, newest first.
    pub signed_heights: Vec<u64>,
    /// The validators at the last height; empty for a chain without CometBFT.
    pub validators: Vec<ValidatorStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidatorStatus {
    /// Upper-case hex address (the first 20 bytes of SHA-256 of the public key).
    pub address: String,
    /// Base64 ed25519 public key.
    pub public_key: String,
    pub voting_power: u64,
    /// For each of `signed_heights`: whether its commit carries this validator's signature.
    pub signed: Vec<bool>,
}

impl ChainStatus {
    /// A chain without CometBFT (the in-process sequencer): its id and height only.
    pub fn local(chain_id: &str, height: u64) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            height,
            last_block_time: None,
            blocks_last_minute: None,
            signed_heights: Vec::new(),
            validators: Vec::new(),
        }
    }

    /// Asks a node's CometBFT: its status, validators, last blocks and their commits.
    pub async fn from_cometbft(rpc: &CometRpc, chain_id: &str) -> Result<Self, RpcError> {
        let status = rpc.call("status", json!({})).await?;
        let height = number(&status["sync_info"]["latest_block_height"]).unwrap_or(0);
        if height == 0 {
            return Ok(Self::local(chain_id, 0));
        }
        let at = |h: u64| json!({"height": h.to_string()});
        let lowest = height.saturating_sub(19).max(1);
        let signed_heights: Vec<u64> =
            (0..SIGNED_BLOCKS).map_while(|back| height.checked_sub(back)).filter(|h| *h > 0).collect();
        let (validators, metas) = tokio::join!(
            rpc.call("validators", json!({"height": height.to_string(), "per_page": "100"})),
            rpc.call("blockchain", json!({"minHeight": lowest.to_string(), "maxHeight": height.to_string()})),
        );
        let (validators, metas) = (validators?, metas?);
        let mut commits = Vec::with_capacity(signed_heights.len());
        for h in &signed_heights {
            commits.push(rpc.call("commit", at(*h)).await?);
        }
        let signers: Vec<Vec<String>> = commits
            .iter()
            .map(|commit| {
                array(&commit["signed_header"]["commit"]["signatures"])
                    .iter()
                    // block_id_flag 2: a precommit for the block (1 is absent, 3 a vote for nil).
                    .filter(|sig| number(&sig["block_id_flag"]) == Some(2))
                    .filter_map(|sig| sig["validator_address"].as_str().map(str::to_owned))
                    .collect()
            })
            .collect();
        let validators = array(&validators["validators"])
            .iter()
            .map(|v| {
                let address = v["address"].as_str().unwrap_or_default().to_owned();
                ValidatorStatus {
                    public_key: v["pub_key"]["value"].as_str().unwrap_or_default().to_owned(),
                    voting_power: number(&v["voting_power"]).unwrap_or(0),
                    signed: signers.iter().map(|s| s.contains(&address)).collect(),
                    address,
                }
            })
            .collect();
        let times: Vec<i128> = array(&metas["block_metas"])
            .iter()
            .filter_map(|meta| meta["header"]["time"].as_str())
            .filter_map(|time| tendermint::Time::parse_from_rfc3339(time).ok())
            .map(|time| time.unix_timestamp_nanos())
            .collect();
        let since = wall_clock_nanos() - RATE_WINDOW.as_nanos() as i128;
        Ok(Self {
            chain_id: chain_id.to_owned(),
            height,
            last_block_time: status["sync_info"]["latest_block_time"].as_str().map(str::to_owned),
            blocks_last_minute: Some(times.iter().filter(|t| **t >= since).count() as u32),
            signed_heights,
            validators,
        })
    }
}

/// This node's clock, for a figure people read; nothing replicated depends on it.
#[allow(clippy::disallowed_methods)]
fn wall_clock_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i128
}

/// CometBFT writes 64-bit numbers as strings and small ones as numbers.
fn number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}
