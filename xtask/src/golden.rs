//! `cargo xtask golden`: backward-compatibility golden files written by old
//! PyTorch versions, run once by a developer (never by the test suite).
//!
//! For each old version: a cached venv (`venv-torch-<version>` in the same
//! cache folder as `cargo xtask setup`) with the pins of
//! `xtask/golden-requirements-<version>.txt`, then `tests/oracle/make_golden.py`
//! run by it into `tests/data/golden/torch-<version>/` (replaced whole).
//! The files are committed; `tests/suite/golden.rs` reads them without Python.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::{setup, util};

/// One old PyTorch: its version, the Python minor version its wheels need,
/// and the variable naming an interpreter for it.
struct OldTorch {
    torch: &'static str,
    python: &'static str,
    python_env: &'static str,
}

const VERSIONS: [OldTorch; 2] = [
    OldTorch {
        torch: "1.10.2",
        python: "3.8",
        python_env: "TPKG_PYTHON38",
    },
    OldTorch {
        torch: "2.0.1",
        python: "3.11",
        python_env: "TPKG_PYTHON311",
    },
];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let only = match args {
        [] => None,
        [flag, version] if flag == "--only" => Some(version.as_str()),
        _ => bail!("usage: cargo xtask golden [--only 1.10.2|2.0.1]"),
    };
    let selected: Vec<&OldTorch> = VERSIONS
        .iter()
        .filter(|old| only.is_none_or(|version| version == old.torch))
        .collect();
    if let (Some(version), true) = (only, selected.is_empty()) {
        bail!("no golden version {version:?}; the versions are 1.10.2 and 2.0.1");
    }
    for old in selected {
        let start = Instant::now();
        let python = util::step(&format!("venv with torch {}", old.torch), || {
            cached_venv(old)
        })?;
        let out = util::root().join(format!("tests/data/golden/torch-{}", old.torch));
        let written = util::step(&format!("writing {}", out.display()), || {
            generate(&python, &out)
        })?;
        eprintln!(
            "xtask: torch {} golden files: {} files, {:.1} MB, in {:.1}s",
            old.torch,
            written.0,
            written.1 as f64 / 1e6,
            start.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "xtask: now run `cargo test -p tpkg-tests --features oracle --test golden` and commit tests/data/golden"
    );
    Ok(())
}

/// The venv's interpreter, after creating the venv or bringing it up to
/// date with its requirements file (reused untouched when they match).
fn cached_venv(old: &OldTorch) -> anyhow::Result<PathBuf> {
    let requirements_path =
        util::root().join(format!("xtask/golden-requirements-{}.txt", old.torch));
    let requirements = std::fs::read_to_string(&requirements_path)
        .with_context(|| format!("reading {}", requirements_path.display()))?;
    let cache = setup::cache_dir()?;
    let venv = cache.join(format!("venv-torch-{}", old.torch));
    let python = venv.join("bin/python");
    let stamp = venv.join("tpkg-golden.json");
    if let Ok(text) = std::fs::read_to_string(&stamp) {
        let recorded: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if recorded["requirements"].as_str() == Some(requirements.as_str()) && python.exists() {
            return Ok(python);
        }
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    if !python.exists() {
        let base = base_python(old)?;
        util::run(Command::new(&base).args(["-m", "venv"]).arg(&venv))
            .with_context(|| format!("creating {} with {}", venv.display(), base.display()))?;
    }
    util::run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--progress-bar", "off", "-r"])
            .arg(&requirements_path),
    )?;
    let version = util::output(Command::new(&python).args([
        "-c",
        "import importlib.metadata as m; print(m.version('torch'))",
    ]))?;
    let version = version.trim();
    if version.split('+').next() != Some(old.torch) {
        bail!(
            "{} has torch {version}, not {}",
            python.display(),
            old.torch
        );
    }
    let stamp_text = serde_json::json!({ "requirements": requirements });
    std::fs::write(&stamp, serde_json::to_string_pretty(&stamp_text)?)
        .with_context(|| format!("writing {}", stamp.display()))?;
    Ok(python)
}

/// A Python `old.python` interpreter: `$TPKG_PYTHON38` (or `311`), else
/// `python3.8` on PATH, else pyenv's `versions/3.8.*` (a pyenv shim on PATH
/// fails when that version is not selected).
fn base_python(old: &OldTorch) -> anyhow::Result<PathBuf> {
    let name = format!("python{}", old.python);
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(given) = std::env::var_os(old.python_env) {
        candidates.push(given.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.extend(
        std::env::split_paths(&path)
            .map(|dir| dir.join(&name))
            .filter(|candidate| candidate.is_file()),
    );
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")));
    if let Some(versions) = pyenv.map(|root| root.join("versions"))
        && let Ok(entries) = std::fs::read_dir(&versions)
    {
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| {
                let file_name = entry.file_name();
                let version = file_name.to_string_lossy();
                version
                    .strip_prefix(old.python)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|entry| entry.path().join("bin").join(&name))
            .collect();
        found.sort();
        candidates.extend(found.into_iter().rev());
    }
    const PROBE: &str = "import sys; print('%d.%d' % sys.version_info[:2])";
    for candidate in &candidates {
        let answer = util::output(Command::new(candidate).args(["-c", PROBE]));
        if answer.is_ok_and(|version| version.trim() == old.python) {
            return Ok(candidate.clone());
        }
    }
    bail!(
        "no working Python {} for torch {} (tried {candidates:?}); set {}",
        old.python,
        old.torch,
        old.python_env
    )
}

/// Replaces `out` with what `make_golden.py` writes; returns the number of
/// files and their total size.
fn generate(python: &Path, out: &Path) -> anyhow::Result<(usize, u64)> {
    // Written beside the old folder and swapped in only once complete, so
    // a failed run leaves the committed files as they were.
    let staging = out.with_extension("new");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing {}", staging.display()))?;
    }
    let script = util::root().join("tests/oracle/make_golden.py");
    // A fixed hash seed keeps set and frozenset members in one order from
    // run to run (the other bytes that change are object ids PyTorch puts in
    // TorchScript and legacy torch.save pickles). The old torch must load
    // its own libraries, not the pinned libtorch the build points at.
    let printed = util::output(
        Command::new(python)
            .arg(&script)
            .arg(&staging)
            .env("PYTHONHASHSEED", "0")
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("LIBTORCH"),
    )?;
    let report: serde_json::Value =
        serde_json::from_str(&printed).context("make_golden.py printed no JSON")?;
    let files = report["files"]
        .as_object()
        .context("make_golden.py listed no files")?;
    let total = files.values().filter_map(serde_json::Value::as_u64).sum();
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    }
    std::fs::rename(&staging, out)
        .with_context(|| format!("moving {} to {}", staging.display(), out.display()))?;
    Ok((files.len(), total))
}
