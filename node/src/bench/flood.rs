//! Honest commits under a flood of refused bundles: sequential supplier sessions commit through
//! L2 while flooders, from their own loopback address, send large bundles that every L1 node
//! refuses (an unknown committer, over the op cap, a forged signature). The same sessions are
//! first measured with no flood, so the two rows show what the flood costs honest commits.

use std::{
    io::Write,
    net::IpAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{io_error, stats::Summary, BenchEnv, BenchError, CpuSample, NetworkSize, Workload};
use crate::{local_network, workflow::WorkflowClient};
use bftws_framework::{http_client::JsonClient, registry::Layer};

#[derive(Debug, Clone)]
pub struct FloodOptions {
    pub size: NetworkSize,
    /// Honest sessions committed in each phase, one after the other.
    pub sessions: usize,
    /// Flooding connections per L1 node, each sending bundles back to back.
    pub flooders_per_node: usize,
    /// Where the flood comes from (a loopback address other than the nodes').
    pub source: IpAddr,
    pub out: PathBuf,
}

/// Runs both phases on one devnet; writes `flood.csv`.
pub async fn run_flood(env: &BenchEnv, options: &FloodOptions) -> Result<PathBuf, BenchError> {
    std::fs::create_dir_all(&options.out).map_err(io_error(&options.out))?;
    let devnet = env.devnet(options.size, &format!("flood-{}", options.size), Workload::SupplyChain).await?;
    let l2 =
        devnet.layer(Layer::L2).next().map(|n| n.api_url.clone()).ok_or_else(|| BenchError::Invalid("no L2".into()))?;
    let l1: Vec<String> = devnet.layer(Layer::L1).map(|n| format!("{}/v1/l1/bundles", n.api_url)).collect();
    let floods: Vec<Value> = local_network::refused_bundles()
        .await
        .map_err(BenchError::Invalid)?
        .iter()
        .map(|(bundle, _)| serde_json::to_value(bundle).expect("bundles serialize"))
        .collect();
    let floods = Arc::new(floods);
    let client = WorkflowClient::new(l2, Duration::from_secs(60));
    // Warm-up: the first blocks of a fresh chain are not typical.
    client.supplier_session("demo-sup-1", "sup-1", "PKG-FLOOD-WARMUP").await?;

    let path = options.out.join("flood.csv");
    let mut csv = std::fs::File::create(&path).map_err(io_error(&path))?;
    writeln!(
        csv,
        "config,phase,sessions,commit_p50_ms,commit_p95_ms,commit_p99_ms,commit_max_ms,bad_bundles,bad_bundles_per_s,answered_429,cpu_percent"
    )
    .map_err(io_error(&path))?;
    for phase in ["no_flood", "flood"] {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, limited) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut flooders = Vec::new();
        if phase == "flood" {
            for url in &l1 {
                for _ in 0..options.flooders_per_node {
                    let (url, floods, stop) = (url.clone(), floods.clone(), stop.clone());
                    let (sent, limited) = (sent.clone(), limited.clone());
                    let http = JsonClient::from_address(Duration::from_secs(30), options.source);
                    flooders.push(tokio::spawn(async move {
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            if let Ok(reply) = http.post(&url, None, &floods[i % floods.len()]).await {
                                sent.fetch_add(1, Ordering::Relaxed);
                                if reply.status == 429 {
                                    limited.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            i += 1;
                        }
                    }));
                }
            }
            // Let the flood reach its steady state before measuring.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let (cpu_before, started) = (CpuSample::now(), Instant::now());
        let (sent_before, limited_before) = (sent.load(Ordering::Relaxed), limited.load(Ordering::Relaxed));
        let mut commits = Vec::new();
        for i in 0..options.sessions {
            let run = client.supplier_session("demo-sup-1", "sup-1", &format!("PKG-FLOOD-{phase}-{i}")).await?;
            commits.extend(run.steps.iter().filter(|s| s.step == "commit").map(|s| s.latency_ms));
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = match (cpu_before, CpuSample::now()) {
            (Some(before), Some(after)) => after.busy_percent_since(&before),
            _ => f64::NAN,
        };
        stop.store(true, Ordering::Relaxed);
        for flooder in flooders {
            let _ = flooder.await;
        }
        let bad = sent.load(Ordering::Relaxed) - sent_before;
        let answered_429 = limited.load(Ordering::Relaxed) - limited_before;
        let s = Summary::of(&commits);
        writeln!(
            csv,
            "{},{phase},{},{:.2},{:.2},{:.2},{:.2},{bad},{:.0},{answered_429},{cpu:.0}",
            options.size,
            commits.len(),
            s.p50,
            s.p95,
            s.p99,
            s.max,
            bad as f64 / elapsed,
        )
        .map_err(io_error(&path))?;
        eprintln!(
            "[flood {}] {phase}: commit p50 {:.1} ms p99 {:.1} ms over {} sessions; {bad} bad bundles ({:.0}/s), {answered_429} answered 429; CPU {cpu:.0}%",
            options.size,
            s.p50,
            s.p99,
            commits.len(),
            bad as f64 / elapsed,
        );
    }
    Ok(path)
}
