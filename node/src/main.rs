//! The `bftws-node` command.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use std::time::Duration;

use bftws_framework::{config::NodeConfig, http, node_process, registry::Layer};
use bftws_node::{
    bench::{
        run_concurrent, run_flood, run_idle, run_proofs, run_sequential, write_report, BenchEnv, ConcurrentOptions,
        FloodOptions, IdleOptions, NetworkSize, ProofOptions, SequentialMode, SequentialOptions, Workload,
    },
    chaos,
    cluster_files::ClusterShape,
    devnet::{Devnet, DevnetSpec},
    local_network, services, verify,
    workflow::{SessionRun, WorkflowClient},
};
use bftws_supply_chain::demo;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "bftws-node", version, about = "bftws node: two-layer BFT web services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole two-layer service in this process on the in-process sequencer (no
    /// CometBFT): the real handlers, bundles and API, with demo data and tokens.
    Dev {
        /// Address of the HTTP API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Keep state in this directory (in memory when absent).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The init step of a Kubernetes pod: write this ordinal's CometBFT home, origin key and
    /// node config from what the operator mounted.
    Init {
        /// This pod's ordinal (the StatefulSet pod index).
        #[arg(long, env = "BFTWS_ORDINAL")]
        ordinal: u32,
        #[arg(long, default_value = bftws_home::cluster::MANIFEST_FILE)]
        manifest: PathBuf,
        #[arg(long, default_value = bftws_home::cluster::GENESIS_FILE)]
        genesis: PathBuf,
        #[arg(long, default_value = bftws_home::cluster::KEYS_DIR)]
        keys_dir: PathBuf,
        #[arg(long, default_value = bftws_home::cluster::DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Run one node: the ABCI application for its CometBFT and the HTTP API.
    Run {
        /// The node's configuration file (JSON).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a local two-layer network of real CometBFT processes on 127.0.0.1.
    Devnet {
        /// L1 validators.
        #[arg(long, default_value_t = 4)]
        l1: usize,
        /// L2 replicas (validators + full nodes).
        #[arg(long, default_value_t = 1)]
        l2: usize,
        /// L2 validators (the other L2 replicas are full nodes).
        #[arg(long, default_value_t = 1)]
        l2_validators: usize,
        /// Where node homes, state and logs go (emptied first).
        #[arg(long, default_value = ".devnet")]
        dir: PathBuf,
        /// First port; L1 nodes use ports from here, L2 nodes from here + 500.
        #[arg(long, default_value_t = 26600)]
        base_port: u16,
        /// The cometbft binary.
        #[arg(long, env = "BFTWS_COMETBFT")]
        cometbft: Option<PathBuf>,
        /// The service every node runs: supply-chain or escrow.
        #[arg(long, default_value = services::DEFAULT)]
        service: String,
        /// Run one supplier and one warehouse session once the network is ready (supply-chain).
        #[arg(long)]
        demo: bool,
        /// Exit (stopping the network) after the demo instead of serving.
        #[arg(long, requires = "demo")]
        exit_after_demo: bool,
        /// CometBFT's log level: info, debug, error or none.
        #[arg(long, default_value = "error")]
        cometbft_log_level: String,
        /// Override a consensus timing field of one layer, e.g. `l1.flush_throttle_timeout=2ms`
        /// (repeatable; names as in config.toml).
        #[arg(long = "timing", value_name = "LAYER.FIELD=VALUE")]
        timing: Vec<String>,
    },
    /// Benchmark: the paper's sequential workflow per configuration, a direct-L1 baseline, a
    /// concurrency sweep, and the summary beside the paper's figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Run one supplier and one warehouse session (DEMO tokens) against a node's API, printing
    /// each step and the L1 receipts; fails on the first unexpected reply.
    Demo {
        /// The API base URL of an L2 node, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        api: String,
        /// The package the two sessions register and handle: an id not used before.
        #[arg(long)]
        package_id: String,
    },
    /// Check that a session is final on L1, trusting no node: its proof (from an L1 node, or a
    /// saved file) against L1's genesis validators. Prints what was verified; exits non-zero
    /// naming the check that failed.
    Verify {
        /// An L1 node's API base URL, e.g. http://127.0.0.1:27100.
        #[arg(long, required_unless_present = "proof")]
        l1: Option<String>,
        /// A bearer token the L1 node accepts for reads.
        #[arg(long, default_value = "demo-auditor")]
        token: String,
        #[arg(long)]
        session: String,
        /// The trust anchor: L1's genesis.json (its chain id and validator set).
        #[arg(long)]
        genesis: PathBuf,
        /// Verify this saved proof instead of fetching one.
        #[arg(long, conflicts_with = "l1")]
        proof: Option<PathBuf>,
        /// Also write the fetched proof here (JSON), for checking again later.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// A fault campaign: a devnet, concurrent clients running full sessions, a seeded schedule
    /// of faults (crashes, pauses, partitions, delay and loss), then a checker that fails on
    /// anything acknowledged lost, applied twice, or L1 and L2 disagreeing (docs/reliability.md).
    /// Writes history.jsonl, verdict.json and report.md; exits non-zero on a violation.
    Chaos {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds of faults (clients start sessions during this time only).
        #[arg(long, default_value_t = 120)]
        seconds: u64,
        #[arg(long, default_value_t = 6)]
        workers: usize,
        #[arg(long, default_value_t = 4)]
        l1: usize,
        #[arg(long, default_value_t = 4)]
        l2: usize,
        /// Fault kinds, comma-separated (default: every kind the mode allows).
        #[arg(long, value_delimiter = ',')]
        faults: Vec<chaos::schedule::FaultKind>,
        /// Each node in its own network namespace (root): enables the network faults.
        #[arg(long)]
        netns: bool,
        #[arg(long, default_value = ".chaos")]
        dir: PathBuf,
        #[arg(long, default_value_t = 28600)]
        base_port: u16,
        #[arg(long, env = "BFTWS_COMETBFT")]
        cometbft: Option<PathBuf>,
        /// Where the history, verdict and report go.
        #[arg(long, default_value = ".chaos/results")]
        out: PathBuf,
    },
    /// Write what the operator would mount into each pod of an L1 + L2 deployment (layer
    /// manifests, genesis, keys, DEMO tokens and commit key) to run the node image without
    /// Kubernetes; node `l1-0` is reached at host `l1-0` (see scripts/image-smoke.sh).
    ClusterFiles {
        #[arg(long, default_value_t = 4)]
        l1: u32,
        /// L2 replicas (validators + full nodes).
        #[arg(long, default_value_t = 1)]
        l2: u32,
        #[arg(long, default_value_t = 1)]
        l2_validators: u32,
        /// Output directory (one folder per mount; existing files are replaced).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct BenchShared {
    /// Output directory (CSVs, summary).
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Where devnets are created.
    #[arg(long, default_value = ".bench")]
    work_dir: PathBuf,
    #[arg(long, default_value_t = 27600)]
    base_port: u16,
    #[arg(long, env = "BFTWS_COMETBFT")]
    cometbft: Option<PathBuf>,
    /// Consensus timing overrides, as for `devnet --timing`.
    #[arg(long = "timing", value_name = "LAYER.FIELD=VALUE")]
    timing: Vec<String>,
    /// What the clients do: `supply-chain` (the paper's workflow) or `escrow` (list an item;
    /// reserve, pay, confirm it).
    #[arg(long, default_value = "supply-chain")]
    workload: Workload,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// N sequential iterations per configuration (the paper's method).
    Sequential {
        #[command(flatten)]
        shared: BenchShared,
        /// Configurations `L1-L2`, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "4-1,7-1,10-1,13-1,16-1,4-2,7-2,10-2,13-2,16-2")]
        configs: Vec<NetworkSize>,
        #[arg(long, default_value_t = 100)]
        iterations: usize,
        /// Pause between steps (the paper's 100 ms).
        #[arg(long, default_value_t = 100)]
        pause_ms: u64,
        /// Run every step as its own L1 transaction (the single-layer baseline).
        #[arg(long)]
        direct_l1: bool,
    },
    /// W workers for D seconds on one configuration, for each W.
    Concurrent {
        #[command(flatten)]
        shared: BenchShared,
        #[arg(long, default_value = "4-1")]
        config: NetworkSize,
        #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
        workers: Vec<usize>,
        #[arg(long, default_value_t = 20)]
        duration_secs: u64,
    },
    /// Honest commits with no flood, then under a flood of bundles every L1 node refuses, sent
    /// from another loopback address.
    Flood {
        #[command(flatten)]
        shared: BenchShared,
        #[arg(long, default_value = "4-1")]
        config: NetworkSize,
        /// Honest sessions committed per phase.
        #[arg(long, default_value_t = 50)]
        sessions: usize,
        /// Flooding connections per L1 node.
        #[arg(long, default_value_t = 2)]
        flooders_per_node: usize,
        /// The flood's source address (loopback, not the nodes' 127.0.0.1).
        #[arg(long, default_value = "127.0.0.2")]
        source: std::net::IpAddr,
    },
    /// The CPU an idle devnet uses, with no client, per process kind.
    Idle {
        #[command(flatten)]
        shared: BenchShared,
        #[arg(long, value_delimiter = ',', default_value = "4-1,16-1")]
        configs: Vec<NetworkSize>,
        /// Seconds after ready before the window.
        #[arg(long, default_value_t = 5)]
        settle_secs: u64,
        #[arg(long, default_value_t = 20)]
        window_secs: u64,
    },
    /// Proofs of finality: size and verification time per L1 size (proofs.csv).
    Proofs {
        #[command(flatten)]
        shared: BenchShared,
        #[arg(long, value_delimiter = ',', default_value = "4-1,7-1,16-1")]
        configs: Vec<NetworkSize>,
        #[arg(long, default_value_t = 10)]
        sessions: usize,
        #[arg(long, default_value_t = 100)]
        repeats: usize,
    },
    /// Write summary.csv and summary.md from the CSVs in --out.
    Report {
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        /// The paper's published figures.
        #[arg(long, default_value = "bench/reference/paper-results.csv")]
        paper: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&http::openapi(&bftws_supply_chain::registry()))?);
            Ok(())
        }
        Command::Init { ordinal, manifest, genesis, keys_dir, data_dir } => {
            let paths = bftws_node::pod_init::InitPaths { manifest, genesis, keys_dir, data_dir };
            let config = bftws_node::pod_init::run(&paths, ordinal)?;
            println!("wrote {}", config.display());
            Ok(())
        }
        Command::Run { config } => {
            let config = NodeConfig::load(&config)?;
            let registry = services::registry(&config.service)?;
            node_process::run(config, registry, shutdown_signal()).await.map_err(|e| e as Box<dyn std::error::Error>)
        }
        Command::Devnet {
            l1,
            l2,
            l2_validators,
            dir,
            base_port,
            cometbft,
            service,
            demo,
            exit_after_demo,
            cometbft_log_level,
            timing,
        } => {
            if l2_validators == 0 || l2_validators > l2 {
                return Err(format!("--l2-validators must be between 1 and --l2 ({l2})").into());
            }
            services::registry(&service)?;
            if demo && service != bftws_supply_chain::NAME {
                return Err(format!("--demo runs the supply chain's workflow; '{service}' has none").into());
            }
            let cometbft = match cometbft {
                Some(path) => path,
                None => default_cometbft()?,
            };
            let mut spec = DevnetSpec::new(dir, std::env::current_exe()?, cometbft);
            spec.l1_validators = l1;
            spec.l2_validators = l2_validators;
            spec.l2_full_nodes = l2 - l2_validators;
            spec.base_port = base_port;
            spec.log_level = cometbft_log_level;
            spec.service = service;
            for setting in &timing {
                spec.set_timing(setting)?;
            }
            run_devnet(spec, demo, exit_after_demo).await
        }
        Command::Bench { command } => run_bench(command).await,
        Command::Demo { api, package_id } => run_demo(&api, &package_id).await.map(drop),
        Command::Verify { l1, token, session, genesis, proof, save } => {
            let source = match (&proof, &l1) {
                (Some(path), _) => verify::ProofSource::File(path),
                (None, Some(l1)) => verify::ProofSource::Node { l1, token: &token },
                (None, None) => return Err("give --l1 URL or --proof FILE".into()),
            };
            let (proof, verified) = verify::verify(source, &genesis, &session).await?;
            if let Some(path) = save {
                std::fs::write(&path, serde_json::to_vec_pretty(&proof)?)?;
            }
            println!("{}", verify::report(&verified));
            Ok(())
        }
        Command::ClusterFiles { l1, l2, l2_validators, out } => {
            if l2_validators == 0 || l2_validators > l2 {
                return Err(format!("--l2-validators must be between 1 and --l2 ({l2})").into());
            }
            let shape = ClusterShape { l1_validators: l1, l2_validators, l2_full_nodes: l2 - l2_validators };
            bftws_node::cluster_files::write(shape, &out)?;
            println!("wrote the mounts of {l1} L1 and {l2} L2 nodes to {}", out.display());
            Ok(())
        }
        Command::Chaos { seed, seconds, workers, l1, l2, faults, netns, dir, base_port, cometbft, out } => {
            let kinds = if faults.is_empty() {
                chaos::schedule::FaultKind::ALL
                    .into_iter()
                    .filter(|k| netns || !k.needs_netns())
                    // A Byzantine validator needs the test-only build.
                    .filter(|k| cfg!(feature = "byzantine-test") || *k != chaos::schedule::FaultKind::ByzantineL1)
                    .collect()
            } else {
                faults
            };
            let options = chaos::ChaosOptions {
                seed,
                phase: Duration::from_secs(seconds),
                workers,
                l1_validators: l1,
                l2_validators: l2,
                kinds,
                netns,
                dir,
                base_port,
                node_binary: std::env::current_exe()?,
                cometbft: match cometbft {
                    Some(path) => path,
                    None => default_cometbft()?,
                },
                out,
            };
            let result = chaos::run(options)?;
            println!("{}", result.report);
            println!("history, verdict and report in {}", result.out.display());
            if result.verdict.passed() {
                Ok(())
            } else {
                Err(format!(
                    "{} violations (see {}/verdict.json)",
                    result.verdict.violations.len(),
                    result.out.display()
                )
                .into())
            }
        }
        Command::Dev { listen, data_dir } => {
            if let Some(dir) = &data_dir {
                std::fs::create_dir_all(dir)?;
            }
            let network = local_network::demo(data_dir.as_deref())?;
            let resumed = network.committer.resume_pending()?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!("bftws dev node (in-process sequencer, no CometBFT) on http://{}", listener.local_addr()?);
            eprintln!("web console: http://{}/ (sign in with a demo token)", listener.local_addr()?);
            eprintln!("demo tokens (DEMO ONLY):");
            for (token, actor) in demo::tokens() {
                eprintln!("  {token:<18} {} ({})", actor.id, actor.role.as_str());
            }
            if resumed > 0 {
                eprintln!("resuming {resumed} session(s) left committing");
            }
            http::serve(listener, network.api, shutdown_signal()).await?;
            Ok(())
        }
    }
}

async fn run_devnet(spec: DevnetSpec, demo: bool, exit_after_demo: bool) -> Result<(), Box<dyn std::error::Error>> {
    let (l1, l2) = (spec.l1_validators, spec.l2_validators + spec.l2_full_nodes);
    let spec_service = spec.service.clone();
    eprintln!(
        "starting a {spec_service} devnet: {l1} L1 validators, {l2} L2 replicas ({} validators) in {}",
        spec.l2_validators,
        spec.dir.display()
    );
    let mut devnet = Devnet::create(spec)?;
    let started = std::time::Instant::now();
    tokio::select! {
        ready = devnet.start_all(Duration::from_secs(120)) => ready?,
        _ = shutdown_signal() => return Ok(()),
    }
    println!(
        "devnet ready in {:.1} s (logs and homes under {})",
        started.elapsed().as_secs_f64(),
        devnet.dir().display()
    );
    println!("{:<6} {:<10} {:<28} CometBFT RPC", "node", "role", "API");
    for node in devnet.nodes() {
        let role = if node.is_validator { "validator" } else { "full node" };
        println!("{:<6} {:<10} {:<28} {}", node.name, role, node.api_url, node.rpc_url);
    }
    println!("{} demo tokens (DEMO ONLY):", spec_service);
    for (token, actor) in services::demo(&spec_service)?.tokens {
        println!("  {token:<18} {} ({})", actor.id, actor.role.as_str());
    }
    if demo {
        let api = devnet.layer(Layer::L2).next().map(|n| n.api_url.clone()).ok_or("no L2 node")?;
        let sessions = run_demo(&api, &format!("PKG-DEMO-{}", std::process::id())).await?;
        // Anyone can check the receipts against L1's genesis, trusting no node.
        let l1 = devnet.layer(Layer::L1).next().ok_or("no L1 node")?;
        let genesis = l1.dir.join("cometbft/config/genesis.json");
        for session in &sessions {
            println!("bftws-node verify --l1 {} --session {session} --genesis {}", l1.api_url, genesis.display());
            let source = verify::ProofSource::Node { l1: &l1.api_url, token: "demo-auditor" };
            let (_, verified) = verify::verify(source, &genesis, session).await?;
            println!("{}", verify::report(&verified));
        }
        if exit_after_demo {
            devnet.stop_all();
            return Ok(());
        }
    }
    if let Some(l2) = devnet.layer(Layer::L2).next() {
        println!("web console: {}/ (sign in with a demo token; every node serves one)", l2.api_url);
    }
    println!("serving; Ctrl-C stops every node");
    shutdown_signal().await;
    eprintln!("stopping the devnet");
    devnet.stop_all();
    Ok(())
}

/// One supplier and one warehouse session on `package_id` against `api`, printing each step and
/// the receipts.
async fn run_demo(api: &str, package_id: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let client = WorkflowClient::new(api, Duration::from_secs(30));
    let supplier = client.supplier_session("demo-sup-1", "sup-1", package_id).await?;
    print_session("supplier session", &supplier);
    let warehouse = client.warehouse_session("demo-op-1", "sup-1", package_id).await?;
    print_session("warehouse session", &warehouse);
    Ok(vec![supplier.session_id, warehouse.session_id])
}

fn print_session(title: &str, run: &SessionRun) {
    println!("{title} {}:", run.session_id);
    for step in &run.steps {
        println!(
            "  {:<17} {:<3} {:>9.2} ms  height {:>5}  {}",
            step.step, step.layer, step.latency_ms, step.block_height, step.endpoint
        );
    }
    println!("  L1 receipt: {}", run.receipt);
}

async fn run_bench(command: BenchCommand) -> Result<(), Box<dyn std::error::Error>> {
    let env = |shared: &BenchShared| -> Result<BenchEnv, Box<dyn std::error::Error>> {
        Ok(BenchEnv {
            node_binary: std::env::current_exe()?,
            cometbft: match &shared.cometbft {
                Some(path) => path.clone(),
                None => default_cometbft()?,
            },
            work_dir: shared.work_dir.clone(),
            base_port: shared.base_port,
            timing: shared.timing.clone(),
        })
    };
    match command {
        BenchCommand::Sequential { shared, configs, iterations, pause_ms, direct_l1 } => {
            let options = SequentialOptions {
                sizes: configs,
                iterations,
                pause: Duration::from_millis(pause_ms),
                mode: if direct_l1 { SequentialMode::DirectL1 } else { SequentialMode::TwoLayer },
                workload: shared.workload,
                out: shared.out.clone(),
            };
            let written = run_sequential(&env(&shared)?, &options).await?;
            for path in written {
                println!("{}", path.display());
            }
        }
        BenchCommand::Concurrent { shared, config, workers, duration_secs } => {
            let options = ConcurrentOptions {
                size: config,
                workers,
                duration: Duration::from_secs(duration_secs),
                workload: shared.workload,
                out: shared.out.clone(),
            };
            println!("{}", run_concurrent(&env(&shared)?, &options).await?.display());
        }
        BenchCommand::Flood { shared, config, sessions, flooders_per_node, source } => {
            let options = FloodOptions { size: config, sessions, flooders_per_node, source, out: shared.out.clone() };
            println!("{}", run_flood(&env(&shared)?, &options).await?.display());
        }
        BenchCommand::Idle { shared, configs, settle_secs, window_secs } => {
            let options = IdleOptions {
                sizes: configs,
                settle: Duration::from_secs(settle_secs),
                window: Duration::from_secs(window_secs),
                out: shared.out.clone(),
            };
            println!("{}", run_idle(&env(&shared)?, &options).await?.display());
        }
        BenchCommand::Proofs { shared, configs, sessions, repeats } => {
            let options = ProofOptions { sizes: configs, sessions, repeats, out: shared.out.clone() };
            println!("{}", run_proofs(&env(&shared)?, &options).await?.display());
        }
        BenchCommand::Report { out, paper } => {
            write_report(&out, paper.exists().then_some(paper.as_path()))?;
            println!("{}", out.join("summary.md").display());
        }
    }
    Ok(())
}

/// The pinned CometBFT that `scripts/install-cometbft.sh` installs.
fn default_cometbft() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set; pass --cometbft")?;
    let cache =
        std::env::var_os("BFTWS_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(home).join(".cache/bftws"));
    Ok(cache.join(format!("cometbft/v{}/bin/cometbft", bftws_home::COMETBFT_VERSION)))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
