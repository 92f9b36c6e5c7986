//! `cargo xtask e2e`: set up the oracle, then run the end-to-end scenarios
//! (`tests/src/bin/e2e.rs`), which print their own table.

use crate::{setup, util};

pub fn run() -> anyhow::Result<()> {
    setup::run()?;
    util::step("end-to-end scenarios", || {
        util::cargo(&[
            "run",
            "--quiet",
            "--release",
            "--package",
            "tpkg-tests",
            "--bin",
            "tpkg-e2e",
        ])
    })
}
