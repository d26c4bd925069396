//! Proofs of finality: everything needed to check, offline and trusting no node, that a
//! session's bundle is in L1 block H with result code 0.
//!
//! A [`SessionProof`] carries the transaction, the signed headers of H and H+1 (H+1's header
//! commits to H's results in `last_results_hash`), the leaves of H's `data_hash` (the SHA-256 of
//! every transaction of H) and of `last_results_hash` (the deterministic part of every result of
//! H). [`verify`] checks it against a [`TrustedL1`] (the L1 genesis: chain id and validator
//! set), in this order, each failure naming its check:
//!
//! 1. both headers are of the trusted chain, at H and H+1;
//! 2. each header's validator set is the trusted one, its commit is for that header, every
//!    signature in it verifies, and more than 2/3 of the voting power signed
//!    (tendermint-rs's light-client verifier);
//! 3. H+1's `last_block_id` is H's header hash;
//! 4. the transaction's hash is leaf `tx_index` of a tree whose root is H's `data_hash`;
//! 5. the results' tree root is H+1's `last_results_hash` and this transaction's result is 0;
//! 6. the transaction is the bundle of the session, with a bundle hash that matches its content.
//!
//! The L2 committer checks an inclusion proof (no block H+1, [`Check::Inclusion`]) so that a
//! commit does not wait one more L1 block; clients check finality ([`Check::Finality`]).
//!
//! Trust: the L1 validator set is fixed in genesis, so "the trusted set signed" needs no header
//! chain from genesis to H and no trusting period (there is no unbonding to outlast). Merkle
//! roots are computed with tendermint-rs's `simple_hash_from_byte_vectors` over all leaves of the
//! block (blocks hold few transactions; aunts would save bytes, not trust).

use base64::Engine;
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tendermint::{block::signed_header::SignedHeader, crypto::default::Sha256, merkle, validator};
use tendermint_light_client_verifier::{
    errors::VerificationErrorDetail, types::UntrustedBlockState, ProdVerifier, Verdict,
};

use crate::{
    app::{
        tx::{tx_hash, Tx},
        LedgerEntry,
    },
    cometbft::{CometRpc, RpcError},
    crypto::sha256,
};

/// The proof of one committed session (`GET /v1/sessions/{id}/proof`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionProof {
    pub chain_id: String,
    pub session_id: String,
    pub bundle_hash: String,
    /// The block holding the bundle.
    pub height: u64,
    /// Upper-case hex SHA-256 of `tx` (the receipt's `tx_hash`).
    pub tx_hash: String,
    /// The L1 transaction carrying the bundle, base64.
    pub tx: String,
    /// Its position in block `height`.
    pub tx_index: u32,
    /// Hex SHA-256 of every transaction of block `height`, in block order.
    pub block_tx_hashes: Vec<String>,
    /// The deterministic part of every transaction result of block `height`, in block order
    /// (empty in an inclusion proof).
    #[serde(default)]
    pub block_results: Vec<ResultLeaf>,
    /// Block `height`'s signed header (header and commit), as CometBFT's `/commit` gives it.
    #[schema(value_type = Object)]
    pub signed_header: Value,
    /// Block `height + 1`'s signed header; absent from an inclusion proof (see [`Check`]).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Object)]
    pub next_signed_header: Value,
    /// L1's validators at `height`, as `/validators` gives them: for the reader; verification
    /// uses the trusted set, never this list.
    #[schema(value_type = Vec<Object>)]
    pub validators: Vec<Value>,
}

/// What CometBFT hashes of a transaction result (`code`, `data`, `gas_wanted`, `gas_used`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultLeaf {
    pub code: u32,
    /// base64
    pub data: String,
    pub gas_wanted: i64,
    pub gas_used: i64,
}

impl ResultLeaf {
    fn encode(&self) -> Result<Vec<u8>, ProofError> {
        let data = base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .map_err(|e| ProofError::Malformed(format!("result data is not base64: {e}")))?;
        let result = tendermint_proto::v0_38::abci::ExecTxResult {
            code: self.code,
            data: data.into(),
            gas_wanted: self.gas_wanted,
            gas_used: self.gas_used,
            ..Default::default()
        };
        Ok(result.encode_to_vec())
    }
}

/// Why a proof does not prove what it claims; the message names the failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("malformed proof: {0}")]
    Malformed(String),
    #[error("chain id: {0}")]
    ChainId(String),
    #[error("heights: {0}")]
    Height(String),
    #[error("validator set: {0}")]
    Validators(String),
    #[error("commit signatures: {0}")]
    Signatures(String),
    #[error("header chain: {0}")]
    HeaderChain(String),
    #[error("tx inclusion: {0}")]
    TxInclusion(String),
    #[error("tx result: {0}")]
    TxResult(String),
    #[error("session: {0}")]
    Session(String),
    #[error("building the proof: {0}")]
    Source(String),
}

