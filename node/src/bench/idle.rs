//! What an idle devnet costs: no client at all, the CPU time of each of its processes over a
//! window after it is ready, by process kind, in percent of one core.

use std::{collections::BTreeMap, io::Write, path::PathBuf, time::Duration};

use super::{io_error, BenchEnv, BenchError, NetworkSize, Workload};
use bftws_framework::registry::Layer;

#[derive(Debug, Clone)]
pub struct IdleOptions {
    pub sizes: Vec<NetworkSize>,
    /// Wait after ready before measuring (the first blocks and connections settle).
    pub settle: Duration,
    /// The measured window.
    pub window: Duration,
    pub out: PathBuf,
}

/// CPU time (user + system) a process has used, in clock ticks, from `/proc/PID/stat`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing paren are plain.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second (`getconf CLK_TCK`; Linux's USER_HZ is 100 everywhere it runs).
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Measures every size; writes `idle.csv`.
pub async fn run_idle(env: &BenchEnv, options: &IdleOptions) -> Result<PathBuf, BenchError> {
    std::fs::create_dir_all(&options.out).map_err(io_error(&options.out))?;
    let path = options.out.join("idle.csv");
    let mut csv = std::fs::File::create(&path).map_err(io_error(&path))?;
    writeln!(csv, "config,window_s,l1_cometbft,l1_app,l2_cometbft,l2_app,total_percent_of_one_core")
        .map_err(io_error(&path))?;
    let hz = ticks_per_second();
    for size in &options.sizes {
        let devnet = env.devnet(*size, &format!("idle-{size}"), Workload::SupplyChain).await?;
        tokio::time::sleep(options.settle).await;
        let mut processes = Vec::new();
        for node in devnet.nodes() {
            let layer = if node.layer == Layer::L1 { "l1" } else { "l2" };
            let (app, cometbft) = node.pids();
            processes.extend(app.map(|pid| (format!("{layer}_app"), pid)));
            processes.extend(cometbft.map(|pid| (format!("{layer}_cometbft"), pid)));
        }
        let before: Vec<Option<u64>> = processes.iter().map(|(_, pid)| cpu_ticks(*pid)).collect();
        let started = std::time::Instant::now();
        tokio::time::sleep(options.window).await;
        let seconds = started.elapsed().as_secs_f64();
        let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
        for ((kind, pid), before) in processes.iter().zip(before) {
            let (Some(before), Some(after)) = (before, cpu_ticks(*pid)) else {
                return Err(BenchError::Invalid(format!("{kind} process {pid} stopped during the idle window")));
            };
            *by_kind.entry(kind.clone()).or_default() += 100.0 * (after - before) as f64 / hz / seconds;
        }
        let share = |kind: &str| by_kind.get(kind).copied().unwrap_or(0.0);
        let total: f64 = by_kind.values().sum();
        writeln!(
            csv,
            "{size},{seconds:.1},{:.1},{:.1},{:.1},{:.1},{total:.1}",
            share("l1_cometbft"),
            share("l1_app"),
            share("l2_cometbft"),
            share("l2_app")
        )
        .map_err(io_error(&path))?;
        eprintln!(
            "[idle {size}] {total:.1}% of one core over {seconds:.0} s (L1 CometBFT {:.1}, L1 apps {:.1}, L2 CometBFT {:.1}, L2 apps {:.1})",
            share("l1_cometbft"),
            share("l1_app"),
            share("l2_cometbft"),
            share("l2_app")
        );
        drop(devnet);
    }
    Ok(path)
}
