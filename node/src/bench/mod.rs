//! The benchmark of DESIGN §10: the paper's sequential workflow per configuration (on L2 with
//! commits to L1, or directly on L1), a concurrency sweep, and the summary beside the paper's
//! published figures. Every HTTP status is checked: a failed step fails the run.

mod concurrent;
mod report;
mod sequential;
mod stats;

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

pub use self::{
    concurrent::{run_concurrent, ConcurrentOptions},
    report::write_report,
    sequential::{run_sequential, SequentialMode, SequentialOptions},
};
use crate::devnet::{Devnet, DevnetError, DevnetSpec};

/// `L1-L2`: L1 validators and L2 replicas (one L2 validator, the rest full nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NetworkSize {
    pub l1: usize,
    pub l2: usize,
}

impl FromStr for NetworkSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (l1, l2) = text.split_once('-').ok_or_else(|| format!("'{text}' is not L1-L2 (e.g. 4-1)"))?;
        let parse = |n: &str| {
            n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| format!("'{text}': sizes are positive"))
        };
        Ok(Self { l1: parse(l1)?, l2: parse(l2)? })
    }
}

impl fmt::Display for NetworkSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.l1, self.l2)
    }
}

/// Where the benchmark finds its binaries and puts its devnets.
#[derive(Debug, Clone)]
pub struct BenchEnv {
    pub node_binary: PathBuf,
    pub cometbft: PathBuf,
    pub work_dir: PathBuf,
    pub base_port: u16,
    /// Consensus timing overrides (`l1.FIELD=VALUE`).
    pub timing: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    #[error(transparent)]
    Workflow(#[from] crate::workflow::WorkflowError),
    #[error("bench: I/O on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("bench: {0}")]
    Invalid(String),
}

impl BenchEnv {
    /// A fresh devnet of this size, ready to serve.
    pub(crate) async fn devnet(&self, size: NetworkSize, name: &str) -> Result<Devnet, BenchError> {
        let mut spec = DevnetSpec::new(self.work_dir.join(name), self.node_binary.clone(), self.cometbft.clone());
        spec.l1_validators = size.l1;
        spec.l2_validators = 1;
        spec.l2_full_nodes = size.l2 - 1;
        spec.base_port = self.base_port;
        for setting in &self.timing {
            spec.set_timing(setting)?;
        }
        let mut devnet = Devnet::create(spec)?;
        devnet.start_all(Duration::from_secs(180)).await?;
        Ok(devnet)
    }
}

/// Machine-wide CPU time, from `/proc/stat`, to report CPU use per run.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    busy: u64,
    total: u64,
}

impl CpuSample {
    pub fn now() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = text.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
        let total: u64 = fields.iter().take(8).sum();
        Some(Self { busy: total - idle, total })
    }

    /// Share of all cores busy since `earlier`, in percent of the whole machine.
    pub fn busy_percent_since(&self, earlier: &CpuSample) -> f64 {
        let total = self.total.saturating_sub(earlier.total).max(1);
        100.0 * self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

pub(crate) fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io { path: path.display().to_string(), source }
}