/// The trust anchor: L1's chain id and its validator set, from L1's genesis.
#[derive(Debug, Clone)]
pub struct TrustedL1 {
    chain_id: String,
    validators: validator::Set,
}

impl TrustedL1 {
    /// From the L1 `genesis.json` (what the operator and the devnet give every node).
    pub fn from_genesis_json(json: &str) -> Result<Self, ProofError> {
        let genesis: tendermint::Genesis<Value> =
            serde_json::from_str(json).map_err(|e| ProofError::Malformed(format!("L1 genesis: {e}")))?;
        if genesis.validators.is_empty() {
            return Err(ProofError::Malformed("L1 genesis lists no validators".into()));
        }
        Ok(Self {
            chain_id: genesis.chain_id.to_string(),
            validators: validator::Set::without_proposer(genesis.validators),
        })
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }
}

/// What a verified proof established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub chain_id: String,
    pub session_id: String,
    pub bundle_hash: String,
    pub height: u64,
    pub tx_hash: String,
    /// Voting power that signed H+1's commit, and the set's total.
    pub signed_power: u64,
    pub total_power: u64,
}

/// How much a proof must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Everything, the result code from H+1's `last_results_hash` included: what a client
    /// verifies (`GET /v1/sessions/{id}/proof`, `bftws-node verify`).
    Finality,
    /// Inclusion in block H, committed by more than 2/3 of the trusted voting power, without
    /// block H+1: what the L2 committer verifies before recording a receipt, so that a commit
    /// does not wait one more L1 block. The result code follows from the application: every
    /// validator's ProcessProposal refuses a block holding a transaction that does not execute
    /// with code 0, so a block committed by more than 2/3 of the voting power (the assumption
    /// the signatures already rest on) holds only such transactions.
    Inclusion,
}

/// Checks `proof` against the trust anchor; `session_id` is the session the caller asks about.
pub fn verify(proof: &SessionProof, trusted: &TrustedL1, session_id: &str) -> Result<Verified, ProofError> {
    verify_as(proof, trusted, session_id, Check::Finality)
}

