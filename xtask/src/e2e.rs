//! `cargo xtask e2e`: set up the oracle, then run the end-to-end scenarios
//! (`tests/src/bin/e2e.rs`), which print their own table.
//!
//! The dev profile on purpose: it shares the build with `cargo xtask test`,
//! and the heavy numeric work happens in libtorch, which is optimised anyway.

use crate::{setup, util};

pub fn run() -> anyhow::Result<()> {
    setup::run()?;
    util::step("end-to-end scenarios", || {
        util::cargo(&[
            "run",
            "--quiet",
            "--package",
            "tpkg-tests",
            "--features",
            "oracle",
            "--bin",
            "tpkg-e2e",
        ])
    })
}
