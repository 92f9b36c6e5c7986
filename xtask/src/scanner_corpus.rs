//! `cargo xtask scanner-corpus`: the scanner corpora of issue 18, written
//! once by a developer and committed (the tests never regenerate them).
//!
//! `tests/oracle/make_scanner_corpus.py`, run by the pinned oracle Python,
//! replaces `tests/data/bypass/` (public scanner-bypass techniques, one file
//! per technique and container, harmless marker payloads) and
//! `tests/data/clean/` (small real files PyTorch 2.13 writes), each with a
//! `manifest.json`. `tests/suite/scanner_corpora.rs` fires every bypass in
//! PyTorch and holds `tpkg audit` to both corpora.

use std::process::Command;

use anyhow::{Context, bail};

use crate::{setup, util};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask scanner-corpus (no arguments)");
    }
    let oracle = setup::run()?;
    let data = util::root().join("tests/data");
    let script = util::root().join("tests/oracle/make_scanner_corpus.py");
    let printed = util::step("writing tests/data/bypass and tests/data/clean", || {
        // A fixed hash seed keeps set members in one order from run to run.
        util::output(
            Command::new(&oracle.python)
                .arg(&script)
                .arg(&data)
                .env("PYTHONHASHSEED", "0"),
        )
    })?;
    let summary: serde_json::Value =
        serde_json::from_str(&printed).context("make_scanner_corpus.py printed no JSON")?;
    for part in ["bypass", "clean"] {
        let files = summary[part]
            .as_object()
            .with_context(|| format!("make_scanner_corpus.py listed no {part} files"))?;
        let total: u64 = files.values().filter_map(serde_json::Value::as_u64).sum();
        eprintln!(
            "xtask: tests/data/{part}: {} files, {:.2} MB",
            files.len(),
            total as f64 / 1e6
        );
    }
    eprintln!(
        "xtask: now run `cargo test -p tpkg-tests --test scanner_corpora` and commit tests/data/bypass and tests/data/clean"
    );
    Ok(())
}
