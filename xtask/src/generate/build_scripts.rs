//! The libtorch rpath build script, copied into each crate that links
//! libtorch: `cargo package` needs a crate's build script inside the
//! crate, and one source (`build-support/libtorch_rpath.rs`) keeps the
//! copies equal.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Generated;

const SOURCE: &str = "build-support/libtorch_rpath.rs";

/// The crates whose binaries or tests may link libtorch.
const CRATES: &[&str] = &["crates/tensors", "crates/tpkg", "crates/cli", "tests"];

pub(super) fn render(root: &Path) -> anyhow::Result<Vec<Generated>> {
    let text =
        std::fs::read_to_string(root.join(SOURCE)).with_context(|| format!("reading {SOURCE}"))?;
    Ok(CRATES
        .iter()
        .map(|krate| Generated {
            path: PathBuf::from(krate).join("build.rs"),
            text: text.clone(),
        })
        .collect())
}
