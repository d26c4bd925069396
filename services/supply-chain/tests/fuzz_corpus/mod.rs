//! The committed fuzz corpus (`fuzz/corpus/{l1,l2}/NNN.tx`, in the order they apply).

#![allow(dead_code)]

use std::path::PathBuf;

use bftws_framework::registry::Layer;

pub(crate) fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

pub(crate) fn read(layer: Layer) -> Vec<Vec<u8>> {
    let dir = dir().join(layer.as_str());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tx"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus in {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}
