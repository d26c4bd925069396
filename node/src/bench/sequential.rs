//! The paper's evaluation: per configuration, a fresh devnet and N sequential iterations of a
//! supplier session (register a package, commit) followed by a warehouse session (start, scan,
//! validate, qc, label, commit), with a fixed pause between steps. One CSV per run with the
//! paper's columns.

use std::{io::Write, path::PathBuf, time::Duration};

use super::{io_error, BenchEnv, BenchError, CpuSample, NetworkSize, Workload};
use crate::workflow::{StepTiming, WorkflowClient};
use bftws_framework::registry::Layer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequentialMode {
    /// Steps on L2, sessions committed to L1 (bftws).
    TwoLayer,
    /// Every step its own L1 transaction (the single-layer baseline).
    DirectL1,
}

impl SequentialMode {
    pub fn name(self) -> &'static str {
        match self {
            SequentialMode::TwoLayer => "l2",
            SequentialMode::DirectL1 => "direct-l1",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SequentialOptions {
    pub sizes: Vec<NetworkSize>,
    pub iterations: usize,
    pub pause: Duration,
    pub mode: SequentialMode,
    pub workload: Workload,
    pub out: PathBuf,
}

/// Runs every configuration; returns the CSV files written.
pub async fn run_sequential(env: &BenchEnv, options: &SequentialOptions) -> Result<Vec<PathBuf>, BenchError> {
    let dir = options.out.join("sequential");
    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let mut written = Vec::new();
    for size in &options.sizes {
        let name = format!("{}{}-{size}", options.workload.file_prefix(), options.mode.name());
        let devnet = env.devnet(*size, &name, options.workload).await?;
        let api = match options.mode {
            SequentialMode::TwoLayer => devnet.layer(Layer::L2).last(),
            SequentialMode::DirectL1 => devnet.layer(Layer::L1).next(),
        }
        .map(|n| n.api_url.clone())
        .ok_or_else(|| BenchError::Invalid("devnet without nodes".into()))?;
        let mut client = WorkflowClient::new(api, Duration::from_secs(60));
        // One unmeasured iteration first: the first blocks of a fresh chain are not typical.
        run_iteration(&client, options.workload, 0, &name).await?;
        client.pause = options.pause;
        let path = dir.join(format!("{name}.csv"));
        let mut csv = std::fs::File::create(&path).map_err(io_error(&path))?;
        writeln!(csv, "Iteration,Step,Method,Endpoint,Layer,Latency_ms,BlockHeight").map_err(io_error(&path))?;
        let cpu_before = CpuSample::now();
        let started = std::time::Instant::now();
        for iteration in 1..=options.iterations {
            for step in run_iteration(&client, options.workload, iteration, &name).await? {
                writeln!(
                    csv,
                    "{iteration},{},{},{},{},{:.3},{}",
                    step.step, step.method, step.endpoint, step.layer, step.latency_ms, step.block_height
                )
                .map_err(io_error(&path))?;
            }
            eprint!(
                "\r[{name}] iteration {iteration}/{} ({:.0} s)",
                options.iterations,
                started.elapsed().as_secs_f64()
            );
        }
        let cpu = match (cpu_before, CpuSample::now()) {
            (Some(before), Some(after)) => after.busy_percent_since(&before),
            _ => f64::NAN,
        };
        eprintln!(
            "\r[{name}] {} iterations in {:.0} s, machine CPU {cpu:.0}%",
            options.iterations,
            started.elapsed().as_secs_f64()
        );
        let meta = dir.join(format!("{name}.cpu"));
        std::fs::write(&meta, format!("{cpu:.1}\n")).map_err(io_error(&meta))?;
        written.push(path);
        drop(devnet);
    }
    Ok(written)
}

/// One pair of the workload's sessions on fresh objects.
async fn run_iteration(
    client: &WorkflowClient,
    workload: Workload,
    iteration: usize,
    run: &str,
) -> Result<Vec<StepTiming>, BenchError> {
    let sessions = workload.sessions(client, &format!("{run}-{iteration}"), 0).await?;
    Ok(workload.named_steps(sessions))
}
