//! The fault campaign of `make test`: a short (130 s) seeded run of every fault kind, once each, on a
//! 4 + 4 devnet with every node in its own network namespace (root), judged by the checker.
//! The long campaign is `make chaos` (bench/results/chaos/).

mod common;

use std::time::Duration;

/// Every kind includes a Byzantine validator, which needs the test-only build.
#[cfg(feature = "byzantine-test")]
mod campaign {
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
            phase: Duration::from_secs(130),
            workers: 4,
            l1_validators: 4,
            l2_validators: 4,
            kinds: FaultKind::ALL.to_vec(),
            netns: true,
            dir: dir.path().join("net"),
            base_port: 30400,
            node_binary: PathBuf::from(env!("CARGO_BIN_EXE_bftws-node")),
            cometbft: super::common::devnet::cometbft(),
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
}

/// Found by the campaign (seed 5, full-disk): a node whose consensus stopped answered `404` for a
/// session the chain had since started, and a client took it as final. A node that sees a peer
/// ahead of it must answer `503` (retry elsewhere) instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_its_peers_answers_503_not_a_stale_refusal() {
    use bftws_framework::{cometbft::CometRpc, http_client::JsonClient};
    use bftws_node::devnet::Devnet;
    use serde_json::json;

    let (_dir, mut spec) = common::devnet::spec("behind", 30600);
    spec.l1_validators = 1;
    spec.l2_validators = 4;
    spec.disk_mib = Some(64);
    let mut devnet = Devnet::create(spec).expect("devnet files");
    devnet.start_all(Duration::from_secs(90)).await.expect("devnet ready");
    let api = |name: &str| devnet.node(name).unwrap().api_url.clone();
    let (healthy, stalled) = (api("l2-0"), api("l2-3"));
    let rpc = CometRpc::new(devnet.node("l2-3").unwrap().rpc_url.clone(), Duration::from_secs(2));
    let client = JsonClient::new(Duration::from_secs(15));
    let start = |n: u32| {
        let (client, healthy) = (client.clone(), healthy.clone());
        async move {
            let key = format!("behind-start-{n}");
            let reply = client
                .post_with_headers(
                    &format!("{healthy}/v1/sessions"),
                    Some("demo-sup-1"),
                    &[("idempotency-key", &key)],
                    &json!({"kind": "supplier"}),
                )
                .await
                .unwrap();
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.body["data"]["session_id"].as_str().unwrap().to_owned()
        }
    };

    devnet.fill_disk("l2-3").unwrap();
    // The chain moves on without l2-3, whose consensus fails on its full disk.
    let mut n = 0;
    let id = loop {
        n += 1;
        let id = start(n).await;
        let heights = rpc.consensus_heights().await.expect("its CometBFT still answers");
        if heights.peer_ahead().is_some_and(|peer| peer > heights.own + 1) {
            break id;
        }
        assert!(n < 60, "l2-3 never fell behind: {heights:?}");
    };
    let items = bftws_node::workflow::package_items();
    let signature = bftws_supply_chain::demo::sign_manifest("sup-1", "PKG-BEHIND", &items);
    let reply = client
        .post_with_headers(
            &format!("{stalled}/v1/sessions/{id}/register_package"),
            Some("demo-sup-1"),
            &[("idempotency-key", "behind-step")],
            &json!({"package_id": "PKG-BEHIND", "items": items, "signature": signature}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 503, "a node behind its peers refused from old state: {}", reply.body);
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("behind its peers"), "{}", reply.body);
    devnet.free_disk("l2-3").unwrap();
}
