//! The summary beside the paper's published figures: `summary.csv` and `summary.md` from the
//! per-run CSVs under `sequential/` and from `concurrency.csv`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use super::{io_error, stats::Summary, BenchError, NetworkSize};

/// The paper's per-step columns, in its order.
const PAPER_STEPS: [&str; 7] = [
    "create_package",
    "start_session",
    "scan_package",
    "validate_package",
    "quality_check",
    "label_package",
    "commit_l1",
];
/// The interactive steps averaged into the paper's `l2_avg`.
const L2_STEPS: [&str; 6] =
    ["create_package", "start_session", "scan_package", "validate_package", "quality_check", "label_package"];

/// One configuration's published means (ms) by column name.
type PaperRow = BTreeMap<String, f64>;

fn read_paper(path: &Path) -> Result<BTreeMap<String, PaperRow>, BenchError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let mut lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut rows = BTreeMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let row: PaperRow = header
            .iter()
            .zip(&cells)
            .skip(1)
            .filter_map(|(h, c)| c.parse().ok().map(|v| ((*h).to_owned(), v)))
            .collect();
        rows.insert(cells[0].to_owned(), row);
    }
    Ok(rows)
}

/// Latencies of one run by step.
struct Run {
    mode: String,
    size: NetworkSize,
    steps: BTreeMap<String, Vec<f64>>,
    /// Step names in the order the run first made them.
    order: Vec<String>,
    cpu: Option<f64>,
}

impl Run {
    /// Runs of the paper's workload (the supply chain) are compared with its figures; other
    /// workloads' file names start with their name (`escrow-l2-4-1.csv`).
    fn is_paper_workload(&self) -> bool {
        self.mode == "l2" || self.mode == "direct-l1"
    }

    /// The steps that make up the "L2 op" figure: the paper's interactive steps for its
    /// workload, every step but the commits for the others.
    fn l2_steps(&self) -> Vec<&str> {
        if self.is_paper_workload() {
            L2_STEPS.to_vec()
        } else {
            self.order.iter().map(String::as_str).filter(|s| !s.contains("commit")).collect()
        }
    }

    /// The steps of the per-step table.
    fn table_steps(&self) -> Vec<&str> {
        if self.is_paper_workload() {
            PAPER_STEPS.to_vec()
        } else {
            self.order.iter().map(String::as_str).collect()
        }
    }
}

fn read_runs(dir: &Path) -> Result<Vec<Run>, BenchError> {
    let mut runs = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "csv")) {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let Some((mode, size)) = stem.rsplit_once('-').and_then(|(rest, l2)| {
            let (mode, l1) = rest.rsplit_once('-')?;
            Some((mode.to_owned(), format!("{l1}-{l2}").parse::<NetworkSize>().ok()?))
        }) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
        let mut steps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut order = Vec::new();
        for line in text.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            if let (Some(step), Some(latency)) = (cells.get(1), cells.get(5).and_then(|c| c.parse().ok())) {
                if !steps.contains_key(*step) {
                    order.push((*step).to_owned());
                }
                steps.entry((*step).to_owned()).or_default().push(latency);
            }
        }
        let cpu = std::fs::read_to_string(path.with_extension("cpu")).ok().and_then(|t| t.trim().parse().ok());
        runs.push(Run { mode, size, steps, order, cpu });
    }
    runs.sort_by(|a, b| (a.mode.as_str(), a.size).cmp(&(b.mode.as_str(), b.size)));
    Ok(runs)
}

fn collect(run: &Run, names: &[&str]) -> Vec<f64> {
    names.iter().flat_map(|n| run.steps.get(*n).cloned().unwrap_or_default()).collect()
}

