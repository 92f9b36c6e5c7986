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
    run(script_name, args, None)
}

/// Runs an oracle script with `input` as JSON on its standard input (for
/// requests too large for the command line) and parses the JSON it prints.
pub fn run_json_stdin(
    script_name: &str,
    args: &[&str],
    input: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    run(script_name, args, Some(serde_json::to_vec(input)?))
}

/// Runs a line of Python (`python -c CODE`) and parses the JSON it prints.
pub fn run_python_json(code: &str) -> anyhow::Result<serde_json::Value> {
    let python = python()?;
    let output = Command::new(&python).args(["-c", code]).output()?;
    if !output.status.success() {
        bail!(
            "python -c failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The oracle interpreter's version (what its `ast.parse` accepts).
pub fn python_version() -> anyhow::Result<tpkg::pysource::PythonVersion> {
    let version = run_python_json("import sys, json; print(json.dumps(sys.version_info[:2]))")?;
    let part = |i: usize| -> anyhow::Result<u8> {
        Ok(u8::try_from(version[i].as_u64().context("version part")?)?)
    };
    Ok(tpkg::pysource::PythonVersion {
        major: part(0)?,
        minor: part(1)?,
    })
}

fn run(
    script_name: &str,
    args: &[&str],
    stdin: Option<Vec<u8>>,
) -> anyhow::Result<serde_json::Value> {
    use std::io::Write;
    use std::process::Stdio;

    let python = python()?;
    let mut child = Command::new(&python)
        .arg(script(script_name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    // Feed stdin from a thread so a large request cannot deadlock against
    // a large answer.
    let feeder = child.stdin.take().map(|mut pipe| {
        let input = stdin.unwrap_or_default();
        std::thread::spawn(move || pipe.write_all(&input))
    });
    let output = child.wait_with_output()?;
    let fed = feeder.map(|feeder| feeder.join());
    if !output.status.success() {
        bail!(
            "oracle {script_name} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    match fed {
        Some(Ok(Err(error))) => {
            return Err(error).with_context(|| format!("writing the request to {script_name}"));
        }
        Some(Err(_)) => bail!("the thread feeding {script_name} panicked"),
        _ => {}
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("oracle {script_name} printed no JSON"))
}
