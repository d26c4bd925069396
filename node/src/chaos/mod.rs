//! The fault campaign: a devnet (each node in its own network namespace when network faults
//! are wanted), concurrent clients running full sessions on both layers, a seeded schedule of
//! faults, and a checker that decides pass or fail from what the clients were told and what
//! every node holds at the end. See docs/reliability.md.

pub mod checker;
mod client;
pub mod history;
mod report;
pub mod schedule;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;

use self::{
    checker::{check, L1Entry, L2Session, Observation, Observed, Receipt, Verdict},
    client::{ClientPlan, Recorder},
    schedule::{FaultKind, ScheduledFault, Targets},
};
use crate::devnet::{Devnet, DevnetError, DevnetSpec, NodeProcess};
use bftws_framework::{http_client::JsonClient, registry::Layer};

use report::FaultWindow;

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("chaos: {0}")]
    Setup(String),
    #[error(transparent)]
    Devnet(#[from] DevnetError),
    #[error("chaos: I/O on {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub seed: u64,
    /// How long faults are injected; clients start sessions during this phase only.
    pub phase: Duration,
    pub workers: usize,
    pub l1_validators: usize,
    pub l2_validators: usize,
    pub kinds: Vec<FaultKind>,
    /// Each node in its own network namespace (root); needed by the network faults.
    pub netns: bool,
    pub dir: PathBuf,
    pub base_port: u16,
    pub node_binary: PathBuf,
    pub cometbft: PathBuf,
    /// Where the history, the verdict and the report go.
    pub out: PathBuf,
}

/// What the campaign found.
#[derive(Debug)]
pub struct CampaignResult {
    pub verdict: Verdict,
    pub report: String,
    pub out: PathBuf,
}

/// How long clients keep retrying once no session starts any more, and how long the checker
/// waits for lagging nodes to converge.
const DRAIN: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a wiped validator may take to sync the whole chain again.
const RESYNC_TIMEOUT: Duration = Duration::from_secs(900);
/// A degraded link: 10 % of what reaches the node lost, and a 1 Mbit/s bottleneck holding up
/// to 300 ms of backlog.
const DEGRADE_LOSS_PERCENT: u32 = 10;
const DEGRADE_RATE_KBIT: u32 = 1000;
const DEGRADE_QUEUE_MS: u32 = 300;
/// Each node's own disks when disks are to fill up: room for a long campaign's blocks (L2
/// writes about 17 kB of CometBFT data per block; a 20-minute campaign makes ~7,600 blocks).
/// A tmpfs takes memory only as it fills, so a full disk takes this much twice while it lasts.
const NODE_DISK_MIB: u64 = 1024;
/// How long a node whose disk was full may take to be live again: the liveness check's 30 s
/// stall limit, the watchdog's restart and a catch-up.
const FULL_DISK_RECOVERY: Duration = Duration::from_secs(75);

/// Runs a whole campaign. Blocking: it runs its own async runtime on a thread of its own
/// (inside the hub namespace when nodes have theirs).
pub fn run(options: ChaosOptions) -> Result<CampaignResult, ChaosError> {
    if let Some(kind) = options.kinds.iter().find(|k| k.needs_netns() && !options.netns) {
        return Err(ChaosError::Setup(format!("fault {kind} needs --netns (each node in its own network namespace)")));
    }
    if options.l1_validators < 4 || options.l2_validators < 1 || options.workers == 0 {
        return Err(ChaosError::Setup(
            "a campaign needs at least 4 L1 validators (one fault at a time of 3f+1), 1 L2 validator and 1 worker"
                .into(),
        ));
    }
    std::fs::create_dir_all(&options.out).map_err(io(&options.out))?;
    let mut spec = DevnetSpec::new(options.dir.clone(), options.node_binary.clone(), options.cometbft.clone());
    spec.l1_validators = options.l1_validators;
    spec.l2_validators = options.l2_validators;
    spec.base_port = options.base_port;
    // Named after the ports, so campaigns on different ports never share namespaces.
    spec.netns_prefix = options.netns.then(|| format!("bftws-c{}", options.base_port));
    if options.kinds.contains(&FaultKind::FullDisk) {
        spec.disk_mib = Some(NODE_DISK_MIB);
    }
    let devnet = Devnet::create(spec)?;
    let campaign = std::thread::spawn(move || -> Result<CampaignResult, ChaosError> {
        let mut devnet = devnet;
        if let Some(netns) = devnet.netns() {
            netns.enter_hub().map_err(DevnetError::from)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| ChaosError::Setup(format!("async runtime: {e}")))?;
        let result = runtime.block_on(campaign(&mut devnet, &options));
        devnet.stop_all();
        result
    });
    campaign.join().map_err(|_| ChaosError::Setup("the campaign thread panicked".into()))?
}