/// [`verify`] with a choice of [`Check`].
pub fn verify_as(
    proof: &SessionProof,
    trusted: &TrustedL1,
    session_id: &str,
    check: Check,
) -> Result<Verified, ProofError> {
    let header = parse_signed_header(&proof.signed_header, "signed_header")?;
    let next = match check {
        Check::Finality if proof.next_signed_header.is_null() => {
            return Err(ProofError::Height(format!(
                "the proof has no block {} (an inclusion proof): the result cannot be checked",
                proof.height + 1
            )))
        }
        Check::Finality => Some(parse_signed_header(&proof.next_signed_header, "next_signed_header")?),
        Check::Inclusion => None,
    };
    let headers: Vec<(&str, &SignedHeader)> =
        std::iter::once(("H", &header)).chain(next.iter().map(|n| ("H+1", n))).collect();

    // 1. The trusted chain, at H and H+1.
    for &(name, signed) in &headers {
        if signed.header.chain_id.as_str() != trusted.chain_id {
            return Err(ProofError::ChainId(format!(
                "header {name} is of chain {:?}, the trusted L1 is {:?}",
                signed.header.chain_id.as_str(),
                trusted.chain_id
            )));
        }
    }
    if proof.chain_id != trusted.chain_id {
        return Err(ProofError::ChainId(format!("the proof claims chain {:?}", proof.chain_id)));
    }
    let next_height = next.as_ref().map_or(proof.height + 1, |n| n.header.height.value());
    if header.header.height.value() != proof.height || next_height != proof.height + 1 {
        return Err(ProofError::Height(format!(
            "headers at {} and {next_height}, the proof claims block {} (and {})",
            header.header.height,
            proof.height,
            proof.height + 1
        )));
    }

    // 2. The trusted validators signed both, with more than 2/3 of their power.
    let verifier = ProdVerifier::default();
    let mut signed_power = 0;
    for &(name, signed) in &headers {
        let untrusted = UntrustedBlockState {
            signed_header: signed,
            validators: &trusted.validators,
            next_validators: Some(&trusted.validators),
        };
        if signed.header.validators_hash != trusted.validators.hash() {
            return Err(ProofError::Validators(format!(
                "header {name} names validator set {}, the L1 genesis set is {}",
                signed.header.validators_hash,
                trusted.validators.hash()
            )));
        }
        // The commit is for this header, every signature in it verifies, and more than 2/3 of
        // the trusted voting power signed.
        for verdict in [verifier.verify_validator_sets(&untrusted), verifier.verify_commit(&untrusted)] {
            let tally = match verdict {
                Verdict::Success => continue,
                Verdict::NotEnoughTrust(tally) => tally,
                Verdict::Invalid(VerificationErrorDetail::InsufficientSignersOverlap(e)) => e.tally,
                Verdict::Invalid(detail) => return Err(ProofError::Signatures(format!("header {name}: {detail}"))),
            };
            return Err(ProofError::Signatures(format!(
                "header {name}: signed by {} of {} voting power, more than 2/3 needed",
                tally.tallied, tally.total
            )));
        }
        signed_power = signed_power_of(signed, &trusted.validators);
    }

    // 3. H+1 follows H.
    if let Some(next) = &next {
        let h_hash = header.header.hash();
        let linked = next.header.last_block_id.map(|id| id.hash);
        if linked != Some(h_hash) {
            return Err(ProofError::HeaderChain(format!(
                "header H+1 follows block {}, not header H ({h_hash})",
                linked.map(|h| h.to_string()).unwrap_or_else(|| "none".into())
            )));
        }
    }

    // 4. The transaction is in H.
    let tx = base64::engine::general_purpose::STANDARD
        .decode(&proof.tx)
        .map_err(|e| ProofError::Malformed(format!("tx is not base64: {e}")))?;
    let index = proof.tx_index as usize;
    let leaves: Vec<Vec<u8>> = proof
        .block_tx_hashes
        .iter()
        .map(|h| hex::decode(h).map_err(|e| ProofError::Malformed(format!("block tx hash {h:?}: {e}"))))
        .collect::<Result<_, _>>()?;
    let digest = sha256(&tx);
    if leaves.get(index).map(Vec::as_slice) != Some(digest.as_slice()) {
        return Err(ProofError::TxInclusion(format!(
            "the tx's hash is not leaf {index} of the {} transactions of block {}",
            leaves.len(),
            proof.height
        )));
    }
    let tx_hash = tx_hash(&tx);
    if tx_hash != proof.tx_hash {
        return Err(ProofError::TxInclusion(format!("the tx hashes to {tx_hash}, the proof claims {}", proof.tx_hash)));
    }
    let data_root = merkle::simple_hash_from_byte_vectors::<Sha256>(&leaves);
    if header.header.data_hash.map(|h| h.as_bytes().to_vec()) != Some(data_root.to_vec()) {
        return Err(ProofError::TxInclusion(format!(
            "the block's transactions hash to {}, header H's data_hash is {}",
            hex::encode_upper(data_root),
            header.header.data_hash.map(|h| h.to_string()).unwrap_or_else(|| "empty".into())
        )));
    }

    // 5. Its result is 0, as H+1 records (an inclusion check rests on ProcessProposal: see
    // [`Check::Inclusion`]).
    if let Some(next) = &next {
        if proof.block_results.len() != leaves.len() {
            return Err(ProofError::TxResult(format!(
                "{} results for {} transactions",
                proof.block_results.len(),
                leaves.len()
            )));
        }
        let results: Vec<Vec<u8>> = proof.block_results.iter().map(ResultLeaf::encode).collect::<Result<_, _>>()?;
        let results_root = merkle::simple_hash_from_byte_vectors::<Sha256>(&results);
        if next.header.last_results_hash.map(|h| h.as_bytes().to_vec()) != Some(results_root.to_vec()) {
            return Err(ProofError::TxResult(format!(
                "the results hash to {}, header H+1's last_results_hash is {}",
                hex::encode_upper(results_root),
                next.header.last_results_hash.map(|h| h.to_string()).unwrap_or_else(|| "empty".into())
            )));
        }
        let code = proof.block_results[index].code;
        if code != 0 {
            return Err(ProofError::TxResult(format!("the tx's result code is {code}, not 0")));
        }
    }

    // 6. It is this session's bundle.
    let bundle = match Tx::decode(&tx) {
        Ok(Tx::Bundle(signed)) => signed.bundle,
        Ok(Tx::Op(_)) => return Err(ProofError::Session("the tx is an op, not a session bundle".into())),
        Err(e) => return Err(ProofError::Session(format!("the tx does not decode: {e}"))),
    };
    if bundle.session_id != session_id || proof.session_id != session_id {
        return Err(ProofError::Session(format!(
            "the bundle is of session {:?} (the proof claims {:?}), not {session_id:?}",
            bundle.session_id, proof.session_id
        )));
    }
    if !bundle.hash_is_consistent() || bundle.bundle_hash != proof.bundle_hash {
        return Err(ProofError::Session(format!(
            "the bundle hash {} does not match its content or the claimed {}",
            bundle.bundle_hash, proof.bundle_hash
        )));
    }

    Ok(Verified {
        chain_id: trusted.chain_id.clone(),
        session_id: session_id.to_owned(),
        bundle_hash: bundle.bundle_hash,
        height: proof.height,
        tx_hash,
        signed_power,
        total_power: trusted.validators.total_voting_power().value(),
    })
}

