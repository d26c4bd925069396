//! Throughput: W workers, each running supplier + warehouse sessions back to back for D
//! seconds on one configuration, for each W of a sweep.

use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{io_error, stats::Summary, BenchEnv, BenchError, CpuSample, NetworkSize, Workload};
use crate::workflow::{WorkflowClient, WorkflowError};
use bftws_framework::registry::Layer;

#[derive(Debug, Clone)]
pub struct ConcurrentOptions {
    pub size: NetworkSize,
    pub workers: Vec<usize>,
    pub duration: Duration,
    pub workload: Workload,
    pub out: PathBuf,
}

#[derive(Default)]
struct Tally {
    sessions: usize,
    l2_ops: Vec<f64>,
    commits: Vec<f64>,
    errors: BTreeMap<String, usize>,
}

/// Runs the sweep on one devnet; writes `concurrency.csv` (`escrow-concurrency.csv` for escrow).
pub async fn run_concurrent(env: &BenchEnv, options: &ConcurrentOptions) -> Result<PathBuf, BenchError> {
    std::fs::create_dir_all(&options.out).map_err(io_error(&options.out))?;
    let prefix = options.workload.file_prefix();
    let devnet = env.devnet(options.size, &format!("{prefix}concurrent-{}", options.size), options.workload).await?;
    let apis: Vec<String> = devnet.layer(Layer::L2).map(|n| n.api_url.clone()).collect();
    let path = options.out.join(format!("{prefix}concurrency.csv"));
    let mut csv = std::fs::File::create(&path).map_err(io_error(&path))?;
    writeln!(
        csv,
        "config,workers,duration_s,sessions,sessions_per_s,l2_p50_ms,l2_p95_ms,l2_p99_ms,commit_p50_ms,commit_p95_ms,commit_p99_ms,errors,cpu_percent"
    )
    .map_err(io_error(&path))?;
    for (round, &workers) in options.workers.iter().enumerate() {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let deadline = Instant::now() + options.duration;
        let cpu_before = CpuSample::now();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..workers {
            let client = WorkflowClient::new(apis[worker % apis.len()].clone(), Duration::from_secs(60));
            let tally = tally.clone();
            let workload = options.workload;
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    let outcome = workload.sessions(&client, &format!("C{round}-W{worker}-{n}"), worker).await;
                    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                    match outcome {
                        Ok(runs) => {
                            for run in runs {
                                tally.sessions += 1;
                                for step in run.steps {
                                    if step.step == "commit" {
                                        tally.commits.push(step.latency_ms);
                                    } else {
                                        tally.l2_ops.push(step.latency_ms);
                                    }
                                }
                            }
                        }
                        Err(err) => *tally.errors.entry(error_kind(&err)).or_default() += 1,
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = match (cpu_before, CpuSample::now()) {
            (Some(before), Some(after)) => after.busy_percent_since(&before),
            _ => f64::NAN,
        };
        let tally = tally.lock().unwrap_or_else(|p| p.into_inner());
        let (l2, commit) = (Summary::of(&tally.l2_ops), Summary::of(&tally.commits));
        let errors: Vec<String> = tally.errors.iter().map(|(k, n)| format!("{k}={n}")).collect();
        let rate = tally.sessions as f64 / elapsed;
        writeln!(
            csv,
            "{},{workers},{elapsed:.1},{},{rate:.1},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{},{cpu:.0}",
            options.size,
            tally.sessions,
            l2.p50,
            l2.p95,
            l2.p99,
            commit.p50,
            commit.p95,
            commit.p99,
            if errors.is_empty() { "none".to_owned() } else { errors.join(";") },
        )
        .map_err(io_error(&path))?;
        eprintln!(
            "[concurrent {}] {workers:>3} workers: {rate:.1} sessions/s, L2 p50 {:.1} ms p99 {:.1} ms, commit p50 {:.1} ms p99 {:.1} ms, errors {}, CPU {cpu:.0}%",
            options.size,
            l2.p50,
            l2.p99,
            commit.p50,
            commit.p99,
            errors.len()
        );
    }
    Ok(path)
}

fn error_kind(err: &WorkflowError) -> String {
    match err {
        WorkflowError::Http(e) if e.is_transport() => "transport".into(),
        WorkflowError::Http(_) => "bad_reply".into(),
        WorkflowError::Status { step, status, .. } => format!("{step}:{status}"),
    }
}
