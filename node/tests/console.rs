//! The web console in a real browser: Debian's headless Chromium, driven through chromedriver,
//! against a real 4-1 devnet. A supplier registers and signs a package in the page, a warehouse
//! operator takes it through every step (one refused out of order), the receipt shown matches
//! L1's `/tx`, every page passes axe-core's accessibility rules, and every page is photographed
//! at a laptop and a phone size into docs/console/.

mod common;
#[path = "console/webdriver.rs"]
mod webdriver;

use std::{path::PathBuf, time::Duration};

use bftws_framework::{cometbft::CometRpc, crypto::sha256};
use bftws_node::devnet::L1_CHAIN_ID;
use bftws_supply_chain::{demo, model::Item};
use common::devnet::{spec, start};
use serde_json::{json, Value};
use webdriver::{Browser, Driver};

const PACKAGE: &str = "PKG-CONSOLE-1";
const STEP: Duration = Duration::from_secs(30);
/// A laptop screen and a phone, in CSS pixels.
const SIZES: [(&str, u32, u32); 2] = [("laptop", 1280, 900), ("phone", 390, 844)];

fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/console")
}

/// axe-core from npm, installed by `scripts/install-console-test-deps.sh` (`make setup`).
fn axe_source() -> String {
    let path = std::env::var_os("BFTWS_AXE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").expect("HOME is set");
        PathBuf::from(home).join(".cache/bftws/console-test/node_modules/axe-core/axe.min.js")
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core not found at {}: run ./scripts/install-console-test-deps.sh (make unit does) ({e})",
            path.display()
        )
    })
}

/// Runs axe-core on the page as it is and fails on any serious or critical violation.
async fn assert_accessible(browser: &Browser, axe: &str, page: &str) {
    browser.script(axe, json!([])).await;
    let result = browser
        .script_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
                .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))
                .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
            json!([]),
        )
        .await;
    let violations = result.as_array().cloned().unwrap_or_default();
    let serious: Vec<&Value> =
        violations.iter().filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical"))).collect();
    assert!(serious.is_empty(), "the {page} page has accessibility violations: {serious:#?}");
}

async fn photograph(browser: &Browser, size: &str, page: &str) {
    browser.script("window.scrollTo(0, 0)", json!([])).await;
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{page}-{size}.png")), png).unwrap();
}

/// Signs in from the keyboard alone: the token, then Enter.
async fn sign_in(browser: &Browser, api: &str, token: &str) {
    browser.goto(&format!("{api}/#/sign-in")).await;
    browser.fill("main input[type=password]", &format!("{token}\u{E007}")).await;
    browser.find("[data-field=me]").await;
}

async fn sign_out(browser: &Browser) {
    browser.click("#who button").await;
    browser.find("main input[type=password]").await;
}

/// Sends a step's form and waits for its answer (`ok` or `error`).
async fn send_step(browser: &Browser, step: &str, outcome: &str) -> String {
    browser.click(&format!("form[data-step={step}] > button[type=submit]")).await;
    browser.wait(&format!("[data-step-result={step}] .{outcome}"), STEP).await;
    browser.text(&format!("[data-step-result={step}]")).await
}