async fn campaign(devnet: &mut Devnet, options: &ChaosOptions) -> Result<CampaignResult, ChaosError> {
    devnet.start_all(START_TIMEOUT).await?;
    let names = |layer| devnet.layer(layer).map(|n| n.name.clone()).collect::<Vec<_>>();
    let targets = Targets { l1: names(Layer::L1), l2: names(Layer::L2) };
    let schedule = schedule::generate(options.seed, options.phase, &options.kinds, &targets);
    eprintln!("[chaos] seed {}: {} faults over {:?}", options.seed, schedule.len(), options.phase);

    let recorder = Recorder::new();
    let started = Instant::now();
    let plan = ClientPlan {
        apis: devnet.layer(Layer::L2).map(|n| (n.name.clone(), n.api_url.clone())).collect(),
        seed: options.seed,
        stop_starting: started + options.phase,
        give_up: started + options.phase + DRAIN,
    };
    let workers: Vec<_> =
        (0..options.workers).map(|id| tokio::spawn(client::run_worker(id, plan.clone(), recorder.clone()))).collect();

    let mut windows = Vec::new();
    let faults = run_faults(devnet, &schedule, &targets, &recorder, started, &mut windows).await;
    if let Err(err) = &faults {
        eprintln!("[chaos] {:>6} ms  the fault phase stopped: {err}", recorder.now_ms());
    }
    tokio::time::sleep_until((started + options.phase).into()).await;
    let end = async {
        restart_exited(devnet, &recorder).await?;
        devnet.start_all(START_TIMEOUT).await.map_err(ChaosError::from)
    };
    let ended = end.await;
    let phase_end_ms = recorder.now_ms();
    for worker in workers {
        let _ = worker.await;
    }
    let result = judge(devnet, options, &recorder, &schedule, &windows, phase_end_ms).await;
    // Whatever stopped the campaign, the history and what could be judged are written first.
    faults?;
    ended?;
    result
}

/// Applies and heals the schedule's faults in turn.
async fn run_faults(
    devnet: &mut Devnet,
    schedule: &[ScheduledFault],
    targets: &Targets,
    recorder: &Recorder,
    started: Instant,
    windows: &mut Vec<FaultWindow>,
) -> Result<(), ChaosError> {
    for fault in schedule {
        tokio::time::sleep_until((started + fault.at).into()).await;
        restart_exited(devnet, recorder).await?;
        let label = fault.kind.as_str();
        let from_ms = recorder.now_ms();
        eprintln!("[chaos] {:>6} ms  {label} on {}", from_ms, fault.target);
        recorder.set_fault(label);
        let own_height = node_height(devnet, &fault.target).await;
        // Logs are appended to: what this fault left starts here.
        let logs_from = LogOffsets::now(devnet, &fault.target);
        if apply(devnet, fault, targets, own_height)? {
            // Not waited for: a Byzantine node is expected to stop before it is ready. It
            // first replays what its store lost honestly; the fault lasts from its divergence.
            devnet.launch(std::slice::from_ref(&fault.target), START_TIMEOUT).await?;
            wait_for_divergence(devnet, &fault.target, &logs_from).await;
        }
        tokio::time::sleep(fault.lasts).await;
        let note = evidence(devnet, fault, &logs_from).await;
        heal(devnet, fault, recorder).await?;
        recorder.set_fault("none");
        let healed_ms = recorder.now_ms();
        windows.push(FaultWindow { kind: fault.kind, target: fault.target.clone(), from_ms, healed_ms, note });
    }
    Ok(())
}

