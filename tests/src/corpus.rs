//! The reference packages written by real PyTorch and their manifests:
//! the corpus (`tests/data/corpus`, PyTorch-written packages with manifests) and the golden
//! files of old PyTorch versions (`tests/data/golden`, written once by
//! `cargo xtask golden`). Both use one manifest format and one checker.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// PyTorch versions in the corpus.
pub const VERSIONS: [&str; 2] = ["torch-2.13.0", "torch-2.0.1"];

/// PyTorch versions of the golden files.
pub const GOLDEN_VERSIONS: [&str; 2] = ["torch-1.10.2", "torch-2.0.1"];

/// The corpus folder.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/corpus")
}

/// The golden files' folder.
pub fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/golden")
}

/// One reference package and its manifest entry.
#[derive(Debug, Clone)]
pub struct Package {
    /// The version folder, e.g. `torch-2.13.0`.
    pub torch: &'static str,
    /// File name, e.g. `values_p3.pt`.
    pub file: String,
    /// Path of the zip.
    pub path: PathBuf,
    /// Path of the unzipped package folder, when the manifest names one.
    pub directory_form: Option<PathBuf>,
    /// The manifest entry.
    pub manifest: Value,
}

/// Every corpus package, both PyTorch versions.
pub fn packages() -> anyhow::Result<Vec<Package>> {
    packages_in(&root(), &VERSIONS)
}

/// Every golden package, both old PyTorch versions.
pub fn golden_packages() -> anyhow::Result<Vec<Package>> {
    packages_in(&golden_root(), &GOLDEN_VERSIONS)
}

/// The packages `<root>/<version>/manifest.json` lists, for each version.
fn packages_in(root: &Path, versions: &[&'static str]) -> anyhow::Result<Vec<Package>> {
    let mut packages = Vec::new();
    for &torch in versions {
        let dir = root.join(torch);
        let manifest_path = dir.join("manifest.json");
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(&manifest_path)
                .with_context(|| format!("reading {}", manifest_path.display()))?,
        )?;
        let entries = manifest
            .as_object()
            .context("manifest.json is not an object")?;
        for (file, entry) in entries {
            let directory_form = entry["directory_form"]
                .as_str()
                .zip(entry["prefix"].as_str())
                .map(|(folder, prefix)| dir.join(folder).join(prefix));
            packages.push(Package {
                torch,
                file: file.clone(),
                path: dir.join(file),
                directory_form,
                manifest: entry.clone(),
            });
        }
    }
    Ok(packages)
}

/// A JSON array of strings as a `Vec<String>`.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
