//! The escrow service end to end on the in-process two-layer network: sessions commit to L1
//! whole, balances never go negative, and L1 refuses a second spend of the same money and a
//! tampered bundle.

// Amounts in cents are written as units_cents (100_00 is 100.00).
#![allow(clippy::inconsistent_digit_grouping)]

use bftws_escrow::{demo, model::ListingStatus};
use bftws_framework::{
    app::{
        self,
        tx::{Bundle, SignedBundle, SignedOp, Tx},
        TxCode,
    },
    chain::{Chain, SubmitError},
    l2::CommitOutcome,
    local_network::{LocalNetwork, LocalNetworkSpec, L1_CHAIN_ID, L2_CHAIN_ID},
    registry::{Actor, Role, ServiceState},
    store::keys,
};
use serde_json::{json, Value};

fn network() -> LocalNetwork {
    LocalNetwork::new(
        bftws_escrow::registry(),
        LocalNetworkSpec {
            dir: None,
            l1_chain_id: L1_CHAIN_ID,
            l2_chain_id: L2_CHAIN_ID,
            reference_data: serde_json::to_value(demo::reference_data()).unwrap(),
            tokens: demo::token_file(),
        },
    )
    .unwrap()
}

fn actor(id: &str, role: &str) -> Actor {
    Actor { id: id.into(), role: Role::new(role) }
}

async fn write(net: &LocalNetwork, who: &Actor, path: &str, body: Value) -> Value {
    net.origin.write(who, "POST", path, body).await.unwrap_or_else(|e| panic!("{path}: {e}")).response.body
}

async fn start(net: &LocalNetwork, who: &Actor, kind: &str) -> String {
    write(net, who, "/v1/sessions", json!({"kind": kind})).await["session_id"].as_str().unwrap().to_owned()
}

/// Freezes the session and commits it to the network's L1.
async fn commit(net: &LocalNetwork, who: &Actor, session: &str) -> CommitOutcome {
    write(net, who, &format!("/v1/sessions/{session}/commit"), json!({})).await;
    net.committer.commit(session).await.unwrap()
}

/// A seller session listing `items` (id, price), committed.
async fn listed(net: &LocalNetwork, items: &[(&str, u64)]) {
    let seller = actor("s-1", "seller");
    let session = start(net, &seller, "seller").await;
    for (id, price) in items {
        let body = json!({"listing_id": id, "title": format!("item {id}"), "price": price});
        write(net, &seller, &format!("/v1/sessions/{session}/list_item"), body).await;
    }
    assert!(matches!(commit(net, &seller, &session).await, CommitOutcome::Committed(_)));
}

/// A buyer session that reserved, paid for and confirmed `listing`, not committed.
async fn bought(net: &LocalNetwork, buyer: &Actor, listing: &str) -> String {
    let session = start(net, buyer, "buyer").await;
    let step = |name: &str| format!("/v1/sessions/{session}/{name}");
    write(net, buyer, &step("reserve"), json!({"listing_id": listing})).await;
    write(net, buyer, &step("pay"), json!({})).await;
    write(net, buyer, &step("confirm"), json!({})).await;
    session
}

fn balance(chain: &dyn Chain, account: &str) -> u64 {
    let snapshot = chain.snapshot().unwrap();
    let prefix = keys::service_prefix(bftws_escrow::NAME);
    let account: bftws_escrow::model::Account =
        ServiceState::new(&snapshot, &prefix).get(&bftws_escrow::keys::account(account)).unwrap().unwrap();
    account.balance
}

fn listing_status(chain: &dyn Chain, id: &str) -> ListingStatus {
    let snapshot = chain.snapshot().unwrap();
    let prefix = keys::service_prefix(bftws_escrow::NAME);
    let listing: bftws_escrow::model::Listing =
        ServiceState::new(&snapshot, &prefix).get(&bftws_escrow::keys::listing(id)).unwrap().unwrap();
    listing.status
}

