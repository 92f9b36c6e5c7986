//! Running the Python oracle scripts in `tests/oracle/` with the pinned
//! PyTorch that `cargo xtask setup` installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The oracle interpreter: `TPKG_PYTHON` if set, else the `.tpkg/python`
/// link that `cargo xtask setup` makes (passed in by `.cargo/config.toml`).
pub fn python() -> anyhow::Result<PathBuf> {
    let candidates = ["TPKG_PYTHON", "TPKG_ORACLE_PYTHON"];
    for variable in candidates {
        if let Some(python) = std::env::var_os(variable) {
            let python = PathBuf::from(python);
            if python.components().count() == 1 || python.exists() {
                return Ok(python);
            }
        }
    }
    bail!(
        "no PyTorch oracle: run `cargo xtask setup` (or set TPKG_PYTHON to a Python with torch 2.13.0)"
    )
}

/// `tests/oracle/<script>`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("oracle")
        .join(name)
}

/// Runs an oracle script and parses the JSON it prints.
pub fn run_json(script_name: &str, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let python = python()?;
    let output = Command::new(&python)
        .arg(script(script_name))
        .args(args)
        .output()
        .with_context(|| format!("starting {}", python.display()))?;
    if !output.status.success() {
        bail!(
            "oracle {script_name} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("oracle {script_name} printed no JSON"))
}