fn parse_signed_header(value: &Value, name: &str) -> Result<SignedHeader, ProofError> {
    serde_json::from_value(value.clone()).map_err(|e| ProofError::Malformed(format!("{name}: {e}")))
}

/// The voting power of the trusted validators whose signature is in the commit.
fn signed_power_of(signed: &SignedHeader, validators: &validator::Set) -> u64 {
    signed
        .commit
        .signatures
        .iter()
        .filter_map(|sig| sig.validator_address())
        .filter_map(|address| validators.validator(address))
        .map(|info| info.power())
        .sum()
}

/// Builds the proof of a committed bundle (its L1 ledger entry: session, bundle hash, tx hash and
/// block) from a CometBFT node: the block and its commit, and for [`Check::Finality`] the
/// block's results and block H+1's commit (CometBFT makes H+1 right after H to commit H's app
/// hash; until then this is [`ProofError::Source`] and the caller retries). The calls of each
/// step run together.
pub async fn build(
    rpc: &CometRpc,
    chain_id: &str,
    entry: &LedgerEntry,
    check: Check,
) -> Result<SessionProof, ProofError> {
    let (height, tx_hash) = (entry.height, entry.tx_hash.as_str());
    let source = |e: RpcError| ProofError::Source(e.to_string());
    let at = |h: u64| json!({"height": h.to_string()});
    let (block, commit) = tokio::join!(rpc.call("block", at(height)), rpc.call("commit", at(height)));
    let (block, signed_header) = (block.map_err(source)?, commit.map_err(source)?["signed_header"].clone());
    let txs: Vec<&str> = block["block"]["data"]["txs"]
        .as_array()
        .map(|txs| txs.iter().map(|tx| tx.as_str().unwrap_or_default()).collect())
        .unwrap_or_default();
    let block_tx_hashes = txs
        .iter()
        .map(|tx| base64::engine::general_purpose::STANDARD.decode(tx).map(|b| hex::encode_upper(sha256(&b))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProofError::Source(format!("a block tx is not base64: {e}")))?;
    let tx_index = block_tx_hashes
        .iter()
        .position(|hash| hash.eq_ignore_ascii_case(tx_hash))
        .ok_or_else(|| ProofError::Source(format!("tx {tx_hash} is not in block {height}")))?;
    let tx = txs[tx_index].to_owned();

    let (block_results, next_signed_header, validators) = match check {
        Check::Inclusion => (Vec::new(), Value::Null, Vec::new()),
        Check::Finality => {
            let (results, next, validators) = tokio::join!(
                rpc.call("block_results", at(height)),
                rpc.call("commit", at(height + 1)),
                rpc.call("validators", json!({"height": height.to_string(), "per_page": "100"}))
            );
            let number = |v: &Value| v.as_str().and_then(|s| s.parse::<i64>().ok()).or(v.as_i64()).unwrap_or(0);
            let results = results.map_err(source)?["txs_results"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .map(|r| ResultLeaf {
                            code: r["code"].as_u64().unwrap_or(0) as u32,
                            data: r["data"].as_str().unwrap_or_default().to_owned(),
                            gas_wanted: number(&r["gas_wanted"]),
                            gas_used: number(&r["gas_used"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let next = next.map_err(source)?["signed_header"].clone();
            let validators = validators.map_err(source)?["validators"].as_array().cloned().unwrap_or_default();
            (results, next, validators)
        }
    };
    Ok(SessionProof {
        chain_id: chain_id.to_owned(),
        session_id: entry.session_id.clone(),
        bundle_hash: entry.bundle_hash.clone(),
        height,
        tx_hash: tx_hash.to_owned(),
        tx,
        tx_index: tx_index as u32,
        block_tx_hashes,
        block_results,
        signed_header,
        next_signed_header,
        validators,
    })
}
