//! What a proof of finality costs: its size and the time to verify it, per L1 size. Each
//! configuration commits supplier sessions, fetches each session's proof from an L1 node and
//! verifies it against the L1 genesis many times (the verification a client, or the L2
//! committer for every commit, pays).

use std::{io::Write, path::PathBuf, time::Duration};

use super::{io_error, stats::Summary, BenchEnv, BenchError, NetworkSize, Workload};
use crate::{verify, workflow::WorkflowClient};
use bftws_framework::{
    proof::{self, TrustedL1},
    registry::Layer,
};

#[derive(Debug, Clone)]
pub struct ProofOptions {
    pub sizes: Vec<NetworkSize>,
    /// Sessions committed (and proofs fetched) per configuration.
    pub sessions: usize,
    /// Verifications timed per proof.
    pub repeats: usize,
    pub out: PathBuf,
}

/// Measures every size; writes `proofs.csv`.
pub async fn run_proofs(env: &BenchEnv, options: &ProofOptions) -> Result<PathBuf, BenchError> {
    std::fs::create_dir_all(&options.out).map_err(io_error(&options.out))?;
    let path = options.out.join("proofs.csv");
    let mut csv = std::fs::File::create(&path).map_err(io_error(&path))?;
    writeln!(
        csv,
        "config,l1_validators,proofs,bytes_p50,bytes_max,verify_us_p50,verify_us_p99,supplier_l1_tx_bytes,warehouse_l1_tx_bytes"
    )
        .map_err(io_error(&path))?;
    for size in &options.sizes {
        let devnet = env.devnet(*size, &format!("proofs-{size}"), Workload::SupplyChain).await?;
        let l2 = devnet.layer(Layer::L2).next().ok_or_else(|| BenchError::Invalid("no L2 node".into()))?;
        let l1 = devnet.layer(Layer::L1).next().ok_or_else(|| BenchError::Invalid("no L1 node".into()))?;
        let genesis = l1.dir.join("cometbft/config/genesis.json");
        let trusted = std::fs::read_to_string(&genesis)
            .map_err(io_error(&genesis))
            .and_then(|json| TrustedL1::from_genesis_json(&json).map_err(|e| BenchError::Invalid(e.to_string())))?;
        let client = WorkflowClient::new(l2.api_url.clone(), Duration::from_secs(30));
        let (mut bytes, mut verify_us) = (Vec::new(), Vec::new());
        // What each session costs L1 in transaction bytes (its bundle), from the proof's `tx`.
        let (mut supplier_tx, mut warehouse_tx) = (Vec::new(), Vec::new());
        let proof_of = |session_id: String| {
            let (l1, genesis) = (&l1.api_url, &genesis);
            async move {
                let source = verify::ProofSource::Node { l1, token: "demo-auditor" };
                let (proof, _) = verify::verify(source, genesis, &session_id)
                    .await
                    .map_err(|e| BenchError::Invalid(e.to_string()))?;
                Ok::<_, BenchError>(proof)
            }
        };
        for i in 0..options.sessions {
            let package = format!("PKG-PROOF-{size}-{i}");
            let run = client.supplier_session("demo-sup-1", "sup-1", &package).await?;
            let proof = proof_of(run.session_id.clone()).await?;
            supplier_tx.push(tx_bytes(&proof.tx));
            let warehouse = client.warehouse_session("demo-op-1", "sup-1", &package).await?;
            warehouse_tx.push(tx_bytes(&proof_of(warehouse.session_id).await?.tx));
            bytes.push(serde_json::to_vec(&proof).map(|b| b.len() as f64).unwrap_or(0.0));
            for _ in 0..options.repeats {
                let started = std::time::Instant::now();
                proof::verify(&proof, &trusted, &run.session_id).map_err(|e| BenchError::Invalid(e.to_string()))?;
                verify_us.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
        let (size_stats, time_stats) = (Summary::of(&bytes), Summary::of(&verify_us));
        let (supplier_tx, warehouse_tx) = (Summary::of(&supplier_tx), Summary::of(&warehouse_tx));
        writeln!(
            csv,
            "{size},{},{},{:.0},{:.0},{:.0},{:.0},{:.0},{:.0}",
            size.l1,
            size_stats.count,
            size_stats.p50,
            size_stats.max,
            time_stats.p50,
            time_stats.p99,
            supplier_tx.p50,
            warehouse_tx.p50
        )
        .map_err(io_error(&path))?;
        eprintln!(
            "bench proofs {size}: {} proofs of {:.0} bytes (p50), verified in {:.0} µs (p50); L1 tx of a supplier session {:.0} bytes, of a warehouse session {:.0}",
            size_stats.count, size_stats.p50, time_stats.p50, supplier_tx.p50, warehouse_tx.p50
        );
    }
    Ok(path)
}

/// The length of a proof's base64 transaction, decoded.
fn tx_bytes(tx: &str) -> f64 {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(tx).map(|b| b.len() as f64).unwrap_or(0.0)
}
