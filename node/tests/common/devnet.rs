//! Real devnets for tests: CometBFT from the project's cache, the node binary under test.

use std::{path::PathBuf, time::Duration};

use bftws_node::devnet::{Devnet, DevnetSpec};

/// The pinned CometBFT binary (`BFTWS_COMETBFT` overrides it).
pub(crate) fn cometbft() -> PathBuf {
    let path = std::env::var_os("BFTWS_COMETBFT").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").expect("HOME is set");
        PathBuf::from(home).join(format!(".cache/bftws/cometbft/v{}/bin/cometbft", bftws_home::COMETBFT_VERSION))
    });
    assert!(path.exists(), "cometbft not found at {}: run ./scripts/install-cometbft.sh (make setup)", path.display());
    path
}

pub(crate) fn spec(name: &str, base_port: u16) -> (tempfile::TempDir, DevnetSpec) {
    let dir = tempfile::Builder::new().prefix(&format!("bftws-{name}-")).tempdir().unwrap();
    let spec = DevnetSpec::new(dir.path().join("net"), PathBuf::from(env!("CARGO_BIN_EXE_bftws-node")), cometbft());
    let spec = DevnetSpec { base_port, ..spec };
    (dir, spec)
}

pub(crate) async fn start(spec: DevnetSpec) -> Devnet {
    let mut devnet = Devnet::create(spec).expect("devnet files");
    devnet.start_all(Duration::from_secs(90)).await.expect("devnet ready");
    devnet
}
