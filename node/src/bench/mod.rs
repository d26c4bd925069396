//! The benchmark of DESIGN §10: the paper's sequential workflow per configuration (on L2 with
//! commits to L1, or directly on L1), a concurrency sweep, and the summary beside the paper's
//! published figures. Every HTTP status is checked: a failed step fails the run.

mod concurrent;
mod flood;
mod idle;
mod proofs;
mod report;
mod sequential;
mod stats;

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

pub use self::{
    concurrent::{run_concurrent, ConcurrentOptions},
    flood::{run_flood, FloodOptions},
    idle::{run_idle, IdleOptions},
    proofs::{run_proofs, ProofOptions},
    report::write_report,
    sequential::{run_sequential, SequentialMode, SequentialOptions},
};
use crate::{
    devnet::{Devnet, DevnetError, DevnetSpec},
    workflow::{SessionRun, StepTiming, WorkflowClient, WorkflowError},
};

/// What the benchmark's clients do: a pair of sessions of one service, the first making what
/// the second works on (a package to handle, an item to buy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Workload {
    /// The paper's workflow: a supplier session registers a package, a warehouse session
    /// scans, validates, inspects and labels it.
    #[default]
    SupplyChain,
    /// A seller session lists an item; a buyer session reserves, pays and confirms it.
    Escrow,
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "supply-chain" => Ok(Self::SupplyChain),
            "escrow" => Ok(Self::Escrow),
            other => Err(format!("unknown workload '{other}' (supply-chain, escrow)")),
        }
    }
}

impl Workload {
    /// The service the devnet runs.
    pub fn service(self) -> &'static str {
        match self {
            Workload::SupplyChain => "supply-chain",
            Workload::Escrow => "escrow",
        }
    }

    /// Prefix of result file names (none for the paper's workload, whose names stay as they were).
    pub fn file_prefix(self) -> &'static str {
        match self {
            Workload::SupplyChain => "",
            Workload::Escrow => "escrow-",
        }
    }

    /// One pair of sessions on fresh objects named after `tag`; `actor` picks which of the two
    /// demo actors of each kind runs them.
    pub(crate) async fn sessions(
        self,
        client: &WorkflowClient,
        tag: &str,
        actor: usize,
    ) -> Result<[SessionRun; 2], WorkflowError> {
        match self {
            Workload::SupplyChain => {
                let (supplier, operator) = if actor.is_multiple_of(2) { ("sup-1", "op-1") } else { ("sup-2", "op-2") };
                let package = format!("PKG-{tag}");
                let made = client.supplier_session(&format!("demo-{supplier}"), supplier, &package).await?;
                let used = client.warehouse_session(&format!("demo-{operator}"), supplier, &package).await?;
                Ok([made, used])
            }
            Workload::Escrow => {
                // Each client its own buyer: two sessions paying from one balance at once
                // conflict (the later commit is refused on L1), which is the service's rule,
                // not a cost to measure.
                let seller = if actor.is_multiple_of(2) { "s-1" } else { "s-2" };
                let buyer = format!("b-{}", actor % bftws_escrow::demo::MORE_BUYERS + 1);
                let listing = format!("L-{tag}");
                // One cent: the demo balances pay for thousands of purchases.
                let made = client.seller_session(&format!("demo-{seller}"), &listing, 1).await?;
                let used = client.buyer_session(&format!("demo-{buyer}"), &listing).await?;
                Ok([made, used])
            }
        }
    }

    /// The steps of a pair of sessions under the benchmark's step names: the first session's
    /// start and commit are `<kind>_start` / `<kind>_commit`, the second's commit `commit_l1`.
    pub(crate) fn named_steps(self, [made, used]: [SessionRun; 2]) -> Vec<StepTiming> {
        let (start, commit) = match self {
            Workload::SupplyChain => ("supplier_start", "supplier_commit"),
            Workload::Escrow => ("seller_start", "seller_commit"),
        };
        let mut steps = Vec::new();
        for mut step in made.steps {
            step.step = match step.step {
                "start_session" => start,
                "commit" => commit,
                other => other,
            };
            steps.push(step);
        }
        for mut step in used.steps {
            if step.step == "commit" {
                step.step = "commit_l1";
            }
            steps.push(step);
        }
        steps
    }
}

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
    Workflow(#[from] WorkflowError),
    #[error("bench: I/O on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("bench: {0}")]
    Invalid(String),
}

impl BenchEnv {
    /// A fresh devnet of this size, ready to serve.
    pub(crate) async fn devnet(&self, size: NetworkSize, name: &str, workload: Workload) -> Result<Devnet, BenchError> {
        let mut spec = DevnetSpec::new(self.work_dir.join(name), self.node_binary.clone(), self.cometbft.clone());
        spec.service = workload.service().to_owned();
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