/// Reads every node, checks the history against it, and writes the history, the verdict and
/// the report.
async fn judge(
    devnet: &mut Devnet,
    options: &ChaosOptions,
    recorder: &Recorder,
    schedule: &[ScheduledFault],
    windows: &[FaultWindow],
    phase_end_ms: u64,
) -> Result<CampaignResult, ChaosError> {
    let events = recorder.events();
    let session_ids: Vec<String> = {
        let mut ids: Vec<String> = events.iter().filter_map(|e| e.session_id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    // Lagging nodes catch up and pending commits finish: read until the verdict holds or
    // SETTLE has passed.
    let settle_until = Instant::now() + SETTLE;
    let verdict = loop {
        // A node that cannot be restarted is judged as it is: the checker reads what it can.
        if let Err(err) = restart_exited(devnet, recorder).await {
            eprintln!("[chaos] {:>6} ms  {err}", recorder.now_ms());
        }
        let observed = observe(devnet, &session_ids).await;
        let verdict = check(&events, &observed);
        if verdict.passed() || Instant::now() > settle_until {
            break verdict;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    };

    let out = &options.out;
    let history = out.join("history.jsonl");
    history::write_jsonl(&history, &events).map_err(io(&history))?;
    let verdict_path = out.join("verdict.json");
    let verdict_json = serde_json::json!({
        "seed": options.seed,
        "schedule": schedule,
        "counts": verdict.counts,
        "violations": verdict.violations,
    });
    std::fs::write(&verdict_path, serde_json::to_vec_pretty(&verdict_json).expect("verdict serializes"))
        .map_err(io(&verdict_path))?;
    let report = report::render(options, &events, windows, phase_end_ms, &verdict);
    let report_path = out.join("report.md");
    std::fs::write(&report_path, &report).map_err(io(&report_path))?;
    Ok(CampaignResult { verdict, report, out: out.clone() })
}

/// What an orchestrator does between faults: a node whose process died on its own, or whose
/// liveness check fails (`/healthz`: consensus stalled behind its peers), is logged and
/// restarted.
async fn restart_exited(devnet: &mut Devnet, recorder: &Recorder) -> Result<(), ChaosError> {
    let names: Vec<String> = devnet.nodes().iter().map(|n| n.name.clone()).collect();
    let client = JsonClient::new(Duration::from_secs(2));
    let mut restart = Vec::new();
    for name in names {
        for (which, status) in devnet.reap_exited(&name)? {
            let at = recorder.now_ms();
            eprintln!("[chaos] {at:>6} ms  {name}: {which:?} exited on its own ({status}); restarting");
            restart.push(name.clone());
        }
        let Some(node) = devnet.node(&name).filter(|n| n.is_running()) else { continue };
        if let Ok(reply) = client.get(&format!("{}/healthz", node.api_url), None).await {
            if reply.status == 503 {
                let why = reply.body["error"]["message"].as_str().unwrap_or_default().to_owned();
                eprintln!("[chaos] {:>6} ms  {name}: not live ({why}); restarting", recorder.now_ms());
                devnet.kill_process(&name, NodeProcess::Both)?;
                restart.push(name.clone());
            }
        }
    }
    restart.dedup();
    if !restart.is_empty() {
        devnet.start(&restart, START_TIMEOUT).await?;
    }
    Ok(())
}

/// Applies a fault; true when the target must then be started. `own_height`: the height the
/// target's CometBFT reports now.
fn apply(devnet: &mut Devnet, fault: &ScheduledFault, targets: &Targets, own_height: u64) -> Result<bool, ChaosError> {
    let target = fault.target.clone();
    let everyone: Vec<String> = targets.l1.iter().chain(&targets.l2).cloned().collect();
    let others: Vec<String> = everyone.iter().filter(|n| **n != target).cloned().collect();
    let netns = |devnet: &mut Devnet| {
        devnet.netns().map(|_| ()).ok_or_else(|| ChaosError::Setup(format!("{} needs namespaces", fault.kind)))
    };
    match fault.kind {
        FaultKind::KillApp => devnet.kill_process(&target, NodeProcess::App)?,
        FaultKind::KillCometbft => devnet.kill_process(&target, NodeProcess::Cometbft)?,
        FaultKind::KillNode => devnet.kill_process(&target, NodeProcess::Both)?,
        FaultKind::Pause => devnet.signal(&target, "STOP")?,
        FaultKind::IsolateL1 | FaultKind::IsolateL2 => {
            netns(devnet)?;
            devnet.netns().expect("checked").cut(&[target], &others).map_err(DevnetError::from)?;
        }
        FaultKind::SplitL1 => {
            netns(devnet)?;
            let n = targets.l1.len();
            let first = targets.l1.iter().position(|name| *name == target).unwrap_or(0);
            let half: Vec<String> = (0..n / 2).map(|k| targets.l1[(first + k) % n].clone()).collect();
            let rest: Vec<String> = targets.l1.iter().filter(|name| !half.contains(name)).cloned().collect();
            devnet.netns().expect("checked").cut(&half, &rest).map_err(DevnetError::from)?;
        }
        FaultKind::CutL2FromL1 => {
            netns(devnet)?;
            devnet.netns().expect("checked").cut(&targets.l2, &targets.l1).map_err(DevnetError::from)?;
        }
        FaultKind::ByzantineL1 => {
            devnet.kill_process(&target, NodeProcess::Both)?;
            // From its next height on: the blocks it replays at start stay honest, so it
            // diverges among live validators (or while it catches up) rather than at its own
            // handshake.
            devnet.set_fault(&target, Some(&format!("diverge-apply-from:{}", own_height + 1)))?;
            // Started again by the caller: its CometBFT stops once the app hash diverges.
            return Ok(true);
        }
        FaultKind::FullDisk => devnet.fill_disk(&target)?,
        FaultKind::Degrade => {
            netns(devnet)?;
            devnet
                .netns()
                .expect("checked")
                .degrade(&target, DEGRADE_LOSS_PERCENT, DEGRADE_RATE_KBIT, DEGRADE_QUEUE_MS)
                .map_err(DevnetError::from)?;
        }
    }
    Ok(false)
}

async fn heal(devnet: &mut Devnet, fault: &ScheduledFault, recorder: &Recorder) -> Result<(), ChaosError> {
    match fault.kind {
        FaultKind::KillApp | FaultKind::KillCometbft | FaultKind::KillNode => {
            devnet.start(std::slice::from_ref(&fault.target), START_TIMEOUT).await?;
        }
        FaultKind::Pause => devnet.signal(&fault.target, "CONT")?,
        FaultKind::FullDisk => {
            devnet.free_disk(&fault.target)?;
            // A process that stopped on the full disk is restarted; a CometBFT whose consensus
            // failed on it runs on without deciding, until the node's liveness check fails and
            // the watchdog restarts it. The next fault waits for that: one fault at a time.
            let deadline = Instant::now() + FULL_DISK_RECOVERY;
            loop {
                restart_exited(devnet, recorder).await?;
                if !behind_peers(devnet, &fault.target).await {
                    break;
                }
                if Instant::now() > deadline {
                    let at = recorder.now_ms();
                    eprintln!(
                        "[chaos] {at:>6} ms  {}: still behind its peers after {FULL_DISK_RECOVERY:?}",
                        fault.target
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        FaultKind::ByzantineL1 => {
            // What an operator does with a validator whose state forked: stop it, wipe its
            // state (keeping its keys and last-signed heights), run honest code, let it sync.
            devnet.kill_process(&fault.target, NodeProcess::Both)?;
            devnet.set_fault(&fault.target, None)?;
            devnet.reset_state(&fault.target)?;
            // It syncs the whole chain again (there is no state sync): the next fault waits.
            devnet.start(std::slice::from_ref(&fault.target), RESYNC_TIMEOUT).await?;
        }
        FaultKind::IsolateL1 | FaultKind::IsolateL2 | FaultKind::SplitL1 | FaultKind::CutL2FromL1 => {
            if let Some(netns) = devnet.netns() {
                netns.heal_cuts().map_err(DevnetError::from)?;
            }
        }
        FaultKind::Degrade => {
            if let Some(netns) = devnet.netns() {
                netns.restore(&fault.target).map_err(DevnetError::from)?;
            }
        }
    }
    Ok(())
}

/// True when a peer of `name`'s CometBFT is at least two blocks past what it has committed, or
/// its CometBFT does not answer (the liveness check's measure, see `/healthz`).
async fn behind_peers(devnet: &Devnet, name: &str) -> bool {
    let Some(node) = devnet.node(name) else { return false };
    let rpc = bftws_framework::cometbft::CometRpc::new(node.rpc_url.clone(), Duration::from_secs(2));
    match (rpc.status().await, rpc.consensus_heights().await) {
        (Ok(status), Ok(heights)) => heights.peer_ahead_of_committed(status.latest_height).is_some(),
        _ => true,
    }
}

/// Where a node's two logs ended when a fault began.
struct LogOffsets {
    app: (PathBuf, u64),
    cometbft: (PathBuf, u64),
}

impl LogOffsets {
    fn now(devnet: &Devnet, name: &str) -> Self {
        let at = |file: &str| {
            let path = devnet.node(name).map(|n| n.dir().join(file)).unwrap_or_default();
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            (path, len)
        };
        Self { app: at("app.log"), cometbft: at("cometbft.log") }
    }

    /// What was appended to a log since.
    fn since((path, offset): &(PathBuf, u64)) -> String {
        let bytes = std::fs::read(path).unwrap_or_default();
        String::from_utf8_lossy(bytes.get(*offset as usize..).unwrap_or_default()).into_owned()
    }
}

/// Waits (up to [`START_TIMEOUT`]) until a Byzantine node has applied its first wrong block.
async fn wait_for_divergence(devnet: &Devnet, name: &str, logs_from: &LogOffsets) {
    if devnet.node(name).is_none() {
        return;
    }
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if LogOffsets::since(&logs_from.app).contains("BYZANTINE TEST MODE") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The height `name`'s CometBFT reports (0 when it does not answer).
async fn node_height(devnet: &Devnet, name: &str) -> u64 {
    reported_height(devnet, name).await.unwrap_or(0)
}

/// The height `name`'s CometBFT reports in `/status`, if it answers.
async fn reported_height(devnet: &Devnet, name: &str) -> Option<u64> {
    let rpc = bftws_framework::cometbft::CometRpc::new(devnet.node(name)?.rpc_url.clone(), Duration::from_secs(2));
    rpc.status().await.ok().map(|status| status.latest_height)
}

/// The highest height any L1 node's CometBFT reports (0 when none answers).
async fn l1_height(devnet: &Devnet) -> u64 {
    let mut height = 0;
    for node in devnet.layer(Layer::L1) {
        height = height.max(node_height(devnet, &node.name).await);
    }
    height
}

/// What the fault left in the target's logs that an operator would look for: for a diverged
/// validator, CometBFT's refusal of the quorum's block and the height it stopped at.
async fn evidence(devnet: &Devnet, fault: &ScheduledFault, logs_from: &LogOffsets) -> Option<String> {
    if fault.kind != FaultKind::ByzantineL1 {
        return None;
    }
    let node = devnet.node(&fault.target)?;
    let log = LogOffsets::since(&logs_from.cometbft);
    let refusal = log
        .lines()
        .rev()
        .find_map(|line| line.find("wrong Block.Header.AppHash").map(|at| line[at..].trim_end_matches('"').to_owned()))
        .unwrap_or_else(|| {
            if LogOffsets::since(&logs_from.app).contains("BYZANTINE TEST MODE") {
                "it diverged, but its log holds no app hash refusal yet".into()
            } else {
                "it applied no block of its faulty height within the fault".into()
            }
        });
    let stuck_at = match reported_height(devnet, &node.name).await {
        Some(height) => height.to_string(),
        None => "? (its CometBFT does not answer)".to_owned(),
    };
    let network = l1_height(devnet).await;
    Some(format!("stopped at height {stuck_at} while L1 went on to {network}; {refusal}"))
}

/// Reads every session the history names from every node of both layers.
async fn observe(devnet: &Devnet, session_ids: &[String]) -> Observed {
    let client = JsonClient::new(Duration::from_secs(5));
    let mut observed = Observed::default();
    for id in session_ids {
        let mut l2 = BTreeMap::new();
        for node in devnet.layer(Layer::L2) {
            let observation = read(&client, &format!("{}/v1/sessions/{id}", node.api_url), |data| {
                Ok(L2Session {
                    status: data["status"].as_str().unwrap_or_default().to_owned(),
                    ops: data["ops"].as_u64().unwrap_or_default(),
                    receipt: non_null(&data["receipt"]).and_then(Receipt::from_json),
                })
            })
            .await;
            l2.insert(node.name.clone(), observation);
        }
        observed.l2.insert(id.clone(), l2);
        let mut l1 = BTreeMap::new();
        for node in devnet.layer(Layer::L1) {
            let observation = read(&client, &format!("{}/v1/l1/sessions/{id}", node.api_url), |data| {
                let receipt = Receipt::from_json(&data["receipt"])
                    .ok_or_else(|| format!("a ledger answer without a receipt: {data}"))?;
                Ok(L1Entry { receipt, op_count: data["ledger"]["op_count"].as_u64().unwrap_or(0) })
            })
            .await;
            l1.insert(node.name.clone(), observation);
        }
        observed.l1.insert(id.clone(), l1);
    }
    observed
}

/// One node's answer about one session: its `data` parsed on 200, none on 404, an error for
/// anything else (the node could not be read).
async fn read<T>(client: &JsonClient, url: &str, parse: impl Fn(&Value) -> Result<T, String>) -> Observation<T> {
    match client.get(url, Some("demo-auditor")).await {
        Ok(reply) if reply.status == 200 => parse(&reply.body["data"]).map(Some),
        Ok(reply) if reply.status == 404 => Ok(None),
        Ok(reply) => Err(format!("HTTP {}: {}", reply.status, reply.body)),
        Err(err) => Err(err.to_string()),
    }
}

fn non_null(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ChaosError + '_ {
    move |source| ChaosError::Io { path: path.display().to_string(), source }
}
