//! The campaign's figures: what clients saw during each kind of fault, how long the system took
//! to commit again after each fault was healed, and throughput during and between faults.

use std::{collections::BTreeMap, fmt::Write};

use super::{
    checker::Verdict,
    history::{Event, Outcome},
    schedule::FaultKind,
    ChaosOptions,
};

/// One fault as it happened.
#[derive(Debug, Clone)]
pub(super) struct FaultWindow {
    pub kind: FaultKind,
    pub target: String,
    pub from_ms: u64,
    pub healed_ms: u64,
    /// What the fault left in the target's logs, when that is the point (a diverged validator).
    pub note: Option<String>,
}

/// The completion time of each session's first committed answer.
fn commit_times(events: &[Event]) -> Vec<u64> {
    let mut first: BTreeMap<&str, u64> = BTreeMap::new();
    for event in events {
        if event.outcome == Outcome::Ok && event.session_status.as_deref() == Some("committed") {
            let at = first.entry(&event.session).or_insert(event.completed_ms);
            *at = (*at).min(event.completed_ms);
        }
    }
    let mut times: Vec<u64> = first.into_values().collect();
    times.sort_unstable();
    times
}

fn answer_class(event: &Event) -> String {
    match (&event.outcome, event.status) {
        (Outcome::Ok, status) => format!("{status}"),
        (_, 0) => "no answer".into(),
        (_, status) => format!("{status} {}", event.error.as_deref().unwrap_or("")).trim().to_owned(),
    }
}

pub(super) fn render(
    options: &ChaosOptions,
    events: &[Event],
    windows: &[FaultWindow],
    phase_end_ms: u64,
    verdict: &Verdict,
) -> String {
    let mut out = String::new();
    let c = &verdict.counts;
    let _ = writeln!(
        out,
        "# Fault campaign: seed {}, {} s of faults, {} workers, {} L1 + {} L2 validators{}\n",
        options.seed,
        options.phase.as_secs(),
        options.workers,
        options.l1_validators,
        options.l2_validators,
        if options.netns { ", one network namespace per node" } else { "" }
    );
    let _ = writeln!(out, "**Verdict: {}**\n", if verdict.passed() { "PASS" } else { "FAIL" });
    let _ = writeln!(out, "| measure | count |\n|---|---|");
    for (name, value) in [
        ("sessions", c.sessions),
        ("ops acknowledged", c.ops_acknowledged),
        ("ops without a definite answer", c.ops_unknown),
        ("ops refused", c.ops_refused),
        ("commits acknowledged (receipt given)", c.commits_acknowledged),
        ("commits refused by L1", c.commits_rejected_by_l1),
        ("commits without an answer, committed", c.unknown_commits_committed),
        ("commits without an answer, not committed", c.unknown_commits_not_committed),
        ("lost (must be 0)", c.lost),
        ("duplicated (must be 0)", c.duplicated),
        ("violations (must be 0)", verdict.violations.len() as u64),
    ] {
        let _ = writeln!(out, "| {name} | {value} |");
    }

    // What clients were answered, per fault in force when they asked.
    let mut answers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for event in events {
        *answers.entry(event.fault.clone()).or_default().entry(answer_class(event)).or_default() += 1;
    }
    let _ = writeln!(out, "\n## Answers by fault in force\n\n| fault | attempts | answers |\n|---|---|---|");
    for (fault, classes) in &answers {
        let total: u64 = classes.values().sum();
        let list: Vec<String> = classes.iter().map(|(class, n)| format!("{class}: {n}")).collect();
        let _ = writeln!(out, "| {fault} | {total} | {} |", list.join(", "));
    }

    // Recovery: from the heal to the next commit any client was told of.
    let commits = commit_times(events);
    let _ = writeln!(
        out,
        "\n## Faults\n\n| at (s) | fault | node | lasted (s) | next commit after heal (ms) | commits/s during |\n|---|---|---|---|---|---|"
    );
    let mut recovery: BTreeMap<FaultKind, Vec<u64>> = BTreeMap::new();
    let mut in_faults = (0u64, 0u64);
    for window in windows {
        let next = commits.iter().find(|t| **t >= window.healed_ms).map(|t| t - window.healed_ms);
        if let Some(ms) = next {
            recovery.entry(window.kind).or_default().push(ms);
        }
        let during = commits.iter().filter(|t| (window.from_ms..window.healed_ms).contains(t)).count() as u64;
        let lasted = window.healed_ms - window.from_ms;
        in_faults = (in_faults.0 + during, in_faults.1 + lasted);
        let _ = writeln!(
            out,
            "| {:.1} | {} | {} | {:.1} | {} | {:.1} |",
            window.from_ms as f64 / 1e3,
            window.kind,
            window.target,
            lasted as f64 / 1e3,
            next.map_or("none".to_owned(), |ms| ms.to_string()),
            during as f64 * 1e3 / lasted.max(1) as f64
        );
    }
    for window in windows.iter().filter(|w| w.note.is_some()) {
        let _ = writeln!(
            out,
            "\n{} at {:.1} s, {}'s log: `{}`",
            window.kind,
            window.from_ms as f64 / 1e3,
            window.target,
            window.note.as_deref().unwrap_or_default().replace('`', "'")
        );
    }
    let _ = writeln!(
        out,
        "\n## Recovery by kind (ms from heal to the next commit)\n\n| fault | n | max | median |\n|---|---|---|---|"
    );
    for (kind, mut times) in recovery {
        times.sort_unstable();
        let _ = writeln!(out, "| {kind} | {} | {} | {} |", times.len(), times[times.len() - 1], times[times.len() / 2]);
    }
    let total_commits = commits.iter().filter(|t| **t <= phase_end_ms).count() as u64;
    let between = (total_commits.saturating_sub(in_faults.0), phase_end_ms.saturating_sub(in_faults.1));
    let rate = |(n, ms): (u64, u64)| n as f64 * 1e3 / ms.max(1) as f64;
    let _ = writeln!(
        out,
        "\n## Throughput\n\ncommitted sessions/s during faults {:.2}, between faults {:.2}, after the fault phase {} more\n",
        rate(in_faults),
        rate(between),
        commits.iter().filter(|t| **t > phase_end_ms).count()
    );
    if !verdict.violations.is_empty() {
        let _ = writeln!(out, "## Violations\n");
        for violation in &verdict.violations {
            let _ = writeln!(
                out,
                "- **{}** {} ({}): {}",
                violation.kind,
                violation.session,
                violation.session_id.as_deref().unwrap_or("no id"),
                violation.detail
            );
        }
    }
    out
}