/// Writes `summary.csv` and `summary.md` under `out`.
pub fn write_report(out: &Path, paper: Option<&Path>) -> Result<(), BenchError> {
    let paper = match paper {
        Some(path) => read_paper(path)?,
        None => BTreeMap::new(),
    };
    let runs = read_runs(&out.join("sequential"))?;
    if runs.is_empty() {
        return Err(BenchError::Invalid(format!("no runs under {}", out.join("sequential").display())));
    }
    let mut csv =
        String::from("mode,config,step,count,mean_ms,p50_ms,p95_ms,p99_ms,max_ms,paper_mean_ms,paper_over_ours\n");
    let mut md = String::new();
    let fmt_ratio =
        |paper: Option<f64>, ours: f64| paper.map(|p| format!("{:.1}×", p / ours)).unwrap_or_else(|| "–".into());

    writeln!(md, "| mode | config | L2 op p50 | L2 op mean | paper L2 mean | paper ÷ ours | commit p50 | commit p99 | paper commit | paper ÷ ours | CPU |").ok();
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|").ok();
    for run in &runs {
        let config = run.size.to_string();
        let published = paper.get(&config).filter(|_| run.is_paper_workload());
        let l2 = Summary::of(&collect(run, &run.l2_steps()));
        let commit = Summary::of(&collect(run, &["commit_l1"]));
        let paper_l2 = published.and_then(|p| p.get("l2_avg").copied());
        let paper_commit = published.and_then(|p| p.get("commit_l1").copied());
        writeln!(
            md,
            "| {} | {config} | {:.1} ms | {:.1} ms | {} | {} | {:.1} ms | {:.1} ms | {} | {} | {} |",
            run.mode,
            l2.p50,
            l2.mean,
            paper_l2.map(|v| format!("{v:.1} ms")).unwrap_or_else(|| "–".into()),
            fmt_ratio(paper_l2, l2.mean),
            commit.p50,
            commit.p99,
            paper_commit.map(|v| format!("{v:.1} ms")).unwrap_or_else(|| "–".into()),
            fmt_ratio(paper_commit, commit.mean),
            run.cpu.map(|c| format!("{c:.0}%")).unwrap_or_else(|| "–".into()),
        )
        .ok();
        let mut rows: Vec<(&str, Summary)> =
            run.table_steps().into_iter().map(|s| (s, Summary::of(&collect(run, &[s])))).collect();
        rows.push(("l2_op", l2));
        if run.is_paper_workload() {
            for extra in ["supplier_start", "supplier_commit"] {
                rows.push((extra, Summary::of(&collect(run, &[extra]))));
            }
        }
        for (step, s) in rows {
            let paper_key = if step == "l2_op" { "l2_avg" } else { step };
            let published_mean = published.and_then(|p| p.get(paper_key).copied());
            writeln!(
                csv,
                "{},{config},{step},{},{:.3},{:.3},{:.3},{:.3},{:.3},{},{}",
                run.mode,
                s.count,
                s.mean,
                s.p50,
                s.p95,
                s.p99,
                s.max,
                published_mean.map(|v| v.to_string()).unwrap_or_default(),
                published_mean.map(|p| format!("{:.2}", p / s.mean)).unwrap_or_default(),
            )
            .ok();
        }
    }

    writeln!(md, "\n### Per step (mean / p50 / p99, ms) beside the paper's mean\n").ok();
    for run in &runs {
        let config = run.size.to_string();
        let published = paper.get(&config).filter(|_| run.is_paper_workload());
        writeln!(md, "**{} {config}**\n", run.mode).ok();
        writeln!(md, "| step | mean | p50 | p99 | paper mean | paper ÷ ours |").ok();
        writeln!(md, "|---|---|---|---|---|---|").ok();
        for step in run.table_steps() {
            let s = Summary::of(&collect(run, &[step]));
            let p = published.and_then(|p| p.get(step).copied());
            writeln!(
                md,
                "| {step} | {:.2} | {:.2} | {:.2} | {} | {} |",
                s.mean,
                s.p50,
                s.p99,
                p.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into()),
                fmt_ratio(p, s.mean)
            )
            .ok();
        }
        writeln!(md).ok();
    }

    // Two-layer vs direct-L1 in the same run: how much faster is an L2 op than an L1 op.
    let direct: BTreeMap<NetworkSize, &Run> =
        runs.iter().filter(|r| r.mode == "direct-l1").map(|r| (r.size, r)).collect();
    if !direct.is_empty() {
        writeln!(md, "### L2 op vs the same op as an L1 transaction (direct-L1 baseline)\n").ok();
        writeln!(md, "| config | L2 op p50 | direct-L1 op p50 | L1 ÷ L2 |").ok();
        writeln!(md, "|---|---|---|---|").ok();
        for run in runs.iter().filter(|r| r.mode == "l2") {
            if let Some(baseline) = direct.get(&NetworkSize { l1: run.size.l1, l2: 1 }) {
                let ours = Summary::of(&collect(run, &L2_STEPS)).p50;
                let l1 = Summary::of(&collect(baseline, &L2_STEPS)).p50;
                writeln!(md, "| {} | {ours:.1} ms | {l1:.1} ms | {:.1}× |", run.size, l1 / ours).ok();
            }
        }
        writeln!(md).ok();
    }

    let tables = [
        ("Concurrency", "concurrency.csv"),
        ("Concurrency, escrow workload", "escrow-concurrency.csv"),
        ("Honest commits under a flood of refused bundles", "flood.csv"),
        ("An idle devnet's CPU, percent of one core", "idle.csv"),
    ];
    for (title, file) in tables {
        let Ok(text) = std::fs::read_to_string(out.join(file)) else { continue };
        writeln!(md, "### {title}\n").ok();
        let mut lines = text.lines();
        if let Some(header) = lines.next() {
            let columns: Vec<&str> = header.split(',').collect();
            writeln!(md, "| {} |", columns.join(" | ")).ok();
            writeln!(md, "|{}", "---|".repeat(columns.len())).ok();
            for line in lines {
                writeln!(md, "| {} |", line.split(',').collect::<Vec<_>>().join(" | ")).ok();
            }
        }
    }

    let csv_path = out.join("summary.csv");
    std::fs::write(&csv_path, csv).map_err(io_error(&csv_path))?;
    let md_path = out.join("summary.md");
    std::fs::write(&md_path, md).map_err(io_error(&md_path))?;
    Ok(())
}