#[tokio::test]
async fn a_purchase_commits_whole_and_moves_the_money_on_both_layers() {
    let net = network();
    listed(&net, &[("L-1", 80_00)]).await;
    assert_eq!(listing_status(net.l1.as_ref(), "L-1"), ListingStatus::Listed);
    let buyer = actor("b-1", "buyer");
    let session = bought(&net, &buyer, "L-1").await;
    assert_eq!(balance(net.l2.as_ref(), "b-1"), 20_00, "paid into escrow on L2 at once");
    assert_eq!(balance(net.l1.as_ref(), "b-1"), 100_00, "L1 moves only with the committed session");
    let CommitOutcome::Committed(receipt) = commit(&net, &buyer, &session).await else { panic!("not committed") };
    assert_eq!(receipt.code, 0);
    for chain in [net.l1.as_ref() as &dyn Chain, net.l2.as_ref()] {
        assert_eq!(balance(chain, "b-1"), 20_00);
        assert_eq!(balance(chain, "s-1"), 80_00);
        assert_eq!(listing_status(chain, "L-1"), ListingStatus::Sold);
    }
}

#[tokio::test]
async fn a_balance_never_goes_negative() {
    let net = network();
    listed(&net, &[("L-1", 80_00)]).await;
    let poor = actor("b-2", "buyer");
    let session = start(&net, &poor, "buyer").await;
    write(&net, &poor, &format!("/v1/sessions/{session}/reserve"), json!({"listing_id": "L-1"})).await;
    let refused = net.origin.write(&poor, "POST", &format!("/v1/sessions/{session}/pay"), json!({})).await;
    match refused {
        Err(bftws_framework::origin::WriteError::Refused(err)) => assert_eq!(err.code, "insufficient_funds"),
        other => panic!("expected insufficient_funds, got {other:?}"),
    }
    assert_eq!(balance(net.l2.as_ref(), "b-2"), 50_00);
    // Aborting releases the reservation.
    write(&net, &poor, &format!("/v1/sessions/{session}/abort"), json!({})).await;
    assert_eq!(listing_status(net.l2.as_ref(), "L-1"), ListingStatus::Listed);
}

#[tokio::test]
async fn l1_refuses_a_second_spend_of_the_same_money_and_a_tampered_bundle() {
    // Two L2s of the same chain that diverged (a Byzantine L2, or a partition healed wrongly):
    // the same buyer spends the same 100.00 on each.
    let a = network();
    listed(&a, &[("L-1", 80_00), ("L-2", 80_00)]).await;
    let b = network();
    // Fork B holds the same listings, committed through its own L1.
    listed(&b, &[("L-1", 80_00), ("L-2", 80_00)]).await;
    let buyer = actor("b-1", "buyer");
    let first = bought(&a, &buyer, "L-1").await;
    let second = bought(&b, &buyer, "L-2").await;
    assert!(matches!(commit(&a, &buyer, &first).await, CommitOutcome::Committed(_)));

    write(&b, &buyer, &format!("/v1/sessions/{second}/commit"), json!({})).await;
    let ops = app::session_ops(&b.l2.snapshot().unwrap(), &second).unwrap();
    let submit = |ops: Vec<SignedOp>| {
        let bundle = SignedBundle::sign(Bundle::new(L2_CHAIN_ID, &second, ops), &bftws_framework::demo::commit_key());
        let l1 = a.l1.clone();
        async move { l1.submit(Tx::Bundle(bundle).encode()).await }
    };
    let before = balance(a.l1.as_ref(), "b-1");
    match submit(ops.clone()).await {
        Err(SubmitError::Refused { code, log }) => {
            assert_eq!(code, TxCode::Refused, "{log}");
            assert!(log.starts_with("step 2 (escrow.pay)") && log.contains("insufficient_funds"), "{log}");
        }
        other => panic!("the second spend must be refused, got {other:?}"),
    }
    assert_eq!(balance(a.l1.as_ref(), "b-1"), before, "nothing applied");
    assert_eq!(listing_status(a.l1.as_ref(), "L-2"), ListingStatus::Listed);

    // A bundle whose pay step claims another answer (re-signed by its origin) is refused too.
    let mut tampered = ops;
    let mut op = tampered[2].op.clone();
    op.response.body["balance"] = json!(100_00);
    tampered[2] = SignedOp::sign(op, "l2-0", &bftws_framework::demo::node_key("l2-0"));
    match submit(tampered).await {
        Err(SubmitError::Refused { code, .. }) => assert!(matches!(code, TxCode::ResponseMismatch | TxCode::Refused)),
        other => panic!("a tampered bundle must be refused, got {other:?}"),
    }
}
