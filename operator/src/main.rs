//! The `bftws-operator` command: `run` the controller, or print the `crd`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bftws_operator::leader::{LeaderElector, LeaseConfig};
use bftws_operator::metrics::Metrics;
use bftws_operator::reconcile::{self, Context};
use bftws_operator::server::{self, ServerState};
use bftws_operator::telemetry::{self, LogFormat};
use bftws_operator::{crd, FIELD_MANAGER};
use clap::{Parser, Subcommand};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tracing::{error, info};

#[derive(Parser)]
#[command(name = "bftws-operator", version, about = "Kubernetes operator for bftws BftWebServices")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run(RunArgs),
    /// Write the CustomResourceDefinition (YAML) to a file, or to stdout.
    Crd {
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "BFTWS_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Run without leader election (a single replica, or local development).
    #[arg(long)]
    no_leader_election: bool,
    /// Namespace of the leader Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    #[arg(long, default_value = "bftws-operator-leader")]
    lease_name: String,
    /// This replica's identity in the Lease and in events: the pod name.
    #[arg(long, env = "POD_NAME", default_value = "bftws-operator")]
    identity: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { output } => write_crd(output),
        Command::Run(args) => {
            telemetry::init(args.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    error!(error = %err, "cannot start the async runtime");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    error!("{message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn write_crd(output: Option<PathBuf>) -> ExitCode {
    let yaml = match crd::crd_yaml() {
        Ok(yaml) => yaml,
        Err(err) => {
            eprintln!("bftws-operator: rendering the CRD: {err}");
            return ExitCode::FAILURE;
        }
    };
    match output {
        None => print!("{yaml}"),
        Some(path) => {
            if let Err(err) = std::fs::write(&path, yaml) {
                eprintln!("bftws-operator: writing {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
    let client = Client::try_default().await.map_err(|err| format!("connecting to Kubernetes: {err}"))?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|err| format!("listening on {}: {err}", args.listen))?;
    let app = server::router(ServerState { metrics: metrics.clone(), ready: ready.clone() });
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            error!(error = %err, "health and metrics server stopped");
        }
    });
    info!(listen = %args.listen, "serving /healthz, /readyz and /metrics");

    let elector = (!args.no_leader_election).then(|| {
        let leases: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
        LeaderElector::new(leases, LeaseConfig::new(&args.lease_name, &args.identity))
    });
    ready.store(true, Ordering::Relaxed);
    if let Some(elector) = &elector {
        info!(lease = %args.lease_name, identity = %args.identity, "waiting for the leader lease");
        tokio::select! {
            () = elector.acquire() => {},
            () = shutdown_signal() => return Ok(()),
        }
        metrics.set_leader(true);
    }

    let ctx = Arc::new(Context::new(client.clone(), metrics.clone(), Some(args.identity.clone())));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = reconcile::run(client, args.namespace.as_deref(), ctx, async move {
        let _ = stop_rx.await;
    });
    let lost = async {
        match &elector {
            Some(elector) => elector.hold().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(controller);
    let outcome = tokio::select! {
        () = &mut controller => Ok(()),
        () = shutdown_signal() => Ok(()),
        () = lost => Err(format!("{FIELD_MANAGER} lost the leader lease; exiting so that only one replica reconciles")),
    };
    // Let in-flight reconciles finish before giving the lease away.
    let _ = stop_tx.send(());
    controller.await;
    metrics.set_leader(false);
    if let (Some(elector), Ok(())) = (&elector, &outcome) {
        elector.release().await;
    }
    outcome
}
