//! `bftws-node verify`: checks a session's proof of finality against L1's genesis, trusting no
//! node. The proof comes from an L1 node's `GET /v1/sessions/{id}/proof` or from a file saved
//! before; every check is in [`bftws_framework::proof::verify`].

use std::{path::Path, time::Duration};

use bftws_framework::{
    http_client::JsonClient,
    proof::{self, ProofError, SessionProof, TrustedL1, Verified},
};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("fetching the proof: {0}")]
    Fetch(String),
    #[error("{0}")]
    Proof(#[from] ProofError),
}

/// Where the proof comes from.
pub enum ProofSource<'a> {
    /// An L1 node's API, with a bearer token that may read it.
    Node { l1: &'a str, token: &'a str },
    /// A proof saved as JSON (the `data` of the API's answer, or the whole answer).
    File(&'a Path),
}

/// Fetches (or reads) the proof of `session_id`, verifies it against the L1 genesis at
/// `genesis`, and returns the proof with what it established.
pub async fn verify(
    source: ProofSource<'_>,
    genesis: &Path,
    session_id: &str,
) -> Result<(SessionProof, Verified), VerifyError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| VerifyError::Read { path: path.display().to_string(), source })
    };
    let trusted = TrustedL1::from_genesis_json(&read(genesis)?)?;
    let proof = match source {
        ProofSource::File(path) => parse(&read(path)?)?,
        ProofSource::Node { l1, token } => fetch(l1, token, session_id).await?,
    };
    let verified = proof::verify(&proof, &trusted, session_id)?;
    Ok((proof, verified))
}

fn parse(text: &str) -> Result<SessionProof, VerifyError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ProofError::Malformed(format!("not JSON: {e}")))?;
    let proof = value.get("data").cloned().unwrap_or(value);
    Ok(serde_json::from_value(proof).map_err(|e| ProofError::Malformed(e.to_string()))?)
}

/// The proof from an L1 node; a 503 (block H+1 not committed yet) is retried for a few seconds.
async fn fetch(l1: &str, token: &str, session_id: &str) -> Result<SessionProof, VerifyError> {
    let client = JsonClient::new(Duration::from_secs(10));
    let url = format!("{}/v1/sessions/{session_id}/proof", l1.trim_end_matches('/'));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = client.get(&url, Some(token)).await.map_err(|e| VerifyError::Fetch(e.to_string()))?;
        match reply.status {
            200 => return parse(&reply.body.to_string()),
            503 if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            status => {
                let message = reply.body["error"]["message"].as_str().unwrap_or("no message");
                return Err(VerifyError::Fetch(format!("{url} answered {status}: {message}")));
            }
        }
    }
}

/// What `verify` prints on success.
pub fn report(verified: &Verified) -> String {
    format!(
        "verified: session {} is final on L1 chain {} at height {} (tx {}, bundle {})\n  \
         headers H and H+1 signed by the L1 genesis validators (H+1 by {} of {} voting power; more than \
         2/3 needed)\n  \
         the tx is in block {}'s data_hash, its result code 0 is in block {}'s last_results_hash\n  \
         the tx is this session's bundle, its hash matching its content",
        verified.session_id,
        verified.chain_id,
        verified.height,
        verified.tx_hash,
        verified.bundle_hash,
        verified.signed_power,
        verified.total_power,
        verified.height,
        verified.height + 1
    )
}