async fn start_session(browser: &Browser, api: &str, kind: &str) -> String {
    browser.goto(&format!("{api}/#/session/{kind}")).await;
    browser.click(".toolbar > button").await;
    browser.wait("[data-field=session-id]", STEP).await;
    browser.text("[data-field=session-id]").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_and_a_warehouse_operator_work_through_the_console_and_see_the_l1_receipt() {
    let axe = axe_source();
    let (_dir, spec) = spec("console", 29800);
    let devnet = start(spec).await;
    let api = devnet.node("l2-0").expect("an L2 node").api_url.clone();
    let l1_rpc = CometRpc::new(devnet.node("l1-0").expect("an L1 node").rpc_url.clone(), Duration::from_secs(5));
    let driver = Driver::start().await;
    let browser = Browser::open(&driver, 1280, 900).await;
    let (size, ..) = SIZES[0];

    // Sign in; a wrong token is refused with the API's message.
    browser.goto(&format!("{api}/")).await;
    browser.find("main input[type=password]").await;
    assert_accessible(&browser, &axe, "sign-in").await;
    photograph(&browser, size, "sign-in").await;
    browser.fill("main input[type=password]", "not-a-token").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_text("main .error", "unknown token", STEP).await;

    // Supplier: register the package with its items, the manifest signed in the page.
    sign_in(&browser, &api, "demo-sup-1").await;
    let kept = browser.script("return [location.href, localStorage.length, document.cookie]", json!([])).await;
    assert!(!kept[0].as_str().unwrap().contains("demo-sup-1"), "the token is never in a URL");
    assert_eq!((&kept[1], &kept[2]), (&json!(0), &json!("")), "nor in storage beyond the tab's session");
    let supplier_session = start_session(&browser, &api, "supplier").await;
    assert_eq!(browser.text("[data-field=next]").await, "register_package");
    let form = "form[data-step=register_package]";
    browser.fill(&format!("{form} input[name=package_id]"), PACKAGE).await;
    browser.fill(&format!("{form} input[name=sku]"), "SKU-9").await;
    browser.fill(&format!("{form} input[name=qty]"), "4").await;
    browser.click(&format!("{form} .signer summary")).await;
    let seed = hex::encode(sha256(b"bftws demo key (insecure): supplier sup-1"));
    browser.fill(&format!("{form} .signer input[type=password]"), &seed).await;
    browser.click(&format!("{form} .signer button")).await;
    browser.wait_text(&format!("{form} .signer [role=status]"), "Signed in this browser", STEP).await;
    let signature = browser.value(&format!("{form} input[name=signature]")).await;
    let expected = demo::sign_manifest("sup-1", PACKAGE, &[Item { sku: "SKU-9".into(), qty: 4 }]);
    assert_eq!(signature, expected.0.as_str(), "the page signs the canonical manifest as the service checks it");
    let answer = send_step(&browser, "register_package", "ok").await;
    assert!(answer.contains("final on L2"), "the step shows its L2 latency: {answer}");
    send_step(&browser, "commit", "ok").await;
    browser.wait_text("[data-field=verification]", "Verified: final on L1", STEP).await;
    assert_accessible(&browser, &axe, "supplier").await;
    photograph(&browser, size, "supplier").await;
    assert!(!supplier_session.is_empty());
    sign_out(&browser).await;

    // Warehouse: a step out of order is refused with the API's message and the expected step.
    sign_in(&browser, &api, "demo-op-1").await;
    let session = start_session(&browser, &api, "warehouse").await;
    let label = "form[data-step=label]";
    browser.fill(&format!("{label} input[name=destination]"), "Oslo").await;
    browser.fill(&format!("{label} input[name=courier_id]"), "c-1").await;
    let refused = send_step(&browser, "label", "error").await;
    assert!(refused.contains("409"), "an out-of-order step is a conflict: {refused}");
    assert!(refused.contains("expected step: scan"), "the refusal names the expected step: {refused}");
    assert_eq!(browser.text("[data-field=next]").await, "scan");

    browser.fill("form[data-step=scan] input[name=package_id]", PACKAGE).await;
    send_step(&browser, "scan", "ok").await;
    browser.fill("form[data-step=validate] input[name=signature]", expected.0.as_str()).await;
    send_step(&browser, "validate", "ok").await;
    browser.click("form[data-step=qc] input[name=passed]").await;
    send_step(&browser, "qc", "ok").await;
    let labelled = send_step(&browser, "label", "ok").await;
    assert!(labelled.contains("final on L2"), "{labelled}");
    assert_eq!(browser.text("[data-field=next]").await, "commit");
    send_step(&browser, "commit", "ok").await;
    browser.wait_text("[data-field=verification]", "Verified: final on L1", STEP).await;
    assert_eq!(browser.text("[data-field=status]").await, "committed");

    // The receipt on the page is L1's own record of the transaction.
    let tx_hash = browser.text("[data-field=tx_hash]").await;
    let height: u64 = browser.text("[data-field=height]").await.parse().expect("a height");
    let on_l1 = l1_rpc.tx(&tx_hash).await.expect("L1 answers").expect("L1 knows the receipt's transaction");
    assert_eq!(on_l1["height"].as_str(), Some(height.to_string().as_str()));
    assert_eq!(on_l1["tx_result"]["code"].as_u64().unwrap_or(0), 0);
    assert_eq!(browser.text("[data-field=code]").await, "0 (committed)");
    assert_accessible(&browser, &axe, "warehouse").await;
    photograph(&browser, size, "warehouse").await;

    // Network: both layers, L1's four validators signing, the latencies just measured.
    browser.goto(&format!("{api}/#/network")).await;
    browser.wait(&format!("[data-chain={L1_CHAIN_ID}] tbody tr:nth-child(4)"), STEP).await;
    let network = browser.text("main").await;
    assert!(network.contains("Layer 2") && network.contains("Layer 1"), "{network}");
    assert!(
        browser.count(&format!("[data-chain={L1_CHAIN_ID}] .dot.on")).await >= 3,
        "L1 validators signed the last blocks"
    );
    assert!(browser.text("[data-status=committed]").await.parse::<u64>().unwrap() >= 1);
    assert_accessible(&browser, &axe, "network").await;
    photograph(&browser, size, "network").await;

    // Audit: the package's history, both sessions final on L1 and checked in the browser.
    sign_out(&browser).await;
    sign_in(&browser, &api, "demo-auditor").await;
    browser.goto(&format!("{api}/#/audit")).await;
    browser.fill("form[data-audit='/v1/packages/{id}/history'] input", PACKAGE).await;
    browser.click("form[data-audit='/v1/packages/{id}/history'] button").await;
    browser.wait(".history li:nth-child(2) .verdict", STEP).await;
    let history = browser.text("#audit-result").await;
    assert_eq!(history.matches("Verified").count(), 2, "{history}");
    assert!(history.contains(&session), "{history}");
    assert_accessible(&browser, &axe, "audit").await;
    photograph(&browser, size, "audit").await;
    browser.close().await;

    // The same pages on a phone-sized screen.
    let (phone, width, height) = SIZES[1];
    let browser = Browser::open(&driver, width, height).await;
    browser.goto(&format!("{api}/")).await;
    browser.find("main input[type=password]").await;
    photograph(&browser, phone, "sign-in").await;
    sign_in(&browser, &api, "demo-op-1").await;
    browser.goto(&format!("{api}/#/session/warehouse")).await;
    browser.fill(".toolbar input", &session).await;
    browser.click(".toolbar form button").await;
    browser.wait_text("[data-field=status]", "committed", STEP).await;
    photograph(&browser, phone, "warehouse").await;
    browser.goto(&format!("{api}/#/network")).await;
    browser.wait(&format!("[data-chain={L1_CHAIN_ID}] tbody tr:nth-child(4)"), STEP).await;
    photograph(&browser, phone, "network").await;
    sign_out(&browser).await;
    sign_in(&browser, &api, "demo-sup-1").await;
    browser.goto(&format!("{api}/#/session/supplier")).await;
    browser.find(".toolbar > button").await;
    photograph(&browser, phone, "supplier").await;
    browser.goto(&format!("{api}/#/audit")).await;
    browser.find("form[data-audit] input").await;
    photograph(&browser, phone, "audit").await;
    browser.close().await;
}

/// The second service gets its console from its API document alone: a seller lists an item and
/// a buyer reserves, pays and confirms it, each committed with its receipt shown (on the
/// in-process sequencer, served on a real socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_escrow_service_gets_its_pages_from_its_api_document() {
    use bftws_framework::local_network::{LocalNetwork, LocalNetworkSpec};
    let network = LocalNetwork::new(
        bftws_escrow::registry(),
        LocalNetworkSpec {
            dir: None,
            l1_chain_id: "escrow-l1",
            l2_chain_id: "escrow-l2",
            reference_data: serde_json::to_value(bftws_escrow::demo::reference_data()).unwrap(),
            tokens: bftws_escrow::demo::token_file(),
        },
    )
    .expect("an escrow network");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(bftws_framework::http::serve(listener, network.api.clone(), std::future::pending()));
    let driver = Driver::start().await;
    let browser = Browser::open(&driver, 1280, 900).await;

    sign_in(&browser, &api, "demo-s-1").await;
    let nav = browser.text("#nav").await;
    assert!(nav.contains("Seller") && nav.contains("Buyer"), "one page per session kind: {nav}");
    start_session(&browser, &api, "seller").await;
    browser.fill("form[data-step=list_item] input[name=listing_id]", "L-CONSOLE").await;
    browser.fill("form[data-step=list_item] input[name=title]", "A lamp").await;
    browser.fill("form[data-step=list_item] input[name=price]", "1500").await;
    send_step(&browser, "list_item", "ok").await;
    send_step(&browser, "commit", "ok").await;
    browser.wait_text("[data-field=code]", "0 (committed)", STEP).await;
    sign_out(&browser).await;

    sign_in(&browser, &api, "demo-b-1").await;
    start_session(&browser, &api, "buyer").await;
    let refused = send_step(&browser, "pay", "error").await;
    assert!(refused.contains("expected step: reserve"), "{refused}");
    browser.fill("form[data-step=reserve] input[name=listing_id]", "L-CONSOLE").await;
    send_step(&browser, "reserve", "ok").await;
    send_step(&browser, "pay", "ok").await;
    send_step(&browser, "confirm", "ok").await;
    send_step(&browser, "commit", "ok").await;
    browser.wait_text("[data-field=code]", "0 (committed)", STEP).await;
    assert_eq!(browser.text("[data-field=status]").await, "committed");
    browser.close().await;
    server.abort();
}
