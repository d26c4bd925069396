//! The `bftws-node` command.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use bftws_node::{http, local_network::LocalNetwork, supply_chain::demo};
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
    /// Print the OpenAPI document.
    Openapi,
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
            println!("{}", serde_json::to_string_pretty(&http::openapi())?);
            Ok(())
        }
        Command::Dev { listen, data_dir } => {
            if let Some(dir) = &data_dir {
                std::fs::create_dir_all(dir)?;
            }
            let network = LocalNetwork::demo(data_dir.as_deref())?;
            let resumed = network.committer.resume_pending()?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            eprintln!("bftws dev node (in-process sequencer, no CometBFT) on http://{}", listener.local_addr()?);
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
