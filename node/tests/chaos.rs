//! The fault campaign of `make test`: a short seeded run of every fault kind, once each, on a
//! 4 + 4 devnet with every node in its own network namespace (root), judged by the checker.
//! The long campaign is `make chaos` (bench/results/chaos/).

#![cfg(feature = "byzantine-test")]

mod common;

use std::{path::PathBuf, time::Duration};

use bftws_node::chaos::{self, schedule::FaultKind, ChaosOptions};

/// The seed of the campaign run on every `make test`. A seed that finds a bug stays here (or in
/// a test of its own) as its regression test.
const SEED: u64 = 20261208;

#[test]
fn a_short_seeded_campaign_of_every_fault_kind_loses_nothing() {
    let dir = tempfile::Builder::new().prefix("bftws-chaos-").tempdir().unwrap();
    let options = ChaosOptions {
        seed: SEED,
        phase: Duration::from_secs(110),
        workers: 4,
        l1_validators: 4,
        l2_validators: 4,
        kinds: FaultKind::ALL.to_vec(),
        netns: true,
        dir: dir.path().join("net"),
        base_port: 30400,
        node_binary: PathBuf::from(env!("CARGO_BIN_EXE_bftws-node")),
        cometbft: common::devnet::cometbft(),
        out: dir.path().join("results"),
    };
    let schedule = chaos::schedule::generate(options.seed, options.phase, &options.kinds, &targets());
    for kind in FaultKind::ALL {
        assert!(schedule.iter().any(|fault| fault.kind == kind), "seed {SEED} schedules no {kind}");
    }

    let result = chaos::run(options).expect("the campaign runs");
    eprintln!("{}", result.report);
    assert!(result.verdict.passed(), "violations: {:#?}", result.verdict.violations);
    let counts = &result.verdict.counts;
    assert_eq!((counts.lost, counts.duplicated), (0, 0));
    assert!(counts.commits_acknowledged >= 20, "too little work to judge: {counts:?}");
    // The diverged validator stopped with the quorum's app hash named, and the others went on.
    assert!(result.report.contains("wrong Block.Header.AppHash"), "{}", result.report);
    assert!(result.out.join("history.jsonl").exists() && result.out.join("verdict.json").exists());
}

fn targets() -> chaos::schedule::Targets {
    chaos::schedule::Targets {
        l1: (0..4).map(|i| format!("l1-{i}")).collect(),
        l2: (0..4).map(|i| format!("l2-{i}")).collect(),
    }
}
