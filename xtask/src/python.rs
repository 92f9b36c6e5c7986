//! The Python package (`crates/python`): built and installed with pip as a
//! user would (`pip install ./crates/python`, maturin from the package
//! index), then its pytest suite against the oracle's torch.
//!
//! It installs into `target/python/site` (`pip install --target`) rather
//! than into the cached oracle venv, so the venv stays exactly what its
//! requirements say; tests run with that folder on `PYTHONPATH`.

use std::path::Path;
use std::process::Command;

use crate::setup::Oracle;
use crate::util;

/// `pip install ./crates/python` into `target/python/site`, pytest into
/// `target/python/tools` (once); returns the `PYTHONPATH` to use.
pub fn install(oracle: &Oracle) -> anyhow::Result<String> {
    let root = util::root();
    let base = root.join("target/python");
    let site = base.join("site");
    let tools = base.join("tools");
    if !tools.join("pytest").is_dir() {
        pip(oracle, &tools, &["pytest"])?;
    }
    let package = root.join("crates/python");
    pip(oracle, &site, &[path_str(&package)?])?;
    Ok(std::env::join_paths([&site, &tools])?
        .to_string_lossy()
        .into_owned())
}

fn pip(oracle: &Oracle, target: &Path, what: &[&str]) -> anyhow::Result<()> {
    util::run(
        Command::new(&oracle.python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--upgrade", "--target"])
            .arg(target)
            .args(what)
            // The shared build folder: the facade's release build is reused.
            .env("CARGO_TARGET_DIR", util::root().join("target")),
    )
}

/// The package's pytest suite (`crates/python/tests`).
pub fn test(oracle: &Oracle) -> anyhow::Result<()> {
    let python_path = install(oracle)?;
    let root = util::root();
    util::run(
        Command::new(&oracle.python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
            .env("PYTHONPATH", python_path)
            .current_dir(root.join("crates/python")),
    )
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", path.display()))
}
