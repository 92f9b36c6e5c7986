//! Helpers shared by the archive crate's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The reference packages written by real PyTorch (`tests/data/corpus`, see its README).
pub fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/corpus")
}

/// One corpus package and what its manifest says about it.
pub struct CorpusPackage {
    pub torch: String,
    pub file: String,
    pub path: PathBuf,
    pub manifest: Value,
}

pub fn corpus_packages() -> Vec<CorpusPackage> {
    let mut packages = Vec::new();
    for torch in ["torch-2.13.0", "torch-2.0.1"] {
        let dir = corpus_root().join(torch);
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        for (file, entry) in manifest.as_object().unwrap() {
            packages.push(CorpusPackage {
                torch: torch.to_owned(),
                file: file.clone(),
                path: dir.join(file),
                manifest: entry.clone(),
            });
        }
    }
    assert_eq!(
        packages.len(),
        12,
        "the corpus has six packages per PyTorch version"
    );
    packages
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}
