#!/usr/bin/env python3
"""Plots of a benchmark run: per-step latency by configuration, L2 op and commit beside the
paper, and throughput / p99 against workers. Usage: plot.py RESULTS_DIR [PAPER_CSV]"""

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STEPS = ["create_package", "start_session", "scan_package", "validate_package",
         "quality_check", "label_package", "commit_l1"]
L2_STEPS = STEPS[:-1]


def config_key(config):
    l1, l2 = config.split("-")
    return (int(l2), int(l1))


def read_runs(results):
    runs = {}
    for path in sorted((results / "sequential").glob("*.csv")):
        # The paper's workload only; other workloads' runs are named after them (escrow-l2-4-1).
        if not path.stem.startswith(("l2-", "direct-l1-")):
            continue
        mode, _, config = path.stem.partition("-")
        if mode == "direct":
            mode, config = "direct-l1", config.partition("-")[2]
        steps = defaultdict(list)
        with path.open() as f:
            for row in csv.DictReader(f):
                steps[row["Step"]].append(float(row["Latency_ms"]))
        runs[(mode, config)] = steps
    return runs


def read_paper(path):
    rows = {}
    if path and path.exists():
        with path.open() as f:
            lines = [line for line in f if not line.startswith("#")]
        for row in csv.DictReader(lines):
            rows[row["config"]] = row
    return rows


def per_step(runs, paper, out):
    configs = sorted({c for (m, c) in runs if m == "l2"}, key=config_key)
    if not configs:
        return
    fig, axes = plt.subplots(1, len(STEPS), figsize=(3 * len(STEPS), 4), sharey=True)
    for ax, step in zip(axes, STEPS):
        ours = [statistics.mean(runs[("l2", c)].get(step, [float("nan")])) for c in configs]
        theirs = [float(paper.get(c, {}).get(step) or "nan") for c in configs]
        xs = range(len(configs))
        ax.bar([x - 0.2 for x in xs], theirs, 0.4, label="paper (mean)", color="#bbbbbb")
        ax.bar([x + 0.2 for x in xs], ours, 0.4, label="bftws (mean)", color="#1f77b4")
        ax.set_title(step, fontsize=9)
        ax.set_xticks(list(xs), configs, rotation=60, fontsize=7)
        ax.set_yscale("log")
    axes[0].set_ylabel("latency (ms, log)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Per-step latency by configuration (L1-L2)")
    fig.tight_layout()
    fig.savefig(out / "per_step_latency.png", dpi=110)
    plt.close(fig)


def layers(runs, paper, out):
    configs = sorted({c for (m, c) in runs if m == "l2"}, key=config_key)
    if not configs:
        return
    xs = range(len(configs))

    def p50(mode, config, steps):
        values = [v for s in steps for v in runs.get((mode, config), {}).get(s, [])]
        return statistics.median(values) if values else float("nan")

    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(xs, [p50("l2", c, L2_STEPS) for c in configs], "o-", label="bftws L2 op p50")
    ax.plot(xs, [p50("l2", c, ["commit_l1"]) for c in configs], "s-", label="bftws commit p50")
    direct = [p50("direct-l1", f"{c.split('-')[0]}-1", L2_STEPS) for c in configs]
    if any(d == d for d in direct):
        ax.plot(xs, direct, "^-", label="same op as an L1 tx (direct-L1) p50")
    ax.plot(xs, [float(paper.get(c, {}).get("l2_avg") or "nan") for c in configs], "o--", color="#999999",
            label="paper L2 op (mean)")
    ax.plot(xs, [float(paper.get(c, {}).get("commit_l1") or "nan") for c in configs], "s--", color="#555555",
            label="paper commit (mean)")
    ax.set_xticks(list(xs), configs)
    ax.set_xlabel("configuration (L1 validators - L2 replicas)")
    ax.set_ylabel("latency (ms, log)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("L2 op and L1 commit latency beside the paper")
    fig.tight_layout()
    fig.savefig(out / "l2_vs_commit_vs_paper.png", dpi=110)
    plt.close(fig)


def concurrency(results, out):
    path = results / "concurrency.csv"
    if not path.exists():
        return
    with path.open() as f:
        rows = list(csv.DictReader(f))
    workers = [int(r["workers"]) for r in rows]
    fig, ax1 = plt.subplots(figsize=(8, 4.5))
    ax1.plot(workers, [float(r["sessions_per_s"]) for r in rows], "o-", color="#1f77b4", label="committed sessions/s")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("workers")
    ax1.set_ylabel("committed sessions / s", color="#1f77b4")
    ax2 = ax1.twinx()
    ax2.plot(workers, [float(r["commit_p99_ms"]) for r in rows], "s--", color="#d62728", label="commit p99")
    ax2.plot(workers, [float(r["l2_p99_ms"]) for r in rows], "^--", color="#ff7f0e", label="L2 op p99")
    ax2.set_ylabel("p99 latency (ms)")
    fig.legend(loc="upper left", fontsize=8)
    ax1.set_title(f"Throughput and p99 against workers ({rows[0]['config']})")
    fig.tight_layout()
    fig.savefig(out / "throughput_vs_workers.png", dpi=110)
    plt.close(fig)


def main():
    results = Path(sys.argv[1])
    paper = read_paper(Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    runs = read_runs(results)
    per_step(runs, paper, results)
    layers(runs, paper, results)
    concurrency(results, results)


if __name__ == "__main__":
    main()
